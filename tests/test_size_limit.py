"""Issue 11, case 6: a total size bound (``--max-size``, ``CNBKIT_MAX_SIZE``, default 4 GiB) for
a layer and for a download, reached with one line and nothing kept."""

from __future__ import annotations

import gzip
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cnbkit
import pytest
from cnbkit.errors import UsageError
from cnbkit.options import DEFAULT_MAX_SIZE, Options, parse_size

from tests.conftest import digest_of, one_line_error, run_cli
from tests.docker_images import BASE_LAYERS, LABELS, lifecycle_layer, push_spec, to_daemon
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.images import Entry, ImageSpec, gzip_layer, tar_layer
from tests.lifecycles import lifecycle_entries, make_lifecycle, write_tar
from tests.services.dockerd import Dockerd
from tests.services.registry import Registry
from tests.test_bad_input import cache_files

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("text", "size"),
    [("1000", 1000), ("1K", 1024), ("512M", 512 * MIB), ("512MiB", 512 * MIB), ("4g", 4 * 1024**3),
     ("2GB", 2 * 1024**3), ("1T", 1024**4), (" 3 M ", 3 * MIB), ("7B", 7)],
)  # fmt: skip
def test_sizes_parse(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "-1", "1.5G", "4X", "G", "1e9", "99999999999999999999999"])
def test_bad_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="is not a size"):
        parse_size(text)


def test_the_option_and_its_environment_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNBKIT_MAX_SIZE", raising=False)
    assert Options.build().max_size == DEFAULT_MAX_SIZE == 4 * 1024**3
    monkeypatch.setenv("CNBKIT_MAX_SIZE", "512M")
    assert Options.build().max_size == 512 * MIB
    assert Options.build(max_size="1G").max_size == 1024**3  # the flag wins
    monkeypatch.setenv("CNBKIT_MAX_SIZE", "lots")
    with pytest.raises(UsageError, match="CNBKIT_MAX_SIZE='lots' is not a size"):
        Options.build()


def test_a_bad_max_size_exits_2(tmp_path: Path) -> None:
    result = run_cli("resolve", str(tmp_path / "l.tgz"), "--max-size", "4 elephants")
    assert result.returncode == 2 and "error: --max-size '4 elephants' is not a size" in result.stderr


# -- a layer: a small .tgz may not inflate into a huge one ----------------------------------------


def _bomb(path: Path, size: int) -> Path:
    """A valid lifecycle whose binary is ``size`` zero bytes: a few KB gzipped."""
    return write_tar(path, lifecycle_entries(binary=bytes(size)))


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_layer_over_the_limit_is_refused_and_nothing_is_kept(tmp_path: Path, how: str) -> None:
    archive = _bomb(tmp_path / "bomb.tgz", 3 * MIB)
    assert archive.stat().st_size < 64 * 1024
    out = tmp_path / "out"
    out.mkdir()
    args = ["resolve", str(archive), "--save", str(out / "layer.tar")]
    if how == "flag":
        result = run_cli(*args, "--max-size", "1M")
    else:
        result = run_cli(*args, env={"CNBKIT_MAX_SIZE": "1M"})
    line = one_line_error(result)
    assert line == (
        f"error: {archive}: the archive is larger than the limit of 1048576 bytes; nothing was kept; "
        "raise the limit with --max-size or CNBKIT_MAX_SIZE if it is expected"
    )
    assert list(out.iterdir()) == []
    assert cache_files(Path(os.environ["CNBKIT_CACHE_DIR"])) == []
    assert run_cli(*args, "--max-size", "8M", "-q").returncode == 0  # a higher limit lets it through


def test_the_python_api_takes_max_size(tmp_path: Path) -> None:
    archive = _bomb(tmp_path / "bomb.tgz", 3 * MIB)
    with pytest.raises(cnbkit.CnbkitError, match="larger than the limit of 2097152 bytes"):
        cnbkit.resolve_lifecycle(str(archive), save=tmp_path / "layer.tar", max_size="2M")
    assert not (tmp_path / "layer.tar").exists()
    assert cnbkit.resolve_lifecycle(str(archive), max_size=8 * MIB).version == "0.21.0"


# -- a download: the body is bounded, with or without a Content-Length ----------------------------


def test_a_download_with_a_length_over_the_limit(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    data = make_lifecycle(tmp_path / "l.tgz", binary=os.urandom(2 * MIB)).read_bytes()
    url = https_server.add("/big.tgz", data)
    line = one_line_error(run_cli("resolve", url, "--ca-cert", str(ca_bundle), "--max-size", "1M"))
    assert line.startswith(f"error: {url}: the download is larger than the limit of 1048576 bytes"), line
    assert cache_files(Path(os.environ["CNBKIT_CACHE_DIR"])) == []
    ok = run_cli("resolve", url, "--ca-cert", str(ca_bundle), "--max-size", "8M", "-q")
    assert ok.returncode == 0, ok.stderr


class EndlessServer:
    """A plain-HTTP server on loopback that answers every GET with an endless body of gzip
    data and no ``Content-Length`` (the body ends only when the client goes away)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        chunk = gzip.compress(bytes(64 * 1024))  # gzip members may follow each other forever
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n"
                )
                try:
                    while True:
                        conn.sendall(chunk)
                        self.sent += len(chunk)
                except OSError:
                    continue

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def endless() -> Iterator[EndlessServer]:
    server = EndlessServer()
    yield server
    server.close()


def test_an_endless_body_stops_at_the_limit(endless: EndlessServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{endless.port}/lifecycle.tgz"
    out = tmp_path / "out"
    out.mkdir()
    start = time.monotonic()
    result = run_cli("resolve", url, "--max-size", "1M", "--save", str(out / "layer.tar"), timeout=60)
    line = one_line_error(result)
    assert time.monotonic() - start < 30
    assert "the download is larger than the limit of 1048576 bytes" in line or (
        "the archive is larger than the limit of 1048576 bytes" in line
    ), line
    assert list(out.iterdir()) == []
    assert cache_files(Path(os.environ["CNBKIT_CACHE_DIR"])) == []
    assert endless.sent < 64 * MIB


# -- every byte source: a registry layer and a docker save stream obey the same bound ------------


def _big_layer_image(size: int) -> tuple[ImageSpec, list[Entry]]:
    """A lifecycle image over a base layer holding ``size`` random (incompressible) bytes."""
    big = [Entry("opt/", kind="dir"), Entry("opt/big.bin", os.urandom(size), mode=0o644)]
    return ImageSpec([big, *BASE_LAYERS, lifecycle_layer()], labels=dict(LABELS)), big


def test_a_registry_layer_over_the_limit_is_never_downloaded(registry: Registry, tmp_path: Path) -> None:
    spec, big = _big_layer_image(12 * MIB)
    ref = push_spec(spec, registry, registry.unique_repo("big"), "v1", tmp_path)
    blob = digest_of(gzip_layer(big)[0])
    mark = registry.mark()
    args = ("resolve", f"docker://{ref}", "--pull-policy", "always")
    line = one_line_error(run_cli(*args, "--max-size", "8M"))
    source = f"{ref.rpartition(':')[0]}@{blob}"
    assert line.startswith(f"error: {source}: the blob is larger than the limit of "), line
    assert "8388608 bytes; nothing was kept; raise the limit with --max-size" in line, line
    assert registry.log_requests("GET", rf"/v2/.+/blobs/{blob}", since=mark) == []
    cache = Path(os.environ["CNBKIT_CACHE_DIR"])
    assert not any(blob.partition(":")[2] in name for name in cache_files(cache))
    ok = run_cli(*args, "--max-size", "64M", "-q")
    assert ok.returncode == 0, ok.stderr


def test_a_docker_save_entry_over_the_limit_stops_the_save(dockerd: Dockerd, tmp_path: Path) -> None:
    spec, big = _big_layer_image(12 * MIB)
    to_daemon(spec, dockerd, "cnbkit-test/big-layer:v1", tmp_path)
    diff_id = digest_of(tar_layer(big))
    args = ("resolve", "docker://cnbkit-test/big-layer:v1", "--pull-policy", "never")
    line = one_line_error(run_cli(*args, "--max-size", "8M", env=dockerd.env))
    assert line.startswith("error: cnbkit-test/big-layer:v1 (Docker daemon at "), line
    assert "the layer is larger than the limit of 8388608 bytes; nothing was kept" in line, line
    cache = Path(os.environ["CNBKIT_CACHE_DIR"])
    assert not any(diff_id.partition(":")[2] in name for name in cache_files(cache))
    ok = run_cli(*args, "--max-size", "64M", "-q", env=dockerd.env)
    assert ok.returncode == 0, ok.stderr
