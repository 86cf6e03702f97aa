"""Strict parsing of tar header blocks and PAX records (used by :mod:`cnbkit.archive.tarreader`).

Nothing here reads a stream: the reader hands over one 512-byte block, or the bounded data of
one extended header, and gets back plain values or a :class:`HeaderError` saying what is wrong.
Every parse is linear in its input, and every field is checked rather than trusted: a header
that Go's ``archive/tar`` would reject is rejected here too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BLOCK",
    "KINDS",
    "MAX_EXTENDED",
    "MAX_NAME",
    "MAX_PAX_RECORDS",
    "PAX_KEYS",
    "REFUSED_KINDS",
    "ZERO_BLOCK",
    "HeaderError",
    "RawHeader",
    "padding_of",
    "parse_header",
    "parse_number",
    "parse_pax",
]

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
MAX_NAME = 4096  # bytes of a name or link name: Linux's PATH_MAX; a lifecycle path is ~40
MAX_EXTENDED = 1024 * 1024  # bytes of one PAX or GNU long-name header; real ones are < 1 KiB
MAX_PAX_RECORDS = 1024  # records in one PAX header; real ones have a handful
PAX_KEYS = (b"path", b"linkpath", b"size")  # the only PAX records the reader applies
KINDS = {b"0": "file", b"\x00": "file", b"7": "file", b"5": "dir", b"2": "symlink", b"1": "hardlink"}
REFUSED_KINDS = {  # the types refused by name; any other unknown type is refused too
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a FIFO",
    b"S": "a sparse file",
    b"M": "a multi-volume continuation",
    b"V": "a volume header",
}
_SPARSE_KEY = b"GNU.sparse."

_OCTAL = b"01234567"
_DECIMAL = b"0123456789"
_HIGH = bytes(range(128, 256))
_MAX_LENGTH_DIGITS = 20  # a PAX record length: more digits than any real header could need
_USTAR = b"ustar\x00"  # POSIX ustar and pax; GNU writes b"ustar " + b" \x00"
_STAR_TRAILER = b"tar\x00"


class HeaderError(ValueError):
    """A header block or PAX record is malformed; the reader adds the source and offset."""


@dataclass(frozen=True)
class RawHeader:
    """The fields of one header block the reader needs, undecoded.

    Attributes:
        typeflag: the one-byte type (``b"0"``, ``b"x"``, ...).
        name: the name, joined with the ustar ``prefix`` field when the header has one.
        linkname: the link target field.
        mode: the mode field (all bits).
        size: the size field.
    """

    typeflag: bytes
    name: bytes
    linkname: bytes
    mode: int
    size: int


def padding_of(size: int) -> int:
    """The number of zero bytes after ``size`` bytes of entry data, up to the next block."""
    return -size % BLOCK


def _cstring(field: bytes) -> bytes:
    # Fixed-size fields end at their first NUL; what follows is filler (every reader agrees).
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


def _count_high(data: bytes) -> int:
    return len(data) - len(data.translate(None, _HIGH))


def parse_number(field: bytes, what: str) -> int:
    """Parse a numeric header field: octal, or GNU base-256 when the top bit is set.

    Args:
        field: the raw field bytes.
        what: the field's name, for the message.

    Raises:
        HeaderError: a negative base-256 value, or anything but octal digits inside the
            spaces and NULs that may pad an octal field.
    """
    if field and field[0] & 0x80:
        if field[0] & 0x40:  # base-256 two's complement: negative values mean nothing here
            raise HeaderError(f"negative {what} field")
        return int.from_bytes(bytes((field[0] & 0x3F,)) + field[1:], "big")
    return _parse_octal(field, what)


def _parse_octal(field: bytes, what: str) -> int:
    digits = field.strip(b" \x00")
    # int() alone would accept "+7", "1_0" or inner spaces: only octal digits are a number.
    if digits.translate(None, _OCTAL):
        raise HeaderError(f"bad {what} field {field!r}")
    return int(digits, 8) if digits else 0


def _check_checksum(block: bytes) -> None:
    field = block[148:156]
    # Octal only: Go and GNU tar refuse a base-256 checksum that Python's tarfile reads, and
    # where readers disagree the header is refused. So the field holds no high byte.
    stored = _parse_octal(field, "checksum")
    # The sum counts the checksum field as eight spaces. Old tar implementations summed
    # signed chars, so, as Go and GNU tar do, accept either sum.
    unsigned = sum(block) - sum(field) + 8 * 0x20
    if stored == unsigned:
        return
    signed = unsigned - 256 * _count_high(block)
    if stored != signed:
        raise HeaderError("checksum mismatch")


def parse_header(block: bytes) -> RawHeader:
    """Check one 512-byte header block and return its fields.

    The ``prefix`` field is joined to the name only for ustar/pax headers (magic
    ``ustar\\0``), as Go does: GNU headers keep times there and v7 headers have none.

    Raises:
        HeaderError: a wrong checksum or a malformed numeric field.
    """
    _check_checksum(block)
    name = _cstring(block[0:100])
    if block[257:263] == _USTAR:
        # star's variant of ustar keeps a shorter prefix and marks it with a trailer
        prefix = _cstring(block[345:476] if block[508:512] == _STAR_TRAILER else block[345:500])
        if prefix:
            name = prefix + b"/" + name
    return RawHeader(
        typeflag=block[156:157],
        name=name,
        linkname=_cstring(block[157:257]),
        mode=parse_number(block[100:108], "mode"),
        size=parse_number(block[124:136], "size"),
    )


def parse_pax(data: bytes) -> tuple[dict[bytes, bytes], bytes | None]:
    """Parse the records of a PAX extended header in one linear pass.

    Each record is ``"<length> <key>=<value>\\n"``; the length prefix (which counts the whole
    record) is all that is used to find the next one, so no value is ever scanned twice
    (Python 3.11's tarfile rescans, which is quadratic: CVE-2024-6232).

    Args:
        data: the header's data, already bounded by :data:`MAX_EXTENDED`.

    Returns:
        The records whose keys are in :data:`PAX_KEYS` (a later record wins, as POSIX says),
        and the key of the first ``GNU.sparse.*`` record, if any, for the reader to refuse.

    Raises:
        HeaderError: a malformed record, or more than :data:`MAX_PAX_RECORDS` records.
    """
    records: dict[bytes, bytes] = {}
    sparse: bytes | None = None
    pos, end, count = 0, len(data), 0
    while pos < end:
        count += 1
        if count > MAX_PAX_RECORDS:
            raise HeaderError(f"more than {MAX_PAX_RECORDS} PAX records")
        space = data.find(b" ", pos, min(end, pos + _MAX_LENGTH_DIGITS + 1))
        digits = data[pos:space]
        if space <= pos or digits.translate(None, _DECIMAL):
            raise HeaderError(f"malformed PAX record length at byte {pos}")
        stop = pos + int(digits)
        # at least "k=\n" after the space, the record inside the data, a newline at its end
        if stop < space + 4 or stop > end or data[stop - 1] != 0x0A:
            raise HeaderError(f"malformed PAX record at byte {pos}")
        key, equals, value = data[space + 1 : stop - 1].partition(b"=")
        if not equals or not key:
            raise HeaderError(f"malformed PAX record at byte {pos}")
        if key in PAX_KEYS:
            records[key] = value
        elif key.startswith(_SPARSE_KEY):
            sparse = sparse or key
            if key == b"GNU.sparse.name":
                records[key] = value  # the sparse file's real name, for the message only
        pos = stop
    return records, sparse
