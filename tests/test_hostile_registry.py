"""Issue 17: registries, token servers and daemons that lie, stall, cut or echo secrets, behind
real sockets (tests/hostile_server.py). Each failure is one line naming the peer and what went
wrong; no URL a registry hands back escapes the plain-http rule; no credential reaches stderr."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from tests.builder_support import build_image, builder_toml, buildpack
from tests.conftest import one_line_error, run_cli
from tests.hostile_server import Answer, HostileServer, Request, answer
from tests.https_server import IDENTITIES, ca_bundle_fixture, test_ca_fixture  # noqa: F401 - fixtures
from tests.lifecycles import make_lifecycle
from tests.services.credentials import DockerConfig

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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A builder.toml with a file lifecycle, one buildpack and a build image in a layout."""
    root = tmp_path / "project"
    root.mkdir()
    make_lifecycle(root / "lifecycle.tgz")
    buildpack(root / "bp")
    build_image(root / "build")
    builder_toml(root / "builder.toml", lifecycle='uri = "lifecycle.tgz"')
    return root


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
    result = run_cli(
        *args, "resolve", f"docker://{hostile.host}/x/lifecycle@{DIGEST}", "--pull-policy", "always"
    )
    assert result.returncode == 1
    assert any(r.headers.get("authorization") == f"Basic {secret}" for r in hostile.requests)
    for leaked in (secret, password, secret[:12]):
        assert leaked not in result.stderr + result.stdout
    if not debug:
        line = one_line_error(result)
        assert f"{hostile.host}/x/lifecycle: manifest {DIGEST}: HTTP 403 DENIED" in line, line
        assert "Authorization: Basic ***" in line, line
