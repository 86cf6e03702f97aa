"""The validated lifecycle as the cache keeps it: ``lifecycles/<key>/lifecycle.json``.

This module alone writes and reads that schema (the cache only knows the directory), so a
warm resolve rebuilds the :class:`Lifecycle` without reading the artifact again.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ..blob import Blob
from ..cache import Cache
from ..oci.platform import Platform
from .descriptor import APISet, Descriptor
from .model import Lifecycle, Rebuild, StoredLayer

__all__ = ["LAYER_NAME", "META_NAME", "cached_lifecycles", "lifecycle_dir", "load", "store"]

META_NAME = "lifecycle.json"
LAYER_NAME = "layer.tar"
_FORMAT = 3  # bump when this schema or the layer format changes


def lifecycle_dir(cache: Cache, digest: str, platform: Platform) -> Path:
    """The cache directory of the lifecycle from the artifact ``digest`` for ``platform``.

    The OS class is part of the key: the same archive validates differently for Windows
    (``.exe`` phases) and for everything else.
    """
    return cache.lifecycle_dir(f"{digest.partition(':')[2]}-{'windows' if platform.is_windows else 'unix'}")


def store(cache: Cache, lifecycle: Lifecycle, descriptor_text: bytes) -> Path:
    """Record ``lifecycle`` (its blob's digest is known) in the cache; return its directory."""
    assert lifecycle.blob.digest is not None
    directory = lifecycle_dir(cache, lifecycle.blob.digest, lifecycle.platform)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": _FORMAT,
        "version": lifecycle.version,
        "apis": lifecycle.apis.to_json(),
        "os": lifecycle.os,
        "binaries": list(lifecycle.binaries),
        "descriptor": descriptor_text.decode("utf-8"),
        "source": lifecycle.blob.source,
        "source_digest": lifecycle.blob.digest,
        "source_size": lifecycle.blob.size,
        "layer_digest": lifecycle.layer_digest,
        "layer_size": lifecycle.layer_size,
    }
    cache.write_json(directory / META_NAME, meta)
    return directory


def _apiset(data: dict[str, Any]) -> APISet:
    return APISet(tuple(data["supported"]), tuple(data["deprecated"]))


def from_meta(
    meta: dict[str, Any], blob: Blob, platform: Platform, layer: Path | None, rebuild: Rebuild
) -> Lifecycle:
    """The :class:`Lifecycle` a cache record describes (its blob: ``blob`` with the recorded
    digest and size)."""
    blob = blob.known_as(meta["source_digest"], meta["source_size"])
    apis = meta["apis"]
    descriptor = Descriptor(
        version=meta["version"],
        buildpack=_apiset(apis["buildpack"]),
        platform=_apiset(apis["platform"]),
        text=meta["descriptor"].encode(),
    )
    target = blob.platform or platform
    return Lifecycle.from_descriptor(
        descriptor,
        target,
        binaries=tuple(meta["binaries"]),
        blob=blob,
        layer_digest=meta["layer_digest"],
        layer_size=meta["layer_size"],
        stored=StoredLayer(layer, rebuild),
    )


def load(cache: Cache, blob: Blob, platform: Platform, rebuild: Rebuild) -> Lifecycle | None:
    """The lifecycle validated earlier from the same artifact, if the cache has it.

    Only possible when ``blob.digest`` is known before reading (a cached download, an image
    layer, a local file whose digest the cache remembered). A read-only cache serves too.
    """
    if blob.digest is None:
        return None
    directory = lifecycle_dir(cache, blob.digest, blob.platform or platform)
    try:
        meta = json.loads((directory / META_NAME).read_text())
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            return None
    except (OSError, ValueError):
        return None
    with contextlib.suppress(OSError):  # last use, for cache prune; a read-only cache is fine
        os.utime(directory / META_NAME)
    layer = directory / LAYER_NAME
    try:
        return from_meta(meta, blob, platform, layer if layer.is_file() else None, rebuild)
    except (KeyError, TypeError, ValueError):
        return None  # a damaged record is a cache miss, never a failure


def cached_lifecycles(cache: Cache) -> list[dict[str, Any]]:
    """The validated lifecycles the cache holds, for ``cnbkit cache ls``."""
    found = []
    for path in sorted((cache.root / "lifecycles").glob(f"*/{META_NAME}")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            meta = json.loads(path.read_text())
            layer = path.parent / LAYER_NAME
            found.append(
                {
                    "source_digest": meta["source_digest"],
                    "version": meta["version"],
                    "os": meta["os"],
                    "source": meta["source"],
                    "layer_digest": meta["layer_digest"],
                    "layer_size": layer.stat().st_size if layer.exists() else None,
                }
            )
    return found
