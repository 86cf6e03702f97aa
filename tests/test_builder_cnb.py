"""A ``.cnb`` file (a buildpackage saved as an OCI layout in a tar, as ``pack buildpack package
--format file`` writes it) named by a ``[[buildpacks]]`` or ``[[extensions]]`` ``uri``, as a bare
path or a ``file://`` URI, is a buildpackage: its modules go into the builder, as pack's
``GetLocatorType`` and module downloader take it, not a buildpack ``.tgz``."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import cnbkit
import pytest
from cnbkit.transport.layout import open_layout

from tests.builder_support import builder_project, builder_toml, package_spec
from tests.conftest import run_cli
from tests.images import write_image


def _write_cnb(path: Path, layout: Path) -> Path:
    """``package_spec()`` as an OCI layout at ``layout``, tarred (layout root at the top) to ``path``."""
    write_image(layout, package_spec(), "latest")
    with tarfile.open(path, "w") as archive:
        for member in sorted(layout.rglob("*")):
            archive.add(member, arcname=str(member.relative_to(layout)), recursive=False)
    return path


@pytest.mark.parametrize("written", ["pkg.cnb", "file://{root}/pkg.cnb"])
def test_a_cnb_file_uri_is_a_buildpackage(written: str, tmp_path: Path) -> None:
    root = builder_project(tmp_path / "project")
    _write_cnb(root / "pkg.cnb", tmp_path / "layout")
    builder_toml(
        root / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", written.format(root=root)),
        order=("test/one", "test/pkg"),
    )
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"), "--json",
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    made_image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    modules = json.loads(made_image.config.labels["io.buildpacks.buildpack.layers"])
    assert sorted(modules) == ["test/dep", "test/one", "test/pkg"]
    assert modules["test/pkg"]["2.0.0"]["api"] == "0.10"
