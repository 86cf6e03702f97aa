"""The builder as an image of the ``oci`` model: the build image's layers referenced, the new
ones gzipped in the cache, a config and manifest made deterministically."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..archive.streams import Readable
from ..errors import CnbkitError, WriteError
from ..oci import mediatypes as mt
from ..oci._json import compact_json, load_object
from ..oci.config import MAX_CONFIG_SIZE, ImageConfig
from ..oci.descriptor import Descriptor
from ..oci.image import Image, Layer
from ..oci.manifest import Manifest
from .compress import CompressedLayer

__all__ = ["CREATED", "Added", "BuilderImage", "LayerRecord", "make_image"]

CREATED = "1980-01-01T00:00:01Z"  # imgutil's default created time: same inputs, same digest
# Base layers keep their bytes; only the media type name changes in an OCI manifest.
_OCI_TYPES = {
    mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
    mt.DOCKER_FOREIGN_LAYER_GZIP: mt.OCI_ND_LAYER_GZIP,
}


@dataclass(frozen=True)
class LayerRecord:
    """What ``--json`` says of a layer: its digests, size and where it came from."""

    digest: str
    diff_id: str
    size: int
    source: str
    reused: bool

    def to_json(self) -> dict[str, Any]:
        """``{"digest", "diff_id", "size", "source", "reused"}``."""
        return dict(self.__dict__)


class BuilderImage(Image):
    """A builder made by :func:`cnbkit.builder.assemble.assemble`.

    Attributes:
        records: every layer, bottom first, with its source.
        base: the build image, whose blobs the base layers are read from.
    """

    def __init__(
        self,
        reference: str,
        manifest: Manifest,
        config: ImageConfig,
        base: Image,
        passthrough: Mapping[str, Layer],
        new_layers: Mapping[str, CompressedLayer],
        records: Sequence[LayerRecord],
    ) -> None:
        super().__init__(reference, manifest, config)
        self.base = base
        self._passthrough = dict(passthrough)
        self._new = dict(new_layers)
        self.records = list(records)

    def open_blob(self, descriptor: Descriptor) -> Readable:
        """The config from memory, a new layer from the cache, any other layer from its image."""
        if descriptor.digest == self.manifest.config.digest:
            return io.BytesIO(self.config.raw)
        new = self._new.get(descriptor.digest)
        if new is not None:
            try:
                return open(new.path, "rb", buffering=0)
            except OSError as exc:
                raise CnbkitError(
                    f"{new.source}: its compressed layer left the cache ({exc.strerror})"
                ) from None
        layer = self._passthrough.get(descriptor.digest)
        if layer is None:
            raise WriteError(f"{self.reference}: no blob {descriptor.digest}")
        return layer.open()

    def cached_blob(self, descriptor: Descriptor) -> Path | None:
        """A new layer's cache file, or the cache file its own image has for a referenced one."""
        new = self._new.get(descriptor.digest)
        if new is not None:
            return new.path if new.path.is_file() else None
        layer = self._passthrough.get(descriptor.digest)
        if layer is None or layer.origin is None:
            return None
        return layer.origin.cached_blob(layer.descriptor)

    def layers(self) -> list[Layer]:
        """The layers, bottom first; a referenced layer keeps its own image as its ``origin``
        (an exporter may then skip or mount it), a new one has the builder as its origin."""
        layers = super().layers()
        for position, layer in enumerate(layers):
            referenced = self._passthrough.get(layer.digest)
            if referenced is not None:
                layers[position] = layer.kept_in(referenced.origin, referenced.source)
        return layers


Added = Layer | tuple[CompressedLayer | Layer, str]
"""A layer on top of the build image's: referenced from another image as it is (a lifecycle
image's, or with a name: a buildpackage's), or new (with the name its history entry gets)."""


def make_image(
    base: Image, added: Sequence[Added], labels: Mapping[str, str], reference: str
) -> BuilderImage:
    """Put the builder together from the build image and the layers added on top, in order.

    Args:
        base: the build image (its layers come first, unchanged).
        added: the layers to add, bottom first.
        labels: labels to set over the build image's own.
        reference: how messages name the builder.

    Raises:
        WriteError: a referenced layer has no diff ID (its image's config is corrupt).
    """
    # Parsed before (ImageConfig.parse), so within the bounds; parsed again to change a copy.
    config = load_object(base.config.raw, source=f"{base.reference} config", limit=MAX_CONFIG_SIZE)
    runtime = config.get("config") or {}
    runtime["Labels"] = {**(runtime.get("Labels") or {}), **labels}
    runtime["WorkingDir"] = "/layers"
    config["config"] = runtime
    config["created"] = CREATED
    records: list[LayerRecord] = []
    descriptors: list[Descriptor] = []
    history: list[dict[str, str]] = []
    passthrough: dict[str, Layer] = {}
    new: dict[str, CompressedLayer] = {}
    base_layers = base.layers()
    for position, item in enumerate([*base_layers, *added]):
        part, name = (item, "lifecycle") if isinstance(item, Layer) else item
        if isinstance(part, Layer):
            if part.diff_id is None:
                raise WriteError(f"{part.source} has no diff ID in its config; the image is corrupt")
            kind = part.descriptor.media_type
            descriptors.append(Descriptor(_OCI_TYPES.get(kind, kind), part.digest, part.size))
            records.append(LayerRecord(part.digest, part.diff_id, part.size, part.source, True))
            passthrough[part.digest] = part
            if position >= len(base_layers):  # another image's layer, referenced as it is
                history.append({"created": CREATED, "created_by": f"cnbkit: {name}"})
        else:
            layer = part
            descriptors.append(Descriptor(mt.OCI_LAYER_GZIP, layer.digest, layer.size))
            records.append(LayerRecord(layer.digest, layer.diff_id, layer.size, layer.source, layer.reused))
            new[layer.digest] = layer
            history.append({"created": CREATED, "created_by": f"cnbkit: {name}"})
    config["rootfs"] = {"type": "layers", "diff_ids": [r.diff_id for r in records]}
    if config.get("history"):
        config["history"] = [*config["history"], *history]
    config_bytes = compact_json(config)
    image_config = ImageConfig.parse(config_bytes, source=f"{reference} config")
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": Descriptor(mt.OCI_CONFIG, image_config.digest, len(config_bytes)).to_json(),
        "layers": [d.to_json() for d in descriptors],
    }
    parsed = Manifest.parse(compact_json(manifest), mt.OCI_MANIFEST, source=reference)
    return BuilderImage(reference, parsed, image_config, base, passthrough, new, records)
