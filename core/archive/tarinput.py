"""The byte source under the tar reader: blocks, bounded reads and entry data, counted and capped.

Entry data is the bulk of every archive (a lifecycle is two ~100 MB binaries), so it must pass
through without being copied again: a chunk the stream returns is handed out as it is whenever
it lies wholly inside the entry's data, and only a chunk that straddles a boundary is sliced.
Headers are small and rare, so their reads may join a few pieces.
"""

from __future__ import annotations

from ..errors import ArchiveError
from .streams import CHUNK, Readable

__all__ = ["DEFAULT_MAX_TOTAL", "TarInput", "size_limit_error"]

DEFAULT_MAX_TOTAL = 4 * 1024**3  # bytes read and bytes of entry data; a lifecycle is ~300 MB


def size_limit_error(source: str, limit: int, what: str = "archive") -> ArchiveError:
    """The error for an archive (or a ``download``) larger than ``limit`` bytes.

    It is an :class:`ArchiveError`, never a ``DownloadError``: a body over the limit is not a
    broken connection, and must not be resumed or retried.
    """
    return ArchiveError(
        f"{source}: the {what} is larger than the limit of {limit} bytes; nothing was kept; "
        "raise the limit with --max-size or CNBKIT_MAX_SIZE if it is expected"
    )


class TarInput:
    """A buffered, counted view of a stream: ``offset`` is the position in the archive.

    Args:
        stream: the uncompressed tar bytes.
        source: the artifact's (redacted) name, for messages.
        limit: the most bytes that may be read from ``stream``, headers and all.
    """

    __slots__ = ("_buf", "_fetched", "_limit", "_pos", "_source", "_stream", "offset")

    def __init__(self, stream: Readable, source: str, limit: int) -> None:
        self._stream = stream
        self._source = source
        self._limit = limit
        self._buf = b""  # the last chunk read; bytes before _pos were consumed
        self._pos = 0
        self._fetched = 0
        self.offset = 0

    def _read(self) -> bytes:
        data = self._stream.read(CHUNK)
        if data:
            self._fetched += len(data)
            if self._fetched > self._limit:
                raise size_limit_error(self._source, self._limit)
        return data

    def exact(self, size: int) -> bytes:
        """Return the next ``size`` bytes (a header or a bounded extended header).

        Returns fewer bytes only if the stream ends first.
        """
        pos = self._pos
        end = pos + size
        if end <= len(self._buf):  # the common case: a header inside the current chunk
            self._pos = end
            self.offset += size
            return self._buf[pos:end]
        parts = [self._buf[pos:]]
        got = len(parts[0])
        self._buf, self._pos = b"", 0
        while got < size:
            data = self._read()
            if not data:
                break
            need = size - got
            if len(data) > need:
                parts.append(data[:need])
                self._buf, self._pos = data, need
                got = size
            else:
                parts.append(data)
                got += len(data)
        self.offset += got
        return b"".join(parts)

    def piece(self, size: int) -> bytes:
        """Return up to ``min(size, CHUNK)`` next bytes of entry data; ``b""`` at the end.

        A chunk read while the buffer is empty and wholly inside the data is returned as it
        is: the data of a large entry is never copied here.
        """
        buf, pos = self._buf, self._pos
        if pos == len(buf):
            data = self._read()
            if len(data) <= size and len(data) <= CHUNK:
                self.offset += len(data)
                return data
            buf, pos = self._buf, self._pos = data, 0
        take = min(len(buf) - pos, size, CHUNK)
        self._pos = pos + take
        self.offset += take
        return buf[pos : pos + take]  # a slice of the whole chunk is the chunk itself, not a copy

    def skip(self, size: int) -> bool:
        """Skip ``size`` bytes; ``False`` if the stream ends first."""
        avail = len(self._buf) - self._pos
        if size <= avail:
            self._pos += size
            self.offset += size
            return True
        size -= avail
        self.offset += avail
        self._buf, self._pos = b"", 0
        while size:
            data = self._read()
            if not data:
                return False
            if len(data) > size:
                self._buf, self._pos = data, size
                self.offset += size
                return True
            size -= len(data)
            self.offset += len(data)
        return True

    def drain(self) -> None:
        """Read the stream to its end (still within the limit), discarding the bytes."""
        self._buf, self._pos = b"", 0
        while self._read():
            pass
