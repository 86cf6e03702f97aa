"""The ``cnbkit_resolve_image`` hook and ``context.resolve_image``, driven by a plugin written
the way a third party would write one: from the ``cnbkit`` face only."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.options import Options

from tests.images import Entry, ImageSpec, write_image


class _DirImage(cnbkit.Image):
    """An image stored as loose files: ``DIR/manifest.json``, ``DIR/blobs/<hex>``."""

    def __init__(self, root: Path, reference: str) -> None:
        manifest = cnbkit.Manifest.parse((root / "manifest.json").read_bytes(), source=reference)
        config_digest = manifest.config.digest
        config = cnbkit.ImageConfig.parse(self._read(root, config_digest), expected=config_digest)
        super().__init__(reference, manifest, config)
        self._root = root

    @staticmethod
    def _read(root: Path, digest: str) -> bytes:
        return (root / "blobs" / digest.split(":", 1)[1]).read_bytes()

    def open_blob(self, descriptor: Any) -> cnbkit.Readable:
        return (self._root / "blobs" / descriptor.digest.split(":", 1)[1]).open("rb")


class _DirImages:
    """Claims ``dirimage:NAME``, for images under a root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cnbkit.hookimpl
    def cnbkit_resolve_image(self, locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Image | None:
        if locator.scheme != "dirimage":
            return None
        return _DirImage(self.root / locator.rest, str(locator))

    @cnbkit.hookimpl
    def cnbkit_resolvers(self) -> list[str]:
        return ["dirimage:NAME"]


def _loose_image(tmp_path: Path, name: str) -> Path:
    """Write an OCI layout, then copy its one image out as loose files."""
    layout = tmp_path / "layout"
    manifest = write_image(layout, ImageSpec([[Entry("hello.txt", b"hello\n", mode=0o644)]]))
    root = tmp_path / "images" / name
    (root / "blobs").mkdir(parents=True)
    manifest_bytes = (layout / "blobs" / "sha256" / manifest.digest.split(":")[1]).read_bytes()
    (root / "manifest.json").write_bytes(manifest_bytes)
    for blob in (layout / "blobs" / "sha256").iterdir():
        (root / "blobs" / blob.name).write_bytes(blob.read_bytes())
    return root


@pytest.fixture
def image_plugin(tmp_path: Path) -> Any:
    plugin = _DirImages(tmp_path / "images")
    cnbkit.register_plugin(plugin, "dirimages")
    yield plugin
    cnbkit.unregister_plugin("dirimages")


def test_a_plugin_supplies_an_image_whose_layers_are_verified(
    tmp_path: Path, image_plugin: Any, cache_dir: Path
) -> None:
    root = _loose_image(tmp_path, "hello")
    context = new_context(Options.build(cache_dir=cache_dir))
    image = context.resolve_image("dirimage:hello")
    assert image.reference == "dirimage:hello"
    assert json.loads((root / "manifest.json").read_bytes())["schemaVersion"] == 2
    (layer,) = image.layers()
    stream = layer.open()
    while stream.read(65536):
        pass
    # A layer whose stored bytes were changed fails its digest check at the end of the stream.
    blob = root / "blobs" / layer.digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    stream = image.layers()[0].open()
    with pytest.raises(cnbkit.DigestMismatchError):
        while stream.read(65536):
            pass


class _Overlong:
    """A layer blob's true bytes, then ``tail`` more: once (``endless=False``) or forever."""

    def __init__(self, data: bytes, tail: bytes, *, endless: bool) -> None:
        self._data, self._tail, self._endless = data, tail, endless

    def read(self, size: int = -1, /) -> bytes:
        if self._data:
            # as a file does: the true bytes and what follows them in one read
            data, self._data = self._data + self._tail, b""
            return data
        return self._tail if self._endless else b""


class _OverlongImage(_DirImage):
    """A plugin image whose layer streams run past their descriptor's size."""

    endless = False

    def open_blob(self, descriptor: Any) -> cnbkit.Readable:
        data = (self._root / "blobs" / descriptor.digest.split(":", 1)[1]).read_bytes()
        return _Overlong(data, b"\0" * 65536, endless=self.endless)


@pytest.mark.parametrize("endless", [False, True], ids=["longer", "endless"])
def test_a_plugin_layer_longer_than_its_descriptor_is_refused_at_the_first_byte_past_it(
    tmp_path: Path, cache_dir: Path, endless: bool
) -> None:
    # The digest check alone would not do: an endless stream never reaches its end, and one
    # that delivers its true bytes and more in one read is only found out after the extra bytes.
    root = _loose_image(tmp_path, "long")

    class _Plugin(_DirImages):
        @cnbkit.hookimpl
        def cnbkit_resolve_image(
            self, locator: cnbkit.Locator, context: cnbkit.Context
        ) -> cnbkit.Image | None:
            image = _OverlongImage(root, str(locator)) if locator.scheme == "longimage" else None
            if image is not None:
                image.endless = endless
            return image

    cnbkit.register_plugin(_Plugin(tmp_path), "longimages")
    try:
        context = new_context(Options.build(cache_dir=cache_dir))
        (layer,) = context.resolve_image("longimage:x").layers()
        stream = layer.open()
        read = 0
        with pytest.raises(cnbkit.ImageError) as raised:
            while chunk := stream.read(65536):
                read += len(chunk)
                assert read < 64 * 1024 * 1024, "read 64 MiB of a layer without a limit"
        assert str(raised.value) == (
            f"layer {layer.digest} of longimage:x is larger than the {layer.size} bytes its descriptor gives"
        )
        assert read == 0  # the first read past the size fails, and delivers nothing
    finally:
        cnbkit.unregister_plugin("longimages")


def test_a_plugin_layer_shorter_than_its_descriptor_is_refused_at_its_end(
    tmp_path: Path, image_plugin: Any, cache_dir: Path
) -> None:
    root = _loose_image(tmp_path, "short")
    context = new_context(Options.build(cache_dir=cache_dir))
    (layer,) = context.resolve_image("dirimage:short").layers()
    blob = root / "blobs" / layer.digest.split(":")[1]
    blob.write_bytes(blob.read_bytes()[:-10])
    stream = layer.open()
    assert len(stream.read(65536)) == layer.size - 10
    with pytest.raises(cnbkit.ImageError) as raised:
        stream.read(65536)
    assert str(raised.value) == (
        f"layer {layer.digest} of dirimage:short is truncated: {layer.size - 10} of {layer.size} bytes; "
        "fetch it again"
    )


def test_a_plugin_layer_is_read_to_its_end_whole_or_in_pieces(
    tmp_path: Path, image_plugin: Any, cache_dir: Path
) -> None:
    # A layer of some kilobytes (sizes past the small integers Python shares), read to its end
    # in pieces and whole, then once more: its end is its end, not a truncation.
    layout = tmp_path / "layout"
    noise = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(200))  # gzip cannot shrink it
    manifest = write_image(layout, ImageSpec([[Entry("noise", noise, mode=0o644)]]))
    root = tmp_path / "images" / "big"
    (root / "blobs").mkdir(parents=True)
    (root / "manifest.json").write_bytes(
        (layout / "blobs" / "sha256" / manifest.digest.split(":")[1]).read_bytes()
    )
    for blob in (layout / "blobs" / "sha256").iterdir():
        (root / "blobs" / blob.name).write_bytes(blob.read_bytes())
    context = new_context(Options.build(cache_dir=cache_dir))
    (layer,) = context.resolve_image("dirimage:big").layers()
    assert layer.size > 4096 and layer.compression is cnbkit.oci.mediatypes.Compression.GZIP
    pieces = layer.open()
    data = b"".join(iter(lambda: pieces.read(1000), b""))
    assert len(data) == layer.size and pieces.read(1000) == b""
    whole = layer.open()
    assert whole.read() == data and whole.read() == b""
    short = root / "blobs" / layer.digest.split(":")[1]
    short.write_bytes(data[:-10])
    truncated = layer.open()
    assert len(truncated.read()) == layer.size - 10
    with pytest.raises(cnbkit.ImageError, match=f"is truncated: {layer.size - 10} of {layer.size} bytes"):
        truncated.read()
    bytewise = layer.open()
    with pytest.raises(cnbkit.ImageError, match="is truncated"):
        while bytewise.read(1):
            pass


def test_a_plugin_image_without_diff_ids_has_layers_of_unknown_diff_id(
    tmp_path: Path, image_plugin: Any, cache_dir: Path
) -> None:
    _edit(_loose_image(tmp_path, "noids"), _nothing, lambda c: c["rootfs"].update(diff_ids=[]))
    context = new_context(Options.build(cache_dir=cache_dir))
    (layer,) = context.resolve_image("dirimage:noids").layers()
    assert (layer.index, layer.diff_id) == (0, None)


def _edit(
    root: Path, manifest: Callable[[dict[str, Any]], None], config: Callable[[dict[str, Any]], None]
) -> None:
    """Rewrite a loose image's manifest (and its config blob, under its new digest)."""
    document = json.loads((root / "manifest.json").read_bytes())
    old = root / "blobs" / document["config"]["digest"].split(":")[1]
    config_doc = json.loads(old.read_bytes())
    config(config_doc)
    data = json.dumps(config_doc).encode()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / digest).write_bytes(data)
    document["config"].update(digest=f"sha256:{digest}", size=len(data))
    manifest(document)
    (root / "manifest.json").write_bytes(json.dumps(document).encode())


def _nothing(document: dict[str, Any]) -> None:
    pass


@pytest.mark.parametrize(
    ("manifest", "config", "says"),
    [
        (
            lambda m: m["config"].update(mediaType="application/vnd.cncf.helm.config.v1+json"),
            _nothing,
            "dirimage:bad is not a container image (its config is application/vnd.cncf.helm.config.v1+json)",
        ),
        (
            _nothing,
            lambda c: c["rootfs"]["diff_ids"].append(c["rootfs"]["diff_ids"][0]),
            "dirimage:bad: the config lists 2 layers, the manifest 1; the image is corrupt",
        ),
        (
            lambda m: m["layers"].append(m["layers"][0]),
            _nothing,
            "dirimage:bad: the config lists 1 layers, the manifest 2; the image is corrupt",
        ),
        (
            lambda m: m["layers"][0].update(mediaType="application/vnd.oci.image.config.v1+json"),
            _nothing,
            "has type 'application/vnd.oci.image.config.v1+json', not a layer type",
        ),
        (
            lambda m: m["layers"][0].update(mediaType="x/" + "y" * 300),
            _nothing,
            f"has type {'x/' + 'y' * 98!r}, not a layer type",  # quoted to 100 characters
        ),
    ],
    ids=["artifact", "more-diff-ids", "fewer-diff-ids", "layer-type", "long-type"],
)
def test_a_plugin_image_that_is_no_image_is_refused_when_made(
    tmp_path: Path,
    image_plugin: Any,
    cache_dir: Path,
    manifest: Callable[[dict[str, Any]], None],
    config: Callable[[dict[str, Any]], None],
    says: str,
) -> None:
    _edit(_loose_image(tmp_path, "bad"), manifest, config)
    context = new_context(Options.build(cache_dir=cache_dir))
    with pytest.raises(cnbkit.ManifestError) as raised:
        context.resolve_image("dirimage:bad")
    assert says in str(raised.value)


def test_no_image_source_is_a_clear_error_listing_the_claims(image_plugin: Any, cache_dir: Path) -> None:
    context = new_context(Options.build(cache_dir=cache_dir))
    with pytest.raises(
        cnbkit.NoResolverError, match=r"no plugin supplies an image for 'nope:x'.*dirimage:NAME"
    ):
        context.resolve_image("nope:x")


def test_a_plugin_returning_something_else_is_named(cache_dir: Path) -> None:
    class _Wrong:
        @cnbkit.hookimpl
        def cnbkit_resolve_image(self, locator: cnbkit.Locator, context: cnbkit.Context) -> Any:
            return "not an image"

    cnbkit.register_plugin(_Wrong(), "wrong")
    try:
        context = new_context(Options.build(cache_dir=cache_dir))
        with pytest.raises(
            cnbkit.PluginError, match=r"plugin 'wrong' returned str for x:y, expected a cnbkit.Image"
        ):
            context.resolve_image("x:y")
    finally:
        cnbkit.unregister_plugin("wrong")


def test_forwarding_image_references_in_a_loop_is_refused(cache_dir: Path) -> None:
    class _Loop:
        @cnbkit.hookimpl
        def cnbkit_resolve_image(
            self, locator: cnbkit.Locator, context: cnbkit.Context
        ) -> cnbkit.Image | None:
            other = "loopb:x" if locator.scheme == "loopa" else "loopa:x"
            return context.resolve_image(other)

    cnbkit.register_plugin(_Loop(), "loop")
    try:
        context = new_context(Options.build(cache_dir=cache_dir))
        with pytest.raises(cnbkit.CnbkitError, match=r"loop: loopa:x -> loopb:x -> loopa:x") as raised:
            context.resolve_image("loopa:x")
        # A plugin's configuration is at fault, not the command line: a failure, not a usage error.
        assert not isinstance(raised.value, cnbkit.UsageError)
    finally:
        cnbkit.unregister_plugin("loop")
