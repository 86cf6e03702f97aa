"""The authenticated channel to a registry, rule by rule, against hostile registries on real
sockets (loopback, and the machine's own non-loopback address where plain http must be refused):
one ping per registry and what its answer means, https first and plain http only where allowed,
the ``Authorization`` header only on the registry's own origin, one 401 answered by a renewed
token (never by the same basic credentials, never with a stream body), a URL the registry hands
back checked before anything goes there, and one-line failures naming code, message and advice.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from cnbkit.transport.http import new_session
from cnbkit.transport.registry.auth import clear_token_cache
from cnbkit.transport.registry.connection import Connection, pull_scope, push_scope
from cnbkit.transport.registry.credentials import Credentials
from cnbkit.transport.registry.reference import Reference, parse_reference
from cnbkit.transport.registry.wire import RegistryError

from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.https_server import HTTPSServer, ca_bundle_fixture, test_ca_fixture  # noqa: F401 - fixtures

JSON = {"Content-Type": "application/json"}
SCOPES = ("repository:x/app:pull",)
BASIC = "Basic " + base64.b64encode(b"user:secret").decode()
Respond = Callable[[Request], Answer]


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def serve() -> Iterator[Callable[..., HostileServer]]:
    """Start hostile servers (``respond``, optional ``tls``); all closed after the test."""
    servers: list[HostileServer] = []

    def start(respond: Respond, tls: ssl.SSLContext | None = None) -> HostileServer:
        servers.append(HostileServer(respond, tls=tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _connection(
    *,
    insecure: bool | list[str] = False,
    credentials: Credentials | None = None,
    verify: str | bool = True,
    timeout: float = 10,
) -> Connection:
    return Connection(
        new_session(), verify=verify, timeout=timeout, insecure=insecure, credentials=lambda _r: credentials
    )


def _ref(host: str, repository: str = "x/app") -> Reference:
    return parse_reference(f"{host}/{repository}:tag")


def _paths(server: HostileServer, path: str) -> list[Request]:
    return [r for r in server.requests if r.path.split("?")[0] == path]


def _registry(routes: dict[str, Respond], ping: Answer | None = None) -> Respond:
    """Answer ``/v2/`` with ``ping`` (default: 200) and each path of ``routes`` with its function."""
    ping = answer(200, b"{}", JSON) if ping is None else ping

    def respond(request: Request) -> Answer:
        path = request.path.split("?")[0]
        if path == "/v2/":
            return ping
        if path in routes:
            return routes[path](request)
        return answer(404, b"", {})

    return respond


def _over_http(host: str, told: str) -> str:
    """The message of a loopback registry that failed over https (it serves plain http), then
    over http with ``told``."""
    tls = "TLS failed; give the server's CA bundle with --ca-cert FILE or SSL_CERT_FILE"
    return f"{host}: https://{host}/v2/: {tls}; over plain http: {host}: {told}"


def _ok(request: Request) -> Answer:
    return answer(200, b"ok", {})


def _silent_listener(host: str) -> socket.socket:
    """A socket that accepts connections (the kernel does) and never says a byte."""
    return socket.create_server((host, 0))


# -- scopes and the ping --------------------------------------------------------------------


def test_scopes_name_the_repository() -> None:
    ref = _ref("127.0.0.1:5000", "org/app")
    assert pull_scope(ref) == ("repository:org/app:pull",)
    assert push_scope(ref) == ("repository:org/app:pull,push",)


def test_a_registry_is_pinged_once_and_over_plain_http_on_loopback(
    serve: Callable[..., HostileServer],
) -> None:
    server = serve(_registry({"/v2/x/app/tags/list": _ok, "/v2/y/other/tags/list": _ok}))
    connection = _connection()
    for ref, path in [(_ref(server.host), "/v2/x/app/tags/list")] * 2 + [
        (_ref(server.host, "y/other"), "/v2/y/other/tags/list")
    ]:
        assert connection.request(ref, "GET", path, scopes=SCOPES).status_code == 200
    assert len(_paths(server, "/v2/")) == 1
    assert connection.endpoint(_ref(server.host)).base == f"http://{server.host}"


def test_an_https_registry_stays_on_https(
    serve: Callable[..., HostileServer], test_ca: trustme.CA, ca_bundle: Path
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca.issue_cert("127.0.0.1").configure_cert(context)
    server = serve(_registry({"/v2/x/app/tags/list": _ok}), tls=context)
    connection = _connection(verify=str(ca_bundle))
    assert (
        connection.request(_ref(server.host), "GET", "/v2/x/app/tags/list", scopes=SCOPES).status_code == 200
    )
    assert connection.endpoint(_ref(server.host)).base == f"https://{server.host}"


@pytest.mark.parametrize("challenge", ['Basic realm="registry"', 'Bearer realm="http://127.0.0.1:1/token"'])
def test_a_ping_answered_401_with_a_challenge_is_a_registry(
    serve: Callable[..., HostileServer], challenge: str
) -> None:
    server = serve(_registry({}, answer(401, b"", {"WWW-Authenticate": challenge})))
    endpoint = _connection().endpoint(_ref(server.host))
    assert endpoint.auth.challenge is not None
    assert endpoint.auth.challenge.scheme == challenge.split()[0].lower()


@pytest.mark.parametrize("headers", [{}, {"WWW-Authenticate": "Negotiate"}, {"WWW-Authenticate": ""}])
def test_a_ping_answered_401_without_a_usable_challenge_is_refused(
    serve: Callable[..., HostileServer], headers: dict[str, str]
) -> None:
    server = serve(_registry({}, answer(401, b"", headers)))
    with pytest.raises(RegistryError) as raised:
        _connection().endpoint(_ref(server.host))
    told = "answered 401 with no usable WWW-Authenticate challenge"
    assert str(raised.value) == _over_http(server.host, told)


@pytest.mark.parametrize("status", [199, 201, 204, 302, 400, 403, 404])
def test_a_ping_answered_anything_else_is_not_a_registry(
    serve: Callable[..., HostileServer], status: int
) -> None:
    server = serve(_registry({}, answer(status, b"", {"WWW-Authenticate": 'Basic realm="r"'})))
    connection = _connection()
    with pytest.raises(RegistryError) as raised:
        connection.endpoint(_ref(server.host))
    told = f"http://{server.host}/v2/ answered HTTP {status}: not a registry (check the host and port)"
    assert str(raised.value) == _over_http(server.host, told)


# -- plain http -----------------------------------------------------------------------------


@pytest.fixture
def remote() -> Iterator[HTTPSServer]:
    """A plain-http registry on this machine's non-loopback address (192.0.2.2 here)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # nothing is sent: it only picks the outgoing address
        address = probe.getsockname()[0]
    except OSError:
        address = ""
    finally:
        probe.close()
    if not address or address.startswith("127."):
        pytest.fail("this test needs a non-loopback IPv4 address on the machine")
    with HTTPSServer(address, tls=False, files={"/v2/": b"{}"}) as server:
        yield server


def _remote_host(server: HTTPSServer) -> str:
    return f"{server.host}:{server.port}"


def test_plain_http_to_a_remote_registry_is_refused_with_the_flag_to_pass(remote: HTTPSServer) -> None:
    host = _remote_host(remote)
    with pytest.raises(RegistryError) as raised:
        _connection(insecure=["other.example:5000"]).endpoint(_ref(host))
    message = str(raised.value)
    assert message.startswith(f"{host}: https://{host}/v2/: TLS failed"), message
    assert message.endswith(f"; if it serves plain http, use --insecure-registry {host}"), message
    assert all(r.method == "GET" and r.path != "/v2/" for r in remote.log)  # only the TLS hello came


@pytest.mark.parametrize("insecure", [True, "host:port"])
def test_plain_http_to_a_remote_registry_when_allowed(remote: HTTPSServer, insecure: object) -> None:
    host = _remote_host(remote)
    connection = _connection(insecure=True if insecure is True else [host])
    assert connection.endpoint(_ref(host)).base == f"http://{host}"


def test_a_silent_remote_registry_gets_no_plain_http_hint(remote: HTTPSServer) -> None:
    listener = _silent_listener(remote.host)
    try:
        host = f"{remote.host}:{listener.getsockname()[1]}"
        with pytest.raises(RegistryError) as raised:
            _connection(timeout=0.5).endpoint(_ref(host))
        assert str(raised.value) == (
            f"{host}: https://{host}/v2/: no answer within 0.5 s; raise --timeout or CNBKIT_TIMEOUT if the "
            "server is slow"
        )
    finally:
        listener.close()


def test_a_registry_failing_over_both_schemes_tells_both() -> None:
    listener = _silent_listener("127.0.0.1")
    try:
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(RegistryError) as raised:
            _connection(timeout=0.5).endpoint(_ref(host))
        slow = "no answer within 0.5 s; raise --timeout or CNBKIT_TIMEOUT if the server is slow"
        assert str(raised.value) == (
            f"{host}: https://{host}/v2/: {slow}; over plain http: http://{host}/v2/: {slow}"
        )
    finally:
        listener.close()


# -- authorization --------------------------------------------------------------------------


def _needs(authorization: str) -> Respond:
    """A path that answers 200 to ``authorization`` and 401 to anything else."""

    def respond(request: Request) -> Answer:
        if request.headers.get("authorization") == authorization:
            return answer(200, b"ok", {})
        return answer(401, b"", {})

    return respond


def test_basic_credentials_go_to_the_registry_origin_only(serve: Callable[..., HostileServer]) -> None:
    # Three servers: the registry is the one whose port is in the middle, so another origin
    # sorts both before and after its own.
    ping = answer(401, b"", {"WWW-Authenticate": 'Basic realm="registry"'})
    routes = {"/v2/x/app/tags/list": _needs(BASIC), "/v2/x/app/blobs/uploads/1": _ok, "/upload": _ok}
    low, server, high = sorted((serve(_registry(routes, ping)) for _ in range(3)), key=lambda s: s.port)
    connection = _connection(credentials=Credentials("user", "secret"))
    ref = _ref(server.host)
    response = connection.request(ref, "GET", "/v2/x/app/tags/list", scopes=SCOPES, headers={"Accept": "a/b"})
    assert response.status_code == 200
    (sent,) = _paths(server, "/v2/x/app/tags/list")
    assert sent.headers["authorization"] == BASIC and sent.headers["accept"] == "a/b"
    absolute = connection.request(
        ref, "PUT", server.url("/v2/x/app/blobs/uploads/1"), scopes=SCOPES, body=b"x"
    )
    assert absolute.status_code == 200
    assert _paths(server, "/v2/x/app/blobs/uploads/1")[0].headers["authorization"] == BASIC
    for other in (low, high):
        away = connection.request(ref, "PUT", other.url("/upload"), scopes=SCOPES, body=b"x")
        assert away.status_code == 200 and "authorization" not in _paths(other, "/upload")[0].headers


def test_an_anonymous_ping_then_a_basic_challenge_sends_the_credentials(
    serve: Callable[..., HostileServer],
) -> None:
    def tags(request: Request) -> Answer:
        if request.headers.get("authorization") == BASIC:
            return answer(200, b"ok", {})
        return answer(401, b"", {"WWW-Authenticate": 'Basic realm="registry"'})

    server = serve(_registry({"/v2/x/app/tags/list": tags}))
    connection = _connection(credentials=Credentials("user", "secret"))
    response = connection.request(_ref(server.host), "GET", "/v2/x/app/tags/list", scopes=SCOPES)
    assert response.status_code == 200
    assert [r.headers.get("authorization") for r in _paths(server, "/v2/x/app/tags/list")] == [None, BASIC]


def test_refused_basic_credentials_are_not_sent_again(serve: Callable[..., HostileServer]) -> None:
    ping = answer(401, b"", {"WWW-Authenticate": 'Basic realm="registry"'})
    server = serve(_registry({"/v2/x/app/tags/list": _needs("Basic nobody")}, ping))
    connection = _connection(credentials=Credentials("user", "secret"))
    response = connection.request(_ref(server.host), "GET", "/v2/x/app/tags/list", scopes=SCOPES)
    assert response.status_code == 401
    assert [r.headers.get("authorization") for r in _paths(server, "/v2/x/app/tags/list")] == [BASIC]


def test_anonymous_basic_sends_no_header_and_answers_the_401(serve: Callable[..., HostileServer]) -> None:
    ping = answer(401, b"", {"WWW-Authenticate": 'Basic realm="registry"'})
    server = serve(_registry({"/v2/x/app/tags/list": _needs(BASIC)}, ping))
    response = _connection().request(_ref(server.host), "GET", "/v2/x/app/tags/list", scopes=SCOPES)
    assert response.status_code == 401
    assert [r.headers.get("authorization") for r in _paths(server, "/v2/x/app/tags/list")] == [None]


def _token_registry(
    serve: Callable[..., HostileServer], ping_challenge: bool = True, accepted: str = "t2"
) -> HostileServer:
    """A registry whose token server (on the same host) hands out ``t1``, ``t2``... and whose
    ``/v2/x/app/tags/list`` takes only ``accepted``; anything else there is a 401 with the
    challenge."""
    issued: list[str] = []
    port: list[int] = []

    def challenge() -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer realm="http://127.0.0.1:{port[0]}/token",service="reg"'}

    def respond(request: Request) -> Answer:
        path = request.path.split("?")[0]
        if path == "/v2/":
            return answer(401, b"", challenge()) if ping_challenge else answer(200, b"{}", JSON)
        if path == "/token":
            issued.append(f"t{len(issued) + 1}")
            return answer(200, json.dumps({"token": issued[-1], "expires_in": 300}).encode(), JSON)
        if path == "/v2/x/app/missing":
            return answer(404, b"", {})
        if request.headers.get("authorization") == f"Bearer {accepted}":
            return answer(200, b"ok", {})
        return answer(401, b"", challenge())

    server = serve(respond)
    port.append(server.port)
    return server


def test_a_refused_token_is_renewed_once(serve: Callable[..., HostileServer]) -> None:
    server = _token_registry(serve)
    response = _connection().request(_ref(server.host), "GET", "/v2/x/app/tags/list", scopes=SCOPES)
    assert response.status_code == 200
    sent = [r.headers.get("authorization") for r in _paths(server, "/v2/x/app/tags/list")]
    assert sent == ["Bearer t1", "Bearer t2"] and len(_paths(server, "/token")) == 2


def test_a_401_to_an_anonymous_ping_registry_brings_its_challenge(
    serve: Callable[..., HostileServer],
) -> None:
    server = _token_registry(serve, ping_challenge=False, accepted="t1")
    response = _connection().request(_ref(server.host), "GET", "/v2/x/app/tags/list", scopes=SCOPES)
    assert response.status_code == 200
    sent = [r.headers.get("authorization") for r in _paths(server, "/v2/x/app/tags/list")]
    assert sent == [None, "Bearer t1"]


def test_a_bytes_body_is_sent_again_a_stream_is_not(serve: Callable[..., HostileServer]) -> None:
    server = _token_registry(serve)
    connection = _connection()
    ref = _ref(server.host)
    assert (
        connection.request(ref, "PUT", "/v2/x/app/tags/list", scopes=SCOPES, body=b"data").status_code == 200
    )
    assert [r.body for r in _paths(server, "/v2/x/app/tags/list")] == [b"data", b"data"]
    clear_token_cache()
    server.requests.clear()
    stream = connection.request(ref, "PUT", "/v2/x/app/tags/list", scopes=SCOPES, body=io.BytesIO(b"data"))
    assert stream.status_code == 401
    assert len(_paths(server, "/v2/x/app/tags/list")) == 1 and len(_paths(server, "/token")) == 1


def test_a_401_from_another_origin_is_returned_untouched(serve: Callable[..., HostileServer]) -> None:
    other = serve(lambda request: answer(401, b"", {}))
    server = _token_registry(serve)
    response = _connection().request(_ref(server.host), "GET", other.url("/upload"), scopes=SCOPES)
    assert response.status_code == 401
    assert len(other.requests) == 1 and _paths(server, "/token") == []


def test_any_answer_but_a_401_is_returned_as_it_is(serve: Callable[..., HostileServer]) -> None:
    server = _token_registry(serve, accepted="t1")
    connection = _connection()
    ref = _ref(server.host)
    assert connection.request(ref, "GET", "/v2/x/app/tags/list", scopes=SCOPES).status_code == 200
    assert connection.request(ref, "GET", "/v2/x/app/missing", scopes=SCOPES).status_code == 404
    assert len(_paths(server, "/v2/x/app/tags/list")) == 1 and len(_paths(server, "/v2/x/app/missing")) == 1
    assert len(_paths(server, "/token")) == 1  # t1, for both: nothing was renewed


# -- URLs the registry hands back -----------------------------------------------------------


def test_a_plain_http_url_to_a_remote_host_is_refused_before_anything_is_sent(
    serve: Callable[..., HostileServer],
) -> None:
    server = serve(_registry({}))
    url = "http://someone:hunter2@192.0.2.77:5000/upload?state=1"
    with pytest.raises(RegistryError) as raised:
        _connection().request(_ref(server.host), "PUT", url, scopes=SCOPES, body=b"x")
    assert str(raised.value) == (
        f"{server.host}/x/app: the registry sent a URL that is plain http "
        "(http://someone:***@192.0.2.77:5000/upload?state=1); refused, before anything was sent there "
        "(only loopback and --insecure-registry hosts may use plain http: 192.0.2.77:5000)"
    )
    assert [r.path for r in server.requests] == ["/v2/"]


def test_a_downgrade_and_a_foreign_scheme_are_refused_without_the_http_hint(
    serve: Callable[..., HostileServer], test_ca: trustme.CA, ca_bundle: Path
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca.issue_cert("127.0.0.1").configure_cert(context)
    server = serve(_registry({}), tls=context)
    connection = _connection(verify=str(ca_bundle))
    for url, refusal in [
        (f"http://{server.host}/upload", "plain http after https"),
        ("ftp://127.0.0.1/upload", "not an http(s) URL"),
    ]:
        with pytest.raises(RegistryError) as raised:
            connection.request(_ref(server.host), "PUT", url, scopes=SCOPES, body=b"x")
        assert str(raised.value) == (
            f"{server.host}/x/app: the registry sent a URL that is {refusal} ({url}); refused, before "
            "anything was sent there"
        )
    assert [r.path for r in server.requests] == ["/v2/"]


# -- failures -------------------------------------------------------------------------------


def _error(code: str | None = None, message: str | None = None) -> bytes:
    first = {k: v for k, v in (("code", code), ("message", message)) if v is not None}
    return json.dumps({"errors": [first]}).encode()


_CHECK = "check the repository name, the tag or the digest"


@pytest.mark.parametrize(
    ("status", "body", "told"),
    [
        (404, _error("MANIFEST_UNKNOWN", "manifest unknown"), f"HTTP 404 MANIFEST_UNKNOWN; {_CHECK}"),
        (404, _error("MANIFEST_UNKNOWN", "Manifest Unknown"), f"HTTP 404 MANIFEST_UNKNOWN; {_CHECK}"),
        (
            404,
            _error("NAME_UNKNOWN", "no such repository"),
            f"HTTP 404 NAME_UNKNOWN (no such repository); {_CHECK}",
        ),
        (404, _error("UNKNOWN", "unknown"), f"HTTP 404 UNKNOWN; {_CHECK}"),
        (403, _error("DENIED", "denied"), "HTTP 403 DENIED; the credentials lack access to this repository"),
        (400, _error("BAD", "bad thing"), "HTTP 400 BAD (bad thing)"),
        (400, _error("BAD"), "HTTP 400 BAD"),
        (400, _error(message="only a message"), "HTTP 400 (only a message)"),
        (400, b"", "HTTP 400"),
        (410, _error("GONE", "gone"), "HTTP 410 GONE"),
        (
            429,
            _error("TOOMANYREQUESTS", "slow down"),
            "HTTP 429 TOOMANYREQUESTS (slow down); rate limited by the registry: log in (docker login) or "
            "try again later",
        ),
    ],
)
def test_a_failure_names_status_code_message_and_advice(
    serve: Callable[..., HostileServer], status: int, body: bytes, told: str
) -> None:
    headers = JSON
    server = serve(_registry({"/v2/x/app/manifests/tag": lambda request: answer(status, body, headers)}))
    connection = _connection()
    ref = _ref(server.host)
    # A stream body: the request is sent once, a 429 is not retried after a backoff
    response = connection.request(ref, "PUT", "/v2/x/app/manifests/tag", scopes=SCOPES, body=io.BytesIO(b"x"))
    failure = connection.failure(ref, response, "fetch tag")
    assert str(failure) == f"{server.host}/x/app: fetch tag: {told}"
    code = json.loads(body)["errors"][0].get("code", "") if body else ""
    assert failure.status == status and failure.code == code


def test_a_401_failure_says_to_check_the_credentials(serve: Callable[..., HostileServer]) -> None:
    server = serve(
        _registry({"/v2/x/app/manifests/tag": lambda r: answer(401, _error("UNAUTHORIZED", "no"), JSON)})
    )
    connection = _connection()
    ref = _ref(server.host)
    failure = connection.failure(
        ref, connection.request(ref, "GET", "/v2/x/app/manifests/tag", scopes=SCOPES), "get"
    )
    assert str(failure) == (
        f"{server.host}/x/app: get: HTTP 401 UNAUTHORIZED (no); check credentials for {server.host} "
        "(docker login / DOCKER_CONFIG)"
    )


# -- the signature --------------------------------------------------------------------------


def test_settings_and_scopes_are_named_only(serve: Callable[..., HostileServer]) -> None:
    server = serve(_registry({"/v2/x/app/tags/list": _ok}))
    connection = Connection(
        session=new_session(), verify=True, timeout=10, insecure=False, credentials=lambda _r: None
    )
    response = connection.request(
        ref=_ref(server.host), method="GET", path="/v2/x/app/tags/list", scopes=SCOPES
    )
    assert response.status_code == 200
    with pytest.raises(TypeError):
        Connection(new_session(), True, 10, False, lambda _r: None)  # type: ignore[misc]
    with pytest.raises(TypeError):
        connection.request(_ref(server.host), "GET", "/v2/x/app/tags/list", SCOPES)  # type: ignore[misc]


def test_the_channel_imports_no_requests_until_it_sends() -> None:
    # A registry image whose digest is cached costs no request, not even the import of requests
    # (plugins.md): only the annotations name it.
    script = "import sys, cnbkit.transport.registry.connection; print('requests' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
