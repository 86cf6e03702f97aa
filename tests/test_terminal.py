"""What reaches the user's terminal: hostile text is escaped, secrets masked, one line per
error, a closed pipe ends quietly, and the TLS hint names the CA bundle actually in effect.

The hostile server here is a raw socket server on loopback: it sends exactly the bytes a test
gives (a reason phrase with ESC and CR, a Location or ETag with terminal escapes), which no
well-behaved HTTP library would produce.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from tests.conftest import CLI, one_line_error, run_cli
from tests.hostile_server import HostileServer, Request
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.lifecycles import Entry, lifecycle_entries, make_lifecycle, write_tar

PATH = "/releases/lifecycle.tgz"
# What a hostile string tries: erase the line, move up, retitle the window, a C1 newline (NEL)
# and a C1 CSI, then a forged message. Escaped, none of these bytes reaches the terminal.
FORGED = "\x1b[2K\x1b[1A\x1b]0;owned\x07\x85\x9b2Kerror: forged"
RAW_CONTROLS = ("\x1b", "\x07", "\x85", "\x9b", "\r")

Respond = Callable[[int, bytes], bytes | tuple[bytes, bool]]


class RawServer:
    """A plain-HTTP loopback server that answers each request with the bytes ``respond``
    returns (given the request's number, from 0, and its head); ``(bytes, True)`` closes the
    connection right after sending them. It keeps the heads of the requests it got. The socket
    side is :class:`tests.hostile_server.HostileServer`'s."""

    def __init__(self, respond: Respond) -> None:
        self._respond = respond
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._server = HostileServer(self._answer)
        self.port = self._server.port

    def url(self, path: str) -> str:
        """``http://127.0.0.1:PORT`` + ``path``."""
        return self._server.url(path)

    def _answer(self, request: Request) -> bytes | tuple[bytes, float]:
        lines = [f"{request.method} {request.path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        head = "\r\n".join(lines).encode("latin-1")
        with self._lock:
            number = len(self.requests)
            self.requests.append(head)
        answer = self._respond(number, head)
        data, close = answer if isinstance(answer, tuple) else (answer, False)
        return (data, 0.0) if close else data  # no silence: the connection is cut at once

    def close(self) -> None:
        """Stop accepting connections."""
        self._server.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Respond], RawServer]]:
    """Make :class:`RawServer` instances, closed after the test."""
    servers: list[RawServer] = []

    def make(respond: Respond) -> RawServer:
        servers.append(RawServer(respond))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def assert_escaped(text: str) -> None:
    """No raw control character of :data:`FORGED` is in ``text``, and no line was forged."""
    for char in RAW_CONTROLS:
        assert char not in text, (char, text)
    assert not any(line.startswith("error: forged") for line in text.splitlines()), text


# -- 7. hostile text from servers and archives -------------------------------------------------


def test_a_hostile_reason_phrase_is_escaped(raw_server: Callable[[Respond], RawServer]) -> None:
    reason = ("Not Found\r" + FORGED).encode("latin-1")
    server = raw_server(lambda n, head: b"HTTP/1.1 404 " + reason + b"\r\nContent-Length: 0\r\n\r\n")
    result = run_cli("resolve", server.url(PATH))
    line = one_line_error(result)
    assert "HTTP 404 Not Found\\x0d\\x1b[2K" in line, line
    assert_escaped(result.stderr + result.stdout)


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_refused_redirect_location_is_escaped(
    encoding: str, raw_server: Callable[[Respond], RawServer]
) -> None:
    location = ("http://192.0.2.10/x" + FORGED).encode(encoding)
    server = raw_server(
        lambda n, head: b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
    )
    result = run_cli("resolve", server.url(PATH))
    line = one_line_error(result)
    if encoding == "utf-8":  # C1 controls as UTF-8: they reach the message, escaped
        assert "redirected to plain http (http://192.0.2.10/x\\x1b[2K" in line, line
        assert "\\x85\\x9b2Kerror: forged)" in line, line
    else:  # bytes that are not UTF-8 at all: refused as such
        assert line.endswith("redirected to a Location that is not UTF-8"), line
    assert_escaped(result.stderr + result.stdout)
    assert len(server.requests) == 1


def test_an_etag_that_changed_during_a_resume_is_escaped(
    raw_server: Callable[[Respond], RawServer], tmp_path: Path, cache_dir: Path
) -> None:
    body = make_lifecycle(tmp_path / "l.tgz", binary=os.urandom(200_000)).read_bytes()

    def respond(number: int, head: bytes) -> bytes | tuple[bytes, bool]:
        etag = b'"v1"' if number == 0 else b'"v2' + FORGED.encode("latin-1") + b'"'
        headers = b"HTTP/1.1 200 OK\r\nETag: " + etag + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
        if number == 0:  # half the body, then the connection breaks: cnbkit resumes
            return headers + body[: len(body) // 2], True
        return headers + body  # a 200 to the Range request, with another ETag: a new file

    server = raw_server(respond)
    result = run_cli("resolve", server.url(PATH))
    line = one_line_error(result)
    assert 'ETag "v1" became "v2\\x1b[2K' in line, line
    assert_escaped(result.stderr + result.stdout)
    assert b"range: bytes=" in server.requests[1].lower()
    assert not (cache_dir / "blobs").exists() or not any((cache_dir / "blobs").rglob("*/*"))


def test_a_hostile_entry_name_is_escaped(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "l.tgz",
        [*lifecycle_entries(), Entry("lifecycle/x" + FORGED, "symlink", linkname="../../etc/shadow")],
    )
    result = run_cli("resolve", str(archive))
    one_line_error(result)
    assert_escaped(result.stderr + result.stdout)


def _registry_error(number: int, head: bytes) -> bytes:
    """A registry (``/v2/`` answers) whose every other answer is a 404 with a hostile message."""
    if head.split(b" ")[1] == b"/v2/":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": FORGED}]}).encode()
    head = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.parametrize("source", ["a server's reason phrase", "a registry's error message"])
def test_the_debug_traceback_is_escaped_too(source: str, raw_server: Callable[[Respond], RawServer]) -> None:
    if source.startswith("a server"):
        reason = ("Not Found\r" + FORGED).encode("latin-1")
        server = raw_server(lambda n, head: b"HTTP/1.1 404 " + reason + b"\r\nContent-Length: 0\r\n\r\n")
        uri = server.url(PATH)
    else:
        server = raw_server(_registry_error)
        uri = f"docker://127.0.0.1:{server.port}/hostile/image@sha256:{'a' * 64}"  # a GET, no HEAD
    result = run_cli("--debug", "resolve", uri, "--pull-policy", "always")
    assert result.returncode == 1, result.stderr
    assert "Traceback (most recent call last):" in result.stderr  # the traceback is there ...
    assert "\\x1b[2K" in result.stderr  # ... with the hostile text in it, escaped
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] != []
    assert_escaped(result.stderr + result.stdout)


def test_a_hostile_url_does_not_reach_the_progress_bar(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    import fcntl
    import struct
    import termios

    content = make_lifecycle(tmp_path / "l.tgz", binary=os.urandom(1_000_000)).read_bytes()
    https_server.add("/x%1B%5D0;owned%07/lifecycle.tgz", content)  # how requests sends it
    https_server.slow("/x%1B%5D0;owned%07/lifecycle.tgz", 0.01)
    url = https_server.url("/x\x1b]0;owned\x07/lifecycle.tgz")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    proc = subprocess.Popen(
        [*CLI, "resolve", url, "--ca-cert", str(ca_bundle)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = bytearray()
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, bytes(seen)
    assert b"%|" in seen, bytes(seen)  # the bar was drawn
    assert b"\\x1b]0;owned\\x07" in seen  # with the URL escaped ...
    assert b"\x1b]0;owned" not in seen and b"\x07" not in seen  # ... never raw
    assert b"\x1b]0;owned" not in out


# -- 8. a password holding "@" -------------------------------------------------------------


def test_a_password_with_at_signs_is_masked_whole(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    content = make_lifecycle(tmp_path / "l.tgz").read_bytes()
    https_server.add(PATH, content)
    url = https_server.url(PATH, userinfo="alice:s3cr@tPW@x")
    secrets = ["s3cr", "tPW", "@x@", base64.b64encode(b"alice:s3cr@tPW@x").decode()]
    masked = https_server.url(PATH, userinfo="alice:***")

    human = run_cli("resolve", url, "--ca-cert", str(ca_bundle))
    assert human.returncode == 0, human.stderr
    assert f"{masked} (resolver: https)" in human.stdout
    as_json = run_cli("resolve", url, "--ca-cert", str(ca_bundle), "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["uri"] == masked
    # The whole password went to the server, as basic auth.
    assert https_server.log[0].headers["authorization"] == f"Basic {secrets[-1]}"
    failed = run_cli("resolve", url + ".missing", "--ca-cert", str(ca_bundle))
    assert "HTTP 404" in one_line_error(failed)
    for result in (human, as_json, failed):
        assert not any(s in result.stdout + result.stderr for s in secrets), result


# -- 15. a closed pipe, and the CA hint -----------------------------------------------------


@pytest.mark.parametrize("args", [[], ["--json"]], ids=["human", "json"])
def test_a_closed_stdout_ends_quietly_with_141(args: list[str], tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    assert run_cli("resolve", str(archive)).returncode == 0  # warm: the output comes at once
    # `cnbkit resolve ... | head -1` where head is already gone: a pipe with no reader.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*CLI, "resolve", str(archive), *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 141, result.stderr
    assert result.stderr == ""


def test_head_of_the_output_through_a_shell_pipe(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    command = " ".join(f"'{a}'" for a in [*CLI, "resolve", str(archive)])
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -1; echo status=$?"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Lifecycle 0.21.0"), result
    assert lines[-1] in ("status=0", "status=141"), result  # 141 when head left first
    assert result.stderr == ""


@pytest.mark.parametrize("winner", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "--ca-cert"])
def test_the_tls_hint_names_the_ca_bundle_in_effect(
    winner: str, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    https_server.add(PATH, make_lifecycle(tmp_path / "l.tgz").read_bytes())
    wrong = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong))
    # SSL_CERT_FILE holds the right CA, but loses to the winner, which holds another one.
    env = {"SSL_CERT_FILE": str(ca_bundle)}
    args = []
    if winner == "--ca-cert":
        args = ["--ca-cert", str(wrong)]
        env["REQUESTS_CA_BUNDLE"] = str(ca_bundle)  # loses to the flag
    else:
        env[winner] = str(wrong)
    line = one_line_error(run_cli("resolve", https_server.url(PATH), *args, env=env))
    assert "certificate verification failed" in line
    where = f"--ca-cert {wrong}" if winner == "--ca-cert" else f"{winner}={wrong}"
    assert f"the CA bundle in use is {where}" in line, line
    assert "SSL_CERT_FILE" not in line, line  # changing it would change nothing
    assert https_server.log == []


def test_the_tls_hint_without_any_bundle_suggests_one(https_server: HTTPSServer, tmp_path: Path) -> None:
    https_server.add(PATH, make_lifecycle(tmp_path / "l.tgz").read_bytes())
    line = one_line_error(run_cli("resolve", https_server.url(PATH)))
    assert "give the server's CA bundle with --ca-cert FILE or SSL_CERT_FILE" in line, line
