"""Atomic writes: a temp file beside the target, renamed over it only once complete.

A reader (another process, the user) never sees a half-written file, and a failure leaves
nothing behind: neither at the target nor beside it.

The one durability rule for every file cnbkit writes into place (the cache's records and
blobs, OCI layouts, archives, ``--save``): atomic against readers and against this process
dying, and no ``fsync``. What is written is either re-fetchable (the cache) or
content-addressed and checked against its digest when read again (blobs, layouts), so a file
that a power loss truncates is found and refused, never misread; an ``fsync`` per file would
cost every warm resolve and every layout a disk flush for no such gain. go-containerregistry's
layout writer makes the same choice (a temp file renamed into place).
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import WriteError

__all__ = ["atomic_path", "atomic_writer", "beside", "write_atomically"]


def beside(target: Path, suffix: str = "part") -> Path:
    """A fresh hidden path in ``target``'s directory (same filesystem, so rename is atomic)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{suffix}")


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str = "part") -> Iterator[Path]:
    """Yield a temp path beside ``target``; on a clean exit it is renamed to ``target``.

    Whatever happens, the temp path is gone afterwards.

    Raises:
        WriteError: the rename failed.
    """
    tmp = beside(target, suffix)
    try:
        yield tmp
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise WriteError.from_os(target, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically.

    Raises:
        WriteError: the file or its temp file cannot be written.
    """
    with atomic_path(target) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise WriteError.from_os(target, exc) from None


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file whose bytes appear at ``path`` only once the ``with`` block ends cleanly.

    A new path or a regular file is written beside it and renamed into place (a failure leaves
    nothing, neither at ``path`` nor beside it). A FIFO or a character device (``/dev/stdout``
    on a pipe), or a symlink to one, cannot be replaced: it is streamed into as the bytes come.

    Raises:
        WriteError: the directory does not exist, ``path`` is a directory or a socket, or a
            write fails (the message names the path and the cause).
    """
    target = Path(path).absolute()
    try:
        mode: int | None = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise WriteError.from_os(target, exc) from None
    if mode is not None and (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        try:
            with open(target, "wb") as stream:
                yield stream
        except OSError as exc:
            raise WriteError.from_os(target, exc) from None
        return
    if mode is not None and not stat.S_ISREG(mode):
        raise WriteError(f"cannot write {target}: it is neither a file, a FIFO nor a character device")
    if not target.parent.is_dir():
        raise WriteError(f"cannot write {target}: the directory {target.parent} does not exist")
    with atomic_path(target) as tmp:
        try:
            with open(tmp, "wb") as file:
                yield file
        except OSError as exc:
            raise WriteError.from_os(target, exc) from None
