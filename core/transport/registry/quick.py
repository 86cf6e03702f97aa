"""The warm path of a tag: one ``HEAD`` with the standard library, no ``requests``, no ping.

Revalidating a cached tag is one small request, but reaching it through the full client costs
the import of ``requests`` (about 0.2 s here, most of a warm resolve) and a ``/v2/`` ping. So
the client remembers, per registry, the scheme of a registry that answered its ping without
asking for credentials (a stamp in the cache: a scheme, never a credential), and the next
process sends its ``HEAD`` straight there with a bare socket. Anything but a clean ``200``
with a valid ``Docker-Content-Digest`` (a 401 because the registry now wants credentials, a
redirect, an error, a proxy that must be used) returns ``None``, and the caller takes the full
client's path, which pings, authenticates and reports errors properly.

It is a cache-only shortcut, not a second HTTP client with rules of its own: it runs only for
a registry the cache remembers; the scheme rule is the one every request obeys
(:func:`~cnbkit.transport.urls.scheme_refusal`: plain http only if it is still allowed now);
the timeout is the client's; the answer is read by the client's own reading of a tag's ``HEAD``
(:func:`manifest_head`); a redirect, a retry status or anything doubtful is left to the one
request function (:func:`cnbkit.transport.request.send`) by returning ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from ...archive.digest import validate_digest
from ...cache import Cache
from ...cache.records import RegistryEndpoint
from ...errors import CnbkitError
from ..urls import scheme_refusal
from .reference import Reference

__all__ = ["manifest_head", "quick_head", "remember_endpoint"]

_PROXY_VARS = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def _key(ref: Reference) -> str:
    return ref.api_host


def remember_endpoint(cache: Cache, ref: Reference, scheme: str) -> None:
    """Record that ``ref``'s registry answers anonymously on ``scheme`` (``http``/``https``)."""
    cache.remember(RegistryEndpoint(_key(ref), scheme=scheme))


def _proxied(host: str) -> bool:
    if not any(os.environ.get(v) for v in _PROXY_VARS):
        return False
    import urllib.request  # only when proxies are configured at all

    return not urllib.request.proxy_bypass(host)


def quick_head(
    cache: Cache,
    ref: Reference,
    accept: tuple[str, ...],
    *,
    verify: str | bool,
    timeout: float,
    allow_http: Callable[[str], bool],
) -> tuple[str, int] | None:
    """``(digest, size)`` of the manifest ``ref``'s tag names now, or ``None`` to take the full path."""
    entry = cache.recall(RegistryEndpoint, _key(ref))
    if entry is None or entry.scheme not in ("http", "https"):
        return None
    scheme = entry.scheme
    if scheme_refusal(f"{scheme}://{ref.api_host}/", allow_http) or _proxied(ref.hostname):
        return None
    parts = urlsplit(f"//{ref.api_host}")
    if scheme == "https" and verify is False:
        return None  # never without verification on this path
    request = (
        f"HEAD /v2/{ref.repository}/manifests/{ref.tag or 'latest'} HTTP/1.1\r\n"
        f"Host: {ref.api_host}\r\nAccept: {', '.join(accept)}\r\nUser-Agent: cnbkit\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    try:
        head = _exchange(
            ref.hostname, parts.port or (443 if scheme == "https" else 80), request, scheme, verify, timeout
        )
    except (OSError, ValueError, UnicodeError):
        return None
    if head is None:
        return None
    status, headers = head
    found = manifest_head(headers) if status == 200 else None
    if found is None:
        return None
    try:
        return validate_digest(found[0]), found[1]
    except CnbkitError:
        return None  # the full client words the refusal


def manifest_head(headers: Mapping[str, str]) -> tuple[str, int] | None:
    """``(Docker-Content-Digest, Content-Length)`` of a manifest ``HEAD``'s answer, the digest
    not yet validated; ``None`` when either is missing (some registries omit them: GET it).

    ``headers`` is looked up by lower-case name (requests' headers ignore case).
    """
    digest = headers.get("docker-content-digest", "").strip()
    length = headers.get("content-length", "")
    if not digest or not length.isdigit():
        return None
    return digest, int(length)


_MAX_HEAD = 64 * 1024  # a HEAD answer's status line and headers; more is not a registry


def _exchange(
    host: str, port: int, request: bytes, scheme: str, verify: str | bool, timeout: float
) -> tuple[int, dict[str, str]] | None:
    """Send ``request`` and read the answer's status and headers (a HEAD has no body).

    A bare socket, not :mod:`http.client`: its import (with the ``email`` parser) costs more
    than the whole exchange. Anything but a plain HTTP/1.x head answers ``None``.
    """
    import socket

    raw = socket.create_connection((host, port), timeout=timeout)
    sock = raw
    try:
        if scheme == "https":
            import ssl

            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            sock = context.wrap_socket(raw, server_hostname=host)
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > _MAX_HEAD:
                return None
            chunk = sock.recv(16384)
            if not chunk:
                return None
            data += chunk
    finally:
        sock.close()  # a TLS socket took over the connection from ``raw``
        raw.close()
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        key = name.lower()
        if not colon or not name or name != name.strip() or key in headers:
            return None  # folded, malformed or repeated: let the full client judge
        headers[key] = value.strip()
    return int(code), headers
