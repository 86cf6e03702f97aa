"""The CLI's side of the process: signals and a stdout that may close under it.

SIGINT and SIGTERM unwind the main thread as one exception, so every ``finally`` on the way
removes its temp files and releases its locks (exit 130 or 143); output is flushed as it is
written, so a reader that went away (``| head -1``) is noticed where it can be handled (exit
141, quietly). Only :mod:`cnbkit.cli` uses this module: the library installs no handler.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TextIO

__all__ = [
    "EXIT_BROKEN_PIPE",
    "Interrupted",
    "OutputClosed",
    "emit",
    "handle_signals",
    "is_stdout",
    "stdout_closed",
]

EXIT_BROKEN_PIPE = 128 + 13  # what a tool killed by SIGPIPE exits with


class OutputClosed(Exception):
    """Whoever read stdout went away (``cnbkit ... | head -1``)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: unwinds like Ctrl-C, so every ``finally`` removes its files.

    Attributes:
        signum: the signal's number (the exit code is 128 plus it).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def emit(text: str, file: TextIO | None = None) -> None:
    """Write ``text`` and a newline to ``file`` (stdout), and flush now: a closed pipe shows
    here, where it can be handled, not at interpreter exit (which complains on stderr).

    Raises:
        OutputClosed: the reading end of the pipe is gone.
    """
    out = file or sys.stdout
    try:
        out.write(text + "\n")
        out.flush()
    except BrokenPipeError:
        raise OutputClosed from None


def is_stdout(path: str) -> bool:
    """Whether ``path`` is where stdout goes (``--save /dev/stdout``): the report then goes
    to stderr, so that it does not end up inside the tar stream."""
    try:
        st, out = os.stat(path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino)


_stopping = threading.Event()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # The first signal unwinds the main thread (temp files go, locks are released); a second
    # one while that cleanup runs means "now": leave at once with the same exit code.
    if _stopping.is_set():
        os._exit(128 + signum)
    _stopping.set()
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread.

    SIGTERM's default would end the process without removing a single temp file (``timeout``,
    CI cancellation and ``docker stop`` send it). Only in the main thread: an embedding program
    keeps its own handlers. SIGPIPE and SIGXFSZ are ignored by Python itself, so a closed pipe
    or ``ulimit -f`` is an ``EPIPE`` or ``EFBIG`` error that cnbkit names, not a silent kill.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    _stopping.clear()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stdout_closed() -> int:
    """Silence a stdout whose reader went away; return the exit code for it (141).

    Whatever is still buffered for the closed pipe must not be flushed at exit (that prints
    "Exception ignored ... BrokenPipeError"): stdout is pointed at /dev/null.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_BROKEN_PIPE
