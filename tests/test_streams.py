"""The byte-stream adapters every stage shares (``cnbkit.archive.streams``): what a read of each
size returns, what ``close_stream`` closes, what ``drain_into`` counts, and the chunk size's
bound (below glibc's mmap threshold, so streaming costs no mmap per read)."""

from __future__ import annotations

import io
import sys

from cnbkit.archive.streams import CHUNK, ChunkReader, Prefixed, close_stream, drain_into


def test_a_chunk_stays_below_the_mmap_threshold() -> None:
    # glibc's default M_MMAP_THRESHOLD is 128 KiB: a bytes object of CHUNK bytes, header
    # included, is allocated from the heap, not mapped and unmapped on every read.
    assert 64 * 1024 < sys.getsizeof(bytes(CHUNK)) <= 128 * 1024


def test_a_chunk_reader_returns_what_each_size_asks() -> None:
    reader = ChunkReader(iter([b"abcd", b"", b"ef"]))
    assert reader.read(0) == b""  # nothing asked, nothing consumed
    assert reader.read(2) == b"ab"
    assert reader.read(5) == b"cd"  # up to the size: a chunk's end is not crossed
    assert reader.read(-1) == b"ef"  # the empty chunk is not the end
    assert reader.read(3) == b""
    whole = ChunkReader(iter([b"abcd", b"ef"]))
    assert whole.read() == b"abcd"
    assert whole.read(2) == b"ef"
    assert whole.read() == b""


def test_a_prefixed_stream_gives_the_put_back_bytes_first() -> None:
    stream = Prefixed(b"ab", io.BytesIO(b"cdef"))
    assert stream.read() == b"ab"
    assert stream.read() == b"cdef"
    assert stream.read() == b""
    raw = io.BytesIO(b"cd")
    Prefixed(b"ab", raw).close()
    assert raw.closed


def test_close_stream_closes_what_can_be_closed() -> None:
    stream = io.BytesIO(b"x")
    close_stream(stream)
    assert stream.closed
    close_stream(iter([b"x"]))  # no close(): nothing to do, no error


def test_drain_into_copies_to_the_end_and_counts() -> None:
    data = bytes(range(256)) * 1200  # several chunks and a partial one
    out = io.BytesIO()
    assert drain_into(io.BytesIO(data), out) == len(data)
    assert out.getvalue() == data
    assert drain_into(io.BytesIO(b""), io.BytesIO()) == 0
