"""Atomic writes: a temp file beside the target, renamed over it only once complete.

A reader (another process, the user) never sees a half-written file, and a failure leaves
nothing behind: neither at the target nor beside it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import WriteError

__all__ = ["atomic_path", "beside", "write_atomically"]


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
