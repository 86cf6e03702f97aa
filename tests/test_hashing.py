"""Hashing while bytes pass, driven directly: every rule of ``HashingReader``, ``VerifiedStream``
and ``HashingFile``.

Every blob cnbkit reads is checked by a ``HashingReader`` and every file it keeps is written by
a ``HashingFile``: a digest checked too early, too late, twice or never, a callback that records
an unchecked blob, or a file kept after a failed write would hand a user tampered or truncated
bytes without a word. A full disk is made real with the kernel's file-size limit
(``RLIMIT_FSIZE``, in a child process); a slow disk is a writer held inside its write.
"""

from __future__ import annotations

import errno
import itertools
import resource
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cnbkit.archive.hashing import HashingFile, HashingReader, VerifiedStream
from cnbkit.errors import DigestMismatchError, WriteError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import digest_of

WRONG = "sha256:" + "0" * 64
ABOVE = "sha256:" + "f" * 64  # a wrong digest that sorts after every real one, WRONG before
QUEUED = 64  # the documented bound of a background file's queue, in chunks


class Source:
    """A stream handing out at most ``step`` bytes per read; it records its close."""

    def __init__(self, data: bytes, step: int | None = None) -> None:
        self._data = data
        self._step = step
        self.closed = False

    def read(self, size: int = -1, /) -> bytes:
        if self._step is not None and (size < 0 or size > self._step):
            size = self._step
        if size < 0:
            size = len(self._data)
        data, self._data = self._data[:size], self._data[size:]
        return data

    def close(self) -> None:
        self.closed = True


class Calls(list[tuple[str, int]]):
    """The calls of an ``on_complete`` callback."""

    def __call__(self, digest: str, size: int) -> None:
        self.append((digest, size))


# -- HashingReader ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=3000),
    step=st.sampled_from([None, 1, 7, 1000]),
    sizes=st.lists(st.integers(-1, 1500), min_size=1, max_size=12),
    known=st.booleans(),
    pinned=st.booleans(),
)
def test_the_digest_is_checked_once_at_the_end_or_the_last_byte(
    data: bytes, step: int | None, sizes: list[int], known: bool, pinned: bool
) -> None:
    raw, calls = Source(data, step), Calls()
    length = len(data) if known else None
    reader = HashingReader(
        raw, expected=digest_of(data) if pinned else None, source="s", on_complete=calls, length=length
    )
    done = [(digest_of(data), len(data))]
    got = b""
    for size in itertools.chain(sizes, itertools.repeat(1000)):
        if len(got) == length:
            break  # a consumer copying exactly `length` bytes never asks for more
        chunk = reader.read(size)
        if size == 0:
            assert chunk == b""  # and says nothing about the end
        got += chunk
        end = size != 0 and not chunk
        assert calls == (done if len(got) == length or end else [])
        if end:
            break
    reader.close()  # a stream of length 0 is never read: closing checks it
    assert got == data and calls == done
    assert (reader.digest, reader.size) == done[0]
    assert reader.read(5) == b"" and calls == done and raw.closed
    assert not reader.producer_hashed


@pytest.mark.parametrize("wrong", [WRONG, ABOVE])
def test_a_mismatch_is_raised_by_the_read_that_finds_the_end(wrong: str) -> None:
    calls = Calls()
    reader = HashingReader(Source(b"0123456789", 4), expected=wrong, source="layer 3", on_complete=calls)
    assert reader.read(0) == b""
    assert reader.read(100) + reader.read(100) + reader.read(100) == b"0123456789"
    with pytest.raises(DigestMismatchError) as caught:
        reader.read(100)
    assert str(caught.value) == f"layer 3: content has digest {digest_of(b'0123456789')}, expected {wrong}"
    assert calls == []


def test_a_mismatch_is_raised_by_the_read_that_delivers_the_last_byte() -> None:
    reader = HashingReader(Source(b"0123456789", 4), expected=WRONG, source="blob", length=10)
    assert reader.read(4) + reader.read(4) == b"01234567"
    with pytest.raises(DigestMismatchError, match=r"^blob: content has digest"):
        reader.read(4)


def test_read_without_a_size_reads_what_the_stream_gives() -> None:
    calls = Calls()
    reader = HashingReader(Source(b"all of it"), on_complete=calls)
    assert reader.read() == b"all of it"
    assert reader.read() == b"" and calls == [(digest_of(b"all of it"), 9)]


def test_close_checks_a_stream_of_length_zero_never_read() -> None:
    calls, raw = Calls(), Source(b"")
    HashingReader(raw, expected=digest_of(b""), on_complete=calls, length=0).close()
    assert calls == [(digest_of(b""), 0)] and raw.closed
    raw = Source(b"")
    with pytest.raises(DigestMismatchError, match=r"^empty: content has digest"):
        HashingReader(raw, expected=WRONG, source="empty", length=0).close()
    assert raw.closed  # closed all the same


@pytest.mark.parametrize("length", [None, 10])
def test_close_does_not_check_a_stream_read_partly(length: int | None) -> None:
    calls, raw = Calls(), Source(b"0123456789")
    reader = HashingReader(raw, expected=WRONG, on_complete=calls, length=length)
    assert reader.read(4) == b"0123"
    reader.close()  # an abandoned stream: neither an error nor a record
    assert calls == [] and reader.digest is None and raw.closed


# -- VerifiedStream: the producer hashed ------------------------------------------------------


def _producer(digest: str, size: int) -> tuple[Callable[[], tuple[str, int]], list[int]]:
    asked: list[int] = []

    def result() -> tuple[str, int]:
        asked.append(1)
        return digest, size

    return result, asked


@pytest.mark.parametrize("length", [None, 6])
def test_a_verified_stream_takes_the_producers_digest_and_size(length: int | None) -> None:
    # The producer's verdict is taken as it is (here a digest that is not the bytes'): the
    # reading thread does not hash them again.
    result, asked = _producer(WRONG, 6)
    calls = Calls()
    stream = VerifiedStream(Source(b"abcdef", 2), result)
    reader = stream.checked(expected=WRONG, source="s", on_complete=calls, length=length)
    assert reader.producer_hashed
    got = b""
    while len(got) != length and (chunk := reader.read(4)):
        got += chunk
        assert asked == ([1] if len(got) == length else [])
    assert got == b"abcdef" and asked == [1] and calls == [(WRONG, 6)]


def test_a_verified_stream_checks_the_producers_digest_against_the_expected_one() -> None:
    result, _ = _producer(digest_of(b"abc"), 3)
    reader = VerifiedStream(Source(b"abc"), result).checked(expected=WRONG, source="s", on_complete=Calls())
    assert reader.read(10) == b"abc"
    with pytest.raises(DigestMismatchError, match=f"^s: content has digest {digest_of(b'abc')}, expected"):
        reader.read(10)


def test_a_verified_stream_longer_than_its_length_is_refused() -> None:
    result, asked = _producer(digest_of(b"abc"), 3)
    reader = VerifiedStream(Source(b"abcd"), result).checked(
        expected=digest_of(b"abc"), source="layer", on_complete=Calls(), length=3
    )
    with pytest.raises(DigestMismatchError) as caught:
        reader.read(3)
    assert str(caught.value) == "layer: content is longer than 3 bytes" and asked == []


def test_a_verified_stream_reads_through() -> None:
    result, asked = _producer(WRONG, 0)
    stream = VerifiedStream(Source(b"abcdef"), result)
    assert stream.read(2) == b"ab" and stream.read() == b"cdef" and stream.read() == b""
    assert asked == []  # only its checked() reader asks for the verdict


# -- HashingFile -----------------------------------------------------------------------------


@pytest.fixture(name="writers")
def writers_fixture() -> Iterator[Callable[[], list[threading.Thread]]]:
    """The writer threads started by the test that are still alive after up to 30 s each (an
    abort waits for its writer a second at most: a loaded machine may need longer)."""
    before = set(threading.enumerate())

    def alive() -> list[threading.Thread]:
        started = [t for t in threading.enumerate() if t.name == "cnbkit-writer" and t not in before]
        for thread in started:
            thread.join(30)
        return [t for t in started if t.is_alive()]

    yield alive


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300_000), max_size=5), background=st.booleans())
def test_a_file_holds_what_was_written_and_its_digest(chunks: list[bytes], background: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        part, target = Path(tmp, "part"), Path(tmp, "blob")
        with HashingFile(part, background=background) as file:
            for chunk in chunks:
                file.write(chunk if background else memoryview(bytearray(chunk)))
            data = b"".join(chunks)
            assert file.size == len(data)
            assert file.finish() == (digest_of(data), len(data))
            assert file.commit(target) == target
        assert target.read_bytes() == data and not part.exists()


def test_the_digest_so_far_and_starting_over(tmp_path: Path) -> None:
    file = HashingFile(tmp_path / "part")
    file.write(b"a whole body")
    assert file.digest == digest_of(b"a whole body")
    file.truncate()  # the server ignored the range request: start again, empty
    assert (file.digest, file.size) == (digest_of(b""), 0)
    file.write(b"body")
    assert file.commit(tmp_path / "blob") == tmp_path / "blob"
    assert (tmp_path / "blob").read_bytes() == b"body"


@pytest.mark.parametrize("background", [False, True])
def test_commit_puts_the_file_at_its_destination_or_the_target(
    tmp_path: Path, background: bool, writers: Callable[[], list[threading.Thread]]
) -> None:
    def destination(digest: str) -> Path:
        return tmp_path / digest.replace(":", "-")

    file = HashingFile(tmp_path / "part", background=background, destination=destination)
    file.write(b"content")
    assert file.commit() == destination(digest_of(b"content"))
    assert destination(digest_of(b"content")).read_bytes() == b"content"
    assert writers() == []  # the writer thread ended with the commit

    def never(digest: str) -> Path:
        raise AssertionError("a target was given")

    file = HashingFile(tmp_path / "part", expected=digest_of(b"x"), destination=never)
    file.write(b"x")
    assert file.commit(tmp_path / "given") == tmp_path / "given"


@pytest.mark.parametrize("wrong", [WRONG, ABOVE])
@pytest.mark.parametrize("background", [False, True])
def test_a_file_of_another_digest_is_not_kept(
    tmp_path: Path, background: bool, wrong: str, writers: Callable[[], list[threading.Thread]]
) -> None:
    file = HashingFile(tmp_path / "part", background=background, expected=wrong)
    file.write(b"tampered")
    with pytest.raises(DigestMismatchError) as caught:
        file.commit(tmp_path / "blob")
    assert str(caught.value) == f"content has digest {digest_of(b'tampered')}, expected {wrong}"
    assert list(tmp_path.iterdir()) == [] and writers() == []


def test_an_existing_path_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "part").write_bytes(b"someone else's")
    with pytest.raises(WriteError) as caught:
        HashingFile(tmp_path / "part")
    assert str(caught.value) == f"cannot write {tmp_path / 'part'}: File exists"
    assert (tmp_path / "part").read_bytes() == b"someone else's"


@pytest.mark.parametrize("background", [False, True])
def test_a_failed_rename_names_the_target_and_keeps_nothing(tmp_path: Path, background: bool) -> None:
    file = HashingFile(tmp_path / "part", background=background)
    file.write(b"content")
    target = tmp_path / "gone" / "blob"
    with pytest.raises(WriteError) as caught:
        file.commit(target)
    assert str(caught.value) == f"cannot write {target}: the directory does not exist"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("background", [False, True])
def test_leaving_the_block_without_a_commit_deletes_the_file(
    tmp_path: Path, background: bool, writers: Callable[[], list[threading.Thread]]
) -> None:
    with HashingFile(tmp_path / "part", background=background) as file:
        file.write(b"half")
    assert list(tmp_path.iterdir()) == [] and writers() == []
    with pytest.raises(KeyboardInterrupt), HashingFile(tmp_path / "part", background=background) as file:
        file.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == [] and writers() == []
    file = HashingFile(tmp_path / "part", background=background)
    file.write(b"half")
    file.abort()
    assert list(tmp_path.iterdir()) == [] and writers() == []


class Stalled:
    """A background file's writer held inside its next write until ``release``."""

    def __init__(self, file: HashingFile, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        write = file._put  # the hash-and-write step the writer thread runs per chunk

        def stalled(data: bytes | memoryview) -> None:
            self.entered.set()
            self.release.wait(60)
            write(data)

        monkeypatch.setattr(file, "_put", stalled)


def test_an_abort_during_a_write_deletes_the_file_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: Callable[[], list[threading.Thread]]
) -> None:
    escaped: list[object] = []
    monkeypatch.setattr(threading, "excepthook", escaped.append)
    file = HashingFile(tmp_path / "part", background=True)
    stall = Stalled(file, monkeypatch)
    file.write(b"chunk")
    assert stall.entered.wait(30)
    file.abort()  # the writer is stuck: abort waits a second at most, then closes and deletes
    assert list(tmp_path.iterdir()) == []
    stall.release.set()  # its write now meets the closed file: dropped, silently
    assert writers() == [] and escaped == []


@pytest.mark.parametrize("failure", ["a failed write", "an abort"])
def test_after_a_failed_write_or_an_abort_no_queued_chunk_is_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
    writers: Callable[[], list[threading.Thread]],
) -> None:
    file = HashingFile(tmp_path / "part", background=True)
    entered, queued, written = threading.Event(), threading.Event(), []
    write = file._put

    def put(data: bytes | memoryview) -> None:
        if not written:  # the first chunk: wait for the others to be queued, then fail
            written.append(data)
            entered.set()
            assert queued.wait(30)
            if failure == "a failed write":
                raise OSError(errno.ENOSPC, "No space left on device")
            write(data)  # after the abort: the file is closed, the write is dropped
            return
        written.append(data)

    monkeypatch.setattr(file, "_put", put)
    file.write(b"first")
    assert entered.wait(30)
    file.write(b"second")
    file.write(b"third")
    if failure == "an abort":
        file.abort()  # the writer is held: abort waits a second at most, then deletes
    queued.set()
    if failure == "a failed write":
        with pytest.raises(WriteError, match="no space left on the device"):
            file.commit(tmp_path / "blob")
    assert writers() == [] and written == [b"first"] and list(tmp_path.iterdir()) == []


def test_a_background_file_queues_at_most_64_chunks_and_an_abort_still_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = HashingFile(tmp_path / "part", background=True)
    stall = Stalled(file, monkeypatch)
    file.write(b"in the writer's hands")
    assert stall.entered.wait(30)
    filling = threading.Thread(target=lambda: [file.write(b"queued") for _ in range(QUEUED)], daemon=True)
    filling.start()
    filling.join(30)
    assert not filling.is_alive()  # 64 chunks fit without waiting
    more = threading.Thread(target=file.write, args=(b"one more",), daemon=True)
    more.start()
    more.join(0.5)
    assert more.is_alive()  # the 65th waits for room (memory stays bounded)
    file.abort()  # the queue is full and the writer stuck: bounded waits, then deleted
    assert list(tmp_path.iterdir()) == []
    stall.release.set()
    more.join(30)
    assert not more.is_alive()
    # The writer, drained, waits for an end marker that found no room: an idle daemon thread,
    # as when an abort meets a stuck disk.


# -- HashingFile: a full disk, for real (the kernel's file-size limit, in a child) ------------

_CHILD = """
import sys
from pathlib import Path
from cnbkit.archive.hashing import HashingFile
from cnbkit.errors import WriteError

part, target, how = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
stage = "write"
try:
    with HashingFile(part, background=how == "background") as file:
        if how == "buffered":  # fits the write buffer: the limit is met when close() flushes it
            file.write(b"x" * 200)
        else:
            for _ in range(16):
                file.write(b"x" * 65536)
        stage = "commit"
        file.commit(target)
        print("committed")
except WriteError as exc:
    print(stage, exc)
"""
_LIMIT = 100


@pytest.mark.parametrize("how", ["foreground", "background", "buffered"])
def test_a_write_over_the_file_size_limit_is_named_and_nothing_is_kept(tmp_path: Path, how: str) -> None:
    def small_files() -> None:  # like `ulimit -f` (Python ignores SIGXFSZ: writes get EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (_LIMIT, resource.RLIM_INFINITY))

    part, target = tmp_path / "part", tmp_path / "blob"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(part), str(target), how],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=small_files,  # only setrlimit, before exec
        check=False,
    )
    stage = {"foreground": "write", "buffered": "commit"}.get(how, "write or commit")
    first, _, message = done.stdout.strip().partition(" ")
    assert first in stage.split(" or "), done.stdout + done.stderr
    assert message == f"cannot write {part}: the file is larger than this system allows (ulimit -f?)"
    assert done.stderr == "" and list(tmp_path.iterdir()) == []
