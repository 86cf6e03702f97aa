"""A blob's body into the cache: hashed while written, verified, resumed with ``Range``.

The guarantees are the https download's (:mod:`cnbkit.transport.download`): the body goes to
a temp file in the cache, hashed as it is written; it is renamed into ``blobs/sha256/<hex>``
only when complete and equal to its digest, so a tampered or truncated blob is never cached;
a broken connection resumes where it stopped (up to ``ATTEMPTS`` times). Streaming readers
get each chunk as it is written, and the end of their stream only after the verification.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...archive.streams import CHUNK
from ...archive.tarinput import DEFAULT_MAX_TOTAL, size_limit_error
from ...cache import Cache, Releasable
from ...errors import DigestMismatchError, DownloadError
from ...progress import Progress
from ..http import Interruptible, retry_or_raise
from .wire import RegistryError

if TYPE_CHECKING:
    import requests

__all__ = ["BlobDownload"]


class BlobDownload(Interruptible):
    """One blob being fetched into ``cache``; :meth:`run` does it (on any thread).

    Args:
        source: what to call the blob in messages (``registry/repo@sha256:...``).
        digest: ``sha256:<hex>``, validated by the caller.
        size: the size the descriptor gives, or ``None``; a body of another length fails.
        cache: where the blob goes.
        lock: the blob's inter-process lock, released when :meth:`run` ends.
        response: the first response (200), already open.
        reopen: opens the blob again with the given extra headers (``Range``), for a resume.
        progress: reports the bytes as they arrive.
        timeout: the read timeout, for the message when the registry stalls.
        max_size: the most bytes the body may hold (``--max-size``), when ``size`` is unknown.
    """

    def __init__(
        self,
        *,
        source: str,
        digest: str,
        size: int | None,
        cache: Cache,
        lock: Releasable,
        response: requests.Response,
        reopen: Callable[[dict[str, str]], requests.Response],
        progress: Progress,
        timeout: float,
        max_size: int = DEFAULT_MAX_TOTAL,
    ) -> None:
        self.source = source
        self.digest = digest
        self.size = size
        self.cache = cache
        self.lock = lock
        self.response = response
        self.reopen = reopen
        self.progress = progress
        self.timeout = timeout
        self.max_size = max_size
        self.received = 0
        self.path: Path | None = None

    def _chunks(self, response: Any, skip: int) -> Iterator[bytes]:
        while chunk := response.raw.read(CHUNK, decode_content=False):
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
            if self.received + len(chunk) > self.max_size:  # an ArchiveError: never resumed
                raise size_limit_error(self.source, self.max_size, "blob")
            yield chunk

    def _resume(self) -> tuple[Any, int]:
        response = self.reopen({"Range": f"bytes={self.received}-"})
        if response.status_code == 206:
            if not response.headers.get("Content-Range", "").startswith(f"bytes {self.received}-"):
                response.close()
                raise RegistryError(f"{self.source}: the registry resumed the blob at the wrong offset")
            return response, 0
        if response.status_code == 200:  # no range support: read it again, skip what we have
            return response, self.received
        status = response.status_code
        response.close()
        raise RegistryError(f"{self.source}: HTTP {status} while resuming the blob download", status)

    def run(self, put: Callable[[bytes], None]) -> None:
        """Stream the body to the cache and to ``put``; commit when complete and verified.

        Raises:
            DigestMismatchError: the bytes are not the digest's (nothing was cached).
            RegistryError: the body is longer than the descriptor's size, or a resume failed.
            DownloadError: the connection broke ``ATTEMPTS`` times, or stalled.
        """
        import requests
        import urllib3

        response, skip, failures = self.response, 0, 0
        try:
            with self.cache.writer(expected=self.digest) as writer:
                self.partial = writer
                while True:
                    try:
                        for chunk in self._chunks(response, skip):
                            if self.size is not None and self.received + len(chunk) > self.size:
                                raise RegistryError(
                                    f"{self.source}: the registry sent more than the {self.size} bytes "
                                    "the manifest gives; nothing was cached"
                                )
                            writer.write(chunk)
                            put(chunk)
                            self.received += len(chunk)
                            self.progress.update(len(chunk))
                        if self.size is not None and self.received < self.size:
                            raise DownloadError("short body")
                        break
                    except RegistryError:
                        raise
                    except (
                        requests.RequestException,
                        urllib3.exceptions.HTTPError,
                        OSError,
                        DownloadError,
                    ) as exc:
                        response.close()
                        self.check_interrupted(self.source)
                        failures += 1
                        retry_or_raise(
                            exc,
                            self.source,
                            peer="registry",
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
                    self.path = writer.commit()
                except DigestMismatchError as exc:
                    raise DigestMismatchError(f"{self.source}: {exc}; nothing was cached") from None
        finally:
            response.close()
            self.progress.close()
            self.lock.release()

    def result(self) -> tuple[str, int]:
        """The verified digest and size, for a :class:`~cnbkit.archive.streams.VerifiedStream`."""
        assert self.path is not None, "the download has not committed"
        return self.digest, self.received
