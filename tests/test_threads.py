"""Read-ahead threads and jobs side by side: what the reader gets, and how they stop.

``ThreadedReader`` carries every download, registry blob and compressed layer between two
threads, and ``side_by_side`` resolves several targets' lifecycles at once: a lost chunk, a
reordered result or a producer left running after a close would corrupt or leak silently, so
each rule is driven directly here.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from cnbkit.archive.streams import CHUNK
from cnbkit.archive.threads import ThreadedReader, read_ahead, side_by_side
from hypothesis import given, settings
from hypothesis import strategies as st

Put = Callable[[bytes], None]


def _producing(chunks: list[bytes], failure: BaseException | None = None) -> Callable[[Put], None]:
    def produce(put: Put) -> None:
        for chunk in chunks:
            put(chunk)
        if failure is not None:
            raise failure

    return produce


@settings(max_examples=100, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=6),
    sizes=st.lists(st.integers(-1, 50), min_size=1, max_size=30),
)
def test_what_is_read_is_what_was_put_in_order_whatever_the_read_sizes(
    chunks: list[bytes], sizes: list[int]
) -> None:
    reader = ThreadedReader(_producing(chunks), depth=2)
    got = b""
    for size in sizes:
        data = reader.read(size)
        # A read never crosses a chunk, gives at most `size` bytes, and is never empty before the end.
        assert size < 0 or len(data) <= size
        got += data
        if size != 0 and not data:
            assert got == b"".join(chunks)
    while data := reader.read(7):
        got += data
    assert got == b"".join(chunks)
    assert reader.read() == b"" and reader.read(1) == b""  # the end stays the end


def test_read_without_a_size_gives_the_whole_waiting_chunk() -> None:
    reader = ThreadedReader(_producing([b"first chunk", b"second"]))
    assert reader.read(5) == b"first"
    assert reader.read() == b" chunk"
    assert reader.read() == b"second"
    assert reader.read() == b""


def test_a_failure_of_the_producer_is_raised_after_what_it_put_then_the_end() -> None:
    reader = ThreadedReader(_producing([b"ok"], OSError("disk gone")))
    assert reader.read() == b"ok"
    with pytest.raises(OSError, match="disk gone"):
        reader.read()
    assert reader.read() == b""


def test_close_stops_a_producer_waiting_for_room_without_abandoning_it() -> None:
    ended = threading.Event()
    abandoned: list[bool] = []

    def produce(put: Put) -> None:
        try:
            while True:
                put(b"x" * 10)
        finally:
            ended.set()

    reader = ThreadedReader(produce, depth=1, abandon=lambda: abandoned.append(True))
    assert reader.read() == b"x" * 10
    reader.close()
    assert ended.wait(2) and abandoned == []


def test_close_interrupts_a_blocked_producer_and_abandons_one_that_will_not_stop() -> None:
    woken = threading.Event()
    calls: list[str] = []

    def blocked(put: Put) -> None:
        woken.wait(10)  # a socket read only the interrupt can end

    reader = ThreadedReader(
        blocked,
        interrupt=lambda: (calls.append("interrupt"), woken.set()),
        abandon=lambda: calls.append("abandon"),
    )
    reader.close()
    # No "abandon": woken by the interrupt, it ended within the half second close() waits.
    assert calls == ["interrupt"]

    stuck = threading.Event()
    reader = ThreadedReader(
        lambda put: stuck.wait(10),
        interrupt=lambda: calls.append("interrupt 2"),
        abandon=lambda: calls.append("abandon 2"),
    )
    started = time.monotonic()
    reader.close()
    waited = time.monotonic() - started
    stuck.set()
    assert calls == ["interrupt", "interrupt 2", "abandon 2"]
    assert 0.4 < waited < 1.4  # half a second for it to stop, then it is left: Ctrl-C stays prompt


def test_close_after_the_end_neither_interrupts_nor_abandons() -> None:
    calls: list[str] = []
    reader = ThreadedReader(
        _producing([b"a"]),
        interrupt=lambda: calls.append("interrupt"),
        abandon=lambda: calls.append("abandon"),
    )
    assert reader.read() == b"a" and reader.read() == b""
    reader.close()
    assert calls == []


class _Counting(io.BytesIO):
    """A stream that counts its reads and remembers being closed."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads += 1
        return super().read(size)


def test_read_ahead_reads_the_whole_stream_in_chunks_then_closes_it() -> None:
    data = bytes(range(256)) * (3 * CHUNK // 256 + 7)
    stream = _Counting(data)
    reader = read_ahead(stream)
    got = b""
    while chunk := reader.read(CHUNK):
        got += chunk
    assert got == data and stream.closed
    assert stream.reads == -(-len(data) // CHUNK) + 1  # CHUNK at a time, and the empty read


def test_read_ahead_stays_at_most_16_chunks_ahead_and_closes_the_stream_when_closed() -> None:
    stream = _Counting(b"z" * (100 * CHUNK))
    reader = read_ahead(stream)
    assert reader.read(1) == b"z"
    deadline = time.monotonic() + 5
    while stream.reads < 18 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # it would go on here if the queue were deeper
    # 16 chunks queued, one taken by the reader, one held by the producer waiting for room
    assert stream.reads == 18
    reader.close()
    assert stream.closed


def test_side_by_side_gives_the_results_in_order_and_runs_the_jobs_at_once() -> None:
    assert side_by_side([]) == []
    second_started = threading.Event()

    def first() -> str:
        assert second_started.wait(5), "the second job did not run while the first waited"
        return "one"

    def second() -> str:
        second_started.set()
        return "two"

    assert side_by_side([first, second, lambda: "three"]) == ["one", "two", "three"]


def test_side_by_side_raises_the_first_failure_in_order_after_every_job_ended() -> None:
    ended: list[int] = []

    def job(index: int, fail: bool) -> Callable[[], int]:
        def run() -> int:
            time.sleep(0.05 * index)  # the caller's own job (0) ends first: the others are waited for
            ended.append(index)
            if fail:
                raise ValueError(f"job {index}")
            return index

        return run

    with pytest.raises(ValueError, match="job 1"):
        side_by_side([job(0, False), job(1, True), job(2, True)])
    assert sorted(ended) == [0, 1, 2]
    with pytest.raises(ValueError, match="job 0"):
        side_by_side([job(0, True), job(1, True)])


def test_a_producer_waiting_long_for_room_goes_on_once_there_is_some() -> None:
    # The producer's put waits in 0.2 s steps: a reader slower than that must still get every chunk.
    chunks = [bytes([i]) * 10 for i in range(5)]
    reader = ThreadedReader(_producing(chunks), depth=1)
    time.sleep(0.7)
    got = b""
    while data := reader.read():
        got += data
    assert got == b"".join(chunks)


def test_at_most_64_chunks_wait_between_the_threads_by_default() -> None:
    produced = 0

    def produce(put: Put) -> None:
        nonlocal produced
        while True:
            produced += 1
            put(b"c")

    reader = ThreadedReader(produce)
    assert reader.read() == b"c"
    deadline = time.monotonic() + 5
    while produced < 66 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # it would go on here if the queue were deeper
    # 64 queued, one taken by the reader, one held by the producer waiting for room
    assert produced == 66
    reader.close()


@pytest.mark.parametrize(
    "program",
    [
        # a producer that never stops, abandoned by close()
        "r = ThreadedReader(lambda put: threading.Event().wait()); r.close()",
        # a job still running when the caller's own job is interrupted
        "side_by_side([lambda: (_ for _ in ()).throw(KeyboardInterrupt), lambda: threading.Event().wait()])",
    ],
    ids=["abandoned-producer", "interrupted-jobs"],
)
def test_a_thread_left_running_never_holds_the_process_at_exit(program: str) -> None:
    script = f"import threading\nfrom cnbkit.archive.threads import ThreadedReader, side_by_side\n{program}\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30, check=False)
    # 0, or the interpreter ending itself by SIGINT after the KeyboardInterrupt's traceback
    assert done.returncode in (0, -signal.SIGINT), done.stderr
