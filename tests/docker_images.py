"""Lifecycle images for the docker resolver's tests: built as OCI layouts (tests/images.py),
put into the test registries with skopeo, or into dockerd with ``skopeo copy ... docker-daemon:``.

The official lifecycle image's shape: distroless-like base layers, then one layer holding
``/cnb/lifecycle.toml`` and ``/cnb/lifecycle/...`` with leading slashes, and the labels
``io.buildpacks.lifecycle.version`` / ``io.buildpacks.lifecycle.apis``.
"""

from __future__ import annotations

import json
from pathlib import Path

from cnbkit.archive.compression import decompressed
from cnbkit.archive.streams import close_stream
from cnbkit.oci.image import Image

from tests.images import Entry, ImageSpec, write_image, write_index
from tests.lifecycles import BUILDPACK_APIS, PLATFORM_APIS, lifecycle_entries
from tests.services.dockerd import Dockerd
from tests.services.registry import Registry
from tests.services.skopeo import copy, skopeo

__all__ = [
    "BASE_LAYERS",
    "LABELS",
    "lifecycle_layer",
    "lifecycle_spec",
    "push_index",
    "push_spec",
    "read_layers",
    "to_daemon",
]

LABELS = {
    "io.buildpacks.lifecycle.version": "0.21.0",
    "io.buildpacks.lifecycle.apis": json.dumps(
        {
            "buildpack": {"deprecated": [], "supported": BUILDPACK_APIS},
            "platform": {"deprecated": [], "supported": PLATFORM_APIS},
        }
    ),
}

# What distroless puts below the lifecycle: a passwd file, CA certificates, a tz database.
BASE_LAYERS: list[list[Entry]] = [
    [
        Entry("etc/", kind="dir"),
        Entry("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n", mode=0o644),
        Entry("etc/group", b"root:x:0:\n", mode=0o644),
    ],
    [Entry("etc/ssl/", kind="dir"), Entry("etc/ssl/certs/ca-certificates.crt", b"-----BEGIN...\n" * 50)],
]


def lifecycle_layer(*, binary: bytes = b"#!/bin/sh\necho lifecycle\n", marker: str = "") -> list[Entry]:
    """The lifecycle as the official image's top layer: ``/cnb/...`` names, phases as symlinks."""
    entries = []
    for e in lifecycle_entries(shape="image", leading="/", binary=binary + marker.encode()):
        kind = {"file": "file", "dir": "dir", "symlink": "symlink"}[e.kind]
        name = e.name + "/" if kind == "dir" else e.name
        mode = e.mode if e.mode is not None else (0o755 if kind != "file" else 0o644)
        entries.append(Entry(name, e.data, kind=kind, mode=mode, target=e.linkname))
    return entries


def lifecycle_spec(platform: str = "linux/amd64", *, marker: str = "") -> ImageSpec:
    """An official-shaped lifecycle image for ``platform`` (``marker`` tells platforms apart)."""
    return ImageSpec(
        [*BASE_LAYERS, lifecycle_layer(marker=marker or platform)],
        platform=platform,
        labels=dict(LABELS),
    )


def push_spec(spec: ImageSpec, registry: Registry, repo: str, tag: str, work: Path, **kwargs: object) -> str:
    """Write ``spec`` as a layout and ``skopeo copy`` it to ``registry``; return its reference."""
    layout = work / f"layout-{repo}-{tag}"
    write_image(layout, spec, tag)
    return copy(f"oci:{layout}:{tag}", registry, repo, tag, workdir=work, **kwargs)  # type: ignore[arg-type]


def push_index(
    specs: list[ImageSpec], registry: Registry, repo: str, tag: str, work: Path, *, docker: bool = False
) -> str:
    """A multi-platform index pushed with ``skopeo copy --all``: OCI with a BuildKit-style
    attestation entry, or (``docker``) converted by skopeo to a Docker manifest list of schema 2
    manifests (skopeo's oci: transport reads no Docker types, so the conversion is skopeo's)."""
    layout = work / f"layout-{repo}-{tag}"
    write_index(layout, specs, tag, attestation=not docker)
    extra = ("--all", "--format", "v2s2") if docker else ("--all",)
    return copy(f"oci:{layout}:{tag}", registry, repo, tag, workdir=work, extra=extra)


def to_daemon(spec: ImageSpec, dockerd: Dockerd, name: str, work: Path) -> None:
    """Put ``spec`` into ``dockerd`` only (``skopeo copy oci:... docker-daemon:NAME``)."""
    layout = work / f"layout-daemon-{name.replace('/', '_').replace(':', '_')}"
    write_image(layout, spec, "t")
    skopeo(
        "copy", f"--dest-daemon-host={dockerd.host}", f"oci:{layout}:t", f"docker-daemon:{name}", workdir=work
    )


def read_layers(image: Image) -> list[bytes]:
    """Every layer of ``image`` read through its verified stream, uncompressed."""
    out = []
    for layer in image.layers():
        raw = layer.open()
        stream = decompressed(raw, layer.source)
        parts = []
        try:
            while chunk := stream.read(65536):
                parts.append(chunk)
        finally:
            close_stream(stream)
        out.append(b"".join(parts))
    return out
