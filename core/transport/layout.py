"""The ``oci:`` transport: images in an OCI image layout directory (image-spec ``image-layout.md``).

Reading trusts nothing in the directory: every digest is validated before it becomes a path,
every manifest and config is checked against its digest, blobs are opened without following
a symlink and only under ``DIR/blobs/``, and layers are verified as they stream.
Writing is :class:`~cnbkit.transport.layout_writer.LayoutWriter`, re-exported here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..archive.digest import validate_digest
from ..archive.streams import CHUNK, Readable, close_stream
from ..errors import ArchiveError, UsageError
from ..oci import mediatypes as mt
from ..oci._json import load_object
from ..oci.config import MAX_CONFIG_SIZE, ImageConfig
from ..oci.descriptor import Descriptor
from ..oci.errors import ImageNotFoundError, LayoutError, ManifestError, PlatformNotFoundError
from ..oci.image import Image
from ..oci.manifest import MAX_MANIFEST_SIZE, Index, Manifest, parse_manifest_or_index, verify_digest
from ..oci.platform import Platform
from ..oci.select import index_platforms, select_manifest
from ..redact import listing
from .layout_files import MARKER_LIMIT, checked_dir, open_regular, read_small
from .layout_writer import BLOBS_DIR, INDEX_FILE, LAYOUT_FILE, REF_NAME_ANNOTATION, LayoutWriter

__all__ = [
    "Layout",
    "LayoutImage",
    "LayoutLocator",
    "LayoutWriter",
    "open_in_layout",
    "open_layout",
    "parse_layout_locator",
]


@dataclass(frozen=True)
class LayoutLocator:
    """What ``oci:REST`` names: a directory and at most one of a tag or a digest."""

    path: str
    tag: str | None = None
    digest: str | None = None


def parse_layout_locator(rest: str) -> LayoutLocator:
    """Split the part after ``oci:`` into a directory and a tag or digest.

    ``DIR@sha256:<hex>`` pins a digest. Otherwise, as in skopeo, the last ``:`` after the
    last ``/`` starts a tag: ``dir:v1`` is ``dir`` tagged ``v1``, ``/a:b/c`` is the directory
    ``/a:b/c``. A directory whose last component holds a ``:`` therefore needs a tag
    (``./a:b:latest``) or a ``/`` at its end (``./a:b/``).

    Raises:
        UsageError: no directory, an empty tag, or a malformed digest.
    """
    path, tag, digest = rest, None, None
    if "@" in rest:
        path, _, digest = rest.rpartition("@")
        try:
            validate_digest(digest)
        except ArchiveError as exc:
            raise UsageError(f"oci:{rest}: {exc}") from None
    else:
        colon, slash = rest.rfind(":"), rest.rfind("/")
        if colon > slash:
            path, tag = rest[:colon], rest[colon + 1 :]
            if not tag:
                raise UsageError(f"oci:{rest}: empty tag after ':'; write oci:DIR or oci:DIR:TAG")
    if not path:
        raise UsageError(f"oci:{rest}: no directory; write oci:DIR[:TAG] or oci:DIR@sha256:...")
    return LayoutLocator(path, tag, digest)


class Layout:
    """Read access to an OCI image layout directory.

    Args:
        path: the layout directory.

    Raises:
        LayoutError: no ``oci-layout`` file, an unsupported version, or no ``index.json``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"oci:{path}"
        if not self.path.is_dir():
            raise LayoutError(f"{self.name}: no such directory; give the path of an OCI image layout")
        self._load()

    def _load(self) -> None:
        """Read and check ``oci-layout`` and ``index.json``."""
        marker_data = self._read_file(LAYOUT_FILE, MARKER_LIMIT)
        marker = load_object(marker_data, source=f"{self.name}/{LAYOUT_FILE}", limit=MARKER_LIMIT)
        version = marker.get("imageLayoutVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            found = str(version)[:40]
            raise LayoutError(f"{self.name}: unsupported imageLayoutVersion {found!r}; expected 1.x")
        self.index = Index.parse(
            self._read_file(INDEX_FILE, MAX_MANIFEST_SIZE), mt.OCI_INDEX, source=f"{self.name}/{INDEX_FILE}"
        )

    def _read_file(self, name: str, limit: int) -> bytes:
        try:
            return read_small(self.path / name, where=self.name, name=name, limit=limit)
        except FileNotFoundError:
            raise LayoutError(f"{self.name} is not an OCI image layout: it has no {name} file") from None

    def tags(self) -> list[str]:
        """The ``org.opencontainers.image.ref.name`` values in ``index.json``, in order."""
        names = (entry.annotations.get(REF_NAME_ANNOTATION) for entry in self.index.manifests)
        return list(dict.fromkeys(name for name in names if name is not None))

    def open_blob(self, descriptor: Descriptor) -> Readable:
        """Open a blob's file for streaming (unverified: :class:`Layer` verifies it).

        The digest was validated when the descriptor was parsed; the blob must be a regular
        file, reached without a symlink, under ``DIR/blobs/<algorithm>/``, of the
        descriptor's size.

        Raises:
            LayoutError: the blob is missing, a symlink, outside ``blobs/`` or of another size.
        """
        digest = validate_digest(descriptor.digest)  # again: a Descriptor may be built by hand
        where = f"{self.name}: blob {digest}"
        # The directories too: a blobs/ or blobs/sha256 symlink would lead out of the layout.
        parent = checked_dir(self.path, BLOBS_DIR, descriptor.algorithm, where=self.name)
        try:
            fd = open_regular(parent / descriptor.encoded, where=self.name, name=f"blob {digest}")
        except FileNotFoundError:
            raise LayoutError(f"{where} is missing; copy the image into the layout again") from None
        file = os.fdopen(fd, "rb", buffering=0)
        size = os.fstat(fd).st_size
        if size != descriptor.size:
            file.close()
            raise LayoutError(f"{where} is {size} bytes, expected {descriptor.size}; the layout is corrupt")
        return file

    def blob_size(self, digest: str) -> int | None:
        """The size of the blob ``digest`` (validated), or ``None`` when the layout lacks it."""
        algorithm, _, encoded = validate_digest(digest).partition(":")
        try:
            return os.lstat(self.path / BLOBS_DIR / algorithm / encoded).st_size
        except OSError:
            return None

    def read_blob(self, descriptor: Descriptor, limit: int) -> bytes:
        """Read a small blob (manifest, index, config) whole and check its digest.

        Raises:
            ManifestError: the descriptor's size exceeds ``limit``.
            DigestMismatchError: the bytes do not match the digest.
        """
        if descriptor.size > limit:
            raise ManifestError(
                f"{self.name}: blob {descriptor.digest} is {descriptor.size} bytes, more than {limit} allowed"
            )
        stream = self.open_blob(descriptor)
        parts: list[bytes] = []
        try:
            while chunk := stream.read(CHUNK):  # the file's size was checked: at most ``limit``
                parts.append(chunk)
        finally:
            close_stream(stream)
        data = b"".join(parts)
        verify_digest(data, descriptor.digest, source=f"{self.name}: blob")
        return data

    def fetch(self, descriptor: Descriptor) -> Manifest | Index:
        """Read, verify and parse the manifest or index ``descriptor`` points at."""
        data = self.read_blob(descriptor, MAX_MANIFEST_SIZE)
        return parse_manifest_or_index(data, descriptor.media_type, source=f"{self.name}@{descriptor.digest}")


class LayoutImage(Image):
    """An image in an OCI layout; its blobs are files of the layout."""

    def __init__(self, layout: Layout, reference: str, manifest: Manifest, config: ImageConfig) -> None:
        super().__init__(reference, manifest, config)
        self.layout = layout

    def open_blob(self, descriptor: Descriptor) -> Readable:
        """Open the blob's file (see :meth:`Layout.open_blob`)."""
        return self.layout.open_blob(descriptor)


def _entry(layout: Layout, reference: str, tag: str | None, digest: str | None) -> Descriptor | Index:
    """The ``index.json`` entry the locator names, or the index itself to choose from."""
    entries = layout.index.manifests
    if digest is not None:
        found = [entry for entry in entries if entry.digest == digest]
        if found:
            return found[0]
        # Not listed: a blob of the layout may still be that manifest (one platform of an index).
        return Descriptor("", digest, 0)
    tags = layout.tags()
    listed = listing(tags) if tags else "none"
    if tag is not None:
        found = [entry for entry in entries if entry.annotations.get(REF_NAME_ANNOTATION) == tag]
        if not found:
            raise ImageNotFoundError(f"{reference}: no image tagged {tag!r} in the layout (tags: {listed})")
        if len({entry.digest for entry in found}) > 1:
            raise LayoutError(f"{reference}: tag {tag!r} is listed for several images; fix index.json")
        return found[0]
    if len(entries) == 1:
        return entries[0]
    if not entries:
        raise ImageNotFoundError(f"{reference}: the layout holds no image")
    if not tags:
        return layout.index  # untagged manifests of several platforms: index.json is the index
    raise ImageNotFoundError(
        f"{reference} holds {len(entries)} images; name one with oci:{layout.path}:TAG (tags: {listed})"
    )


def _blob_descriptor(layout: Layout, digest: str) -> Descriptor:
    """A descriptor for a blob found only by digest: its size and type come from the blob."""
    size = layout.blob_size(digest)
    if size is None:
        raise ImageNotFoundError(f"{layout.name}@{digest}: no such manifest in the layout")
    return Descriptor(mt.OCI_MANIFEST, digest, size)


def open_layout(
    path: str | os.PathLike[str],
    *,
    tag: str | None = None,
    digest: str | None = None,
    platform: Platform,
) -> LayoutImage:
    """Open the image ``oci:PATH[:TAG]`` or ``oci:PATH@DIGEST`` for ``platform``.

    Without a tag or digest, the layout must list one image (or only untagged manifests,
    which are then chosen from by platform). An index is resolved to ``platform``'s manifest.

    Raises:
        UsageError: both a tag and a digest, or a malformed digest.
        LayoutError: the directory is not a readable, well-formed layout.
        ImageNotFoundError: the tag or digest names nothing, or several images and no tag.
        PlatformNotFoundError: the image has no manifest for ``platform``.
        ManifestError: a manifest, index or config is malformed or not an image's.
        DigestMismatchError: a manifest, index or config does not match its digest.
    """
    if tag is not None and digest is not None:
        raise UsageError(f"oci:{path}: give a tag or a digest, not both")
    if digest is not None:
        try:
            validate_digest(digest)  # before it is ever joined to a path
        except ArchiveError as exc:
            raise UsageError(f"oci:{path}@{str(digest)[:80]}: {exc}") from None
    return open_in_layout(Layout(path), tag=tag, digest=digest, platform=platform)


def open_in_layout(layout: Layout, *, tag: str | None, digest: str | None, platform: Platform) -> LayoutImage:
    """:func:`open_layout` for a layout already opened (a directory, or an ``oci-archive:``)."""
    reference = layout.name + (f":{tag}" if tag else f"@{digest}" if digest else "")
    chosen = _entry(layout, reference, tag, digest)
    if isinstance(chosen, Descriptor) and not chosen.media_type:
        found = _blob_descriptor(layout, chosen.digest)
        data = layout.read_blob(found, MAX_MANIFEST_SIZE)
        target: Manifest | Index = parse_manifest_or_index(data, None, source=reference)
    elif isinstance(chosen, Descriptor):
        target = layout.fetch(chosen)
    else:
        target = chosen
    pinned_platform = isinstance(chosen, Descriptor) and chosen.platform is not None
    platforms: tuple[str, ...] = ()
    if isinstance(target, Index):
        platforms = index_platforms(target)
        selected = select_manifest(target, platform, layout.fetch, reference=reference)
        pinned_platform = selected.platform is not None
        target = layout.fetch(selected)
        if not isinstance(target, Manifest):  # pragma: no cover - select only returns manifests
            raise ManifestError(f"{reference}: {selected.digest} is not an image manifest")
    if not target.is_image:
        raise ManifestError(f"{reference} is not a container image (config {target.config.media_type[:80]})")
    config_data = layout.read_blob(target.config, MAX_CONFIG_SIZE)
    config = ImageConfig.parse(config_data, source=f"{reference} config", expected=target.config.digest)
    if not pinned_platform and not platform.matches(config.platform):
        raise PlatformNotFoundError(
            f"{reference} is {config.platform}, not {platform}; choose another image or --platform",
            [str(config.platform)],
            single=True,
        )
    image = LayoutImage(layout, reference, target, config)
    image.platforms = platforms
    return image
