"""The HTTPS server the ``https`` benchmark downloads from, on 127.0.0.1 only.

Debian's nginx (``apt-get install nginx-light``) runs in the foreground with a config of our
own in a temp dir: ``listen 127.0.0.1:PORT ssl``, ``sendfile on``, ``etag on``, and an
access log in a fixed format that the benchmark reads to count requests and statuses. Where
nginx is not installed, :mod:`benchmarks.pyserver` (a threaded stdlib server with the same log
format) stands in, and the results say so.

The certificate comes from a throw-away CA made with ``trustme``; clients get ``CA`` through
``--ca-cert`` (cnbkit) and ``--cacert`` (curl).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .harness import REPO

__all__ = ["LogLine", "Server", "https_server"]

HOST = "127.0.0.1"  # never any other address

_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{user}
events {{
    worker_connections 64;
}}
http {{
    log_format bench '$request_method $uri $status $body_bytes_sent "$http_if_none_match"';
    access_log {tmp}/access.log bench;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    types {{
        application/gzip tgz;
    }}
    sendfile on;
    tcp_nopush on;
    etag on;
    gzip off;
    keepalive_timeout 10;
    server {{
        listen {host}:{port} ssl;
        server_name {host};
        ssl_certificate {tmp}/server.crt;
        ssl_certificate_key {tmp}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root {root};
        location / {{
        }}
    }}
}}
"""


@dataclass(frozen=True)
class LogLine:
    """One access-log line: method, path, status, body bytes."""

    method: str
    path: str
    status: int
    body_bytes: int


@dataclass
class Server:
    """A running HTTPS server.

    Attributes:
        kind: what serves (``nginx/1.22.1`` or the Python fallback), for the report.
        port: the port on 127.0.0.1.
        ca: the CA bundle clients must trust.
        access_log: one line per request (``METHOD PATH STATUS BYTES "IF-NONE-MATCH"``).
    """

    kind: str
    port: int
    ca: Path
    access_log: Path

    def url(self, name: str) -> str:
        """The URL of the file ``name`` in the served directory."""
        return f"https://{HOST}:{self.port}/{name}"

    def log_mark(self) -> int:
        """A position in the access log; :meth:`lines_since` reads what came after it."""
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def lines_since(self, mark: int, *, expect_at_least: int = 1, wait: float = 2.0) -> list[LogLine]:
        """The requests logged after ``mark``.

        A server logs a request just after answering it, so the line may land a moment after
        the client exited: wait (up to ``wait`` s, untimed) for ``expect_at_least`` lines,
        then once more briefly in case more follow.
        """
        deadline = time.monotonic() + wait
        lines = self._read(mark)
        while len(lines) < expect_at_least and time.monotonic() < deadline:
            time.sleep(0.01)
            lines = self._read(mark)
        time.sleep(0.05)
        return self._read(mark)

    def _read(self, mark: int) -> list[LogLine]:
        try:
            with open(self.access_log, "rb") as log:
                log.seek(mark)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return []
        lines = []
        for raw in text.splitlines():
            parts = raw.split(" ", 4)
            if len(parts) >= 4 and parts[2].isdigit():
                body = int(parts[3]) if parts[3].isdigit() else 0
                lines.append(LogLine(parts[0], parts[1], int(parts[2]), body))
        return lines


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"the HTTPS server exited with {proc.returncode}: {detail}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the HTTPS server did not listen on {HOST}:{port} within 15 s")


def _make_certs(tmp: Path) -> Path:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(HOST)
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    (tmp / "server.crt").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(tmp / "server.key"))
    return tmp / "ca.pem"


def nginx_binary() -> str | None:
    """The nginx executable, if installed (``/usr/sbin`` is often not on a user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def _nginx_version(binary: str) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ")


@contextlib.contextmanager
def https_server(root: Path, tmp: Path, *, prefer: str = "nginx") -> Iterator[Server]:
    """Serve the files in ``root`` over HTTPS on 127.0.0.1 until the block ends.

    Args:
        root: the directory served (the benchmark's ``work/``).
        tmp: an empty directory for the config, certificates, pid file and logs.
        prefer: ``nginx`` (falls back to Python if nginx is missing) or ``python``.
    """
    ca = _make_certs(tmp)
    port = _free_port()
    access_log = tmp / "access.log"
    binary = nginx_binary() if prefer == "nginx" else None
    if binary is not None:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        conf = tmp / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(tmp=tmp, user=user, host="127.0.0.1", port=port, root=root))
        argv = [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
        kind = _nginx_version(binary)
        error_log = tmp / "error.log"
    else:
        argv = [
            sys.executable,
            "-m",
            "benchmarks.pyserver",
            "--root",
            str(root),
            "--port",
            str(port),
            "--cert",
            str(tmp / "server.crt"),
            "--key",
            str(tmp / "server.key"),
            "--log",
            str(access_log),
        ]
        kind = "Python ThreadingHTTPServer + ssl (nginx not installed)"
        error_log = tmp / "pyserver.err"
    with open(tmp / "server.out", "wb") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
    try:
        _wait_listening(port, proc, error_log if error_log.exists() else tmp / "server.out")
        yield Server(kind=kind, port=port, ca=ca, access_log=access_log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
