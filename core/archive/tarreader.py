"""Reading untrusted tar streams safely, one entry at a time (docs/architecture.md, "Safety").

Nothing is ever extracted: entries are checked as they stream past and their data handed to the
caller, who re-streams what it keeps. A name that leaves the root, a device node, a FIFO, a
sparse file or an absurd size stops the whole archive with an error naming the entry.

The reader is cnbkit's own (Python's ``tarfile`` truncates PAX values at a NUL, parses PAX
headers in quadratic time, expands sparse files and keeps every member). It reads ustar/POSIX
(with ``prefix``), PAX ``x`` headers, GNU long names (``L``, ``K``) and v7 headers, and where
tar readers are known to disagree it refuses rather than picks a meaning:

* names and link names must be valid UTF-8 without control characters (C0, DEL, C1), so the
  ``str`` a caller gets encodes back to exactly the archive's bytes;
* a PAX header may not hold a NUL in ``path``/``linkpath``, nor set them empty, nor say
  anything about sparse files (``GNU.sparse.*``); one entry may not have two PAX headers, two
  long names, or both a PAX ``path`` and a GNU long name;
* a global PAX header (``g``) is parsed and bounded, and its records are ignored, except that
  one setting ``path``, ``linkpath`` or ``size`` (which readers apply differently) is refused;
* the archive must end with its end marker: a stream cut at a block boundary is truncated.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import ArchiveError
from ..redact import clip
from .streams import Readable
from .tarheader import (
    BLOCK,
    KINDS,
    MAX_EXTENDED,
    MAX_NAME,
    PAX_KEYS,
    REFUSED_KINDS,
    ZERO_BLOCK,
    HeaderError,
    RawHeader,
    padding_of,
    parse_header,
    parse_pax,
)
from .tarinput import DEFAULT_MAX_TOTAL, TarInput, size_limit_error

__all__ = ["DEFAULT_MAX_TOTAL", "MAX_ENTRY_SIZE", "TarEntry", "iter_tar", "link_target", "normalize_name"]

MAX_ENTRY_SIZE = 2 * 1024**3  # a lifecycle binary is ~30 MB; 2 GiB is absurd
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_MAX_SIZE_DIGITS = 20


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
        linkname: a symlink's target as written, or a hardlink's normalised target path
            (``""`` for other kinds).
        source: the artifact's (redacted) name, for messages.
        offset: where the entry's data starts in the stream (to read it back from a file).
    """

    name: str
    original: str
    kind: str
    mode: int
    size: int
    linkname: str
    source: str
    offset: int = field(default=0, compare=False)
    _reader: _Reader | None = field(default=None, repr=False, compare=False)
    _serial: int = field(default=0, repr=False, compare=False)

    def chunks(self) -> Iterator[bytes]:
        """Yield this entry's data in chunks of at most ``CHUNK`` bytes.

        Only valid while the stream is on this entry; data not consumed is skipped when the
        next entry is read.

        Raises:
            ArchiveError: the data ends before the size the header claims.
            RuntimeError: the reader has already moved past this entry.
        """
        if self._reader is not None and self.size:
            yield from self._reader.chunks(self._serial)


class _Reader:
    """The state of one pass over a tar stream: where it is, and what is left of the entry."""

    def __init__(self, stream: Readable, source: str, max_total: int) -> None:
        self._in = TarInput(stream, source, max_total)
        self._source = source
        self._max_total = max_total
        self._data_total = 0
        self._serial = 0
        self._left = 0  # data bytes of the current entry not yet handed out
        self._pad = 0
        self._current = ""

    def _truncated(self, detail: str) -> ArchiveError:
        return ArchiveError(f"{self._source}: truncated tar archive ({detail})")

    def _corrupt(self, offset: int, reason: object) -> ArchiveError:
        return ArchiveError(f"{self._source}: corrupt tar header at offset {offset} ({reason})")

    def _refuse(self, name: str | bytes, what: str) -> ArchiveError:
        shown = name if isinstance(name, str) else name.decode("utf-8", "backslashreplace")
        return ArchiveError(f"{self._source}: entry {clip(shown)!r} {what}; refusing the archive")

    def entries(self) -> Iterator[TarEntry]:
        """Yield every entry but the root, then read the stream to its end."""
        while (found := self._header()) is not None:
            entry = self._entry(*found)
            self._left, self._pad = entry.size, padding_of(entry.size)
            self._current = entry.original
            if entry.name:  # the root directory itself ("./") has nothing to keep
                entry._reader, entry._serial, entry.offset = self, self._serial, self._in.offset
                yield entry
            # the entry is behind the reader from here on, even if the archive ends or is
            # refused: its chunks() must say so, never hand out the bytes that follow
            self._serial += 1
            if not self._in.skip(self._left + self._pad):  # what the caller did not read
                raise self._truncated(f"entry {self._current!r} is cut short")
        self._in.drain()  # the caller's digest needs the true end of the stream

    def chunks(self, serial: int) -> Iterator[bytes]:
        """The data of entry number ``serial``, which must be the current one."""
        piece_of = self._in.piece
        while True:  # checked before every piece: the caller may resume after the reader moved
            if serial != self._serial:
                raise RuntimeError("TarEntry.chunks() called after the reader moved past the entry")
            if not self._left:
                return
            piece = piece_of(self._left)
            if not piece:
                raise self._truncated(f"entry {self._current!r} is cut short")
            self._left -= len(piece)
            yield piece

    def _extended(self, header: RawHeader, offset: int, limit: int) -> bytes:
        # Bounded before a byte is read: a 128 MiB long name is refused, never buffered.
        if header.size > limit:
            raise self._refuse(
                header.name, f"is an extended header of {header.size} bytes (the limit is {limit})"
            )
        data = self._in.exact(header.size)
        if len(data) < header.size or not self._in.skip(padding_of(header.size)):
            raise self._truncated(f"it ends inside the extended header at offset {offset}")
        return data

    def _header(self) -> tuple[RawHeader, bytes, bytes, int] | None:
        """Read headers up to the next entry's; return it with its name, link and size."""
        pax: dict[bytes, bytes] | None = None
        longs: dict[bytes, bytes] = {}  # L and K data
        sparse_key: bytes | None = None  # a GNU.sparse.* record of this entry's PAX header
        while True:
            offset = self._in.offset
            block = self._in.exact(BLOCK)
            if len(block) < BLOCK:
                if offset == 0:
                    raise ArchiveError(f"{self._source} is not a tar archive (shorter than one header)")
                raise self._truncated(f"it ends at offset {offset + len(block)}, before its end marker")
            if block == ZERO_BLOCK:
                if pax is not None or longs:
                    raise self._corrupt(offset, "an extended header is followed by no entry")
                second = self._in.exact(BLOCK)
                if second.strip(b"\x00"):  # GNU tar and Go accept one zero block at the end
                    raise self._corrupt(offset, "a lone zero block inside the archive")
                return None
            try:
                header = parse_header(block)
            except HeaderError as exc:
                if offset == 0:
                    raise ArchiveError(f"{self._source} is not a tar archive ({exc})") from None
                raise self._corrupt(offset, exc) from None
            kind = header.typeflag
            if kind in (b"x", b"g"):
                try:
                    records, sparse = parse_pax(self._extended(header, offset, MAX_EXTENDED))
                except HeaderError as exc:
                    raise self._corrupt(offset, exc) from None
                if sparse is not None and kind == b"g":  # no entry to name: the header is it
                    shown = records.get(b"GNU.sparse.name") or records.get(b"path") or header.name
                    raise self._refuse(shown, f"is a sparse file (PAX record {sparse.decode()!r})")
                if kind == b"g":
                    applied = [key.decode() for key in PAX_KEYS if key in records]
                    if applied:
                        raise self._refuse(header.name, f"is a global PAX header setting {applied[0]!r}")
                    continue
                if pax is not None:
                    raise self._refuse(header.name, "is a second PAX header for one entry")
                pax, sparse_key = records, sparse
            elif kind in (b"L", b"K"):
                if kind in longs:
                    raise self._refuse(header.name, "is a second GNU long name for one entry")
                # the name plus the NUL that GNU tar writes after it
                longs[kind] = self._extended(header, offset, MAX_NAME + 1).rstrip(b"\x00")
            else:
                found = self._apply(header, pax or {}, longs, offset)
                if sparse_key is not None:  # refused naming the entry, not its PAX header
                    shown = (pax or {}).get(b"GNU.sparse.name") or found[1]
                    raise self._refuse(shown, f"is a sparse file (PAX record {sparse_key.decode()!r})")
                return found

    def _apply(
        self, header: RawHeader, pax: dict[bytes, bytes], longs: dict[bytes, bytes], offset: int
    ) -> tuple[RawHeader, bytes, bytes, int]:
        name = longs.get(b"L", header.name)
        link = longs.get(b"K", header.linkname)
        for key, gnu, value in ((b"path", b"L", name), (b"linkpath", b"K", link)):
            if key not in pax:
                continue
            if gnu in longs:  # Go takes the PAX value, Python the GNU one, by header order
                raise self._refuse(name, f"has both a PAX {key.decode()} and a GNU long name")
            if not pax[key]:  # POSIX: "keep the header field"; Python: an empty name
                raise self._refuse(value, f"has an empty PAX {key.decode()}")
            if key == b"path":
                name = pax[key]
            else:
                link = pax[key]
        size = header.size
        if b"size" in pax:
            digits = pax[b"size"]
            if not digits or len(digits) > _MAX_SIZE_DIGITS or digits.translate(None, b"0123456789"):
                raise self._corrupt(offset, f"bad PAX size {digits[:40]!r}")
            size = int(digits)
        return header, name, link, size

    def _text(self, raw: bytes, entry: str | bytes, what: str) -> str:
        if len(raw) > MAX_NAME:
            raise self._refuse(entry, f"has a {what} of {len(raw)} bytes (the limit is {MAX_NAME})")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._refuse(entry, f"has a {what} that is not valid UTF-8") from None
        if _CONTROL.search(text):
            raise self._refuse(entry, f"has a control character in its {what}")
        return text

    def _entry(self, header: RawHeader, raw_name: bytes, raw_link: bytes, size: int) -> TarEntry:
        original = self._text(raw_name, raw_name, "name")
        name = normalize_name(original)
        if ".." in name.split("/"):
            raise self._refuse(original, "leaves the archive root")
        typeflag = header.typeflag
        if typeflag in REFUSED_KINDS:
            raise self._refuse(original, f"is {REFUSED_KINDS[typeflag]}")
        kind = KINDS.get(typeflag)
        if kind is None:
            raise self._refuse(original, f"has unsupported tar type {typeflag!r}")
        if typeflag == b"\x00" and original.endswith("/"):
            kind = "dir"  # pre-POSIX archives mark directories by a trailing slash only
        if not 0 <= size <= MAX_ENTRY_SIZE:
            raise self._refuse(original, f"claims an absurd size ({size} bytes)")
        data_size = size if kind == "file" else 0  # other kinds have no data, whatever the header says
        self._data_total += data_size
        if self._data_total > self._max_total:
            raise size_limit_error(self._source, self._max_total)
        linkname = ""
        if kind in ("symlink", "hardlink") and name:
            linkname = self._text(raw_link, original, "link name")
            if kind == "hardlink":
                target = normalize_name(linkname)
                if not target or ".." in target.split("/"):
                    where = f"{self._source}: entry {original!r}"
                    raise ArchiveError(f"{where} is a hardlink to {linkname!r} outside the archive")
                linkname = target
        return TarEntry(name, original, kind, header.mode & 0o7777, data_size, linkname, self._source)


def iter_tar(stream: Readable, source: str, *, max_total: int | None = None) -> Iterator[TarEntry]:
    """Yield the checked entries of an uncompressed tar stream, then read it to its end.

    Reading to the end matters: a tar reader stops at the end marker, but the digest of the
    artifact is only known once every byte, including any after the marker, has been read.
    Memory stays constant: one chunk of the stream and the current entry's headers.

    Args:
        stream: the uncompressed tar bytes.
        source: the (redacted) name of the artifact, used in every message.
        max_total: the most bytes that may be read from ``stream``, and the most bytes of
            entry data the headers may declare in all (default :data:`DEFAULT_MAX_TOTAL`).

    Raises:
        ArchiveError: corrupt or truncated tar, an archive over ``max_total``, or an entry the
            safety rules refuse.
    """
    limit = DEFAULT_MAX_TOTAL if max_total is None else max_total
    return _Reader(stream, source, limit).entries()


def link_target(entry_name: str, linkname: str) -> str:
    """Where a symlink named ``entry_name`` points, as a normalised archive path.

    Relative targets resolve against the link's directory; absolute targets are taken as
    archive-root paths. ``..`` parts that would climb above the root stop at the root, which
    is fine for the one use of this function: checking that a target stays inside a directory
    at least one level below the root.
    """
    base = posixpath.dirname(entry_name)
    joined = linkname if linkname.startswith("/") else posixpath.join("/", base, linkname)
    return posixpath.normpath(joined).lstrip("/")  # joined starts with "/" either way
