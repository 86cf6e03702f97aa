"""The strict tar reader: hostile archives are refused with one clear line, good ones read back."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from pathlib import Path

import cnbkit
import pytest
from cnbkit.archive.streams import CHUNK
from cnbkit.archive.tarheader import MAX_EXTENDED, MAX_NAME
from cnbkit.archive.tarreader import MAX_ENTRY_SIZE, TarEntry, iter_tar
from cnbkit.errors import ArchiveError, CnbkitError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import one_line_error, run_cli
from tests.lifecycles import lifecycle_entries
from tests.tarbytes import END, entry, from_entries, gnu_long, header, lifecycle_with, pax, pax_records

Read = list[tuple[TarEntry, bytes]]
FAST = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def read(data: bytes, **kwargs: int) -> Read:
    """Every entry of ``data`` with its data."""
    return [(e, b"".join(e.chunks())) for e in iter_tar(io.BytesIO(data), "t.tar", **kwargs)]


def refused(data: bytes, **kwargs: int) -> str:
    """The one-line message ``data`` is refused with."""
    with pytest.raises(ArchiveError) as info:
        read(data, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.startswith("t.tar"), message
    return message


class LongNameStream(io.RawIOBase):
    """A tar stream of a GNU long name of ``size`` bytes, produced lazily (never in memory)."""

    def __init__(self, size: int) -> None:
        self.head = header("././@LongLink", b"L", size=size, magic=b"ustar  \0")
        self.size = size
        self.sent = 0

    def read(self, n: int = -1) -> bytes:
        """The header, then up to ``n`` bytes of the name."""
        if self.sent == 0:
            self.sent = len(self.head)
            return self.head
        n = min(n, self.size + len(self.head) - self.sent)
        self.sent += n
        return b"a" * n


# -- hostile archives, through the CLI and through iter_tar ----------------------------------

SPARSE_01 = [("GNU.sparse.size", "1000"), ("GNU.sparse.numblocks", "1"), ("GNU.sparse.map", "0,10")]
SPARSE_10 = [("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "lifecycle/analyzer")]
HOSTILE: dict[str, tuple[bytes, str]] = {
    "pax path with NUL": (
        lifecycle_with(pax([("path", b"lifecycle/analyzer\0.txt")]) + entry("x", b"evil")),
        r"entry 'lifecycle/analyzer\x00.txt' has a control character in its name",
    ),
    "pax path with NUL, image shape": (
        lifecycle_with(pax([("path", b"cnb/lifecycle/analyzer\0junk")]) + entry("x", b"evil")),
        "has a control character in its name",
    ),
    "pax linkpath with NUL": (
        lifecycle_with(
            pax([("linkpath", b"lifecycle\0cnb/lifecycle/../../../../etc/passwd")])
            + header("lifecycle/evil", b"2", linkname="lifecycle")
        ),
        "entry 'lifecycle/evil' has a control character in its link name",
    ),
    "pax sparse 0.1": (
        lifecycle_with(pax(SPARSE_01) + entry("lifecycle/x", b"a" * 10)),
        "entry 'lifecycle/x' is a sparse file (PAX record 'GNU.sparse.size')",  # not ././@PaxHeader
    ),
    "pax sparse 1.0": (
        lifecycle_with(pax(SPARSE_10) + entry("GNUSparseFile.0/analyzer", b"1\n0\n10\n" + b"a" * 10)),
        "entry 'lifecycle/analyzer' is a sparse file (PAX record 'GNU.sparse.major')",
    ),
    "malformed sparse map": (
        lifecycle_with(pax([("GNU.sparse.map", "x,y,-1")]) + entry("lifecycle/x")),
        "entry 'lifecycle/x' is a sparse file",
    ),
    "malformed sparse numblocks": (
        lifecycle_with(pax([("GNU.sparse.numblocks", "-99999999999999999999")]) + entry("lifecycle/x")),
        "entry 'lifecycle/x' is a sparse file",
    ),
    "sparse in global header": (lifecycle_with(pax(SPARSE_01, b"g")), "is a sparse file"),
    "gnu sparse type": (
        lifecycle_with(entry("lifecycle/s", b"", b"S")),
        "entry 'lifecycle/s' is a sparse file",
    ),
    "multi-volume": (lifecycle_with(entry("lifecycle/m", b"", b"M")), "is a multi-volume continuation"),
    "volume header": (lifecycle_with(entry("vol", b"", b"V"), before=True), "entry 'vol' is a volume header"),
    "unknown type": (lifecycle_with(entry("lifecycle/z", b"", b"Z")), "has unsupported tar type b'Z'"),
    "dumpdir type": (lifecycle_with(entry("lifecycle/d", b"", b"D")), "has unsupported tar type b'D'"),
    "char device": (lifecycle_with(header("lifecycle/null", b"3")), "is a character device"),
    "block device": (lifecycle_with(header("dev/sda", b"4")), "entry 'dev/sda' is a block device"),
    "fifo": (lifecycle_with(header("lifecycle/p", b"6")), "entry 'lifecycle/p' is a FIFO"),
    "not utf-8": (
        lifecycle_with(entry(b"lifecycle/\xff\xfe")),
        r"entry 'lifecycle/\\xff\\xfe' has a name that",
    ),
    "newline in name": (
        lifecycle_with(entry("lifecycle/a\nb")),
        r"entry 'lifecycle/a\nb' has a control character",
    ),
    "DEL in name": (lifecycle_with(entry("lifecycle/a\x7f")), "has a control character in its name"),
    "C1 in name": (
        lifecycle_with(entry("lifecycle/a\u0085".encode())),
        "has a control character in its name",
    ),
    "escape in link": (
        lifecycle_with(header("lifecycle/l", b"2", linkname=b"lifecycle\x1b[2J")),
        "has a control character in its link name",
    ),
    "dot-dot via pax path": (
        lifecycle_with(pax([("path", "lifecycle/../../etc/x")]) + entry("x")),
        "entry 'lifecycle/../../etc/x' leaves the archive root",
    ),
    "dot-dot via prefix": (
        lifecycle_with(entry("x", prefix="lifecycle/..")),
        "entry 'lifecycle/../x' leaves the archive root",
    ),
    "dot-dot via gnu long name": (
        lifecycle_with(gnu_long("../" * 40 + "etc/passwd") + entry("x")),
        "leaves the archive root",
    ),
    "hardlink via gnu long link": (
        lifecycle_with(gnu_long("../etc/passwd", b"K") + header("lifecycle/pw", b"1", linkname="x")),
        "hardlink to '../etc/passwd' outside the archive",
    ),
    "pax path and gnu long name": (
        lifecycle_with(gnu_long("lifecycle/a") + pax([("path", "lifecycle/b")]) + entry("x")),
        "has both a PAX path and a GNU long name",
    ),
    "two pax headers": (
        lifecycle_with(pax([("path", "a")]) + pax([("path", "b")]) + entry("x")),
        "is a second PAX header for one entry",
    ),
    "two long names": (
        lifecycle_with(gnu_long("a") + gnu_long("b") + entry("x")),
        "is a second GNU long name for one entry",
    ),
    "empty pax path": (lifecycle_with(pax([("path", "")]) + entry("lifecycle/x")), "has an empty PAX path"),
    "global pax path": (
        lifecycle_with(pax([("path", "evil")], b"g"), before=True),
        "global PAX header setting 'path'",
    ),
    "huge pax header of digits": (
        lifecycle_with(entry("PaxHeaders/x", b"9" * 200_000, b"x")),
        "malformed PAX record",
    ),
    "pax header over the limit": (
        lifecycle_with(header("PaxHeaders/x", b"x", size=MAX_EXTENDED + 1)),
        f"is an extended header of {MAX_EXTENDED + 1} bytes",
    ),
    "global header over the limit": (
        lifecycle_with(header("PaxHeaders/g", b"g", size=MAX_EXTENDED + 1), before=True),
        f"is an extended header of {MAX_EXTENDED + 1} bytes",
    ),
    "pax name over the limit": (
        lifecycle_with(pax([("path", "a/" * MAX_NAME)]) + entry("x")),
        f"has a name of {2 * MAX_NAME} bytes (the limit is {MAX_NAME})",
    ),
    "gnu long name over the limit": (
        lifecycle_with(gnu_long("a" * (MAX_NAME + 1)) + entry("x")),
        "is an extended header of 4098 bytes (the limit is 4097)",
    ),
    "bad pax size": (lifecycle_with(pax([("size", "-1")]) + entry("lifecycle/x")), "bad PAX size b'-1'"),
    "absurd pax size": (
        lifecycle_with(pax([("size", str(MAX_ENTRY_SIZE + 1))]) + entry("lifecycle/x")),
        "entry 'lifecycle/x' claims an absurd size",
    ),
    "garbage size field": (lifecycle_with(entry("lifecycle/x", size_field=b"12x4\0")), "bad size field"),
    "negative base-256 size": (
        lifecycle_with(entry("lifecycle/x", size_field=b"\xff" * 12)),
        "negative size",
    ),
    "bad checksum": (
        lifecycle_with(entry("lifecycle/x", checksum=b"0000000\0")),
        "corrupt tar header at offset",
    ),
    "lone zero block": (lifecycle_with(bytes(512) + entry("lifecycle/x")), "a lone zero block"),
    "pax header before the end": (
        lifecycle_with(pax([("path", "a")])),
        "extended header is followed by no entry",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_archive_refused_by_the_reader(case: str) -> None:
    data, expected = HOSTILE[case]
    start = time.perf_counter()
    message = refused(data)
    assert expected in message, message
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize(
    "case",
    [
        "pax path with NUL",
        "pax path with NUL, image shape",
        "pax linkpath with NUL",
        "pax sparse 0.1",
        "pax sparse 1.0",
        "malformed sparse map",
        "malformed sparse numblocks",
        "sparse in global header",
        "not utf-8",
        "huge pax header of digits",
    ],
)
def test_hostile_archive_refused_by_the_cli(case: str, tmp_path: Path) -> None:
    # issue 11, cases 1, 3 and 4: Python 3.11's tarfile truncated a PAX value at NUL (so the
    # check saw another entry than the layer got), expanded sparse files, failed on malformed
    # GNU.sparse values with "unexpected ValueError", and spent minutes on a PAX header
    data, expected = HOSTILE[case]
    archive = tmp_path / "l.tar"
    archive.write_bytes(data)
    line = one_line_error(run_cli("resolve", str(archive), "--save", str(tmp_path / "out.tar")))
    assert line.startswith(f"error: {archive}") and expected in line, line
    assert not (tmp_path / "out.tar").exists()


def test_a_200_kb_pax_header_resolves_within_a_second(tmp_path: Path, cache_dir: Path) -> None:
    # issue 11, case 4 (CVE-2024-6232): a valid lifecycle whose entry carries a 200 KB PAX
    # record of digits; tarfile's quadratic parse took over a minute
    big = pax([("comment", "7" * 200_000)]) + entry("lifecycle/notes", b"n")
    archive = tmp_path / "l.tar"
    archive.write_bytes(lifecycle_with(big))
    start = time.perf_counter()
    lifecycle = cnbkit.resolve_lifecycle(str(archive), save=tmp_path / "layer.tar")
    assert time.perf_counter() - start < 1
    assert lifecycle.version == "0.21.0"
    result = run_cli("resolve", str(archive), "-q", "--save", str(tmp_path / "cli.tar"))
    assert result.returncode == 0, result.stderr
    with tarfile.open(tmp_path / "cli.tar") as layer:
        assert layer.extractfile("cnb/lifecycle/notes").read() == b"n"  # type: ignore[union-attr]


def test_big_valid_pax_header_parses_in_linear_time() -> None:
    # CVE-2024-6232: tarfile took over a minute on a 200 KB PAX header; this one is 1 MiB.
    records = pax_records([("comment", "9" * 200_000)] * 4 + [("mtime", "1")] * 1000 + [("path", "big/pax")])
    assert len(records) < MAX_EXTENDED
    start = time.perf_counter()
    assert [e.name for e, _ in read(pax(records) + entry("x") + END)] == ["big/pax"]
    assert time.perf_counter() - start < 1


def test_gnu_long_name_of_128_mib_is_refused_unread() -> None:
    stream = LongNameStream(128 * 1024 * 1024)
    with pytest.raises(ArchiveError, match="is an extended header of 134217728 bytes"):
        list(iter_tar(stream, "t.tar"))
    assert stream.sent < 1024 * 1024


def test_pax_refusals_name_the_entry_on_one_line() -> None:
    for case in ("pax sparse 0.1", "gnu sparse type", "char device", "not utf-8", "dot-dot via prefix"):
        assert "refusing the archive" in refused(HOSTILE[case][0]), case
    assert len(refused(HOSTILE["pax name over the limit"][0])) < 400  # a long name is cut in messages


# -- corrupt and truncated --------------------------------------------------------------------

GOOD = entry("a/file", b"x" * 1000) + header("a/link", b"2", linkname="file") + END


def test_garbage_is_not_a_tar_archive() -> None:
    assert "t.tar is not a tar archive (bad checksum field b'o world ')" in refused(b"hello world " * 100)
    assert "t.tar is not a tar archive (checksum mismatch)" in refused(entry("a", checksum=b"0000000\0"))
    assert "t.tar is not a tar archive (shorter than one header)" in refused(b"short")
    assert "t.tar is not a tar archive (bad checksum field" in refused(b"\x01" * 1024)


def test_truncated_archives() -> None:
    assert "truncated tar archive (entry 'a/file' is cut short)" in refused(GOOD[:1000])
    assert "truncated tar archive (entry 'a/file' is cut short)" in refused(GOOD[:1530])  # in the padding
    assert "truncated tar archive (it ends at offset 1536, before its end marker)" in refused(GOOD[:1536])
    assert "before its end marker" in refused(GOOD[:1700])
    assert "inside the extended header" in refused(pax([("path", "a" * 600)])[:700])


def test_one_zero_block_at_the_end_is_accepted() -> None:
    assert [e.name for e, _ in read(GOOD[:-512])] == ["a/file", "a/link"]


def test_corrupt_pax_records() -> None:
    for records in (b"3 a\n", b"10 a=b\n", b"6 ab\n\n", b"x a=b\n", b"6 a=bc", b"06 =b\n", b" 6 a=b\n"):
        message = refused(pax(records) + entry("f") + END)
        assert "corrupt tar header at offset 0 (malformed PAX record" in message, (records, message)
    many = pax_records([("comment", "x")] * 1025)
    assert "more than 1024 PAX records" in refused(pax(many) + entry("f") + END)


def test_size_limit_counts_declared_and_read_bytes() -> None:
    message = refused(entry("a", b"x" * 5000) + END, max_total=4096)
    assert message == (
        "t.tar: the archive is larger than the limit of 4096 bytes; nothing was kept; "
        "raise the limit with --max-size or CNBKIT_MAX_SIZE if it is expected"
    )
    assert "larger than the limit" in refused(GOOD + bytes(10_000), max_total=5000)  # after the end
    assert "larger than the limit" in refused(
        b"".join(header(f"d{i}", b"5") for i in range(100)) + END, max_total=10_000
    )
    assert len(read(GOOD, max_total=len(GOOD))) == 2


# -- what the reader accepts ------------------------------------------------------------------


def test_formats_and_overrides() -> None:
    data = b"".join(
        [
            pax([("path", "pax/é name"), ("mtime", "1.5"), ("SCHILY.xattr.a", b"\0\1"), ("size", "3")]),
            entry("short", b"abc", size=0),  # PAX size overrides the header's
            gnu_long("gnu/" + "n" * 300)
            + gnu_long("gnu/target", b"K")
            + header("x", b"2", magic=b"ustar  \0"),
            entry("file", b"u", prefix="ustar/prefix"),
            entry("gnu-ignores-prefix", magic=b"ustar  \0", prefix="\1\2"),
            entry("v7/dir/", typeflag=b"\0", magic=bytes(8)),
            entry("v7/file", b"v7", typeflag=b"\0", magic=bytes(8)),
            entry("signed\xe9".encode("latin-1")[:-1] + b"s", b"s", signed=True, mode=0o4755),
            entry("base256", b"b" * 700, size_field=b"\x80" + (700).to_bytes(11, "big")),
            pax([("comment", "git archive writes one of these")], b"g"),
            header("./", b"5"),
            entry("./sub//./c", b"c", typeflag=b"7"),
            header("h", b"1", linkname="./sub/c"),
            END,
            b"trailing bytes after the end marker",
        ]
    )
    stream = io.BytesIO(data)
    got = [
        (e.name, e.original, e.kind, e.mode, e.size, e.linkname, b"".join(e.chunks()))
        for e in iter_tar(stream, "t")
    ]
    assert got == [
        ("pax/é name", "pax/é name", "file", 0o644, 3, "", b"abc"),
        ("gnu/" + "n" * 300, "gnu/" + "n" * 300, "symlink", 0o644, 0, "gnu/target", b""),
        ("ustar/prefix/file", "ustar/prefix/file", "file", 0o644, 1, "", b"u"),
        ("gnu-ignores-prefix", "gnu-ignores-prefix", "file", 0o644, 0, "", b""),
        ("v7/dir", "v7/dir/", "dir", 0o644, 0, "", b""),
        ("v7/file", "v7/file", "file", 0o644, 2, "", b"v7"),
        ("signeds", "signeds", "file", 0o4755, 1, "", b"s"),
        ("base256", "base256", "file", 0o644, 700, "", b"b" * 700),
        ("sub/c", "./sub//./c", "file", 0o644, 1, "", b"c"),
        ("h", "h", "hardlink", 0o644, 0, "sub/c", b""),
    ]
    assert stream.read() == b""  # read to its very end


def test_signed_checksum_with_high_bytes() -> None:
    name = "é/ü".encode()
    assert [e.name for e, _ in read(entry(name, b"x", signed=True) + END)] == ["é/ü"]


def test_unread_and_half_read_data_is_skipped() -> None:
    big = bytes(range(256)) * 2000  # 512000 bytes: several chunks
    data = entry("a", big) + entry("b", big) + entry("c", b"tail") + END
    entries = iter_tar(io.BytesIO(data), "t")
    first = next(entries)
    assert all(len(c) <= CHUNK for c in first.chunks())
    second = next(entries)
    chunks = second.chunks()
    assert big.startswith(next(chunks))  # half read: the rest is skipped
    third = next(entries)
    with pytest.raises(RuntimeError):
        next(first.chunks())
    assert b"".join(third.chunks()) == b"tail"
    assert list(entries) == []


def test_chunks_are_at_most_chunk_from_a_stream_of_big_reads() -> None:
    big = b"z" * (3 * CHUNK + 5)

    class Big(io.RawIOBase):
        def __init__(self) -> None:
            self.data = io.BytesIO(entry("a", big) + END)

        def read(self, n: int = -1) -> bytes:
            return self.data.read(256 * 1024)  # more than asked, as a decompressor may

    sizes = [len(c) for e in iter_tar(Big(), "t") for c in e.chunks()]
    assert sum(sizes) == len(big) and max(sizes) <= CHUNK


def test_hundred_thousand_empty_entries_are_quick() -> None:
    one = entry("f")
    data = one * 100_000 + END
    start = time.perf_counter()
    assert sum(1 for _ in iter_tar(io.BytesIO(data), "t")) == 100_000
    assert time.perf_counter() - start < 10


# -- properties -------------------------------------------------------------------------------

_SEED = (
    pax([("path", "lifecycle/" + "p" * 120), ("linkpath", "x")])
    + entry("p", b"payload" * 100, mode=0o755)
    + gnu_long("lifecycle/" + "g" * 150)
    + header("g", b"2", linkname="../lifecycle", magic=b"ustar  \0")
    + header("d", b"5", prefix="some/prefix")
    + from_entries(lifecycle_entries()[:4])
    + END
)


def _assert_clean_name(name: str) -> None:
    assert name and not name.startswith("/")
    assert ".." not in name.split("/")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name), name


def _read_checked(data: bytes) -> None:
    try:
        for e in iter_tar(io.BytesIO(data), "t"):
            _assert_clean_name(e.name)
            assert e.kind in ("file", "dir", "symlink", "hardlink")
            assert "\0" not in e.linkname and "\0" not in e.original
            assert sum(len(c) for c in e.chunks()) == e.size
    except CnbkitError as exc:
        assert "\n" not in str(exc)


@FAST
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=8), st.data())
def test_mutations_raise_only_archive_errors(mutations: list[tuple[int, int]], data: st.DataObject) -> None:
    mutated = bytearray(_SEED)
    for offset, value in mutations:
        mutated[offset] = value
    cut = data.draw(st.integers(0, len(mutated)) | st.just(len(mutated)))
    _read_checked(bytes(mutated[:cut]))


@FAST
@given(st.binary(max_size=600), st.integers(0, len(_SEED)))
def test_inserted_bytes_raise_only_archive_errors(junk: bytes, at: int) -> None:
    _read_checked(_SEED[:at] + junk + _SEED[at:])


_NAMES = st.lists(
    st.sampled_from(["a", "b", "é", "中文", "x" * 60, ".", "..", "", "c d"]), min_size=1, max_size=5
)
_KINDS = st.sampled_from(["file", "dir", "symlink", "hardlink"])


@FAST
@given(st.lists(st.tuples(_NAMES, _KINDS, st.binary(max_size=2000), st.integers(0, 0o7777)), max_size=8))
def test_names_are_always_clean(items: list[tuple[list[str], str, bytes, int]]) -> None:
    kinds = {"file": b"0", "dir": b"5", "symlink": b"2", "hardlink": b"1"}
    parts = []
    for name_parts, kind, payload, mode in items:
        name = "/".join(name_parts)
        parts.append(pax([("path", name), ("linkpath", name)]) if name else b"")
        parts.append(entry("n", payload if kind == "file" else b"", kinds[kind], mode=mode))
    _read_checked(b"".join(parts) + END)


_SAFE_PART = st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=40)


@FAST
@given(
    st.lists(
        st.tuples(
            st.lists(_SAFE_PART, min_size=1, max_size=6),
            _KINDS,
            st.binary(max_size=3000),
            st.integers(0, 0o7777),
        ),
        max_size=10,
        unique_by=lambda item: "/".join(item[0]),
    ),
    st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]),
)
def test_benign_archives_read_back_as_written(
    items: list[tuple[list[str], str, bytes, int]], fmt: int
) -> None:
    buf = io.BytesIO()
    expected = []
    types = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
    }
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8") as tar:
        for parts, kind, payload, mode in items:
            info = tarfile.TarInfo("/".join(parts))
            info.type, info.mode = types[kind], mode
            info.linkname = "target/" + "t" * 120 if kind in ("symlink", "hardlink") else ""
            if kind == "file":
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if kind == "file" else None)
            data = payload if kind == "file" else b""
            expected.append((info.name, kind, mode, len(data), info.linkname, data))
    got = [(e.name, e.kind, e.mode, e.size, e.linkname, d) for e, d in read(buf.getvalue())]
    assert got == expected


# -- the big one through the CLI --------------------------------------------------------------


def gzip_long_name(path: Path, size: int) -> Path:
    """A .tgz holding only a GNU long name header of ``size`` bytes (for the 128 MiB case)."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        stream = LongNameStream(size)
        while chunk := stream.read(1024 * 1024):
            out.write(chunk)
    return path


def test_gnu_long_name_of_128_mib_through_the_cli(tmp_path: Path) -> None:
    archive = gzip_long_name(tmp_path / "l.tgz", 128 * 1024 * 1024)
    line = one_line_error(run_cli("resolve", str(archive)))
    assert "is an extended header of 134217728 bytes (the limit is 4097); refusing the archive" in line


def make_many_entries(path: Path, count: int) -> Path:
    """A valid lifecycle .tgz followed by ``count`` empty root-level files (which it ignores)."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(lifecycle_with(b"".join(entry(f"f{i:06d}") for i in range(count))))
    return path
