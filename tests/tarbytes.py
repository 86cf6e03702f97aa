"""A byte-level tar writer for hostile test archives (Python's tarfile cannot write most of them).

Every function returns raw bytes: 512-byte header blocks with a correct checksum (unless told
otherwise), PAX records, GNU long names, data padded to a block. Join them and add :data:`END`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tests.lifecycles import Entry, lifecycle_entries

BLOCK = 512
END = bytes(2 * BLOCK)
_TYPES = {
    "file": b"0",
    "dir": b"5",
    "symlink": b"2",
    "hardlink": b"1",
    "chr": b"3",
    "blk": b"4",
    "fifo": b"6",
}


def _b(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _field(value: bytes, width: int) -> bytes:
    assert len(value) <= width, (value, width)
    return value + b"\0" * (width - len(value))


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def padded(data: bytes) -> bytes:
    """``data`` followed by zeros up to the next block."""
    return data + b"\0" * (-len(data) % BLOCK)


def header(
    name: str | bytes,
    typeflag: bytes = b"0",
    *,
    size: int = 0,
    mode: int = 0o644,
    linkname: str | bytes = b"",
    prefix: str | bytes = b"",
    magic: bytes = b"ustar\x0000",
    size_field: bytes | None = None,
    mode_field: bytes | None = None,
    checksum: bytes | None = None,
    signed: bool = False,
    tail: bytes = b"",
) -> bytes:
    """One header block.

    Args:
        name: the name field (at most 100 bytes).
        typeflag: the type byte.
        size: the size, written in octal unless ``size_field`` gives the raw field.
        mode: the mode, in octal unless ``mode_field`` gives the raw field.
        linkname: the link name field.
        prefix: the ustar prefix field (bytes 345-500).
        magic: magic and version (8 bytes): ustar (default), GNU ``b"ustar  \\0"`` or v7 zeros.
        size_field: the raw 12-byte size field (base-256, garbage).
        mode_field: the raw 8-byte mode field.
        checksum: the raw 8-byte checksum field (default: the correct one).
        signed: compute the checksum with signed bytes, as old tars did.
        tail: raw bytes for 500-512 (star's trailer).
    """
    block = bytearray(BLOCK)
    block[0:100] = _field(_b(name), 100)
    block[100:108] = mode_field if mode_field is not None else _octal(mode, 8)
    block[108:124] = _octal(0, 8) + _octal(0, 8)
    block[124:136] = size_field if size_field is not None else _octal(size, 12)
    block[136:148] = _octal(1700000000, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157:257] = _field(_b(linkname), 100)
    block[257:265] = magic
    block[345:500] = _field(_b(prefix), 155)
    block[500 : 500 + len(tail)] = tail
    if checksum is None:
        # sum() over bytes runs in C; the signed sum (old tars) subtracts 256 per high byte
        total = sum(block) - (256 * sum(1 for b in block if b >= 128) if signed else 0)
        checksum = b"%06o\0 " % (total & 0o777777)
    block[148:156] = checksum
    return bytes(block)


def entry(name: str | bytes, data: bytes = b"", typeflag: bytes = b"0", **kwargs: object) -> bytes:
    """A header for ``data`` (its size unless given) followed by the padded data."""
    kwargs.setdefault("size", len(data))
    return header(name, typeflag, **kwargs) + padded(data)  # type: ignore[arg-type]


def pax_records(records: Iterable[tuple[str | bytes, str | bytes]]) -> bytes:
    """PAX records ``"<len> key=value\\n"`` with the self-counting length."""
    out = []
    for key, value in records:
        body = b" " + _b(key) + b"=" + _b(value) + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length += 1
        out.append(str(length).encode() + body)
    return b"".join(out)


def pax(records: Iterable[tuple[str | bytes, str | bytes]] | bytes, typeflag: bytes = b"x") -> bytes:
    """A PAX extended header (``x``, or ``g`` for global) with ``records`` or raw record data."""
    data = records if isinstance(records, bytes) else pax_records(records)
    return entry("PaxHeaders/entry", data, typeflag)


def gnu_long(name: str | bytes, typeflag: bytes = b"L") -> bytes:
    """A GNU long name (``L``) or long link (``K``) header, NUL-terminated as GNU tar writes."""
    return entry("././@LongLink", _b(name) + b"\0", typeflag, magic=b"ustar  \0")


def from_entries(entries: Iterable[Entry]) -> bytes:
    """The entries of :mod:`tests.lifecycles` as raw tar bytes (without the end marker)."""
    out = []
    for e in entries:
        kind = _TYPES[e.kind]
        mode = e.mode if e.mode is not None else (0o644 if e.kind == "file" else 0o755)
        name = _b(e.name)
        if len(name) > 100:
            out.append(pax([("path", name)]))
            name = name[:100]
        out.append(entry(name, e.data, kind, mode=mode, linkname=e.linkname))
    return b"".join(out)


def lifecycle_with(*extra: bytes, before: bool = False) -> bytes:
    """A valid release-shaped lifecycle tar with ``extra`` raw entries after (or before) it."""
    body = from_entries(lifecycle_entries())
    parts = [*extra, body] if before else [body, *extra]
    return b"".join(parts) + END
