"""cnbkit resolve on local lifecycles: every shape, both descriptor formats, --json, --save."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path
from typing import Any

import cnbkit
import pytest

from tests.conftest import cli_json, run_cli
from tests.lifecycles import (
    BUILDPACK_APIS,
    PLATFORM_APIS,
    Entry,
    descriptor,
    lifecycle_entries,
    make_lifecycle,
    make_lifecycle_dir,
    write_tar,
)

ALL_BINARIES = [
    "analyzer",
    "builder",
    "creator",
    "detector",
    "exporter",
    "extender",
    "launcher",
    "rebaser",
    "restorer",
]


def resolve_json(*args: str, cwd: Path | None = None) -> dict[str, Any]:
    data: dict[str, Any] = cli_json("resolve", *args, "--json", cwd=cwd)
    return data


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("release.tgz", {}),
        ("release.tar", {"compress": None}),
        ("image.tar", {"shape": "image", "compress": None}),
        ("image-slash.tgz", {"shape": "image", "leading": "/"}),
        ("dotslash.tgz", {"leading": "./"}),
        ("odd-top-dir.tgz", {"top": "lifecycle-v0.0.0-arch"}),
    ],
)
def test_resolve_archive_shapes(tmp_path: Path, name: str, kwargs: dict[str, object]) -> None:
    archive = make_lifecycle(tmp_path / name, **kwargs)  # type: ignore[arg-type]
    result = run_cli("resolve", str(archive))
    assert result.returncode == 0, result.stderr
    assert "Lifecycle 0.21.0" in result.stdout
    assert "0.7, 0.8, 0.9, 0.10, 0.11, 0.12" in result.stdout  # buildpack APIs
    assert "0.13, 0.14, 0.15" in result.stdout  # platform APIs
    assert ", ".join(ALL_BINARIES) in result.stdout
    data = resolve_json(str(archive))
    assert data["digest"] == sha256(archive)
    assert data["size"] == archive.stat().st_size


def test_zstd_and_multi_member_gzip(tmp_path: Path) -> None:
    import gzip

    import zstandard

    plain = make_lifecycle(tmp_path / "l.tar", compress=None)
    raw = plain.read_bytes()
    zst = tmp_path / "l.tar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(raw))
    members = tmp_path / "members.tgz"  # what `cat a.gz b.gz` makes
    members.write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]))
    for archive in (zst, members):
        data = resolve_json(str(archive))
        assert data["version"] == "0.21.0" and data["digest"] == sha256(archive)


def test_json_matches_the_contract(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    data = resolve_json(str(archive))
    assert set(data) == {"uri", "resolver", "version", "os", "arch", "apis", "binaries", "digest", "size"}
    assert data["uri"] == str(archive)
    assert data["resolver"] == "file"
    assert data["version"] == "0.21.0"
    assert (data["os"], data["arch"]) == (
        "linux",
        cnbkit.parse_platform("linux/" + os.uname().machine).architecture,
    )
    assert data["apis"] == {
        "buildpack": {"supported": BUILDPACK_APIS, "deprecated": []},
        "platform": {"supported": PLATFORM_APIS, "deprecated": []},
    }
    assert data["binaries"] == ALL_BINARIES


def test_directory_relative_base_dir_and_file_uri(tmp_path: Path) -> None:
    root = make_lifecycle_dir(tmp_path / "base" / "lc")
    by_dir = resolve_json("lc", "--base-dir", str(tmp_path / "base"), cwd=tmp_path)
    assert by_dir["version"] == "0.21.0" and by_dir["binaries"] == ALL_BINARIES
    by_uri = resolve_json(f"file://{root}")
    assert by_uri["digest"] == by_dir["digest"]  # the directory's tar is deterministic
    relative_uri = resolve_json("file://lc", "--base-dir", str(tmp_path / "base"))
    assert relative_uri["digest"] == by_dir["digest"]
    missing = run_cli("resolve", "nope.tgz", "--base-dir", str(tmp_path / "base"))
    assert missing.returncode == 1
    assert f"{tmp_path / 'base' / 'nope.tgz'}: no such file or directory" in missing.stderr
    assert str(tmp_path / "base") in missing.stderr


def test_directory_and_its_tar_give_the_same_layer(tmp_path: Path) -> None:
    root = make_lifecycle_dir(tmp_path / "lc")
    tar_path = tmp_path / "lc.tgz"
    with tarfile.open(tar_path, "w:gz") as tar:  # an ordinary tar: readdir order, real mtimes
        for child in ("lifecycle.toml", "lifecycle"):
            tar.add(root / child, arcname=child)
    a = cnbkit.resolve_lifecycle(str(root), save=tmp_path / "a.tar")
    b = cnbkit.resolve_lifecycle(str(tar_path), save=tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert a.layer_digest == b.layer_digest == sha256(tmp_path / "a.tar")


def test_entry_order_does_not_change_the_layer(tmp_path: Path) -> None:
    entries = lifecycle_entries(binary=os.urandom(300_000))
    forward = write_tar(tmp_path / "forward.tgz", entries)
    backward = write_tar(tmp_path / "backward.tgz", list(reversed(entries)))
    cnbkit.resolve_lifecycle(str(forward), save=tmp_path / "f.tar")
    cnbkit.resolve_lifecycle(str(backward), save=tmp_path / "b.tar")
    assert (tmp_path / "f.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_saved_layer_is_normalised(tmp_path: Path) -> None:
    entries = lifecycle_entries(shape="image", leading="/")
    entries.append(Entry("/etc/evil", data=b"root::0:0::/:/bin/sh\n"))
    entries.append(Entry("/cnb/buildpacks/x/1/bin/build", data=b"#!/bin/sh\n", mode=0o755))
    entries.append(Entry("/cnb/lifecycle/lifecycle-suid", data=b"x", mode=0o4755))
    archive = write_tar(tmp_path / "image.tgz", entries)
    out = tmp_path / "layer.tar"
    result = run_cli("resolve", str(archive), "--save", str(out))
    assert result.returncode == 0, result.stderr
    with tarfile.open(out) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert "etc/evil" not in names and not any("buildpacks" in n for n in names)
    assert names[:2] == ["cnb", "cnb/lifecycle"]
    assert names[-1] == "cnb/lifecycle.toml"
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert all(n == "cnb" or n.startswith("cnb/lifecycle") for n in names)
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (315532801, 0, 0, "", "")
    modes = {m.name: m.mode for m in members}
    assert modes["cnb/lifecycle/lifecycle"] == 0o755
    assert modes["cnb/lifecycle/lifecycle-suid"] == 0o755  # setuid never rides along
    assert modes["cnb/lifecycle.toml"] == 0o644
    links = {m.name: m.linkname for m in members if m.issym()}
    assert links["cnb/lifecycle/analyzer"] == "lifecycle"
    with tarfile.open(out) as tar:
        toml = tar.extractfile("cnb/lifecycle.toml")
        assert toml is not None and toml.read() == descriptor()
    assert f"layer saved to  {out}" in result.stdout


def test_old_and_new_descriptors_give_the_same_model(tmp_path: Path) -> None:
    new = make_lifecycle(
        tmp_path / "new.tgz", desc=descriptor(style="new", buildpack=["0.2"], platform=["0.3"])
    )
    old = make_lifecycle(
        tmp_path / "old.tgz", desc=descriptor(style="old", buildpack=["0.2"], platform=["0.3"])
    )
    a, b = cnbkit.resolve_lifecycle(str(new)), cnbkit.resolve_lifecycle(str(old))
    assert a.apis == b.apis
    assert a.apis.buildpack.supported == ("0.2",) and a.apis.platform.supported == ("0.3",)
    assert a.version == b.version == "0.21.0"


def test_apis_table_wins_over_legacy_api(tmp_path: Path) -> None:
    both = descriptor(style="both", buildpack=["0.9", "0.10"], deprecated_buildpack=["0.2"])
    data = resolve_json(str(make_lifecycle(tmp_path / "l.tgz", desc=both)))
    assert data["apis"]["buildpack"] == {"supported": ["0.9", "0.10"], "deprecated": ["0.2"]}  # type: ignore[index]


def test_phases_as_regular_files(tmp_path: Path) -> None:
    data = resolve_json(str(make_lifecycle(tmp_path / "l.tgz", symlinks=False)))
    assert data["binaries"] == ALL_BINARIES


def _chain(count: int) -> list[Entry]:
    """``lifecycle/l1 -> l2 -> ... -> l<count> -> lifecycle``: ``count`` nested symlinks."""
    return [
        Entry(f"lifecycle/l{i}", "symlink", linkname=f"l{i + 1}" if i < count else "lifecycle")
        for i in range(1, count + 1)
    ]


def test_links_a_lifecycle_may_hold_inside_itself_are_accepted(tmp_path: Path) -> None:
    # The link rules refuse what leaves the lifecycle, and nothing else: phases as hardlinks or
    # as "./lifecycle", a subdirectory with links in and out of it, 40 nested symlinks (the
    # kernel's limit on one walk).
    entries = [
        Entry(e.name, "hardlink", linkname="lifecycle/lifecycle") if e.name == "lifecycle/detector" else e
        for e in lifecycle_entries()
    ]
    entries = [
        Entry(e.name, "symlink", linkname="./lifecycle") if e.name == "lifecycle/builder" else e
        for e in entries
    ]
    entries += [
        Entry("lifecycle/sub", "dir"),
        Entry("lifecycle/sub/deeper", "dir"),
        Entry("lifecycle/sub/deeper/up", "symlink", linkname="../../lifecycle"),
        Entry("lifecycle/sub/deeper/file", data=b"x"),
        Entry("lifecycle/in", "symlink", linkname="sub//deeper/./file"),
        Entry("lifecycle/s", "symlink", linkname="sub"),  # a link to a directory, walked through
        Entry("lifecycle/t", "symlink", linkname="s/deeper/file"),
        Entry("lifecycle/back", "symlink", linkname="../lifecycle/lifecycle"),  # through cnb: allowed
        Entry("lifecycle/+x", data=b"x"),  # a name that sorts before ".."
        Entry("lifecycle/to-x", "symlink", linkname="+x"),
        *_chain(40),
    ]
    data = resolve_json(str(write_tar(tmp_path / "l.tgz", entries)))
    assert data["binaries"] == ALL_BINARIES


@pytest.mark.parametrize("omit", [("rebaser", "extender"), ("extender",)])
def test_lifecycle_without_optional_phases(tmp_path: Path, omit: tuple[str, ...]) -> None:
    data = resolve_json(str(make_lifecycle(tmp_path / "l.tgz", omit=omit)))
    assert data["binaries"] == [b for b in ALL_BINARIES if b not in omit]


def test_windows_lifecycle_needs_windows_platform(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "win.tgz", windows=True)
    data = resolve_json(str(archive), "--platform", "windows/amd64")
    assert (data["os"], data["arch"]) == ("windows", "amd64")
    assert data["binaries"] == [f"{b}.exe" for b in ALL_BINARIES]
    on_linux = run_cli("resolve", str(archive), "--platform", "linux/amd64")
    assert on_linux.returncode == 1 and "--platform windows/amd64" in on_linux.stderr
    linux_archive = make_lifecycle(tmp_path / "linux.tgz")
    as_windows = run_cli("resolve", str(linux_archive), "--platform", "windows/amd64")
    assert as_windows.returncode == 1 and "not a Windows lifecycle" in as_windows.stderr


def test_platform_is_reported(tmp_path: Path) -> None:
    data = resolve_json(str(make_lifecycle(tmp_path / "l.tgz")), "--platform", "linux/aarch64")
    assert (data["os"], data["arch"]) == ("linux", "arm64")


def test_python_api(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    lifecycle = cnbkit.resolve_lifecycle("l.tgz", base_dir=tmp_path, platform="linux/arm64")
    assert lifecycle.version == "0.21.0"
    assert lifecycle.platform == cnbkit.Platform("linux", "arm64")
    assert lifecycle.blob.digest == sha256(archive) and lifecycle.blob.resolver == "file"
    layer = lifecycle.layer()
    data = b""
    while chunk := layer.read(65536):
        data += chunk
    assert "sha256:" + hashlib.sha256(data).hexdigest() == lifecycle.layer_digest
    assert len(data) == lifecycle.layer_size
    with pytest.raises(cnbkit.CnbkitError, match="no such file"):
        cnbkit.resolve_lifecycle(str(tmp_path / "missing.tgz"))


def test_warm_resolve_uses_the_cache_and_notices_changes(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    first = resolve_json(str(archive))
    cache = Path(os.environ["CNBKIT_CACHE_DIR"])
    assert len(list((cache / "lifecycles").iterdir())) == 1
    assert resolve_json(str(archive)) == first
    make_lifecycle(archive, desc=descriptor(version="0.22.1"))  # same path, new content
    changed = resolve_json(str(archive))
    assert changed["version"] == "0.22.1" and changed["digest"] != first["digest"]


def test_save_from_a_warm_cache(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    cnbkit.resolve_lifecycle(str(archive))  # layer kept in the cache
    cnbkit.resolve_lifecycle(str(archive), save=tmp_path / "one.tar")
    cnbkit.resolve_lifecycle(str(archive), save=tmp_path / "two.tar")
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "l.tgz", "one.tar", "two.tar"]


def test_example_lifecycle_resolves() -> None:
    example = Path(__file__).parent.parent / "examples" / "lifecycle"
    result = run_cli("resolve", str(example))
    assert result.returncode == 0, result.stderr
    assert "Lifecycle 0.21.0" in result.stdout


def test_a_cold_save_keeps_the_layer_in_the_cache_too(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    cnbkit.resolve_lifecycle(str(archive), save=tmp_path / "one.tar")
    [cached] = (tmp_path / "cache").glob("lifecycles/*/layer.tar")
    assert cached.stat().st_ino == (tmp_path / "one.tar").stat().st_ino  # a link: nothing copied
    cnbkit.resolve_lifecycle(str(archive), save=tmp_path / "two.tar")  # copied from the cache
    assert (tmp_path / "two.tar").read_bytes() == (tmp_path / "one.tar").read_bytes()
    assert (tmp_path / "two.tar").stat().st_ino != cached.stat().st_ino


def test_a_saved_layer_edited_in_place_is_not_served_from_the_cache(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    cnbkit.resolve_lifecycle(str(archive), save=tmp_path / "one.tar")
    good = (tmp_path / "one.tar").read_bytes()
    with open(tmp_path / "one.tar", "r+b") as saved:  # the same inode as the cached layer
        saved.seek(600)
        saved.write(b"X")
    cnbkit.resolve_lifecycle(str(archive), save=tmp_path / "two.tar")
    assert (tmp_path / "two.tar").read_bytes() == good  # rebuilt from the archive
    warm = cnbkit.resolve_lifecycle(str(archive))
    [cached] = (tmp_path / "cache").glob("lifecycles/*/layer.tar")
    with open(cached, "r+b") as layer:  # now two.tar's inode (the rebuild linked it), edited
        layer.seek(600)
        layer.write(b"Y")
    reader = warm.layer()
    data = b"".join(iter(lambda: reader.read(1 << 16), b""))
    assert data == good  # verified first, found wrong, rebuilt
