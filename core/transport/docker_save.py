"""The ``docker save`` format, read: ``manifest.json`` (which image, which config, which
layers) and the OCI manifest cnbkit writes for an image that came without one.

One reading for the Docker daemon's stream (:mod:`.daemon_image`) and a ``docker-archive:``
file (:mod:`.docker_archive`); the writing side is :func:`.daemon_load.save_stream`.
"""

from __future__ import annotations

import json
from typing import Any

from ..oci import mediatypes as mt
from ..oci._json import load_json
from ..oci.config import MAX_CONFIG_SIZE, ImageConfig
from ..oci.errors import ImageError, ImageNotFoundError
from ..oci.manifest import Manifest
from ..redact import listing, printable

__all__ = ["save_entry", "synthesize"]


def save_entry(data: bytes | None, source: str, ref: str | None = None) -> dict[str, Any]:
    """The ``manifest.json`` entry of the image: the one whose ``RepoTags`` hold ``ref``, or the
    only one when no ``ref`` is given.

    Raises:
        ImageError: no or a malformed ``manifest.json``, or several images and no ``ref``.
        ImageNotFoundError: no image is tagged ``ref``.
    """
    if data is None:
        raise ImageError(f"{source}: the saved image has no manifest.json")
    listed = load_json(data, source=f"{source}: manifest.json", limit=MAX_CONFIG_SIZE, error=ImageError)
    if not isinstance(listed, list) or not listed or not all(isinstance(e, dict) for e in listed):
        raise ImageError(f"{source}: manifest.json does not describe an image")
    tags = [tag for e in listed for tag in _tags(e)]
    shown = listing(tags) or "none"
    if ref is not None:
        wanted = {ref, f"{ref}:latest", f"docker.io/{ref}", f"docker.io/library/{ref}"}
        listed = [e for e in listed if wanted & set(_tags(e))][:1]
        if not listed:
            raise ImageNotFoundError(f"{source}: no image tagged {printable(ref)[:200]!r} (tags: {shown})")
    if len(listed) != 1:
        raise ImageError(f"{source} holds {len(listed)} images; name one by its tag (tags: {shown})")
    entry: dict[str, Any] = listed[0]
    if not isinstance(entry.get("Config"), str) or not isinstance(entry.get("Layers"), list):
        raise ImageError(f"{source}: manifest.json lacks Config or Layers")
    return entry


def _tags(entry: dict[str, Any]) -> list[str]:
    tags = entry.get("RepoTags")
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def synthesize(config: ImageConfig, layers: list[tuple[str, int, str]]) -> Manifest:
    """The OCI manifest of ``config`` and ``layers`` (digest, size, media type), canonical JSON,
    so the same image always gets the same digest."""
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": config.digest, "size": len(config.raw)},
        "layers": [{"mediaType": m, "digest": d, "size": s} for d, s, m in layers],
    }
    data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return Manifest.parse(data, mt.OCI_MANIFEST, source="the saved image's manifest")
