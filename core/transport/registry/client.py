"""The OCI distribution client: manifests and blobs, by the bytes, verified.

It deals in bytes, media types and digests; what a manifest means is the image model's job
(:mod:`cnbkit.oci`). Every byte it returns was checked against a digest: a manifest fetched by
digest against that digest, one fetched by tag against the registry's ``Docker-Content-Digest``
(when sent), and a blob against its digest before it enters the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...archive.digest import validate_digest
from ...archive.hashing import VerifiedStream
from ...archive.streams import CHUNK, Readable
from ...archive.tarinput import DEFAULT_MAX_TOTAL, size_limit_error
from ...archive.threads import ThreadedReader
from ...cache import Cache
from ...oci._json import load_json
from ...oci.manifest import MAX_MANIFEST_SIZE
from ...oci.mediatypes import MANIFEST_ACCEPT
from ...options import DEFAULT_TIMEOUT
from ...progress import Progress, Silent
from ..body import BodyStream
from .connection import Connection, pull_scope
from .credentials import CredentialsProvider, DockerConfigCredentials
from .quick import manifest_head
from .reference import Reference
from .wire import RegistryError, read_body

if TYPE_CHECKING:
    import requests

__all__ = ["MANIFEST_MAX", "RegistryClient"]

MANIFEST_MAX = MAX_MANIFEST_SIZE  # the image model's limit, what containerd and distribution accept


class RegistryClient:
    """Talks to OCI distribution registries (Docker Hub, GHCR, Distribution, Harbor...).

    Args:
        session: the ``requests`` session to use (default: a new one from
            :func:`cnbkit.transport.http.new_session`).
        verify: TLS verification: ``True`` or a CA bundle path.
        timeout: connect and read timeout in seconds.
        insecure: ``True`` or the registries (``host[:port]``) that may be reached over plain
            http; loopback registries always may.
        credentials: finds credentials for a registry (default: the Docker configuration,
            read only if a registry asks for credentials).
        progress: ``progress(description, total)`` makes a reporter for a blob download.
        notice: receives one-line notices (waiting for another process).
        max_size: the most bytes a blob may hold (``--max-size``); a larger one is refused
            before it is downloaded.
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        verify: str | bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        insecure: bool | Collection[str] = False,
        credentials: CredentialsProvider | None = None,
        progress: Callable[[str, int | None], Progress] | None = None,
        notice: Callable[[str], None] | None = None,
        max_size: int = DEFAULT_MAX_TOTAL,
    ) -> None:
        if session is None:
            from ..http import new_session

            session = new_session()
        self.connection = Connection(
            session,
            verify=verify,
            timeout=timeout,
            insecure=insecure,
            credentials=credentials or DockerConfigCredentials(),
        )
        self._progress = progress or (lambda _description, _total: Silent())
        self._notice = notice
        self.max_size = max_size

    def ping(self, ref: Reference) -> None:
        """Reach ``ref``'s registry (``GET /v2/``) and learn how it authenticates.

        Raises:
            RegistryError: unreachable, not a registry, or plain http not allowed.
        """
        self.connection.endpoint(ref)

    def anonymous_scheme(self, ref: Reference) -> str | None:
        """``http`` or ``https`` if ``ref``'s registry answered its ping without asking for
        credentials (so a later process may revalidate a tag without the ping), else ``None``."""
        endpoint = self.connection.endpoint(ref)
        return None if endpoint.auth.challenge is not None else endpoint.base.partition(":")[0]

    # -- manifests -----------------------------------------------------------------------

    def head_manifest(self, ref: Reference, accept: Sequence[str] = MANIFEST_ACCEPT) -> tuple[str, str, int]:
        """Revalidate a tag (or check a digest) with ``HEAD``: Docker Hub counts GETs as pulls.

        Returns:
            ``(digest, media_type, size)`` of the manifest the reference points at now.

        Raises:
            RegistryError: not found, refused, or a digest that does not match ``ref.digest``.
        """
        response = self._manifest_request(ref, "HEAD", accept)
        found = manifest_head(response.headers)  # the warm path's reading too (quick.py)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        response.close()
        if found is None:
            data, media_type, digest = self.get_manifest(ref, accept)
            return digest, media_type, len(data)
        digest = self._digest_header(ref, found[0])
        if ref.digest and digest != ref.digest:
            raise RegistryError(f"{ref}: the registry says its digest is {digest}; refused")
        return digest, media_type, found[1]

    def get_manifest(self, ref: Reference, accept: Sequence[str] = MANIFEST_ACCEPT) -> tuple[bytes, str, str]:
        """Fetch a manifest or index as bytes, verified.

        By digest, the bytes must have that digest; by tag, they must match the registry's
        ``Docker-Content-Digest`` when it sends one. At most :data:`MANIFEST_MAX` bytes are read.

        Returns:
            ``(data, media_type, digest)``: the exact bytes, their media type (one of
            ``accept``) and their digest (computed here).

        Raises:
            RegistryError: not found, refused, too large, not an accepted type.
            DigestMismatchError: the bytes do not match the digest they were asked by or sent with.
        """
        from ...errors import DigestMismatchError

        response = self._manifest_request(ref, "GET", accept)
        try:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MANIFEST_MAX:
                raise RegistryError(f"{ref}: the manifest is {length} bytes, over the {MANIFEST_MAX} limit")
            header = response.headers.get("Docker-Content-Digest", "")
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            data = read_body(
                response,
                MANIFEST_MAX + 1,
                source=f"{ref}: manifest",
                peer="registry",
                timeout=self.connection.timeout,
            )
            if len(data) > MANIFEST_MAX:
                raise RegistryError(f"{ref}: the manifest is over the {MANIFEST_MAX}-byte limit; refused")
        finally:
            response.close()
        expected = ref.digest or (self._digest_header(ref, header) if header else None)
        algorithm = (expected or "sha256:").partition(":")[0]
        digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        if expected is not None and digest != expected:
            source = "asked for" if ref.digest else "the registry's Docker-Content-Digest"
            raise DigestMismatchError(f"{ref}: the manifest has digest {digest}, not {expected} ({source})")
        if media_type not in accept:
            media_type = _embedded_media_type(data, f"{ref}: the manifest") or media_type
        if media_type not in accept:
            raise RegistryError(
                f"{ref}: the registry sent a manifest of type {media_type or 'unknown'!r}; expected one of "
                f"{', '.join(accept)}"
            )
        return data, media_type, digest

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """Upload a manifest under ``ref``'s tag (or digest); return its digest.

        Raises:
            RegistryError: refused, or the registry stored other bytes than were sent.
        """
        from . import push  # pushing only: a pull never imports it

        return push.put_manifest(self.connection, ref, data, media_type)

    def _manifest_request(self, ref: Reference, method: str, accept: Sequence[str]) -> requests.Response:
        target = ref.target if ref.digest is None else validate_digest(ref.digest)
        response = self.connection.request(
            ref,
            method,
            f"/v2/{ref.repository}/manifests/{target}",
            scopes=pull_scope(ref),
            headers={"Accept": ", ".join(accept)},
        )
        if response.status_code != 200:
            raise self.connection.failure(ref, response, f"manifest {target}")
        return response

    @staticmethod
    def _digest_header(ref: Reference, header: str) -> str:
        try:
            return validate_digest(header.strip())
        except Exception:  # noqa: BLE001 - any malformed header is the same refusal
            raise RegistryError(f"{ref}: the registry sent a malformed Docker-Content-Digest") from None

    # -- blobs ---------------------------------------------------------------------------

    def blob_exists(self, ref: Reference, digest: str) -> int | None:
        """The size of blob ``digest`` in ``ref``'s repository, or ``None`` if it lacks it."""
        from . import push  # pushing only: a pull never imports it

        return push.blob_exists(self.connection, ref, digest)

    def fetch_blob(self, ref: Reference, digest: str, size: int | None, cache: Cache) -> Path:
        """Fetch blob ``digest`` of ``ref``'s repository into ``cache``; return its path.

        A blob already cached costs no request. One process downloads a digest at a time
        (others wait, then find it cached); the blob is verified before it is cached.

        Raises:
            RegistryError, DigestMismatchError, DownloadError: nothing was cached.
        """
        if cache.has_blob(validate_digest(digest)):
            return cache.blob_path(digest)
        stream = self.open_blob(ref, digest, size, cache)
        try:
            while stream.read(CHUNK):
                pass
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return cache.blob_path(digest)

    def open_blob(self, ref: Reference, digest: str, size: int | None, cache: Cache) -> Readable:
        """Open blob ``digest`` as a stream, from the cache or as it downloads into it.

        While downloading, each chunk is handed to the reader as it is written to the cache, so
        a layer can be inflated and checked as it arrives; the end of the stream is reported only
        after the whole blob matched its digest and was committed (a mismatch raises from
        ``read`` instead). The stream is a :class:`~cnbkit.archive.streams.VerifiedStream`;
        close it to cancel a download (nothing is cached then).

        Raises:
            RegistryError, DownloadError: the request failed (before any byte was read).
        """
        validate_digest(digest)
        if not digest.startswith("sha256:"):
            raise RegistryError(f"{ref.name}@{digest[:19]}...: only sha256 blobs can be cached")
        source = f"{ref.name}@{digest}"
        path = cache.blob_path(digest)
        if path.is_file():
            return open(path, "rb")
        if size is not None and size > self.max_size:  # refused before a byte moves
            raise size_limit_error(source, self.max_size, "blob")
        lock = cache.acquire(f"registry-blob {digest}", f"downloading {source}", self._notice)
        try:
            if path.is_file():  # another process fetched it while this one waited
                lock.release()
                return open(path, "rb")
            response = self._blob_request(ref, digest, {})
            length = response.headers.get("Content-Length", "")
            if size is not None and length.isdigit() and int(length) != size:
                response.close()
                raise RegistryError(f"{source}: the registry offers {length} bytes, the manifest says {size}")
            if length.isdigit() and int(length) > self.max_size:
                response.close()
                raise size_limit_error(source, self.max_size, "blob")
            progress = self._progress(source, size)
            download = BodyStream(
                source=source,
                response=response,
                reopen=lambda headers: self._blob_request(ref, digest, headers, expect=None),
                cache=cache,
                lock=lock,
                progress=lambda: progress,
                timeout=self.connection.timeout,
                expected=digest,
                size=size,
                size_from="the manifest gives",
                max_size=self.max_size,
                kind="blob",
                peer="registry",
                error=RegistryError,
            )
        except BaseException:
            lock.release()
            raise
        reader = ThreadedReader(
            download.run, name="cnbkit-blob", interrupt=download.interrupt, abandon=download.abandon
        )
        return VerifiedStream(reader, download.result)

    def _blob_request(
        self, ref: Reference, digest: str, headers: dict[str, str], expect: int | None = 200
    ) -> requests.Response:
        response = self.connection.request(
            ref,
            "GET",
            f"/v2/{ref.repository}/blobs/{validate_digest(digest)}",
            scopes=pull_scope(ref),
            headers={"Accept-Encoding": "identity", **headers},  # the bytes as stored, never re-encoded
        )
        if expect is not None and response.status_code != expect:
            raise self.connection.failure(ref, response, f"blob {digest}")
        return response

    def mount_blob(self, ref: Reference, digest: str, source: Reference) -> bool:
        """Mount blob ``digest`` from ``source``'s repository (same registry) without uploading it.

        Returns:
            ``True`` if mounted; ``False`` if the registry declined (upload it then).
        """
        from . import push  # pushing only: a pull never imports it

        return push.mount_blob(self.connection, ref, digest, source)

    def upload_blob(
        self, ref: Reference, stream: Readable, digest: str, size: int, *, chunk_size: int | None = None
    ) -> None:
        """Upload ``size`` bytes from ``stream`` as blob ``digest`` (monolithic, or in chunks).

        Raises:
            RegistryError: refused, or the bytes did not match ``digest``.
        """
        from . import push  # pushing only: a pull never imports it

        push.upload_blob(self.connection, ref, stream, digest, size, chunk_size=chunk_size)


def _embedded_media_type(data: bytes, source: str) -> str:
    """The ``mediaType`` field of a manifest, for registries that send a generic Content-Type."""
    document = load_json(data, source=source, limit=MANIFEST_MAX, error=RegistryError)
    value = document.get("mediaType") if isinstance(document, dict) else None
    return value if isinstance(value, str) else ""
