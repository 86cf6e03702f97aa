"""Inter-process locks on files: one download per URL or blob across processes."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Protocol

__all__ = ["FileLock", "Releasable"]

# A lock file that cannot be created or opened for writing: a read-only cache (a CI image
# with a pre-filled cache, a read-only mount) or someone else's.
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT)


class Releasable(Protocol):
    """A held lock."""

    def release(self) -> None:
        """Let the next process in."""


class FileLock:
    """An exclusive lock on a file: ``flock`` where there is one, else the filelock package.

    ``flock`` costs nothing to import (filelock adds about 11 ms to every warm resolve) and is
    held by the open file, not by a thread, so any thread may release it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._fallback: Any = None

    def acquire(self, *, blocking: bool) -> bool:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            import filelock

            self._fallback = self._fallback or filelock.FileLock(str(self._path), thread_local=False)
            try:
                self._fallback.acquire(timeout=-1 if blocking else 0)
            except filelock.Timeout:
                return False
            return True
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in _READ_ONLY:
                raise
            try:  # flock needs no write access: an existing lock file still excludes
                fd = os.open(self._path, os.O_RDONLY)
            except OSError:
                # Nothing to lock with. A cache this process cannot write is one it cannot
                # spoil either: a warm resolve reads on; whatever needs a write fails at that
                # write, naming it (a WriteError), never here.
                return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the next process in."""
        if self._fallback is not None:
            self._fallback.release()
        elif self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock

    def __del__(self) -> None:
        # A blob dropped unopened takes its download's lock with it: never leave it held.
        self.release()
