"""Downloading through the cache: revalidation, pinning, a body cached as it is read.

The request is :func:`cnbkit.transport.request.send`'s and the body, resumed and verified,
:class:`cnbkit.transport.body.BodyStream`'s: the same two the registry client uses.

A cold download overlaps the network, hashing and the cache write (a background thread) with
inflating and checking the archive (the caller's thread): all release the GIL. The cache entry
is committed, and the stream's end reported, only once the body was complete and verified.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..archive.hashing import VerifiedStream
from ..archive.streams import Readable
from ..archive.tarinput import DEFAULT_MAX_TOTAL
from ..archive.threads import ThreadedReader
from ..blob import Blob, FileBlob
from ..cache import Cache, Releasable
from ..cache.records import UrlAnswer
from ..errors import CacheMissError, CnbkitError, DigestMismatchError, DownloadError
from .body import BodyStream
from .request import send
from .urls import HttpTarget, check_scheme, split_url

if TYPE_CHECKING:
    import requests

    from ..progress import Progress

__all__ = ["DownloadBlob", "Downloader"]

_HEX64 = re.compile(r"[a-f0-9]{64}")  # fullmatch: `$` would let a final newline through


@dataclass(frozen=True)
class Downloader:
    """What a download needs, and nothing more: the cache, an HTTP session and the settings.

    Attributes:
        cache: where bodies are kept, by digest.
        session: returns the shared ``requests`` session (created on first use).
        verify: the CA bundle path, or ``True`` for the system store.
        timeout: connect and per-read timeout, in seconds.
        allow_http: plain ``http://`` to non-loopback hosts is permitted.
        offline: serve from the cache only.
        progress: makes a progress reporter for a transfer (description, total bytes).
        notice: tells the user something on stderr.
        max_size: the most bytes a body may hold (``--max-size``); a longer Content-Length: at once.
    """

    cache: Cache
    session: Callable[[], requests.Session]
    verify: str | bool
    timeout: float
    allow_http: bool
    offline: bool
    progress: Callable[[str, int | None], Progress]
    notice: Callable[[str], None]
    max_size: int = DEFAULT_MAX_TOTAL

    def download(self, url: str, *, sha256: str | None = None) -> Blob:
        """See :func:`download_blob`."""
        return download_blob(self, url, sha256=sha256)


def download_blob(client: Downloader, url: str, *, sha256: str | None = None) -> Blob:
    """Return a Blob for ``url``, from the cache when it is still valid.

    Args:
        client: the cache, session and settings.
        url: ``https://`` or allowed ``http://``; userinfo becomes basic auth for that host.
        sha256: the hex digest the content must have.

    Raises:
        DownloadError: refused scheme, HTTP error status, TLS, timeout.
        CacheMissError: ``--offline`` and the cache lacks the URL.
    """
    target = split_url(url)
    check_scheme(target, client.allow_http)
    if sha256 is not None and not _HEX64.fullmatch(sha256):
        raise DownloadError(f"{target.display}: #sha256= needs 64 lower-case hex digits")
    pin = f"sha256:{sha256}" if sha256 else None
    cache = client.cache
    if pin and cache.has_blob(pin):  # content-addressed: a pinned hit needs no network at all
        return FileBlob(cache.blob_path(pin), source=target.display, digest=pin)
    if client.offline:
        entry = cache.recall(UrlAnswer, target.url)
        if entry is None:
            raise CacheMissError(
                f"{target.display} is not in the cache and --offline is set; resolve it once online first"
            )
        if pin and entry.digest != pin:
            raise DigestMismatchError(f"{target.display}: cached content is {entry.digest}, pinned {pin}")
        return FileBlob(cache.blob_path(entry.digest), source=target.display, digest=entry.digest)
    if pin:
        # Lazy: the digest is known, so a lifecycle already validated from the same bytes (from
        # a file, another URL) is served from the cache without the blob ever being opened.
        return _PinnedBlob(client, target, pin)
    lock = cache.acquire(target.url, f"downloading {target.display}", client.notice)
    try:
        return _fetch(client, target, pin, lock)
    except BaseException:
        lock.release()
        raise


class _PinnedBlob(Blob):
    """A ``#sha256=`` pinned URL: nothing happens on the network until it is opened.

    Opening takes the URL's lock, then looks again: another process may have downloaded the
    same content while this one waited, and content-addressed means it need not come twice.
    """

    def __init__(self, client: Downloader, target: HttpTarget, pin: str) -> None:
        super().__init__(target.display, digest=pin)
        self._client = client
        self._target = target
        self._pin = pin

    def open_raw(self) -> Readable:
        """The cached blob if present, else the body as it downloads (into the cache)."""
        cache = self._client.cache
        if not cache.has_blob(self._pin):
            lock = cache.acquire(self._target.url, f"downloading {self.source}", self._client.notice)
            try:
                if not cache.has_blob(self._pin):
                    blob = _fetch(self._client, self._target, self._pin, lock)
                    return blob.open_raw()  # the download owns the lock from here on
            except BaseException:
                lock.release()
                raise
            lock.release()
        return FileBlob(cache.blob_path(self._pin), source=self.source, digest=self._pin).open_raw()


def _fetch(client: Downloader, target: HttpTarget, pin: str | None, lock: Releasable) -> Blob:
    cache = client.cache
    entry = None if pin else cache.recall(UrlAnswer, target.url)  # pinned: fetch the content, never a 304
    headers = {"Accept-Encoding": "identity"}  # the bytes as published, never re-encoded
    if entry is not None and entry.etag:
        headers["If-None-Match"] = entry.etag
    if entry is not None and entry.last_modified:
        headers["If-Modified-Since"] = entry.last_modified
    response = _open(client, target, headers)
    if response.status_code == 304 and entry is not None:
        response.close()
        lock.release()
        return FileBlob(cache.blob_path(entry.digest), source=target.display, digest=entry.digest)
    if response.status_code != 200:
        status, reason = response.status_code, response.reason
        response.close()
        raise DownloadError(f"{target.display}: HTTP {status} {reason}".rstrip(), status)
    length = response.headers.get("Content-Length")
    size = int(length) if length and length.isdigit() else None
    etag, last_modified = response.headers.get("ETag"), response.headers.get("Last-Modified")

    def remember(digest: str, received: int) -> None:
        cache.remember(
            UrlAnswer(target.url, digest=digest, size=received, etag=etag, last_modified=last_modified)
        )

    stream = BodyStream(
        source=target.display,
        response=response,
        reopen=lambda more: _open(client, target, {"Accept-Encoding": "identity", **more}),
        cache=cache,
        lock=lock,
        progress=lambda: client.progress(target.display, size),
        timeout=client.timeout,
        expected=pin,
        size=size,
        size_from="its Content-Length gives",
        max_size=client.max_size,
        revalidate=True,
        on_commit=remember,
    )
    return DownloadBlob(stream)


def _open(client: Downloader, target: HttpTarget, headers: dict[str, str]) -> requests.Response:
    allow_http = client.allow_http
    return send(
        client.session(),
        "GET",
        target.url,
        headers=headers,
        credentials=target.auth,
        verify=client.verify,
        timeout=client.timeout,
        allow_http=lambda _host: allow_http,
        display=target.display,
        http_advice="pass --allow-http",
    )


class DownloadBlob(Blob):
    """A URL being downloaded: the first :meth:`open_raw` streams the body (into the cache
    at the same time); later ones read the cached copy."""

    def __init__(self, stream: BodyStream) -> None:
        super().__init__(stream.source, digest=stream.expected, size=stream.size)
        self._stream = stream

    def open_raw(self) -> Readable:
        """The body as it arrives (first call), else the committed cache file."""
        stream = self._stream
        if stream.path is not None:
            return FileBlob(stream.path, source=self.source, digest=stream.digest).open_raw()
        if stream.started:
            raise CnbkitError(f"{self.source}: the download was interrupted; resolve it again")
        stream.started = True
        reader = ThreadedReader(
            stream.run, name="cnbkit-download", interrupt=stream.interrupt, abandon=stream.abandon
        )
        return VerifiedStream(reader, stream.result)
