"""Writing an OCI image layout: content-addressed blobs, then ``index.json``, atomically.

Every file appears under its final name only once complete and verified (temp file, then
rename), so a reader or a crash never sees half a blob or half an index. One writer per
layout at a time: ``index.json`` is read, changed and replaced without a lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..archive.atomic import write_atomically
from ..archive.digest import validate_digest
from ..archive.streams import CHUNK, Readable
from ..errors import ArchiveError, DigestMismatchError, UsageError
from ..oci import mediatypes as mt
from ..oci._json import load_object
from ..oci.descriptor import Descriptor
from ..oci.errors import LayoutError
from ..oci.manifest import MAX_MANIFEST_SIZE, Index
from .layout_files import MARKER_LIMIT, checked_dir, read_small

__all__ = [
    "BLOBS_DIR",
    "INDEX_FILE",
    "LAYOUT_FILE",
    "LAYOUT_VERSION",
    "REF_NAME_ANNOTATION",
    "LayoutWriter",
    "validate_tag",
]

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
BLOBS_DIR = "blobs"
LAYOUT_VERSION = "1.0.0"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
# image-spec annotations.md: the ref.name grammar, a superset of a tag, minus whitespace.
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-:/@+]{0,254}\Z")


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid ``org.opencontainers.image.ref.name`` value.

    Raises:
        UsageError: empty, too long, or with characters a reference cannot hold.
    """
    if not _TAG.match(tag):
        raise UsageError(f"invalid image tag {tag[:80]!r}: use letters, digits and . _ - (at most 255)")
    return tag


class LayoutWriter:
    """Adds blobs and tagged manifests to an OCI image layout, creating it if needed.

    Args:
        path: the layout directory; created with ``oci-layout`` and an empty ``index.json``
            when missing.

    Raises:
        LayoutError: the directory exists but is another layout version or not a layout.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        marker = self.path / LAYOUT_FILE
        if self.path.exists() and any(self.path.iterdir()) and not os.path.lexists(marker):
            raise LayoutError(f"{self.path} exists and is not an OCI image layout; choose an empty directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self._blobs()  # before anything is written: refuses a symlinked blobs/ or blobs/sha256
        if os.path.lexists(marker):
            version = load_object(
                self._read(LAYOUT_FILE, MARKER_LIMIT), source=str(marker), limit=MARKER_LIMIT
            ).get("imageLayoutVersion")
            if not isinstance(version, str) or not version.startswith("1."):
                raise LayoutError(f"{marker} is not an OCI image layout version 1 marker")
        else:
            write_atomically(marker, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
        if not os.path.lexists(self.path / INDEX_FILE):
            self._write_index([])

    def _blobs(self) -> Path:
        """``blobs/sha256``, created if missing, checked to be real directories (every write)."""
        return checked_dir(self.path, BLOBS_DIR, "sha256", where=self.name, create=True)

    def _read(self, name: str, limit: int) -> bytes:
        """A small file of the layout, only if it is a regular file (no link, no FIFO)."""
        return read_small(self.path / name, where=self.name, name=name, limit=limit)

    def _blob_path(self, digest: str) -> Path:
        try:
            validate_digest(digest)
        except ArchiveError as exc:
            raise LayoutError(f"{self.path}: {exc}") from None
        algorithm, encoded = digest.split(":", 1)
        return self.path / BLOBS_DIR / algorithm / encoded

    def _blob_size(self, digest: str) -> int | None:
        """The size of the blob's file, or ``None`` when it is missing or not a regular file."""
        try:
            info = os.lstat(self._blob_path(digest))
        except FileNotFoundError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def has_blob(self, digest: str) -> bool:
        """True when ``blobs/`` already holds the blob (its content is not re-read); a symlink
        or a FIFO in its place is not the blob, and is replaced when it is written."""
        return self._blob_size(digest) is not None

    def write_blob(self, data: bytes, expected: str | None = None) -> str:
        """Store ``data`` once, under its sha256; return the digest.

        Raises:
            DigestMismatchError: ``data`` does not have digest ``expected``.
        """
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if expected is not None and expected != digest:
            raise DigestMismatchError(
                f"blob for {self.path}: content has digest {digest}, expected {expected}"
            )
        if not self.has_blob(digest):
            self._blobs()
            write_atomically(self._blob_path(digest), data)
        return digest

    def write_blob_stream(self, stream: Readable, expected: str | None = None) -> tuple[str, int]:
        """Copy ``stream`` into a blob in ``CHUNK`` s, hashing it; return its digest and size.

        When ``expected`` names a blob already present, the stream is not read at all.

        Raises:
            DigestMismatchError: the bytes do not have digest ``expected`` (nothing is kept).
        """
        present = None if expected is None else self._blob_size(expected)
        if expected is not None and present is not None:
            return expected, present
        blobs = self._blobs()
        fd, temp = tempfile.mkstemp(dir=blobs, prefix=".blob.", suffix=".tmp")
        try:
            hasher, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as file:
                while chunk := stream.read(CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
                    file.write(chunk)
            digest = "sha256:" + hasher.hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatchError(
                    f"blob for {self.path}: content has digest {digest}, expected {expected}"
                )
            os.replace(temp, self._blob_path(digest))
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return digest, size

    @staticmethod
    def check_file(source: Path, expected: str, size: int) -> bool:
        """Whether ``source`` (a cache file) is blob ``expected`` of ``size`` bytes, read to the
        end and hashed; ``False`` when it cannot be read (then copy the blob instead). Only
        reads: checks of several files may run side by side (hashlib releases the GIL).

        Raises:
            DigestMismatchError: the file is not the blob it should be.
        """
        try:
            with open(source, "rb", buffering=0) as file:
                found = os.fstat(file.fileno()).st_size
                if found != size:
                    raise DigestMismatchError(f"{source}: {found} bytes, not {size}")
                hasher = hashlib.sha256()
                while chunk := file.read(CHUNK):
                    hasher.update(chunk)
        except OSError:  # a vanished cache file: copy
            return False
        if "sha256:" + hasher.hexdigest() != expected:
            raise DigestMismatchError(
                f"{source}: content has digest sha256:{hasher.hexdigest()}, expected {expected}"
            )
        return True

    def link_blob(self, source: Path, expected: str, size: int, *, checked: bool = False) -> bool:
        """Hard-link ``source`` (a cache file) in as blob ``expected``, after checking its size
        and digest (:meth:`check_file`; ``checked``: the caller just did); ``False`` when the
        file system will not link it (copy it then).

        Reading to hash costs a fraction of copying (no writes), and a second
        layout of the same builder takes no more disk. Both sides are content-addressed and
        replaced, never written in place, so sharing the inode shares nothing mutable.

        Raises:
            DigestMismatchError: the file is not the blob it should be (nothing is linked).
        """
        blobs = self._blobs()
        if not checked and not self.check_file(source, expected, size):
            return False
        temp = blobs / f".link.{os.getpid()}.{expected[7:19]}.tmp"
        try:
            temp.unlink(missing_ok=True)
            os.link(source, temp)
        except OSError:  # another file system, no hard links, a vanished cache file: copy
            return False
        try:
            os.replace(temp, self._blob_path(expected))
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return True

    def write_json(self, obj: dict[str, Any], media_type: str) -> Descriptor:
        """Store a manifest, index or config given as a JSON object; return its descriptor.

        The bytes are compact JSON with keys in the given order: the digest is theirs.
        """
        data = json.dumps(obj, separators=(",", ":")).encode()
        return Descriptor(media_type, self.write_blob(data), len(data))

    def index(self) -> Index:
        """The current ``index.json``."""
        data = self._read(INDEX_FILE, MAX_MANIFEST_SIZE)
        return Index.parse(data, mt.OCI_INDEX, source=f"{self.path}/index.json")

    def add(self, descriptor: Descriptor, tag: str | None = None) -> None:
        """List a manifest or index in ``index.json``, tagged ``tag`` if given.

        An entry with the same tag is replaced (the tag moves); an untagged entry with the
        same digest is not added twice.

        Raises:
            LayoutError: the blob the descriptor names is not in the layout.
        """
        if not self.has_blob(descriptor.digest):
            raise LayoutError(f"{self.path}: blob {descriptor.digest} is missing; write it before listing it")
        annotations = dict(descriptor.annotations)
        if tag is not None:
            annotations[REF_NAME_ANNOTATION] = validate_tag(tag)
        entry = Descriptor(
            descriptor.media_type,
            descriptor.digest,
            descriptor.size,
            descriptor.platform,
            annotations,
            descriptor.urls,
            descriptor.artifact_type,
        )
        kept = []
        for old in self.index().manifests:
            old_tag = old.annotations.get(REF_NAME_ANNOTATION)
            if tag is not None and old_tag == tag:
                continue
            if tag is None and old_tag is None and old.digest == entry.digest:
                continue
            kept.append(old)
        self._write_index([*kept, entry])

    def _write_index(self, entries: list[Descriptor]) -> None:
        data = json.dumps(
            {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [e.to_json() for e in entries]},
            separators=(",", ":"),
        ).encode()
        if len(data) > MAX_MANIFEST_SIZE:
            raise LayoutError(f"{self.path}/index.json would exceed {MAX_MANIFEST_SIZE} bytes; use another")
        write_atomically(self.path / INDEX_FILE, data)
