"""The content-addressed cache every resolver shares: blobs by digest, typed records.

Layout under the cache root (``CNBKIT_CACHE_DIR``, else the XDG cache dir)::

    blobs/sha256/<hex>           artifacts as fetched, named by their digest
    records/<kind>.<hex>.json    typed records (cnbkit.cache.records): what a URL answered, a
                                 local file's stamp, a tag's digest...; <hex> is the sha256 of
                                 the key, so no secret is ever part of a name
    lifecycles/<key>/            a validated lifecycle: lifecycle.json and layer.tar
    tmp/                         files being written; renamed into place only when verified
    locks/                       one lock file per URL or blob being fetched
    index/, stamps/              an older cnbkit's untyped records: never read, removed by prune

Nothing becomes visible under ``blobs/`` or ``lifecycles/`` before it is complete and its
digest verified: writes go to ``tmp/`` on the same filesystem and are renamed into place.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..archive.atomic import write_atomically
from ..archive.digest import validate_digest
from ..archive.hashing import HashingFile
from ..errors import CnbkitError, WriteError
from ..redact import redact
from .locks import FileLock, Releasable
from .records import R, Record, UrlAnswer, decode, encode, kind_name

__all__ = ["LAYOUT", "OLD_FOLDERS", "Cache", "default_cache_dir"]

# Every temp path this process was given. A write ends by renaming or removing its file; one a
# thread abandoned at an interrupt (a builder's second target's download, on a daemon thread) is
# removed at exit, so an interrupted run leaves nothing in tmp/.
_TEMPS: set[Path] = set()


def _sweep() -> None:
    for path in _TEMPS:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


# The cache's own layout: the only names `cache clear` and `prune` ever remove.
LAYOUT = ("blobs", "records", "lifecycles", "tmp", "locks", "index", "stamps")
# Folders of the untyped records before cnbkit.cache.records: never read again.
OLD_FOLDERS = ("index", "stamps")


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
        """A fresh, unused path in ``tmp/`` on the cache's filesystem; removed when the process
        exits if it is still there (:func:`_sweep`)."""
        tmp = self.root / "tmp"
        _mkdir(tmp)
        path = tmp / f"{os.getpid()}-{uuid.uuid4().hex}{suffix}"
        if not _TEMPS:
            atexit.register(_sweep)
        _TEMPS.add(path)
        return path

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

    # -- typed records ---------------------------------------------------------------------

    def record_path(self, kind: type[Record], key: str) -> Path:
        """Where the record of ``kind`` found by ``key`` lives."""
        return self.root / "records" / f"{kind_name(kind)}.{_hashed(key)}.json"

    def remember(self, record: Record) -> None:
        """Record (atomically) ``record``, found again by its kind and key.

        A URL's record is found by the whole URL, but the URL stored in it is redacted: a
        presigned URL's signature or a ``token=`` never lands in the cache, nor in ``cache ls``.

        Raises:
            WriteError: the cache cannot be written.
        """
        path = self.record_path(type(record), record.key)
        if isinstance(record, UrlAnswer):
            fetched = record.fetched or time.time()
            record = record._replace(key=redact(record.key), fetched=fetched)
        _mkdir(path.parent)
        write_atomically(path, encode(record))

    def recall(self, kind: type[R], key: str) -> R | None:
        """The record of ``kind`` found by ``key``; ``None`` when there is none, it is of
        another kind or format, damaged, or names a blob the cache no longer holds."""
        return self.read_record(self.record_path(kind, key), kind)

    def read_record(self, path: Path, kind: type[R]) -> R | None:
        """The record of ``kind`` stored at ``path`` (see :meth:`recall`)."""
        try:
            record = decode(path.read_bytes(), kind)
            blob = record.blob() if record is not None else None
            return None if blob is not None and not self.has_blob(blob) else record
        except (OSError, CnbkitError):
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


def _mkdir(path: Path) -> None:
    """``mkdir -p``, failing as a :class:`WriteError` that names the directory and the cause
    (a read-only cache, a full disk), never as an unexplained ``OSError``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError.from_os(path, exc) from None
