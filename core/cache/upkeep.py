"""Keeping the cache tidy: what it holds (``cache ls``), ``prune`` and ``clear``.

Both only ever remove the cache's own files: names of the shapes cnbkit gives them, inside its
layout's folders (:data:`~cnbkit.cache.store.LAYOUT`). A cache dir pointed at a folder that
holds other things (``CNBKIT_CACHE_DIR=~/.cache``, where another tool may keep a ``tmp/`` or
an ``index/`` of its own) loses nothing that is not cnbkit's.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from pathlib import Path
from typing import Any

from ..redact import redact
from .records import KINDS, LayerGzip, Record
from .store import LAYOUT, OLD_FOLDERS, Cache

__all__ = ["blob_names", "clear", "listing", "prune"]

_STALE_TMP_SECONDS = 3600

# The names cnbkit writes in each folder of its layout (store.py, metadata.py, atomic.py).
_ATOMIC_TEMP = r"\.[^/]+\.\d+\.[0-9a-f]{8}\.part"  # write_atomically's temp beside a file
_OWN = {
    "blobs": re.compile(r"sha256|sha512"),
    "records": re.compile(rf"[a-z-]+\.[0-9a-f]{{64}}\.json|{_ATOMIC_TEMP}"),
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


def _records(cache: Cache) -> list[tuple[Path, Record | None]]:
    """Every record file with what it holds (``None``: another format, damaged, or naming a
    blob that is gone)."""
    found = []
    for path in _own(cache, "records"):
        kind = KINDS.get(path.name.split(".", 1)[0])
        if kind is not None:  # else a temp file being written
            found.append((path, cache.read_record(path, kind)))
    return found


def listing(cache: Cache) -> dict[str, Any]:
    """What the cache holds: its root, total size and blobs with the URLs that name them.

    A builder's compressed layer is named by its diff ID, not a URL: such a blob lists
    ``{"diff_id", "compressor"}`` under ``compressed_layers`` instead.
    """
    urls: dict[str, list[str]] = {}
    layers: dict[str, list[dict[str, str]]] = {}
    for _path, record in sorted(_records(cache), key=lambda found: found[0]):
        named = record.blob() if record is not None else None
        if isinstance(record, LayerGzip):
            named_by = {"diff_id": record.diff_id, "compressor": record.compressor}
            layers.setdefault(record.digest, []).append(named_by)
        elif record is not None and named is not None:
            urls.setdefault(named, []).append(redact(record.key))
    blobs = []
    for path in sorted(_own(cache, "blobs")):  # never another tool's files kept under blobs/
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

    Removed: stale temp files (over an hour old), records an older cnbkit wrote, records
    that are damaged or whose blob is gone, blobs no record names that were not used for
    ``older_than_days``, and lifecycles not used for ``older_than_days``.
    """
    removed: list[str] = []
    now = time.time()
    for path in _own(cache, "tmp"):
        if now - path.lstat().st_mtime > _STALE_TMP_SECONDS:
            removed.append(_remove(path))
    referenced = set()
    for path, record in _records(cache):
        if record is None:
            removed.append(_remove(path))
        elif (named := record.blob()) is not None:
            referenced.add(named)
    # An older cnbkit's untyped records are never read again.
    removed += [_remove(path) for folder in OLD_FOLDERS for path in _own(cache, folder)]
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
