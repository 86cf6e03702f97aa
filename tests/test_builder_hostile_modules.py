"""Issue 17, item 1: a buildpack (directory, ``.tgz``) or a buildpackage image cannot write
outside its own ``/cnb/buildpacks/<id>/<version>/``: not through its own symlinks, not by a
name outside it. Refused through the CLI in one line naming the entry, nothing written; an
accepted builder, unpacked by umoci, holds the validated lifecycle and build image files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.builder_support import build_image, builder_toml, buildpack, package_entries
from tests.conftest import one_line_error, run_cli
from tests.images import Entry as ImageEntry
from tests.images import ImageSpec, gzip_layer, write_image
from tests.lifecycles import Entry, lifecycle_entries, make_lifecycle, write_tar

BP_TOML = b'api = "0.10"\n[buildpack]\n  id = "test/one"\n  version = "1.0.0"\n'
PASSWD = b"root:x:0:0::/root:/bin/sh\n"  # the build image's, as tests.builder_support writes it


def _link(name: str, target: str) -> Entry:
    return Entry(name, "symlink", linkname=target)


def bp_entries(*extra: Entry) -> list[Entry]:
    """A valid buildpack archive (test/one@1.0.0) with ``extra`` after its files."""
    return [
        Entry("buildpack.toml", data=BP_TOML, mode=0o644),
        Entry("bin", "dir"),
        Entry("bin/detect", data=b"#!/bin/sh\nexit 0\n", mode=0o755),
        Entry("bin/build", data=b"#!/bin/sh\nexit 0\n", mode=0o755),
        *extra,
    ]


def package_layout(path: Path, *extra: ImageEntry, ident: str = "test/pkg", version: str = "2.0.0") -> str:
    """A buildpackage image (one buildpack, one layer holding it and ``extra``) in a layout."""
    layer = [
        *package_entries(ident, version),
        *extra,
    ]
    labels = {
        "io.buildpacks.buildpackage.metadata": json.dumps({"id": ident, "version": version}),
        "io.buildpacks.buildpack.layers": json.dumps(
            {ident: {version: {"api": "0.10", "layerDiffID": gzip_layer(layer)[1]}}}
        ),
    }
    write_image(path, ImageSpec([layer], labels=labels), "v1")
    return f"oci:{path}:v1"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    make_lifecycle(root / "lifecycle.tgz")
    build_image(root / "build")
    return root


def _create(
    project: Path, target: Path, *uris: str, order: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    config = builder_toml(
        project / "builder.toml", lifecycle='uri = "lifecycle.tgz"', buildpacks=uris, order=order
    )
    return run_cli("builder", "create", f"oci:{target}:t", "--config", str(config), "--json")


def _pkg_root(name: str) -> str:
    return f"cnb/buildpacks/test_pkg/2.0.0/{name}"


HOSTILE_ARCHIVES: dict[str, tuple[list[Entry], str]] = {
    "a write through a link into the lifecycle": (
        [_link("esc", "../../../lifecycle"), Entry("esc/detector", data=b"evil", mode=0o755)],
        "entry 'esc/detector' lies under the symlink 'esc'",
    ),
    "a write through a link to /etc": (
        [_link("etc", "/etc"), Entry("etc/passwd", data=b"evil::0:0::/:/bin/sh\n")],
        "entry 'etc/passwd' lies under the symlink 'etc'",
    ),
    "the link replaced by a directory after the write": (
        [_link("esc", "../../../lifecycle"), Entry("esc/detector", data=b"evil"), Entry("esc", "dir")],
        "entry 'esc/' appears twice",
    ),
    "a link out of the buildpack directory": (
        [_link("bin/tool", "../../../../../etc/passwd")],
        "symlink 'bin/tool' -> '../../../../../etc/passwd' leaves the buildpack directory",
    ),
    "a chain whose links each look harmless": (
        [_link("a", "."), _link("b", "a/.."), _link("c", "b/../../lifecycle")],
        "symlink 'b' -> 'a/..' leaves the buildpack directory",
    ),
    "a link to another buildpack": (
        [_link("other", "../2.0.0")],
        "symlink 'other' -> '../2.0.0' leaves the buildpack directory",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ARCHIVES))
def test_a_hostile_buildpack_archive_is_refused_in_one_line(case: str, project: Path, tmp_path: Path) -> None:
    entries, expected = HOSTILE_ARCHIVES[case]
    write_tar(project / "bp.tgz", bp_entries(*entries))
    target = tmp_path / "out"
    line = one_line_error(_create(project, target, "bp.tgz", order=("test/one",)))
    assert expected in line and "bp.tgz" in line, line
    assert not target.exists()


def test_a_hostile_buildpack_directory_is_refused_in_one_line(project: Path, tmp_path: Path) -> None:
    bp = buildpack(project / "bp")
    (bp / "esc").symlink_to("../../../lifecycle")
    target = tmp_path / "out"
    line = one_line_error(_create(project, target, "bp", order=("test/one",)))
    assert "symlink 'esc' -> '../../../lifecycle' leaves the buildpack directory" in line, line
    assert not target.exists()


HOSTILE_PACKAGES: dict[str, tuple[list[ImageEntry], str]] = {
    "a write through a link into the lifecycle": (
        [
            ImageEntry(_pkg_root("esc"), kind="symlink", target="../../../lifecycle"),
            ImageEntry(_pkg_root("esc/detector"), b"evil"),
        ],
        "entry 'cnb/buildpacks/test_pkg/2.0.0/esc/detector' lies under the symlink",
    ),
    "an entry outside its buildpack directory": (
        [ImageEntry("etc/", kind="dir"), ImageEntry("etc/passwd", b"evil::0:0::/:/bin/sh\n")],
        "entry 'etc/' lies outside cnb/buildpacks/test_pkg/2.0.0/",
    ),
    "an entry in another buildpack's directory": (
        [ImageEntry("cnb/buildpacks/test_one/1.0.0/bin/detect", b"evil")],
        "entry 'cnb/buildpacks/test_one/1.0.0/bin/detect' lies outside",
    ),
    "a parent of the buildpack directory that is a link": (
        [ImageEntry("cnb/buildpacks/", kind="symlink", target="/etc")],
        "entry 'cnb/buildpacks/' is a symlink",
    ),
    "a link out of the buildpack directory": (
        [ImageEntry(_pkg_root("lc"), kind="symlink", target="/cnb/lifecycle")],
        "symlink 'cnb/buildpacks/test_pkg/2.0.0/lc' -> '/cnb/lifecycle' leaves the buildpack directory",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PACKAGES))
def test_a_hostile_buildpackage_image_is_refused_in_one_line(
    case: str, project: Path, tmp_path: Path
) -> None:
    extra, expected = HOSTILE_PACKAGES[case]
    package = package_layout(project / "pkg", *extra)
    target = tmp_path / "out"
    line = one_line_error(_create(project, target, package, order=("test/pkg",)))
    assert expected in line and "pkg" in line, line
    assert not target.exists()


def _unpack(layout: Path, dest: Path) -> Path:
    umoci = shutil.which("umoci")
    assert umoci, "umoci is needed (CI installs it)"
    subprocess.run([umoci, "unpack", "--image", f"{layout}:t", str(dest)], check=True, capture_output=True)
    return dest / "rootfs"


def _inside(rootfs: Path, link: Path, top: Path) -> None:
    resolved = Path(os.path.realpath(link))
    root = Path(os.path.realpath(rootfs))
    assert resolved.is_relative_to(root / top), (link, resolved)


def test_an_accepted_builder_holds_the_validated_lifecycle_and_build_image_files(
    project: Path, tmp_path: Path
) -> None:
    """Links that stay inside (relative, through the id directory, absolute to itself) are
    accepted; umoci's unpacked builder has the lifecycle and /etc/passwd byte for byte."""
    own = "/cnb/buildpacks/test_one/1.0.0/lib"
    write_tar(
        project / "bp.tgz",
        bp_entries(
            Entry("lib", "dir"),
            Entry("lib/x", data=b"library"),
            _link("bin/run", "../lib/x"),
            _link("up", "../1.0.0/lib"),
            _link("abs", own),
            Entry("hard", "hardlink", linkname="lib/x"),
        ),
    )
    package = package_layout(
        project / "pkg",
        ImageEntry(_pkg_root("share/"), kind="dir"),
        ImageEntry(_pkg_root("share/data"), b"shared"),
        ImageEntry(_pkg_root("bin/data"), kind="symlink", target="../share/data"),
    )
    target = tmp_path / "out"
    result = _create(project, target, "bp.tgz", package, order=("test/one", "test/pkg"))
    assert result.returncode == 0, result.stderr
    rootfs = _unpack(target, tmp_path / "bundle")
    lifecycle = {e.name: e for e in lifecycle_entries()}
    names = sorted(os.listdir(rootfs / "cnb" / "lifecycle"))
    assert names == sorted(n.split("/", 1)[1] for n in lifecycle if n.startswith("lifecycle/")), names
    for name in names:
        path, validated = rootfs / "cnb" / "lifecycle" / name, lifecycle[f"lifecycle/{name}"]
        if validated.kind == "symlink":
            assert os.readlink(path) == validated.linkname, name
        else:
            assert not path.is_symlink() and path.read_bytes() == validated.data, name
    assert (rootfs / "etc" / "passwd").read_bytes() == PASSWD
    assert sorted(os.listdir(rootfs / "etc")) == ["passwd"]
    bp = rootfs / "cnb" / "buildpacks" / "test_one" / "1.0.0"
    assert (bp / "bin" / "run").read_bytes() == (bp / "up" / "x").read_bytes() == b"library"
    assert os.readlink(bp / "abs") == own and (bp / "hard").read_bytes() == b"library"
    for link in (bp / "bin" / "run", bp / "up"):
        _inside(rootfs, link, Path("cnb/buildpacks/test_one/1.0.0"))
    data = rootfs / "cnb" / "buildpacks" / "test_pkg" / "2.0.0" / "bin" / "data"
    assert data.read_bytes() == b"shared"


def test_a_hostile_extension_archive_is_refused_in_one_line(project: Path, tmp_path: Path) -> None:
    toml = b'api = "0.10"\n[extension]\n  id = "test/ext"\n  version = "1.0.0"\n'
    write_tar(
        project / "ext.tgz",
        [
            Entry("extension.toml", data=toml, mode=0o644),
            Entry("bin", "dir"),
            Entry("bin/generate", data=b"#!/bin/sh\nexit 0\n", mode=0o755),
            _link("bin/detect", "../../../../buildpacks"),
        ],
    )
    buildpack(project / "bp")
    extensions = '[[extensions]]\nuri = "ext.tgz"\n\n'
    extensions += '[[order-extensions]]\n[[order-extensions.group]]\nid = "test/ext"\n'
    config = builder_toml(project / "builder.toml", lifecycle='uri = "lifecycle.tgz"', extra=extensions)
    target = tmp_path / "out"
    result = run_cli("builder", "create", f"oci:{target}:t", "--config", str(config))
    line = one_line_error(result)
    assert "symlink 'bin/detect' -> '../../../../buildpacks' leaves the extension directory" in line, line
    assert "ext.tgz" in line and not target.exists()


def test_a_buildpack_id_that_is_a_path_is_refused(project: Path, tmp_path: Path) -> None:
    toml = b'api = "0.10"\n[buildpack]\n  id = "."\n  version = "1.0.0"\n'
    write_tar(project / "bp.tgz", [Entry("buildpack.toml", data=toml, mode=0o644), *bp_entries()[1:]])
    target = tmp_path / "out"
    line = one_line_error(_create(project, target, "bp.tgz", order=(".",)))
    assert "[buildpack] id '.' or version '1.0.0' cannot be a path" in line, line
    assert not target.exists()
