"""The deterministic tar of a directory (``directory_tar``), read back by two other readers.

A lifecycle given as a directory becomes a layer through this writer, so every byte matters:
each header must say exactly what the file is (kind, mode, size, link, the fixed owner and
mtime pack uses), data must be padded to whole blocks, the archive must end with exactly two
zero blocks, and a second name of a hard-linked file must be a tar hardlink. Generated trees
are written, then read with Python's ``tarfile`` and listed with GNU tar.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cnbkit.archive.streams import CHUNK
from cnbkit.archive.tarwrite import END_MARKER, directory_tar, tar_header
from cnbkit.errors import ArchiveError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BLOCK = 512
# Sizes at every edge of a block and of a read chunk (CHUNK is not a power of two).
SIZES = (0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 1000, 3 * BLOCK, CHUNK, CHUNK + 100)
NAMES = st.sampled_from(["a", "b", "bin", "lifecycle", "x" * 120])  # 120: past ustar's 100


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, str, int, str]]:
    """``(path, kind, size-or-mode, link)`` rows; the kinds: dir, file, symlink, hardlink."""
    rows: list[tuple[str, str, int, str]] = []
    dirs = [""]
    files: list[str] = []
    for _ in range(draw(st.integers(1, 8))):
        parent = draw(st.sampled_from(dirs))
        path = f"{parent}{draw(NAMES)}"
        if any(row[0] == path for row in rows):
            continue
        kind = draw(
            st.sampled_from(["dir", "file", "file", "symlink", "hardlink"] if files else ["dir", "file"])
        )
        if kind == "dir":
            dirs.append(path + "/")
            rows.append((path, kind, draw(st.sampled_from([0o755, 0o700])), ""))
        elif kind == "file":
            files.append(path)
            rows.append((path, kind, draw(st.sampled_from(SIZES)), ""))
        elif kind == "symlink":
            rows.append((path, kind, 0, draw(st.sampled_from(["a", "../b", "/cnb/lifecycle/x"]))))
        else:
            rows.append((path, kind, 0, draw(st.sampled_from(files))))
    return rows


def make_tree(root: Path, rows: list[tuple[str, str, int, str]]) -> None:
    for path, kind, value, link in rows:
        target = root / path
        if kind == "dir":
            target.mkdir()
            target.chmod(value)
        elif kind == "file":
            target.write_bytes(os.urandom(value))
            target.chmod(0o755 if value % 2 else 0o644)
        elif kind == "symlink":
            target.symlink_to(link)
        else:
            os.link(root / link, target)


def expected_members(root: Path) -> Iterator[tuple[str, bytes, int, int, str, bytes]]:
    """What each member must be, from the tree itself: name, type, mode, size, link, data.

    A folder's entries, names sorted, then each of its subfolders the same way; the second
    name of an inode is a hardlink."""
    first_name: dict[tuple[int, int], str] = {}

    def walk(folder: Path, prefix: str) -> Iterator[tuple[str, bytes, int, int, str, bytes]]:
        subfolders = []
        for name in sorted(os.listdir(folder)):
            path, rel = folder / name, prefix + name
            st_ = path.lstat()
            mode = stat.S_IMODE(st_.st_mode)
            if stat.S_ISDIR(st_.st_mode):
                yield rel + "/", tarfile.DIRTYPE, mode, 0, "", b""
                subfolders.append((path, rel + "/"))
            elif stat.S_ISLNK(st_.st_mode):
                yield rel, tarfile.SYMTYPE, mode, 0, os.readlink(path), b""
            elif (st_.st_dev, st_.st_ino) in first_name:
                yield rel, tarfile.LNKTYPE, mode, 0, first_name[(st_.st_dev, st_.st_ino)], b""
            else:
                first_name[(st_.st_dev, st_.st_ino)] = rel
                yield rel, tarfile.REGTYPE, mode, st_.st_size, "", path.read_bytes()
        for path, rel in subfolders:
            yield from walk(path, rel)

    yield from walk(root, "")


def check_archive(root: Path, data: bytes) -> None:
    """``data`` is exactly the tar ``root`` must give, byte layout included."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        members = archive.getmembers()
        found = [
            (m.name + ("/" if m.isdir() else ""), m.type, m.mode, m.size, m.linkname, _data(archive, m))
            for m in members
        ]
    assert found == list(expected_members(root))
    epoch = datetime(1980, 1, 1, 0, 0, 1, tzinfo=timezone.utc)  # pack's normalised mtime
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert datetime.fromtimestamp(member.mtime, timezone.utc) == epoch
    # Data padded to whole blocks, then exactly two zero blocks: nothing after them.
    end = members[-1].offset_data + -(-members[-1].size // BLOCK) * BLOCK if members else 0
    assert data[end:] == b"\0" * (2 * BLOCK)
    # GNU tar, another reader, lists the same names.
    listed = subprocess.run(["tar", "-tf", "-"], input=data, capture_output=True, check=True).stdout
    assert listed.decode().splitlines() == [name for name, *_ in found]


def _data(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if not member.isfile():
        return b""
    stream = archive.extractfile(member)
    assert stream is not None
    return stream.read()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=trees())
def test_a_generated_tree_tars_exactly_and_the_same_twice(rows: list[tuple[str, str, int, str]]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        make_tree(root, rows)
        data = b"".join(directory_tar(root))
        check_archive(root, data)
        assert b"".join(directory_tar(root)) == data


def test_every_size_at_a_block_or_chunk_edge_is_padded_exactly(tmp_path: Path) -> None:
    # Fixed, not generated: every edge in one archive, each file followed by another entry.
    make_tree(tmp_path, [(f"f{i:02}", "file", size, "") for i, size in enumerate(SIZES)])
    (tmp_path / "zz").mkdir()
    check_archive(tmp_path, b"".join(directory_tar(tmp_path)))


def test_a_second_name_of_a_file_is_a_hardlink(tmp_path: Path) -> None:
    make_tree(tmp_path, [("a", "file", 1000, ""), ("b", "hardlink", 0, "a"), ("c", "file", 10, "")])
    data = b"".join(directory_tar(tmp_path))
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert [(m.name, m.type, m.linkname) for m in archive] == [
            ("a", tarfile.REGTYPE, ""),
            ("b", tarfile.LNKTYPE, "a"),
            ("c", tarfile.REGTYPE, ""),
        ]


def test_a_file_that_shrinks_while_read_is_refused(tmp_path: Path) -> None:
    (tmp_path / "phase").write_bytes(b"x" * (CHUNK + 100))
    stream = directory_tar(tmp_path)
    next(stream)  # the header, with the size as it was
    (tmp_path / "phase").write_bytes(b"x" * 10)
    with pytest.raises(ArchiveError, match="changed size while it was being read"):
        list(stream)


def test_a_file_that_grows_while_read_is_taken_at_the_size_its_header_gave(tmp_path: Path) -> None:
    # The header is written first, so the data must be exactly that many bytes: what was
    # appended after it is not read, and the archive stays whole.
    original = os.urandom(CHUNK + 100)
    (tmp_path / "phase").write_bytes(original)
    stream = directory_tar(tmp_path)
    header = next(stream)
    with open(tmp_path / "phase", "ab") as grow:
        grow.write(b"y" * (2 * CHUNK))
    data = header + b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = archive.getmember("phase")
        assert _data(archive, member) == original
    assert data.endswith(b"\0" * (2 * BLOCK)) and len(data) % BLOCK == 0


def test_a_fifo_is_refused_and_a_socket_skipped(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "control.sock"))
        (tmp_path / "a").write_bytes(b"a")
        with tarfile.open(fileobj=io.BytesIO(b"".join(directory_tar(tmp_path)))) as archive:
            assert archive.getnames() == ["a"]
        os.mkfifo(tmp_path / "pipe")
        with pytest.raises(ArchiveError, match="pipe is a device node or FIFO"):
            list(directory_tar(tmp_path))


@pytest.mark.parametrize("name", ["a", "a/", "lifecycle/" + "x" * 120])
def test_a_directory_header_names_it_with_one_trailing_slash(name: str) -> None:
    # Readers add the slash back when listing, so the name as written is read from the header.
    header = tar_header(name, "dir", 0o755)
    with tarfile.open(fileobj=io.BytesIO(header + END_MARKER)) as archive:
        member = archive.next()
    assert member is not None
    written = member.pax_headers.get("path") or header[:100].rstrip(b"\0").decode()
    assert written == name.rstrip("/") + "/"


@pytest.mark.parametrize("kind", ["dir", "symlink", "hardlink"])
def test_only_a_file_header_carries_a_size(kind: str) -> None:
    # A hostile archive's symlink may claim a size: the layer written from it must not.
    header = tar_header("x", kind, 0o755, size=100, linkname="" if kind == "dir" else "y")
    with tarfile.open(fileobj=io.BytesIO(header + END_MARKER)) as archive:
        member = archive.next()
    assert member is not None and member.size == 0 and len(header) == BLOCK
