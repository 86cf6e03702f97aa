"""Issue 17: registries, token servers and daemons that lie, stall, cut or echo secrets, behind
real sockets (tests/hostile_server.py). Each failure is one line naming the peer and what went
wrong; no URL a registry hands back escapes the plain-http rule; no credential reaches stderr."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from tests import test_builder_create
from tests.conftest import one_line_error, run_cli
from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.https_server import IDENTITIES, ca_bundle_fixture, test_ca_fixture  # noqa: F401 - fixtures
from tests.services.credentials import DockerConfig

project = test_builder_create.project  # the fixture: a builder.toml with local inputs
DIGEST = "sha256:" + "ab" * 32
JSON = {"Content-Type": "application/json"}
Serve = Callable[[Callable[[Request], Answer]], HostileServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start :class:`HostileServer` instances on loopback, closed after the test."""
    servers: list[HostileServer] = []

    def start(respond: Callable[[Request], Answer]) -> HostileServer:
        servers.append(HostileServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _resolve(registry: HostileServer, *extra: str) -> subprocess.CompletedProcess[str]:
    """``cnbkit resolve`` of an image by digest from ``registry`` (no daemon, no HEAD of a tag)."""
    return run_cli(
        "resolve", f"docker://{registry.host}/x/lifecycle@{DIGEST}", "--pull-policy", "always", *extra
    )


# -- 4. every URL a registry hands back obeys the registry's plain-http rule ---------------------


def test_an_upload_location_on_plain_http_elsewhere_gets_no_body(serve: Serve, project: Path) -> None:
    # The registry is on loopback (plain http allowed); its upload Location is a plain-http host
    # that is not. A proxy on loopback stands for that host: whatever cnbkit sends there
    # arrives at the proxy, so "nothing arrived" proves no connection was attempted.
    location = "http://uploads.example:8080/upload/1?state=abc"

    def registry(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        if request.method == "HEAD":
            return answer(404)
        if request.method == "POST" and "/blobs/uploads/" in request.path:
            return answer(202, headers={"Location": location})
        return answer(500)

    hostile = serve(registry)
    proxy = serve(lambda request: (answer(502), 0))
    result = run_cli(
        "builder", "create", f"docker://{hostile.host}/hostile/builder:v1",
        "--config", str(project / "builder.toml"),
        env={"HTTP_PROXY": proxy.url(), "http_proxy": proxy.url()},
    )  # fmt: skip
    line = one_line_error(result)
    assert location in line and "plain http" in line and "refused" in line, line
    assert proxy.requests == []
    assert {r.method for r in hostile.requests} <= {"GET", "HEAD", "POST"}
    assert all(not r.body for r in hostile.requests)


def test_an_https_registry_is_not_downgraded_by_its_upload_location(
    serve: Serve, project: Path, test_ca: trustme.CA, ca_bundle: Path
) -> None:
    elsewhere = serve(lambda request: answer(500))  # plain http on loopback: allowed on its own
    location = elsewhere.url("/upload/1")

    def registry(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        if request.method == "HEAD":
            return answer(404)
        return answer(202, headers={"Location": location})

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca.issue_cert(*IDENTITIES).configure_cert(context)
    hostile = HostileServer(registry, tls=context)
    try:
        result = run_cli(
            "builder", "create", f"docker://{hostile.host}/hostile/builder:v1",
            "--config", str(project / "builder.toml"), "--ca-cert", str(ca_bundle),
        )  # fmt: skip
    finally:
        hostile.close()
    line = one_line_error(result)
    assert f"plain http after https ({location}" in line and "refused" in line, line
    assert elsewhere.requests == []


# -- 13. a stalled or cut manifest or token body, a token that is not Latin-1 --------------------


def _manifest_then(fault: float) -> Callable[[Request], Answer]:
    """A registry whose manifest body stops after 10 of 500 bytes: silent for ``fault`` s, cut."""

    def respond(request: Request) -> Answer:
        if request.path == "/v2/":
            return answer(200, b"{}", JSON)
        return answer(
            200, b'{"schemaVer', {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, length=500
        ), fault

    return respond


@pytest.mark.parametrize(
    ("fault", "says"),
    [(10.0, "the registry stopped sending for 1 s"), (0, "the connection to the registry broke")],
)
def test_a_stalled_or_cut_manifest_is_one_line(serve: Serve, fault: float, says: str) -> None:
    hostile = serve(_manifest_then(fault))
    result = _resolve(hostile, "--timeout", "1")
    line = one_line_error(result)
    assert line.startswith(f"error: {hostile.host}/x/lifecycle@{DIGEST}: manifest: "), line
    assert says in line and "unexpected" not in line, line


def _token_registry(realm: str) -> Callable[[Request], Answer]:
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}",service="hostile"'}

    def respond(request: Request) -> Answer:
        if request.path == "/v2/" and "authorization" not in request.headers:
            return answer(401, b"{}", {**JSON, **challenge})
        return answer(404, b"{}", JSON)

    return respond


@pytest.mark.parametrize(
    ("token_answer", "says"),
    [
        ((answer(200, b'{"tok', JSON, length=100), 10.0), "the token server stopped sending for 1 s"),
        ((answer(200, b'{"tok', JSON, length=100), 0), "the connection to the token server broke"),
        (answer(200, json.dumps({"token": "t\u00f6k\u20acn"}).encode(), JSON), "not printable ASCII"),
    ],
)
def test_a_hostile_token_server_is_one_line(serve: Serve, token_answer: Answer, says: str) -> None:
    token = serve(lambda request: token_answer)
    hostile = serve(_token_registry(token.url("/token")))
    result = _resolve(hostile, "--timeout", "1")
    line = one_line_error(result)
    assert line.startswith(f"error: {hostile.host}: "), line
    assert says in line and "unexpected" not in line, line


def test_a_daemon_whose_load_answer_is_not_chunked_json_is_one_line(project: Path) -> None:
    # The real dockerd always answers /images/load with a chunked JSON stream; a proxy or a
    # broken daemon may not. A fake daemon on a unix socket (DOCKER_HOST) shows that fault.
    def daemon(request: Request) -> Answer:
        if request.path.endswith("/version"):
            return answer(200, json.dumps({"ApiVersion": "1.43", "Version": "24.0.0"}).encode(), JSON)
        if "/images/load" in request.path:
            return answer(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        return answer(404, b'{"message": "no such thing"}', JSON)

    socket_path = Path(tempfile.mkdtemp(prefix="cnbkit-fake-daemon-")) / "docker.sock"
    fake = HostileServer(daemon, unix_path=socket_path)
    try:
        result = run_cli(
            "builder", "create", "docker-daemon:hostile/builder:v1",
            "--config", str(project / "builder.toml"),
            env={"DOCKER_HOST": f"unix://{socket_path}"},
        )  # fmt: skip
    finally:
        fake.close()
        socket_path.unlink()
        socket_path.parent.rmdir()
    line = one_line_error(result)
    assert line.startswith(
        f"error: docker-daemon:hostile/builder:v1: the Docker daemon at unix://{socket_path} "
    ), line
    assert "not a JSON stream" in line and "unexpected" not in line, line
    loads = [r for r in fake.requests if "/images/load" in r.path]
    assert len(loads) == 1 and loads[0].body.endswith(bytes(1024))  # the whole archive was sent


# -- 14. an error body echoing the Authorization header ---------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_an_echoed_authorization_header_never_reaches_stderr(
    serve: Serve, docker_config: DockerConfig, debug: bool
) -> None:
    password = "pa55-w0rd-echoed"
    secret = base64.b64encode(f"tester:{password}".encode()).decode()

    def registry(request: Request) -> Answer:
        sent = request.headers.get("authorization")
        if sent is None:
            return answer(401, b"{}", {**JSON, "WWW-Authenticate": 'Basic realm="hostile"'})
        echo = {
            "errors": [
                {"code": "DENIED", "message": f"denied: Authorization: {sent}; map[Authorization:[{sent}]]"}
            ]
        }
        return answer(403, json.dumps(echo).encode(), JSON)

    hostile = serve(registry)
    docker_config.write_auths({hostile.host: ("tester", password)})
    args = ["--debug"] if debug else []
    result = _resolve(hostile, *args)
    assert result.returncode == 1
    assert any(r.headers.get("authorization") == f"Basic {secret}" for r in hostile.requests)
    for leaked in (secret, password, secret[:12]):
        assert leaked not in result.stderr + result.stdout
    if not debug:
        line = one_line_error(result)
        assert f"{hostile.host}/x/lifecycle: manifest {DIGEST}: HTTP 403 DENIED" in line, line
        assert "Authorization: Basic ***" in line, line
