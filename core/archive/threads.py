"""Read-ahead threads: a producer fills a bounded queue while the caller reads, so that I/O,
hashing and inflating overlap on two cores (zlib, isal, hashlib and socket reads release the
GIL)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from .streams import CHUNK, Readable, close_stream

__all__ = ["ThreadedReader", "read_ahead", "side_by_side"]

_T = TypeVar("_T")

_QUEUE_CHUNKS = 64  # at most 8 MiB in flight between a producer thread and its reader
# How long close() waits for a producer. With an ``interrupt`` (a socket shut down) it ends in
# milliseconds; a producer blocked where nothing can wake it (a resume waiting for a stalled
# server's headers) is left behind (a daemon thread, its temp file removed by ``abandon``)
# rather than holding the process until some read timeout: Ctrl-C must stop within a second
# or two, cleanup included (an interrupted producer needs milliseconds).
_JOIN_SECONDS = 0.5


class _Cancelled(Exception):
    """Raised by ``put`` in the producer once the reader closed the stream."""


_END = object()


class ThreadedReader:
    """A readable stream fed by ``produce(put)`` running in a background thread.

    Whatever ``produce`` does per chunk (a socket read, a file read, hashing, a cache write)
    overlaps with what the reader does with the previous chunk: hashlib, zlib, isal and I/O
    release the GIL, so two cores both work. An exception in ``produce`` is raised by
    :meth:`read` in the reader's thread; the end of the stream is reported only after
    ``produce`` returned.

    Args:
        produce: called once in the thread with ``put``; it calls ``put(chunk)`` per chunk.
            ``put`` raises if the reader closed the stream early, which ends ``produce``.
        name: the thread's name.
        depth: how many chunks may wait between the two threads (memory: depth x 128 KiB).
        interrupt: called (from the closing thread) when the stream is closed while ``produce``
            still runs, to wake it from a blocking read: a download shuts its socket down.
        abandon: called (from the closing thread) when ``produce`` still runs after the wait
            that follows ``interrupt``: it removes what the producer would have removed.
    """

    def __init__(
        self,
        produce: Callable[[Callable[[bytes], None]], None],
        name: str = "cnbkit-reader",
        depth: int = _QUEUE_CHUNKS,
        interrupt: Callable[[], None] | None = None,
        abandon: Callable[[], None] | None = None,
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._cancelled = threading.Event()
        self._buffer = b""
        self._finished = False
        self._produce = produce
        self._interrupt = interrupt
        self._abandon = abandon
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _offer(self, item: Any) -> bool:
        """Queue ``item``, waiting for room; ``False`` once the reader has closed the stream."""
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _put(self, chunk: bytes) -> None:
        if not self._offer(chunk):
            raise _Cancelled

    def _run(self) -> None:
        try:
            self._produce(self._put)
            item: Any = _END
        except _Cancelled:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, raised there
            item = exc
        self._offer(item)

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes of what the producer put; ``b""`` once it has finished."""
        if not self._buffer:
            if self._finished:
                return b""
            item = self._queue.get()
            if item is _END:
                self._finished = True
                return b""
            if isinstance(item, BaseException):
                self._finished = True
                raise item
            self._buffer = item
        if 0 <= size < len(self._buffer):
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        else:
            data, self._buffer = self._buffer, b""
        return data

    def close(self) -> None:
        """Stop the producer if it is still running (a download then caches nothing).

        The producer is woken by ``interrupt`` and waited for (it removes its temp files on
        the way out), but never for more than a second: one that did not stop is ``abandon`` ed.
        """
        self._cancelled.set()
        if self._thread.is_alive() and self._interrupt is not None:
            self._interrupt()
        self._thread.join(_JOIN_SECONDS)
        if self._thread.is_alive() and self._abandon is not None:
            self._abandon()


def read_ahead(stream: Readable, name: str = "cnbkit-read-ahead") -> ThreadedReader:
    """Read (and so hash, for a :class:`HashingReader`) ``stream`` in a background thread."""

    def produce(put: Callable[[bytes], None]) -> None:
        try:
            while chunk := stream.read(CHUNK):
                put(chunk)
        finally:
            close_stream(stream)

    # A local read never stalls like a network does: a short queue is enough to overlap.
    return ThreadedReader(produce, name=name, depth=16)


def side_by_side(jobs: Sequence[Callable[[], _T]]) -> list[_T]:
    """Run ``jobs`` at once: the first here, the others each on a daemon thread (an interrupt
    ends the process without waiting for them, so a job must leave nothing half-done behind: the
    cache only ever renames finished files into place, a check only reads). Their results in
    order; the first failure in order is raised, after all ended. Worth it where the jobs spend
    their time in code that releases the GIL (hashing, inflating, I/O)."""
    if not jobs:
        return []
    results: list[_T | None] = [None] * len(jobs)
    failures: list[BaseException | None] = [None] * len(jobs)

    def run(index: int) -> None:
        try:
            results[index] = jobs[index]()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failures[index] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(1, len(jobs))]
    for thread in threads:
        thread.start()
    try:  # here, an interrupt (KeyboardInterrupt, SIGTERM's) goes straight up: no waiting
        results[0] = jobs[0]()
    except Exception as exc:  # noqa: BLE001 - raised below, in the targets' order
        failures[0] = exc
    for thread in threads:
        thread.join()
    for failure in failures:
        if failure is not None:
            raise failure
    return cast("list[_T]", results)
