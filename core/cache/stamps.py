"""Remembering local files by a stat stamp: a file whose size, times and inode are unchanged
since it was read needs no second read (its digest, and so its validated lifecycle, is known)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import WriteError
from .records import FileStamp
from .store import Cache

__all__ = ["remember_digest", "remembered_digest"]


def _key(path: Path) -> tuple[str, str]:
    st = path.stat()
    return f"file:{path.resolve()}", f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def remembered_digest(cache: Cache, path: Path) -> str | None:
    """The digest ``path`` had when it was last read, if it has not changed since."""
    with contextlib.suppress(OSError):
        key, stamp = _key(path)
        entry = cache.recall(FileStamp, key)
        if entry is not None and entry.stamp == stamp:
            return entry.digest
    return None


def remember_digest(cache: Cache, path: Path, digest: str, size: int) -> None:
    """Record that ``path`` has ``digest`` now (nothing for files inside the cache itself, and
    nothing when the cache is read-only: it is only an optimisation)."""
    if cache.root in path.parents:
        return
    with contextlib.suppress(OSError, WriteError):
        key, stamp = _key(path)
        cache.remember(FileStamp(key, stamp=stamp, digest=digest, size=size))
