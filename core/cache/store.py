"""The content-addressed cache every resolver shares: blobs by digest, the URL index, stamps.

Layout under the cache root (``CNBKIT_CACHE_DIR``, else the XDG cache dir)::

    blobs/sha256/<hex>           artifacts as fetched, named by their digest
    index/<hex>.json             URL -> digest, ETag, Last-Modified (key: sha256 of the
                                 URL without userinfo, so no secret is ever part of a name)
    stamps/<hex>.json            local file -> digest, with its size, times and inode
    lifecycles/<key>/            a validated lifecycle: lifecycle.json and layer.tar
    tmp/                         files being written; renamed into place only when verified
    locks/                       one lock file per URL or blob being fetched

Nothing becomes visible under ``blobs/`` or ``lifecycles/`` before it is complete and its
digest verified: writes go to ``tmp/`` on the same filesystem and are renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..archive.atomic import write_atomically
from ..archive.digest import validate_digest
from ..archive.hashing import HashingFile
from ..errors import CnbkitError, WriteError
from ..redact import redact
from .locks import FileLock, Releasable

__all__ = ["LAYOUT", "Cache", "CacheEntry", "default_cache_dir"]

# The cache's own layout: the only names `cache clear` and `prune` ever remove.
LAYOUT = ("blobs", "index", "stamps", "lifecycles", "tmp", "locks")


def _hashed(key: str) -> str:
    # surrogateescape: a local path that is not UTF-8 (b"/tmp/\xff.tgz") is a key like any other
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def default_cache_dir() -> Path:
    """``$CNBKIT_CACHE_DIR`` if set, else the platform's user cache dir (``$XDG_CACHE_HOME``
    or ``~/.cache`` on Linux) plus ``cnbkit``."""
    configured = os.environ.get("CNBKIT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs  # small, but only needed here

    return Path(platformdirs.user_cache_dir("cnbkit", appauthor=False))


@dataclass
class CacheEntry:
    """One URL the index knows: what it pointed to when last fetched."""

    url: str
    digest: str
    size: int
    etag: str | None = None
    last_modified: str | None = None
    fetched: float = 0.0


class Cache:
    """The cache at ``root``; every method creates what it needs on first use.

    Args:
        root: the cache directory.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths -----------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives (the digest is validated first)."""
        algorithm, _, hexdigest = validate_digest(digest).partition(":")
        return self.root / "blobs" / algorithm / hexdigest

    def has_blob(self, digest: str) -> bool:
        """Whether a blob with ``digest`` is in the cache."""
        return self.blob_path(digest).is_file()

    def new_temp_path(self, suffix: str = "") -> Path:
        """A fresh, unused path in ``tmp/`` on the cache's filesystem."""
        tmp = self.root / "tmp"
        _mkdir(tmp)
        return tmp / f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"

    def writer(self, expected: str | None = None) -> HashingFile:
        """A new blob: hashed as it is written, renamed to ``blobs/`` by ``commit()`` once its
        digest is known (and equals ``expected``, when given)."""
        return HashingFile(self.new_temp_path(".part"), expected=expected, destination=self._blob_target)

    def _blob_target(self, digest: str) -> Path:
        path = self.blob_path(digest)
        _mkdir(path.parent)
        return path

    def acquire(self, key: str, what: str, notice: Callable[[str], None] | None = None) -> Releasable:
        """Take the inter-process lock ``key`` (any string); call ``release()`` when done.

        The lock may be released from another thread than the one that took it (a download
        finishes in a background thread). A process that dies releases its locks.

        Args:
            key: names the lock; it is hashed, so a URL with secrets is fine.
            what: what is being done, for the notice shown while waiting.
            notice: receives a one-line notice when another process holds the lock.
        """
        locks = self.root / "locks"
        with contextlib.suppress(OSError):  # a read-only cache: FileLock copes (no lock needed)
            locks.mkdir(parents=True, exist_ok=True)
        path = locks / f"{_hashed(key)}.lock"
        lock = FileLock(path)
        if not lock.acquire(blocking=False):
            if notice is not None:
                notice(f"waiting for another cnbkit process that is {what}")
            lock.acquire(blocking=True)
        return lock

    # -- the URL index ---------------------------------------------------------------------

    def _index_path(self, url: str, folder: str = "index") -> Path:
        return self.root / folder / f"{_hashed(url)}.json"

    def lookup(self, url: str) -> CacheEntry | None:
        """The index entry for ``url`` (a redacted URL) whose blob is still present."""
        return self.lookup_path(self._index_path(url))

    def remember(self, entry: CacheEntry) -> None:
        """Record (atomically) what ``entry.url`` pointed to.

        The entry is found again by ``entry.url`` (its key is a hash of the URL), but the URL
        stored in it is redacted: a presigned URL's signature or a ``token=`` never lands in
        the cache, nor in ``cnbkit cache ls``.
        """
        entry.fetched = entry.fetched or time.time()
        self.write_json(self._index_path(entry.url), {**entry.__dict__, "url": redact(entry.url)})

    def remember_stamp(self, entry: CacheEntry) -> None:
        """Record a local file's digest with its stat stamp (in ``etag``); no blob is kept."""
        self.write_json(self._index_path(entry.url, "stamps"), entry.__dict__)

    def lookup_stamp(self, key: str) -> CacheEntry | None:
        """The stat-stamp entry for a local file key, whatever blobs the cache holds."""
        try:
            return CacheEntry(**json.loads(self._index_path(key, "stamps").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write_json(self, path: Path, data: Any) -> None:
        """Write JSON to ``path`` atomically (temp file, then rename).

        Raises:
            WriteError: the directory or the file cannot be written (read-only, disk full).
        """
        _mkdir(path.parent)
        write_atomically(path, json.dumps(data, indent=1, sort_keys=True).encode())

    # -- validated lifecycles --------------------------------------------------------------

    def lifecycle_dir(self, key: str) -> Path:
        """The directory of the validated lifecycle ``key`` (``<hex>-<os class>``)."""
        return self.root / "lifecycles" / key

    def lookup_path(self, path: Path) -> CacheEntry | None:
        """The index entry stored at ``path``, if it is readable and its blob is present."""
        try:
            entry = CacheEntry(**json.loads(path.read_text()))
            return entry if self.has_blob(entry.digest) else None
        except (OSError, ValueError, TypeError, CnbkitError):
            return None


def _mkdir(path: Path) -> None:
    """``mkdir -p``, failing as a :class:`WriteError` that names the directory and the cause
    (a read-only cache, a full disk), never as an unexplained ``OSError``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError.from_os(path, exc) from None
