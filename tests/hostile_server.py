"""A hostile HTTP peer on a real socket: a registry, a token server or a Docker daemon that says
exactly the bytes a test makes it say, stalls, or cuts the connection.

:class:`HostileServer` listens on loopback TCP (or on a unix socket, for a fake daemon as
``DOCKER_HOST``), reads each request whole (its body by ``Content-Length`` or chunked), records
it, and sends what ``respond(request)`` returns: bytes (the connection stays open), or
``(bytes, seconds)``: after the bytes, silence for ``seconds`` (``0``: none), then the
connection is cut without finishing the body. With ``tls`` (an ``ssl.SSLContext``) it speaks
https; without, a TLS ClientHello is answered by closing the connection, so a client that tries
https first (a registry ping) falls back to plain http at once.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["Answer", "HostileServer", "Request", "answer"]


@dataclass(frozen=True)
class Request:
    """One request as the server read it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = bytes | tuple[bytes, float]


def answer(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, length: int | None = None
) -> bytes:
    """An HTTP/1.1 response: ``Content-Length`` is ``length`` (default: the body's)."""
    lines = [f"HTTP/1.1 {status} Hostile"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Cut(Exception):
    """The peer went away, or sent something that is not HTTP."""


class HostileServer:
    """A one-thread-per-connection HTTP server on ``127.0.0.1`` (or ``unix_path``)."""

    def __init__(
        self,
        respond: Callable[[Request], Answer],
        *,
        unix_path: Path | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._respond = respond
        self._tls = tls
        if unix_path is None:
            self._listener = socket.create_server(("127.0.0.1", 0))
            self.port = int(self._listener.getsockname()[1])
        else:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(str(unix_path))
            self._listener.listen()
            self.port = 0
        self.requests: list[Request] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, as a registry host."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS) + ``path``."""
        return f"{'https' if self._tls else 'http'}://{self.host}{path}"

    def close(self) -> None:
        """Stop accepting; stalled connections end now."""
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self._tls is not None:
            try:
                conn = self._tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        reader = conn.makefile("rb")
        with conn, reader:
            while True:
                try:
                    request = self._read(reader)
                except (_Cut, OSError, ValueError):
                    return
                with self._lock:
                    self.requests.append(request)
                reply = self._respond(request)
                data, stall = reply if isinstance(reply, tuple) else (reply, None)
                try:
                    conn.sendall(data)
                except OSError:
                    return
                if stall is not None:
                    self._closed.wait(stall)
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
                    return

    @staticmethod
    def _read(reader: BinaryIO) -> Request:
        readline, read = reader.readline, reader.read
        first = read(1)
        if not first or first == b"\x16":  # gone, or a TLS handshake on the plain-http peer
            raise _Cut
        line = first + readline(65536)
        method, path, _version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := readline(65536)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int(readline(1024).split(b";")[0].strip() or b"0", 16):
                parts.append(read(size))
                readline(1024)
            readline(1024)
            body = b"".join(parts)
        else:
            body = read(int(headers.get("content-length", "0") or 0))
        return Request(method, path, headers, body)
