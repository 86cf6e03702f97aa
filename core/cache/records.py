"""Typed cache records: one kind per namespace, each field meaning one thing.

Every record is a small JSON file under ``records/``, named ``<kind>.<sha256 of its key>.json``
and carrying its ``kind`` and the :data:`FORMAT` it was written in. A file of another kind, of
another format (an older cnbkit's), or damaged is a miss, never misread: the caller does the
work again and writes a record of today's format. The files of cnbkit before typed records
(``index/`` and ``stamps/``) are never read; ``prune`` and ``clear`` remove them.

A record whose digest names a blob (:attr:`Record.names_blob`) is only found while the blob is
in the cache; ``cache ls`` names blobs by such records, and ``prune`` keeps the blobs they name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

__all__ = [
    "FORMAT",
    "KINDS",
    "DaemonConfig",
    "FileStamp",
    "LayerGzip",
    "LifecycleFromImage",
    "PackageVerdict",
    "PushedBlob",
    "Record",
    "RegistryEndpoint",
    "TagDigest",
    "UrlAnswer",
    "decode",
    "encode",
]

# Bumped whenever a kind's fields change meaning: records of another format are misses.
FORMAT = 1

R = TypeVar("R", bound="Record")


@dataclass(frozen=True)
class Record:
    """A record found by ``key`` (what ``key`` is depends on the kind)."""

    kind: ClassVar[str] = ""
    names_blob: ClassVar[bool] = False  # its ``digest`` is a blob under blobs/

    key: str

    def blob(self) -> str | None:
        """The blob this record names (kept by ``prune``), or ``None``."""
        return getattr(self, "digest", None) if self.names_blob else None


@dataclass(frozen=True)
class UrlAnswer(Record):
    """What a URL last answered (``key``: the URL, stored redacted)."""

    kind: ClassVar[str] = "url"
    names_blob: ClassVar[bool] = True
    digest: str
    size: int
    etag: str | None = None  # the HTTP ETag, for If-None-Match
    last_modified: str | None = None  # the HTTP Last-Modified, for If-Modified-Since
    fetched: float = 0.0


@dataclass(frozen=True)
class TagDigest(Record):
    """The manifest a registry tag last named (``key``: ``docker://NAME:TAG``)."""

    kind: ClassVar[str] = "tag"
    names_blob: ClassVar[bool] = True
    digest: str
    size: int


@dataclass(frozen=True)
class DaemonConfig(Record):
    """The config blob of a docker daemon's image (``key``: ``docker-daemon:<image id>``)."""

    kind: ClassVar[str] = "daemon-config"
    names_blob: ClassVar[bool] = True
    digest: str
    size: int


@dataclass(frozen=True)
class LayerGzip(Record):
    """A builder layer's gzip in the cache (``key``: ``<compressor>:<diff ID>``)."""

    kind: ClassVar[str] = "layer-gzip"
    names_blob: ClassVar[bool] = True
    compressor: str  # library and level: they decide the bytes
    diff_id: str
    digest: str
    size: int


@dataclass(frozen=True)
class FileStamp(Record):
    """A local file's digest when it had this stat stamp (``key``: ``file:<resolved path>``)."""

    kind: ClassVar[str] = "file"
    stamp: str  # size:mtime_ns:ctime_ns:inode
    digest: str
    size: int


@dataclass(frozen=True)
class RegistryEndpoint(Record):
    """How a registry answers (``key``: its API host): anonymously, on ``scheme``."""

    kind: ClassVar[str] = "registry-endpoint"
    scheme: str  # "http" or "https"


@dataclass(frozen=True)
class PushedBlob(Record):
    """Where this machine last pushed a blob (``key``: ``<API host>:<digest>``)."""

    kind: ClassVar[str] = "pushed"
    digest: str
    repository: str  # a repository of that registry holding the blob, to mount from


@dataclass(frozen=True)
class LifecycleFromImage(Record):
    """The lifecycle a lifecycle image's layers give (``key``: a hash of the layer digests)."""

    kind: ClassVar[str] = "lifecycle-from-image"
    digest: str  # the lifecycle Blob's digest and size: its validated lifecycle is found by it
    size: int
    passthrough_layer: int | None = None  # the image layer that is the Blob, if one is


@dataclass(frozen=True)
class PackageVerdict(Record):
    """A buildpackage layer passed the checks (``key`` names the rules, layer and modules)."""

    kind: ClassVar[str] = "package-verdict"
    layer_digest: str


KINDS: dict[str, type[Record]] = {
    k.kind: k
    for k in (
        UrlAnswer,
        TagDigest,
        DaemonConfig,
        LayerGzip,
        FileStamp,
        RegistryEndpoint,
        PushedBlob,
        LifecycleFromImage,
        PackageVerdict,
    )
}


def encode(record: Record) -> bytes:
    """The JSON of ``record``, with its kind and format."""
    data: dict[str, Any] = {"kind": record.kind, "format": FORMAT, **dataclasses.asdict(record)}
    return json.dumps(data, indent=1, sort_keys=True).encode()


def decode(data: bytes, kind: type[R]) -> R | None:
    """The record of ``kind`` in ``data``; ``None`` for another kind or format, or damage."""
    try:
        fields = json.loads(data)
        if not isinstance(fields, dict) or fields.pop("kind", None) != kind.kind:
            return None
        if fields.pop("format", None) != FORMAT:
            return None
        record = kind(**fields)
    except (ValueError, TypeError):
        return None
    # A field of the wrong type (damage, or a hand edit) is a miss too.
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if not isinstance(value, _TYPES.get(str(field.type), object)):
            return None
    return record


_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
}
