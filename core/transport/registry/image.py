"""An image in a registry, as the :class:`~cnbkit.oci.image.Image` model: manifests and blobs
through the cache.

A tag costs one ``HEAD`` (Docker Hub counts GETs as pulls); a digest reference whose manifest,
config and layers are cached costs no request at all, and not even the import of ``requests``:
the client is made only when something must be fetched. Manifests and configs are kept in the
cache by digest like any blob, verified before they are written and again when read back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ...archive.streams import Readable
from ...cache import Cache
from ...cache.records import TagDigest
from ...errors import CacheMissError
from ...oci.config import MAX_CONFIG_SIZE, ImageConfig
from ...oci.descriptor import Descriptor
from ...oci.errors import ManifestError, PlatformNotFoundError
from ...oci.image import Image
from ...oci.manifest import MAX_MANIFEST_SIZE, Index, Manifest, parse_manifest_or_index, verify_digest
from ...oci.mediatypes import MANIFEST_ACCEPT
from ...oci.platform import Platform
from ...oci.select import index_platforms, select_manifest
from ...options import DEFAULT_TIMEOUT
from ..urls import http_allowed
from .quick import quick_head, remember_endpoint
from .reference import Reference, mirrored

if TYPE_CHECKING:  # the client (auth, requests' helpers) is imported only when a request is due
    from .client import RegistryClient

__all__ = ["RegistryImage", "open_registry_image", "tag_key"]

ClientFactory = Callable[[], "RegistryClient"]


def tag_key(ref: Reference) -> str:
    """The cache record key remembering what ``ref``'s tag pointed at (for ``--offline``)."""
    return f"docker://{ref.name}:{ref.tag or 'latest'}"


class RegistryImage(Image):
    """A single-platform image of a registry; its blobs stream into the cache as they are read.

    Args:
        ref: the reference, pinned to the manifest's digest.
        manifest: the verified image manifest.
        config: the verified image config.
        cache: where blobs are kept, by digest.
        client: makes the registry client on first need (nothing is fetched for a cached blob).
        offline: never reach the registry; a blob missing from the cache is an error.
        reference: how messages name the image (default ``str(ref)``).
    """

    def __init__(
        self,
        ref: Reference,
        manifest: Manifest,
        config: ImageConfig,
        *,
        cache: Cache,
        client: ClientFactory,
        offline: bool = False,
        reference: str | None = None,
    ) -> None:
        super().__init__(reference or str(ref), manifest, config)
        self.ref = ref
        self._cache = cache
        self._client = client
        self._offline = offline

    def cached_blob(self, descriptor: Descriptor) -> Path | None:
        """The cache file of the blob, once it was fetched."""
        path = self._cache.blob_path(descriptor.digest)
        return path if path.is_file() else None

    def open_blob(self, descriptor: Descriptor) -> Readable:
        """The blob from the cache, or streamed from the registry as it is written into it.

        Raises:
            CacheMissError: ``--offline`` and the blob is not cached.
            RegistryError, DownloadError: the registry refused or could not be reached.
        """
        path = self._cache.blob_path(descriptor.digest)
        if path.is_file():
            return open(path, "rb")  # the Layer that opened it closes it
        if self._offline:
            raise CacheMissError(f"{self.reference}: blob {descriptor.digest} is not cached (--offline)")
        return self._client().open_blob(self.ref, descriptor.digest, descriptor.size, self._cache)


class _Fetcher:
    """Small blobs (manifests, indexes, configs) by digest, through the cache."""

    def __init__(
        self,
        ref: Reference,
        cache: Cache,
        client: ClientFactory,
        offline: bool,
        quick: Callable[[Reference], tuple[str, int] | None] | None = None,
    ) -> None:
        self.ref = ref
        self.cache = cache
        self._client_factory = client
        self._client: RegistryClient | None = None
        self.offline = offline
        self._quick = quick

    def client(self) -> RegistryClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def cached(self, digest: str, limit: int) -> bytes | None:
        """The cached bytes of ``digest``, verified, or ``None``."""
        path = self.cache.blob_path(digest)
        try:
            with open(path, "rb") as file:
                data = file.read(limit + 1)
        except FileNotFoundError:
            return None
        if len(data) > limit:
            return None
        try:
            verify_digest(data, digest, source=f"cached {digest}")
        except Exception:  # noqa: BLE001 - a damaged cache entry is fetched again, not trusted
            path.unlink(missing_ok=True)
            return None
        return data

    def keep(self, data: bytes, digest: str) -> None:
        """Put verified bytes into the cache under their digest."""
        if not digest.startswith("sha256:") or self.cache.has_blob(digest):
            return  # the cache names sha256 blobs only; a sha512 manifest is simply fetched again
        writer = self.cache.writer(expected=digest)
        with writer:
            writer.write(data)
            writer.commit()

    def manifest(self, digest: str, media_type: str | None = None) -> Manifest | Index:
        """The manifest or index ``digest`` of the repository, verified."""
        pinned = self.ref.with_digest(digest)
        data = self.cached(digest, MAX_MANIFEST_SIZE)
        if data is None:
            if self.offline:
                raise CacheMissError(f"{pinned}: the manifest is not cached (--offline)")
            data, media_type, _ = self.client().get_manifest(pinned)  # verified against the digest
            self.keep(data, digest)
        return parse_manifest_or_index(data, media_type, source=str(pinned))

    def config(self, descriptor: Descriptor, reference: str) -> ImageConfig:
        """The image config, verified; at most :data:`MAX_CONFIG_SIZE` bytes."""
        if descriptor.size > MAX_CONFIG_SIZE:
            raise ManifestError(
                f"{reference}: the config is {descriptor.size} bytes, over the {MAX_CONFIG_SIZE} limit"
            )
        data = self.cached(descriptor.digest, MAX_CONFIG_SIZE)
        if data is None:
            if self.offline:
                raise CacheMissError(f"{reference}: the config {descriptor.digest} is not cached (--offline)")
            path: Path = self.client().fetch_blob(self.ref, descriptor.digest, descriptor.size, self.cache)
            data = path.read_bytes()
        return ImageConfig.parse(data, source=f"{reference} config", expected=descriptor.digest)

    def resolve_tag(self) -> str:
        """The digest ``ref`` names now: its own, or its tag's after a ``HEAD``."""
        if self.ref.digest is not None:
            return self.ref.digest
        key = tag_key(self.ref)
        if self.offline:
            entry = self.cache.recall(TagDigest, key)
            if entry is None:
                raise CacheMissError(f"{self.ref}: the tag was never resolved on this machine (--offline)")
            return entry.digest
        found = self._quick(self.ref) if self._quick is not None else None
        if found is not None:
            digest, size = found
        else:
            client = self.client()
            digest, _media_type, size = client.head_manifest(self.ref)
            scheme = client.anonymous_scheme(self.ref)
            if scheme is not None:
                remember_endpoint(self.cache, self.ref, scheme)
        self.cache.remember(TagDigest(key, digest=digest, size=size))
        return digest


def open_registry_image(
    ref: Reference,
    *,
    client: ClientFactory,
    cache: Cache,
    platform: Platform,
    offline: bool = False,
    verify: str | bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    insecure: bool | Collection[str] = (),
    mirrors: Mapping[str, str] | None = None,
) -> RegistryImage:
    """Open ``ref`` for ``platform``: manifest (chosen from an index) and config, verified.

    Every pull starts here: with ``mirrors`` (:func:`~.reference.parse_mirrors`), an image of a
    mirrored registry is fetched from its mirror, and named so in messages and the cache.

    Args:
        ref: the image reference (tag and/or digest).
        client: makes the :class:`RegistryClient` on first need.
        cache: the shared cache (manifests, configs and layers by digest).
        platform: the platform to pick from an index; a single image must be of it.
        offline: use the cache only (a tag is what it pointed at when last resolved).
        verify, timeout, insecure: as the client's; for the warm path of a tag
            (:func:`~cnbkit.transport.registry.quick.quick_head`), which needs no client.
        mirrors: ``{registry: mirror}`` (pack's ``registry-mirrors``).

    Raises:
        PlatformNotFoundError: no manifest for ``platform``; the message lists the platforms.
        ManifestError: not an image, or malformed.
        RegistryError, DownloadError, DigestMismatchError: fetching or verifying failed.
        CacheMissError: ``offline`` and something is not cached.
    """

    def quick(target: Reference) -> tuple[str, int] | None:
        return quick_head(
            cache,
            target,
            MANIFEST_ACCEPT,  # what the client accepts, without importing the client
            verify=verify,
            timeout=timeout,
            allow_http=lambda host: http_allowed(host, insecure),
        )

    ref = mirrored(ref, mirrors or {})
    fetcher = _Fetcher(ref, cache, client, offline, quick)
    digest = fetcher.resolve_tag()
    reference = str(ref)
    target = fetcher.manifest(digest)
    pinned_platform = False
    platforms: tuple[str, ...] = ()
    if isinstance(target, Index):
        platforms = index_platforms(target)
        selected = select_manifest(
            target, platform, lambda d: fetcher.manifest(d.digest, d.media_type), reference=reference
        )
        pinned_platform = selected.platform is not None
        target = fetcher.manifest(selected.digest, selected.media_type)
        if not isinstance(target, Manifest):
            raise ManifestError(f"{reference}: {selected.digest} is an index where an image was expected")
    if not target.is_image:
        raise ManifestError(f"{reference} is not a container image (config {target.config.media_type[:80]})")
    config = fetcher.config(target.config, reference)
    if not pinned_platform and not platform.matches(config.platform):
        raise PlatformNotFoundError(
            f"{reference} is {config.platform}, not {platform}; choose another image or --platform",
            [str(config.platform)],
            single=True,
        )
    image = RegistryImage(
        ref.with_digest(target.digest),
        target,
        config,
        cache=cache,
        client=fetcher.client,
        offline=offline,
        reference=reference,
    )
    image.platforms = platforms
    return image
