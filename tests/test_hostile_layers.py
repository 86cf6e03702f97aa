"""Issue 11, the lifecycle half: what the validator checks is what the layer holds, and the
layer extracts with GNU tar; links are resolved, not read lexically; odd paths work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import one_line_error, run_cli
from tests.lifecycles import Entry, lifecycle_entries, make_lifecycle, make_lifecycle_dir, write_tar


def _link(name: str, target: str) -> Entry:
    return Entry(name, "symlink", linkname=target)


def extract(layer: Path, into: Path) -> Path:
    """Extract ``layer`` with GNU tar (as a container runtime would), failing on any error."""
    into.mkdir()
    result = subprocess.run(["tar", "-xf", str(layer), "-C", str(into)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return into


def refused(tmp_path: Path, entries: list[Entry]) -> str:
    """Resolve ``entries`` with --save; assert the one-line refusal left nothing; return it."""
    archive = write_tar(tmp_path / "l.tgz", entries)
    out = tmp_path / "out"
    out.mkdir()
    line = one_line_error(run_cli("resolve", str(archive), "--save", str(out / "layer.tar")))
    assert line.startswith(f"error: {archive}: "), line
    assert list(out.iterdir()) == []
    return line


# -- symlink chains a lexical check misses ------------------------------------------------------

CHAINS: dict[str, tuple[list[Entry], str]] = {
    # a is the lifecycle dir, so b = a/.. is cnb, c = b/.. the root, d the host's passwd:
    # each target alone normalises to a path inside cnb/lifecycle
    "chain through a link to '.'": (
        [_link("lifecycle/a", "."), _link("lifecycle/b", "a/.."), _link("lifecycle/c", "b/..")],
        "symlink 'lifecycle/b' -> 'a/..' leaves the lifecycle directory",
    ),
    "dot chain to /etc/passwd": (
        [_link("lifecycle/a", "."), _link("lifecycle/d", "a/a/a/../../../etc/passwd")],
        "symlink 'lifecycle/d' -> 'a/a/a/../../../etc/passwd' leaves the lifecycle directory",
    ),
    "through another symlinked directory": (
        [
            Entry("lifecycle/sub", "dir"),
            _link("lifecycle/sub/up", ".."),  # the lifecycle dir itself: harmless alone
            _link("lifecycle/x", "sub/up/../etc"),  # looks like lifecycle/sub/etc
        ],
        "symlink 'lifecycle/x' -> 'sub/up/../etc' leaves the lifecycle directory",
    ),
    "up from a link to '.'": (
        [_link("lifecycle/bin", "."), _link("lifecycle/opt", "bin/../../usr/bin")],
        "symlink 'lifecycle/opt' -> 'bin/../../usr/bin' leaves the lifecycle directory",
    ),
    "symlink loop": (
        [_link("lifecycle/p", "q"), _link("lifecycle/q", "p")],
        "is part of a symlink loop",
    ),
}


@pytest.mark.parametrize("case", CHAINS)
def test_symlink_chains_are_resolved_not_read_lexically(tmp_path: Path, case: str) -> None:
    extra, expected = CHAINS[case]
    line = refused(tmp_path, lifecycle_entries() + extra)
    assert expected in line, line


def test_a_chain_that_stays_inside_is_kept_and_extracts(tmp_path: Path) -> None:
    entries = [e for e in lifecycle_entries() if e.name != "lifecycle/analyzer"] + [
        _link("lifecycle/bin", "."),
        _link("lifecycle/sbin", "bin/bin"),
        _link("lifecycle/analyzer", "sbin/../lifecycle/bin/lifecycle"),
    ]
    archive = write_tar(tmp_path / "l.tgz", entries)
    result = run_cli("resolve", str(archive), "--save", str(tmp_path / "layer.tar"), "-q")
    assert result.returncode == 0, result.stderr
    root = extract(tmp_path / "layer.tar", tmp_path / "x")
    analyzer = root / "cnb/lifecycle/analyzer"
    assert analyzer.resolve() == (root / "cnb/lifecycle/lifecycle").resolve()
    assert analyzer.read_bytes() == b"#!/bin/sh\necho lifecycle\n"


@pytest.mark.parametrize(
    ("shape", "name", "target", "expected"),
    [
        ("release", "lifecycle", "/usr/lib", "'lifecycle' is a symlink to '/usr/lib', but the lifecycle"),
        ("release", "lifecycle", ".", "expected in a real directory 'lifecycle/'"),
        ("image", "cnb/lifecycle", "../usr", "the lifecycle directory 'cnb/lifecycle' is a symlink"),
        ("image", "cnb/lifecycle", "../cnb/lifecycle", "the lifecycle directory 'cnb/lifecycle' is a sym"),
        ("image", "cnb", "/", "'cnb' is a symlink to '/', but the lifecycle is expected in a real"),
    ],
)
def test_lifecycle_directory_given_as_a_symlink(
    tmp_path: Path, shape: str, name: str, target: str, expected: str
) -> None:
    entries = [_link(name, target) if e.name == name else e for e in lifecycle_entries(shape=shape)]
    assert any(e.kind == "symlink" and e.name == name for e in entries)
    line = refused(tmp_path, entries)
    assert expected in line, line


def test_entry_under_a_file_is_refused(tmp_path: Path) -> None:
    # tar cannot extract lifecycle/f/x once lifecycle/f is a file: refuse rather than ship it
    extra = [Entry("lifecycle/f", data=b"x"), Entry("lifecycle/f/x", data=b"y")]
    line = refused(tmp_path, lifecycle_entries() + extra)
    assert "entry 'lifecycle/f/x' lies under the file 'lifecycle/f'" in line, line


# -- hardlinks: sorted layers still extract -------------------------------------------------------


def _inode_groups(root: Path) -> dict[int, set[str]]:
    groups: dict[int, set[str]] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            groups.setdefault(path.stat().st_ino, set()).add(str(path.relative_to(root)))
    return {ino: names for ino, names in groups.items() if len(names) > 1}


@pytest.mark.parametrize("order", ["target first", "link first"])
def test_hardlink_sorted_before_its_target_extracts(tmp_path: Path, order: str) -> None:
    target = Entry("lifecycle/zz/tool", data=b"shared data", mode=0o755)
    links = [
        Entry("lifecycle/aa", "hardlink", linkname="lifecycle/zz/tool"),
        Entry("lifecycle/mm", "hardlink", linkname="lifecycle/zz/tool"),
    ]
    extra = [target, *links] if order == "target first" else [*links, target]
    archive = write_tar(tmp_path / "l.tgz", [*lifecycle_entries(), Entry("lifecycle/zz", "dir"), *extra])
    result = run_cli("resolve", str(archive), "--save", str(tmp_path / "layer.tar"), "-q")
    assert result.returncode == 0, result.stderr
    root = extract(tmp_path / "layer.tar", tmp_path / "x")
    names = {"cnb/lifecycle/aa", "cnb/lifecycle/mm", "cnb/lifecycle/zz/tool"}
    assert list(_inode_groups(root).values()) == [names]
    for name in names:
        assert (root / name).read_bytes() == b"shared data"
    assert os.stat(root / "cnb/lifecycle/zz/tool").st_mode & 0o777 == 0o755


def test_hardlinks_from_a_directory_input_extract(tmp_path: Path) -> None:
    root = make_lifecycle_dir(tmp_path / "dir")
    (root / "lifecycle/zz").write_bytes(b"linked")
    (root / "lifecycle/aa").mkdir()
    os.link(root / "lifecycle/zz", root / "lifecycle/aa/first")  # sorts before zz
    result = run_cli("resolve", str(root), "--save", str(tmp_path / "layer.tar"), "-q")
    assert result.returncode == 0, result.stderr
    out = extract(tmp_path / "layer.tar", tmp_path / "x")
    assert list(_inode_groups(out).values()) == [{"cnb/lifecycle/aa/first", "cnb/lifecycle/zz"}]
    assert (out / "cnb/lifecycle/aa/first").read_bytes() == b"linked"


# -- a path that is not UTF-8 -------------------------------------------------------------------


def test_archive_at_a_path_that_is_not_utf8(tmp_path: Path) -> None:
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/\xff"))
    folder.mkdir()
    archive = make_lifecycle(folder / os.fsdecode(b"l\xfe.tgz"))
    save = folder / "layer.tar"
    result = run_cli("resolve", str(archive), "--save", str(save))
    assert result.returncode == 0, result.stderr
    shown = f"{tmp_path}/\\xff/l\\xfe.tgz"
    assert f"source          {shown} (resolver: file)" in result.stdout
    assert "\\xff/layer.tar" in result.stdout and "\udcff" not in result.stdout
    assert save.exists()
    again = run_cli("resolve", str(archive), "--json")  # warm: the stamp of a non-UTF-8 path
    assert again.returncode == 0, again.stderr
    missing = one_line_error(run_cli("resolve", os.fsdecode(bytes(tmp_path) + b"/\xff/no\x1b.tgz")))
    assert missing == f"error: {tmp_path}/\\xff/no\\x1b.tgz: no such file or directory", missing
