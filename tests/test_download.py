"""The downloader's own rules, one by one, against real servers on loopback (plain http, which
loopback is allowed): the pin's form, a pinned hit without the network, a pinned URL lazy until
opened, ``--offline`` from the cache only, revalidation with exactly the validators the server
gave, a 304 only for a cached answer, any status but 200 an error naming it, the
Content-Length as the blob's size, one stream per download, and the lock always released.

Each downloader's ``notice`` fails the test: it is called only when the URL's lock is held, so
a lock left behind by an earlier download shows at once instead of hanging.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cnbkit.archive.streams import Readable
from cnbkit.blob import FileBlob
from cnbkit.cache import Cache
from cnbkit.errors import CacheMissError, CnbkitError, DigestMismatchError, DownloadError
from cnbkit.progress import Silent
from cnbkit.transport.download import DownloadBlob, Downloader, download_blob
from cnbkit.transport.http import new_session

from tests.hostile_server import HostileServer, Request, answer
from tests.https_server import HTTPSServer, Recorded

PATH = "/dl/file.bin"
DATA = b"the published bytes\n" * 50
HEX = hashlib.sha256(DATA).hexdigest()
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"


def _held(text: str) -> None:
    raise AssertionError(f"the URL's lock was still held: {text}")


def _downloader(cache: Path, *, offline: bool = False, totals: list[int | None] | None = None) -> Downloader:
    session = new_session()

    def progress(description: str, total: int | None) -> Silent:
        if totals is not None:
            totals.append(total)
        return Silent()

    return Downloader(
        cache=Cache(cache),
        session=lambda: session,
        verify=True,
        timeout=10,
        allow_http=False,
        offline=offline,
        progress=progress,
        notice=_held,
    )


def _logged(server: HTTPSServer, count: int) -> list[Recorded]:
    """The server's requests in arrival order, once ``count`` are recorded: a request is logged
    when its answer is sent, which the client may have read (and acted on) before that."""
    deadline = time.monotonic() + 20
    while len(server.log) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return sorted(server.log, key=lambda r: r.at)


def _read(raw: Readable) -> bytes:
    try:
        parts = []
        while chunk := raw.read(1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        raw.close()


@pytest.fixture
def server() -> Iterator[HTTPSServer]:
    with HTTPSServer("127.0.0.1", tls=False) as running:
        running.add(PATH, DATA)
        yield running


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _hostile(respond: object) -> HostileServer:
    return HostileServer(respond)  # type: ignore[arg-type]


# -- the pin --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pin",
    ["", HEX.upper(), HEX[:-1], HEX + "0", "sha256:" + HEX, "g" + HEX[1:], HEX + "\n", " " + HEX[1:]],
    ids=["empty", "upper", "63", "65", "prefixed", "not-hex", "newline", "space"],
)
def test_a_malformed_pin_is_refused_before_any_request(server: HTTPSServer, cache: Path, pin: str) -> None:
    with pytest.raises(DownloadError, match="#sha256= needs 64 lower-case hex digits"):
        _downloader(cache).download(server.url(PATH), sha256=pin)
    assert server.log == []


def test_a_pinned_url_is_fetched_only_when_opened_then_served_from_the_cache(
    server: HTTPSServer, cache: Path
) -> None:
    downloader = _downloader(cache)
    blob = downloader.download(server.url(PATH), sha256=HEX)
    assert blob.digest == f"sha256:{HEX}" and not isinstance(blob, FileBlob)
    assert server.log == []
    assert _read(blob.open_raw()) == DATA
    (request,) = _logged(server, 1)
    assert "if-none-match" not in request.headers and request.headers["accept-encoding"] == "identity"
    assert _read(blob.open_raw()) == DATA  # the cached copy now
    elsewhere = downloader.download(server.url("/another/name.bin"), sha256=HEX)
    assert isinstance(elsewhere, FileBlob) and elsewhere.digest == f"sha256:{HEX}"
    assert _read(elsewhere.open_raw()) == DATA and len(_logged(server, 1)) == 1


def test_a_pinned_url_never_revalidates_what_the_url_gave_before(server: HTTPSServer, cache: Path) -> None:
    downloader = _downloader(cache)
    _read(downloader.download(server.url(PATH)).open_raw())
    changed = b"new content"
    server.add(PATH, changed)
    blob = downloader.download(server.url(PATH), sha256=hashlib.sha256(changed).hexdigest())
    assert _read(blob.open_raw()) == changed
    second = _logged(server, 2)[1]
    assert "if-none-match" not in second.headers and "if-modified-since" not in second.headers


def test_a_pinned_url_whose_content_differs_is_refused_and_its_lock_released(
    server: HTTPSServer, cache: Path
) -> None:
    downloader = _downloader(cache)
    blob = downloader.download(server.url(PATH), sha256="0" * 64)
    with pytest.raises(DigestMismatchError):
        _read(blob.open_raw())
    assert not Cache(cache).has_blob("sha256:" + "0" * 64)
    with pytest.raises(DigestMismatchError):
        _read(blob.open_raw())  # the lock was released: a second try gets as far


def test_a_pinned_url_that_fails_releases_its_lock(server: HTTPSServer, cache: Path) -> None:
    blob = _downloader(cache).download(server.url("/missing"), sha256=HEX)
    for _ in range(2):
        with pytest.raises(DownloadError, match="HTTP 404"):
            blob.open_raw()


# -- offline --------------------------------------------------------------------------------


def test_offline_serves_only_the_cache(server: HTTPSServer, cache: Path) -> None:
    with pytest.raises(CacheMissError, match="is not in the cache and --offline is set"):
        _downloader(cache, offline=True).download(server.url(PATH))
    assert server.log == []
    _read(_downloader(cache).download(server.url(PATH)).open_raw())
    _logged(server, 1)
    server.clear_log()
    blob = _downloader(cache, offline=True).download(server.url(PATH))
    assert isinstance(blob, FileBlob) and blob.digest == f"sha256:{HEX}"
    assert _read(blob.open_raw()) == DATA and server.log == []


@pytest.mark.parametrize("pin", ["0" * 64, "f" * 64])
def test_offline_a_cached_answer_with_another_digest_than_the_pin_is_refused(
    server: HTTPSServer, cache: Path, pin: str
) -> None:
    _read(_downloader(cache).download(server.url(PATH)).open_raw())
    with pytest.raises(DigestMismatchError) as raised:
        _downloader(cache, offline=True).download(server.url(PATH), sha256=pin)
    assert f"cached content is sha256:{HEX}, pinned sha256:{pin}" in str(raised.value)


def test_offline_a_pin_matching_the_cached_answer_is_served(server: HTTPSServer, cache: Path) -> None:
    _read(_downloader(cache).download(server.url(PATH)).open_raw())
    blob = _downloader(cache, offline=True).download(server.url(PATH), sha256=HEX)
    assert isinstance(blob, FileBlob) and _read(blob.open_raw()) == DATA


# -- revalidation ---------------------------------------------------------------------------


def test_a_cached_answer_is_revalidated_with_both_validators(server: HTTPSServer, cache: Path) -> None:
    totals: list[int | None] = []
    downloader = _downloader(cache, totals=totals)
    blob = downloader.download(server.url(PATH))
    assert isinstance(blob, DownloadBlob) and blob.size == len(DATA) and blob.digest is None
    assert _read(blob.open_raw()) == DATA and totals == [len(DATA)]
    again = downloader.download(server.url(PATH))
    second = _logged(server, 2)[1]
    assert second.status == 304
    assert second.headers["if-none-match"] == HTTPSServer.etag_of(DATA)
    assert second.headers["if-modified-since"] == LAST_MODIFIED
    assert isinstance(again, FileBlob) and again.digest == f"sha256:{HEX}"
    assert _read(again.open_raw()) == DATA


def test_changed_content_is_fetched_again(server: HTTPSServer, cache: Path) -> None:
    downloader = _downloader(cache)
    _read(downloader.download(server.url(PATH)).open_raw())
    server.add(PATH, b"changed")
    assert _read(downloader.download(server.url(PATH)).open_raw()) == b"changed"


def test_a_url_gone_since_it_was_cached_is_an_error_not_the_cached_copy(
    server: HTTPSServer, cache: Path
) -> None:
    downloader = _downloader(cache)
    _read(downloader.download(server.url(PATH)).open_raw())
    server.remove(PATH)
    with pytest.raises(DownloadError) as raised:
        downloader.download(server.url(PATH))
    assert raised.value.status == 404
    assert str(raised.value) == f"{server.url(PATH)}: HTTP 404 Not Found"


@pytest.mark.parametrize(
    "validators",
    [{"ETag": '"v1"'}, {"Last-Modified": LAST_MODIFIED}, {}],
    ids=["etag-only", "last-modified-only", "none"],
)
def test_only_the_validators_the_server_gave_are_sent_back(cache: Path, validators: dict[str, str]) -> None:
    def respond(request: Request) -> bytes:
        conditional = "if-none-match" in request.headers or "if-modified-since" in request.headers
        return answer(304, b"", validators) if conditional else answer(200, DATA, validators)

    hostile = _hostile(respond)
    try:
        downloader = _downloader(cache)
        url = hostile.url(PATH)
        _read(downloader.download(url).open_raw())
        again = downloader.download(url)
        sent = hostile.requests[-1].headers
        assert sent.get("if-none-match") == validators.get("ETag")
        assert sent.get("if-modified-since") == validators.get("Last-Modified")
        assert _read(again.open_raw()) == DATA
    finally:
        hostile.close()


# -- statuses and the body ------------------------------------------------------------------


@pytest.mark.parametrize("status", [199, 201, 204, 206, 304, 404, 410])
def test_any_status_but_200_to_a_fresh_request_is_an_error_naming_it(cache: Path, status: int) -> None:
    hostile = _hostile(lambda request: answer(status, b"" if status in (199, 204, 304) else b"x", {}))
    try:
        downloader = _downloader(cache)
        for _ in range(2):  # the second: the lock was released
            with pytest.raises(DownloadError) as raised:
                downloader.download(hostile.url(PATH))
            assert raised.value.status == status
            assert str(raised.value) == f"{hostile.url(PATH)}: HTTP {status} Hostile"
    finally:
        hostile.close()


def test_a_body_without_content_length_has_no_size(cache: Path) -> None:
    raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + DATA
    hostile = _hostile(lambda request: (raw, 0))
    try:
        totals: list[int | None] = []
        blob = _downloader(cache, totals=totals).download(hostile.url(PATH))
        assert blob.size is None
        assert _read(blob.open_raw()) == DATA and totals == [None]
    finally:
        hostile.close()


def test_a_download_streams_once_then_reads_its_cached_copy(server: HTTPSServer, cache: Path) -> None:
    blob = _downloader(cache).download(server.url(PATH))
    assert _read(blob.open_raw()) == DATA
    assert _read(blob.open_raw()) == DATA
    assert len(_logged(server, 1)) == 1


def test_a_download_opened_twice_before_it_finished_is_refused(server: HTTPSServer, cache: Path) -> None:
    server.stall(PATH, 30, after=10)
    blob = _downloader(cache).download(server.url(PATH))
    first = blob.open_raw()
    try:
        with pytest.raises(CnbkitError, match="the download was interrupted; resolve it again"):
            blob.open_raw()
    finally:
        server.stop()
        first.close()
    with pytest.raises(CnbkitError, match="the download was interrupted"):
        blob.open_raw()


def test_a_downloader_is_frozen(cache: Path) -> None:
    downloader = _downloader(cache)
    with pytest.raises(dataclasses.FrozenInstanceError):
        downloader.offline = True  # type: ignore[misc]
    assert hash(downloader) == hash(downloader)


def test_a_body_changed_while_resuming_is_refused_and_not_cached(server: HTTPSServer, cache: Path) -> None:
    server.drop(PATH, after=100, then=b"another file entirely\n" * 50)
    blob = _downloader(cache).download(server.url(PATH))
    with pytest.raises(DownloadError, match="the file changed on the server during the download"):
        _read(blob.open_raw())
    resumed = _logged(server, 2)[1]
    assert resumed.headers["range"] == "bytes=100-" and resumed.headers["if-range"] == HTTPSServer.etag_of(
        DATA
    )
    assert not list((cache / "blobs").rglob("*.*")) and not (cache / "blobs" / "sha256").exists()


def test_the_url_is_positional_or_named_the_pin_named_only(server: HTTPSServer, cache: Path) -> None:
    downloader = _downloader(cache)
    assert downloader.download(url=server.url(PATH), sha256=HEX).digest == f"sha256:{HEX}"
    assert download_blob(client=downloader, url=server.url(PATH), sha256=HEX).digest == f"sha256:{HEX}"
    with pytest.raises(TypeError):
        downloader.download(server.url(PATH), HEX)  # type: ignore[misc]
    with pytest.raises(TypeError):
        download_blob(downloader, server.url(PATH), HEX)  # type: ignore[misc]


def test_a_cached_pinned_url_needs_neither_requests_nor_the_network(tmp_path: Path) -> None:
    # A warm resolve must not pay for importing requests (about 0.1 s): only the annotations
    # name it, and the session is never asked for.
    script = f"""
import hashlib, sys
from cnbkit.cache import Cache
from cnbkit.transport.download import Downloader
cache = Cache({str(tmp_path / "cache")!r})
with cache.writer() as writer:
    writer.write({DATA!r})
    writer.commit()
def no_session():
    raise AssertionError("the session was asked for")
downloader = Downloader(cache=cache, session=no_session, verify=True, timeout=1, allow_http=False,
                        offline=False, progress=None, notice=print)
blob = downloader.download("https://example.invalid/x.tgz", sha256={HEX!r})
assert blob.digest == "sha256:{HEX}", blob
print(sorted(m for m in ("requests", "urllib3", "cnbkit.progress") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
