"""The cache's inter-process lock (``cnbkit.cache.locks.FileLock``): one holder at a time, a
non-blocking try that says no, a release that lets the next in, and a cache it cannot write
(no lock file can be made) that reads on unlocked. ``flock`` locks belong to an open file, so
two ``FileLock`` s in one process contend as two processes do."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cnbkit.cache.locks import FileLock


def _try(lock: FileLock, blocking: bool = False) -> bool | None:
    """``lock.acquire`` in a thread: its answer, or ``None`` if it is still waiting after 5 s."""
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(lock.acquire(blocking=blocking)), daemon=True)
    thread.start()
    thread.join(5)
    return answer[0] if answer else None


def test_one_holder_at_a_time_and_release_lets_the_next_in(tmp_path: Path) -> None:
    path = tmp_path / "blob.lock"
    first, second = FileLock(path), FileLock(path)
    assert _try(first, blocking=True) is True
    assert _try(second) is False  # a non-blocking try says no at once, never waits
    first.release()
    assert _try(second) is True
    assert _try(first) is False
    second.release()
    assert _try(first, blocking=True) is True
    first.release()
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644 & ~umask  # no one else may write it


def test_a_lock_that_cannot_be_made_is_not_held_and_not_an_error(tmp_path: Path) -> None:
    # A cache this process cannot write is one it cannot spoil: the read goes on unlocked.
    lock = FileLock(tmp_path / "no-such-directory" / "blob.lock")
    assert _try(lock, blocking=True) is True
    lock.release()
