"""Issue 22, item 6 and its acceptance: the 20-line ``docker save`` image source and exporter of
plugins.md, copied from the page, resolve a lifecycle from a skopeo-made archive, serve as the
build image and write a builder that ``skopeo inspect`` and ``docker load`` accept; and every
``image.X``/``layer.X`` the page tells exporters to use exists."""

from __future__ import annotations

import contextlib
import json
import re
import types
from collections.abc import Iterator
from pathlib import Path

import cnbkit

from tests.builder_support import build_image, builder_toml, buildpack
from tests.conftest import in_process
from tests.docker_images import lifecycle_spec
from tests.images import write_image
from tests.services.dockerd import Dockerd
from tests.services.skopeo import skopeo
from tests.test_docs import PLUGINS_MD, code_blocks, marked


def _plugin(marker: str) -> types.ModuleType:
    """The plugins.md block marked ``marker``, as a module (at most 20 lines of code)."""
    block = marked(code_blocks(PLUGINS_MD.read_text()), f"tests/test_doc_archives.py runs this {marker}")
    lines = [line for line in block.code.splitlines() if line.strip()]
    assert len(lines) <= 20, f"plugins.md line {block.line}: the {marker} is {len(lines)} lines, not 20"
    module = types.ModuleType(f"doc_{marker.replace(' ', '_')}")
    exec(compile(block.code, f"plugins.md:{block.line}", "exec"), module.__dict__)
    return module


@contextlib.contextmanager
def _registered() -> Iterator[None]:
    cnbkit.register_plugin(_plugin("image source"), "doc-images")
    cnbkit.register_plugin(_plugin("exporter"), "doc-exporter")
    try:
        yield
    finally:
        cnbkit.unregister_plugin("doc-images")
        cnbkit.unregister_plugin("doc-exporter")


def test_the_documented_plugins_make_a_builder_docker_loads(dockerd: Dockerd, tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    write_image(root / "lc-layout", lifecycle_spec())
    build_image(root / "build-layout")
    for name, ref in (("lc", "acme/lifecycle:1"), ("build", "acme/build:1")):
        skopeo(
            "copy",
            f"oci:{root / f'{name}-layout'}:latest",
            f"docker-archive:{root / f'{name}.tar'}:{ref}",
            workdir=root,
        )
    buildpack(root / "bp")
    config = builder_toml(
        root / "builder.toml",
        lifecycle='uri = "my-archive:lc.tar:acme/lifecycle:1"',
        image="my-archive:build.tar:acme/build:1",
    )
    out = tmp_path / "builder.tar"
    with _registered():
        code, stdout, stderr = in_process(
            "builder", "create", f"my-archive:{out}:acme/doc:1", "-c", str(config), "--json"
        )
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["written"].startswith(f"docker-archive:{out}:acme/doc:1 sha256:")
    assert any(f"of docker-archive:{root / 'lc.tar'}" in layer["source"] for layer in result["layers"])
    info = json.loads(skopeo("inspect", f"docker-archive:{out}", workdir=tmp_path).stdout)
    assert json.loads(info["Labels"]["io.buildpacks.builder.metadata"])["lifecycle"]["version"] == "0.21.0"
    dockerd.cli("load", "-i", str(out))
    dockerd.cli("image", "inspect", "acme/doc:1")


def test_every_image_and_layer_attribute_the_page_names_exists(tmp_path: Path) -> None:
    text = PLUGINS_MD.read_text()
    write_image(tmp_path / "layout", lifecycle_spec())
    image = cnbkit.open_layout(tmp_path / "layout", platform=cnbkit.parse_platform("linux/amd64"))
    layer = image.layers()[0]
    named = {"image": image, "layer": layer, "image.manifest": image.manifest, "image.config": image.config}
    for owner, attribute in re.findall(r"`(image(?:\.manifest|\.config)?|layer)\.(\w+)", text):
        assert hasattr(named[owner], attribute), f"plugins.md names {owner}.{attribute}, which does not exist"
    for attribute in ("media_type", "digest", "size", "annotations", "platform"):
        assert hasattr(layer.descriptor, attribute)
    assert isinstance(layer.descriptor, cnbkit.OciDescriptor)
    assert layer.descriptor.media_type in vars(cnbkit.media_types).values()
