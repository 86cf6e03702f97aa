"""Image manifests and indexes (OCI and Docker schema 2) parsed from their exact bytes.

The digest of a manifest is the sha256 of the bytes as served, never of a re-serialisation,
so each object keeps its ``raw`` bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DigestMismatchError
from . import mediatypes as mt
from ._json import check_string_map, load_object, optional_str
from .descriptor import Descriptor
from .errors import ManifestError

__all__ = [
    "MAX_MANIFEST_SIZE",
    "Index",
    "Manifest",
    "parse_manifest_or_index",
    "sha256_digest",
    "verify_digest",
]

MAX_MANIFEST_SIZE = 4 * 1024 * 1024  # distribution's own limit; real manifests are a few KiB

_SCHEMA1_HINT = (
    "is a Docker schema 1 manifest, which cnbkit does not read; "
    "push the image again with a current docker, buildah or skopeo (schema 2 or OCI)"
)


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: the canonical digest of a manifest's bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: bytes, expected: str, *, source: str) -> None:
    """Check that ``data`` has digest ``expected`` (``sha256`` or ``sha512``).

    Raises:
        DigestMismatchError: the bytes have another digest.
    """
    algorithm = expected.split(":", 1)[0]
    actual = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    if actual != expected:
        raise DigestMismatchError(f"{source}: content has digest {actual}, expected {expected}")


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config blob and the layers, bottom to top.

    Attributes:
        media_type: :data:`~cnbkit.oci.mediatypes.OCI_MANIFEST` or ``DOCKER_MANIFEST``.
        config: the descriptor of the image config.
        layers: the layer descriptors, bottom layer first.
        annotations: the manifest's annotations.
        digest: ``sha256`` of :attr:`raw`.
        raw: the bytes the manifest was parsed from.
        subject: the manifest this one refers to (image-spec 1.1 referrers), if any.
        artifact_type: image-spec 1.1 ``artifactType``, or ``""``.
    """

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    digest: str
    raw: bytes = field(repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    subject: Descriptor | None = None
    artifact_type: str = ""

    @property
    def size(self) -> int:
        """The size of :attr:`raw` in bytes."""
        return len(self.raw)

    @property
    def is_image(self) -> bool:
        """True when the config is an image config (not an artifact such as an attestation)."""
        return mt.is_config(self.config.media_type)

    def descriptor(self) -> Descriptor:
        """A descriptor pointing at this manifest (for an index entry)."""
        return Descriptor(self.media_type, self.digest, self.size)

    @classmethod
    def parse(cls, data: bytes, media_type: str | None = None, *, source: str = "manifest") -> Manifest:
        """Parse a manifest; see :func:`parse_manifest_or_index` for the arguments.

        Raises:
            ManifestError: the bytes are not an image manifest.
        """
        result = parse_manifest_or_index(data, media_type, source=source)
        if not isinstance(result, Manifest):
            raise ManifestError(f"{source} is an image index, where an image manifest was expected")
        return result


@dataclass(frozen=True)
class Index:
    """An image index (OCI) or manifest list (Docker): manifests for several platforms.

    Attributes:
        media_type: :data:`~cnbkit.oci.mediatypes.OCI_INDEX` or ``DOCKER_MANIFEST_LIST``.
        manifests: the entries, in the order the index lists them.
        digest: ``sha256`` of :attr:`raw`.
        raw: the bytes the index was parsed from.
        annotations: the index's annotations.
    """

    media_type: str
    manifests: tuple[Descriptor, ...]
    digest: str
    raw: bytes = field(repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def size(self) -> int:
        """The size of :attr:`raw` in bytes."""
        return len(self.raw)

    def descriptor(self) -> Descriptor:
        """A descriptor pointing at this index."""
        return Descriptor(self.media_type, self.digest, self.size)

    @classmethod
    def parse(cls, data: bytes, media_type: str | None = None, *, source: str = "index") -> Index:
        """Parse an index; see :func:`parse_manifest_or_index` for the arguments.

        Raises:
            ManifestError: the bytes are not an image index.
        """
        result = parse_manifest_or_index(data, media_type, source=source)
        if not isinstance(result, Index):
            raise ManifestError(f"{source} is an image manifest, where an image index was expected")
        return result


def _media_type(obj: dict[str, Any], declared: str | None, source: str) -> str:
    """The media type from the body's ``mediaType``, the transport's, or the document's shape."""
    body = optional_str(obj, "mediaType", source=source)
    outer = (declared or "").split(";", 1)[0].strip().lower()
    if obj.get("schemaVersion") == 1 or mt.is_schema1(body) or mt.is_schema1(outer):
        raise ManifestError(f"{source} {_SCHEMA1_HINT}")
    known_outer = outer if (mt.is_index(outer) or mt.is_manifest(outer)) else ""
    if body and known_outer and body != known_outer:
        # image-spec requires them to agree; a mismatch is how a confused-deputy attack starts.
        raise ManifestError(f"{source} says it is {body} but was served as {known_outer}")
    chosen = body or known_outer
    if not chosen:
        # mediaType is optional in OCI 1.0 documents: tell them apart by their shape.
        if "manifests" in obj:
            chosen = mt.OCI_INDEX
        elif "config" in obj and "layers" in obj:
            chosen = mt.OCI_MANIFEST
        else:
            raise ManifestError(f"{source} is neither an image manifest nor an image index")
    if not (mt.is_index(chosen) or mt.is_manifest(chosen)):
        raise ManifestError(f"{source} has unsupported media type {chosen[:100]!r}; expected an image")
    return chosen


def _descriptors(obj: dict[str, Any], key: str, source: str) -> tuple[Descriptor, ...]:
    items = obj.get(key)
    if not isinstance(items, list):
        raise ManifestError(f"{source}: {key!r} must be a list")
    return tuple(Descriptor.from_json(item, source=source) for item in items)


def parse_manifest_or_index(
    data: bytes, media_type: str | None = None, *, source: str = "manifest"
) -> Manifest | Index:
    """Parse image manifest or index bytes, OCI or Docker.

    Args:
        data: the exact bytes (at most :data:`MAX_MANIFEST_SIZE`).
        media_type: the transport's idea of the type (a registry's Content-Type, a
            descriptor's mediaType), or ``None``. The body's ``mediaType`` wins when both are
            given; they must then agree.
        source: what the bytes are, for messages (``image docker.io/x@sha256:...``).

    Raises:
        ManifestError: too large, not JSON, schema 1, an unknown media type or a bad field.
    """
    obj = load_object(data, source=source, limit=MAX_MANIFEST_SIZE)
    chosen = _media_type(obj, media_type, source)
    version = obj.get("schemaVersion")
    if version is not None and (version != 2 or isinstance(version, bool)):
        raise ManifestError(f"{source} has schemaVersion {version!r}; only 2 is supported"[:200])
    digest = sha256_digest(data)
    annotations = check_string_map(obj.get("annotations"), key="annotations", source=source)
    if mt.is_index(chosen):
        return Index(chosen, _descriptors(obj, "manifests", source), digest, data, annotations)
    config = Descriptor.from_json(obj.get("config"), source=f"{source} config")
    subject = None
    if obj.get("subject") is not None:
        subject = Descriptor.from_json(obj["subject"], source=f"{source} subject")
    return Manifest(
        media_type=chosen,
        config=config,
        layers=_descriptors(obj, "layers", source),
        digest=digest,
        raw=data,
        annotations=annotations,
        subject=subject,
        artifact_type=optional_str(obj, "artifactType", source=source),
    )
