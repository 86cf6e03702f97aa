"""Byte streams the core builds on: a read protocol, hashing, decompression by magic bytes.

Everything here streams in small chunks (DESIGN.md section 10: buffers up to 128 KiB avoid an
mmap per read), so memory stays flat however large the artifact is.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
import zlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

from ..errors import ArchiveError, DigestMismatchError

_inflate_lib: ModuleType
try:  # isal inflates about 40% faster than zlib here; zlib is the portable fallback.
    from isal import isal_zlib

    _inflate_lib = isal_zlib
except ImportError:  # pragma: no cover - exercised only where isal has no wheel
    _inflate_lib = zlib
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate_lib.error)

__all__ = [
    "CHUNK",
    "DIGEST_PATTERN",
    "HashingReader",
    "Readable",
    "ThreadedReader",
    "VerifiedStream",
    "close_stream",
    "decompressed",
    "read_ahead",
    "validate_digest",
]

CHUNK = 128 * 1024 - 64  # below glibc's mmap threshold once the bytes object header is added
_OUT_CHUNK = 256 * 1024  # at most this much inflated output per call: bounds a gzip bomb
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_UNSUPPORTED_MAGIC = {
    b"PK\x03\x04": "a zip archive",
    b"BZh": "a bzip2 archive",
    b"\xfd7zXZ": "an xz archive",
}
DIGEST_PATTERN = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


class Readable(Protocol):
    """The one method the core needs of a byte stream (a file, a socket body, a pipe).

    Streams the core builds also have ``close()``, which closes what they wrap; callers use
    :func:`close_stream`, which tolerates streams without one.
    """

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` only at the end of the stream."""
        ...


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>``.

    A digest is checked before it is ever used in a URL or a path, so that a hostile index or
    manifest cannot smuggle ``../`` into one.

    Raises:
        ArchiveError: the digest is malformed.
    """
    if not DIGEST_PATTERN.match(digest):
        raise ArchiveError(f"invalid digest {digest[:80]!r}: expected sha256:<64 hex digits>")
    return digest


def close_stream(stream: object) -> None:
    """Close ``stream`` if it has a ``close()`` method (the core's streams pass it down)."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


class HashingReader:
    """Pass a stream through while hashing it; check or record its digest at the end.

    Args:
        raw: the stream to read.
        expected: ``sha256:<hex>`` the content must have, or ``None`` to only record it.
        source: what to name in a mismatch error (already redacted).
        on_complete: called with the digest and size once the stream was read to its end and
            matched; never called for a stream that was not read to the end.
    """

    def __init__(
        self,
        raw: Readable,
        *,
        expected: str | None = None,
        source: str = "stream",
        on_complete: Callable[[str, int], None] | None = None,
    ) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self._expected = expected
        self._source = source
        self._on_complete = on_complete
        self.size = 0
        self.digest: str | None = None
        self._trusted: Callable[[], tuple[str, int]] | None = None

    def trust(self, result: Callable[[], tuple[str, int]]) -> None:
        """Take the digest and size from ``result()`` at the end instead of hashing."""
        self._trusted = result

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes; at the end, verify and record the digest."""
        data = self._raw.read(size)
        if data:
            if self._trusted is None:
                self._hash.update(data)
            self.size += len(data)
        elif self.digest is None:
            if self._trusted is not None:
                self.digest, self.size = self._trusted()
            else:
                self.digest = f"sha256:{self._hash.hexdigest()}"
            if self._expected is not None and self.digest != self._expected:
                raise DigestMismatchError(
                    f"{self._source}: content has digest {self.digest}, expected {self._expected}"
                )
            if self._on_complete is not None:
                self._on_complete(self.digest, self.size)
        return data

    def close(self) -> None:
        """Close the underlying stream if it can be closed."""
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


class VerifiedStream:
    """A stream whose producer hashes and verifies every byte before it reports the end.

    A download into the cache already hashes the body (on its own thread) and checks it before
    committing; wrapping its stream in this class tells :meth:`cnbkit.Blob.open` not to hash
    the same bytes a second time on the reading thread.

    Args:
        raw: the stream.
        result: called once at the end of the stream; returns the digest and size that the
            producer verified.
    """

    def __init__(self, raw: Readable, result: Callable[[], tuple[str, int]]) -> None:
        self._raw = raw
        self._result = result

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes (the producer raises at the end if they were wrong)."""
        return self._raw.read(size)

    def close(self) -> None:
        """Close the producer's stream (a download still running is cancelled)."""
        close_stream(self._raw)

    def checked(
        self, *, expected: str | None, source: str, on_complete: Callable[[str, int], None]
    ) -> HashingReader:
        """A reader that, at the end, compares the producer's digest with ``expected``."""
        reader = HashingReader(self._raw, expected=expected, source=source, on_complete=on_complete)
        reader.trust(self._result)
        return reader


class _Prefixed:
    """A stream with a few already-read bytes put back in front."""

    def __init__(self, head: bytes, raw: Readable) -> None:
        self._head = head
        self._raw = raw

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        return self._raw.read(size)

    def close(self) -> None:
        """Close the underlying stream."""
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


class _GzipReader:
    """Inflate gzip (one member or several, as ``cat a.gz b.gz`` makes) to the raw end.

    Reads the compressed stream to its very end, so the caller's digest covers every byte,
    checks each member's CRC and length (zlib does, at the member's end), and tells a truncated
    stream from a corrupt one.
    """

    def __init__(self, raw: Readable, source: str) -> None:
        self._raw = raw
        self._source = source
        self._inflater = _inflate_lib.decompressobj(31)
        self._input = b""
        self._done = False
        self._compressed = 0

    def read(self, size: int = -1, /) -> bytes:
        limit = size if 0 < size <= _OUT_CHUNK else _OUT_CHUNK
        while not self._done:
            if self._inflater.eof:
                self._next_member()
                continue
            data = self._inflater.unconsumed_tail or self._input or self._raw.read(CHUNK)
            self._input = b""
            if not data:
                raise ArchiveError(
                    f"{self._source}: truncated gzip stream (it ends after {self._compressed} "
                    "compressed bytes); download or copy the file again"
                )
            if not self._inflater.unconsumed_tail:
                self._compressed += len(data)
            try:
                out: bytes = self._inflater.decompress(data, limit)
            except _INFLATE_ERRORS as exc:
                raise ArchiveError(f"{self._source}: corrupt gzip data ({exc})") from None
            if out:
                return out
        return b""

    def _next_member(self) -> None:
        # After a member: another member, zero padding (some tools pad), or the end.
        tail = self._inflater.unused_data.lstrip(b"\0")
        while len(tail) < 2:
            more = self._raw.read(CHUNK)
            if not more:
                if tail:
                    raise ArchiveError(f"{self._source}: unexpected bytes after the gzip stream")
                self._done = True
                return
            self._compressed += len(more)
            tail = (tail + more).lstrip(b"\0")
        if not tail.startswith(_GZIP_MAGIC):
            raise ArchiveError(f"{self._source}: unexpected bytes after the gzip stream")
        self._inflater = _inflate_lib.decompressobj(31)
        self._input = tail

    def close(self) -> None:
        """Close the underlying stream."""
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


class _ZstdReader:
    """Decompress zstd (used by some image layers) with the optional ``zstandard`` package."""

    def __init__(self, raw: Readable, source: str) -> None:
        try:
            import zstandard
        except ImportError:
            raise ArchiveError(
                f"{source} is zstd-compressed: install the zstd extra (pip install 'cnbkit[zstd]')"
            ) from None
        self._error = zstandard.ZstdError
        self._reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[arg-type]
        self._source = source
        self._raw = raw

    def read(self, size: int = -1, /) -> bytes:
        try:
            return bytes(self._reader.read(size if size > 0 else _OUT_CHUNK))
        except self._error as exc:
            raise ArchiveError(f"{self._source}: corrupt zstd data ({exc})") from None

    def close(self) -> None:
        """Close the underlying stream."""
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


def decompressed(raw: Readable, source: str) -> Readable:
    """Return the uncompressed tar stream of ``raw``: gzip and zstd are undone by magic bytes.

    The file name is never consulted (``.tgz``, ``.tar`` and no extension all work, as in pack).

    Raises:
        ArchiveError: the stream is empty, or is a zip, bzip2 or xz archive.
    """
    head = raw.read(4)
    while 0 < len(head) < 4:
        more = raw.read(4 - len(head))
        if not more:
            break
        head += more
    if not head:
        raise ArchiveError(f"{source} is empty: expected a .tgz, .tar or directory")
    stream = _Prefixed(head, raw)
    if head.startswith(_GZIP_MAGIC):
        return _GzipReader(stream, source)
    if head.startswith(_ZSTD_MAGIC):
        return _ZstdReader(stream, source)
    for magic, kind in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise ArchiveError(f"{source} is {kind}: expected a .tgz, .tar or directory")
    return stream


_QUEUE_CHUNKS = 64  # at most 8 MiB in flight between a producer thread and its reader


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
    """

    def __init__(
        self,
        produce: Callable[[Callable[[bytes], None]], None],
        name: str = "cnbkit-reader",
        depth: int = _QUEUE_CHUNKS,
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._cancelled = threading.Event()
        self._buffer = b""
        self._finished = False
        self._produce = produce
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
        """Stop the producer if it is still running (a download then caches nothing)."""
        self._cancelled.set()
        self._thread.join()


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
