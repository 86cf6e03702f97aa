"""A ``.cnb`` file (a buildpackage saved as an OCI layout in a tar, as ``pack buildpack package
--format file`` writes it) named by a ``[[buildpacks]]`` or ``[[extensions]]`` ``uri``, as a bare
path, a ``file://`` URI or an ``https://`` URL, is a buildpackage: its modules go into the builder, as pack's
``GetLocatorType`` and module downloader take it, not a buildpack ``.tgz``."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import cnbkit
import pytest
from cnbkit.transport.layout import open_layout

from tests.builder_support import builder_project, builder_toml, package_spec
from tests.conftest import run_cli
from tests.https_server import HTTPSServer, ca_bundle_fixture, https_server_fixture, test_ca_fixture  # noqa: F401 - fixtures
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


def test_a_cnb_file_at_an_https_url_is_a_buildpackage(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    cnb = _write_cnb(tmp_path / "pkg.cnb", tmp_path / "layout").read_bytes()
    https_server.add("/dl/pkg.cnb", cnb)
    root = builder_project(tmp_path / "project")
    url = https_server.url("/dl/pkg.cnb")
    builder_toml(
        root / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", f"{url}#sha256={hashlib.sha256(cnb).hexdigest()}"),
        order=("test/one", "test/pkg"),
    )
    env = {"CNBKIT_CACHE_DIR": str(tmp_path / "cache")}
    for run, out in enumerate((tmp_path / "out", tmp_path / "again")):
        made = run_cli(
            "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"),
            "--ca-cert", str(ca_bundle), env=env,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        made_image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
        modules = json.loads(made_image.config.labels["io.buildpacks.buildpack.layers"])
        assert sorted(modules) == ["test/dep", "test/one", "test/pkg"], run
    # Downloaded once, whole: pinned and cached, the second build asks for nothing.
    assert [r.status for r in https_server.requests_for("/dl/pkg.cnb")] == [200]


def test_a_cnb_url_that_is_no_buildpackage_is_one_line(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    https_server.add("/dl/bad.cnb", b"not a tar at all" * 100)
    root = builder_project(tmp_path / "project")
    url = https_server.url("/dl/bad.cnb")
    builder_toml(root / "builder.toml", lifecycle='uri = "lifecycle.tgz"', buildpacks=("bp", url))
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(root / "builder.toml"),
        "--ca-cert", str(ca_bundle), env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 1, made.stderr
    [line] = made.stderr.splitlines()
    assert line.startswith("error: ") and url in line, line
    assert not out.exists()
