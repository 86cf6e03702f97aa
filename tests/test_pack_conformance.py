"""``pack builder create --publish`` (the real pack, tools/peers) and ``cnbkit builder create
docker://`` from the same builder.toml and inputs, compared layer by layer, in the config and in
every label (tests/pack_compare.py); every difference must be listed, with its reason, in
docs/pack-differences.md."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.docker_images import push_spec
from tests.pack_compare import differences, fetch
from tests.real_builds import base_spec, builder_toml, sample_buildpacks
from tests.services.peers import Peers
from tests.services.registry import Registry

DIFFERENCES = Path(__file__).resolve().parent.parent / "docs" / "pack-differences.md"


def _listed() -> list[str]:
    """The patterns in the first column of docs/pack-differences.md's table."""
    return re.findall(r"^\| `([^`]+)` \|", DIFFERENCES.read_text(), flags=re.MULTILINE)


def _unlisted(found: list[str]) -> list[str]:
    patterns = _listed()
    return [line for line in found if not any(fnmatch.fnmatchcase(line, p) for p in patterns)]


@pytest.fixture(scope="module")
def images(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The busybox build and run images (tests/real_builds.py) in the registry."""
    work = tmp_path_factory.mktemp("conformance-images")
    build = push_spec(base_spec(), registry, registry.unique_repo("cf-build"), "t", work)
    return build, push_spec(base_spec(), registry, registry.unique_repo("cf-run"), "t", work)


# sample: several buildpacks, an optional group entry, [[build.env]] and a [system] pre
# buildpack, the images in [build] and [[run.images]]; stack: the same with the deprecated
# [stack] table naming the images and the stack id.
@pytest.mark.parametrize("shape", ["sample", "stack"])
def test_a_cnbkit_builder_matches_packs_but_for_the_listed_differences(
    shape: str, peers: Peers, registry: Registry, images: tuple[str, str], tmp_path: Path, cache_dir: Path
) -> None:
    build, run = images
    config = builder_toml(
        tmp_path / "builder.toml",
        lifecycle=str(peers.archive()),
        build_image=build,
        run_image=run,
        buildpacks=sample_buildpacks(tmp_path / "buildpacks"),
        stack=shape == "stack",
    )
    by_pack = registry.ref(registry.unique_repo("by-pack"), "t")
    made = peers.run_pack(tmp_path, "builder", "create", by_pack, "--config", str(config), "--publish")
    assert made.returncode == 0, made.stdout + made.stderr
    by_cnbkit = registry.ref(registry.unique_repo("by-cnbkit"), "t")
    created = run_cli("builder", "create", f"docker://{by_cnbkit}", "--config", str(config))
    assert created.returncode == 0, created.stderr

    found = differences(fetch(registry, by_pack, tmp_path), fetch(registry, by_cnbkit, tmp_path))
    unlisted = _unlisted(found)
    assert not unlisted, "differences from pack not in docs/pack-differences.md:\n" + "\n".join(unlisted)
    # The comparison sees through to real differences (the lifecycle layer's file times).
    assert any(line.startswith("lifecycle layer: /cnb/lifecycle/") for line in found), found


def test_an_unlisted_difference_is_caught(peers: Peers) -> None:
    # A difference the list does not name (here: another User) fails the test above.
    line = "config User: pack '1000:1000' cnbkit 'root'"
    assert _unlisted([line, "label io.buildpacks.builder.metadata.createdBy.name: pack x cnbkit y"]) == [line]
