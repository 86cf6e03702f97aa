"""The push half: HEAD a blob to skip it, mount it across repositories, upload it, PUT a manifest.

Uploads follow the distribution spec: ``POST /v2/<name>/blobs/uploads/`` opens a session whose
``Location`` (absolute or relative, with the registry's own query state) receives either one
``PUT ...&digest=`` with the whole body (monolithic) or ``PATCH`` chunks and a closing ``PUT``.
Bodies stream from the caller's reader in ``CHUNK`` pieces; nothing is held whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ...archive.digest import validate_digest
from ...archive.streams import CHUNK, Readable
from ...errors import DownloadError
from .connection import Connection, pull_scope, push_scope
from .reference import Reference
from .wire import RegistryError

if TYPE_CHECKING:
    import requests

__all__ = ["blob_exists", "mount_blob", "put_manifest", "upload_blob"]


def blob_exists(connection: Connection, ref: Reference, digest: str) -> int | None:
    """The size of blob ``digest`` in ``ref``'s repository, or ``None`` if it is not there.

    Raises:
        RegistryError: any other answer than 200 or 404.
    """
    response = connection.request(
        ref, "HEAD", f"/v2/{ref.repository}/blobs/{validate_digest(digest)}", scopes=pull_scope(ref)
    )
    response.close()
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise connection.failure(ref, response, f"blob {digest}")
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else 0


def mount_blob(connection: Connection, ref: Reference, digest: str, source: Reference) -> bool:
    """Mount ``digest`` from ``source``'s repository into ``ref``'s; ``False`` if declined.

    Only within one registry. A registry that declines opens an upload session instead (202);
    it is cancelled here, and the caller uploads.
    """
    if source.api_host != ref.api_host:
        return False
    query = urlencode({"mount": validate_digest(digest), "from": source.repository})
    scopes = (*push_scope(ref), *pull_scope(source))
    response = connection.request(
        ref,
        "POST",
        f"/v2/{ref.repository}/blobs/uploads/?{query}",
        scopes=scopes,
        headers={"Content-Length": "0"},
    )
    if response.status_code == 201:
        response.close()
        return True
    if response.status_code == 202:
        location = response.headers.get("Location", "")
        response.close()
        if location:
            with contextlib.suppress(DownloadError):  # a leftover session expires on its own
                connection.request(ref, "DELETE", location, scopes=push_scope(ref)).close()
        return False
    raise connection.failure(ref, response, f"mount of blob {digest} from {source.repository}")


def _start(connection: Connection, ref: Reference) -> str:
    response = connection.request(
        ref,
        "POST",
        f"/v2/{ref.repository}/blobs/uploads/",
        scopes=push_scope(ref),
        headers={"Content-Length": "0"},
    )
    if response.status_code != 202 or not response.headers.get("Location"):
        raise connection.failure(ref, response, "starting a blob upload")
    response.close()
    return response.headers["Location"]


def _next_location(connection: Connection, ref: Reference, response: requests.Response, what: str) -> str:
    if response.status_code != 202 or not response.headers.get("Location"):
        raise connection.failure(ref, response, what)
    response.close()
    return response.headers["Location"]


def _with_query(location: str, **params: str) -> str:
    return location + ("&" if "?" in location else "?") + urlencode(params)


class _Body:
    """Exactly ``count`` bytes of ``stream`` as a request body, hashed on the way.

    A file-like object with a length: ``requests`` then sends a ``Content-Length`` (never
    chunked transfer encoding, which some registries refuse) and urllib3 reads it in blocks.
    """

    def __init__(self, stream: Readable, count: int, hasher: Any, source: str) -> None:
        self._stream = stream
        self._left = count
        self._count = count
        self._hasher = hasher
        self._source = source

    def __len__(self) -> int:
        return self._count

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` more bytes (at most ``CHUNK``); ``b""`` after ``count`` bytes."""
        if not self._left:
            return b""
        want = min(CHUNK if size is None or size < 0 else size, CHUNK, self._left)
        data = self._stream.read(want)
        if not data:
            raise DownloadError(f"{self._source}: the stream ended {self._left} bytes early")
        data = data[: self._left]
        self._hasher.update(data)
        self._left -= len(data)
        return data


def upload_blob(
    connection: Connection,
    ref: Reference,
    stream: Readable,
    digest: str,
    size: int,
    *,
    chunk_size: int | None = None,
) -> None:
    """Upload ``size`` bytes of ``stream`` as ``digest`` into ``ref``'s repository.

    Args:
        connection: the registry connection.
        ref: names the target repository.
        stream: the blob's bytes (read exactly ``size`` bytes).
        digest: what the bytes must hash to; the registry checks it, and so does this function.
        size: the byte count.
        chunk_size: ``None`` for one monolithic ``PUT``; else ``PATCH`` pieces of this size
            (some registries cap request bodies).

    Raises:
        RegistryError: the registry refused; the stream did not match ``digest``.
        DownloadError: the stream was short; a connection failure.
    """
    validate_digest(digest)
    source = f"{ref.name}@{digest}"
    hasher = hashlib.new(digest.partition(":")[0])
    location = _start(connection, ref)
    octets = {"Content-Type": "application/octet-stream"}
    if chunk_size is None:
        body, length = _Body(stream, size, hasher, source), size
    else:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        offset = 0
        while offset < size:
            count = min(chunk_size, size - offset)
            headers = {
                **octets,
                "Content-Length": str(count),
                "Content-Range": f"{offset}-{offset + count - 1}",
            }
            response = connection.request(
                ref,
                "PATCH",
                location,
                scopes=push_scope(ref),
                headers=headers,
                body=_Body(stream, count, hasher, source),
            )
            location = _next_location(connection, ref, response, f"uploading blob {digest} at byte {offset}")
            offset += count
        body, length = _Body(stream, 0, hasher, source), 0
        if f"{hasher.name}:{hasher.hexdigest()}" != digest:  # before the registry stores it
            raise RegistryError(
                f"{source}: the stream has digest {hasher.name}:{hasher.hexdigest()}; not stored"
            )
    response = connection.request(
        ref,
        "PUT",
        _with_query(location, digest=digest),
        scopes=push_scope(ref),
        headers={**octets, "Content-Length": str(length)},
        body=body if length else b"",
    )
    if response.status_code != 201:
        raise connection.failure(ref, response, f"uploading blob {digest}")
    response.close()
    actual = f"{hasher.name}:{hasher.hexdigest()}"
    if actual != digest:  # the registry should have refused it already; never trust silently
        raise RegistryError(f"{source}: the stream has digest {actual}, the registry accepted it as {digest}")


def put_manifest(connection: Connection, ref: Reference, data: bytes, media_type: str) -> str:
    """PUT ``data`` as a manifest of ``media_type`` under ``ref``'s tag or digest; return its digest.

    Raises:
        RegistryError: refused; ``ref.digest`` is not the data's; the registry reports another digest.
    """
    if len(data) > 4 * 1024 * 1024:
        raise RegistryError(f"{ref}: the manifest is {len(data)} bytes, over the 4 MiB registries accept")
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    if ref.digest is not None and ref.digest != digest:
        raise RegistryError(f"{ref}: the manifest's digest is {digest}, not the reference's")
    response = connection.request(
        ref,
        "PUT",
        f"/v2/{ref.repository}/manifests/{ref.target}",
        scopes=push_scope(ref),
        headers={"Content-Type": media_type},
        body=data,
    )
    if response.status_code != 201:
        raise connection.failure(ref, response, f"manifest {ref.target}")
    response.close()
    stored = response.headers.get("Docker-Content-Digest")
    if stored and stored != digest:
        raise RegistryError(f"{ref}: the registry stored the manifest as {stored[:80]}, not {digest}")
    return digest
