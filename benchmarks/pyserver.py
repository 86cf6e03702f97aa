"""The fallback HTTPS file server, used only where nginx is not installed.

``python -m benchmarks.pyserver --root DIR --port N --cert C --key K --log FILE`` serves the
regular files directly in ``DIR`` on 127.0.0.1 with ``ETag``/``If-None-Match`` (304) and
``Content-Length``, and logs each request in the nginx format the benchmark reads. It is much
slower than nginx at TLS bulk transfer, which makes every download look slower: the results
say which server was used.
"""

from __future__ import annotations

import argparse
import email.utils
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_CHUNK = 256 * 1024


def _make_handler(root: Path, log_path: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _log(self, status: int, sent: int) -> None:
            inm = self.headers.get("If-None-Match", "-")
            with lock, open(log_path, "a") as log:
                log.write(f'{self.command} {self.path.split("?")[0]} {status} {sent} "{inm}"\n')

        def _send(self, head_only: bool) -> None:
            name = self.path.split("?")[0].lstrip("/")
            path = root / name
            if "/" in name or not name or not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self._log(404, 0)
                return
            st = path.stat()
            etag = f'"{int(st.st_mtime):x}-{st.st_size:x}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                self._log(304, 0)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self.end_headers()
            sent = 0
            if not head_only:
                with open(path, "rb") as body:
                    while chunk := body.read(_CHUNK):
                        self.wfile.write(chunk)
                        sent += len(chunk)
            self._log(200, sent)

        def do_GET(self) -> None:
            """Send the file (or 304 when the ETag matches)."""
            self._send(head_only=False)

        def do_HEAD(self) -> None:
            """Send the headers only."""
            self._send(head_only=True)

        def log_message(self, format: str, *args: object) -> None:
            """Silence the stderr log: requests go to the access log."""

    return Handler


def main() -> None:
    """Serve until terminated."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--log", required=True, type=Path)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _make_handler(args.root, args.log))
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    args.log.touch()
    server.serve_forever()


if __name__ == "__main__":
    main()
