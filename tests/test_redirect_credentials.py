"""Credentials never follow a redirect to another origin, for a download or a registry blob.

One request function sends every HTTP exchange (``cnbkit.transport.request.send``); these
tests drive it through its two callers, the ``https`` resolver (``cnbkit resolve`` with a
URL's userinfo) and the registry client (a blob behind a registry that wants Basic auth), and
redirect each to a change of scheme only (plain http to https on the same host and port: one
server speaks both), of port only, and of host only. The first hop carries the credentials;
the hop after the redirect carries none.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from cnbkit.cache import Cache
from cnbkit.transport.registry import Credentials, RegistryClient, parse_reference

from tests.conftest import digest_of, run_cli
from tests.https_server import IDENTITIES, ca_bundle_fixture, test_ca_fixture  # noqa: F401 - fixtures
from tests.lifecycles import make_lifecycle

USER, PASSWORD = "user", "s3cret"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
KINDS = ("scheme", "port", "host")


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    """Plain http and https on one port: a connection that opens with a TLS record is TLS."""

    daemon_threads = True
    tls: ssl.SSLContext
    owner: _Dual

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.settimeout(10)
        if sock.recv(1, socket.MSG_PEEK) == b"\x16":
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        tls = isinstance(self.connection, ssl.SSLSocket)
        owner.seen.append(("https" if tls else "http", self.path, self.headers.get("Authorization")))
        if self.path == "/v2/" and not tls:  # a registry over plain http only (the ping's answer)
            if self.headers.get("Authorization") == BASIC:
                self._send(200, b"{}")
            else:
                self._send(401, b"", {"WWW-Authenticate": 'Basic realm="test"'})
        elif self.path in owner.redirects:
            self._send(302, b"", {"Location": owner.redirects[self.path]})
        elif self.path == "/file":
            self._send(200, owner.body)
        else:
            self._send(404, b"")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Dual:
    def __init__(self, ca: trustme.CA, body: bytes) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*IDENTITIES).configure_cert(self.server.tls)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self.body = body
        self.redirects: dict[str, str] = {}
        self.seen: list[tuple[str, str, str | None]] = []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def target(self, kind: str, other: _Dual) -> str:
        """Where ``kind`` of redirect goes: the same file at another scheme, port or host."""
        return {
            "scheme": f"https://127.0.0.1:{self.port}/file",
            "port": f"http://127.0.0.1:{other.port}/file",
            "host": f"http://localhost:{self.port}/file",
        }[kind]


@pytest.fixture(name="servers")
def servers_fixture(test_ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[_Dual, _Dual]]:
    body = make_lifecycle(tmp_path / "lifecycle.tgz").read_bytes()
    first, second = _Dual(test_ca, body), _Dual(test_ca, body)
    try:
        yield first, second
    finally:
        for dual in (first, second):
            dual.server.shutdown()
            dual.server.server_close()


def _after_redirect(first: _Dual, second: _Dual) -> list[tuple[str, str, str | None]]:
    return [hop for hop in first.seen + second.seen if hop[1] == "/file"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_download_never_sends_the_urls_credentials_to_another_origin(
    servers: tuple[_Dual, _Dual], kind: str, ca_bundle: Path
) -> None:
    first, second = servers
    first.redirects["/lifecycle.tgz"] = first.target(kind, second)
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{first.port}/lifecycle.tgz"
    result = run_cli("resolve", url, "--ca-cert", str(ca_bundle), "--json")
    assert result.returncode == 0, result.stderr
    assert digest_of(first.body) in result.stdout
    assert first.seen[0] == ("http", "/lifecycle.tgz", BASIC)  # the credentials went to their origin
    hops = _after_redirect(first, second)
    assert [(scheme, auth) for scheme, _, auth in hops] == [("https" if kind == "scheme" else "http", None)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_registry_blob_never_sends_the_registrys_credentials_to_another_origin(
    servers: tuple[_Dual, _Dual], kind: str, ca_bundle: Path, tmp_path: Path
) -> None:
    first, second = servers
    digest = "sha256:" + hashlib.sha256(first.body).hexdigest()
    first.redirects[f"/v2/app/blobs/{digest}"] = first.target(kind, second)
    client = RegistryClient(
        verify=str(ca_bundle), timeout=10, credentials=lambda host: Credentials(USER, PASSWORD)
    )
    ref = parse_reference(f"127.0.0.1:{first.port}/app:v1")
    path = client.fetch_blob(ref, digest, len(first.body), Cache(tmp_path / "cache"))
    assert path.read_bytes() == first.body
    blob = [hop for hop in first.seen if hop[1].startswith("/v2/app/blobs/")]
    assert blob == [("http", f"/v2/app/blobs/{digest}", BASIC)]  # the registry got its credentials
    hops = _after_redirect(first, second)
    assert [(scheme, auth) for scheme, _, auth in hops] == [("https" if kind == "scheme" else "http", None)]
