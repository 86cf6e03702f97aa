"""The warm path of a tag: one ``HEAD`` with the standard library, no ``requests``, no ping.

Revalidating a cached tag is one small request, but reaching it through the full client costs
the import of ``requests`` (about 0.2 s here, most of a warm resolve) and a ``/v2/`` ping. So
the client remembers, per registry, the scheme of a registry that answered its ping without
asking for credentials (a stamp in the cache: a scheme, never a credential), and the next
process sends its ``HEAD`` straight there with :mod:`http.client`. Anything but a clean ``200``
with a valid ``Docker-Content-Digest`` (a 401 because the registry now wants credentials, a
redirect, an error, a proxy that must be used) returns ``None``, and the caller takes the full
client's path, which pings, authenticates and reports errors properly. Plain http is used only
if it is still allowed now.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit

from ...archive.digest import validate_digest
from ...cache import Cache, CacheEntry
from ...errors import CnbkitError
from .reference import Reference

__all__ = ["quick_head", "remember_endpoint"]

_PROXY_VARS = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def _key(ref: Reference) -> str:
    return f"registry-endpoint:{ref.api_host}"


def remember_endpoint(cache: Cache, ref: Reference, scheme: str) -> None:
    """Record that ``ref``'s registry answers anonymously on ``scheme`` (``http``/``https``)."""
    cache.remember_stamp(CacheEntry(url=_key(ref), digest="", size=0, etag=scheme))


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
    entry = cache.lookup_stamp(_key(ref))
    if entry is None or entry.etag not in ("http", "https"):
        return None
    scheme = entry.etag
    if (scheme == "http" and not allow_http(ref.api_host)) or _proxied(ref.hostname):
        return None
    import http.client

    parts = urlsplit(f"//{ref.api_host}")
    try:
        if scheme == "https":
            import ssl

            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                return None  # never without verification on this path
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                ref.hostname, parts.port, timeout=timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(ref.hostname, parts.port, timeout=timeout)
        try:
            connection.request(
                "HEAD",
                f"/v2/{ref.repository}/manifests/{ref.tag or 'latest'}",
                headers={"Accept": ", ".join(accept), "User-Agent": "cnbkit"},
            )
            response = connection.getresponse()
            header = response.getheader("Docker-Content-Digest", "") or ""
            length = response.getheader("Content-Length", "") or ""
            status = response.status
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError):
        return None
    if status != 200 or not length.isdigit():
        return None
    try:
        return validate_digest(header.strip()), int(length)
    except CnbkitError:
        return None
