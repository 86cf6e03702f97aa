"""The image model every transport implements: an :class:`Image` and its :class:`Layer` s.

A transport (OCI layout, registry, Docker daemon) subclasses :class:`Image` and supplies one
method, :meth:`Image.open_blob`; reading the manifest and config (verified against their
digests) is its job before it constructs the image. Everything above the transports works
on this model only, as go-containerregistry's callers work on ``v1.Image``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from ..archive.hashing import HashingReader, VerifiedStream
from ..archive.streams import Readable, close_stream
from . import mediatypes as mt
from .config import ImageConfig
from .descriptor import Descriptor
from .errors import ImageError, ManifestError
from .manifest import Manifest
from .platform import Platform

__all__ = ["Image", "Layer"]


class _SizeChecked:
    """Fail as soon as a blob runs past its descriptor's size, and at its end if it is short.

    The digest check at the end would catch both, but a hostile endless stream never ends.
    """

    def __init__(self, raw: Readable, size: int, source: str) -> None:
        self._raw = raw
        self._size = size
        self._seen = 0
        self._source = source

    def read(self, size: int = -1, /) -> bytes:
        data = self._raw.read(size)
        self._seen += len(data)
        if self._seen > self._size:
            raise ImageError(f"{self._source} is larger than the {self._size} bytes its descriptor gives")
        if not data and size != 0 and self._seen < self._size:
            raise ImageError(
                f"{self._source} is truncated: {self._seen} of {self._size} bytes; fetch it again"
            )
        return data

    def close(self) -> None:
        close_stream(self._raw)


class Layer:
    """One filesystem layer of an image, as stored (usually compressed).

    Attributes:
        descriptor: the manifest's descriptor of the layer blob.
        diff_id: the digest of the uncompressed tar, from the config; ``None`` if unknown.
        index: the position in the image, 0 being the bottom layer.
        source: how messages name the layer (``layer sha256:... of IMAGE``).
        origin: the image whose store holds the blob as it is (``None`` if unknown). An image
            made of other images' layers (a builder) keeps each layer's own origin, so an
            exporter can skip, mount or stream a blob from where it already is instead of
            reading it through the new image.
    """

    def __init__(
        self,
        descriptor: Descriptor,
        *,
        diff_id: str | None,
        index: int,
        opener: Callable[[Descriptor], Readable],
        source: str,
        origin: Image | None = None,
    ) -> None:
        self.descriptor = descriptor
        self.diff_id = diff_id
        self.index = index
        self.source = source
        self.origin = origin
        self._opener = opener

    def kept_in(self, origin: Image | None, source: str) -> Layer:
        """This layer as ``origin`` stores it, named ``source``: a new Layer (same descriptor,
        diff ID, position and opener); this one is unchanged."""
        return Layer(
            self.descriptor,
            diff_id=self.diff_id,
            index=self.index,
            opener=self._opener,
            source=source,
            origin=origin,
        )

    @property
    def digest(self) -> str:
        """The digest of the stored (compressed) blob."""
        return self.descriptor.digest

    @property
    def size(self) -> int:
        """The size of the stored blob in bytes."""
        return self.descriptor.size

    @property
    def compression(self) -> mt.Compression | None:
        """The compression the media type declares (the bytes' magic decides when reading)."""
        return mt.layer_compression(self.descriptor.media_type)

    def open(self) -> Readable:
        """Stream the blob's bytes as stored, checked against the descriptor.

        The stream raises :class:`~cnbkit.errors.DigestMismatchError` from the read that
        delivers the descriptor's last byte (and at its end) if the bytes do not have the
        descriptor's digest, and :class:`ImageError` as soon as they exceed its size. Call
        its ``close()`` when done; :meth:`open_tar` gives the tar, decompressed.
        """
        raw = self._opener(self.descriptor)
        size = self.descriptor.size
        if isinstance(raw, VerifiedStream):
            # The producer hashes as it downloads (and refuses bytes past the size): do not hash
            # the same bytes twice.
            return raw.checked(
                expected=self.digest, source=self.source, on_complete=lambda _d, _s: None, length=size
            )
        # Checked on the last byte too: a consumer copying exactly ``size`` bytes stops there.
        return HashingReader(
            _SizeChecked(raw, size, self.source), expected=self.digest, source=self.source, length=size
        )

    def open_tar(self) -> Readable:
        """Stream the layer's tar: :meth:`open`, hashed on a read-ahead thread (unless its
        producer hashed it already) while the caller's thread undoes gzip or zstd (by magic).
        Call its ``close()`` when done.
        """
        # Inflating and read-ahead threads (isal: ~20 ms to import) only when a layer is read.
        from ..archive.compression import decompressed
        from ..archive.threads import read_ahead

        opened = self.open()
        if not getattr(opened, "producer_hashed", False):
            opened = read_ahead(opened)
        try:
            return decompressed(opened, self.source)
        except BaseException:
            close_stream(opened)
            raise

    def __repr__(self) -> str:
        return f"Layer({self.index}, {self.digest}, {self.size} bytes)"


class Image(ABC):
    """A single-platform image: a verified manifest, its verified config, and its layers.

    Subclasses implement :meth:`open_blob`; they may override :meth:`layers` when their blobs
    are not the manifest's (a ``docker save`` archive holds uncompressed layers).

    Attributes:
        reference: how messages name the image (``oci:DIR:tag``, ``docker.io/x:1``).
        manifest: the image manifest.
        config: the image config.
        platforms: when the image was chosen from a multi-platform index, every platform the
            index offers (``OS/ARCH[/VARIANT]``, attestations left out); else ``()``. A source
            sets it after making the image (``builder inspect`` shows them all).

    Raises:
        ManifestError: (constructor) the manifest is not an image's, or the config has a
            different number of diff IDs than the manifest has layers.
    """

    platforms: tuple[str, ...] = ()

    def __init__(self, reference: str, manifest: Manifest, config: ImageConfig) -> None:
        if not manifest.is_image:
            raise ManifestError(
                f"{reference} is not a container image (its config is {manifest.config.media_type})"
            )
        if config.diff_ids and len(config.diff_ids) != len(manifest.layers):
            raise ManifestError(
                f"{reference}: the config lists {len(config.diff_ids)} layers, "
                f"the manifest {len(manifest.layers)}; the image is corrupt"
            )
        for layer in manifest.layers:
            if not mt.is_layer(layer.media_type):
                kind = layer.media_type[:100]
                raise ManifestError(f"{reference}: layer {layer.digest} has type {kind!r}, not a layer type")
        self.reference = reference
        self.manifest = manifest
        self.config = config

    @property
    def digest(self) -> str:
        """The manifest digest: what ``IMAGE@sha256:...`` pins."""
        return self.manifest.digest

    @property
    def platform(self) -> Platform:
        """The platform the config declares."""
        return self.config.platform

    @abstractmethod
    def open_blob(self, descriptor: Descriptor) -> Readable:
        """Open the raw bytes of a blob of this image; :class:`Layer` verifies them.

        Raises:
            CnbkitError: the blob cannot be found or read.
        """

    def cached_blob(self, descriptor: Descriptor) -> Path | None:
        """The file of cnbkit's cache holding the blob as stored, if there is one (else ``None``).

        An exporter may link it into a target on the same filesystem instead of copying it
        (after checking its digest: the file is not verified here). Only cache files are
        offered, never a user's own (an OCI layout's blobs), so linking shares nothing a user
        edits.
        """
        return None

    def layers(self) -> list[Layer]:
        """The layers, bottom first, each paired with its diff ID from the config."""
        ids: tuple[str | None, ...] = self.config.diff_ids or (None,) * len(self.manifest.layers)
        return [
            Layer(
                descriptor,
                diff_id=diff_id,
                index=position,
                opener=self.open_blob,
                source=f"layer {descriptor.digest} of {self.reference}",
                origin=self,
            )
            for position, (descriptor, diff_id) in enumerate(zip(self.manifest.layers, ids, strict=True))
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reference!r}, {self.digest})"
