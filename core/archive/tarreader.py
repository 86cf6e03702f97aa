"""Reading untrusted tar streams safely, one entry at a time (docs/architecture.md, "Safety").

Nothing is ever extracted: entries are checked as they stream past and their data handed to the
caller, who re-streams what it keeps. A name that leaves the root, a device node, a FIFO, a
sparse file or an absurd size stops the whole archive with an error naming the entry.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import ArchiveError
from .streams import CHUNK, Readable

__all__ = ["MAX_ENTRY_SIZE", "TarEntry", "iter_tar", "normalize_name"]

MAX_ENTRY_SIZE = 2 * 1024**3  # a lifecycle binary is ~30 MB; 2 GiB is absurd
_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}
_REFUSED_KINDS = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}


def normalize_name(name: str) -> str:
    """Canonical form of an archive path: no leading ``/`` or ``./``, no ``.`` or empty parts.

    Returns ``""`` for the root itself. ``..`` parts are kept, for the caller to refuse.
    """
    return "/".join(part for part in name.split("/") if part not in ("", "."))


@dataclass
class TarEntry:
    """One checked entry of a tar stream.

    Attributes:
        name: the normalised path (``cnb/lifecycle/launcher``); never empty, never with ``..``.
        original: the name as the archive wrote it, for messages.
        kind: ``file``, ``dir``, ``symlink`` or ``hardlink``.
        mode: the permission bits (``0o7777`` mask).
        size: the data size (0 for anything but files).
        linkname: a symlink's target as written, or a hardlink's normalised target path.
    """

    name: str
    original: str
    kind: str
    mode: int
    size: int
    linkname: str
    source: str
    _archive: tarfile.TarFile
    _member: tarfile.TarInfo

    def chunks(self) -> Iterator[bytes]:
        """Yield this entry's data; only valid while the stream is on this entry.

        Raises:
            ArchiveError: the data ends before the size the header claims.
        """
        if self.kind != "file" or not self.size:
            return
        reader = self._archive.extractfile(self._member)
        if reader is None:  # pragma: no cover - tarfile returns None only for non-files
            return
        try:
            while chunk := reader.read(CHUNK):
                yield chunk
        except (tarfile.TarError, EOFError):
            raise ArchiveError(
                f"{self.source}: truncated tar archive (entry {self.original!r} is cut short)"
            ) from None


def _check(member: tarfile.TarInfo, archive: tarfile.TarFile, source: str) -> TarEntry | None:
    original = member.name
    name = normalize_name(original)
    where = f"{source}: entry {original!r}"
    if ".." in name.split("/"):
        raise ArchiveError(f"{where} leaves the archive root; refusing the archive")
    if member.type in _REFUSED_KINDS:
        raise ArchiveError(f"{where} is {_REFUSED_KINDS[member.type]}; refusing the archive")
    kind = _KINDS.get(member.type)
    if kind is None:
        raise ArchiveError(f"{where} has unsupported tar type {member.type!r}; refusing the archive")
    if not 0 <= member.size <= MAX_ENTRY_SIZE:
        raise ArchiveError(f"{where} claims an absurd size ({member.size} bytes); refusing the archive")
    if not name:
        return None  # the root directory itself ("./"): nothing to keep
    linkname = member.linkname
    if kind == "hardlink":
        linkname = normalize_name(linkname)
        if not linkname or ".." in linkname.split("/"):
            raise ArchiveError(f"{where} is a hardlink to {member.linkname!r} outside the archive")
    return TarEntry(
        name=name,
        original=original,
        kind=kind,
        mode=member.mode & 0o7777,
        size=member.size if kind == "file" else 0,
        linkname=linkname,
        source=source,
        _archive=archive,
        _member=member,
    )


def iter_tar(stream: Readable, source: str) -> Iterator[TarEntry]:
    """Yield the checked entries of an uncompressed tar stream, then read it to its end.

    Reading to the end matters: a tar reader stops at the end marker, but the digest of the
    artifact is only known once every byte, including any after the marker, has been read.

    Args:
        stream: the uncompressed tar bytes.
        source: the (redacted) name of the artifact, used in every message.

    Raises:
        ArchiveError: corrupt or truncated tar, or an entry the safety rules refuse.
    """
    try:
        archive = tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK)  # type: ignore[call-overload]  # noqa: SIM115
    except tarfile.ReadError as exc:
        raise ArchiveError(f"{source} is not a tar archive ({exc})") from None
    try:
        for member in archive:
            entry = _check(member, archive, source)
            if entry is not None:
                yield entry
    except tarfile.TarError as exc:
        raise ArchiveError(f"{source}: corrupt or truncated tar archive ({exc})") from None
    except EOFError:
        raise ArchiveError(f"{source}: truncated tar archive") from None
    while stream.read(CHUNK):  # drain: the caller's digest needs the true end of the stream
        pass


def link_target(entry_name: str, linkname: str) -> str:
    """Where a symlink named ``entry_name`` points, as a normalised archive path.

    Relative targets resolve against the link's directory; absolute targets are taken as
    archive-root paths. ``..`` parts that would climb above the root stop at the root, which
    is fine for the one use of this function: checking that a target stays inside a directory
    at least one level below the root.
    """
    base = posixpath.dirname(entry_name)
    joined = linkname if linkname.startswith("/") else posixpath.join("/", base, linkname)
    return posixpath.normpath(joined if joined.startswith("/") else "/" + joined).lstrip("/")
