"""Issue 11: generated hostile archives, each resolved, each checked against the invariants.

Every archive is a valid lifecycle (release or image shape) with random members mixed in:
names with ``..``, NUL, control characters, absolute paths, duplicates (a phase replaced, a
directory replaced by a file), symlinks to symlinks and to directories, hardlinks before and
after their targets. For every one, either the validator refuses it with a one-line
:class:`CnbkitError` and leaves no file behind (not at ``save``, not in the cache), or:

* the saved layer extracts with GNU tar and with Python's ``tarfile``, to the same tree, and
  nothing lands outside ``cnb/`` (nor outside the extraction directory);
* every symlink of that tree, walked on the extracted files themselves, stays inside
  ``cnb/lifecycle`` at every step (absolute targets taken from the image root);
* the tree is exactly what the archive said: the last member of each name in the lifecycle
  directory, renamed under ``cnb/lifecycle``, with its data, its link target as written, its
  hardlink partner (the checked entry is the written entry);
* every phase binary the validator reported leads to a regular file in the tree.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cnbkit.archive.tarreader import normalize_name
from cnbkit.blob import FileBlob
from cnbkit.cache import Cache
from cnbkit.errors import CnbkitError
from cnbkit.lifecycle.validator import validate_lifecycle
from cnbkit.oci.platform import parse_platform
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lifecycles import lifecycle_entries
from tests.tarbytes import END, entry, pax

T = TypeVar("T")
EXAMPLES = 500  # the acceptance: at least 500 generated archives, under a minute
PLATFORM = parse_platform("linux/amd64")
LAYER_DIR = "cnb/lifecycle"


@dataclass(frozen=True)
class Member:
    """One tar member to write: kind is file, dir, symlink or hardlink."""

    name: str
    kind: str = "file"
    data: bytes = b""
    linkname: str = ""


_TYPES = {"file": b"0", "dir": b"5", "symlink": b"2", "hardlink": b"1"}


def tar_bytes(members: list[Member]) -> bytes:
    """The members as a tar; names and link names that a header cannot hold go in PAX records."""
    return b"".join(map(_member_bytes, members)) + END


@functools.lru_cache(maxsize=4096)
def _member_bytes(m: Member) -> bytes:
    name, link = m.name.encode(), m.linkname.encode()
    records = []
    if len(name) > 100 or b"\0" in name:
        records.append(("path", name))
        name = b"pax-name"
    if len(link) > 100 or b"\0" in link:
        records.append(("linkpath", link))
        link = b"pax-link"
    mode = 0o755 if m.kind == "dir" else 0o644
    data = m.data if m.kind == "file" else b""
    head = pax(records) if records else b""
    return head + entry(name, data, _TYPES[m.kind], mode=mode, linkname=link)


# -- the strategy -------------------------------------------------------------------------------

_SAFE = ["a", "b", "sub", "analyzer", "lifecycle", "launcher"]
_HOSTILE = ["..", ".", "", "x\x00y", "e\x1b[2J", "n\ny", "ü", "d\x7f"]
component = st.sampled_from(_SAFE * 4 + _HOSTILE)
relative = st.lists(component, min_size=1, max_size=4).map("/".join)


@st.composite
def members(draw: st.DrawFn) -> tuple[str, list[Member]]:
    """A valid lifecycle with 1-6 random members inserted anywhere."""
    shape = draw(st.sampled_from(["release", "image"]))
    top = "lifecycle" if shape == "release" else LAYER_DIR
    base = [
        Member(e.name, e.kind, e.data, e.linkname)
        for e in lifecycle_entries(shape=shape, symlinks=draw(st.booleans()))
    ]
    prefix = st.sampled_from(["", "", "", "/", "./"])
    name = st.one_of(
        st.builds(lambda p, r: f"{p}{top}/{r}", prefix, relative),
        st.builds(lambda p, r: f"{p}{top}/{r}", prefix, relative),
        st.builds(lambda r: f"other/{r}", relative),
        st.sampled_from([top, f"{top}/", "lifecycle", "/"]),
    )
    symlink_target = st.one_of(
        relative,
        relative,
        st.builds(lambda r: f"/{LAYER_DIR}/{r}", relative),
        st.sampled_from([".", "..", "/", "/etc/passwd", "lifecycle", f"/{LAYER_DIR}", "../lifecycle/a"]),
    )
    hardlink_target = st.one_of(st.builds(lambda r: f"{top}/{r}", relative), relative)
    member = st.one_of(
        st.builds(Member, name, st.just("file"), st.sampled_from([b"", b"data", b"other data", b"x" * 700])),
        st.builds(Member, name, st.just("dir")),
        st.builds(Member, name, st.just("symlink"), st.just(b""), symlink_target),
        st.builds(Member, name, st.just("hardlink"), st.just(b""), hardlink_target),
    )
    extra = draw(st.lists(st.tuples(st.integers(0, len(base)), member), min_size=1, max_size=6))
    result = list(base)
    for at, m in sorted(extra, key=lambda pair: -pair[0]):
        result.insert(max(at, 1), m)  # after the descriptor (image: after cnb/)
    return shape, result


# -- what the layer must be ------------------------------------------------------------------


def expected_tree(shape: str, archive: list[Member]) -> dict[str, Member]:
    """The last member of each name in the lifecycle directory, by its name in the layer."""
    top = "lifecycle" if shape == "release" else LAYER_DIR
    final: dict[str, Member] = {}
    for m in archive:
        name = normalize_name(m.name)
        if shape == "release" and name == top and m.kind != "dir":
            continue  # a root-level file is never lifecycle (a root link is refused)
        if name == top or name.startswith(top + "/"):
            final[LAYER_DIR + name[len(top) :]] = m
    return final


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str, str]]:
    """Every path under ``root``: (type, data or link target, the first name of its inode)."""
    found: dict[str, tuple[str, bytes | str, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            st_ = path.lstat()
            if path.is_symlink():
                found[rel] = ("symlink", os.readlink(path), 0)
            elif path.is_dir():
                found[rel] = ("dir", b"", 0)
            else:
                assert path.is_file(), rel
                found[rel] = ("file", path.read_bytes(), st_.st_ino)
    first: dict[int, str] = {}
    for rel in sorted(found):
        if found[rel][2]:
            first.setdefault(found[rel][2], rel)
    return {rel: (kind, value, first.get(ino, "")) for rel, (kind, value, ino) in found.items()}


def walk_link(
    tree: dict[str, tuple[str, bytes | str, str]], name: str, depth: int = 0, top: str = LAYER_DIR
) -> str:
    """Where the symlink ``name`` of the extracted tree leads, checking that every step stays
    inside ``top`` or one of its ancestors, and the end inside ``top``."""
    assert depth <= 40, f"symlink loop through {name}"
    parts_of_top = top.split("/")
    passes = {"/".join(parts_of_top[:i]) for i in range(len(parts_of_top))}
    target = tree[name][1]
    assert isinstance(target, str)
    parts = [] if target.startswith("/") else name.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            parts = parts[:-1]
        else:
            parts.append(part)
            here = "/".join(parts)
            if here in tree and tree[here][0] == "symlink":
                parts = [p for p in walk_link(tree, here, depth + 1, top).split("/") if p]
        where = "/".join(parts)
        assert where in passes or where == top or where.startswith(top + "/"), (
            f"symlink {name} -> {target} passes {where!r}"
        )
    where = "/".join(parts)
    assert where == top or where.startswith(top + "/"), f"symlink {name} -> {target} ends at {where}"
    return where


def check_layer(layer: Path, box: Path, shape: str, archive: list[Member], binaries: tuple[str, ...]) -> None:
    gnu, py = box / "gnu" / "root", box / "py" / "root"
    gnu.mkdir(parents=True)
    py.mkdir(parents=True)
    result = subprocess.run(["tar", "-xf", str(layer), "-C", str(gnu)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr
    with tarfile.open(layer) as tar:
        tar.extractall(py, filter="tar")  # our own output: the invariants below check it anyway
    assert os.listdir(box / "gnu") == ["root"] and os.listdir(box / "py") == ["root"]
    tree = snapshot(gnu)
    assert tree == snapshot(py), "GNU tar and tarfile extract different trees"
    assert set(os.listdir(gnu)) == {"cnb"}

    final = expected_tree(shape, archive)
    wanted = {"cnb", LAYER_DIR, "cnb/lifecycle.toml"} | set(final)
    for name in list(wanted):
        while "/" in name:
            name = name.rpartition("/")[0]
            wanted.add(name)
    assert set(tree) == wanted
    for name, m in final.items():
        kind, value, group = tree[name]
        if name == LAYER_DIR or m.kind == "dir":
            assert kind == "dir", name
        elif m.kind == "symlink":
            assert (kind, value) == ("symlink", m.linkname), name  # as written, byte for byte
        elif m.kind == "file":
            assert (kind, value) == ("file", m.data), name
        else:  # a hardlink: the same file as its target's final member
            target = (
                LAYER_DIR
                + normalize_name(m.linkname)[len("lifecycle" if shape == "release" else LAYER_DIR) :]
            )
            assert final[target].kind == "file", name
            assert (kind, value) == ("file", final[target].data), name
            assert group == tree[target][2], name
    for name, (kind, _, _) in tree.items():
        if kind == "symlink":
            walk_link(tree, name)
    for phase in binaries:
        name = f"{LAYER_DIR}/{phase}"
        if tree[name][0] == "symlink":
            name = walk_link(tree, name)
        assert tree[name][0] == "file", phase


# -- the property ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """How the generated archives ended, so the test knows both outcomes were exercised."""

    accepted: int = 0
    refused: int = 0


def _files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.parent.name != "locks"
    )


def _resolve_one(work: Path, cache: Cache, tally: Tally, shape: str, archive: list[Member]) -> None:
    path = work / "l.tar"
    path.write_bytes(tar_bytes(archive))
    save = work / "save" / "layer.tar"
    save.parent.mkdir(exist_ok=True)
    before = _files(cache.root)
    try:
        lifecycle = validate_lifecycle(FileBlob(path), PLATFORM, cache, save=save)
    except CnbkitError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(path)), message
        assert os.listdir(save.parent) == [], "a refusal left a file beside --save"
        assert _files(cache.root) == before, "a refusal left a file in the cache"
        tally.refused += 1
        return
    assert os.listdir(save.parent) == ["layer.tar"]
    assert not list((cache.root / "tmp").glob("*")), "a success left a temp file in the cache"
    box = work / "box"
    try:
        check_layer(save, box, shape, archive, lifecycle.binaries)
    finally:
        shutil.rmtree(box)
        save.unlink()
    tally.accepted += 1


def run_generated(strategy: st.SearchStrategy[T], examples: int, one: Callable[[Tally, T], None]) -> None:
    """Run ``one`` on ``examples`` generated values (the same ones every run), then check that
    both outcomes were common, or the invariants were barely tested."""
    tally = Tally()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(generated: T) -> None:
        one(tally, generated)

    run()
    assert tally.accepted + tally.refused >= examples, tally
    assert tally.accepted >= examples // 10 and tally.refused >= examples // 10, tally


def test_generated_archives_keep_every_promise(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    run_generated(
        members(), EXAMPLES, lambda tally, generated: _resolve_one(tmp_path, cache, tally, *generated)
    )


def iter_cases() -> Iterator[tuple[str, list[Member], bool]]:
    """Hand-picked archives (shape, members, accepted?), checked the same way."""
    release = [Member(e.name, e.kind, e.data, e.linkname) for e in lifecycle_entries()]
    link_first = [
        Member("lifecycle/aa", "hardlink", linkname="lifecycle/zz"),
        Member("lifecycle/zz", data=b"z"),
    ]
    yield "release", [*release, *link_first], True
    yield (
        "release",
        [*release, Member("lifecycle/analyzer", "symlink", linkname="/cnb/lifecycle/lifecycle")],
        True,
    )
    dir_then_file = [
        Member("lifecycle/d", "dir"),
        Member("lifecycle/d/x", data=b"1"),
        Member("lifecycle/d", data=b"f"),
    ]
    yield "release", [*release, *dir_then_file], False
    up = [Member("lifecycle/s", "symlink", linkname="."), Member("lifecycle/t", "symlink", linkname="s/s/..")]
    yield "release", [*release, *up], False


def test_hand_picked_archives(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    for shape, archive, accepted in iter_cases():
        tally = Tally()
        _resolve_one(tmp_path, cache, tally, shape, archive)
        assert tally == (Tally(1, 0) if accepted else Tally(0, 1)), archive
