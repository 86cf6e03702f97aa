"""A tar file's members found in one checked pass, then read back where they lie.

``docker-archive:`` and ``oci-archive:`` files are never unpacked: the strict tar reader walks
the file once (every header checked, sizes bounded), noting where each regular file's data
starts; blobs are then read by offset (``os.pread``), so a layer costs nothing until the core
streams it, verified against its digest, exactly as a layout's file would be.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..archive.streams import CHUNK
from ..archive.tarinput import DEFAULT_MAX_TOTAL
from ..archive.tarreader import TarEntry, iter_tar, link_target
from ..oci.errors import ImageError

__all__ = ["Member", "TarIndex"]

_GZIP_MAGIC = b"\x1f\x8b"
_MAX_LINKS = 40  # symlinks followed from one name before the archive is called broken


@dataclass(frozen=True)
class Member:
    """One regular file of the archive: where its data lies, and (when asked for) its digest."""

    name: str
    offset: int
    size: int
    digest: str | None
    gzip: bool


class TarIndex:
    """The members of the uncompressed tar file ``path``, read through one open descriptor.

    Args:
        path: the archive (a regular file; a FIFO or device cannot be read twice).
        source: the archive's name, for messages.
        digests: hash every member on the way (for formats whose names are not digests).
        max_total: the most bytes the archive may hold (``--max-size`` per file, in all).

    Raises:
        ImageError: no such file, not a regular file, or not readable.
        ArchiveError: the tar is corrupt, compressed, or refused by the tar reader's rules.
    """

    def __init__(
        self, path: str | os.PathLike[str], source: str, *, digests: bool, max_total: int = DEFAULT_MAX_TOTAL
    ) -> None:
        self.source = source
        self._fd = -1
        self.members: dict[str, Member] = {}
        self.links: dict[str, str] = {}
        try:
            fd = os.open(Path(path), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise ImageError(f"{source}: cannot read the archive ({exc.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ImageError(f"{source}: not a regular file; give the path of a tar archive")
        os.set_blocking(fd, True)
        self._fd = fd
        try:
            with os.fdopen(os.dup(fd), "rb", buffering=0) as file:
                for entry in iter_tar(file, source, max_total=max_total):
                    if entry.kind == "symlink":
                        self.links[entry.name] = link_target(entry.name, entry.linkname).lstrip("/")
                    elif entry.kind == "file":
                        self.members[entry.name] = self._member(entry, digests)
        except BaseException:
            self.close()  # a refused archive holds no descriptor
            raise

    @staticmethod
    def _member(entry: TarEntry, digests: bool) -> Member:
        hasher = hashlib.sha256() if digests else None
        head = b""
        for chunk in entry.chunks():
            if not head:
                head = chunk[:2]
                if hasher is None:
                    break  # the magic is all we need; the reader skips the rest
            if hasher is not None:
                hasher.update(chunk)
        digest = f"sha256:{hasher.hexdigest()}" if hasher is not None else None
        return Member(entry.name, entry.offset, entry.size, digest, head == _GZIP_MAGIC)

    def close(self) -> None:
        """Close the archive's descriptor (an image read from it cannot stream any more)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()

    def member(self, name: str) -> Member | None:
        """The regular file ``name`` (symlinks followed), or ``None``."""
        for _ in range(_MAX_LINKS):
            if name not in self.links:
                return self.members.get(name)
            name = self.links[name]
        return None

    def read(self, member: Member, limit: int) -> bytes:
        """The whole (small) member; at most ``limit`` bytes.

        Raises:
            ImageError: the member is larger than ``limit``.
        """
        if member.size > limit:
            raise ImageError(f"{self.source}: {member.name[:200]} is {member.size} bytes; refused")
        reader = self.open(member)
        return reader.read(member.size)

    def open(self, member: Member) -> Region:
        """A stream of the member's bytes (unverified: the image's Layer verifies them)."""
        return Region(self, member.offset, member.size)

    def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes of the archive at ``offset``."""
        return os.pread(self._fd, size, offset)


class Region:
    """``size`` bytes of the archive from ``offset``, read with ``pread`` (no shared position);
    it keeps its index, so the descriptor stays open while the stream is read."""

    def __init__(self, tar: TarIndex, offset: int, size: int) -> None:
        self._tar, self._pos, self._left = tar, offset, size

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left for ``n < 0``); ``b""`` at the end."""
        if self._left <= 0:
            return b""
        want = self._left if n is None or n < 0 else min(n, self._left)
        parts: list[bytes] = []
        while want:
            data = self._tar.pread(min(want, CHUNK), self._pos)
            if not data:
                raise ImageError(
                    f"{self._tar.source}: the archive is shorter than it was; it changed while read"
                )
            parts.append(data)
            self._pos += len(data)
            self._left -= len(data)
            want -= len(data)
            if n is not None and n >= 0:
                break
        return b"".join(parts)

    def close(self) -> None:
        """Nothing to release: the archive's descriptor belongs to its index."""
