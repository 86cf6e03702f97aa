"""Issue 17, item 1: generated buildpack archives, each read as the builder reads it.

Every archive is a valid buildpack (test/one@1.0.0) with random members mixed in: names with
``..``, absolute names, duplicates, symlinks to ``..``, to the lifecycle, to absolute paths and
to each other, entries under symlinked directories, hardlinks before and after their targets.
For every one, either it is refused with a one-line :class:`CnbkitError` naming the archive,
or the module's layer extracts with GNU tar and:

* every path of the extracted tree is the module's directory
  ``cnb/buildpacks/test_one/1.0.0``, inside it, or one of its parents;
* every symlink of that tree, walked on the extracted files themselves, stays inside the
  module's directory at every step (its parents may be passed), and ends inside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from cnbkit.blob import FileBlob
from cnbkit.builder.buildpack import read_module
from cnbkit.errors import CnbkitError
from hypothesis import strategies as st

from tests.test_archive_properties import Member, Tally, run_generated, snapshot, tar_bytes, walk_link

EXAMPLES = 300  # ten seconds: the lifecycle's property test covers the tar reader at length
ROOT = "cnb/buildpacks/test_one/1.0.0"
BASE = [
    Member("buildpack.toml", data=b'api = "0.10"\n[buildpack]\n  id = "test/one"\n  version = "1.0.0"\n'),
    Member("bin", "dir"),
    Member("bin/detect", data=b"#!/bin/sh\nexit 0\n"),
    Member("bin/build", data=b"#!/bin/sh\nexit 0\n"),
]

component = st.sampled_from(["a", "b", "sub", "bin", "esc", "a", "b", "sub", "..", "."])
relative = st.lists(component, min_size=1, max_size=3).map("/".join)
name = st.one_of(
    relative,
    relative,
    st.builds(lambda r: f"/{r}", relative),
    st.builds(lambda r: f"./{r}", relative),
)
symlink_target = st.one_of(
    relative,
    relative,
    st.builds(lambda r: f"../1.0.0/{r}", relative),
    st.builds(lambda r: f"/{ROOT}/{r}", relative),
    st.sampled_from(
        [".", "..", "../..", "../../../lifecycle", "/cnb/lifecycle", "/cnb", "/nonexistent", "../2.0.0"]
    ),
)
member = st.one_of(
    st.builds(Member, name, st.just("file"), st.sampled_from([b"", b"data", b"x" * 700])),
    st.builds(Member, name, st.just("dir")),
    st.builds(Member, name, st.just("symlink"), st.just(b""), symlink_target),
    st.builds(Member, name, st.just("symlink"), st.just(b""), symlink_target),
    st.builds(Member, name, st.just("hardlink"), st.just(b""), relative),
)


@st.composite
def archives(draw: st.DrawFn) -> list[Member]:
    """The valid buildpack with 1-5 random members inserted anywhere after its descriptor."""
    extra = draw(st.lists(st.tuples(st.integers(1, len(BASE)), member), min_size=1, max_size=5))
    result = list(BASE)
    for at, m in sorted(extra, key=lambda pair: -pair[0]):
        result.insert(at, m)
    return result


def check_layer(layer: Path, box: Path) -> None:
    """Extract the module's layer with GNU tar; check where every path and symlink leads."""
    into = box / "root"
    into.mkdir(parents=True)
    result = subprocess.run(["tar", "-xf", str(layer), "-C", str(into)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert os.listdir(box) == ["root"], "GNU tar wrote beside the extraction directory"
    tree = snapshot(into)
    parents = {"cnb", "cnb/buildpacks", "cnb/buildpacks/test_one"}
    for path, (kind, _, _) in tree.items():
        assert path in parents or path == ROOT or path.startswith(ROOT + "/"), path
        if path in parents:
            assert kind == "dir", path
        elif kind == "symlink":
            walk_link(tree, path, top=ROOT)


def _read_one(work: Path, tally: Tally, archive: list[Member]) -> None:
    path = work / "bp.tar"
    path.write_bytes(tar_bytes(archive))
    try:
        module = read_module(FileBlob(path))
    except CnbkitError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(path)), message
        tally.refused += 1
        return
    assert module.root == ROOT
    layer = work / "layer.tar"
    layer.write_bytes(b"".join(module.layer_chunks()))
    box = work / "box"
    try:
        check_layer(layer, box)
    finally:
        shutil.rmtree(box)
    tally.accepted += 1


def test_generated_buildpacks_stay_in_their_directory(tmp_path: Path) -> None:
    run_generated(archives(), EXAMPLES, lambda tally, archive: _read_one(tmp_path, tally, archive))
