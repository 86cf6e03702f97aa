"""``docker-archive:``: an image in a ``docker save`` tarball (skopeo's name for it), read where
it lies and written atomically or streamed.

Reading is one checked pass over the tar (every file hashed: the classic format names layers
by ID, not digest), then blobs read by offset; the format itself (``manifest.json``, the
manifest cnbkit writes for an image without one) is :mod:`.docker_save`, shared with the Docker
daemon's stream. Writing is :func:`.daemon_load.save_stream`, the very archive ``docker load``
gets from cnbkit.
"""

from __future__ import annotations

import os

from ..archive.atomic import atomic_writer
from ..archive.streams import Readable
from ..archive.tarinput import DEFAULT_MAX_TOTAL
from ..oci import mediatypes as mt
from ..oci.config import MAX_CONFIG_SIZE, ImageConfig
from ..oci.descriptor import Descriptor
from ..oci.errors import ImageError, PlatformNotFoundError
from ..oci.image import Image
from ..oci.manifest import Manifest
from ..oci.platform import Platform
from ..redact import printable
from .daemon_load import daemon_tag, save_stream
from .docker_save import save_entry, synthesize
from .tar_index import Member, TarIndex

__all__ = ["ArchiveImage", "open_docker_archive", "write_docker_archive"]


class ArchiveImage(Image):
    """An image whose blobs are members of a tar file (read by offset, verified by the Layer)."""

    def __init__(
        self, reference: str, manifest: Manifest, config: ImageConfig, tar: TarIndex, blobs: dict[str, Member]
    ) -> None:
        super().__init__(reference, manifest, config)
        self._tar = tar
        self._blobs = blobs

    def open_blob(self, descriptor: Descriptor) -> Readable:
        """The member holding the blob ``descriptor`` names."""
        member = self._blobs.get(descriptor.digest)
        if member is None or member.size != descriptor.size:
            raise ImageError(f"{self.reference}: no blob {descriptor.digest} of {descriptor.size} bytes")
        return self._tar.open(member)


def _member(tar: TarIndex, name: object, what: str) -> Member:
    member = tar.member(str(name))
    if member is None or member.digest is None:
        raise ImageError(
            f"{tar.source}: manifest.json names {what} {printable(str(name))[:200]!r}, which it lacks"
        )
    return member


def open_docker_archive(
    path: str | os.PathLike[str],
    *,
    ref: str | None = None,
    platform: Platform,
    max_size: int = DEFAULT_MAX_TOTAL,
) -> Image:
    """Open the image of the ``docker save`` tarball ``path`` (the one tagged ``ref`` when the
    archive holds several), which must be for ``platform``.

    Args:
        path: the tarball (uncompressed, as ``docker save`` and ``skopeo copy`` write it).
        ref: the tag to pick (``repo:tag``, as in ``manifest.json``'s ``RepoTags``).
        platform: the platform the image must be (``context.platform``).
        max_size: the most bytes the whole archive may hold.

    Returns:
        An image of the ``oci`` model: its manifest is made from the config and the layers
        (their media types by their bytes: gzip or plain tar).

    Raises:
        ImageError: not a readable tar, no ``manifest.json``, a missing file, several images and
            no ``ref``, or uncompressed layers that differ from the config's diff IDs.
        ImageNotFoundError: no image is tagged ``ref``.
        PlatformNotFoundError: the image is for another platform.
        ArchiveError: the tar is corrupt or refused by the tar reader's rules.
    """
    source = f"docker-archive:{path}" + (f":{ref}" if ref else "")
    tar = TarIndex(path, source, digests=True, max_total=max_size)
    listed = tar.member("manifest.json")
    entry = save_entry(tar.read(listed, MAX_CONFIG_SIZE) if listed else None, source, ref)
    held = _member(tar, entry["Config"], "the config")
    config = ImageConfig.parse(
        tar.read(held, MAX_CONFIG_SIZE), source=f"{source} config", expected=held.digest
    )
    if not platform.matches(config.platform):
        raise PlatformNotFoundError(
            f"{source} is {config.platform}, not {platform}; choose another image or --platform",
            [str(config.platform)],
            single=True,
        )
    members = [_member(tar, name, "the layer") for name in entry["Layers"]]
    layers = [(str(m.digest), m.size, mt.OCI_LAYER_GZIP if m.gzip else mt.OCI_LAYER) for m in members]
    diff_ids = list(config.diff_ids)
    if len(layers) != len(diff_ids) or any(
        media == mt.OCI_LAYER and digest != diff
        for (digest, _, media), diff in zip(layers, diff_ids, strict=True)
    ):
        raise ImageError(f"{source}: the layers do not match the config's diff IDs; the archive is corrupt")
    blobs = {str(m.digest): m for m in members}
    return ArchiveImage(source, synthesize(config, layers), config, tar, blobs)


def write_docker_archive(image: Image, path: str | os.PathLike[str], ref: str | None = None) -> str:
    """Write ``image`` as a ``docker save`` tarball at ``path``, tagged ``ref`` (``repo[:tag]``).

    A file appears only complete (written beside it, renamed); a FIFO or ``/dev/stdout`` on a
    pipe is streamed into. Layers go in as stored; ``docker load`` and skopeo read it.

    Returns:
        ``docker-archive:PATH[:REPO:TAG] sha256:<image ID>``.

    Raises:
        UsageError: a malformed ``ref``, or one with a digest.
        WriteError: the file cannot be written (nothing is left at ``path``).
    """
    tag = daemon_tag(ref) if ref else None
    with atomic_writer(path) as out:
        for chunk in save_stream(image, tag):
            out.write(chunk)
    return f"docker-archive:{path}" + (f":{tag}" if tag else "") + f" {image.manifest.config.digest}"
