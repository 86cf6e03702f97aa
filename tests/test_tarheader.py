"""The tar header parser on its own: every field, every encoding, every refusal, fast.

Generated header blocks are parsed by :mod:`cnbkit.archive.tarheader` and by Python's
``tarfile`` (and a batch of them listed by GNU tar), and must read the same wherever those
readers agree (octal fields padded with spaces and NULs, base-256 with a ``0x80`` lead, ustar
prefixes, signed checksums). Where they differ, the rule follows Go's ``archive/tar``, the
reader of the lifecycle itself, and is checked on its own. The limits are checked with the
numbers written out, so a changed limit fails here rather than moving with the test.
"""

from __future__ import annotations

import dataclasses
import io
import re
import stat
import subprocess
import tarfile

import pytest
from cnbkit.archive.tarheader import (
    BLOCK,
    ZERO_BLOCK,
    HeaderError,
    RawHeader,
    padding_of,
    parse_number,
    parse_pax,
)
from cnbkit.archive.tarheader import parse_header as parse
from cnbkit.archive.tarreader import iter_tar
from cnbkit.errors import ArchiveError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tarbytes import END, entry, gnu_long, header, padded, pax, pax_records

FAST = settings(
    max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
NAME_BYTES = st.binary(min_size=1, max_size=100).map(lambda b: b.replace(b"\0", b"n").replace(b"/", b"d"))


def octal(value: int, width: int, lead: int, lead_char: bytes, tail: bytes) -> bytes:
    """``value`` in octal, after ``lead`` pad characters, ended by ``tail``, NUL-filled to ``width``."""
    field = lead_char * lead + b"%o" % value + tail
    return (field + bytes(width))[:width]


@st.composite
def octal_field(draw: st.DrawFn, width: int) -> tuple[bytes, int]:
    """An octal field as tar writers pad them (leading zeros or spaces, a NUL or space after)."""
    value = draw(st.integers(0, 8**width - 1))
    digits = len(b"%o" % value)
    lead = draw(st.integers(0, width - digits))
    tail = draw(st.sampled_from([b"", b"\0", b" ", b" \0", b"\0 "]))
    return octal(value, width, lead, draw(st.sampled_from([b"0", b" "])), tail), value


@st.composite
def number_field(draw: st.DrawFn, width: int) -> tuple[bytes, int]:
    """An octal field, or GNU base-256 (a ``0x80`` lead, then the value big-endian)."""
    if draw(st.booleans()):
        return draw(octal_field(width))
    value = draw(st.integers(0, 256 ** (width - 1) - 1))
    return b"\x80" + value.to_bytes(width - 1, "big"), value


def base256(value: int, width: int = 12) -> bytes:
    """A positive base-256 field: the top bit set, the value in the bits below."""
    return (value | 1 << (8 * width - 1)).to_bytes(width, "big")


def with_checksum(block: bytearray, *, signed: bool = False, base: bool = False) -> bytes:
    """``block`` with a correct checksum: of signed bytes if ``signed``, written in base-256 if ``base``.

    A base-256 checksum's own bytes are not summed (the field counts as eight spaces).
    """
    block[148:156] = b" " * 8
    unsigned = sum(block)
    total = unsigned - 256 * sum(b >= 128 for b in block) if signed else unsigned
    total = total if total >= 0 else unsigned  # a negative signed sum cannot be written
    block[148:156] = base256(total, 8) if base else b"%06o\0 " % total
    return bytes(block)


def gnu_tar_lists(archive: bytes) -> subprocess.CompletedProcess[bytes]:
    """GNU tar's verbose listing of ``archive`` (names escaped, numeric owners)."""
    command = ["tar", "--list", "--verbose", "--numeric-owner", "--quoting-style=escape", "--file=-"]
    return subprocess.run(command, input=archive, capture_output=True, check=False)


def tarfile_reads(block: bytes) -> tarfile.TarInfo:
    """The header as Python's tarfile reads it (names decoded with surrogateescape)."""
    return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")


# -- numeric fields --------------------------------------------------------------------------


@FAST
@given(octal_field(8), octal_field(12))
def test_octal_fields_read_as_tarfile_reads_them(mode: tuple[bytes, int], size: tuple[bytes, int]) -> None:
    for field, value in (mode, size):
        assert parse_number(field, "size") == value == tarfile.nti(field)


@FAST
@given(st.integers(0, 256**11 - 1), st.integers(0x80, 0xBF))
def test_base256_fields(value: int, lead: int) -> None:
    field = bytes([lead]) + value.to_bytes(11, "big")
    # Go keeps the six low bits of the lead byte; tarfile and GNU tar only write 0x80 there
    assert parse_number(field, "size") == (lead & 0x3F) << 88 | value
    if lead == 0x80:
        assert parse_number(field, "size") == tarfile.nti(field)


@pytest.mark.parametrize("lead", [0xC0, 0xFF, 0xE1])
def test_negative_base256_is_refused(lead: int) -> None:
    with pytest.raises(HeaderError, match=r"^negative size field$"):
        parse_number(bytes([lead]) + bytes(11), "size")


@pytest.mark.parametrize(
    ("field", "value"),
    [(b"", 0), (b"\0" * 8, 0), (b" " * 12, 0), (b" \0 \0", 0), (b"7", 7), (b"17", 15), (b"0000644\0", 420)],
)
def test_octal_edge_cases(field: bytes, value: int) -> None:
    assert parse_number(field, "mode") == value


@pytest.mark.parametrize(
    "field", [b"+7", b"1_0", b"1 2", b"8", b"19", b"-1", b"0x1", b" 7a ", b"12\x0034", b"\x7f", b"0o7"]
)
def test_anything_but_octal_digits_is_refused(field: bytes) -> None:
    # int() alone would accept some of these (+7, 1_0); Go accepts none
    with pytest.raises(HeaderError) as info:
        parse_number(field, "mode")
    assert str(info.value) == f"bad mode field {field!r}"


def test_padding_to_the_next_block() -> None:
    assert BLOCK == tarfile.BLOCKSIZE
    assert bytes(512) == ZERO_BLOCK
    for size in [*range(0, 1100), 2**33 - 1, 2**33, 2**33 + 1]:
        pad = padding_of(size)
        assert 0 <= pad < 512 and (size + pad) % 512 == 0


# -- header blocks ---------------------------------------------------------------------------


@st.composite
def header_block(draw: st.DrawFn) -> tuple[bytes, RawHeader]:
    """A header block with every field drawn, and what it says."""
    block = bytearray(512)
    name = draw(NAME_BYTES)
    linkname = draw(NAME_BYTES | st.just(b""))
    magic = draw(st.sampled_from([b"ustar\x0000", b"ustar  \x00", bytes(8)]))
    prefix = draw(st.binary(max_size=155).map(lambda b: b.replace(b"\0", b"p")))
    mode_field, mode = draw(number_field(8))
    size_field, size = draw(number_field(12))
    typeflag = draw(st.sampled_from([b"0", b"5", b"2", b"1", b"7"]))
    block[0 : len(name)] = name
    block[100:108] = mode_field
    for start, width in ((108, 8), (116, 8), (136, 12), (329, 8), (337, 8)):  # uid gid mtime dev*
        block[start : start + width] = draw(octal_field(width))[0]
    block[124:136] = size_field
    block[156:157] = typeflag
    block[157 : 157 + len(linkname)] = linkname
    block[257:265] = magic
    block[345 : 345 + len(prefix)] = prefix
    joined = prefix + b"/" + name if prefix and magic[:6] == b"ustar\0" else name
    block = with_checksum(block, signed=draw(st.booleans()))
    return block, RawHeader(typeflag, joined, linkname, mode, size)


@FAST
@given(header_block())
def test_headers_read_as_tarfile_reads_them(case: tuple[bytes, RawHeader]) -> None:
    block, expected = case
    assert parse(block) == expected
    theirs = tarfile_reads(block)
    assert (theirs.linkname.encode("utf-8", "surrogateescape"), theirs.mode, theirs.size) == (
        expected.linkname,
        expected.mode,
        expected.size,
    )
    if block[257:263] == b"ustar\0" or not block[345:500].strip(b"\0"):  # tarfile ignores magic
        assert theirs.name.encode("utf-8", "surrogateescape") == expected.name
    assert theirs.type == expected.typeflag


@st.composite
def gnu_tar_member(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A regular file's header and padded data, in ustar, GNU or v7 form."""
    name = draw(st.text("abc.-_/0189", min_size=1, max_size=100).filter(lambda n: n[0] != "/" != n[-1]))
    magic = draw(st.sampled_from([b"ustar\x0000", b"ustar  \x00", bytes(8)]))
    prefix = draw(st.text("pq/", max_size=155)) if magic == b"ustar\x0000" else ""
    size_field, size = draw(
        st.integers(0, 1200).flatmap(
            lambda n: st.sampled_from([octal(n, 12, 0, b"0", b" "), base256(n)]).map(lambda f: (f, n))
        )
    )
    mode_field, _ = draw(octal_field(8))
    block = header(
        name,
        magic=magic,
        prefix=prefix,
        size_field=size_field,
        mode_field=mode_field,
        signed=draw(st.booleans()),
    )
    return block, padded(b"d" * size)


@settings(FAST, max_examples=25)
@given(st.lists(gnu_tar_member(), min_size=1, max_size=8))
def test_headers_read_as_gnu_tar_reads_them(members: list[tuple[bytes, bytes]]) -> None:
    listed = gnu_tar_lists(b"".join(block + data for block, data in members) + END)
    assert listed.returncode == 0, listed.stderr
    theirs = [
        re.fullmatch(rb"(\S+) 0/0 +(\d+) \S+ \S+ (.*)", line).groups() for line in listed.stdout.splitlines()
    ]  # type: ignore[union-attr]
    ours = [parse(block) for block, _ in members]
    expected = [(stat.filemode(0o100000 | h.mode & 0o7777).encode(), b"%d" % h.size, h.name) for h in ours]
    assert theirs == expected


@FAST
@given(header_block(), st.integers(0, 511), st.integers(1, 255))
def test_a_changed_byte_fails_the_checksum(case: tuple[bytes, RawHeader], at: int, delta: int) -> None:
    block = bytearray(case[0])
    if 148 <= at < 156:  # the checksum itself: off by delta in its last digit
        block[148:156] = b"%06o\0 " % (parse_number(case[0][148:156], "checksum") + delta)
    else:
        block[at] = (block[at] + delta) % 256
    with pytest.raises(HeaderError, match=r"^checksum mismatch$"):
        parse(bytes(block))
    with pytest.raises(tarfile.HeaderError):
        tarfile_reads(bytes(block))


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("off", [-1, 1, -256, 256])
def test_a_checksum_off_by_one_either_way_is_refused(signed: bool, off: int) -> None:
    # high bytes (0x7f is not one, 0x80 and 0xff are) make the signed and unsigned sums differ
    good = header(b"\x7fa\x80b\xffc", mode=0o755, size=3, signed=signed)
    assert parse(good).name == b"\x7fa\x80b\xffc"
    stored = parse_number(good[148:156], "checksum")
    bad = good[:148] + b"%06o\0 " % (stored + off) + good[156:]
    with pytest.raises(HeaderError, match=r"^checksum mismatch$"):
        parse(bad)


def test_a_checksum_is_the_unsigned_sum_or_the_signed_one_and_nothing_between() -> None:
    # 300 high bytes (name, link name, prefix): their signed sum is negative, which no octal
    # field can hold, so only the unsigned sum is valid; every value 256 apart below it (as if
    # some other count of high bytes had been corrected for) is refused
    block = bytearray(512)
    for start in (0, 157, 345):
        block[start : start + 100] = b"\x80" * 100
    for start, field in ((100, b"0000644\0"), (108, b"0000000\0"), (116, b"0000000\0")):
        block[start : start + 8] = field
    block[124:136] = block[136:148] = b"00000000000\0"
    block[156:157], block[257:265] = b"0", b"ustar\x0000"
    good = with_checksum(block)
    assert parse(good).name == b"\x80" * 100 + b"/" + b"\x80" * 100
    unsigned = parse_number(good[148:156], "checksum")
    for high in range(1, unsigned // 256 + 1):
        bad = good[:148] + b"%06o\0 " % (unsigned - 256 * high) + good[156:]
        with pytest.raises(HeaderError, match=r"^checksum mismatch$"):
            parse(bad)


def test_the_checksum_field_is_bytes_148_to_156() -> None:
    block = bytearray(header("n", b"7"))
    block[136:148] = b"12345670123 "  # mtime ended by a space, as old tars wrote it
    for signed in (False, True):
        out = with_checksum(block, signed=signed)
        assert parse(out).typeflag == b"7" and tarfile_reads(out).mtime == 0o12345670123


@pytest.mark.parametrize("signed", [False, True])
def test_a_base256_checksum_is_refused(signed: bool) -> None:
    # tarfile reads it; Go and GNU tar do not: where readers disagree, the header is refused
    block = with_checksum(bytearray(header(b"\xff\xfe\x80name", size=3)), signed=signed, base=True)
    assert tarfile_reads(block).size == 3
    assert gnu_tar_lists(block + padded(b"abc") + END).returncode == 2
    with pytest.raises(HeaderError, match=r"^bad checksum field b'\\x80"):
        parse(block)


def test_fields_end_exactly_at_their_bounds() -> None:
    block = header(
        "N" * 100,
        b"2",
        mode_field=b"76543210",
        size_field=b"765432107654",
        linkname="L" * 100,
        prefix="P" * 155,
    )
    block = block[:500] + b"Z" * 12  # filler after the prefix, star's trailer absent
    block = with_checksum(bytearray(block))
    assert parse(block) == RawHeader(
        b"2", b"P" * 155 + b"/" + b"N" * 100, b"L" * 100, 0o76543210, 0o765432107654
    )
    theirs = tarfile_reads(block)
    assert (theirs.name, theirs.linkname, theirs.size) == (
        "P" * 155 + "/" + "N" * 100,
        "L" * 100,
        0o765432107654,
    )


@pytest.mark.parametrize(
    ("magic", "joined"),
    [(b"ustar\x0000", True), (b"ustar  \x00", False), (bytes(8), False), (b"ustaz\x0000", False)],
)
def test_the_prefix_is_joined_for_ustar_only(magic: bytes, joined: bool) -> None:
    # GNU headers keep times where ustar keeps the prefix, v7 headers have neither (as Go)
    parsed = parse(header("name", prefix="some/dir", magic=magic))
    assert parsed.name == (b"some/dir/name" if joined else b"name")
    assert parse(header("name", magic=magic)).name == b"name"


def test_star_keeps_a_shorter_prefix() -> None:
    # star: prefix in 345-476, then atime and ctime (octal digits), then "tar\0" at 508
    block = bytearray(header("name", prefix="p" * 131, tail=bytes(8) + b"tar\0"))
    block[476:500] = b"12345670123 12345670123 "
    star = parse(with_checksum(block))
    assert star.name == b"p" * 131 + b"/name"
    block[508:512] = b"taz\0"
    assert parse(with_checksum(block)).name == b"p" * 131 + b"12345670123 12345670123 /name"


def test_fields_stop_at_their_first_nul() -> None:
    block = bytearray(header("", linkname=b"\0junk"))
    block[1:10] = b"after-nul"  # name starts with NUL: the name is empty whatever follows
    block[160:165] = b"after"
    parsed = parse(with_checksum(block))
    assert (parsed.name, parsed.linkname) == (b"", b"")
    assert parse(header("a\0b")).name == b"a"


def test_raw_headers_are_values() -> None:
    raw = parse(header("x", size=1))
    assert raw == RawHeader(b"0", b"x", b"", 0o644, 1) and hash(raw) == hash(
        RawHeader(b"0", b"x", b"", 0o644, 1)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        raw.size = 2  # type: ignore[misc]


# -- PAX records -----------------------------------------------------------------------------

_KEYS = [b"path", b"linkpath", b"size", b"mtime", b"comment", b"pat", b"paths", b"SCHILY.xattr.a"]
PAX_KEY = st.sampled_from(
    [*_KEYS, b"GNU.sparse.x", b"GNU.sparse.major", b"GNU.sparse.name", b"GNU.sparse.size", b"GNU.sparse.nam"]
)


@FAST
@given(st.lists(st.tuples(PAX_KEY, st.binary(max_size=300)), max_size=12))
def test_pax_records(records: list[tuple[bytes, bytes]]) -> None:
    # values may hold anything, "=", newlines and NULs included: only the length finds the end
    applied = {k: v for k, v in records if k in (b"path", b"linkpath", b"size", b"GNU.sparse.name")}
    sparse = next((k for k, _ in records if k.startswith(b"GNU.sparse.")), None)
    assert parse_pax(pax_records(records)) == (applied, sparse)


def test_pax_values_read_as_tarfile_reads_them() -> None:
    records = [("path", "a/b=c d"), ("linkpath", "x"), ("comment", "é\n=1"), ("path", "é/last")]
    with tarfile.open(fileobj=io.BytesIO(pax(records) + entry("short", b"", b"2") + END)) as archive:
        theirs = archive.getmembers()[0]
    ours, _ = parse_pax(pax_records(records))
    assert (theirs.name, theirs.linkname) == (ours[b"path"].decode(), ours[b"linkpath"].decode())


def test_minimal_records_and_the_20_digit_length() -> None:
    assert parse_pax(b"5 k=\n") == ({}, None)
    assert parse_pax(b"8 path=\n") == ({b"path": b""}, None)
    twenty = b"00000000000000000031 path=abcd\n"
    assert len(twenty) == 31 and parse_pax(b"7 a=bc\n" + twenty) == ({b"path": b"abcd"}, None)
    big = pax_records([("comment", "v" * 300)] * 3 + [("path", "p")])
    assert len(big) > 256 and parse_pax(big) == ({b"path": b"p"}, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b" 5 k=\n", "malformed PAX record length at byte 0"),  # empty length
        (b"12", "malformed PAX record length at byte 0"),  # no space at all
        (b"x5 k=\n", "malformed PAX record length at byte 0"),
        (b"-5 k=v\n", "malformed PAX record length at byte 0"),
        (b"+7 k=vv\n", "malformed PAX record length at byte 0"),
        (b"000000000000000000032 path=abcd\n", "malformed PAX record length at byte 0"),  # 21 digits
        (b"7 a=bc\n" + b"0" * 19 + b"32 path=abcd\n", "malformed PAX record length at byte 7"),
        (b"4 =\n", "malformed PAX record at byte 0"),
        (b"3 k\n", "malformed PAX record at byte 0"),
        (b"1 k=v\n", "malformed PAX record at byte 0"),
        (b"0 k=v\n", "malformed PAX record at byte 0"),  # would loop on itself
        (b"00 k=v\n", "malformed PAX record at byte 0"),
        (b"0000 k=v\n", "malformed PAX record at byte 0"),
        (b"0000000 k=v\n", "malformed PAX record at byte 0"),
        (b"7 a=bc\n0 k=v\n", "malformed PAX record at byte 7"),
        (b"9 k=v\n", "malformed PAX record at byte 0"),  # longer than the data
        (b"6 k=v\n7 a=bc\n1", "malformed PAX record length at byte 13"),
        (b"6 k=vx", "malformed PAX record at byte 0"),  # no newline at its end
        (b"6 k=v\t", "malformed PAX record at byte 0"),
        (b"6 k=v\x0b", "malformed PAX record at byte 0"),
        (b"6 k=v\n6 k=vx", "malformed PAX record at byte 6"),
        (b"8 pathx\n", "malformed PAX record at byte 0"),  # no "="
        (b"8 =path\n", "malformed PAX record at byte 0"),  # no key
    ],
)
def test_malformed_pax_records_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(HeaderError) as info:
        parse_pax(data)
    assert str(info.value) == message


def test_pax_record_count_is_bounded_at_1024() -> None:
    assert parse_pax(b"5 k=\n" * 1024) == ({}, None)
    with pytest.raises(HeaderError, match=r"^more than 1024 PAX records$"):
        parse_pax(b"5 k=\n" * 1025)


# -- the limits, through the reader ----------------------------------------------------------


def read_names(data: bytes) -> list[str]:
    """The names of the entries of ``data`` as the reader returns them."""
    return [e.name for e in iter_tar(io.BytesIO(data), "t.tar")]


def refusal(data: bytes) -> str:
    """The reader's message for ``data``."""
    with pytest.raises(ArchiveError) as info:
        read_names(data)
    return str(info.value)


def test_names_of_4096_bytes_and_no_more() -> None:
    name = "d/" * 2047 + "ab"
    assert len(name) == 4096
    assert read_names(gnu_long(name) + entry("x") + END) == [name]
    assert read_names(pax([("path", name)]) + entry("x") + END) == [name]
    too_long = refusal(gnu_long(name + "c") + entry("x") + END)
    assert "is an extended header of 4098 bytes (the limit is 4097)" in too_long
    assert "has a name of 4097 bytes (the limit is 4096)" in refusal(
        pax([("path", name + "c")]) + entry("x") + END
    )


def test_extended_headers_of_1_mib_and_no_more() -> None:
    def padded_to(total: int) -> bytes:
        data = pax_records([("comment", "v" * (total - 17))])
        assert len(data) == total
        return data

    assert read_names(pax(padded_to(1048576)) + entry("x") + END) == ["x"]
    message = refusal(pax(padded_to(1048577)) + entry("x") + END)
    assert "is an extended header of 1048577 bytes (the limit is 1048576)" in message
