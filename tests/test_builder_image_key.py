"""Package images named without ``docker://``: the deprecated ``image = "REF"`` key of a
``[[buildpacks]]`` entry (used when ``uri`` is empty), with pack's warning, and a bare ``uri``
that is no existing path and parses as an image reference (pack's ``GetLocatorType``)."""

from __future__ import annotations

import json
from pathlib import Path

import cnbkit
import pytest
from cnbkit.transport.layout import open_layout

from tests.builder_support import builder_project, builder_toml, buildpack, package_spec
from tests.conftest import run_cli
from tests.docker_images import push_spec
from tests.services.registry import Registry

_WARNING = """The 'image' key is deprecated. Use 'uri="docker://..."' instead."""


def test_the_image_key_is_a_package_image_with_pack_s_warning(registry: Registry, tmp_path: Path) -> None:
    package_ref = push_spec(package_spec(), registry, registry.unique_repo("package"), "v1", tmp_path)
    root = builder_project(tmp_path / "project")
    builder_toml(
        root / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        order=("test/one", "test/pkg"),
        extra=f'[[buildpacks]]\nimage = "{package_ref}"',
    )
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"),
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stderr.count(_WARNING) == 1, made.stderr
    made_image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    modules = json.loads(made_image.config.labels["io.buildpacks.buildpack.layers"])
    assert sorted(modules) == ["test/dep", "test/one", "test/pkg"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_bare_image_reference_that_is_no_path_is_a_package_image(
    registry: Registry, tmp_path: Path, host: str
) -> None:
    # pack's GetLocatorType: a naked locator that is no existing path and parses as an image
    # reference is a package; "localhost:PORT/..." is a registry with a port, not a scheme.
    pushed = push_spec(package_spec(), registry, registry.unique_repo("package"), "v1", tmp_path)
    package_ref = pushed.replace("127.0.0.1:", f"{host}:", 1)
    root = builder_project(tmp_path / "project")
    builder_toml(
        root / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", package_ref),
        order=("test/one", "test/pkg"),
    )
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"),
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "deprecated" not in made.stderr
    made_image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    modules = json.loads(made_image.config.labels["io.buildpacks.buildpack.layers"])
    assert sorted(modules) == ["test/dep", "test/one", "test/pkg"]


def test_a_bare_value_that_is_an_existing_path_stays_a_path(tmp_path: Path) -> None:
    # "mods/one" parses as an image reference too; being a directory decides (pack: URILocator).
    root = builder_project(tmp_path / "project")
    buildpack(root / "mods" / "one", ident="test/two")
    builder_toml(
        root / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", "mods/one"),
        order=("test/one", "test/two"),
    )
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"),
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    made_image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    assert sorted(json.loads(made_image.config.labels["io.buildpacks.buildpack.layers"])) == [
        "test/one",
        "test/two",
    ]


def test_a_missing_bare_path_reads_as_a_package_image_and_says_so(tmp_path: Path) -> None:
    root = builder_project(tmp_path / "project")
    builder_toml(root / "builder.toml", lifecycle='uri = "lifecycle.tgz"', buildpacks=("bp", "go/runtime:1"))
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"), "--offline",
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 1, made.stderr
    [line] = made.stderr.splitlines()
    assert line.startswith("error: ") and "'go/runtime:1' (line " in line, line
    assert f"read as the package image docker://go/runtime:1 (no path {root}/go/runtime:1)" in line, line
    assert not out.exists()


def test_a_one_word_name_with_a_tag_is_a_docker_hub_package(registry: Registry, tmp_path: Path) -> None:
    # "word:tag" reads as a scheme no plugin claims, so it is an image name (pack: a package on
    # Docker Hub); Docker Hub is the loopback registry here, through --registry-mirror.
    name = registry.unique_repo("pkg")
    push_spec(package_spec(), registry, f"library/{name}", "v1", tmp_path)
    root = builder_project(tmp_path / "project")
    builder_toml(
        root / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", f"{name}:v1"),
        order=("test/one", "test/pkg"),
    )
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"),
        "--registry-mirror", f"docker.io={registry.host}", "--pull-policy", "always",
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    made_image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    modules = json.loads(made_image.config.labels["io.buildpacks.buildpack.layers"])
    assert sorted(modules) == ["test/dep", "test/one", "test/pkg"]
