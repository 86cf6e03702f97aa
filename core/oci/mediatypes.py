"""The media types of OCI and Docker images, and what kind of object each one names."""

from __future__ import annotations

from enum import Enum

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_FOREIGN_LAYER_GZIP",
    "DOCKER_LAYER_GZIP",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "MANIFEST_ACCEPT",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "OCI_ND_LAYER",
    "OCI_ND_LAYER_GZIP",
    "OCI_ND_LAYER_ZSTD",
    "Compression",
    "is_config",
    "is_index",
    "is_layer",
    "is_manifest",
    "is_schema1",
    "layer_compression",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
# Deprecated by image-spec 1.1 but still found in Windows base images.
OCI_ND_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_ND_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_ND_LAYER_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
# Refused with a clear message: schema 1 has no config blob and no content-addressed layers list.
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

_INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})
_SCHEMA1 = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

# The Accept header a registry client sends for a manifest: every type this package reads.
MANIFEST_ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)


class Compression(str, Enum):
    """How the bytes of a layer blob are compressed."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_LAYERS = {
    OCI_LAYER: Compression.NONE,
    OCI_LAYER_GZIP: Compression.GZIP,
    OCI_LAYER_ZSTD: Compression.ZSTD,
    OCI_ND_LAYER: Compression.NONE,
    OCI_ND_LAYER_GZIP: Compression.GZIP,
    OCI_ND_LAYER_ZSTD: Compression.ZSTD,
    DOCKER_LAYER_GZIP: Compression.GZIP,
    DOCKER_FOREIGN_LAYER_GZIP: Compression.GZIP,
}


def _base(media_type: str) -> str:
    # A Content-Type may carry parameters ("...+json; charset=utf-8"); the type is what counts.
    return media_type.split(";", 1)[0].strip().lower()


def is_index(media_type: str) -> bool:
    """True for an OCI image index or a Docker manifest list."""
    return _base(media_type) in _INDEXES


def is_manifest(media_type: str) -> bool:
    """True for an OCI image manifest or a Docker schema 2 manifest (not schema 1)."""
    return _base(media_type) in _MANIFESTS


def is_config(media_type: str) -> bool:
    """True for an OCI image config or a Docker container config."""
    return _base(media_type) in _CONFIGS


def is_schema1(media_type: str) -> bool:
    """True for a Docker schema 1 manifest, signed or not (which cnbkit refuses)."""
    return _base(media_type) in _SCHEMA1


def is_layer(media_type: str) -> bool:
    """True for any OCI or Docker filesystem layer type (tar, gzip, zstd, nondistributable)."""
    return _base(media_type) in _LAYERS


def layer_compression(media_type: str) -> Compression | None:
    """The compression a layer media type declares, or ``None`` if it is not a layer type.

    The core still recognises compression by magic bytes when it reads a layer; this is for
    messages and for writers that must label what they wrote.
    """
    return _LAYERS.get(_base(media_type))
