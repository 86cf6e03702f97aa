"""Every HTTP exchange of cnbkit: one request function, one redirect, retry and timeout policy.

The https downloader (:mod:`cnbkit.transport.download`), the registry client
(:mod:`cnbkit.transport.registry.wire`) and the registry's token service all send through
:func:`send`, so that a rule is written once:

- **redirects** are followed by hand (GET and HEAD only), each hop checked against the scheme
  rule (:func:`~cnbkit.transport.urls.scheme_refusal`: never ``https`` to ``http``, plain http
  only where allowed); credentials go to the first origin only, and are dropped on any change
  of scheme, host or port (a presigned blob URL carries its own; a token handed to a CDN is a
  leak); userinfo in a ``Location`` is never used;
- **retries**: a connection error, 429 and 5xx are retried (:data:`ATTEMPTS` in all) with
  exponential backoff, honouring ``Retry-After`` up to 30 s; a timeout, a TLS failure and a
  request whose body is a stream are not (a stalled server tends to stay so; a stream is gone);
- **timeouts**: the same connect and per-read timeout for every request.

``requests`` is imported only inside :func:`send`.
"""

from __future__ import annotations

import datetime
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Union
from urllib.parse import urljoin, urlsplit

from ..archive.streams import Readable
from ..errors import DownloadError
from ..redact import redact
from .http import ATTEMPTS, connection_failure, is_timeout
from .urls import DOWNGRADE, NOT_HTTP, scheme_refusal, split_url

if TYPE_CHECKING:
    import requests

__all__ = ["Credentials", "check_redirect", "origin", "redirect_location", "retry_after", "send"]

_REDIRECTS = (301, 302, 303, 307, 308)
_RETRY_STATUS = (429, 500, 502, 503, 504)
_MAX_REDIRECTS = 10
_BACKOFF = 0.25
_MAX_RETRY_AFTER = 30.0

# An ``Authorization`` header value, or a ``(user, password)`` pair for basic auth (a URL's
# userinfo, encoded by requests as it always was).
Credentials = Union[str, "tuple[str, str]", None]


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    credentials: Credentials,
    verify: str | bool,
    timeout: float,
    allow_http: Callable[[str], bool],
    body: bytes | Readable | None = None,
    display: str | None = None,
    peer: str = "server",
    http_advice: str = "refused",
    error: type[DownloadError] = DownloadError,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """Send one request with redirects (GET and HEAD only) and retries; return the response.

    Args:
        session: the shared session.
        method: ``GET``, ``HEAD``, ``PUT``, ``POST``, ``PATCH`` or ``DELETE``.
        url: the full URL (no userinfo).
        headers: headers for every hop (``Accept``, ``Range``, ``Content-Type``).
        credentials: for the first origin only (see :data:`Credentials`), or ``None``.
        verify: TLS verification (``True`` or a CA bundle path).
        timeout: connect and read timeout in seconds.
        allow_http: whether plain http may be used for a host name.
        body: the request body; a stream body is sent once and never retried.
        display: the URL as messages name it (default: ``url`` redacted).
        peer: what the other side is called in messages (``server``, ``registry``).
        http_advice: ends the message of a redirect refused for plain http.
        error: the class of the error raised for a server that asks to wait too long.
        sleep: for tests.

    Returns:
        The response, streaming (the caller closes it). Error statuses are returned, not raised,
        except that 429 and 5xx are retried first when the request can be replayed.

    Raises:
        DownloadError: connection, TLS or timeout failure; a refused redirect; still failing
            after :data:`ATTEMPTS` attempts.
    """
    import requests

    display = display or redact(url)
    replayable = body is None or isinstance(body, bytes)
    attempts = ATTEMPTS if replayable else 1
    last: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(_BACKOFF * 2 ** (attempt - 1) * (1 + random.random() / 4))
        current, creds, hops = url, credentials, 0
        try:
            while True:
                hop_headers = dict(headers)
                if isinstance(creds, str):
                    hop_headers["Authorization"] = creds
                response = session.request(
                    method,
                    current,
                    headers=hop_headers,
                    auth=creds if isinstance(creds, tuple) else None,
                    data=body,
                    stream=True,
                    allow_redirects=False,
                    verify=verify,
                    timeout=(timeout, timeout),
                )
                if (
                    method not in ("GET", "HEAD")
                    or response.status_code not in _REDIRECTS
                    or "location" not in response.headers
                ):
                    break
                response.close()
                hops += 1
                if hops > _MAX_REDIRECTS:
                    raise DownloadError(f"{display}: more than {_MAX_REDIRECTS} redirects")
                next_url = urljoin(current, redirect_location(response))
                check_redirect(display, current, next_url, allow_http, http_advice)
                if origin(next_url) != origin(current):
                    creds = None  # given for the first origin only
                current = split_url(next_url).url  # userinfo in a Location header is never used
        except UnicodeDecodeError:
            # requests decodes every redirect's Location as UTF-8, even with redirects off
            raise DownloadError(f"{display}: redirected to a Location that is not UTF-8") from None
        except requests.exceptions.RequestException as exc:
            if is_timeout(exc) or isinstance(exc, requests.exceptions.SSLError) or not replayable:
                raise connection_failure(exc, display, timeout, verify) from None
            last = exc
            continue
        if response.status_code in _RETRY_STATUS and attempt + 1 < attempts:
            wait = retry_after(response)
            response.close()
            if wait is not None:
                if wait > _MAX_RETRY_AFTER:
                    raise error(
                        f"{display}: {peer} busy (HTTP {response.status_code}), asks to retry after "
                        f"{wait:.0f} s",
                        response.status_code,
                    )
                sleep(wait)
            last = error(f"{display}: HTTP {response.status_code}", response.status_code)
            continue
        return response
    if isinstance(last, DownloadError):
        raise DownloadError(f"{last} (after {attempts} attempts)")
    assert last is not None
    raise connection_failure(last, display, timeout, verify)


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``: credentials go only where all three are the same
    (a redirect or an upload ``Location`` on another port of the same host is another server)."""
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port


def retry_after(response: requests.Response) -> float | None:
    """How long a 429 or 503 asks to wait (``Retry-After`` seconds or HTTP-date), or ``None``."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    import email.utils  # rare: only a Retry-After date needs it

    try:  # an HTTP-date; anything else is ignored (the normal backoff applies)
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:  # "-0000": UTC by RFC 5322
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, parsed.timestamp() - time.time())


def redirect_location(response: requests.Response) -> str:
    """A redirect's ``Location`` as the text it is: UTF-8 (as requests reads it), not the
    Latin-1 mojibake of the raw header."""
    location: str = response.headers["location"]
    try:
        return location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return location


def check_redirect(
    display: str, url: str, next_url: str, http_allowed: Callable[[str], bool], advice: str
) -> None:
    """Refuse a redirect from ``url`` to ``next_url`` that breaks the scheme rule
    (:func:`~cnbkit.transport.urls.scheme_refusal`); ``advice`` ends the plain-http message.

    Raises:
        DownloadError: naming ``display`` and the refused URL.
    """
    refusal = scheme_refusal(next_url, http_allowed, after=url)
    if refusal is NOT_HTTP:
        raise DownloadError(f"{display}: redirected to unsupported scheme {urlsplit(next_url).scheme!r}")
    if refusal is DOWNGRADE:
        raise DownloadError(f"{display}: refusing a redirect from https to http ({redact(next_url)})")
    if refusal:
        raise DownloadError(f"{display}: redirected to plain http ({redact(next_url)}); {advice}")
