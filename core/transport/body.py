"""One response body into the cache: hashed while written, verified, resumed with ``Range``.

The https downloader (:mod:`cnbkit.transport.download`) and the registry client's blobs
(:mod:`cnbkit.transport.registry.client`) both stream through :class:`BodyStream`: the body
goes to a temp file in the cache, hashed as it is written; it is renamed into
``blobs/sha256/<hex>`` only when complete (its length) and equal to its digest, so a tampered
or truncated body is never cached; a broken connection resumes where it stopped (up to
``ATTEMPTS`` times); a stalled peer is not retried; ``--max-size`` holds at the first byte
over it. Readers get each chunk as it is written, and the end of their stream only after the
verification. Another thread stops it through :class:`~cnbkit.transport.http.Interruptible`
(Ctrl-C): a body cut short that way is never resumed nor cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..archive.streams import CHUNK
from ..archive.tarinput import DEFAULT_MAX_TOTAL, size_limit_error
from ..cache import Cache, Releasable
from ..errors import DigestMismatchError, DownloadError
from .http import Interruptible, full_length, retry_or_raise

if TYPE_CHECKING:
    import requests

    from ..progress import Progress

__all__ = ["BodyStream"]


class _ShortBody(Exception):
    """The body ended before its length: resumed like a broken connection."""


class BodyStream(Interruptible):
    """One body being fetched into ``cache``; :meth:`run` does it (on any thread).

    Args:
        source: what to call the body in messages (a redacted URL, ``registry/repo@sha256:...``).
        response: the first response (200), already open.
        reopen: opens the body again with the given extra headers (``Range``), for a resume.
        cache: where the body goes.
        lock: the body's inter-process lock, released when :meth:`run` ends.
        progress: makes the reporter of the bytes as they arrive (when :meth:`run` starts).
        timeout: the read timeout, for the message when the peer stalls.
        expected: the ``sha256:<hex>`` the body must have, or ``None`` (any: it is hashed).
        size: the length the body must have (a descriptor's size, a Content-Length), or ``None``.
        size_from: what gave ``size``, for the message when more arrives.
        max_size: the most bytes the body may hold (``--max-size``).
        kind: ``download`` or ``blob``, for the size-limit message.
        peer: ``server`` or ``registry``, for messages.
        error: the class of the errors raised for what the peer sent.
        revalidate: a resume must prove it is the same body (``If-Range``, validators, length):
            for a URL, whose content may change; a blob is checked by its digest already.
        on_commit: called with the digest and size once the body is cached.
    """

    def __init__(
        self,
        *,
        source: str,
        response: requests.Response,
        reopen: Callable[[dict[str, str]], requests.Response],
        cache: Cache,
        lock: Releasable,
        progress: Callable[[], Progress],
        timeout: float,
        expected: str | None,
        size: int | None,
        size_from: str,
        max_size: int = DEFAULT_MAX_TOTAL,
        kind: str = "download",
        peer: str = "server",
        error: type[DownloadError] = DownloadError,
        revalidate: bool = False,
        on_commit: Callable[[str, int], None] | None = None,
    ) -> None:
        self.source = source
        self.response = response
        self.reopen = reopen
        self.cache = cache
        self.lock = lock
        self.progress = progress
        self.timeout = timeout
        self.expected = expected
        self.size = size
        self.size_from = size_from
        self.max_size = max_size
        self.kind = kind
        self.peer = peer
        self.error = error
        self.on_commit = on_commit
        self.etag = response.headers.get("ETag") if revalidate else None
        self.last_modified = response.headers.get("Last-Modified") if revalidate else None
        self.revalidate = revalidate
        self.received = 0
        self.digest: str | None = None
        self.path: Path | None = None
        self.started = False  # set by the one reader that runs it

    def _chunks(self, response: Any, skip: int) -> Iterator[bytes]:
        too_big = self.size is not None and self.size > self.max_size  # refused at the first byte
        while chunk := response.raw.read(CHUNK, decode_content=False):
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
            if too_big or self.received + len(chunk) > self.max_size:  # never resumed
                raise size_limit_error(self.source, self.max_size, self.kind)
            if self.size is not None and self.received + len(chunk) > self.size:
                raise self.error(
                    f"{self.source}: the {self.peer} sent more than the {self.size} bytes {self.size_from}; "
                    "nothing was cached"
                )
            yield chunk

    def _resume(self) -> tuple[Any, int]:
        headers = {"Range": f"bytes={self.received}-"}
        if self.etag or self.last_modified:
            headers["If-Range"] = self.etag or self.last_modified or ""
        response = self.reopen(headers)
        if response.status_code in (200, 206) and self.revalidate:
            changed = self._changed(response)
            if changed:
                response.close()
                raise self.error(
                    f"{self.source}: the file changed on the {self.peer} during the download "
                    f"({changed}); nothing was cached, resolve it again"
                )
        if response.status_code == 206:
            if not response.headers.get("Content-Range", "").startswith(f"bytes {self.received}-"):
                response.close()
                raise self.error(f"{self.source}: the {self.peer} resumed at the wrong offset")
            return response, 0
        if response.status_code == 200:  # no range support: read it again, skip what we have
            return response, self.received
        status = response.status_code
        response.close()
        raise self.error(f"{self.source}: HTTP {status} while resuming the download", status)

    def _changed(self, response: Any) -> str:
        """Why the resumed response is not the same body as the first one, or ``""``.

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
        if self.size is not None and total is not None and total != self.size:
            return f"{self.size} bytes became {total}"
        if response.status_code == 200 and not (self.etag or self.last_modified) and total is None:
            return "the server gives no validator or length to tell"
        return ""

    def run(self, put: Callable[[bytes], None]) -> None:
        """Stream the body to the cache and to ``put``; commit when complete and verified.

        Raises:
            DigestMismatchError: the bytes are not the expected digest's (nothing was cached).
            DownloadError: the body is longer than its size, a resume failed, the connection
                broke ``ATTEMPTS`` times, or stalled (``error`` for what the peer sent).
            ArchiveError: the body is over ``--max-size``.
        """
        import requests
        import urllib3

        progress = self.progress()
        response, skip, failures = self.response, 0, 0
        try:
            with self.cache.writer(expected=self.expected) as writer:
                self.partial = writer
                while True:
                    try:
                        for chunk in self._chunks(response, skip):
                            writer.write(chunk)
                            put(chunk)
                            self.received += len(chunk)
                            progress.update(len(chunk))
                        if self.size is not None and self.received < self.size:
                            raise _ShortBody
                        break
                    except (
                        requests.RequestException,
                        urllib3.exceptions.HTTPError,
                        OSError,
                        _ShortBody,
                    ) as exc:
                        response.close()
                        self.check_interrupted(self.source)
                        failures += 1
                        retry_or_raise(
                            exc,
                            self.source,
                            peer=self.peer,
                            timeout=self.timeout,
                            failures=failures,
                            received=self.received,
                            total=self.size,
                        )
                        response, skip = self._resume()
                        self.response = response  # the one interrupt() shuts down now
                        self.check_interrupted(self.source)  # while the resume was asked for
                response.close()
                self.check_interrupted(self.source)
                try:
                    path = writer.commit()
                except DigestMismatchError as exc:
                    raise DigestMismatchError(f"{self.source}: {exc}; nothing was cached") from None
            if self.on_commit is not None:
                self.on_commit(writer.digest, self.received)
            self.digest, self.path = writer.digest, path  # done: later readers get the file
        finally:
            response.close()
            progress.close()
            self.lock.release()

    def result(self) -> tuple[str, int]:
        """The verified digest and size, for a :class:`~cnbkit.archive.streams.VerifiedStream`."""
        assert self.path is not None and self.digest is not None, "the body has not committed"
        return self.digest, self.received
