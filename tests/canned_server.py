"""A hostile server that answers from a table: a registry on 127.0.0.1, or a Docker daemon on
a unix socket (``DOCKER_HOST=unix://...``). Each route is a method, a path pattern and a canned
answer, so a test states exactly what the server says. The socket side is
:class:`tests.hostile_server.HostileServer`'s (one raw HTTP peer for every hostile test)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.hostile_server import HostileServer, Request, answer

__all__ = ["Route", "serve_tcp", "serve_unix"]


@dataclass(frozen=True)
class Route:
    """What the server sends for a request whose method and path match."""

    method: str
    path: str  # a regular expression the path (without the query) must match in full
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def _respond(routes: list[Route]) -> Callable[[Request], bytes]:
    def respond(request: Request) -> bytes:
        path = request.path.split("?", 1)[0]
        found = next(
            (r for r in routes if r.method == request.method and re.fullmatch(r.path, path)),
            Route(request.method, path, b'{"message": "not here"}', 404),
        )
        reply = answer(found.status, found.body, found.headers)
        # A HEAD answer has the body's length but no body.
        return reply[: len(reply) - len(found.body)] if request.method == "HEAD" else reply

    return respond


@contextmanager
def _serving(server: HostileServer) -> Iterator[HostileServer]:
    try:
        yield server
    finally:
        server.close()


@contextmanager
def serve_tcp(routes: list[Route]) -> Iterator[str]:
    """Serve ``routes`` over plain HTTP on 127.0.0.1; yield ``127.0.0.1:PORT``."""
    with _serving(HostileServer(_respond(routes))) as server:
        yield server.host


@contextmanager
def serve_unix(path: Path, routes: list[Route]) -> Iterator[str]:
    """Serve ``routes`` over HTTP on the unix socket ``path``; yield ``unix://PATH``."""
    with _serving(HostileServer(_respond(routes), unix_path=path)):
        yield f"unix://{path}"
