"""The byte-stream protocol the core builds on, and the small adapters every stage shares.

Everything streams in small chunks (buffers up to 128 KiB avoid an mmap per read on glibc;
see docs/architecture.md), so memory stays flat however large the artifact is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Protocol

__all__ = ["CHUNK", "ChunkReader", "Prefixed", "Readable", "Wrapper", "close_stream", "drain_into"]

CHUNK = 128 * 1024 - 64  # below glibc's mmap threshold once the bytes object header is added


class Readable(Protocol):
    """The one method the core needs of a byte stream (a file, a socket body, a pipe).

    Streams the core builds also have ``close()``, which closes what they wrap; callers use
    :func:`close_stream`, which tolerates streams without one.
    """

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` only at the end of the stream."""
        ...


def close_stream(stream: object) -> None:
    """Close ``stream`` if it has a ``close()`` method (the core's streams pass it down)."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


def drain_into(stream: Readable, out: IO[bytes]) -> int:
    """Copy ``stream`` to its end into ``out``; the byte count. The caller closes both.

    Reading to the end matters: a verifying stream checks its digest only there.
    """
    copied = 0
    while chunk := stream.read(CHUNK):
        out.write(chunk)
        copied += len(chunk)
    return copied


class Wrapper:
    """Base of the streams that wrap another: ``close()`` closes what they wrap."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw

    def close(self) -> None:
        """Close the underlying stream if it can be closed."""
        close_stream(self._raw)


class Prefixed(Wrapper):
    """A stream with a few already-read bytes put back in front."""

    def __init__(self, head: bytes, raw: Readable) -> None:
        super().__init__(raw)
        self._head = head

    def read(self, size: int = -1, /) -> bytes:
        """The put-back bytes first, then the stream's own."""
        if self._head:
            data, self._head = self._head, b""
            return data
        return self._raw.read(size)


class ChunkReader:
    """A readable stream over an iterator of byte chunks (a tar made on the fly)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes of the next chunks; ``b""`` once the iterator is exhausted."""
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buffer = chunk
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data
