"""Downloading through the cache: revalidation, pinning, resume, a body cached as it is read.

A cold download overlaps the network, hashing and the cache write (a background thread) with
inflating and checking the archive (the caller's thread): all release the GIL. The cache entry
is committed, and the stream's end reported, only once the body was complete and verified.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..archive.hashing import VerifiedStream
from ..archive.streams import CHUNK, Readable
from ..archive.tarinput import DEFAULT_MAX_TOTAL, size_limit_error
from ..archive.threads import ThreadedReader
from ..blob import Blob, FileBlob
from ..cache import Cache, CacheEntry, Releasable
from ..errors import CacheMissError, CnbkitError, DigestMismatchError, DownloadError
from .http import Interruptible, full_length, retry_or_raise
from .request import send
from .urls import HttpTarget, check_scheme, split_url

if TYPE_CHECKING:
    import requests

    from ..progress import Progress

__all__ = ["DownloadBlob", "Downloader"]

_HEX64 = re.compile(r"^[a-f0-9]{64}$")


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
    if sha256 is not None and not _HEX64.match(sha256):
        raise DownloadError(f"{target.display}: #sha256= needs 64 lower-case hex digits")
    pin = f"sha256:{sha256}" if sha256 else None
    cache = client.cache
    if pin and cache.has_blob(pin):  # content-addressed: a pinned hit needs no network at all
        return FileBlob(cache.blob_path(pin), source=target.display, digest=pin)
    if client.offline:
        entry = cache.lookup(target.url)
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
    entry = None if pin else cache.lookup(target.url)  # pinned: fetch the content, never a 304
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
    fetch = _BodyFetch(client, target, pin, lock, response)
    return DownloadBlob(fetch)


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


class _BodyFetch(Interruptible):
    """Reads one response body into the cache, resuming with ``Range`` when it breaks."""

    def __init__(
        self, client: Downloader, target: HttpTarget, pin: str | None, lock: Releasable, response: Any
    ) -> None:
        self.client = client
        self.target = target
        self.pin = pin
        self.lock = lock
        self.response = response
        length = response.headers.get("Content-Length")
        self.total = int(length) if length and length.isdigit() else None
        self.etag = response.headers.get("ETag")
        self.last_modified = response.headers.get("Last-Modified")
        self.committed: FileBlob | None = None
        self.started = False
        self.left = client.max_size if (self.total or 0) <= client.max_size else -1

    def _chunks(self, response: Any, skip: int) -> Iterator[bytes]:
        while chunk := response.raw.read(CHUNK, decode_content=False):
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
            self.left -= len(chunk)
            if self.left < 0:  # an ArchiveError: run() neither resumes nor retries it
                raise size_limit_error(self.target.display, self.client.max_size, "download")
            yield chunk

    def _resume(self, received: int) -> tuple[Any, int]:
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={received}-"}
        if self.etag or self.last_modified:
            headers["If-Range"] = self.etag or self.last_modified or ""
        response = _open(self.client, self.target, headers)
        if response.status_code in (200, 206):
            changed = self._changed(response)
            if changed:
                response.close()
                raise DownloadError(
                    f"{self.target.display}: the file changed on the server during the download "
                    f"({changed}); nothing was cached, resolve it again"
                )
        if response.status_code == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {received}-"):
                response.close()
                raise DownloadError(f"{self.target.display}: server resumed at the wrong offset")
            return response, 0
        if response.status_code == 200:  # no range support: read it again, skip what we have
            return response, received
        response.close()
        raise DownloadError(
            f"{self.target.display}: HTTP {response.status_code} while resuming the download",
            response.status_code,
        )

    def _changed(self, response: Any) -> str:
        """Why the resumed response is not the same file as the first one, or ``""``.

        A 200 to a ``Range`` request is either a server without range support (same file) or
        the answer to an ``If-Range`` that no longer holds (a new file): the validators and the
        length tell them apart. The bytes already streamed cannot be taken back, so a new
        file fails the download rather than splicing two files together.
        """
        etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        if self.etag and etag and etag != self.etag:
            return f"ETag {self.etag} became {etag}"
        if self.last_modified and modified and modified != self.last_modified:
            return f"Last-Modified {self.last_modified} became {modified}"
        total = full_length(response)
        if self.total is not None and total is not None and total != self.total:
            return f"{self.total} bytes became {total}"
        if response.status_code == 200 and not (self.etag or self.last_modified) and total is None:
            return "the server gives no validator or length to tell"
        return ""

    def run(self, put: Callable[[bytes], None]) -> None:
        """Stream the body to the cache and to ``put``; commit when complete and verified."""
        import requests
        import urllib3

        display = self.target.display
        cache = self.client.cache
        progress = self.client.progress(display, self.total)
        response, skip, received, failures = self.response, 0, 0, 0
        try:
            with cache.writer(expected=self.pin) as writer:
                self.partial = writer
                while True:
                    try:
                        for chunk in self._chunks(response, skip):
                            writer.write(chunk)
                            put(chunk)
                            received += len(chunk)
                            progress.update(len(chunk))
                        if self.total is not None and received < self.total:
                            raise DownloadError("short body")
                        break
                    except (
                        requests.RequestException,
                        urllib3.exceptions.HTTPError,
                        OSError,
                        DownloadError,
                    ) as exc:
                        response.close()
                        self.check_interrupted(display)
                        failures += 1
                        retry_or_raise(
                            exc,
                            display,
                            peer="server",
                            timeout=self.client.timeout,
                            failures=failures,
                            received=received,
                            total=self.total,
                        )
                        response, skip = self._resume(received)
                        self.response = response  # the one interrupt() shuts down now
                        self.check_interrupted(display)  # while the resume was asked for
                response.close()
                self.check_interrupted(display)
                try:
                    path = writer.commit()
                except DigestMismatchError as exc:
                    raise DigestMismatchError(f"{display}: {exc}; nothing was cached") from None
            cache.remember(
                CacheEntry(
                    url=self.target.url,
                    digest=writer.digest,
                    size=received,
                    etag=self.etag,
                    last_modified=self.last_modified,
                )
            )
            self.committed = FileBlob(path, source=display, digest=writer.digest)
        finally:
            response.close()
            progress.close()
            self.lock.release()


class DownloadBlob(Blob):
    """A URL being downloaded: the first :meth:`open_raw` streams the body (into the cache
    at the same time); later ones read the cached copy."""

    def __init__(self, fetch: _BodyFetch) -> None:
        super().__init__(fetch.target.display, digest=fetch.pin, size=fetch.total)
        self._fetch = fetch

    def open_raw(self) -> Readable:
        """The body as it arrives (first call), else the committed cache file."""
        if self._fetch.committed is not None:
            return self._fetch.committed.open_raw()
        if self._fetch.started:
            raise CnbkitError(f"{self.source}: the download was interrupted; resolve it again")
        self._fetch.started = True
        fetch = self._fetch

        def verified() -> tuple[str, int]:
            assert fetch.committed is not None and fetch.committed.digest is not None
            return fetch.committed.digest, fetch.committed.size or 0

        reader = ThreadedReader(
            fetch.run, name="cnbkit-download", interrupt=fetch.interrupt, abandon=fetch.abandon
        )
        return VerifiedStream(reader, verified)
