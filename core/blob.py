"""Blobs: what a resolver returns, and the public constructors plugins build them with."""

from __future__ import annotations

import copy
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .archive.hashing import HashingReader, VerifiedStream
from .archive.streams import ChunkReader, Readable, close_stream
from .archive.tarwrite import directory_tar
from .errors import CnbkitError, DigestMismatchError, PluginError
from .oci.platform import Platform
from .redact import redact

if TYPE_CHECKING:
    from .oci.image import Layer

__all__ = ["Blob", "FileBlob", "ImageInfo"]

_B = TypeVar("_B", bound="Blob")


@dataclass(frozen=True)
class ImageInfo:
    """Where a lifecycle that came out of an image came from.

    Attributes:
        reference: how messages name the image (``oci:DIR:tag``, ``docker.io/x:1``).
        digest: the manifest digest of the single-platform image used.
        platform: the platform chosen (the image config's).
        labels: the image's labels.
        layer: the image layer that holds the lifecycle and nothing else, when there is one:
            the Blob's digest is then that layer's, and a builder can reuse the layer as stored
            (its compressed bytes, digest and media type), so a registry skips it on push.
    """

    reference: str
    digest: str
    platform: Platform
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    layer: Layer | None = None


class Blob(ABC):
    """An artifact a resolver found: something that opens as an uncompressed tar stream.

    Subclasses implement :meth:`open_raw` (the bytes as fetched: a ``.tgz``, a ``.tar``, a
    layer); the core undoes gzip or zstd and hashes on the way.

    Attributes:
        source: where the artifact came from, redacted (safe to print).
        digest: ``sha256:<hex>`` of the artifact as fetched, when known before reading; once a
            stream from :meth:`open` has been read to its end, the digest it had.
        size: byte count of the artifact as fetched, or ``None`` when unknown.
        resolver: the name of the plugin that returned the blob (read-only: the core hands on
            a copy credited to that plugin, :meth:`credited`).
        platform: the platform the artifact is known to be for (an image's), or ``None``.
        image: for a lifecycle out of an image, the image's digest, platform and labels (and
            its lifecycle layer, when one layer held it alone); ``None`` otherwise.
    """

    def __init__(
        self,
        source: str,
        *,
        digest: str | None = None,
        size: int | None = None,
        platform: Platform | None = None,
        resolver: str = "",
    ) -> None:
        self.source = redact(source)
        self.digest = digest
        self.size = size
        self.platform = platform
        self._resolver = resolver
        self.image: ImageInfo | None = None

    @property
    def resolver(self) -> str:
        """The name of the plugin that returned the blob (``""`` until the core credits one)."""
        return self._resolver

    def credited(self: _B, plugin: str) -> _B:
        """This Blob, as returned by ``plugin``: a shallow copy whose :attr:`resolver` is
        ``plugin`` (the plugin's own object is left as it was)."""
        twin = copy.copy(self)
        twin._resolver = plugin
        return twin

    def known_as(self: _B, digest: str, size: int | None = None) -> _B:
        """This Blob with its digest (and size) known before it is read, from the cache's
        memory of the same artifact: a shallow copy, as :meth:`credited`.

        Raises:
            DigestMismatchError: ``digest`` contradicts the digest the Blob already had.
        """
        twin = copy.copy(self)
        twin.record(digest, size)
        return twin

    def record(self, digest: str, size: int | None = None) -> None:
        """Learn the artifact's digest (and size) once they are known: at the end of a stream
        from :meth:`open` (which calls it), or in :meth:`known_as`. It is the one way a Blob's
        digest changes; only the Blob itself calls it.

        Raises:
            DigestMismatchError: ``digest`` contradicts the digest the Blob already had.
        """
        if self.digest is not None and digest != self.digest:
            raise DigestMismatchError(f"{self.source}: content has digest {digest}, expected {self.digest}")
        self.digest = digest
        if size is not None:
            self.size = size

    @abstractmethod
    def open_raw(self) -> Readable:
        """Open the artifact's bytes exactly as fetched (possibly compressed)."""

    def open(self) -> Readable:
        """Open the artifact as an uncompressed tar stream.

        The raw bytes are hashed as they are read; at the end of the stream the digest is
        checked against :attr:`digest` when one was known (a mismatch raises
        :class:`~cnbkit.DigestMismatchError`) and recorded otherwise, with :attr:`size`.
        """

        # Inflating and read-ahead threads (isal: ~20 ms to import) only when bytes are read:
        # a warm resolve never opens a Blob.
        from .archive.compression import decompressed
        from .archive.threads import read_ahead

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
            hashed = raw.checked(expected=self.digest, source=self.source, on_complete=self.record)
        else:  # hash on a read-ahead thread while this one inflates and checks entries
            checked = HashingReader(raw, expected=self.digest, source=self.source, on_complete=self.record)
            hashed = read_ahead(checked)
        try:
            return decompressed(hashed, self.source)
        except BaseException:
            close_stream(hashed)
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, digest={self.digest!r})"


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
            return ChunkReader(directory_tar(self.path))
        try:
            return open(self.path, "rb", buffering=0)
        except OSError as exc:
            raise CnbkitError(f"{self.path}: cannot read it ({exc.strerror})") from None
