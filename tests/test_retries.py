"""The one retry policy (``cnbkit.transport.request``), edge by edge: a cut connection is tried
again, a busy server is waited for with backoff (or as its ``Retry-After`` says, in seconds or
as an HTTP date in any zone), against real sockets (tests/hostile_server.py)."""

from __future__ import annotations

import email.utils
import io
import random
import time
from collections.abc import Iterator
from pathlib import Path

import cnbkit
import pytest
import requests
from cnbkit.transport.request import retry_after, send

from tests.conftest import digest_of, run_cli
from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    https_server_fixture,
    test_ca_fixture,
)
from tests.lifecycles import make_lifecycle


@pytest.fixture
def servers() -> Iterator[list[HostileServer]]:
    """The servers a test starts, closed after it."""
    started: list[HostileServer] = []
    yield started
    for server in started:
        server.close()


def _then(*answers: Answer) -> HostileServer:
    """A server answering its requests with ``answers`` in turn, the last one from then on."""
    sequence = list(answers)

    def respond(request: Request) -> Answer:
        return sequence.pop(0) if len(sequence) > 1 else sequence[0]

    return HostileServer(respond)


def test_a_connection_cut_before_the_answer_is_tried_again(
    servers: list[HostileServer], tmp_path: Path
) -> None:
    body = make_lifecycle(tmp_path / "l.tgz").read_bytes()
    servers.append(_then((b"", 0), answer(200, body)))  # the first connection closes unanswered
    result = run_cli("resolve", servers[0].url("/l.tgz"), "--json")
    assert result.returncode == 0, result.stderr
    assert digest_of(body) in result.stdout
    assert len(servers[0].requests) == 2


def test_a_busy_server_is_waited_for_with_growing_backoff(servers: list[HostileServer]) -> None:
    servers.append(_then(answer(503), answer(503), answer(503), answer(200, b"ok")))
    waits: list[float] = []
    assert _send(servers[0], waits=waits) == 200
    # 0.25 s, 0.5 s, 1 s, each up to a quarter more (jitter)
    assert len(waits) == 3
    for wait, base in zip(waits, (0.25, 0.5, 1.0), strict=True):
        assert base < wait <= base * 1.25, waits  # never exactly the base: jitter spreads clients


@pytest.mark.parametrize(("asked", "waited"), [("30", [30.0]), ("31", [])])
def test_a_retry_after_of_up_to_30_s_is_waited_and_a_longer_one_refused(
    servers: list[HostileServer], asked: str, waited: list[float]
) -> None:
    servers.append(_then(answer(503, b"", {"Retry-After": asked}), answer(200, b"ok")))
    waits: list[float] = []
    if waited:
        assert _send(servers[0], waits=waits) == 200
    else:  # longer than a user would sit through: said at once, not slept on
        with pytest.raises(
            cnbkit.CnbkitError, match=r": server busy \(HTTP 503\), asks to retry after 31 s$"
        ):
            _send(servers[0], waits=waits)
    assert waits[:1] == waited  # (the next try's own backoff follows)
    assert len(servers[0].requests) == (2 if waited else 1)


class _Answer:
    def __init__(self, value: str) -> None:
        self.headers = {"Retry-After": value}


def test_retry_after_in_seconds_or_as_a_date(monkeypatch: pytest.MonkeyPatch) -> None:
    # A date without a zone ("-0000") is UTC (RFC 5322), whatever the machine's zone is.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert retry_after(_Answer("7")) == 7.0  # type: ignore[arg-type]
        soon = time.time() + 120
        for date in (email.utils.formatdate(soon, usegmt=True), email.utils.formatdate(soon)[:-5] + "-0000"):
            wait = retry_after(_Answer(date))  # type: ignore[arg-type]
            assert wait is not None and 110 <= wait <= 121, (date, wait)
        assert retry_after(_Answer(email.utils.formatdate(time.time() - 600, usegmt=True))) == 0.0  # type: ignore[arg-type]
        assert retry_after(_Answer("whenever")) is None  # type: ignore[arg-type]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def _send(
    server: HostileServer,
    method: str = "GET",
    body: object = None,
    waits: list[float] | None = None,
    path: str = "/x",
) -> int:
    response = send(
        requests.Session(),
        method,
        server.url(path),
        headers={},
        credentials=None,
        verify=True,
        timeout=10,
        allow_http=lambda host: True,
        body=body,  # type: ignore[arg-type]
        sleep=(waits if waits is not None else []).append,
    )
    response.close()
    return response.status_code


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_each_busy_status_is_tried_again(servers: list[HostileServer], status: int) -> None:
    servers.append(_then(answer(status), answer(200, b"ok")))
    assert _send(servers[0]) == 200 and len(servers[0].requests) == 2


def test_a_streamed_body_is_sent_once_and_a_put_follows_no_redirect(servers: list[HostileServer]) -> None:
    busy = _then(answer(503), answer(200, b"ok"))
    servers.append(busy)
    assert _send(busy, "PUT", io.BytesIO(b"a stream: gone once sent")) == 503  # not replayable
    assert len(busy.requests) == 1
    moved = _then(answer(307, headers={"Location": "/elsewhere"}), answer(200, b"ok"))
    servers.append(moved)
    assert _send(moved, "PUT", b"bytes") == 307  # a redirect of a PUT is the caller's to judge
    assert [r.path for r in moved.requests] == ["/x"]


def test_ten_redirects_are_followed_and_an_eleventh_is_refused(servers: list[HostileServer]) -> None:
    def hops(count: int) -> HostileServer:
        def respond(request: Request) -> Answer:
            step = int(request.path.rsplit("/", 1)[1])
            if step < count:
                return answer(302, headers={"Location": f"/hop/{step + 1}"})
            return answer(200, b"ok")

        return HostileServer(respond)

    ten, eleven = hops(10), hops(11)
    servers += [ten, eleven]
    assert _send(ten, path="/hop/0") == 200
    with pytest.raises(cnbkit.CnbkitError, match="more than 10 redirects"):
        _send(eleven, path="/hop/0")


def test_the_jitter_is_at_most_a_quarter_of_the_wait(
    servers: list[HostileServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The random draw near its top: each wait is its base and at most a quarter more.
    monkeypatch.setattr(random, "random", lambda: 0.99)
    servers.append(_then(answer(503), answer(503), answer(200, b"ok")))
    waits: list[float] = []
    assert _send(servers[0], waits=waits) == 200
    assert waits == pytest.approx([0.25 * 1.2475, 0.5 * 1.2475]), waits


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_each_redirect_status_of_a_get_is_followed(servers: list[HostileServer], status: int) -> None:
    servers.append(_then(answer(status, headers={"Location": "/elsewhere"}), answer(200, b"ok")))
    assert _send(servers[0]) == 200
    assert [r.path for r in servers[0].requests] == ["/x", "/elsewhere"]


@pytest.mark.parametrize(
    ("status", "headers"),
    [(304, {"Location": "/elsewhere"}), (200, {"Location": "/elsewhere"}), (302, {})],
    ids=["not-modified", "ok-with-a-location", "redirect-without-a-location"],
)
def test_only_a_redirect_status_with_a_location_is_followed(
    servers: list[HostileServer], status: int, headers: dict[str, str]
) -> None:
    servers.append(_then(answer(status, headers=headers), answer(200, b"elsewhere")))
    assert _send(servers[0]) == status  # returned as it is: the caller judges it
    assert [r.path for r in servers[0].requests] == ["/x"]


def test_messages_name_the_url_redacted_or_as_the_caller_says(servers: list[HostileServer]) -> None:
    def loop(request: Request) -> Answer:
        return answer(302, headers={"Location": "/again?token=hunter2"})

    servers.append(HostileServer(loop))
    url = servers[0].url("/x?token=hunter2")
    for display, expected in ((None, url.replace("hunter2", "***")), ("the lifecycle", "the lifecycle")):
        with pytest.raises(cnbkit.CnbkitError) as caught:
            send(
                requests.Session(),
                "GET",
                url,
                headers={},
                credentials=None,
                verify=True,
                timeout=10,
                allow_http=lambda host: True,
                display=display,
            )
        assert str(caught.value) == f"{expected}: more than 10 redirects"


def test_a_tls_failure_is_not_tried_again(https_server: HTTPSServer) -> None:
    https_server.add("/x", b"ok")
    waits: list[float] = []
    with pytest.raises(cnbkit.CnbkitError):  # the test CA is not trusted: verification fails
        send(
            requests.Session(),
            "GET",
            https_server.url("/x"),
            headers={},
            credentials=None,
            verify=True,
            timeout=10,
            allow_http=lambda host: False,
            sleep=waits.append,
        )
    assert waits == []  # a certificate does not fix itself in a second
