"""Pushing an image of the ``oci`` model to a registry, blob by blob, the manifest last.

For each blob: a ``HEAD`` first (a blob the repository already has is never sent); a layer
whose origin is another repository of the same registry is mounted from there (no byte moves);
anything else is streamed, from the cache or from its own registry as it downloads, never held
whole in memory: one monolithic ``PUT`` for a small blob, ``PATCH`` chunks for a large one. The
manifest is ``PUT`` only after every blob is in place, so a failed push leaves no tag pointing
at a partial image (the blobs already sent are unreferenced; the registry's garbage collection
removes them).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

from ...archive.streams import Readable, close_stream
from ...cache import Cache
from ...cache.records import PushedBlob
from ...errors import UsageError
from ...oci.image import Image, Layer
from ...oci.image_index import ImageIndex
from ...progress import Progress
from .client import RegistryClient
from .image import RegistryImage
from .reference import Reference
from .wire import RegistryError

__all__ = ["CHUNK_SIZE", "MONOLITHIC_MAX", "PushResult", "push_image"]

# Distribution and most registries take a monolithic PUT of any size, but some proxies and
# registries cap request bodies (GHCR/ECR-style limits, nginx's client_max_body_size): past
# this size, send PATCH chunks of CHUNK_SIZE.
MONOLITHIC_MAX = 32 * 1024 * 1024
CHUNK_SIZE = 32 * 1024 * 1024


@dataclass
class PushResult:
    """What a push did.

    Attributes:
        reference: where the image went (``registry/repository:tag``).
        digest: the manifest digest (an index's, for a multi-platform image).
        existing: the blobs the repository already had (a ``HEAD`` each, nothing sent).
        mounted: the blobs mounted from another repository of the registry.
        uploaded: the blobs sent.
    """

    reference: str
    digest: str
    existing: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """``N blobs uploaded, N mounted, N already there``."""
        return (
            f"{len(self.uploaded)} blobs uploaded, {len(self.mounted)} mounted, "
            f"{len(self.existing)} already there"
        )


class _Counted:
    """A stream that reports each read to a progress reporter."""

    def __init__(self, stream: Readable, progress: Progress) -> None:
        self._stream = stream
        self._progress = progress

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        self._progress.update(len(data))
        return data


def _origin_ref(image: Image | None) -> Reference | None:
    """The repository a layer's blob is stored in, when it came from a registry."""
    return image.ref if isinstance(image, RegistryImage) else None


def _pushed_key(ref: Reference, digest: str) -> str:
    return f"{ref.api_host}:{digest}"


def _remembered(cache: Cache | None, ref: Reference, digest: str) -> Reference | None:
    """The repository of ``ref``'s registry this machine last pushed ``digest`` to, if any."""
    entry = cache.recall(PushedBlob, _pushed_key(ref, digest)) if cache is not None else None
    if entry is None or not entry.repository or entry.digest != digest:
        return None
    return Reference(ref.registry, entry.repository)


def _remember(cache: Cache | None, ref: Reference, digest: str, size: int) -> None:
    # No blob kept: the next push of the same blob to another repository of this registry
    # mounts it from there instead of uploading it again.
    if cache is not None:
        cache.remember(PushedBlob(_pushed_key(ref, digest), digest=digest, repository=ref.repository))


def _mount(client: RegistryClient, ref: Reference, digest: str, sources: list[Reference | None]) -> bool:
    """Mount ``digest`` from the first repository of ``ref``'s registry that lends it."""
    for source in sources:
        if source is None or source.api_host != ref.api_host or source.repository == ref.repository:
            continue
        try:
            if client.mount_blob(ref, digest, source):
                return True
        except RegistryError:  # no read access to the source (401/403/404): upload it instead
            continue
    return False


def _upload(
    client: RegistryClient,
    ref: Reference,
    layer: Layer,
    progress: Callable[[str, int | None], Progress] | None,
    monolithic_max: int,
    chunk_size: int,
) -> None:
    """Stream a layer into ``ref``'s repository: from the cache, or from the layer's own
    registry as it downloads (verified there as it passes; the upload hashes it again and the
    registry checks it too)."""
    stream = layer.open()
    reporter = progress(f"push {layer.digest[7:19]}", layer.size) if progress else None
    try:
        body: Readable = _Counted(stream, reporter) if reporter else stream
        chunk = chunk_size if layer.size > monolithic_max else None
        client.upload_blob(ref, body, layer.digest, layer.size, chunk_size=chunk)
        # Read to the end: a stream verifies (and a download caches) only at its end.
        if stream.read(1):
            raise RegistryError(f"{layer.source} is longer than its {layer.size} bytes")
    finally:
        if reporter is not None:
            reporter.close()
        close_stream(stream)


def _push_blobs(
    client: RegistryClient,
    image: Image,
    ref: Reference,
    result: PushResult,
    seen: set[str],
    push: Callable[[Layer], None],
    cache: Cache | None,
) -> None:
    """Put every blob of ``image`` in ``ref``'s repository: found by ``HEAD``, mounted, or sent
    by ``push``; a blob in ``seen`` (pushed for an earlier image of the same index) is skipped."""
    for layer in image.layers():
        if layer.digest in seen:  # twice in one image (two empty layers), or shared by two targets
            continue
        seen.add(layer.digest)
        if client.blob_exists(ref, layer.digest) is not None:
            result.existing.append(layer.digest)
        elif _mount(
            client, ref, layer.digest, [_origin_ref(layer.origin), _remembered(cache, ref, layer.digest)]
        ):
            result.mounted.append(layer.digest)
        else:
            push(layer)
            result.uploaded.append(layer.digest)
        _remember(cache, ref, layer.digest, layer.size)
    config = image.manifest.config
    if config.digest in seen:
        return
    seen.add(config.digest)
    if client.blob_exists(ref, config.digest) is not None:
        result.existing.append(config.digest)
    elif _mount(client, ref, config.digest, [_remembered(cache, ref, config.digest)]):
        result.mounted.append(config.digest)
    else:
        client.upload_blob(ref, io.BytesIO(image.config.raw), config.digest, config.size)
        result.uploaded.append(config.digest)
    _remember(cache, ref, config.digest, config.size)


def push_image(
    client: RegistryClient,
    image: Image | ImageIndex,
    ref: Reference,
    *,
    progress: Callable[[str, int | None], Progress] | None = None,
    monolithic_max: int = MONOLITHIC_MAX,
    chunk_size: int = CHUNK_SIZE,
    cache: Cache | None = None,
) -> PushResult:
    """Push ``image`` to ``ref`` (a tag; ``latest`` when none): blobs, then the manifest.

    An :class:`~cnbkit.oci.image_index.ImageIndex` goes image by image (a blob two images share
    is sent once), each manifest ``PUT`` by its digest, and the index last, under the tag: a
    failure anywhere leaves the tag as it was.

    Args:
        client: the registry client (its credentials are the Docker configuration's, the same
            as for pulling; plain http only for loopback and ``--insecure-registry`` hosts).
        image: any image of the ``oci`` model (each layer's ``origin`` says where its blob
            is), or a multi-platform image.
        ref: the target; a digest is refused (a pushed image's digest is not chosen).
        progress: ``progress(description, total)`` makes a reporter per uploaded blob.
        monolithic_max: blobs up to this size go in one ``PUT``; larger ones in chunks.
        chunk_size: the ``PATCH`` size of a chunked upload.
        cache: where to remember which repository each blob went to (a later push of the same
            blob to another repository of the registry mounts it from there), or ``None``.

    Returns:
        A :class:`PushResult` (digest, and which blobs were there, mounted or uploaded).

    Raises:
        UsageError: ``ref`` has a digest.
        RegistryError, DownloadError, DigestMismatchError: a blob or a manifest failed; the
            tag was not written.
    """
    if ref.digest is not None:
        raise UsageError(f"docker://{ref}: a push target takes a tag, not a digest")
    result = PushResult(f"{ref.name}:{ref.tag or 'latest'}", image.digest)
    seen: set[str] = set()

    def push(layer: Layer) -> None:
        _upload(client, ref, layer, progress, monolithic_max, chunk_size)

    if isinstance(image, ImageIndex):
        for one in image.images:
            _push_blobs(client, one, ref, result, seen, push, cache)
            by_digest = Reference(ref.registry, ref.repository, digest=one.digest)
            client.put_manifest(by_digest, one.manifest.raw, one.manifest.media_type)
        raw, media_type = image.index.raw, image.index.media_type
    else:
        _push_blobs(client, image, ref, result, seen, push, cache)
        raw, media_type = image.manifest.raw, image.manifest.media_type
    tagged = Reference(ref.registry, ref.repository, ref.tag or "latest")
    client.put_manifest(tagged, raw, media_type)
    return result
