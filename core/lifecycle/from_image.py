"""The lifecycle out of an image: one core service, whatever plugin supplied the image.

The lifecycle is what ``/cnb/lifecycle.toml`` and ``/cnb/lifecycle/`` hold in the image's final
filesystem: layers applied in order, whiteouts and opaque directories honoured
(:class:`~cnbkit.oci.whiteout.Overlay`). Layers are read from the top down, and reading stops
as soon as no lower layer can change that answer (a whiteout or an opaque marker of
``cnb/lifecycle``, or a non-directory over it). Without such a marker a lower layer could still
add files under ``/cnb/lifecycle/``, so the lower layers are read too (for names: the official
image's distroless base layers are a few MB, its lifecycle layer most of the bytes).

:class:`ImageBlob` is the result: a Blob whose tar stream holds only the surviving lifecycle
entries (nothing else of the image can ride into a builder), produced while the layers stream,
each layer verified against its digest and read to its end by the strict tar reader. When one
layer held the lifecycle and nothing else, the Blob *is* that layer: its digest is the layer's
and ``blob.image.layer`` names it, so a builder can reuse it byte for byte.

A small record in the cache maps the image's layer digests to the Blob's digest, so a second
resolve of the same image finds the validated lifecycle without reading a layer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from ..archive.streams import ChunkReader, Readable, close_stream
from ..archive.tarreader import TarEntry, iter_tar
from ..archive.tarwrite import END_MARKER, padding, tar_header
from ..blob import Blob, ImageInfo
from ..cache import Cache
from ..cache.records import LifecycleFromImage
from ..errors import ArchiveError, LifecycleError
from ..oci._json import load_json
from ..oci.config import MAX_CONFIG_SIZE
from ..oci.image import Image, Layer
from ..oci.whiteout import WHITEOUT_PREFIX, Overlay
from .descriptor import APISet, Descriptor, api_version
from .placement import LAYER_DIR, under
from .versions import normal_version

__all__ = ["APIS_LABEL", "VERSION_LABEL", "ImageBlob", "check_labels", "image_blob"]

DESCRIPTOR = "cnb/lifecycle.toml"
VERSION_LABEL = "io.buildpacks.lifecycle.version"
APIS_LABEL = "io.buildpacks.lifecycle.apis"
_RECORD = "image-lifecycle:v1:"  # the cache record's key prefix; bump when the stream changes


def _relevant(name: str) -> bool:
    return name == DESCRIPTOR or under(name, LAYER_DIR)


class _Reader(ChunkReader):
    """The Blob's stream: closing it stops the generator (and closes the open layer)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__(chunks)
        self._generator = chunks

    def close(self) -> None:
        close = getattr(self._generator, "close", None)
        if close is not None:
            close()


class _LayerScan:
    """What one layer contributed, to tell whether it can pass through unchanged."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.alone = True  # it holds the lifecycle entries and nothing else, all kept
        self.supplied = 0
        self.names: set[str] = set()


class ImageBlob(Blob):
    """The lifecycle of an image as a Blob (an uncompressed tar of its lifecycle entries).

    Args:
        image: the single-platform image.
        cache: where the record of an earlier read of the same layers is kept.
        resolver: the name of the plugin that supplied the image.
    """

    def __init__(self, image: Image, cache: Cache, resolver: str = "") -> None:
        super().__init__(image.reference, platform=image.platform, resolver=resolver)
        self._image = image
        self._cache = cache
        self._layers = image.layers()
        self.image = ImageInfo(image.reference, image.digest, image.platform, dict(image.config.labels))
        joined = "\n".join(layer.digest for layer in self._layers)
        self._key = _RECORD + hashlib.sha256(joined.encode()).hexdigest()
        known = cache.recall(LifecycleFromImage, self._key)
        if known is not None and known.key == self._key:
            # Learnt from verified layers before: the validated lifecycle is found by it.
            self.record(known.digest, known.size)
            self._note_passthrough(known.passthrough_layer)

    def _note_passthrough(self, index: int | None) -> None:
        # A damaged record's index names no layer: ignored.
        if index is not None and self.image is not None and 0 <= index < len(self._layers):
            layer = self._layers[index]
            self.image = ImageInfo(
                self.image.reference, self.image.digest, self.image.platform, self.image.labels, layer
            )

    def open_raw(self) -> Readable:
        """The lifecycle entries of the final filesystem, as an uncompressed tar."""
        return _Reader(self._stream())

    def open(self) -> Readable:
        """Same as :meth:`open_raw`: the stream is made here, and checked here (see the module)."""
        return self.open_raw()

    def _stream(self) -> Iterator[bytes]:
        scans: list[_LayerScan] = []
        # The stream's sha256 is the Blob's digest only when no one layer is the Blob: it is
        # not computed while one layer still may be (the official image's case: a quarter of
        # a second per 300 MB on the inflating thread). Found out late, the digest comes from
        # streaming the (verified, by then local) layers once more, hashing only.
        live: hashlib._Hash | None = None
        skipped = False
        total = 0
        for chunk in self._chunks(scans):
            if live is None and not skipped and not _may_pass_through(scans):
                live = hashlib.sha256()
            if live is not None:
                live.update(chunk)
            else:
                skipped = True
            total += len(chunk)
            yield chunk
        if not any(DESCRIPTOR in scan.names for scan in scans):
            raise LifecycleError(
                f"{self.source}: no /{DESCRIPTOR} in the image's filesystem: not a lifecycle image "
                "(the lifecycle image has /cnb/lifecycle.toml and /cnb/lifecycle/)"
            )
        yield END_MARKER
        suppliers = [scan for scan in scans if scan.supplied]
        passthrough = None
        if len(suppliers) == 1 and suppliers[0].alone:
            alone = suppliers[0].layer
            self.record(alone.digest, alone.size)
            passthrough = alone.index
            self._note_passthrough(passthrough)
        elif live is not None and not skipped:
            live.update(END_MARKER)
            self.record(f"sha256:{live.hexdigest()}", total + len(END_MARKER))
        else:
            self.record(*self._digest_again())
        assert self.digest is not None and self.size is not None
        # Only now, every layer read having been verified to its end, is the record written.
        self._cache.remember(
            LifecycleFromImage(self._key, digest=self.digest, size=self.size, passthrough_layer=passthrough)
        )

    def _chunks(self, scans: list[_LayerScan]) -> Iterator[bytes]:
        """The lifecycle entries' tar, layer by layer from the top (``scans`` fills as it goes)."""
        overlay = Overlay("cnb")
        for layer in reversed(self._layers):
            scan = _LayerScan(layer)
            scans.append(scan)
            yield from self._layer_entries(layer, overlay, scan)
            if overlay.settled(LAYER_DIR) and overlay.settled(DESCRIPTOR):
                break

    def _digest_again(self) -> tuple[str, int]:
        """The sha256 and size of the stream, made once more from the layers (each verified
        again), for a Blob found out late not to be one layer."""
        digest = hashlib.sha256()
        total = 0
        for chunk in self._chunks([]):
            digest.update(chunk)
            total += len(chunk)
        digest.update(END_MARKER)
        return f"sha256:{digest.hexdigest()}", total + len(END_MARKER)

    def _layer_entries(self, layer: Layer, overlay: Overlay, scan: _LayerScan) -> Iterator[bytes]:
        """Feed one layer to the overlay; yield the tar of the lifecycle entries it supplies."""
        feed = overlay.begin_layer(layer.index)
        stream = layer.open_tar()  # a warm resolve reads no layer, nor imports the inflaters
        try:
            for entry in iter_tar(stream, layer.source):
                supplied = feed.add(entry.name, entry.kind)
                base = entry.name.rpartition("/")[2]
                if not _relevant(entry.name) or base.startswith(WHITEOUT_PREFIX):
                    # Anything else in the layer (a whiteout, /etc/passwd) rules out passing
                    # it through; the bare cnb/ directory (or the root) does not.
                    if entry.name != "cnb" or entry.kind != "dir":
                        scan.alone = False
                    continue
                if not supplied:
                    scan.alone = False  # hidden by an upper layer: the layer is not the answer
                    continue
                if entry.mode & 0o7000:
                    scan.alone = False  # setuid bits never ride into a builder unchanged
                scan.supplied += 1
                scan.names.add(entry.name)
                yield from _entry_tar(entry, scan.names)
        finally:
            close_stream(stream)
        feed.finish()


def _may_pass_through(scans: list[_LayerScan]) -> bool:
    """Whether one layer may still turn out to be the Blob (what it supplied, all it held)."""
    suppliers = [scan for scan in scans if scan.supplied]
    return len(suppliers) <= 1 and all(scan.alone for scan in suppliers)


def _entry_tar(entry: TarEntry, same_layer: set[str]) -> Iterator[bytes]:
    if entry.kind == "hardlink" and entry.linkname not in same_layer:
        # In an overlay a hardlink is its own layer's file; one across layers (or to a file
        # an upper layer replaced) has no meaning the builder layer could keep.
        raise ArchiveError(
            f"{entry.source}: hardlink {entry.original!r} -> {entry.linkname!r} names no lifecycle "
            "file of its own layer; refusing the image"
        )
    linkname = entry.linkname if entry.kind in ("symlink", "hardlink") else ""
    yield tar_header(entry.name, entry.kind, entry.mode & 0o7777, entry.size, linkname)
    if entry.kind == "file":
        yield from entry.chunks()
        yield padding(entry.size)


def image_blob(image: Image, cache: Cache, resolver: str = "") -> ImageBlob:
    """The lifecycle Blob of ``image`` (cheap: the layers are read when the Blob is opened),
    credited to ``resolver``, the plugin that supplied the image."""
    return ImageBlob(image, cache, resolver)


def _label_apis(text: str, where: str) -> dict[str, APISet]:
    data = load_json(text, source=f"{where}: label {APIS_LABEL}", limit=MAX_CONFIG_SIZE, error=LifecycleError)
    try:
        return {
            kind: APISet(
                tuple(str(v) for v in data[kind].get("supported", [])),
                tuple(str(v) for v in data[kind].get("deprecated", [])),
            )
            for kind in ("buildpack", "platform")
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        raise LifecycleError(
            f'{where}: label {APIS_LABEL} is not {{"buildpack": {{"supported": [...]}}, "platform": ...}}'
        ) from None


def _normal(apis: APISet) -> tuple[tuple[str, ...], tuple[str, ...]]:
    # By the descriptor's rule (``v0.2``, ``0.02`` -> ``0.2``); what it refuses is kept as written.
    def norm(items: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(api_version(v) or v for v in items))

    return norm(apis.supported), norm(apis.deprecated)


def check_labels(info: ImageInfo, descriptor: Descriptor) -> None:
    """Cross-check the lifecycle labels of the image (when it has them) with its descriptor.

    Raises:
        LifecycleError: a label says another version or other APIs than ``cnb/lifecycle.toml``.
    """
    where = info.reference
    version = info.labels.get(VERSION_LABEL)
    if version is not None and normal_version(version) != normal_version(descriptor.version):
        raise LifecycleError(
            f"{where}: label {VERSION_LABEL} says {version!r} but /{DESCRIPTOR} says "
            f"{descriptor.version!r}; the image is inconsistent, rebuild it"
        )
    text = info.labels.get(APIS_LABEL)
    if text is None:
        return
    labelled = _label_apis(text, where)
    for kind, found in (("buildpack", descriptor.buildpack), ("platform", descriptor.platform)):
        if _normal(labelled[kind]) != _normal(found):
            raise LifecycleError(
                f"{where}: label {APIS_LABEL} lists {kind} APIs {', '.join(labelled[kind].supported)} "
                f"but /{DESCRIPTOR} lists {', '.join(found.supported)}; the image is inconsistent"
            )
