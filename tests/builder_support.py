"""Helpers for the builder tests: an image plugin written as a third party would write one,
builder.toml files, buildpacks and build images made on the spot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cnbkit
from cnbkit.transport.layout import open_layout, parse_layout_locator

from tests.images import Entry, ImageSpec, gzip_layer, write_image
from tests.lifecycles import make_lifecycle

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CNB_ENV = ("PATH=/usr/bin:/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=1001")


class LayoutImages:
    """Supplies images from OCI layouts for ``SCHEME:DIR[:TAG]``: a third party's image scheme,
    written as a plugin author would (``oci:`` itself is the built-in oci-layout plugin's)."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    @cnbkit.hookimpl
    def cnbkit_resolve_image(self, locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Image | None:
        if locator.scheme != self.scheme:
            return None
        where = parse_layout_locator(locator.rest.removeprefix("//"))
        path = Path(os.path.expanduser(where.path))
        if not path.is_absolute():
            path = locator.base_dir / path
        return open_layout(path, tag=where.tag, digest=where.digest, platform=context.platform)

    @cnbkit.hookimpl
    def cnbkit_resolvers(self) -> list[str]:
        return [f"{self.scheme}:DIR[:TAG] (images)"]


def build_image(
    path: Path,
    *,
    env: tuple[str, ...] = CNB_ENV,
    platform: str = "linux/amd64",
    labels: dict[str, str] | None = None,
    user: str | None = None,
    tag: str = "latest",
) -> Path:
    """A small build image in an OCI layout at ``path``, tagged ``tag``."""
    layer = [Entry("etc", kind="dir"), Entry("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mode=0o644)]
    spec = ImageSpec([layer], platform=platform, labels=labels or {"a.label": "kept"}, env=env, user=user)
    write_image(path, spec, tag)
    return path


def buildpack(root: Path, ident: str = "test/one", version: str = "1.0.0", api: str = "0.10") -> Path:
    """A buildpack directory: buildpack.toml and bin/detect, bin/build."""
    (root / "bin").mkdir(parents=True)
    (root / "buildpack.toml").write_text(
        f'api = "{api}"\n[buildpack]\n  id = "{ident}"\n  version = "{version}"\n  name = "One"\n'
    )
    for name in ("detect", "build"):
        (root / "bin" / name).write_text("#!/bin/sh\nexit 0\n")
        (root / "bin" / name).chmod(0o700)
    (root / "README").write_text("read me\n")
    return root


def builder_toml(
    path: Path,
    *,
    lifecycle: str = 'uri = "lifecycle"',
    image: str = "oci:build:latest",
    buildpacks: tuple[str, ...] = ("bp",),
    order: tuple[str, ...] = ("test/one",),
    extra: str = "",
) -> Path:
    """Write a builder.toml at ``path``."""
    parts = ['description = "test builder"', f"[lifecycle]\n{lifecycle}"]
    parts += [f'[[buildpacks]]\nuri = "{uri}"' for uri in buildpacks]
    for ident in order:
        parts.append(f'[[order]]\n[[order.group]]\nid = "{ident}"')
    parts.append(f'[build]\nimage = "{image}"')
    parts.append('[[run.images]]\nimage = "cnbs/sample-base-run:jammy"\nmirrors = ["mirror.example/run"]')
    parts.append(extra)
    path.write_text("\n\n".join(parts) + "\n")
    return path


def builder_project(root: Path, *, with_build_image: bool = True) -> Path:
    """``root`` holding builder.toml, a file lifecycle (``lifecycle.tgz``), the buildpack ``bp``
    and, unless told otherwise, the build image layout ``build``."""
    root.mkdir()
    make_lifecycle(root / "lifecycle.tgz")
    buildpack(root / "bp")
    if with_build_image:
        build_image(root / "build")
    builder_toml(root / "builder.toml", lifecycle='uri = "lifecycle.tgz"')
    return root


def package_entries(ident: str, version: str) -> list[Entry]:
    """The entries of buildpack ``ident@version`` as a buildpackage layer holds them."""
    root = f"cnb/buildpacks/{ident.replace('/', '_')}/{version}"
    toml = f'api = "0.10"\n[buildpack]\nid = "{ident}"\nversion = "{version}"\n'.encode()
    return [
        Entry(f"cnb/buildpacks/{ident.replace('/', '_')}/", kind="dir"),
        Entry(f"{root}/", kind="dir"),
        Entry(f"{root}/buildpack.toml", toml, mode=0o644),
        Entry(f"{root}/bin/", kind="dir"),
        Entry(f"{root}/bin/detect", b"#!/bin/sh\nexit 0\n"),
        Entry(f"{root}/bin/build", b"#!/bin/sh\nexit 0\n"),
    ]


def package_spec() -> ImageSpec:
    """A buildpackage image: main buildpack test/pkg@2.0.0 and test/dep@1.0.0, a layer each."""
    layers = [package_entries("test/dep", "1.0.0"), package_entries("test/pkg", "2.0.0")]
    diff = [gzip_layer(entries)[1] for entries in layers]
    modules = {
        "test/dep": {"1.0.0": {"api": "0.10", "layerDiffID": diff[0]}},
        "test/pkg": {
            "2.0.0": {"api": "0.10", "layerDiffID": diff[1], "name": "Package", "homepage": "https://x"}
        },
    }
    labels = {
        "io.buildpacks.buildpackage.metadata": json.dumps({"id": "test/pkg", "version": "2.0.0"}),
        "io.buildpacks.buildpack.layers": json.dumps(modules),
    }
    return ImageSpec(layers, labels=labels)
