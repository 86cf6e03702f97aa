"""A layer stream is verified when its last byte is delivered, not only when read past its end.

A consumer that reads exactly the descriptor's ``size`` bytes (``tarfile.addfile(info,
stream)`` does, so does any copy of a known length) must get the digest mismatch of a tampered
blob from that read, and a ``close()`` after it must not pass it over: from an OCI layout and
from a hostile registry behind a real TLS socket.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.options import Options

from tests.builder_support import build_image, builder_toml, buildpack
from tests.conftest import one_line_error, run_cli
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.images import Entry, ImageSpec, write_image
from tests.layout_registry import serve_layout
from tests.lifecycles import make_lifecycle
from tests.services.registry import Registry

LINUX = cnbkit.parse_platform("linux/amd64")


@pytest.fixture
def tampered(tmp_path: Path) -> Path:
    """A layout whose only layer has one byte changed (its size is unchanged)."""
    layout = tmp_path / "layout"
    payload = bytes(range(256)) * 1024
    write_image(layout, ImageSpec(layers=[[Entry("cnb/lifecycle/lifecycle", payload)]]))
    image = cnbkit.open_layout(layout, platform=LINUX)
    blob = layout / "blobs" / "sha256" / image.layers()[0].digest.partition(":")[2]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    return layout


def _layer_from(source: str, layout: Path, server: HTTPSServer, ca: Path, cache: Path) -> cnbkit.Layer:
    if source == "layout":
        return cnbkit.open_layout(layout, platform=LINUX).layers()[0]
    ref = serve_layout(server, layout)
    context = new_context(Options.build(cache_dir=cache, ca_cert=ca, platform=LINUX))
    return context.registry_image(ref).layers()[0]


def _exactly(stream: cnbkit.Readable, size: int) -> Iterator[bytes]:
    """``size`` bytes of ``stream``, never asking for more (as a copy of a known length)."""
    left = size
    while left:
        chunk = stream.read(min(left, 65536))
        assert chunk, "the stream ended early"
        left -= len(chunk)
        yield chunk


@pytest.mark.parametrize("source", ["layout", "registry"])
def test_reading_exactly_the_size_of_a_tampered_layer_fails(
    source: str, tampered: Path, https_server: HTTPSServer, ca_bundle: Path, cache_dir: Path
) -> None:
    layer = _layer_from(source, tampered, https_server, ca_bundle, cache_dir)
    stream = layer.open()
    try:
        with pytest.raises(cnbkit.DigestMismatchError, match=layer.digest):
            for _ in _exactly(stream, layer.size):
                pass
    finally:
        stream.close()  # type: ignore[attr-defined]
    assert not (cache_dir / "blobs" / "sha256" / layer.digest.partition(":")[2]).exists()
    assert not [p for p in (cache_dir / "tmp").glob("*") if p.is_file()]  # no .part left


@pytest.mark.parametrize("source", ["layout", "registry"])
def test_tarfile_addfile_of_a_tampered_layer_fails(
    source: str, tampered: Path, https_server: HTTPSServer, ca_bundle: Path, cache_dir: Path
) -> None:
    layer = _layer_from(source, tampered, https_server, ca_bundle, cache_dir)
    info = tarfile.TarInfo("layer.tar.gz")
    info.size = layer.size
    stream = layer.open()
    try:
        with tarfile.open(fileobj=io.BytesIO(), mode="w") as tar, pytest.raises(cnbkit.DigestMismatchError):
            tar.addfile(info, stream)  # type: ignore[arg-type]
    finally:
        stream.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", ["layout", "registry"])
def test_an_intact_layer_read_to_exactly_its_size_passes_and_is_cached(
    source: str, tmp_path: Path, https_server: HTTPSServer, ca_bundle: Path, cache_dir: Path
) -> None:
    layout = tmp_path / "intact"
    write_image(layout, ImageSpec(layers=[[Entry("cnb/lifecycle/lifecycle", b"x" * 300_000)]]))
    layer = _layer_from(source, layout, https_server, ca_bundle, cache_dir)
    stream = layer.open()
    try:
        data = b"".join(_exactly(stream, layer.size))
    finally:
        stream.close()  # type: ignore[attr-defined]
    assert data == (layout / "blobs" / "sha256" / layer.digest.partition(":")[2]).read_bytes()
    if source == "registry":  # verified at the last byte, so the download was committed
        assert (cache_dir / "blobs" / "sha256" / layer.digest.partition(":")[2]).read_bytes() == data


def test_pushing_a_builder_whose_build_image_layer_was_tampered_fails_naming_it(
    tmp_path: Path, registry: Registry
) -> None:
    # The push reads exactly each layer's size into its upload: the build image's layer comes
    # from a layout whose blob was changed since its manifest was written. Before, the tampered
    # bytes went to the registry, whose own check refused them (HTTP 400 DIGEST_INVALID).
    project = tmp_path / "project"
    project.mkdir()
    build_image(project / "build")
    image = cnbkit.open_layout(project / "build", platform=LINUX)
    layer = image.layers()[0]
    blob = project / "build" / "blobs" / "sha256" / layer.digest.partition(":")[2]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    make_lifecycle(project / "lifecycle.tgz")
    buildpack(project / "bp")
    config = builder_toml(
        project / "builder.toml", lifecycle='uri = "lifecycle.tgz"', image="oci:build:latest"
    )
    target = f"{registry.host}/{registry.unique_repo('tampered-build')}:v1"
    line = one_line_error(run_cli("builder", "create", f"docker://{target}", "--config", str(config)))
    assert f"layer {layer.digest} of oci:" in line and "content has digest" in line, line


@pytest.mark.parametrize("source", ["layout", "registry"])
def test_a_read_of_nothing_midway_is_not_the_end_of_a_layer(
    source: str, tmp_path: Path, https_server: HTTPSServer, ca_bundle: Path, cache_dir: Path
) -> None:
    # ``read(0)`` answers b"" without being the end: a stream that took it for the end would
    # check the hash of half a layer and call an intact layer tampered.
    layout = tmp_path / "intact"
    write_image(layout, ImageSpec(layers=[[Entry("cnb/lifecycle/lifecycle", b"y" * 300_000)]]))
    layer = _layer_from(source, layout, https_server, ca_bundle, cache_dir)
    stream = layer.open()
    try:
        first = stream.read(1000)
        assert stream.read(0) == b""
        rest = b"".join(iter(lambda: stream.read(65536), b""))
    finally:
        stream.close()  # type: ignore[attr-defined]
    assert first + rest == (layout / "blobs" / "sha256" / layer.digest.partition(":")[2]).read_bytes()
