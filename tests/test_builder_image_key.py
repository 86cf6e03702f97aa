"""The deprecated ``image = "REF"`` key of a ``[[buildpacks]]`` entry (used when ``uri`` is
empty) names a buildpackage image, as ``uri = "docker://REF"`` would, with pack's warning."""

from __future__ import annotations

import json
from pathlib import Path

import cnbkit
from cnbkit.transport.layout import open_layout

from tests.builder_support import builder_project, builder_toml, package_spec
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
