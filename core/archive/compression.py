"""Undoing compression by magic bytes: gzip (several members too) and zstd; zip, bzip2 and xz
are named and refused. The file name is never consulted."""

from __future__ import annotations

import zlib
from types import ModuleType

from ..errors import ArchiveError
from .streams import CHUNK, Prefixed, Readable, Wrapper

_inflate_lib: ModuleType
try:  # isal inflates about 40% faster than zlib here; zlib is the portable fallback.
    from isal import isal_zlib

    _inflate_lib = isal_zlib
except ImportError:  # pragma: no cover - exercised only where isal has no wheel
    _inflate_lib = zlib
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate_lib.error)
__all__ = ["decompressed"]

_OUT_CHUNK = 256 * 1024  # at most this much inflated output per call: bounds a gzip bomb
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_UNSUPPORTED_MAGIC = {
    b"PK\x03\x04": "a zip archive",
    b"BZh": "a bzip2 archive",
    b"\xfd7zXZ": "an xz archive",
}
_HEAD = max(map(len, (_GZIP_MAGIC, _ZSTD_MAGIC, *_UNSUPPORTED_MAGIC)))  # xz's magic: 5 bytes


class _GzipReader(Wrapper):
    """Inflate gzip (one member or several, as ``cat a.gz b.gz`` makes) to the raw end.

    Reads the compressed stream to its very end, so the caller's digest covers every byte,
    checks each member's CRC and length (zlib does, at the member's end), and tells a truncated
    stream from a corrupt one.
    """

    def __init__(self, raw: Readable, source: str) -> None:
        super().__init__(raw)
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
            # Left over from the last call, or the next member's start (counted when it was
            # read), before new bytes: each compressed byte counts once.
            data = self._inflater.unconsumed_tail or self._input
            self._input = b""
            if not data:
                data = self._raw.read(CHUNK)
                self._compressed += len(data)
            if not data:
                raise ArchiveError(
                    f"{self._source}: truncated gzip stream (it ends after {self._compressed} "
                    "compressed bytes); download or copy the file again"
                )
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


class _ZstdReader(Wrapper):
    """Decompress zstd (used by some image layers) with the optional ``zstandard`` package."""

    def __init__(self, raw: Readable, source: str) -> None:
        try:
            import zstandard
        except ImportError:
            raise ArchiveError(
                f"{source} is zstd-compressed: install the zstd extra (pip install 'cnbkit[zstd]')"
            ) from None
        super().__init__(raw)
        self._error = zstandard.ZstdError
        self._reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[arg-type]
        self._source = source

    def read(self, size: int = -1, /) -> bytes:
        try:
            return bytes(self._reader.read(size if size > 0 else _OUT_CHUNK))
        except self._error as exc:
            raise ArchiveError(f"{self._source}: corrupt zstd data ({exc})") from None


def decompressed(raw: Readable, source: str) -> Readable:
    """Return the uncompressed tar stream of ``raw``: gzip and zstd are undone by magic bytes.

    The file name is never consulted (``.tgz``, ``.tar`` and no extension all work, as in pack).

    Raises:
        ArchiveError: the stream is empty, or is a zip, bzip2 or xz archive.
    """
    head = raw.read(_HEAD)
    while 0 < len(head) < _HEAD:
        more = raw.read(_HEAD - len(head))
        if not more:
            break
        head += more
    if not head:
        raise ArchiveError(f"{source} is empty: expected a .tgz, .tar or directory")
    stream = Prefixed(head, raw)
    if head.startswith(_GZIP_MAGIC):
        return _GzipReader(stream, source)
    if head.startswith(_ZSTD_MAGIC):
        return _ZstdReader(stream, source)
    for magic, kind in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise ArchiveError(f"{source} is {kind}: expected a .tgz, .tar or directory")
    return stream
