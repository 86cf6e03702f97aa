"""Keeping the cache tidy: what it holds (``cache ls``), ``prune`` and ``clear``.

Both only ever remove the cache's own layout (:data:`~cnbkit.cache.store.LAYOUT`): a cache
dir pointed at a folder that holds other things (``CNBKIT_CACHE_DIR=~/.cache``) loses nothing
that is not cnbkit's.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..redact import redact
from .store import LAYOUT, Cache

__all__ = ["blob_names", "clear", "listing", "prune"]

_STALE_TMP_SECONDS = 3600


def _size(path: Path) -> int:
    if not path.is_dir():
        return 0
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


_LAYER_GZIP = "layer-gzip:"  # the builder's compressed-layer entries (cnbkit.builder.compress)


def listing(cache: Cache) -> dict[str, Any]:
    """What the cache holds: its root, total size and blobs with the URLs that name them.

    A builder's compressed layer is indexed by its diff ID, not a URL: such a blob lists
    ``{"diff_id", "compressor"}`` under ``compressed_layers`` instead.
    """
    urls: dict[str, list[str]] = {}
    layers: dict[str, list[dict[str, str]]] = {}
    for path in sorted((cache.root / "index").glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(path.read_text())
            key = str(data["url"])
            if key.startswith(_LAYER_GZIP):  # layer-gzip:<lib>-<level>:<diff ID>
                compressor, _, diff_id = key[len(_LAYER_GZIP) :].partition(":")
                layers.setdefault(data["digest"], []).append({"diff_id": diff_id, "compressor": compressor})
            else:
                urls.setdefault(data["digest"], []).append(redact(key))
    blobs = []
    for path in sorted((cache.root / "blobs").glob("*/*")):
        digest = f"{path.parent.name}:{path.name}"
        blob: dict[str, Any] = {"digest": digest, "size": path.stat().st_size, "urls": urls.get(digest, [])}
        if digest in layers:
            blob["compressed_layers"] = layers[digest]
        blobs.append(blob)
    total = sum(_size(cache.root / name) for name in LAYOUT)
    return {"root": str(cache.root), "blobs": blobs, "size": total}


def blob_names(blob: dict[str, Any]) -> list[str]:
    """How ``cache ls`` names a blob of :func:`listing`: its URLs, or the layer it compresses."""
    layers = blob.get("compressed_layers", ())
    return [*blob["urls"], *(f"gzip ({c['compressor']}) of layer {c['diff_id']}" for c in layers)]


def prune(cache: Cache, older_than_days: float = 30.0) -> list[str]:
    """Remove leftovers and unused entries; return what was removed (as paths).

    Removed: stale temp files (over an hour old), index entries whose blob is gone, blobs
    no index entry names that were not used for ``older_than_days``, and lifecycles not
    used for ``older_than_days``.
    """
    root = cache.root
    removed: list[str] = []
    now = time.time()
    for path in (root / "tmp").glob("*"):
        if now - path.lstat().st_mtime > _STALE_TMP_SECONDS:
            removed.append(_remove(path))
    referenced = set()
    for path in (root / "index").glob("*.json"):
        entry = cache.lookup_path(path)
        if entry is None:
            removed.append(_remove(path))
        else:
            referenced.add(entry.digest)
    cutoff = now - older_than_days * 86400
    for path in (root / "blobs").glob("*/*"):
        digest = f"{path.parent.name}:{path.name}"
        st = path.stat()
        if digest not in referenced and st.st_atime < cutoff and st.st_mtime < cutoff:
            removed.append(_remove(path))
    for path in (root / "lifecycles").glob("*"):
        used = [p.stat().st_mtime for p in path.glob("*.json")]
        if not used or max(used) < cutoff:
            removed.append(_remove(path))
    return removed


def clear(cache: Cache) -> list[str]:
    """Remove everything the cache holds, and nothing else; return the paths removed."""
    return [_remove(cache.root / name) for name in LAYOUT if (cache.root / name).exists()]


def _remove(path: Path) -> str:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return str(path)
