"""Keeping the cache tidy: what it holds (``cache ls``), ``prune`` and ``clear``.

Both only ever remove the cache's own files: names of the shapes cnbkit gives them, inside its
layout's folders (:data:`~cnbkit.cache.store.LAYOUT`). A cache dir pointed at a folder that
holds other things (``CNBKIT_CACHE_DIR=~/.cache``, where another tool may keep a ``tmp/`` or
an ``index/`` of its own) loses nothing that is not cnbkit's.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from ..redact import redact
from .store import LAYOUT, Cache

__all__ = ["blob_names", "clear", "listing", "prune"]

_STALE_TMP_SECONDS = 3600

# The names cnbkit writes in each folder of its layout (store.py, metadata.py, atomic.py).
_ATOMIC_TEMP = r"\.[^/]+\.\d+\.[0-9a-f]{8}\.part"  # write_atomically's temp beside a file
_OWN = {
    "blobs": re.compile(r"sha256|sha512"),
    "index": re.compile(rf"[0-9a-f]{{64}}\.json|{_ATOMIC_TEMP}"),
    "stamps": re.compile(rf"[0-9a-f]{{64}}\.json|{_ATOMIC_TEMP}"),
    "lifecycles": re.compile(r"[0-9a-f]{64}-(unix|windows)"),
    "tmp": re.compile(r"\d+-[0-9a-f]+[.\w-]*"),  # PID-HEX.suffix (new_temp_path)
    "locks": re.compile(r"[0-9a-f]{64}\.lock"),
}
_BLOB_NAME = {"sha256": re.compile(r"[0-9a-f]{64}"), "sha512": re.compile(r"[0-9a-f]{128}")}


def _own(cache: Cache, folder: str) -> list[Path]:
    """cnbkit's entries in ``folder`` of the layout (for ``blobs``: the blob files)."""
    directory = cache.root / folder
    if directory.is_symlink() or not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _OWN[folder].fullmatch(p.name)]
    if folder != "blobs":
        return found
    return [
        blob
        for algorithm in found
        if algorithm.is_dir() and not algorithm.is_symlink()
        for blob in algorithm.iterdir()
        if _BLOB_NAME[algorithm.name].fullmatch(blob.name)
    ]


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
    removed: list[str] = []
    now = time.time()
    for path in _own(cache, "tmp"):
        if now - path.lstat().st_mtime > _STALE_TMP_SECONDS:
            removed.append(_remove(path))
    referenced = set()
    for path in _own(cache, "index"):
        if not path.name.endswith(".json") or path.name.startswith("."):
            continue
        entry = cache.lookup_path(path)
        if entry is None:
            removed.append(_remove(path))
        else:
            referenced.add(entry.digest)
    cutoff = now - older_than_days * 86400
    for path in _own(cache, "blobs"):
        digest = f"{path.parent.name}:{path.name}"
        st = path.stat()
        if digest not in referenced and st.st_atime < cutoff and st.st_mtime < cutoff:
            removed.append(_remove(path))
    for path in _own(cache, "lifecycles"):
        used = [p.stat().st_mtime for p in path.glob("*.json")]
        if not used or max(used) < cutoff:
            removed.append(_remove(path))
    return removed


def clear(cache: Cache) -> list[str]:
    """Remove everything the cache holds, and nothing else; return the paths removed.

    A layout folder goes too once it is empty; one that holds anything foreign stays.
    """
    removed = [_remove(path) for name in LAYOUT for path in _own(cache, name)]
    for name in LAYOUT:
        directory = cache.root / name
        for sub in ("sha256", "sha512") if name == "blobs" else ():
            with contextlib.suppress(OSError):
                (directory / sub).rmdir()  # only when empty
        with contextlib.suppress(OSError):
            if not directory.is_symlink():
                directory.rmdir()
    return removed


def _remove(path: Path) -> str:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return str(path)
