"""A real threaded HTTPS (or HTTP) server on loopback for the download tests.

It serves files from a dict or a directory with ``ETag`` and ``Last-Modified``, answers
``If-None-Match`` / ``If-Modified-Since`` with 304, supports ``Range`` (206 +
``Content-Range``) and ``If-Range``, and records every request (method, path, headers, status,
body bytes sent) so tests can count requests and bytes.

Faults are injected per path and sit behind the real socket: a status sequence (500 then 200,
429 with ``Retry-After``), a connection dropped after N bytes, a stall (nothing sent for longer
than the client's timeout), a body shorter than its ``Content-Length``, a redirect, a server that
ignores ``Range``, and a slow body.

The certificate comes from a ``trustme`` test CA and names 127.0.0.1, 127.0.0.2 and localhost,
so a second server on 127.0.0.2 (Linux routes all of 127/8 to loopback) is a second "host"
trusted through the same CA bundle.

Fixtures (import them into a test module; their names are the ``name=`` given below):
``test_ca``, ``ca_bundle``, ``https_server`` (127.0.0.1), ``https_server_b`` (127.0.0.2),
``http_server`` (plain HTTP on 127.0.0.1) and ``base_url``.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme

__all__ = [
    "HTTPSServer",
    "Recorded",
    "ca_bundle_fixture",
    "base_url_fixture",
    "http_server_fixture",
    "https_server_b_fixture",
    "https_server_fixture",
    "test_ca_fixture",
]

IDENTITIES = ("127.0.0.1", "127.0.0.2", "localhost")
_CHUNK = 64 * 1024
_LAST_MODIFIED = email.utils.formatdate(1700000000, usegmt=True)
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it.

    Attributes:
        method: ``GET``, ``HEAD``, ...
        path: the path and query (an absolute-form target, as a proxy gets, is reduced to it).
        target: the request target exactly as sent (absolute for proxied requests).
        headers: the request headers, names lower-cased.
        status: the status sent, or 0 when the connection was closed without a response.
        body_bytes: how many body bytes were sent.
        at: ``time.monotonic()`` when the request line arrived.
    """

    method: str
    path: str
    target: str
    headers: dict[str, str]
    status: int
    body_bytes: int
    at: float


@dataclass
class _Behaviour:
    """What the server does for one path besides serving it plainly."""

    statuses: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    redirect: tuple[int, str] | None = None
    drop_after: int | None = None
    drop_times: int | None = None
    replace_after_drop: bytes | None = None
    stall_seconds: float = 0.0
    stall_after: int | None = None  # None: before the status line
    stall_times: int | None = None
    short_by: int = 0
    short_times: int | None = None
    ignore_range: bool = False
    chunk_delay: float = 0.0
    chunk_size: int = _CHUNK


def _take(times: int | None) -> tuple[bool, int | None]:
    """Whether a fault armed ``times`` more times (None: always) fires now, and what is left."""
    if times is None:
        return True, None
    if times <= 0:
        return False, 0
    return True, times - 1


class _Abort(Exception):
    """The handler closed the connection on purpose (a fault); nothing more is sent."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TCPServer
    timeout = 15  # idle keep-alive connections end on their own

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (OSError, ssl.SSLError):
                self.server.owner._note_tls_failure()
                raise _Abort from None

    def handle(self) -> None:
        with contextlib.suppress(_Abort, OSError, ssl.SSLError):
            super().handle()
        self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner._serve(self, head=False)

    def do_HEAD(self) -> None:
        self.server.owner._serve(self, head=True)


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: HTTPSServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        self.owner._track(sock)
        if self.owner.tls_context is not None:
            # The handshake happens in the connection's own thread (see _Handler.setup), so a
            # client that refuses the certificate never blocks the accept loop.
            sock = self.owner.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that go away mid-response are the point of several tests


class HTTPSServer:
    """A threaded HTTPS server on a loopback address; ``tls=False`` makes it plain HTTP.

    Args:
        host: the loopback address to listen on (127.0.0.1, 127.0.0.2, ...).
        ca: the test CA that issues the server certificate (required for TLS).
        tls: serve HTTPS (default) or plain HTTP.
        files: initial content, by path (``/a/b.tgz``).
        directory: serve the files under this directory too (after ``files``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        ca: trustme.CA | None = None,
        tls: bool = True,
        files: dict[str, bytes] | None = None,
        directory: Path | None = None,
    ) -> None:
        self.host = host
        self.tls_context: ssl.SSLContext | None = None
        if tls:
            if ca is None:
                raise ValueError("a TLS server needs the test CA")
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ca.issue_cert(*IDENTITIES).configure_cert(self.tls_context)
        self.directory = directory
        self._files: dict[str, bytes] = dict(files or {})
        self._behaviour: dict[str, _Behaviour] = {}
        self._log: list[Recorded] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.tls_failures = 0
        self._server = _TCPServer((host, 0), _Handler, bind_and_activate=True)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> HTTPSServer:
        """Start serving in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection (idempotent); stalled handlers wake up."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> HTTPSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server still accepts connections."""
        return not self._stopping.is_set()

    # -- content ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``https://HOST:PORT`` (or ``http://``), without a trailing slash."""
        scheme = "https" if self.tls_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def url(self, path: str, *, userinfo: str = "") -> str:
        """The URL of ``path`` on this server, optionally with ``user:password@``."""
        scheme, _, rest = self.base_url.partition("://")
        prefix = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{prefix}{rest}{path}"

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path`` (replacing what was there); return its URL."""
        with self._lock:
            self._files[path] = data
        return self.url(path)

    def add_file(self, path: str, source: Path) -> str:
        """Serve the content of the file ``source`` at ``path``; return its URL."""
        return self.add(path, source.read_bytes())

    def remove(self, path: str) -> None:
        """Stop serving ``path`` (it becomes a 404)."""
        with self._lock:
            self._files.pop(path, None)

    def content(self, path: str) -> bytes | None:
        """What ``path`` serves, or ``None``."""
        with self._lock:
            data = self._files.get(path)
        if data is None and self.directory is not None:
            candidate = (self.directory / path.lstrip("/")).resolve()
            if self.directory.resolve() in candidate.parents and candidate.is_file():
                data = candidate.read_bytes()
        return data

    @staticmethod
    def etag_of(data: bytes) -> str:
        """The strong ETag the server sends for ``data``."""
        return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'

    # -- faults ----------------------------------------------------------------------------

    def _behaviour_for(self, path: str) -> _Behaviour:
        with self._lock:
            return self._behaviour.setdefault(path, _Behaviour())

    def statuses(self, path: str, *statuses: int | tuple[int, dict[str, str]]) -> None:
        """Answer the next requests for ``path`` with these statuses, one each, then serve it.

        Each item is a status, or ``(status, headers)`` (``(429, {"Retry-After": "1"})``).
        """
        items = [s if isinstance(s, tuple) else (s, {}) for s in statuses]
        with self._lock:
            self._behaviour.setdefault(path, _Behaviour()).statuses.extend(items)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer every request for ``path`` with a redirect to ``location``."""
        self._behaviour_for(path).redirect = (status, location)

    def drop(self, path: str, after: int, *, times: int | None = 1, then: bytes | None = None) -> None:
        """Send ``after`` body bytes, then close the TCP connection (no TLS close_notify).

        Args:
            path: the path.
            after: how many body bytes go out before the cut.
            times: how many responses are cut (1: only the first attempt; None: all).
            then: new content for ``path`` once the cut happened (the file changed meanwhile).
        """
        behaviour = self._behaviour_for(path)
        behaviour.drop_after, behaviour.drop_times, behaviour.replace_after_drop = after, times, then

    def stall(self, path: str, seconds: float, *, after: int | None = None, times: int | None = None) -> None:
        """Send nothing for ``seconds`` (or until the server stops), then close.

        Args:
            path: the path.
            seconds: how long to stay silent.
            after: ``None`` stalls before the status line; a number stalls after that many
                body bytes.
            times: how many requests stall (None: all).
        """
        behaviour = self._behaviour_for(path)
        behaviour.stall_seconds, behaviour.stall_after, behaviour.stall_times = seconds, after, times

    def short(self, path: str, missing: int, *, times: int | None = None) -> None:
        """Announce the full ``Content-Length`` but send ``missing`` bytes fewer, then close:
        every response (``times=None``) or the first ``times`` ones."""
        behaviour = self._behaviour_for(path)
        behaviour.short_by, behaviour.short_times = missing, times

    def ignore_range(self, path: str) -> None:
        """Serve ``path`` as a server without range support: ``Range`` gets a 200."""
        self._behaviour_for(path).ignore_range = True

    def slow(self, path: str, chunk_delay: float, chunk_size: int = _CHUNK) -> None:
        """Pause ``chunk_delay`` seconds between chunks of ``chunk_size`` bytes (64 KiB) of the
        body: a trickle with small chunks."""
        behaviour = self._behaviour_for(path)
        behaviour.chunk_delay, behaviour.chunk_size = chunk_delay, chunk_size

    # -- the log ---------------------------------------------------------------------------

    @property
    def log(self) -> list[Recorded]:
        """Every request so far, in arrival order of completion."""
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str) -> list[Recorded]:
        """The requests for ``path``."""
        return [r for r in self.log if r.path == path]

    def paths(self) -> list[str]:
        """The paths requested, in order."""
        return [r.path for r in self.log]

    def body_bytes(self, path: str | None = None) -> int:
        """Body bytes sent (for ``path``, or in all)."""
        return sum(r.body_bytes for r in self.log if path is None or r.path == path)

    def clear_log(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._log.clear()

    # -- serving ---------------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections = {s for s in self._connections if s.fileno() != -1}
            self._connections.add(sock)

    def _note_tls_failure(self) -> None:
        with self._lock:
            self.tls_failures += 1

    def _record(self, h: _Handler, path: str, status: int, sent: int, at: float) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            self._log.append(Recorded(h.command, path, h.path, headers, status, sent, at))

    def _serve(self, h: _Handler, *, head: bool) -> None:
        at = time.monotonic()
        path = h.path
        if "://" in path:  # absolute form, as a client sends it to a proxy
            parts = urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        route = path.split("?", 1)[0]
        with self._lock:
            behaviour = self._behaviour.get(route) or _Behaviour()
            status_item = behaviour.statuses.pop(0) if behaviour.statuses else None
            stall, behaviour.stall_times = (
                _take(behaviour.stall_times) if behaviour.stall_seconds else (False, behaviour.stall_times)
            )
        if status_item is not None:
            status, extra = status_item
            body = f"status {status} for {route}\n".encode()
            self._respond(h, path, at, status, {**extra, "Content-Type": "text/plain"}, body, head=head)
            return
        if behaviour.redirect is not None:
            status, location = behaviour.redirect
            self._respond(h, path, at, status, {"Location": location}, b"", head=head)
            return
        if stall and behaviour.stall_after is None:
            self._stopping.wait(behaviour.stall_seconds)
            self._record(h, path, 0, 0, at)
            raise _Abort
        data = self.content(route)
        if data is None:
            self._respond(h, path, at, 404, {"Content-Type": "text/plain"}, b"not found\n", head=head)
            return
        etag = self.etag_of(data)
        validators = {"ETag": etag, "Last-Modified": _LAST_MODIFIED}
        if self._not_modified(h, etag):
            self._respond(h, path, at, 304, validators, b"", head=True)
            return
        status, body, headers = 200, data, {**validators, "Accept-Ranges": "bytes"}
        wanted = h.headers.get("Range")
        if wanted and not behaviour.ignore_range and self._if_range_holds(h, etag):
            match = _RANGE.match(wanted.strip())
            if match:
                start = int(match[1])
                end = min(int(match[2]), len(data) - 1) if match[2] else len(data) - 1
                if start >= len(data) or end < start:
                    headers = {"Content-Range": f"bytes */{len(data)}"}
                    self._respond(h, path, at, 416, headers, b"", head=head)
                    return
                status, body = 206, data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        headers["Content-Type"] = "application/octet-stream"
        self._respond(h, path, at, status, headers, body, head=head, behaviour=behaviour, stall=stall)

    @staticmethod
    def _not_modified(h: _Handler, etag: str) -> bool:
        inm = h.headers.get("If-None-Match")
        if inm is not None:
            return inm.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in inm.split(",")]
        ims = h.headers.get("If-Modified-Since")
        if ims is None:
            return False
        try:
            since = email.utils.parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return email.utils.parsedate_to_datetime(_LAST_MODIFIED) <= since

    @staticmethod
    def _if_range_holds(h: _Handler, etag: str) -> bool:
        condition = h.headers.get("If-Range")
        return condition is None or condition.strip() in (etag, _LAST_MODIFIED)

    def _respond(
        self,
        h: _Handler,
        path: str,
        at: float,
        status: int,
        headers: dict[str, str],
        body: bytes,
        *,
        head: bool,
        behaviour: _Behaviour | None = None,
        stall: bool = False,
    ) -> None:
        behaviour = behaviour or _Behaviour()
        limit, how = len(body), "complete"
        with self._lock:
            if behaviour.drop_after is not None and status in (200, 206):
                fire, behaviour.drop_times = _take(behaviour.drop_times)
                if fire:
                    limit, how = min(limit, behaviour.drop_after), "drop"
                    if behaviour.replace_after_drop is not None:
                        self._files[path.split("?", 1)[0]] = behaviour.replace_after_drop
            if how == "complete" and behaviour.short_by and status in (200, 206):
                fire, behaviour.short_times = _take(behaviour.short_times)
                if fire:
                    limit, how = max(0, len(body) - behaviour.short_by), "short"
        if how == "complete" and stall and behaviour.stall_after is not None:
            limit, how = min(limit, behaviour.stall_after), "stall"
        sent = 0
        try:
            h.send_response(status)
            for name, value in headers.items():
                h.send_header(name, value)
            if status != 304:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if not head:
                while sent < limit:
                    if behaviour.chunk_delay and sent:
                        self._stopping.wait(behaviour.chunk_delay)
                    piece = body[sent : min(limit, sent + behaviour.chunk_size)]
                    h.wfile.write(piece)
                    sent += len(piece)
        finally:
            self._record(h, path, status, sent, at)
        if how == "complete":
            return
        if how == "stall":
            self._stopping.wait(behaviour.stall_seconds)
        # A TCP close without TLS close_notify: the client reads the bytes sent, then the end.
        connection = h.connection
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            connection.close()
        raise _Abort


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="test_ca")
def test_ca_fixture() -> trustme.CA:
    """The test CA (one per session)."""
    return trustme.CA()


@pytest.fixture(name="ca_bundle")
def ca_bundle_fixture(test_ca: trustme.CA, tmp_path: Path) -> Path:
    """The test CA's certificate as a PEM file (for ``--ca-cert`` or ``SSL_CERT_FILE``)."""
    path = tmp_path / "test-ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(name="https_server")
def https_server_fixture(test_ca: trustme.CA) -> Iterator[HTTPSServer]:
    """An HTTPS server on 127.0.0.1, stopped after the test."""
    with HTTPSServer("127.0.0.1", ca=test_ca) as server:
        yield server


@pytest.fixture(name="https_server_b")
def https_server_b_fixture(test_ca: trustme.CA) -> Iterator[HTTPSServer]:
    """A second HTTPS "host" on 127.0.0.2 with the same CA."""
    with HTTPSServer("127.0.0.2", ca=test_ca) as server:
        yield server


@pytest.fixture(name="http_server")
def http_server_fixture() -> Iterator[HTTPSServer]:
    """A plain-HTTP server on 127.0.0.1."""
    with HTTPSServer("127.0.0.1", tls=False) as server:
        yield server


@pytest.fixture(name="base_url")
def base_url_fixture(https_server: HTTPSServer) -> str:
    """``https://127.0.0.1:PORT`` of :func:`https_server_fixture`."""
    return https_server.base_url
