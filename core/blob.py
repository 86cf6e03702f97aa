"""Blobs: what a resolver returns, and the public constructors plugins build them with."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from .archive.streams import HashingReader, Readable, VerifiedStream, close_stream, decompressed, read_ahead
from .archive.tarwrite import directory_tar
from .errors import CnbkitError, PluginError
from .oci.platform import Platform
from .redact import redact

__all__ = ["Blob", "FileBlob"]


class Blob(ABC):
    """An artifact a resolver found: something that opens as an uncompressed tar stream.

    Subclasses implement :meth:`open_raw` (the bytes as fetched: a ``.tgz``, a ``.tar``, a
    layer); the core undoes gzip or zstd and hashes on the way.

    Attributes:
        source: where the artifact came from, redacted (safe to print).
        digest: ``sha256:<hex>`` of the artifact as fetched, when known before reading; once a
            stream from :meth:`open` has been read to its end, the digest it had.
        size: byte count of the artifact as fetched, or ``None`` when unknown.
        resolver: the name of the plugin that returned the blob (set by the core).
        platform: the platform the artifact is known to be for (an image's), or ``None``.
    """

    def __init__(
        self,
        source: str,
        *,
        digest: str | None = None,
        size: int | None = None,
        platform: Platform | None = None,
    ) -> None:
        self.source = redact(source)
        self.digest = digest
        self.size = size
        self.platform = platform
        self.resolver = ""

    @abstractmethod
    def open_raw(self) -> Readable:
        """Open the artifact's bytes exactly as fetched (possibly compressed)."""

    def open(self) -> Readable:
        """Open the artifact as an uncompressed tar stream.

        The raw bytes are hashed as they are read; at the end of the stream the digest is
        checked against :attr:`digest` when one was known (a mismatch raises
        :class:`~cnbkit.DigestMismatchError`) and recorded otherwise, with :attr:`size`.
        """

        def record(digest: str, size: int) -> None:
            self.digest, self.size = digest, size

        try:
            raw = self.open_raw()
        except CnbkitError:
            raise
        except Exception as exc:  # a plugin's Blob: name the plugin, as the host does
            name = self.resolver or type(self).__name__
            raise PluginError(
                name, f"plugin {name!r} failed to open {self.source}: {type(exc).__name__}: {exc}"
            ) from exc
        hashed: Readable
        if isinstance(raw, VerifiedStream):  # hashed and checked by its producer already
            hashed = raw.checked(expected=self.digest, source=self.source, on_complete=record)
        else:  # hash on a read-ahead thread while this one inflates and checks entries
            checked = HashingReader(raw, expected=self.digest, source=self.source, on_complete=record)
            hashed = read_ahead(checked)
        try:
            return decompressed(hashed, self.source)
        except BaseException:
            close_stream(hashed)
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, digest={self.digest!r})"


class _GeneratorReader:
    """A readable stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1, /) -> bytes:
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


class FileBlob(Blob):
    """A local ``.tgz``, ``.tar`` (any name: the content decides) or directory.

    A directory is tarred on the fly, deterministically (sorted names, root owner, fixed
    mtime, modes kept), so a directory and a tar of it give the same lifecycle layer.

    Args:
        path: the file or directory.
        source: what to call it in messages; the path by default.
        digest: the known ``sha256:`` digest (when a cache already verified the file).

    Raises:
        CnbkitError: the path does not exist or is neither a file nor a directory.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        source: str | None = None,
        digest: str | None = None,
        platform: Platform | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise CnbkitError(f"{self.path}: no such file or directory") from None
        except OSError as exc:
            raise CnbkitError(f"{self.path}: cannot read it ({exc.strerror})") from None
        self.is_dir = self.path.is_dir()
        if not self.is_dir and not self.path.is_file():
            raise CnbkitError(f"{self.path}: not a regular file or directory")
        super().__init__(
            source or str(self.path),
            digest=digest,
            size=None if self.is_dir else st.st_size,
            platform=platform,
        )

    def open_raw(self) -> Readable:
        """The file's bytes, or a tar stream of the directory made on the fly."""
        if self.is_dir:
            return _GeneratorReader(directory_tar(self.path))
        try:
            return open(self.path, "rb", buffering=0)
        except OSError as exc:
            raise CnbkitError(f"{self.path}: cannot read it ({exc.strerror})") from None
