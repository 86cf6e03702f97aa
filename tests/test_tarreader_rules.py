"""Every rule of the strict tar reader at its exact edge: the bound itself accepted, one past it
refused; the second of two headers; each PAX key on its own; the entry named in each message."""

from __future__ import annotations

import io

import pytest
from cnbkit.archive.streams import CHUNK
from cnbkit.archive.tarheader import MAX_EXTENDED, MAX_NAME
from cnbkit.archive.tarreader import MAX_ENTRY_SIZE, TarEntry, iter_tar, link_target, normalize_name
from cnbkit.errors import ArchiveError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tarbytes import END, entry, gnu_long, header, pax, pax_records

FAST = settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
Row = tuple[str, str, str, int, int, str, bytes]


def rows(data: bytes, **kwargs: int) -> list[Row]:
    """Every entry of ``data``: name, original, kind, mode, size, linkname, data."""
    return [
        (e.name, e.original, e.kind, e.mode, e.size, e.linkname, b"".join(e.chunks()))
        for e in iter_tar(io.BytesIO(data), "t.tar", **kwargs)
    ]


def names(data: bytes) -> list[str]:
    """The names of the entries of ``data``."""
    return [row[0] for row in rows(data)]


def refused(data: bytes, **kwargs: int) -> str:
    """The message ``data`` is refused with."""
    with pytest.raises(ArchiveError) as info:
        rows(data, **kwargs)
    return str(info.value)


class Blocks:
    """A stream that returns ``size`` bytes a read at most (a slow pipe)."""

    def __init__(self, data: bytes, size: int = 512) -> None:
        self.data = io.BytesIO(data)
        self.size = size

    def read(self, size: int = -1, /) -> bytes:
        """At most ``self.size`` bytes."""
        return self.data.read(min(size, self.size))


# -- extended headers -------------------------------------------------------------------------


def _filled(total: int, tail: bytes) -> bytes:
    """PAX records of exactly ``total`` bytes: a comment to fill, then ``tail``."""
    for n in range(total - len(tail) - 30, total):
        data = pax_records([("comment", "c" * n)]) + tail
        if len(data) == total:
            return data
    raise AssertionError(total)


def test_an_extended_header_of_exactly_the_limit_is_read() -> None:
    records = pax_records([("path", "big")])
    assert names(pax(_filled(MAX_EXTENDED, records)) + entry("x") + END) == ["big"]
    message = refused(pax(_filled(MAX_EXTENDED + 1, records)) + entry("x") + END)
    assert f"is an extended header of {MAX_EXTENDED + 1} bytes (the limit is {MAX_EXTENDED})" in message


def test_a_gnu_long_name_of_exactly_the_limit_is_read() -> None:
    name = "d/" + "n" * (MAX_NAME - 2)
    assert names(gnu_long(name) + entry("x") + END) == [name]
    assert names(gnu_long(name, b"K") + header("l", b"2", linkname="x") + END) == ["l"]
    assert rows(gnu_long(name, b"K") + header("l", b"2", linkname="x") + END)[0][5] == name
    message = refused(gnu_long(name + "n") + entry("x") + END)
    assert f"entry '././@LongLink' is an extended header of {MAX_NAME + 2} bytes" in message


def test_an_extended_header_cut_in_its_padding_is_truncated() -> None:
    whole = pax([("path", "a" * 600)])
    size = len(pax_records([("path", "a" * 600)]))
    assert refused(whole[: 512 + size + 1]) == (
        "t.tar: truncated tar archive (it ends inside the extended header at offset 0)"
    )
    assert "inside the extended header at offset 1024" in refused(entry("f", b"d") + whole[: 512 + size])


def test_an_extended_header_of_whole_blocks_cut_in_its_data_is_truncated_there() -> None:
    # 1024 bytes of long name (with its NUL): no padding follows, so the cut is found by the
    # data's own length, not by the padding that cannot be skipped
    whole = gnu_long("n" * 1023)
    assert len(whole) == 512 + 1024
    assert (
        refused(whole[:1212])
        == "t.tar: truncated tar archive (it ends inside the extended header at offset 0)"
    )


def test_an_extended_header_refused_by_a_name_that_is_not_utf8() -> None:
    data = header(b"Pax\xff", b"x", size=MAX_EXTENDED + 1)
    assert refused(data) == (
        "t.tar: entry 'Pax\\\\xff' is an extended header of 1048577 bytes (the limit is 1048576); "
        "refusing the archive"
    )


def test_a_global_header_is_ignored_and_the_next_entry_read() -> None:
    data = pax([("comment", "x"), ("mtime", "1")], b"g") + entry("a", b"1") + entry("b", b"2") + END
    assert names(data) == ["a", "b"]
    two = pax([("comment", "x")], b"g") + pax([("comment", "y")], b"g") + pax([("path", "p")]) + entry("z")
    assert names(two + END) == ["p"]


@pytest.mark.parametrize("key", ["path", "linkpath", "size"])
def test_a_global_header_setting_an_applied_key_is_refused(key: str) -> None:
    data = pax([("comment", "c"), (key, "1")], b"g") + entry("a") + END
    assert refused(data) == (
        f"t.tar: entry 'PaxHeaders/entry' is a global PAX header setting {key!r}; refusing the archive"
    )


def test_a_global_header_names_the_first_applied_key() -> None:
    data = pax([("size", "1"), ("linkpath", "l")], b"g") + END
    assert "setting 'linkpath'" in refused(data)


@pytest.mark.parametrize(
    ("records", "shown"),
    [
        ([("GNU.sparse.size", "9"), ("GNU.sparse.name", "real"), ("path", "p")], "real"),
        ([("GNU.sparse.size", "9"), ("path", "p")], "p"),  # sparse is refused before path
        ([("GNU.sparse.size", "9")], "PaxHeaders/entry"),
    ],
)
def test_a_sparse_global_header_is_named_by_what_it_says(records: list[tuple[str, str]], shown: str) -> None:
    message = refused(pax(records, b"g") + END)
    assert message == (
        f"t.tar: entry {shown!r} is a sparse file (PAX record 'GNU.sparse.size'); refusing the archive"
    )


def test_a_sparse_global_header_with_a_path_only_shows_the_path() -> None:
    message = refused(pax([("path", "p"), ("GNU.sparse.major", "1")], b"g") + END)
    assert message.startswith("t.tar: entry 'p' is a sparse file (PAX record 'GNU.sparse.major')")


def test_a_sparse_entry_is_named_by_its_sparse_name_or_its_own() -> None:
    named = pax([("GNU.sparse.major", "1"), ("GNU.sparse.name", "real/name")]) + entry("GNUSparse/x")
    assert "entry 'real/name' is a sparse file (PAX record 'GNU.sparse.major')" in refused(named + END)
    plain = pax([("GNU.sparse.numblocks", "1"), ("path", "p/q")]) + entry("x")
    assert "entry 'p/q' is a sparse file (PAX record 'GNU.sparse.numblocks')" in refused(plain + END)


def test_a_sparse_global_header_refused_before_a_lone_one_ends() -> None:
    data = pax([("GNU.sparse.size", "9")], b"g") + entry("a") + END
    assert "is a sparse file" in refused(data)


def test_a_long_name_then_no_entry_is_corrupt() -> None:
    for head in (gnu_long("a"), gnu_long("a", b"K"), pax([("path", "a")])):
        assert refused(entry("f", b"x") + head + END) == (
            "t.tar: corrupt tar header at offset 2048 (an extended header is followed by no entry)"
        )


def test_a_long_name_and_a_long_link_together_are_one_entry() -> None:
    data = gnu_long("long/name") + gnu_long("long/link", b"K") + header("x", b"2", linkname="y") + END
    assert rows(data) == [("long/name", "long/name", "symlink", 0o644, 0, "long/link", b"")]
    assert "is a second GNU long name" in refused(gnu_long("a", b"K") + gnu_long("b", b"K") + entry("x"))


def test_gnu_long_names_keep_everything_before_the_trailing_nuls() -> None:
    data = entry("././@LongLink", b"a b \x00\x00\x00", b"L", magic=b"ustar  \0") + entry("x") + END
    assert names(data) == ["a b "]


# -- PAX records applied to the entry ---------------------------------------------------------


def test_each_pax_key_applies_on_its_own() -> None:
    link_only = pax([("linkpath", "pax/target")]) + header("s", b"2", linkname="field") + END
    assert rows(link_only) == [("s", "s", "symlink", 0o644, 0, "pax/target", b"")]
    both = pax([("linkpath", "to"), ("path", "from")]) + header("s", b"2", linkname="f") + END
    assert rows(both) == [("from", "from", "symlink", 0o644, 0, "to", b"")]
    size_only = pax([("size", "3")]) + entry("f", b"abc", size=0) + END
    assert rows(size_only) == [("f", "f", "file", 0o644, 3, "", b"abc")]


def test_a_pax_linkpath_and_a_gnu_long_link_are_refused_together() -> None:
    data = gnu_long("a", b"K") + pax([("linkpath", "b")]) + header("s", b"2", linkname="c") + END
    assert (
        refused(data) == "t.tar: entry 's' has both a PAX linkpath and a GNU long name; refusing the archive"
    )
    other = gnu_long("a", b"K") + pax([("path", "b")]) + header("s", b"2", linkname="c") + END
    assert rows(other) == [("b", "b", "symlink", 0o644, 0, "a", b"")]  # different fields: fine


def test_an_empty_pax_linkpath_is_refused_naming_the_link() -> None:
    data = pax([("linkpath", "")]) + header("s", b"2", linkname="field") + END
    assert refused(data) == "t.tar: entry 'field' has an empty PAX linkpath; refusing the archive"


@pytest.mark.parametrize(
    ("digits", "size"),
    [("0", 0), ("00000000000000000003", 3), ("000000000000000000003", None), ("", None), ("3 ", None)],
)
def test_pax_size_digits(digits: str, size: int | None) -> None:
    payload = b"abc"[: size or 0]
    data = pax([("size", digits)]) + entry("f", payload, size=3 - len(payload)) + END  # PAX wins
    if size is None:
        assert refused(data) == f"t.tar: corrupt tar header at offset 1024 (bad PAX size {digits.encode()!r})"
    else:
        assert [row[4] for row in rows(data)] == [size]


def test_a_bad_pax_size_is_shown_cut_to_40_bytes() -> None:
    data = pax([("size", "9" * 39 + "x" * 11)]) + entry("f") + END
    assert refused(data).endswith(f"(bad PAX size {(b'9' * 39 + b'x')!r})")


# -- names, kinds, sizes ----------------------------------------------------------------------


def test_a_name_and_a_link_name_of_exactly_max_name_bytes() -> None:
    name = "n" * MAX_NAME
    ok = pax([("path", name), ("linkpath", name)]) + header("x", b"2") + END
    assert rows(ok) == [(name, name, "symlink", 0o644, 0, name, b"")]
    long_link = pax([("linkpath", name + "n")]) + header("x", b"2") + END
    assert refused(long_link) == (
        f"t.tar: entry 'x' has a link name of {MAX_NAME + 1} bytes (the limit is {MAX_NAME}); "
        "refusing the archive"
    )


def test_a_link_name_that_is_not_utf8_is_refused() -> None:
    data = header("x", b"1", linkname=b"\xff") + END
    assert refused(data) == "t.tar: entry 'x' has a link name that is not valid UTF-8; refusing the archive"


def test_a_trailing_slash_makes_a_directory_of_a_v7_file_only() -> None:
    data = entry("v7/", typeflag=b"\0") + entry("ustar/", b"u") + entry("plain", typeflag=b"\0") + END
    assert [(row[0], row[2]) for row in rows(data)] == [("v7", "dir"), ("ustar", "file"), ("plain", "file")]


def test_sizes_up_to_the_bound_are_read_and_only_files_have_data() -> None:
    big = pax([("size", str(MAX_ENTRY_SIZE))]) + header("d", b"5") + END  # a directory: no data
    assert rows(big) == [("d", "d", "dir", 0o644, 0, "", b"")]
    over = pax([("size", str(MAX_ENTRY_SIZE + 1))]) + header("d", b"5") + END
    assert refused(over) == (
        f"t.tar: entry 'd' claims an absurd size ({MAX_ENTRY_SIZE + 1} bytes); refusing the archive"
    )
    empty = entry("e") + END
    assert rows(empty) == [("e", "e", "file", 0o644, 0, "", b"")]
    link = header("l", b"2", size=5, linkname="e") + entry("after", b"z") + END  # no data, as Go reads it
    assert rows(link) == [
        ("l", "l", "symlink", 0o644, 0, "e", b""),
        ("after", "after", "file", 0o644, 1, "", b"z"),
    ]


def test_declared_data_up_to_the_limit_is_yielded_before_it_is_read() -> None:
    data = entry("a", b"x" * 1024) + END
    first = next(iter_tar(Blocks(data), "t.tar", max_total=1024))
    assert first.name == "a" and first.size == 1024
    with pytest.raises(ArchiveError, match="larger than the limit of 1024 bytes"):
        b"".join(first.chunks())
    with pytest.raises(ArchiveError, match="larger than the limit of 1023 bytes"):
        next(iter_tar(Blocks(data), "t.tar", max_total=1023))
    two = entry("a", b"x" * 300) + entry("b", b"y" * 300) + END
    entries = iter_tar(Blocks(two), "t.tar", max_total=599)
    assert next(entries).name == "a"
    with pytest.raises(ArchiveError, match="larger than the limit of 599 bytes"):
        next(entries)


def test_the_default_limit_reads_a_large_archive() -> None:
    data = entry("a", b"x" * (3 * CHUNK)) + END
    assert [row[4] for row in rows(data)] == [3 * CHUNK]


def test_mode_keeps_the_permission_bits_only() -> None:
    data = entry("a", mode=0o7777) + entry("b", mode=0o107654) + entry("c", mode=0o1) + END
    assert [row[3] for row in rows(data)] == [0o7777, 0o7654, 0o1]


def test_the_root_is_skipped_whatever_its_kind_and_link() -> None:
    data = header("./", b"2", linkname=b"\x1b") + header(".", b"1", linkname="..") + entry("a") + END
    assert names(data) == ["a"]


def test_a_file_keeps_no_link_name_whatever_its_field_says() -> None:
    data = entry("f", b"x", linkname=b"\x1b\xff") + header("d", b"5", linkname="../x") + END
    assert [(row[0], row[5]) for row in rows(data)] == [("f", ""), ("d", "")]


@pytest.mark.parametrize("target", [".", "./", "", "a/../..", "../x", "/"])
def test_a_hardlink_to_the_root_or_above_it_is_refused(target: str) -> None:
    message = refused(header("h", b"1", linkname=target) + END)
    assert message == f"t.tar: entry 'h' is a hardlink to {target!r} outside the archive"


def test_a_symlink_target_is_kept_as_written() -> None:
    data = header("a/s", b"2", linkname="../up/./x//") + header("a/t", b"2", linkname="/abs") + END
    assert [row[5] for row in rows(data)] == ["../up/./x//", "/abs"]


def test_a_hardlink_target_is_normalised() -> None:
    data = entry("a/b", b"x") + header("h", b"1", linkname="/./a//b") + END
    assert rows(data)[1] == ("h", "h", "hardlink", 0o644, 0, "a/b", b"")


# -- the stream: offsets, skipping, the end ---------------------------------------------------


@FAST
@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.binary(max_size=1500)), max_size=6), st.integers(1, 2000)
)
def test_offsets_point_at_each_entry_data(items: list[tuple[str, bytes]], step: int) -> None:
    data = b"".join(entry(f"{i}{name}", payload) for i, (name, payload) in enumerate(items)) + END
    seen = []
    for e in iter_tar(Blocks(data, step), "t"):
        assert data[e.offset : e.offset + e.size] == b"".join(e.chunks())
        seen.append(e.offset)
    expected, at = [], 0
    for _, payload in items:
        expected.append(at + 512)
        at += 512 + len(payload) + (-len(payload) % 512)
    assert seen == expected


def test_a_stale_entry_without_data_yields_nothing() -> None:
    data = header("d", b"5") + entry("f", b"data") + END
    entries = iter_tar(io.BytesIO(data), "t")
    directory = next(entries)
    file = next(entries)
    assert list(directory.chunks()) == []
    assert b"".join(file.chunks()) == b"data"


def test_chunks_of_a_stale_entry_raise_even_when_half_read() -> None:
    data = entry("a", b"x" * (2 * CHUNK)) + entry("b", b"y" * (2 * CHUNK)) + END
    entries = iter_tar(io.BytesIO(data), "t")
    first = next(entries)
    chunks = first.chunks()
    next(chunks)
    second = next(entries)
    with pytest.raises(RuntimeError, match="after the reader moved past the entry"):
        next(chunks)
    assert b"".join(second.chunks()) == b"y" * (2 * CHUNK)


def test_an_entry_two_behind_is_stale_too() -> None:
    data = entry("a", b"1") + entry("b", b"2") + entry("c", b"3") + END
    entries = iter_tar(io.BytesIO(data), "t")
    first = next(entries)
    second = next(entries)
    third = next(entries)
    for stale in (first, second):
        with pytest.raises(RuntimeError):
            next(stale.chunks())
    assert b"".join(third.chunks()) == b"3"


def test_an_entry_is_stale_once_the_reader_refused_what_follows() -> None:
    data = entry("a", b"1" * 600) + entry("b", checksum=b"0000000\0") + entry("c") + END
    entries = iter_tar(io.BytesIO(data), "t")
    first = next(entries)
    with pytest.raises(ArchiveError, match="checksum mismatch"):
        next(entries)
    with pytest.raises(RuntimeError):
        next(first.chunks())


def test_the_last_entry_is_stale_once_the_reader_ends() -> None:
    # before: its data skipped at the end, chunks() then yielded nothing, silently (no error)
    data = entry("a", b"1") + entry("last", b"data") + END
    entries = list(iter_tar(io.BytesIO(data), "t"))
    for stale in entries:
        with pytest.raises(RuntimeError, match="after the reader moved past the entry"):
            next(stale.chunks())


def test_an_entry_read_twice_yields_its_data_once() -> None:
    entries = iter_tar(io.BytesIO(entry("a", b"abc") + END), "t")
    first = next(entries)
    assert b"".join(first.chunks()) == b"abc" and list(first.chunks()) == []


def test_an_entry_made_by_hand_has_no_data() -> None:
    made = TarEntry("a", "a", "file", 0o644, 5, "", "src")
    assert list(made.chunks()) == [] and made.offset == 0


def test_entries_compare_and_show_by_their_fields_only() -> None:
    one = next(iter_tar(io.BytesIO(entry("a", b"x") + END), "t"))
    other = list(iter_tar(io.BytesIO(entry("b", b"y" * 600) + entry("a", b"x") + END), "t"))[1]
    assert one == other and one.offset != other.offset
    assert repr(one) == (
        "TarEntry(name='a', original='a', kind='file', mode=420, size=1, linkname='', source='t', offset=512)"
    )


def test_the_bounds_are_the_documented_ones() -> None:
    assert MAX_ENTRY_SIZE == 2 * 1024**3


def test_an_entry_cut_short_while_read_is_truncated() -> None:
    data = entry("a/file", b"x" * 3000)[:2000]
    with pytest.raises(ArchiveError) as info:
        for e in iter_tar(Blocks(data), "t.tar"):
            b"".join(e.chunks())
    assert str(info.value) == "t.tar: truncated tar archive (entry 'a/file' is cut short)"


def test_a_second_entry_cut_short_is_named() -> None:
    data = entry("a", b"x") + entry("b/c", b"y" * 2000)
    assert refused(data[:1600]) == "t.tar: truncated tar archive (entry 'b/c' is cut short)"


def test_the_end_marker_stops_the_reading_and_the_rest_is_drained() -> None:
    stream = io.BytesIO(entry("a", b"1") + END + entry("after", b"2") + END)
    assert [e.name for e in iter_tar(stream, "t")] == ["a"]
    assert stream.read() == b""


def test_offsets_in_corrupt_header_messages() -> None:
    bad = entry("b", checksum=b"0000000\0")
    assert refused(entry("a", b"x" * 600) + bad + END) == (
        "t.tar: corrupt tar header at offset 1536 (checksum mismatch)"
    )
    assert refused(entry("a") + END[:512] + entry("b")) == (
        "t.tar: corrupt tar header at offset 512 (a lone zero block inside the archive)"
    )
    assert refused(entry("a") + bytes(100)) == (
        "t.tar: truncated tar archive (it ends at offset 612, before its end marker)"
    )
    assert refused(pax(b"3 a\n") + entry("f") + END).startswith("t.tar: corrupt tar header at offset 0 (")
    assert refused(entry("a") + pax(b"3 a\n") + entry("f") + END).startswith(
        "t.tar: corrupt tar header at offset 512 (malformed PAX record"
    )


def test_an_empty_stream_is_not_a_tar_archive() -> None:
    assert refused(b"") == "t.tar is not a tar archive (shorter than one header)"
    assert names(END) == [] and names(END[:512]) == []


# -- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "normal"),
    [("/a//./b/", "a/b"), ("./", ""), (".", ""), ("a/../b", "a/../b"), ("..a/.b", "..a/.b"), ("", "")],
)
def test_normalize_name(name: str, normal: str) -> None:
    assert normalize_name(name) == normal


@pytest.mark.parametrize(
    ("entry_name", "linkname", "target"),
    [
        ("a/b/l", "c", "a/b/c"),
        ("a/b/l", "../c", "a/c"),
        ("a/b/l", "/x/y", "x/y"),
        ("a/b/l", "../../../../x", "x"),
        ("l", "c", "c"),
        ("a/l", "/", ""),
        ("a/l", "//x", "x"),
        ("a/l", ".", "a"),
    ],
)
def test_link_target(entry_name: str, linkname: str, target: str) -> None:
    assert link_target(entry_name, linkname) == target
