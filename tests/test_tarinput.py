"""TarInput, the byte source under the tar reader, against a model: every read size, every way a
stream may cut its chunks, the limit on bytes read (lazily, at exactly the byte), and zero copy."""

from __future__ import annotations

import itertools

import pytest
from cnbkit.archive.streams import CHUNK
from cnbkit.archive.tarinput import DEFAULT_MAX_TOTAL, TarInput, size_limit_error
from cnbkit.errors import ArchiveError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST = settings(
    max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


class Chunked:
    """A stream that returns the given chunks, one a read, whatever size is asked; then ``b""``."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent: list[bytes] = []  # the very objects handed out, to check they are not copied
        self.asked: list[int] = []

    def read(self, size: int = -1, /) -> bytes:
        """The next chunk (``size`` is recorded, not obeyed, as a decompressor may do)."""
        self.asked.append(size)
        if not self.chunks:
            return b""
        self.sent.append(self.chunks.pop(0))
        return self.sent[-1]


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


_OPS = st.lists(
    st.tuples(st.sampled_from(["exact", "piece", "skip"]), st.integers(0, 3000)), min_size=1, max_size=12
)


@FAST
@given(st.binary(min_size=0, max_size=4000), st.lists(st.integers(0, 4000), max_size=8), _OPS)
def test_reads_follow_a_plain_model(data: bytes, cuts: list[int], ops: list[tuple[str, int]]) -> None:
    stream = Chunked(_split(data, cuts))
    source = TarInput(stream, "t", len(data))
    pos = 0
    for op, size in ops:
        if op == "piece" and size == 0:
            continue  # the reader never asks for a piece of nothing
        want = data[pos : pos + size]
        if op == "exact":
            assert source.exact(size) == want
            pos += len(want)
        elif op == "piece":
            got = source.piece(size)
            assert got == want[: len(got)] and (got or not want), (got, want)
            assert len(got) <= CHUNK
            pos += len(got)
        else:
            assert source.skip(size) is (pos + size <= len(data))
            pos = min(pos + size, len(data))
        assert source.offset == pos
    source.drain()
    assert stream.chunks == [] and all(size == CHUNK for size in stream.asked)


@FAST
@given(
    st.binary(min_size=1, max_size=3000),
    st.lists(st.integers(0, 3000), max_size=6),
    _OPS,
    st.integers(0, 3000),
)
def test_the_limit_counts_bytes_read_and_stops_at_the_first_over_it(
    data: bytes, cuts: list[int], ops: list[tuple[str, int]], limit: int
) -> None:
    chunks = _split(data, cuts)
    source = TarInput(Chunked(chunks), "t.tar", limit)
    pos = 0
    ops = [*ops, ("drain", 0)]
    for op, size in ops:
        if op == "piece" and size == 0:
            continue
        target = len(data) if op == "drain" else min(pos + size, len(data))
        # bytes are read a chunk at a time, only when needed: the chunks up to the one holding
        # the last byte wanted (a piece may stop at the end of its chunk)
        fetched, ends = 0, []
        for chunk in chunks:
            fetched += len(chunk)
            ends.append(fetched)
        needed = next((end for end in ends if end >= target), 0) if target else 0
        if op == "piece" and target > pos:
            needed = next(end for end in ends if end > pos)
            target = min(target, needed)
        if needed > limit:
            with pytest.raises(ArchiveError) as info:
                getattr(source, op)(*([size] if op != "drain" else []))
            assert str(info.value) == (
                f"t.tar: the archive is larger than the limit of {limit} bytes; nothing was kept; "
                "raise the limit with --max-size or CNBKIT_MAX_SIZE if it is expected"
            )
            return
        getattr(source, op)(*([size] if op != "drain" else []))
        pos = target


def test_an_empty_stream_reads_nothing_and_counts_nothing() -> None:
    source = TarInput(Chunked([]), "t", 0)
    assert source.exact(512) == b"" and source.offset == 0
    assert source.piece(10) == b"" and source.skip(0) is True and source.skip(1) is False
    source.drain()
    assert source.offset == 0


def test_after_drain_nothing_is_left_to_read() -> None:
    source = TarInput(Chunked([b"abc", b"def"]), "t", 10)
    assert source.exact(1) == b"a"
    source.drain()
    before = source.offset
    assert source.piece(5) == b"" and source.skip(1) is False and source.exact(2) == b""
    assert source.offset == before


def test_an_empty_read_is_the_end_of_the_stream() -> None:
    # b"" is the end of a stream (the Readable protocol): nothing after it is read
    source = TarInput(Chunked([b"ab", b"", b"cd"]), "t", 10)
    assert source.exact(4) == b"ab" and source.offset == 2


def test_a_piece_wholly_inside_the_data_is_the_chunk_itself() -> None:
    chunks = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    stream = Chunked(chunks)
    source = TarInput(stream, "t", 10_000)
    first = source.piece(5000)
    assert first is stream.sent[0]  # not copied
    assert source.piece(1000) is stream.sent[1]  # exactly the size asked: still not copied
    assert source.piece(4) == b"cccc" and source.piece(100) == b"c" * 6
    assert source.piece(100) == b"" and source.offset == 2010


def test_a_chunk_larger_than_chunk_is_cut_to_chunk() -> None:
    big = bytes(range(256)) * (CHUNK // 256 + 3)
    source = TarInput(Chunked([big]), "t", len(big))
    first = source.piece(len(big))
    assert first == big[:CHUNK]
    rest = source.piece(len(big))
    assert first + rest == big and source.offset == len(big)


def test_a_piece_after_a_header_is_sliced_from_the_same_chunk() -> None:
    data = bytes(range(256)) * 8
    source = TarInput(Chunked([data]), "t", len(data))
    assert source.exact(512) == data[:512]
    assert source.piece(100) == data[512:612]
    assert source.piece(10_000) == data[612:]
    assert source.offset == len(data)


def test_exact_joins_pieces_across_chunks_and_keeps_the_rest() -> None:
    source = TarInput(Chunked([b"abc", b"defg", b"hij"]), "t", 100)
    assert source.exact(5) == b"abcde" and source.offset == 5
    assert source.exact(2) == b"fg" and source.offset == 7
    assert source.exact(1) == b"h"
    assert source.exact(10) == b"ij" and source.offset == 10


def test_exact_reads_no_chunk_past_the_one_it_ends_in() -> None:
    # a chunk more would be one byte over the limit: it must not be read before it is needed
    source = TarInput(Chunked([b"a" * 300, b"b" * 300, b"c"]), "t", 600)
    assert source.exact(600) == b"a" * 300 + b"b" * 300 and source.offset == 600
    with pytest.raises(ArchiveError, match="larger than the limit of 600 bytes"):
        source.exact(1)


def test_skip_across_chunks_and_to_the_exact_end() -> None:
    source = TarInput(Chunked([b"abc", b"defg", b"hij"]), "t", 100)
    assert source.skip(4) is True and source.offset == 4
    assert source.exact(1) == b"e"
    assert source.skip(5) is True and source.offset == 10
    assert source.skip(0) is True and source.skip(1) is False and source.offset == 10


def test_skip_counts_what_it_skipped_before_the_end() -> None:
    source = TarInput(Chunked([b"abc", b"defg"]), "t", 100)
    assert source.exact(1) == b"a"
    assert source.skip(100) is False and source.offset == 7


def test_the_limit_is_the_bytes_read_exactly() -> None:
    data = b"x" * 1000
    source = TarInput(Chunked([data[:600], data[600:]]), "t", 1000)
    source.drain()  # exactly the limit: fine
    over = TarInput(Chunked([data[:600], data[600:], b"y"]), "t", 1000)
    assert over.exact(600) == data[:600]
    assert over.skip(400) is True  # 1000 bytes read
    with pytest.raises(ArchiveError, match="larger than the limit of 1000 bytes"):
        over.drain()


def test_the_size_limit_error_names_what_was_too_large() -> None:
    error = size_limit_error("https://x/y", 5, "download")
    assert isinstance(error, ArchiveError)
    assert str(error) == (
        "https://x/y: the download is larger than the limit of 5 bytes; nothing was kept; "
        "raise the limit with --max-size or CNBKIT_MAX_SIZE if it is expected"
    )
    assert "the archive is larger" in str(size_limit_error("a", 1))
    assert DEFAULT_MAX_TOTAL == 4 * 1024**3
