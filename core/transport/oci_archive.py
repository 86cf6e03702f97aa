"""``oci-archive:``: an OCI image layout in a tar file (skopeo's and buildah's name for it),
read where it lies and written atomically or streamed.

Reading is the layout reader itself (:func:`.layout.open_in_layout`: index, tags, platform
choice, every manifest and config verified) over the tar's members instead of a directory's
files; writing streams ``oci-layout``, the blobs and ``index.json`` as a tar.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from ..archive.atomic import atomic_writer
from ..archive.digest import validate_digest
from ..archive.streams import Readable
from ..archive.tarinput import DEFAULT_MAX_TOTAL
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.errors import LayoutError
from ..oci.image import Image
from ..oci.platform import Platform
from .layout import Layout, LayoutImage, open_in_layout
from .layout_writer import BLOBS_DIR, INDEX_FILE, LAYOUT_FILE, REF_NAME_ANNOTATION
from .tar_index import Member, TarIndex
from .tar_stream import END, tar_dir, tar_file, tar_layer

__all__ = ["open_oci_archive", "write_oci_archive"]


class ArchiveLayout(Layout):
    """An OCI layout whose files are members of a tar file."""

    def __init__(self, path: str | os.PathLike[str], max_size: int = DEFAULT_MAX_TOTAL) -> None:
        self.path = Path(path)
        self.name = f"oci-archive:{path}"
        self._tar = TarIndex(path, self.name, digests=False, max_total=max_size)
        self._load()

    def _read_file(self, name: str, limit: int) -> bytes:
        member = self._tar.member(name)
        if member is None:
            raise LayoutError(f"{self.name} is not an OCI layout archive: it has no {name} file")
        return self._tar.read(member, limit)

    def _blob(self, digest: str) -> Member | None:
        algorithm, _, encoded = validate_digest(digest).partition(":")
        return self._tar.member(f"{BLOBS_DIR}/{algorithm}/{encoded}")

    def blob_size(self, digest: str) -> int | None:
        """The size of the member holding blob ``digest``, or ``None``."""
        member = self._blob(digest)
        return None if member is None else member.size

    def open_blob(self, descriptor: Descriptor) -> Readable:
        """The member holding the blob (unverified: the Layer verifies it)."""
        member = self._blob(descriptor.digest)
        where = f"{self.name}: blob {descriptor.digest}"
        if member is None:
            raise LayoutError(f"{where} is missing; the archive is incomplete")
        if member.size != descriptor.size:
            raise LayoutError(
                f"{where} is {member.size} bytes, expected {descriptor.size}; the archive is corrupt"
            )
        return self._tar.open(member)


def open_oci_archive(
    path: str | os.PathLike[str],
    *,
    ref: str | None = None,
    platform: Platform,
    max_size: int = DEFAULT_MAX_TOTAL,
) -> LayoutImage:
    """Open the image tagged ``ref`` (or the only one) of the OCI layout archive ``path``, for
    ``platform``; the errors are :func:`cnbkit.open_layout`'s."""
    return open_in_layout(ArchiveLayout(path, max_size), tag=ref, digest=None, platform=platform)


def _oci_stream(image: Image, ref: str | None) -> Iterator[bytes]:
    yield tar_file(LAYOUT_FILE, b'{"imageLayoutVersion":"1.0.0"}')
    yield tar_dir(f"{BLOBS_DIR}/")
    yield tar_dir(f"{BLOBS_DIR}/sha256/")
    written: set[str] = set()
    for layer in image.layers():
        if layer.digest not in written:
            written.add(layer.digest)
            yield from tar_layer(f"{BLOBS_DIR}/sha256/{layer.digest.partition(':')[2]}", layer)
    for digest, data in (
        (image.manifest.config.digest, image.config.raw),
        (image.digest, image.manifest.raw),
    ):
        if digest not in written:
            written.add(digest)
            yield tar_file(f"{BLOBS_DIR}/sha256/{digest.partition(':')[2]}", data)
    entry: dict[str, object] = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": image.digest,
        "size": image.manifest.size,
    }
    if ref:
        entry["annotations"] = {REF_NAME_ANNOTATION: ref}
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [entry]}
    yield tar_file(INDEX_FILE, json.dumps(index, separators=(",", ":")).encode())
    yield END


def write_oci_archive(image: Image, path: str | os.PathLike[str], ref: str | None = None) -> str:
    """Write ``image`` as an OCI layout archive at ``path``, tagged ``ref``; atomically, or
    streamed into a FIFO or ``/dev/stdout``.

    Returns:
        ``oci-archive:PATH[:REF] sha256:<manifest digest>``.

    Raises:
        WriteError: the file cannot be written (nothing is left at ``path``).
    """
    with atomic_writer(path) as out:
        for chunk in _oci_stream(image, ref):
            out.write(chunk)
    return f"oci-archive:{path}" + (f":{ref}" if ref else "") + f" {image.digest}"
