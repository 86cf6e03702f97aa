"""Typed cache records: one kind per namespace, each field meaning one thing.

Every record is a small JSON file under ``records/``, named ``<kind>.<sha256 of its key>.json``
and carrying its ``kind`` and the :data:`FORMAT` it was written in. A file of another kind, of
another format (an older cnbkit's), or damaged is a miss, never misread: the caller does the
work again and writes a record of today's format. The files of cnbkit before typed records
(``index/`` and ``stamps/``) are never read; ``prune`` and ``clear`` remove them.

A record that names a blob (its ``blob()`` is a digest) is only found while the blob is in the
cache; ``cache ls`` names blobs by such records, and ``prune`` keeps the blobs they name.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, NamedTuple, Protocol, TypeVar

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
    "kind_name",
]

# Bumped whenever a kind's fields change meaning: records of another format are misses.
FORMAT = 1

# Named tuples, not dataclasses: immutable and typed alike, but made ten times faster, and
# this module is imported by every warm resolve (a frozen dataclass costs ~0.7 ms to create).


class Record(Protocol):
    """What every kind has: the ``key`` it is found by, and the blob it names, if any."""

    @property
    def key(self) -> str:
        """What the record is found by (what that is depends on the kind)."""

    def blob(self) -> str | None:
        """The blob under ``blobs/`` this record names (kept by ``prune``), or ``None``."""

    def _asdict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Record)


class UrlAnswer(NamedTuple):
    """What a URL last answered (``key``: the URL, stored redacted); names its blob."""

    key: str
    digest: str
    size: int
    etag: str | None = None  # the HTTP ETag, for If-None-Match
    last_modified: str | None = None  # the HTTP Last-Modified, for If-Modified-Since
    fetched: float = 0.0

    def blob(self) -> str | None:
        """The blob's digest."""
        return self.digest


class _BlobPointer(NamedTuple):
    key: str
    digest: str
    size: int

    def blob(self) -> str | None:
        """The blob's digest."""
        return self.digest


class TagDigest(_BlobPointer):
    """The manifest a registry tag last named (``key``: ``docker://NAME:TAG``)."""

    __slots__ = ()


class DaemonConfig(_BlobPointer):
    """The config blob of a docker daemon's image (``key``: ``docker-daemon:<image id>``)."""

    __slots__ = ()


class LayerGzip(NamedTuple):
    """A builder layer's gzip in the cache (``key``: ``<compressor>:<diff ID>``)."""

    key: str
    compressor: str  # library and level: they decide the bytes
    diff_id: str
    digest: str
    size: int

    def blob(self) -> str | None:
        """The gzip's digest."""
        return self.digest


class FileStamp(NamedTuple):
    """A local file's digest when it had this stat stamp (``key``: ``file:<resolved path>``)."""

    key: str
    stamp: str  # size:mtime_ns:ctime_ns:inode
    digest: str
    size: int

    def blob(self) -> str | None:
        """None: the file is where it lies."""
        return None


class RegistryEndpoint(NamedTuple):
    """How a registry answers (``key``: its API host): anonymously, on ``scheme``."""

    key: str
    scheme: str  # "http" or "https"

    def blob(self) -> str | None:
        """None."""
        return None


class PushedBlob(NamedTuple):
    """Where this machine last pushed a blob (``key``: ``<API host>:<digest>``)."""

    key: str
    digest: str
    repository: str  # a repository of that registry holding the blob, to mount from

    def blob(self) -> str | None:
        """None: the blob is in the registry, not (necessarily) here."""
        return None


class LifecycleFromImage(NamedTuple):
    """The lifecycle a lifecycle image's layers give (``key``: a hash of the layer digests)."""

    key: str
    digest: str  # the lifecycle Blob's digest and size: its validated lifecycle is found by it
    size: int
    passthrough_layer: int | None = None  # the image layer that is the Blob, if one is

    def blob(self) -> str | None:
        """None: the validated lifecycle is found by the digest, under ``lifecycles/``."""
        return None


class PackageVerdict(NamedTuple):
    """A buildpackage layer passed the checks (``key`` names the rules, layer and modules)."""

    key: str
    layer_digest: str

    def blob(self) -> str | None:
        """None."""
        return None


# Each kind's name, written in its files and their names: never reuse one for other fields.
KINDS: dict[str, type[Record]] = {
    "url": UrlAnswer,
    "tag": TagDigest,
    "daemon-config": DaemonConfig,
    "layer-gzip": LayerGzip,
    "file": FileStamp,
    "registry-endpoint": RegistryEndpoint,
    "pushed": PushedBlob,
    "lifecycle-from-image": LifecycleFromImage,
    "package-verdict": PackageVerdict,
}
_NAMES = {kind: name for name, kind in KINDS.items()}


def kind_name(kind: type[Record]) -> str:
    """The name of ``kind`` (``"url"``, ``"file"``...)."""
    return _NAMES[kind]


def encode(record: Record) -> bytes:
    """The JSON of ``record``, with its kind and format."""
    data: dict[str, Any] = {"kind": kind_name(type(record)), "format": FORMAT, **record._asdict()}
    return json.dumps(data, indent=1, sort_keys=True).encode()


def decode(data: bytes, kind: type[R]) -> R | None:
    """The record of ``kind`` in ``data``; ``None`` for another kind or format, or damage."""
    try:
        fields = json.loads(data)
        if not isinstance(fields, dict) or fields.pop("kind", None) != _NAMES[kind]:
            return None
        if fields.pop("format", None) != FORMAT:
            return None
        record = kind(**fields)
    except (ValueError, TypeError):
        return None
    # A field of the wrong type (damage, or a hand edit) is a miss too.
    for name, value in record._asdict().items():
        if not isinstance(value, _TYPES.get(_annotation(kind, name), object)):
            return None
    return record


def _annotation(kind: type, name: str) -> str:
    for base in kind.__mro__:  # TagDigest's fields are declared by _BlobPointer
        annotations = inspect.get_annotations(base)
        if name in annotations:
            # A NamedTuple keeps a postponed annotation as a ForwardRef (Python 3.10 to 3.13),
            # whose str() is "ForwardRef('str')": without this every field passed as `object`.
            hint = annotations[name]
            return str(getattr(hint, "__forward_arg__", hint))
    return ""


_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
}
