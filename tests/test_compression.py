"""Undoing compression by magic bytes, driven directly: every rule of ``decompressed``.

Every lifecycle archive and image layer passes through here before the tar reader sees a byte:
a member lost, a bound not kept (a gzip bomb inflated in one call), a truncated stream taken
for a whole one, or trailing bytes ignored would let a user's artifact be read wrong without a
word. The raw streams here hand out their bytes in pieces of every size, as a socket does.
"""

from __future__ import annotations

import gzip
import io
import random
import subprocess
import sys
from collections.abc import Callable

import pytest
import zstandard
from cnbkit.archive.compression import decompressed
from cnbkit.archive.streams import CHUNK, Readable
from cnbkit.errors import ArchiveError
from hypothesis import given, settings
from hypothesis import strategies as st

OUT_CHUNK = 256 * 1024  # the documented bound of one read's inflated output (a gzip bomb's)
BOMB = b"\0" * (4 << 20)  # 4 MiB of zeros: a few KiB compressed, many bounded reads inflated
# Random bytes repeated 20 000 bytes later: deflate refers back that far, past a 16 KiB window.
FAR = random.Random(24).randbytes(20_000) * 2


class Trickle:
    """A stream that hands out at most ``step`` bytes per read (``first`` for the first read),
    and exactly what was asked otherwise: a socket's or a pipe's short reads."""

    def __init__(self, data: bytes, step: int | None = None, first: int | None = None) -> None:
        self._data = io.BytesIO(data)
        self._step = step
        self._first = first
        self.reads = 0
        self.closed = False

    def read(self, size: int = -1, /) -> bytes:
        self.reads += 1
        if self.reads == 1 and self._first is not None:
            return self._data.read(self._first)
        if self._step is not None and (size < 0 or size > self._step):
            size = self._step
        return self._data.read(size)

    def close(self) -> None:
        self.closed = True


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def read_all(stream: Readable, size: int = -1) -> bytes:
    out = b""
    while data := stream.read(size):
        out += data
    return out


def refused(raw: bytes | Readable, source: str = "lifecycle.tgz") -> str:
    """The one-line message ``decompressed`` (or reading its stream to the end) raises."""
    with pytest.raises(ArchiveError) as caught:
        read_all(decompressed(Trickle(raw) if isinstance(raw, bytes) else raw, source))
    return str(caught.value)


# -- gzip: every member, whatever the pieces -------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    members=st.lists(st.binary(max_size=3000), min_size=1, max_size=3),
    padding=st.lists(st.integers(0, 3), min_size=3, max_size=3),
    step=st.sampled_from([1, 2, 3, 7, 100, CHUNK, None]),
    first=st.sampled_from([None, 1, 2, 3, 4]),
    sizes=st.lists(st.integers(-1, 5000), min_size=1, max_size=8),
)
def test_gzip_members_and_zero_padding_inflate_to_their_concatenation(
    members: list[bytes], padding: list[int], step: int | None, first: int | None, sizes: list[int]
) -> None:
    raw = b"".join(gz(m) + b"\0" * pad for m, pad in zip(members, padding, strict=False))
    stream = decompressed(Trickle(raw, step, first), "a.tgz")
    got = b""
    for size in sizes * 3:
        data = stream.read(size)
        assert len(data) <= (size if 0 < size <= OUT_CHUNK else OUT_CHUNK)
        got += data
        if not data:  # only the end is empty
            assert got == b"".join(members)
    got += read_all(stream, 1000)
    assert got == b"".join(members)
    assert stream.read() == b""


def test_a_gzip_bomb_is_inflated_at_most_256_kib_per_read() -> None:
    stream = decompressed(io.BytesIO(gz(BOMB)), "bomb.tgz")
    # No size, too large a size, and 0 all mean "the bound"; a size within it is exact.
    assert len(stream.read()) == OUT_CHUNK
    assert len(stream.read(10 * OUT_CHUNK)) == OUT_CHUNK
    assert len(stream.read(OUT_CHUNK + 1)) == OUT_CHUNK
    assert len(stream.read(0)) == OUT_CHUNK
    assert len(stream.read(OUT_CHUNK)) == OUT_CHUNK
    assert stream.read(1) == b"\0"
    assert stream.read(2) == b"\0\0"
    rest = read_all(stream)
    assert len(rest) == len(BOMB) - 5 * OUT_CHUNK - 3 and not rest.strip(b"\0")


def test_back_references_across_the_whole_32_kib_window_inflate() -> None:
    # Both the first member and a later one: each gets a full-window inflater.
    assert read_all(decompressed(Trickle(gz(FAR)), "a.tgz")) == FAR
    assert read_all(decompressed(Trickle(gz(b"x") + gz(FAR)), "a.tgz")) == b"x" + FAR


def test_each_member_is_inflated_whole_when_read_a_byte_at_a_time() -> None:
    raw = gz(BOMB[:70_000]) + b"\0\0" + gz(FAR[:5000])
    assert read_all(decompressed(Trickle(raw, step=1), "a.tgz"), 4096) == BOMB[:70_000] + FAR[:5000]


# -- gzip: what is refused, and how it is named ----------------------------------------------


@pytest.mark.parametrize("step", [None, 1, 100])
@pytest.mark.parametrize("cut", [5, 20, 200, 3000, -8, -1])
def test_a_truncated_gzip_stream_names_how_many_bytes_it_had(cut: int, step: int | None) -> None:
    whole = gz(BOMB)  # many bounded reads: input left over (an unconsumed tail) between them
    raw = whole[:cut]
    message = refused(Trickle(raw, step))
    assert message == (
        f"lifecycle.tgz: truncated gzip stream (it ends after {len(raw)} compressed bytes); "
        "download or copy the file again"
    )


@pytest.mark.parametrize("step", [None, 1, 3])
def test_a_truncated_second_member_counts_every_byte_before_it(step: int | None) -> None:
    for raw in (gz(b"first") + b"\0\0\0" + gz(BOMB)[:50], gz(b"first") + b"\x1f\x8b"):
        message = refused(Trickle(raw, step))
        assert f"truncated gzip stream (it ends after {len(raw)} compressed bytes)" in message


@pytest.mark.parametrize("step", [None, 1])
@pytest.mark.parametrize(
    "after", [b"x", b"\x1f", b"\x8b\x1f", b"\0\0junk", b"\0" * 5 + b"\x1f", b"PK\x03\x04", b"\x1f\x8c\0\0"]
)
def test_bytes_after_the_gzip_stream_are_refused(after: bytes, step: int | None) -> None:
    message = refused(Trickle(gz(b"payload") + after, step))
    assert message == "lifecycle.tgz: unexpected bytes after the gzip stream"


def test_zero_padding_after_the_last_member_is_the_end() -> None:
    for pad in (1, 2, 3, 10_000):
        assert read_all(decompressed(Trickle(gz(b"payload") + b"\0" * pad, 7), "a.tgz")) == b"payload"


def _corrupt(at: int, value: int) -> bytes:
    raw = bytearray(gz(FAR))
    raw[at] ^= value
    return bytes(raw)


@pytest.mark.parametrize(
    "raw",
    [
        _corrupt(12, 0xFF),  # the deflate data
        _corrupt(-6, 0x01),  # the CRC
        _corrupt(-2, 0x01),  # the length
        gz(b"ok") + b"\x1f\x8b\x08\0\0\0\0\0\0\xff\xff\xff\xff",  # a second member, broken
    ],
    ids=["data", "crc", "length", "second-member"],
)
def test_corrupt_gzip_data_is_named(raw: bytes) -> None:
    message = refused(raw)
    assert message.startswith("lifecycle.tgz: corrupt gzip data (") and message.endswith(")")


_WITHOUT_ISAL = """
import gzip, io, sys
sys.modules["isal"] = None  # `from isal import isal_zlib` raises ImportError, as where isal has no wheel
from cnbkit.archive.compression import decompressed
from cnbkit.errors import ArchiveError
stream = decompressed(io.BytesIO(gzip.compress(b"inflated") + gzip.compress(b" by zlib")), "a")
print(stream.read() + stream.read())
try:
    decompressed(io.BytesIO(gzip.compress(b"x")[:12] + b"\\xff" * 9), "b").read()
except ArchiveError as exc:
    print(exc)
"""


def test_without_isal_zlib_inflates_and_its_errors_are_named() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_ISAL], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.splitlines()[0] == "b'inflated by zlib'", done.stderr
    assert done.stdout.splitlines()[1].startswith("b: corrupt gzip data (")


# -- zstd ------------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [None, 1, 2, 3, 4])
def test_zstd_frames_are_decompressed_across_frames(first: int | None) -> None:
    raw = zst(b"one ") + zst(FAR) + zst(b" three")
    assert read_all(decompressed(Trickle(raw, first=first), "layer"), 999) == b"one " + FAR + b" three"


def test_a_zstd_read_without_a_size_is_bounded_like_a_gzip_one() -> None:
    stream = decompressed(io.BytesIO(zst(BOMB)), "layer")
    assert len(stream.read()) == OUT_CHUNK
    assert len(stream.read(0)) == OUT_CHUNK  # 0 is not "nothing": only the end is b""
    assert stream.read(1) == b"\0"
    assert stream.read(2) == b"\0\0"
    assert len(read_all(stream)) == len(BOMB) - 2 * OUT_CHUNK - 3


def test_corrupt_zstd_data_is_named() -> None:
    message = refused(zst(FAR)[:4] + b"\xff" * 40, "layer")  # the magic, then no valid frame
    assert message.startswith("layer: corrupt zstd data (")


def test_zstd_without_the_extra_names_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # `import zstandard` raises ImportError
    with pytest.raises(ArchiveError) as caught:
        decompressed(Trickle(zst(b"x")), "layer")
    assert str(caught.value) == (
        "layer is zstd-compressed: install the zstd extra (pip install 'cnbkit[zstd]')"
    )


# -- by magic: the rest ----------------------------------------------------------------------


@pytest.mark.parametrize("first", [None, 1, 2, 3, 4])
def test_anything_else_is_passed_through_untouched(first: int | None) -> None:
    for data in (b"a", b"\x1f", b"BZ", b"\xfd7zX", b"\x28\xb5\x2f", b"ustar" * 1000, b"\x1f\x8a" + FAR):
        raw = Trickle(data, first=first)
        assert read_all(decompressed(raw, "a.tar")) == data


@pytest.mark.parametrize("first", [None, 1, 2, 3, 4])
@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"PK\x03\x04", "a zip archive"), (b"BZh9", "a bzip2 archive"), (b"\xfd7zXZ\0", "an xz archive")],
)
def test_zip_bzip2_and_xz_are_named_and_refused(head: bytes, kind: str, first: int | None) -> None:
    with pytest.raises(ArchiveError) as caught:
        decompressed(Trickle(head + b"rest", first=first), "release.tgz")
    assert str(caught.value) == f"release.tgz is {kind}: expected a .tgz, .tar or directory"


def test_an_empty_stream_is_refused() -> None:
    with pytest.raises(ArchiveError) as caught:
        decompressed(Trickle(b""), "release.tgz")
    assert str(caught.value) == "release.tgz is empty: expected a .tgz, .tar or directory"


@pytest.mark.parametrize("maker", [gz, zst, bytes])
def test_close_reaches_the_raw_stream(maker: Callable[[bytes], bytes]) -> None:
    raw = Trickle(maker(b"data"))
    stream = decompressed(raw, "a")
    stream.read(1)
    stream.close()  # type: ignore[attr-defined]
    assert raw.closed
