"""A hostile server behind a real socket that answers from a table: a registry on 127.0.0.1, or a
Docker daemon on a unix socket (``DOCKER_HOST=unix://...``). Each route is a method, a path
pattern and a canned answer, so a test states exactly what the server says."""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["Answer", "serve_tcp", "serve_unix"]


@dataclass(frozen=True)
class Answer:
    """What the server sends for a request whose method and path match."""

    method: str
    path: str  # a regular expression the path (without the query) must match in full
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def _handler(answers: list[Answer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            found = next(
                (a for a in answers if a.method == self.command and re.fullmatch(a.path, path)),
                Answer(self.command, path, b'{"message": "not here"}', 404),
            )
            self.send_response(found.status)
            for name, value in found.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(found.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(found.body)

        do_GET = do_HEAD = do_POST = do_PUT = _answer

    return Handler


@contextmanager
def _running(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def serve_tcp(answers: list[Answer]) -> Iterator[str]:
    """Serve ``answers`` over plain HTTP on 127.0.0.1; yield ``127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(answers))
    with _running(server):
        yield f"127.0.0.1:{server.server_address[1]}"


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextmanager
def serve_unix(path: Path, answers: list[Answer]) -> Iterator[str]:
    """Serve ``answers`` over HTTP on the unix socket ``path``; yield ``unix://PATH``."""
    server = _UnixServer(str(path), _handler(answers))
    with _running(server):
        yield f"unix://{path}"
