"""Writing deterministic tar streams: fixed mtime, root owner, sorted entries.

Used for the normalised lifecycle layer and for tarring a directory on the fly. Same input,
same bytes: a builder made twice from one lifecycle gets the same layer digest.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ..errors import ArchiveError
from .streams import CHUNK

__all__ = ["END_MARKER", "NORMALIZED_MTIME", "directory_tar", "padding", "tar_header"]

NORMALIZED_MTIME = 315532801  # 1980-01-01T00:00:01Z, as pack and the lifecycle image use
_BLOCK = 512
END_MARKER = b"\0" * (2 * _BLOCK)  # two zero blocks end a tar archive
_TYPES = {"file": b"0", "dir": b"5", "symlink": b"2", "hardlink": b"1"}  # tarfile's REGTYPE ...


def tar_header(name: str, kind: str, mode: int, size: int = 0, linkname: str = "") -> bytes:
    """One normalised tar header (PAX only when a field needs it, e.g. a long name).

    Directories get a trailing ``/`` as Go's archive/tar and Docker write them; owner is
    root (0:0, no names) and the mtime is :data:`NORMALIZED_MTIME`.
    """
    import tarfile  # only when a header is written: a warm resolve writes none

    info = tarfile.TarInfo(name + "/" if kind == "dir" and not name.endswith("/") else name)
    info.type = _TYPES[kind]
    info.mode = mode
    info.size = size if kind == "file" else 0
    info.linkname = linkname
    info.mtime = NORMALIZED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def padding(size: int) -> bytes:
    """The zero bytes that pad ``size`` bytes of entry data to a whole 512-byte block."""
    return b"\0" * (-size % _BLOCK)


def _dir_entries(root: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    # A folder's entries, names sorted, then each of its subfolders the same way: parents
    # come before children, and the order does not depend on the filesystem.
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        names = sorted(os.listdir(folder))
        children = []
        for name in names:
            path = folder / name
            rel = f"{prefix}{name}"
            st = path.lstat()
            yield rel, path, st
            if stat.S_ISDIR(st.st_mode):
                children.append((f"{rel}/", path))
        stack.extend(reversed(children))


def directory_tar(root: Path) -> Iterator[bytes]:
    """Yield a deterministic tar of the directory ``root``'s contents, built on the fly.

    Names are relative (``lifecycle.toml``, ``lifecycle/detector``) with no root entry, as
    pack makes them; modes are kept, symlinks stay symlinks, a second name of a hard-linked
    file becomes a tar hardlink, sockets are skipped.

    Raises:
        ArchiveError: the directory holds a device node or a FIFO.
    """
    seen_inodes: dict[tuple[int, int], str] = {}
    for rel, path, st in _dir_entries(root):
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            yield tar_header(rel, "dir", mode)
        elif stat.S_ISLNK(st.st_mode):
            yield tar_header(rel, "symlink", mode, linkname=os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in seen_inodes:
                yield tar_header(rel, "hardlink", mode, linkname=seen_inodes[key])
                continue
            seen_inodes[key] = rel
            yield tar_header(rel, "file", mode, st.st_size)
            written = 0
            with open(path, "rb") as fh:
                while written < st.st_size and (chunk := fh.read(min(CHUNK, st.st_size - written))):
                    written += len(chunk)
                    yield chunk
            if written != st.st_size:
                raise ArchiveError(f"{path} changed size while it was being read")
            yield padding(written)
        elif stat.S_ISSOCK(st.st_mode):
            continue
        else:
            raise ArchiveError(f"{path} is a device node or FIFO; a lifecycle holds none")
    yield END_MARKER
