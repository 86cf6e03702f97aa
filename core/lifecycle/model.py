"""The validated lifecycle: :class:`Lifecycle` and the phases it must hold."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from ..archive.atomic import atomic_path
from ..archive.hashing import HashingReader
from ..archive.streams import Readable, close_stream, drain_into
from ..blob import Blob
from ..errors import DigestMismatchError, LifecycleError, WriteError
from ..oci.platform import Platform
from .descriptor import APISet, Descriptor

__all__ = ["OPTIONAL_PHASES", "PHASES", "Lifecycle", "LifecycleAPIs", "Rebuild", "StoredLayer"]

PHASES = ("analyzer", "builder", "creator", "detector", "exporter", "launcher", "restorer")
OPTIONAL_PHASES = ("extender", "rebaser")


@dataclass(frozen=True)
class LifecycleAPIs:
    """The Buildpack and Platform API versions a lifecycle supports."""

    buildpack: APISet
    platform: APISet

    def to_json(self) -> dict[str, dict[str, list[str]]]:
        """``{"buildpack": {"supported", "deprecated"}, "platform": {...}}``."""
        return {"buildpack": self.buildpack.to_json(), "platform": self.platform.to_json()}


Rebuild = Callable[[Blob, "Path | None"], Path]
"""Makes a lifecycle's layer again from its artifact (the validator's
:class:`~cnbkit.lifecycle.validator.Rebuilder`): reads the Blob again, writes the layer to the
path (atomically) or into the cache when ``None``, and returns where it went."""


class StoredLayer:
    """Where a validated lifecycle's layer is kept, and what makes it again when it is gone.

    (A plain class, not a dataclass: it is built on the warm path's import.)

    Attributes:
        path: the layer file (in the cache, or a ``--save`` file), or ``None`` when none is kept.
        rebuild: what writes it again from the artifact, or ``None`` when nothing can.
    """

    __slots__ = ("path", "rebuild")

    def __init__(self, path: Path | None = None, rebuild: Rebuild | None = None) -> None:
        self.path = path
        self.rebuild = rebuild


@dataclass(frozen=True)
class Lifecycle:
    """A validated lifecycle.

    Attributes:
        version: the descriptor's ``[lifecycle] version``.
        apis: the Buildpack and Platform APIs, supported and deprecated.
        os: the target OS (``linux`` or ``windows``).
        arch: the target architecture (``amd64``, ``arm64``, ...).
        variant: the architecture variant, or ``""``.
        binaries: the phase file names found, sorted (``analyzer`` or ``analyzer.exe``).
        descriptor: the parsed ``lifecycle.toml``.
        blob: the artifact it came from; ``blob.digest`` is its sha256.
        layer_digest: ``sha256:`` of the normalised layer (its diffID in an image).
        layer_size: the layer's byte count.
        stored: where the layer file is, and what makes it again (see :class:`StoredLayer`).
    """

    version: str
    apis: LifecycleAPIs
    os: str
    arch: str
    variant: str
    binaries: tuple[str, ...]
    descriptor: Descriptor
    blob: Blob
    layer_digest: str
    layer_size: int
    stored: StoredLayer = field(default_factory=StoredLayer, repr=False, compare=False)

    @classmethod
    def from_descriptor(
        cls,
        descriptor: Descriptor,
        target: Platform,
        *,
        binaries: tuple[str, ...],
        blob: Blob,
        layer_digest: str,
        layer_size: int,
        stored: StoredLayer,
    ) -> Lifecycle:
        """The lifecycle a descriptor describes for ``target``: version, APIs and platform are
        derived, never restated (the validator and the cache record build it alike)."""
        return cls(
            version=descriptor.version,
            apis=LifecycleAPIs(descriptor.buildpack, descriptor.platform),
            os=target.os,
            arch=target.architecture,
            variant=target.variant,
            binaries=binaries,
            descriptor=descriptor,
            blob=blob,
            layer_digest=layer_digest,
            layer_size=layer_size,
            stored=stored,
        )

    @property
    def platform(self) -> Platform:
        """The target platform as a :class:`~cnbkit.Platform`."""
        return Platform(self.os, self.arch, self.variant)

    def _layer_file(self) -> Path:
        path, rebuild = self.stored.path, self.stored.rebuild
        if path is not None and path.is_file():
            if not _shared(path) or _matches(path, self.layer_digest):
                return path
            if rebuild is not None:  # a --save file linked into the cache was edited
                with contextlib.suppress(OSError):
                    path.unlink()
        if rebuild is None:
            raise LifecycleError(f"the layer of lifecycle {self.version} is no longer available")
        return rebuild(self.blob, None)  # re-read the artifact; the layer lands in the cache

    def layer(self) -> Readable:
        """Open the normalised builder layer: an uncompressed tar of ``cnb/``,
        ``cnb/lifecycle.toml`` and ``cnb/lifecycle/...``, sorted, root-owned, fixed mtime.

        The stream is verified against :attr:`layer_digest` as it is read: a cached file that
        changed on disk fails at the end of the stream instead of being served.
        """
        return HashingReader(
            open(self._layer_file(), "rb"),
            expected=self.layer_digest,
            source=f"the layer of lifecycle {self.version}",
        )

    def save_layer(self, path: str | PathLike[str]) -> Path:
        """Write :meth:`layer` to ``path`` atomically: a temp file beside it, then a rename.

        Nothing is left at ``path`` (nor a temp file beside it) if anything fails.

        Raises:
            WriteError: the file cannot be written.
        """
        target = Path(path).absolute()
        source, rebuild = self.stored.path, self.stored.rebuild
        if (source is None or not source.is_file()) and rebuild is not None:
            return rebuild(self.blob, target)  # write it straight there: one write, not two
        try:
            with atomic_path(target) as tmp:
                reader = (
                    self.layer() if source is None or not _shared(source) else self._verified_on_copy(source)
                )
                try:
                    with open(tmp, "xb") as out:
                        drain_into(reader, out)
                except OSError as exc:
                    raise WriteError.from_os(target, exc) from None
                finally:
                    close_stream(reader)
        except DigestMismatchError:
            if source is None or rebuild is None:
                raise
            with contextlib.suppress(OSError):  # a --save file linked into the cache was edited
                source.unlink()
            return rebuild(self.blob, target)
        return target

    def _verified_on_copy(self, source: Path) -> Readable:
        # Verified while it is copied (a mismatch rebuilds), not read twice.
        return HashingReader(open(source, "rb"), expected=self.layer_digest, source=f"{source}")

    def to_json(self, uri: str) -> dict[str, Any]:
        """The ``cnbkit resolve --json`` object (``uri`` redacted; the README lists its keys).

        A lifecycle out of an image adds ``"image": {"digest", "platform"}``: the manifest
        digest and the platform chosen; its ``digest`` is then the lifecycle layer's.
        """
        data: dict[str, Any] = {
            "uri": uri,
            "resolver": self.blob.resolver,
            "version": self.version,
            "os": self.os,
            "arch": self.arch,
            "apis": self.apis.to_json(),
            "binaries": list(self.binaries),
            "digest": self.blob.digest,
            "size": self.blob.size,
        }
        image = self.blob.image
        if image is not None:
            data["image"] = {"digest": image.digest, "platform": str(image.platform)}
        return data


def _shared(path: Path) -> bool:
    """Whether the layer file has another name (a ``--save`` file linked into the cache)."""
    try:
        return path.stat().st_nlink > 1
    except OSError:
        return False


def _matches(path: Path, digest: str) -> bool:
    """Whether the file's sha256 is ``digest`` (read in big pieces: one pass, no copy kept)."""
    sha = hashlib.sha256()
    buffer = bytearray(1024 * 1024)
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as file:
            while got := file.readinto(buffer):
                sha.update(view[:got])
    except OSError:
        return False
    return f"sha256:{sha.hexdigest()}" == digest
