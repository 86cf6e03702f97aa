"""The image config blob: platform, labels, environment, entrypoint and layer diff IDs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..archive.digest import validate_digest
from ..errors import ArchiveError
from ._json import check_string_map, check_strings, load_object, optional_str
from .errors import ManifestError
from .manifest import sha256_digest, verify_digest
from .platform import Platform

__all__ = ["MAX_CONFIG_SIZE", "HistoryEntry", "ImageConfig"]

MAX_CONFIG_SIZE = 4 * 1024 * 1024  # configs with long histories are tens of KiB


@dataclass(frozen=True)
class HistoryEntry:
    """One ``history`` item of a config: how a layer (or an empty step) was made."""

    created: str = ""
    created_by: str = ""
    comment: str = ""
    author: str = ""
    empty_layer: bool = False


@dataclass(frozen=True)
class ImageConfig:
    """An OCI image config or Docker container config.

    Attributes:
        os: the operating system (``linux``, ``windows``).
        architecture: the CPU architecture as the config spells it (``amd64``, ``arm64``).
        variant: the CPU variant (``v8``), or ``""``.
        os_version: Windows' ``os.version``, or ``""``.
        labels: the image labels (``config.Labels``).
        env: ``KEY=VALUE`` strings (``config.Env``).
        user: ``config.User``.
        working_dir: ``config.WorkingDir``.
        entrypoint: ``config.Entrypoint``, ``None`` when unset.
        cmd: ``config.Cmd``, ``None`` when unset.
        diff_ids: the uncompressed digest of every layer, bottom first (``rootfs.diff_ids``).
        history: the build history, oldest first.
        digest: ``sha256`` of :attr:`raw`.
        raw: the bytes the config was parsed from.
    """

    os: str
    architecture: str
    digest: str
    raw: bytes = field(repr=False)
    variant: str = ""
    os_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    env: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = ""
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    diff_ids: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = ()

    @property
    def platform(self) -> Platform:
        """The image's platform (``os``/``architecture``/``variant``)."""
        return Platform(self.os, self.architecture, self.variant)

    def label(self, name: str, default: str | None = None) -> str | None:
        """The value of label ``name``, or ``default`` when the image lacks it."""
        return self.labels.get(name, default)

    def env_value(self, name: str) -> str | None:
        """The value of environment variable ``name`` in :attr:`env`, or ``None``."""
        prefix = name + "="
        return next((item[len(prefix) :] for item in self.env if item.startswith(prefix)), None)

    @classmethod
    def parse(cls, data: bytes, *, source: str = "image config", expected: str | None = None) -> ImageConfig:
        """Parse config bytes, first checking them against ``expected`` if given.

        Args:
            data: the config blob (at most :data:`MAX_CONFIG_SIZE` bytes).
            source: what the config belongs to, for messages.
            expected: the digest the manifest gives for the config.

        Raises:
            DigestMismatchError: the bytes do not have digest ``expected``.
            ManifestError: too large, not JSON, or a field of the wrong type.
        """
        if len(data) > MAX_CONFIG_SIZE:
            raise ManifestError(f"{source} is {len(data)} bytes, more than the {MAX_CONFIG_SIZE} allowed")
        if expected is not None:
            verify_digest(data, expected, source=source)
        obj = load_object(data, source=source, limit=MAX_CONFIG_SIZE)
        inner = obj.get("config")
        if inner is None:
            inner = {}  # an image without runtime settings has "config": null or none at all
        if not isinstance(inner, dict):
            raise ManifestError(f"{source}: 'config' must be an object")
        entrypoint = inner.get("Entrypoint")
        cmd = inner.get("Cmd")
        return cls(
            os=optional_str(obj, "os", source=source),
            architecture=optional_str(obj, "architecture", source=source),
            variant=optional_str(obj, "variant", source=source),
            os_version=optional_str(obj, "os.version", source=source),
            digest=sha256_digest(data),
            raw=data,
            labels=check_string_map(inner.get("Labels"), key="config.Labels", source=source),
            env=check_strings(inner.get("Env"), key="config.Env", source=source),
            user=optional_str(inner, "User", source=source),
            working_dir=optional_str(inner, "WorkingDir", source=source),
            entrypoint=None
            if entrypoint is None
            else check_strings(entrypoint, key="config.Entrypoint", source=source),
            cmd=None if cmd is None else check_strings(cmd, key="config.Cmd", source=source),
            diff_ids=_diff_ids(obj.get("rootfs"), source),
            history=_history(obj.get("history"), source),
        )


def _diff_ids(rootfs: Any, source: str) -> tuple[str, ...]:
    if rootfs is None:
        return ()
    if not isinstance(rootfs, dict):
        raise ManifestError(f"{source}: 'rootfs' must be an object")
    ids = check_strings(rootfs.get("diff_ids"), key="rootfs.diff_ids", source=source)
    try:
        return tuple(validate_digest(item) for item in ids)
    except ArchiveError as exc:
        raise ManifestError(f"{source}: rootfs.diff_ids: {exc}") from None


def _history(items: Any, source: str) -> tuple[HistoryEntry, ...]:
    if items is None:
        return ()
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ManifestError(f"{source}: 'history' must be a list of objects")
    result = []
    for item in items:
        empty = item.get("empty_layer", False)
        if not isinstance(empty, bool):
            raise ManifestError(f"{source}: history empty_layer must be true or false")
        result.append(
            HistoryEntry(
                created=optional_str(item, "created", source=source),
                created_by=optional_str(item, "created_by", source=source),
                comment=optional_str(item, "comment", source=source),
                author=optional_str(item, "author", source=source),
                empty_layer=empty,
            )
        )
    return tuple(result)
