"""The warm path of a tag (``quick_head``): one ``HEAD`` over a bare socket, to a loopback peer.

It runs only for a registry the cache remembers, on the remembered scheme, when that scheme is
still allowed now, with no proxy to go through and never https without verification; it sends
one exact request and takes only a clean ``200`` with a valid digest and length. Everything
else (another status, a malformed, folded or repeated header, a head over 64 KiB, a
connection cut, a TLS failure) is ``None``: the full client takes over. Driven against
:class:`tests.hostile_server.HostileServer` and a scripted socket peer on loopback.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from cnbkit.cache import Cache
from cnbkit.cache.records import RegistryEndpoint
from cnbkit.transport.registry.quick import manifest_head, quick_head, remember_endpoint
from cnbkit.transport.registry.reference import Reference, parse_reference

from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.https_server import IDENTITIES, test_ca_fixture  # noqa: F401 - fixtures

DIGEST = "sha256:" + "c" * 64
ACCEPT = ("application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json")
GOOD = {"Docker-Content-Digest": DIGEST}
LIMIT = 64 * 1024


def _head(cache: Cache, ref: Reference, **options: object) -> tuple[str, int] | None:
    settings: dict[str, object] = {"verify": True, "timeout": 10.0, "allow_http": lambda host: False}
    settings.update(options)
    return quick_head(cache, ref, ACCEPT, **settings)  # type: ignore[arg-type]


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


@contextlib.contextmanager
def serving(
    respond: Callable[[Request], Answer], tls: ssl.SSLContext | None = None
) -> Iterator[HostileServer]:
    server = HostileServer(respond, tls=tls)
    try:
        yield server
    finally:
        server.close()


def warm(cache: Cache, server: HostileServer, path: str = "org/app:v1", scheme: str = "http") -> Reference:
    """``server``'s ``path``, its registry remembered as answering on ``scheme``."""
    ref = parse_reference(f"{server.host}/{path}")
    remember_endpoint(cache, ref, scheme)
    return ref


def said(data: bytes) -> Callable[[Request], Answer]:
    return lambda request: data


# -- when the shortcut is taken at all ------------------------------------------------------


def test_a_warm_tag_is_one_exact_head(cache: Cache) -> None:
    with serving(said(answer(200, headers=GOOD, length=1234))) as server:
        ref = warm(cache, server)
        assert _head(cache, ref) == (DIGEST, 1234)
        assert _head(cache, parse_reference(f"{server.host}/org/app")) == (DIGEST, 1234)
    first, latest = server.requests
    assert (first.method, first.path, latest.path) == (
        "HEAD",
        "/v2/org/app/manifests/v1",
        "/v2/org/app/manifests/latest",
    )
    assert first.headers == {
        "host": server.host,
        "accept": ", ".join(ACCEPT),
        "user-agent": "cnbkit",
        "connection": "close",
    }


def test_the_endpoint_is_remembered_by_api_host(cache: Cache) -> None:
    remember_endpoint(cache, parse_reference("alpine"), "https")
    entry = cache.recall(RegistryEndpoint, "registry-1.docker.io")
    assert entry is not None and entry.scheme == "https"


def test_an_unknown_registry_is_left_to_the_client(cache: Cache) -> None:
    with serving(said(answer(200, headers=GOOD))) as server:
        assert _head(cache, parse_reference(f"{server.host}/org/app:v1")) is None
        cache.remember(RegistryEndpoint(server.host, scheme="ftp"))
        assert _head(cache, parse_reference(f"{server.host}/org/app:v1")) is None
    assert server.requests == []


def test_plain_http_only_while_it_is_allowed(cache: Cache) -> None:
    # 127.1 is 127.0.0.1 to the resolver, but not a loopback name to the scheme rule
    asked: list[str] = []

    def allow(host: str) -> bool:
        asked.append(host)
        return allowed

    with serving(said(answer(200, headers=GOOD, length=7))) as server:
        ref = parse_reference(f"127.1:{server.port}/org/app:v1")
        remember_endpoint(cache, ref, "http")
        allowed = False
        assert _head(cache, ref, allow_http=allow) is None
        assert server.requests == []
        assert asked
        allowed = True
        assert _head(cache, ref, allow_http=allow) == (DIGEST, 7)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "var", ["https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
)
def test_a_proxy_is_left_to_the_client(cache: Cache, var: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(said(answer(200, headers=GOOD, length=7))) as server:
        far = parse_reference(f"127.1:{server.port}/org/app:v1")
        near = warm(cache, server)
        remember_endpoint(cache, far, "http")
        monkeypatch.setenv(var, "")  # set but empty: no proxy
        assert _head(cache, far, allow_http=lambda host: True) == (DIGEST, 7)
        monkeypatch.setenv(var, "http://127.0.0.1:9")
        assert _head(cache, far, allow_http=lambda host: True) is None  # not in NO_PROXY
        assert _head(cache, near) == (DIGEST, 7)  # 127.0.0.1 is in NO_PROXY
    assert len(server.requests) == 2


def _tls(test_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca.issue_cert(*IDENTITIES).configure_cert(context)
    return context


def test_https_with_the_ca_bundle_never_unverified(cache: Cache, test_ca: trustme.CA, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(bundle))
    with serving(said(answer(200, headers=GOOD, length=9)), tls=_tls(test_ca)) as server:
        ref = warm(cache, server, scheme="https")
        assert _head(cache, ref, verify=False) is None
        assert server.requests == []
        assert _head(cache, ref, verify=True) is None  # the system's CAs do not know the test CA
        assert _head(cache, ref, verify=str(tmp_path / "missing.pem")) is None
        assert _head(cache, ref, verify=str(bundle)) == (DIGEST, 9)
    assert len(server.requests) == 1


def test_plain_http_needs_no_verification(cache: Cache) -> None:
    with serving(said(answer(200, headers=GOOD, length=3))) as server:
        assert _head(cache, warm(cache, server), verify=False) == (DIGEST, 3)


def test_https_unverified_never_connects(cache: Cache) -> None:
    # Not even a handshake that would verify anyway: a listener that never answers shows
    # whether a connection came (its backlog completes it).
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        ref = parse_reference(f"127.0.0.1:{listener.getsockname()[1]}/org/app:v1")
        remember_endpoint(cache, ref, "https")
        assert _head(cache, ref, verify=False, timeout=1.0) is None
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


def test_https_to_a_plain_http_peer_is_none(cache: Cache, tmp_path: Path) -> None:
    with serving(said(answer(200, headers=GOOD))) as server:
        assert _head(cache, warm(cache, server, scheme="https")) is None


def _bound(port: int) -> socket.socket:
    try:
        return socket.create_server(("127.0.0.1", port))
    except OSError as error:  # not root, or the port is taken: nothing to learn here
        pytest.skip(f"cannot listen on 127.0.0.1:{port}: {error}")


@pytest.mark.parametrize(("scheme", "port"), [("http", 80), ("https", 443)])
def test_without_a_port_the_scheme_s_own(
    cache: Cache, test_ca: trustme.CA, tmp_path: Path, scheme: str, port: int
) -> None:
    listener = _bound(port)
    reply = answer(200, headers=GOOD, length=2)
    tls = _tls(test_ca) if scheme == "https" else None
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            stream = tls.wrap_socket(conn, server_side=True) if tls else conn
            data = b""
            while b"\r\n\r\n" not in data:
                data += stream.recv(4096)
            seen.append(data)
            stream.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    bundle = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(bundle))
    try:
        ref = (
            parse_reference("127.0.0.1/org/app:v1")
            if scheme == "http"
            else parse_reference("localhost/org/app")
        )
        remember_endpoint(cache, ref, scheme)
        assert _head(cache, ref, verify=str(bundle)) == (DIGEST, 2)
        thread.join(10)
        assert seen and f"Host: {ref.api_host}\r\n".encode() in seen[0]
    finally:
        listener.close()


def test_a_host_that_cannot_be_reached_is_none(cache: Cache) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    ref = parse_reference(f"127.0.0.1:{port}/org/app:v1")
    remember_endpoint(cache, ref, "http")
    assert _head(cache, ref) is None
    out_of_range = parse_reference("127.0.0.1:70000/org/app:v1")  # the grammar allows 5 digits
    remember_endpoint(cache, out_of_range, "http")
    assert _head(cache, out_of_range) is None
    label = parse_reference(f"{'a' * 64}.example/org/app:v1")  # too long a DNS label
    remember_endpoint(cache, label, "http")
    assert _head(cache, label, allow_http=lambda host: True) is None


# -- what the answer must be ----------------------------------------------------------------


def _status(status_line: str, *headers: str) -> bytes:
    return ("\r\n".join([status_line, *headers]) + "\r\n\r\n").encode("latin-1")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (_status("HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), (DIGEST, 5)),
        (_status("HTTP/1.0 200", f"docker-content-digest:   {DIGEST}  ", "content-length:0"), (DIGEST, 0)),
        (
            _status(
                "HTTP/1.1 200 OK", "Content-Length: 5", "X-Other: a:b", f"Docker-Content-Digest: {DIGEST}"
            ),
            (DIGEST, 5),
        ),
        (_status("HTTP/1.1 199 Early", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/1.1 404 Not Found", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/1.1 201 Created", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/1.1 401 No", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/1.1 307 Moved", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/2 200", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTX/1.1 200", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/1.1 20", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/1.1 2x0 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/1.1", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5"), None),
        (_status("HTTP/1.1 200 OK", "Content-Length: 5"), None),
        (_status("HTTP/1.1 200 OK", "Docker-Content-Digest:  ", "Content-Length: 5"), None),
        (_status("HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}"), None),
        (_status("HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: -1"), None),
        (_status("HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 1.5"), None),
        (_status("HTTP/1.1 200 OK", "Docker-Content-Digest: sha256:abc", "Content-Length: 5"), None),
        (
            _status("HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5", "no colon"),
            None,
        ),
        (
            _status("HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5", ": empty"),
            None,
        ),
        (
            _status("HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5", " Fold: x"),
            None,
        ),
        (
            _status("HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5", "Fold : x"),
            None,
        ),
        (
            _status(
                "HTTP/1.1 200 OK",
                f"Docker-Content-Digest: {DIGEST}",
                "Content-Length: 5",
                "content-length: 5",
            ),
            None,
        ),
        (
            _status(
                "HTTP/1.1 200 OK", f"Docker-Content-Digest: {DIGEST}", "Content-Length: 5", "X: 1", "x: 1"
            ),
            None,
        ),
    ],
)
def test_only_a_clean_200_with_digest_and_length_is_taken(
    cache: Cache, reply: bytes, expected: tuple[str, int] | None
) -> None:
    with serving(said(reply)) as server:
        assert _head(cache, warm(cache, server)) == expected


def test_a_connection_cut_before_the_end_of_the_head_is_none(cache: Cache) -> None:
    reply = answer(200, headers=GOOD, length=5)
    with serving(lambda request: (reply[:-2], 0)) as server:
        assert _head(cache, warm(cache, server)) is None
    with serving(lambda request: (b"", 0)) as server:
        assert _head(cache, warm(cache, server)) is None


def test_the_head_is_read_in_pieces(cache: Cache) -> None:
    padding = "X-Pad: " + "p" * 40000
    reply = _status("HTTP/1.1 200 OK", padding, f"Docker-Content-Digest: {DIGEST}", "Content-Length: 3")
    with serving(said(reply)) as server:
        assert _head(cache, warm(cache, server)) == (DIGEST, 3)


def test_manifest_head_reads_lower_case_names() -> None:
    assert manifest_head({"docker-content-digest": f" {DIGEST} ", "content-length": "12"}) == (DIGEST, 12)
    assert manifest_head({"docker-content-digest": "sha256:not-checked-here", "content-length": "1"}) == (
        "sha256:not-checked-here",
        1,
    )
    assert manifest_head({"Docker-Content-Digest": DIGEST, "Content-Length": "12"}) is None
    assert manifest_head({"docker-content-digest": DIGEST, "content-length": ""}) is None
    assert manifest_head({"docker-content-digest": "", "content-length": "3"}) is None


# -- the 64 KiB bound on the head, with a peer that sends it in two parts ------------------


def _scripted(first: bytes, then: bytes, wait: float) -> tuple[int, threading.Thread, list[bool]]:
    """A one-connection peer: after the request, ``first``; then, unless the client hangs up
    within ``wait`` seconds, ``then``. ``closed`` tells whether the client hung up first."""
    listener = socket.create_server(("127.0.0.1", 0))
    closed: list[bool] = []

    def serve() -> None:
        conn, _ = listener.accept()
        listener.close()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(first)
            conn.settimeout(wait)
            try:
                gone = conn.recv(1) == b""
            except (TimeoutError, OSError):
                gone = False
            closed.append(gone)
            if not gone:
                with contextlib.suppress(OSError):
                    conn.sendall(then)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, closed


def _padded_head(size: int) -> bytes:
    """A valid head of exactly ``size`` bytes before its blank line."""
    start = f"HTTP/1.1 200 OK\r\nDocker-Content-Digest: {DIGEST}\r\nContent-Length: 4\r\nX-Pad: "
    return (start + "p" * (size - len(start))).encode()


def test_a_head_of_64_kib_before_its_end_is_read(cache: Cache) -> None:
    port, thread, closed = _scripted(_padded_head(LIMIT), b"\r\n\r\n", 1)
    ref = parse_reference(f"127.0.0.1:{port}/org/app:v1")
    remember_endpoint(cache, ref, "http")
    assert _head(cache, ref) == (DIGEST, 4)
    thread.join(30)
    assert closed == [False]


def test_a_head_over_64_kib_is_not_read_to_its_end(cache: Cache) -> None:
    # the peer waits 8 s for the hang-up, the client 30 s for the rest: a client that waited
    # would get it (and take the head)
    port, thread, closed = _scripted(_padded_head(LIMIT + 1), b"\r\n\r\n", 8)
    ref = parse_reference(f"127.0.0.1:{port}/org/app:v1")
    remember_endpoint(cache, ref, "http")
    assert _head(cache, ref, timeout=30.0) is None
    thread.join(30)
    assert closed == [True]  # the client hung up without waiting for the rest
