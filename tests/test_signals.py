"""SIGINT and SIGTERM stop ``cnbkit resolve`` promptly, whatever the server does, and leave no
file behind: not in the cache, not beside ``--save``. Exit codes 130 and 143.

Each test runs the CLI as a subprocess against a real TLS server on loopback that stalls (sends
nothing, with a read timeout of a minute), trickles, or cuts the body and then sits on the
resume, so only a prompt, clean interruption passes: an https download, and a registry layer
(an OCI layout served as a registry by the same server).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CLI
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.images import Entry, ImageSpec, write_image
from tests.layout_registry import blob_path, serve_layout
from tests.lifecycles import big_lifecycle

PATH = "/releases/lifecycle.tgz"
SIZE = 2 * 1024 * 1024
# Signal to exit takes 0.05-0.6 s on an idle two-core machine (the error line comes within
# 30 ms; the rest is the interpreter's own finalization; a producer that no socket shutdown can
# wake, a resume waiting for its headers, is abandoned after half a second). The old behaviour
# waited out the one-minute read timeout, then five seconds for a stuck resume.
PROMPT_SECONDS = 2.0


def leftovers(cache_dir: Path) -> list[str]:
    """Every file in the cache but lock files (empty, kept on purpose: see cache/locks.py)."""
    return sorted(
        str(p.relative_to(cache_dir))
        for p in cache_dir.rglob("*")
        if p.is_file() and p.parent.name != "locks"
    )


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def _part_size(cache_dir: Path) -> int:
    sizes = [p.stat().st_size for p in (cache_dir / "tmp").glob("*.part") if p.exists()]
    return max(sizes, default=0)


def stop_with(proc: subprocess.Popen[str], signum: int, ready: Callable[[], None]) -> None:
    """Once ``ready()`` returns, send ``signum`` to the CLI; check that it stopped promptly
    with 128 + ``signum`` and its one line, and printed nothing on stdout."""
    try:
        ready()
        assert proc.poll() is None, proc.communicate()
        start = time.monotonic()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=20)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, (proc.returncode, stderr)
    assert elapsed < PROMPT_SECONDS, f"took {elapsed:.1f} s to stop"
    expected = "error: interrupted" if signum == signal.SIGINT else "error: terminated (SIGTERM)"
    assert stderr.splitlines() == [expected], stderr
    assert stdout == ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("where", ["before the headers", "in the body", "cut, then the resume stalls"])
def test_a_signal_stops_a_stalled_download_at_once_and_cleans_up(
    where: str,
    signum: int,
    https_server: HTTPSServer,
    ca_bundle: Path,
    tmp_path: Path,
    cache_dir: Path,
) -> None:
    content = big_lifecycle(tmp_path / "big.tgz", SIZE).read_bytes()
    https_server.add(PATH, content)
    in_body = where == "in the body"
    # Half the body (or nothing at all), then silence for a minute: far beyond the test.
    if where.startswith("cut"):
        _cut_then_stall(https_server, PATH)
    else:
        https_server.stall(PATH, 60, after=len(content) // 2 if in_body else None)
    out = tmp_path / "out"
    out.mkdir()
    args = ["resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle), "--timeout", "60"]
    proc = subprocess.Popen(
        [*CLI, *args, "--save", str(out / "layer.tar")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def ready() -> None:
        if in_body:
            # The body reached the cache's tmp/ and the layer is being staged beside --save.
            wait_for(lambda: _part_size(cache_dir) >= len(content) // 4, "half the body in tmp/")
            wait_for(lambda: any(out.iterdir()), "the staged layer beside --save")
        elif where.startswith("cut"):
            wait_for(lambda: _part_size(cache_dir) > 0, "the first bytes in tmp/")
            _stall_the_resume(https_server, PATH)
            time.sleep(0.5)  # the resume is out; the server sits on it
        else:
            wait_for(lambda: any((cache_dir / "locks").glob("*.lock")), "the download's lock")
            time.sleep(0.5)  # the request is out; the server sits on it

    stop_with(proc, signum, ready)
    assert list(out.iterdir()) == []  # no ..layer.tar.PID.*.part beside --save
    assert leftovers(cache_dir) == []  # no tmp/*.part, no half blob, no index entry


def test_a_signal_during_a_slow_download_stops_it_too(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = big_lifecycle(tmp_path / "big.tgz", SIZE).read_bytes()
    https_server.add(PATH, content)
    https_server.slow(PATH, 0.5)  # 64 KiB every half second: a minute for the whole body
    proc = subprocess.Popen(
        [*CLI, "resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop_with(
        proc, signal.SIGTERM, lambda: wait_for(lambda: _part_size(cache_dir) > 0, "the first bytes in tmp/")
    )
    assert leftovers(cache_dir) == []
    # Interrupted means not retried: one request, never a resume.
    assert len(https_server.requests_for(PATH)) <= 1


def _cut_then_stall(server: HTTPSServer, path: str) -> None:
    """The body of ``path`` comes slowly and breaks after 256 KiB (the client resumes)."""
    server.slow(path, 0.2)
    server.drop(path, 256 * 1024)


def _stall_the_resume(server: HTTPSServer, path: str) -> None:
    """Every later request for ``path`` (the resume) gets no answer for a minute."""
    server.stall(path, 60)
    wait_for(lambda: bool(server.requests_for(path)), "the first response cut")


def _registry_image(tmp_path: Path, server: HTTPSServer) -> tuple[str, str]:
    """A one-layer image (2 MiB under /cnb/lifecycle) served by ``server`` as a registry;
    the reference and the layer blob's path."""
    layer = [Entry("cnb/lifecycle/lifecycle", os.urandom(SIZE))]
    write_image(tmp_path / "layout", ImageSpec(layers=[layer]))
    ref = serve_layout(server, tmp_path / "layout")
    manifest = json.loads(server.content(f"/v2/hostile/image/manifests/{ref.rpartition('@')[2]}") or b"")
    return ref, blob_path("hostile/image", manifest["layers"][0]["digest"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("how", ["stalled", "slow", "trickling", "cut, then the resume stalls"])
def test_a_signal_stops_a_registry_layer_at_once_and_cleans_up(
    how: str, signum: int, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    ref, layer = _registry_image(tmp_path, https_server)
    if how == "stalled":
        https_server.stall(layer, 60, after=SIZE // 4)  # a quarter, then a minute of silence
    elif how == "slow":
        https_server.slow(layer, 0.5)  # 64 KiB every half second: a quarter of a minute
    elif how == "trickling":
        https_server.slow(layer, 0.05, 512)  # 10 KiB/s: a read of 128 KiB never fills
    else:
        _cut_then_stall(https_server, layer)
    out = tmp_path / "out"
    out.mkdir()
    args = ["resolve", f"docker://{ref}", "--ca-cert", str(ca_bundle), "--timeout", "60"]
    args += ["--save", str(out / "layer.tar")]
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ready() -> None:
        wait_for(lambda: any((cache_dir / "tmp").glob("*.part")), "the layer's download under way")
        if how.startswith("cut"):
            wait_for(lambda: _part_size(cache_dir) >= 64 * 1024, "the layer's first bytes in tmp/")
            _stall_the_resume(https_server, layer)
        time.sleep(0.5)  # its first bytes are on the way (or the resume waits for its headers)

    stop_with(proc, signum, ready)
    assert list((cache_dir / "tmp").iterdir()) == []  # no *.part
    assert list(out.iterdir()) == []  # nothing staged beside --save
    # The manifest and config were complete and verified, and stay cached; the layer does not.
    assert not [p for p in leftovers(cache_dir) if p.endswith(layer.rpartition(":")[2])]
    assert len(https_server.requests_for(layer)) <= 1  # interrupted means never resumed
