"""Build test images in Python, no external tools: layer tars (whiteouts too) and OCI layouts.

Layers are deterministic (fixed mtimes, sorted as given) and gzip level 1, so digests are
stable; :func:`write_image` and :func:`write_index` store them with the
:class:`~cnbkit.transport.layout.LayoutWriter`, in OCI or Docker media types.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cnbkit.oci import mediatypes as mt
from cnbkit.oci.descriptor import Descriptor, platform_to_json
from cnbkit.oci.platform import Platform, parse_platform
from cnbkit.transport.layout import LayoutWriter

__all__ = ["Entry", "ImageSpec", "gzip_layer", "tar_layer", "whiteout", "write_image", "write_index"]

MTIME = 1_700_000_000
_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
}


@dataclass(frozen=True)
class Entry:
    """One tar entry: a file (``data``), a directory, a symlink or hardlink (``target``)."""

    name: str
    data: bytes = b""
    kind: str = "file"  # file, dir, symlink, hardlink
    mode: int = 0o755
    target: str = ""
    owner: tuple[int, int] = (0, 0)  # uid, gid


def whiteout(path: str) -> Entry:
    """The whiteout entry deleting ``path`` (``.wh..wh..opq`` for ``DIR/`` = opaque ``DIR``)."""
    if path.endswith("/"):
        return Entry(path + ".wh..wh..opq", mode=0o644)
    parent, _, base = path.rpartition("/")
    return Entry(f"{parent}/.wh.{base}" if parent else f".wh.{base}", mode=0o644)


def tar_layer(entries: Sequence[Entry]) -> bytes:
    """An uncompressed tar of ``entries``, in the given order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = _TYPES[entry.kind]
            info.mode, info.mtime = entry.mode, MTIME
            info.linkname = entry.target
            info.uid, info.gid = entry.owner
            info.size = len(entry.data) if entry.kind == "file" else 0
            archive.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    return buffer.getvalue()


def gzip_layer(entries: Sequence[Entry]) -> tuple[bytes, str]:
    """A gzip (level 1) layer of ``entries`` and its diff ID (the tar's digest)."""
    tar = tar_layer(entries)
    return gzip.compress(tar, compresslevel=1, mtime=0), "sha256:" + hashlib.sha256(tar).hexdigest()


@dataclass
class ImageSpec:
    """What to put in one image: layers (bottom first), platform, labels, config settings."""

    layers: Sequence[Sequence[Entry]]
    platform: str = "linux/amd64"
    labels: dict[str, str] = field(default_factory=dict)
    docker: bool = False  # Docker schema 2 media types instead of OCI
    env: Sequence[str] = ("PATH=/usr/local/bin:/usr/bin:/bin",)
    entrypoint: Sequence[str] | None = None
    user: str | None = None


def _image(writer: LayoutWriter, spec: ImageSpec) -> tuple[Descriptor, Platform]:
    platform = parse_platform(spec.platform)
    layer_type = mt.DOCKER_LAYER_GZIP if spec.docker else mt.OCI_LAYER_GZIP
    layers, diff_ids = [], []
    for entries in spec.layers:
        blob, diff_id = gzip_layer(entries)
        layers.append(Descriptor(layer_type, writer.write_blob(blob), len(blob)).to_json())
        diff_ids.append(diff_id)
    config: dict[str, object] = {
        "created": "2024-01-01T00:00:00Z",
        **platform_to_json(platform),
        "config": {"Env": list(spec.env), "Labels": dict(spec.labels), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }
    if spec.user is not None:
        config["config"]["User"] = spec.user  # type: ignore[index]
    if spec.entrypoint is not None:
        config["config"]["Entrypoint"] = list(spec.entrypoint)  # type: ignore[index]
    config_desc = writer.write_json(config, mt.DOCKER_CONFIG if spec.docker else mt.OCI_CONFIG)
    manifest_type = mt.DOCKER_MANIFEST if spec.docker else mt.OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config_desc.to_json(),
        "layers": layers,
    }
    return writer.write_json(manifest, manifest_type), platform


def write_image(path: Path, spec: ImageSpec, tag: str | None = "latest") -> Descriptor:
    """Write one single-platform image to the layout at ``path``, tagged ``tag``."""
    writer = LayoutWriter(path)
    descriptor, _ = _image(writer, spec)
    writer.add(descriptor, tag)
    return descriptor


def write_index(
    path: Path,
    specs: Sequence[ImageSpec],
    tag: str | None = "latest",
    *,
    docker: bool = False,
    attestation: bool = False,
) -> Descriptor:
    """Write a multi-platform index of ``specs`` (plus a BuildKit-style attestation entry)."""
    writer = LayoutWriter(path)
    entries = []
    for spec in specs:
        descriptor, platform = _image(writer, spec)
        entries.append({**descriptor.to_json(), "platform": platform_to_json(platform)})
    if attestation:
        subject = entries[0]["digest"]
        config = writer.write_json({}, "application/vnd.oci.empty.v1+json")
        body = b'{"_type":"https://in-toto.io/Statement/v0.1"}'
        statement = writer.write_blob(body)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": statement, "size": len(body)}],
        }
        att = writer.write_json(manifest, mt.OCI_MANIFEST).to_json()
        att["platform"] = {"architecture": "unknown", "os": "unknown"}
        att["annotations"] = {
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": subject,
        }
        entries.append(att)
    index_type = mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX
    index = writer.write_json({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}, index_type)
    writer.add(index, tag)
    return index
