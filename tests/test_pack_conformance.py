"""``pack builder create --publish`` (the real pack, tools/peers) and ``cnbkit builder create
docker://`` from the same builder.toml and inputs, compared layer by layer, in the config and in
every label (tests/pack_compare.py); every difference must be listed, with its reason, in
docs/pack-differences.md."""

from __future__ import annotations

import fnmatch
import re
import shutil
from pathlib import Path

import pytest

from tests.builder_support import EXAMPLES
from tests.conftest import run_cli
from tests.docker_images import push_spec
from tests.pack_compare import differences, fetch
from tests.real_builds import base_spec, builder_toml, sample_buildpacks
from tests.services.dockerd import Dockerd
from tests.services.peers import Peers
from tests.services.registry import Registry
from tests.services.skopeo import copy

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


def _package(peers: Peers, registry: Registry, buildpack: Path, work: Path) -> str:
    """``buildpack`` as a buildpackage image, made and pushed by ``pack buildpack package``."""
    (work / "package.toml").write_text(f'[buildpack]\n  uri = "{buildpack}"\n\n[platform]\n  os = "linux"\n')
    ref = registry.ref(registry.unique_repo("package"), "t")
    made = peers.run_pack(
        work, "buildpack", "package", ref, "--config", str(work / "package.toml"), "--publish"
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return ref


def _example(registry: Registry, run: str, work: Path) -> Path:
    """The bundled example (its lifecycle, buildpack and build image, which goes to the registry
    since pack reads no OCI layouts), with the run image in the registry too."""
    shutil.copytree(EXAMPLES, work / "example")
    build = copy(
        f"oci:{EXAMPLES / 'build-image'}:latest", registry, registry.unique_repo("ex-build"), workdir=work
    )
    config = work / "example" / "builder.toml"
    text = config.read_text().replace('"oci:build-image:latest"', f'"{build}"')
    config.write_text(text.replace('"cnbs/sample-base-run:jammy"', f'"{run}"'))
    return config


# sample: several buildpacks, an optional group entry, [[build.env]] and a [system] pre
# buildpack, the images in [build] and [[run.images]]; stack: the same with the deprecated
# [stack] table; example: the bundled example (examples/builder.toml).
@pytest.mark.parametrize("shape", ["sample", "stack", "example"])
def test_a_cnbkit_builder_matches_packs_but_for_the_listed_differences(
    shape: str, peers: Peers, registry: Registry, images: tuple[str, str], tmp_path: Path, cache_dir: Path
) -> None:
    build, run = images
    if shape == "example":
        config = _example(registry, run, tmp_path)
    else:
        buildpacks = sample_buildpacks(tmp_path / "buildpacks")
        if shape == "package":
            buildpacks["test/hello"] = Path(
                f"docker://{_package(peers, registry, buildpacks['test/hello'], tmp_path)}"
            )
        config = builder_toml(
            tmp_path / "builder.toml",
            lifecycle=str(peers.archive()),
            build_image=build,
            run_image=run,
            buildpacks=buildpacks,
            stack=shape == "stack",
        )
    by_pack = registry.ref(registry.unique_repo("by-pack"), "t")
    made = peers.run_pack(tmp_path, "builder", "create", by_pack, "--config", str(config), "--publish")
    assert made.returncode == 0, made.stdout + made.stderr
    by_cnbkit = registry.ref(registry.unique_repo("by-cnbkit"), "t")
    created = run_cli("builder", "create", f"docker://{by_cnbkit}", "--config", str(config))
    assert created.returncode == 0, created.stderr

    _compare(registry, by_pack, by_cnbkit, tmp_path)


def _compare(registry: Registry, by_pack: str, by_cnbkit: str, work: Path) -> list[str]:
    found = differences(fetch(registry, by_pack, work), fetch(registry, by_cnbkit, work))
    unlisted = _unlisted(found)
    assert not unlisted, "differences from pack not in docs/pack-differences.md:\n" + "\n".join(unlisted)
    # The comparison sees through to real differences (the lifecycle layer's entries).
    assert any(line.startswith("lifecycle layer: ") for line in found), found
    return found


def test_a_builder_with_a_buildpackage_matches_packs_but_for_the_listed_differences(
    peers: Peers,
    registry: Registry,
    docker_host: Dockerd,
    images: tuple[str, str],
    tmp_path: Path,
    cache_dir: Path,
) -> None:
    # pack 0.40.6 cannot take a buildpackage from a registry with a port: it parses
    # "docker:/127.0.0.1:PORT/repo:t" as an image reference, fails ("127.0.0.1:PORT/repo" is no
    # repository name), then tries it as a download URL ("unsupported protocol 'docker'"). So
    # the package, both builders' inputs and pack's builder go through the daemon here.
    build, run = images
    for ref in images:
        docker_host.cli("pull", ref)
    buildpacks: dict[str, Path | str] = dict(sample_buildpacks(tmp_path / "buildpacks"))
    (tmp_path / "package.toml").write_text(f'[buildpack]\n  uri = "{buildpacks["test/hello"]}"\n')
    package = "cnbkit-test/package:t"
    packaged = peers.run_pack(
        tmp_path, "buildpack", "package", package, "--config", str(tmp_path / "package.toml"),
        docker_host=docker_host.host,
    )  # fmt: skip
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    buildpacks["test/hello"] = f"docker://{package}"
    config = builder_toml(
        tmp_path / "builder.toml", lifecycle=str(peers.archive()), build_image=build, run_image=run,
        buildpacks=buildpacks,
    )  # fmt: skip
    made = peers.run_pack(
        tmp_path, "builder", "create", "cnbkit-test/by-pack:t", "--config", str(config),
        "--pull-policy", "if-not-present", docker_host=docker_host.host,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    by_pack = registry.ref(registry.unique_repo("by-pack"), "t")
    docker_host.cli("tag", "cnbkit-test/by-pack:t", by_pack)
    docker_host.cli("push", by_pack)
    by_cnbkit = registry.ref(registry.unique_repo("by-cnbkit"), "t")
    created = run_cli(
        "builder", "create", f"docker://{by_cnbkit}", "--config", str(config), "--pull-policy", "never"
    )
    assert created.returncode == 0, created.stderr
    found = _compare(registry, by_pack, by_cnbkit, tmp_path)
    # The package's own layer is the buildpack's layer in both builders.
    hello = "label io.buildpacks.buildpack.layers.test/hello."
    assert not any(line.startswith(hello) for line in found), found


def test_an_unlisted_difference_is_caught(peers: Peers) -> None:
    # A difference the list does not name (here: another User) fails the test above.
    line = "config User: pack '1000:1000' cnbkit 'root'"
    assert _unlisted([line, "label io.buildpacks.builder.metadata.createdBy.name: pack x cnbkit y"]) == [line]


def test_flatten_and_label_match_packs(
    peers: Peers, registry: Registry, images: tuple[str, str], tmp_path: Path, cache_dir: Path
) -> None:
    """``--flatten`` (two modules, one layer) and ``--label``, given to pack and to cnbkit alike."""
    build, run = images
    config = builder_toml(
        tmp_path / "builder.toml",
        lifecycle=str(peers.archive()),
        build_image=build,
        run_image=run,
        buildpacks=sample_buildpacks(tmp_path / "buildpacks"),
    )
    flags = ("--flatten", "test/hello@0.0.1,test/optional@0.0.1", "--label", "org.example.team=builders")
    by_pack = registry.ref(registry.unique_repo("by-pack"), "t")
    made = peers.run_pack(
        tmp_path, "builder", "create", by_pack, "--config", str(config), "--publish", *flags
    )
    assert made.returncode == 0, made.stdout + made.stderr
    by_cnbkit = registry.ref(registry.unique_repo("by-cnbkit"), "t")
    created = run_cli("builder", "create", f"docker://{by_cnbkit}", "--config", str(config), *flags)
    assert created.returncode == 0, created.stderr
    found = _compare(registry, by_pack, by_cnbkit, tmp_path)
    # The same layer count, the user's label alike; each side gives both modules one diff ID.
    assert not any(line.startswith("layers:") or "org.example.team" in line for line in found), found
    labels = fetch(registry, by_cnbkit, tmp_path).labels
    modules = labels["io.buildpacks.buildpack.layers"]  # parsed by fetch
    assert modules["test/hello"]["0.0.1"]["layerDiffID"] == modules["test/optional"]["0.0.1"]["layerDiffID"]
