"""The content-addressed cache every resolver shares.

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
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .archive.streams import validate_digest
from .errors import CnbkitError, DigestMismatchError
from .redact import redact

__all__ = ["BlobWriter", "Cache", "CacheEntry", "Releasable", "default_cache_dir"]

_STALE_TMP_SECONDS = 3600


class Releasable(Protocol):
    """A held lock."""

    def release(self) -> None:
        """Let the next process in."""


class _FileLock:
    """An exclusive lock on a file: ``flock`` where there is one, else the filelock package.

    ``flock`` costs nothing to import (filelock adds about 11 ms to every warm resolve) and is
    held by the open file, not by a thread, so any thread may release it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._fallback: Any = None

    def acquire(self, *, blocking: bool) -> bool:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            import filelock

            self._fallback = self._fallback or filelock.FileLock(str(self._path), thread_local=False)
            try:
                self._fallback.acquire(timeout=-1 if blocking else 0)
            except filelock.Timeout:
                return False
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the next process in."""
        if self._fallback is not None:
            self._fallback.release()
        elif self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock

    def __del__(self) -> None:
        # A blob dropped unopened takes its download's lock with it: never leave it held.
        self.release()


def default_cache_dir() -> Path:
    """``$CNBKIT_CACHE_DIR`` if set, else the platform's user cache dir (``$XDG_CACHE_HOME``
    or ``~/.cache`` on Linux) plus ``cnbkit``."""
    configured = os.environ.get("CNBKIT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    import platformdirs  # small, but only needed here

    return Path(platformdirs.user_cache_dir("cnbkit", appauthor=False))


class BlobWriter:
    """A blob being written: hashed as it is written, renamed into place on :meth:`commit`.

    Use it as a context manager; leaving the block without a commit deletes the temp file.
    """

    def __init__(self, cache: Cache, expected: str | None) -> None:
        self._cache = cache
        self._expected = expected
        self.path = cache.new_temp_path(".part")
        self.file: BinaryIO = open(self.path, "xb")  # noqa: SIM115 - closed in commit/abort
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append ``data`` and feed it to the hash."""
        self.file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def truncate(self) -> None:
        """Start over (a server ignored a range request and sent the whole body again)."""
        self.file.seek(0)
        self.file.truncate()
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of what was written so far."""
        return f"sha256:{self._hash.hexdigest()}"

    def commit(self) -> Path:
        """Verify the digest (if one was expected) and move the blob into place.

        Raises:
            DigestMismatchError: the content is not what was expected; nothing is kept.
        """
        self.file.close()
        digest = self.digest
        if self._expected is not None and digest != self._expected:
            self.abort()
            raise DigestMismatchError(f"content has digest {digest}, expected {self._expected}")
        target = self._cache.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)
        return target

    def abort(self) -> None:
        """Close and delete the temp file."""
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path.exists():
            self.abort()


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
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"

    def writer(self, expected: str | None = None) -> BlobWriter:
        """A :class:`BlobWriter` for a new blob, optionally pinned to ``expected``."""
        return BlobWriter(self, expected)

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
        locks.mkdir(parents=True, exist_ok=True)
        path = locks / f"{hashlib.sha256(key.encode()).hexdigest()}.lock"
        lock = _FileLock(path)
        if not lock.acquire(blocking=False):
            if notice is not None:
                notice(f"waiting for another cnbkit process that is {what}")
            lock.acquire(blocking=True)
        return lock

    # -- the URL index ---------------------------------------------------------------------

    def _index_path(self, url: str, folder: str = "index") -> Path:
        return self.root / folder / f"{hashlib.sha256(url.encode()).hexdigest()}.json"

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
        """Write JSON to ``path`` atomically (temp file, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.new_temp_path(".json")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)

    # -- validated lifecycles --------------------------------------------------------------

    def lifecycle_dir(self, key: str) -> Path:
        """The directory of the validated lifecycle ``key`` (``<hex>-<os class>``)."""
        return self.root / "lifecycles" / key

    # -- maintenance -----------------------------------------------------------------------

    def listing(self) -> dict[str, Any]:
        """What the cache holds, for ``cnbkit cache ls``."""
        urls: dict[str, list[str]] = {}
        for path in sorted((self.root / "index").glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                data = json.loads(path.read_text())
                urls.setdefault(data["digest"], []).append(redact(data["url"]))
        blobs = []
        for path in sorted((self.root / "blobs").glob("*/*")):
            digest = f"{path.parent.name}:{path.name}"
            blobs.append({"digest": digest, "size": path.stat().st_size, "urls": urls.get(digest, [])})
        lifecycles = []
        for path in sorted((self.root / "lifecycles").glob("*/lifecycle.json")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                meta = json.loads(path.read_text())
                layer = path.parent / "layer.tar"
                lifecycles.append(
                    {
                        "source_digest": meta["source_digest"],
                        "version": meta["version"],
                        "os": meta["os"],
                        "source": meta["source"],
                        "layer_digest": meta["layer_digest"],
                        "layer_size": layer.stat().st_size if layer.exists() else None,
                    }
                )
        total = (
            sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file()) if self.root.exists() else 0
        )
        return {"root": str(self.root), "blobs": blobs, "lifecycles": lifecycles, "size": total}

    def prune(self, older_than_days: float = 30.0) -> list[str]:
        """Remove leftovers and unused entries; return what was removed (as paths).

        Removed: stale temp files (over an hour old), index entries whose blob is gone, blobs
        no index entry names that were not used for ``older_than_days``, and lifecycles not
        used for ``older_than_days``.
        """
        removed: list[str] = []
        now = time.time()
        for path in (self.root / "tmp").glob("*"):
            if now - path.lstat().st_mtime > _STALE_TMP_SECONDS:
                _remove(path)
                removed.append(str(path))
        referenced = set()
        for path in (self.root / "index").glob("*.json"):
            entry = self.lookup_path(path)
            if entry is None:
                _remove(path)
                removed.append(str(path))
            else:
                referenced.add(entry.digest)
        cutoff = now - older_than_days * 86400
        for path in (self.root / "blobs").glob("*/*"):
            digest = f"{path.parent.name}:{path.name}"
            if digest not in referenced and path.stat().st_atime < cutoff and path.stat().st_mtime < cutoff:
                _remove(path)
                removed.append(str(path))
        for path in (self.root / "lifecycles").glob("*"):
            meta = path / "lifecycle.json"
            if not meta.exists() or meta.stat().st_mtime < cutoff:
                _remove(path)
                removed.append(str(path))
        return removed

    def lookup_path(self, path: Path) -> CacheEntry | None:
        """The index entry stored at ``path``, if it is readable and its blob is present."""
        try:
            entry = CacheEntry(**json.loads(path.read_text()))
            return entry if self.has_blob(entry.digest) else None
        except (OSError, ValueError, TypeError, CnbkitError):
            return None

    def clear(self) -> None:
        """Remove the whole cache."""
        if self.root.exists():
            shutil.rmtree(self.root)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
