"""URLs made safe to use and to print: credentials apart, loopback recognised, schemes checked.

No ``requests`` here: the registry's quick path and every message use these without it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import DownloadError
from ..redact import redact

__all__ = [
    "http_allowed",
    "DOWNGRADE",
    "NOT_HTTP",
    "PLAIN_HTTP",
    "HttpTarget",
    "check_scheme",
    "is_loopback",
    "scheme_refusal",
    "split_url",
]

# What :func:`scheme_refusal` answers; each reads after "the URL is".
PLAIN_HTTP = "plain http"
DOWNGRADE = "plain http after https"
NOT_HTTP = "not an http(s) URL"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HttpTarget:
    """A URL split for safe use: no userinfo, no fragment, credentials apart.

    Attributes:
        url: the URL to request (no userinfo, no fragment).
        auth: ``(user, password)`` from the URL's userinfo, or ``None``.
        display: the URL as it may be printed (redacted).
    """

    url: str
    auth: tuple[str, str] | None
    display: str

    @property
    def host(self) -> str:
        """The host name (no port)."""
        return urlsplit(self.url).hostname or ""


def split_url(raw: str) -> HttpTarget:
    """Split ``raw`` into a :class:`HttpTarget`.

    Raises:
        DownloadError: the URL has no host.
    """
    parts = urlsplit(raw)
    if not parts.hostname:
        raise DownloadError(f"{redact(raw)}: not a URL with a host")
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return HttpTarget(url=url, auth=auth, display=redact(url))


def scheme_refusal(url: str, http_allowed: Callable[[str], bool], *, after: str = "") -> str:
    """Why ``url`` may not be requested, or ``""`` when it may: the one scheme rule for every URL
    cnbkit requests, the user's and every URL a server hands back (a redirect, an upload
    ``Location``, a token realm).

    Only https and http; plain http never after ``after`` (the https URL that handed ``url``
    back: no downgrade), and only to a loopback host or one ``http_allowed`` permits (called
    with ``host`` and with ``host:port``). The answer is :data:`PLAIN_HTTP`, :data:`DOWNGRADE`
    or :data:`NOT_HTTP`.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        return ""
    if scheme != "http":
        return NOT_HTTP
    if urlsplit(after).scheme.lower() == "https":
        return DOWNGRADE
    host = parts.hostname or ""
    netloc = parts.netloc.rpartition("@")[2]  # host[:port], as --insecure-registry names it
    if is_loopback(host) or http_allowed(host) or http_allowed(netloc):
        return ""
    return PLAIN_HTTP


def check_scheme(target: HttpTarget, allow_http: bool) -> None:
    """Refuse what may not be downloaded: anything but https, and plain http to a host that is
    not loopback unless ``--allow-http`` says the network is trusted."""
    refusal = scheme_refusal(target.url, lambda _host: allow_http)
    if refusal is NOT_HTTP:
        raise DownloadError(f"{target.display}: only https:// and http:// can be downloaded")
    if refusal:
        raise DownloadError(
            f"{target.display}: plain http to a non-loopback host is refused; use https, or pass "
            "--allow-http (CNBKIT_ALLOW_HTTP=1) if you trust the network"
        )


def http_allowed(host: str, insecure: bool | Collection[str]) -> bool:
    """Whether plain http may be used with ``host`` (``name``, ``name:port`` or ``[v6]:port``):
    loopback always; others when ``insecure`` is ``True`` or lists the host or ``host:port``."""
    name = urlsplit(f"//{host}").hostname or host
    if is_loopback(name) or insecure is True:
        return True
    listed = () if isinstance(insecure, bool) else insecure
    return host in listed or name in listed
