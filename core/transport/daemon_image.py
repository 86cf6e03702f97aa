"""An image in the Docker daemon, as the :class:`~cnbkit.oci.image.Image` model.

The daemon hands out an image as a ``docker save`` tar (the SDK's ``get_image``), streamed:
never held in memory, read entry by entry with cnbkit's strict tar reader, each layer and the
config hashed into the cache as it passes. Both ``docker save`` formats are read: the classic
one (``<id>/layer.tar``, ``<hex>.json``, ``manifest.json``) and Docker 25's OCI one
(``blobs/sha256/<hex>``, whose names are checked against their contents). The layers of a
saved image are uncompressed tars, so each layer's digest must equal its diff ID in the
config: that is checked, and so is the config against the daemon's own ``RootFS``.

The daemon keeps no registry manifest for an image, so one is written here from the config
and the layers (OCI media types, uncompressed layers): the image's digest is that manifest's,
stable for the same image, but not the digest the image has in a registry. Once an image's
config and layers are cached, opening it again costs one ``inspect`` and no ``save``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..archive.streams import CHUNK, ChunkReader, Readable
from ..archive.tarinput import DEFAULT_MAX_TOTAL, size_limit_error
from ..archive.tarreader import TarEntry, iter_tar, link_target
from ..cache import Cache
from ..cache.records import DaemonConfig
from ..errors import CnbkitError, DigestMismatchError
from ..oci import mediatypes as mt
from ..oci.config import MAX_CONFIG_SIZE, ImageConfig
from ..oci.descriptor import Descriptor
from ..oci.errors import ImageError, ImageNotFoundError, PlatformNotFoundError
from ..oci.image import Image
from ..oci.manifest import Manifest
from ..oci.platform import Platform
from ..redact import printable
from .daemon import docker_error, inspect_image
from .docker_save import save_entry, synthesize

__all__ = ["DaemonImage", "open_daemon_image"]

_BLOB_NAME = re.compile(r"^blobs/sha256/([a-f0-9]{64})\Z")
_SMALL = ("manifest.json", "index.json")
# Besides its layers, a save holds a config, manifest.json and (Docker 25's OCI format) an index
# and a manifest: each file is bounded by --max-size, so the whole stream is too.
_FILES_BESIDES_LAYERS = 4


class DaemonImage(Image):
    """An image saved from the Docker daemon; its (uncompressed) layers are cache files."""

    def __init__(self, reference: str, manifest: Manifest, config: ImageConfig, *, cache: Cache) -> None:
        super().__init__(reference, manifest, config)
        self._cache = cache

    def cached_blob(self, descriptor: Descriptor) -> Path | None:
        """The cache file of the (uncompressed) layer."""
        path = self._cache.blob_path(descriptor.digest)
        return path if path.is_file() else None

    def open_blob(self, descriptor: Descriptor) -> Readable:
        """The cached blob (the :class:`~cnbkit.oci.image.Layer` verifies it again as it reads)."""
        try:
            return open(self._cache.blob_path(descriptor.digest), "rb")  # the Layer closes it
        except FileNotFoundError:
            raise ImageError(
                f"{self.reference}: layer {descriptor.digest} left the cache; resolve the image again"
            ) from None


def _platform_of(info: dict[str, Any]) -> Platform:
    return Platform(
        str(info.get("Os") or ""), str(info.get("Architecture") or ""), str(info.get("Variant") or "")
    )


class _Saved:
    """What one pass over a ``docker save`` stream found: file digests and the small JSON files."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, int]] = {}  # name -> (digest, size), for cached files
        self.links: dict[str, str] = {}  # symlink name -> target name
        self.small: dict[str, bytes] = {}

    def digest_of(self, name: str, source: str) -> tuple[str, int]:
        seen: set[str] = set()
        while name in self.links and name not in seen:
            seen.add(name)
            name = self.links[name]
        if name not in self.files:
            raise ImageError(
                f"{source}: the saved image lacks {printable(name)[:200]!r}; docker save is broken"
            )
        return self.files[name]


def _keep(entry: TarEntry, cache: Cache, expected: str | None, source: str) -> tuple[str, int]:
    """Hash an entry into the cache (kept under its digest); check it against its name's."""
    writer = cache.writer()
    with writer:
        for chunk in entry.chunks():
            writer.write(chunk)
        digest, size = writer.finish()
        if expected is not None and digest != expected:
            raise DigestMismatchError(f"{source}: {entry.name} has digest {digest}; the save is corrupt")
        if not cache.has_blob(digest):
            writer.commit()
    return digest, size


def _read_save(client: Any, name: str, cache: Cache, source: str, max_size: int, layers: int) -> _Saved:
    """One pass over the ``docker save`` stream: every file at most ``max_size`` bytes (refused
    by its header, before its data is read), the whole at most that per file of an image of
    ``layers`` layers."""
    import docker.errors

    saved = _Saved()
    total = max_size * (max(layers, 1) + _FILES_BESIDES_LAYERS)
    try:
        stream = ChunkReader(iter(client.api.get_image(name, chunk_size=CHUNK)))
        for entry in iter_tar(stream, source, max_total=total):
            if entry.size > max_size:
                raise size_limit_error(f"{source}: {printable(entry.name)[:200]}", max_size, "layer")
            if entry.kind == "symlink":
                saved.links[entry.name] = link_target(entry.name, entry.linkname)
            elif entry.kind != "file":
                continue
            elif entry.name in _SMALL:
                if entry.size > MAX_CONFIG_SIZE:
                    raise ImageError(f"{source}: {entry.name} is {entry.size} bytes; refused")
                saved.small[entry.name] = b"".join(entry.chunks())
            elif match := _BLOB_NAME.match(entry.name):
                saved.files[entry.name] = _keep(entry, cache, f"sha256:{match[1]}", source)
            elif entry.name.endswith("/layer.tar") or (
                "/" not in entry.name and entry.name.endswith(".json")
            ):
                saved.files[entry.name] = _keep(entry, cache, None, source)
    except docker.errors.DockerException as exc:
        raise ImageError(f"{source}: docker save failed: {docker_error(exc)}") from None
    return saved


def _from_cache(cache: Cache, image_id: str, source: str) -> tuple[ImageConfig, list[tuple[str, int]]] | None:
    """The config and layers of image ``image_id`` if an earlier save left them all cached."""
    entry = cache.recall(DaemonConfig, f"docker-daemon:{image_id}")
    if entry is None:
        return None
    try:
        data = cache.blob_path(entry.digest).read_bytes()
        config = ImageConfig.parse(data, source=f"{source} config", expected=entry.digest)
    except (OSError, CnbkitError):
        return None
    layers = []
    for diff_id in config.diff_ids:
        path = cache.blob_path(diff_id)
        if not path.is_file():
            return None
        layers.append((diff_id, path.stat().st_size))
    return config, layers


def open_daemon_image(
    client: Any,
    name: str,
    *,
    cache: Cache,
    platform: Platform,
    where: str,
    required: bool = True,
    max_size: int = DEFAULT_MAX_TOTAL,
) -> DaemonImage | None:
    """Open image ``name`` of the daemon ``client`` talks to, for ``platform``.

    Args:
        client: a Docker SDK client (``docker.DockerClient``).
        name: the image as the daemon knows it (``repo:tag``, ``repo@sha256:...``, an ID).
        cache: where the layers and config go, by digest.
        platform: the platform the image must be.
        where: the daemon's address, for messages.
        required: when ``False``, an image the daemon lacks (or has for another platform) is
            ``None`` rather than an error.
        max_size: the most bytes a layer (any file of the save) may hold (``--max-size``).

    Raises:
        ImageNotFoundError: the daemon has no such image (``required``).
        PlatformNotFoundError: the daemon's image is of another platform (``required``).
        ImageError: the save failed, or its layers do not match the config.
        ArchiveError: a file of the save is larger than ``max_size``.
    """
    source = f"{name} (Docker daemon at {where})"
    info = inspect_image(client, name, where)
    if info is None:
        if not required:
            return None
        raise ImageNotFoundError(
            f"{name}: no such image in the Docker daemon at {where}; docker pull it, or use "
            "--pull-policy if-not-present to fetch it from its registry"
        )
    found = _platform_of(info)
    if not platform.matches(found):
        if not required:
            return None
        raise PlatformNotFoundError(
            f"{source} is {found}, not {platform}; pull that platform or choose it with --platform",
            [str(found)],
            single=True,
        )
    image_id = str(info.get("Id") or "")
    rootfs = info.get("RootFS") if isinstance(info.get("RootFS"), dict) else {}
    expected_layers = [str(d) for d in (rootfs or {}).get("Layers") or []]
    cached = _from_cache(cache, image_id, source) if image_id else None
    if cached is None:
        saved = _read_save(client, name, cache, source, max_size, len(expected_layers))
        entry = save_entry(saved.small.get("manifest.json"), source)
        config_digest, config_size = saved.digest_of(entry["Config"], source)
        if config_size > MAX_CONFIG_SIZE:
            raise ImageError(f"{source}: the config is {config_size} bytes, over the {MAX_CONFIG_SIZE} limit")
        data = cache.blob_path(config_digest).read_bytes()
        config = ImageConfig.parse(data, source=f"{source} config", expected=config_digest)
        layers = [saved.digest_of(str(path), source) for path in entry["Layers"]]
        if [d for d, _ in layers] != list(config.diff_ids):
            raise ImageError(
                f"{source}: the saved layers do not match the config's diff IDs; the save is corrupt"
            )
        if image_id:
            cache.remember(DaemonConfig(f"docker-daemon:{image_id}", digest=config_digest, size=config_size))
    else:
        config, layers = cached
    if expected_layers and expected_layers != list(config.diff_ids):
        raise ImageError(f"{source}: the saved config's layers differ from the daemon's RootFS; try again")
    manifest = synthesize(config, [(d, s, mt.OCI_LAYER) for d, s in layers])  # a save's layers are tars
    return DaemonImage(source, manifest, config, cache=cache)
