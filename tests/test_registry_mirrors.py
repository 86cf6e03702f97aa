"""``--registry-mirror REGISTRY=MIRROR`` (env ``CNBKIT_REGISTRY_MIRRORS``), pack's
``registry-mirrors``: every image fetched from REGISTRY comes from MIRROR instead, as the two
loopback registries' own access logs show."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cnbkit
import pytest
from cnbkit.transport.layout import open_layout

from tests.builder_support import build_image, builder_project, builder_toml
from tests.conftest import run_cli
from tests.docker_images import lifecycle_spec, push_spec
from tests.services.registry import Registry
from tests.services.skopeo import copy


@pytest.fixture(scope="module")
def mirror(registry_factory: Callable[..., Registry]) -> Registry:
    """A second loopback registry: the mirror."""
    return registry_factory(name="registry-mirror")


def _manifest_requests(registry: Registry, repo: str, since: int) -> int:
    return registry.count(path=rf"/v2/{repo}/manifests/.+", since=since)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_build_image_comes_from_the_mirror(
    registry: Registry, mirror: Registry, tmp_path: Path, how: str
) -> None:
    repo = registry.unique_repo("build")
    copy(f"oci:{build_image(tmp_path / 'build')}:latest", mirror, repo, "v1", workdir=tmp_path)
    original = registry.ref(repo, "v1")  # never pushed there: only the mirror has it
    root = builder_project(tmp_path / "project", with_build_image=False)
    builder_toml(root / "builder.toml", lifecycle='uri = "lifecycle.tgz"', image=original)
    pair = f"{registry.host}={mirror.host}"
    flags, env = (
        (["--registry-mirror", pair], {}) if how == "flag" else ([], {"CNBKIT_REGISTRY_MIRRORS": pair})
    )
    at_original, at_mirror = registry.mark(), mirror.mark()
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"), *flags,
        "--pull-policy", "always", env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache"), **env},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert _manifest_requests(mirror, repo, at_mirror) >= 1
    assert registry.count(since=at_original) == 0  # not even a ping
    made_image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    assert made_image.config.labels["a.label"] == "kept"  # the build image's own label


def test_docker_hub_s_names_are_one_registry_and_a_mirror_may_have_a_path(
    mirror: Registry, tmp_path: Path
) -> None:
    # A Docker Hub name never leaves the machine: the mirror (with a path) has it.
    repo = mirror.unique_repo("hub")
    push_spec(lifecycle_spec(), mirror, f"{repo}/cnbs/lifecycle", "0.21.0", tmp_path)
    for registry in ("docker.io", "index.docker.io"):
        at_mirror = mirror.mark()
        result = run_cli(
            "resolve", "docker://cnbs/lifecycle:0.21.0", "--json", "--pull-policy", "always",
            "--registry-mirror", f"{registry}={mirror.host}/{repo}",
            env={"CNBKIT_CACHE_DIR": str(tmp_path / f"cache-{registry}")},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["version"] == "0.21.0"
        assert _manifest_requests(mirror, f"{repo}/cnbs/lifecycle", at_mirror) >= 1


@pytest.mark.parametrize(
    "value", ["index.docker.io", "=mirror.example", "docker.io=https://m.example", "a=b c"]
)
def test_a_malformed_mirror_is_a_usage_error_showing_the_form(value: str, tmp_path: Path) -> None:
    root = builder_project(tmp_path / "project")
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"),
        "--registry-mirror", value, env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 2, made.stderr
    [line] = made.stderr.splitlines()
    assert line.startswith("error: registry mirror ") and "REGISTRY=MIRROR" in line, line
    assert not out.exists()
