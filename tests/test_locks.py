"""The cache's inter-process lock (``cnbkit.cache.locks.FileLock``): one holder at a time, a
non-blocking try that says no, a release that lets the next in, and a cache it cannot write
(no lock file can be made) that reads on unlocked. ``flock`` locks belong to an open file, so
two ``FileLock`` s in one process contend as two processes do."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest
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


def test_without_flock_the_filelock_package_excludes_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where fcntl cannot be imported (Windows) the filelock package locks instead; here it
    # stands in for that platform by hiding fcntl from the import.
    pytest.importorskip("filelock")
    monkeypatch.setitem(sys.modules, "fcntl", None)
    path = tmp_path / "blob.lock"
    first, second = FileLock(path), FileLock(path)
    assert _try(first, blocking=True) is True
    started = time.monotonic()
    assert _try(second) is False
    assert time.monotonic() - started < 0.5  # a non-blocking try answers at once
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(second.acquire(blocking=True)), daemon=True)
    waiter.start()
    time.sleep(1.5)  # a blocking acquire waits as long as it takes, not a second or so
    first.release()
    waiter.join(5)
    assert waited == [True]
    assert _try(first) is False
    second.release()
    assert _try(second) is True  # the same lock again: its filelock object is reused
    second.release()
