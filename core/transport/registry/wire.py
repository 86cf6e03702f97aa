"""One registry HTTP request: any method, manual redirects, retries, and errors worth reading.

:func:`cnbkit.transport.http.open_response` only GETs and sends its headers to every hop; a
registry needs HEAD, PUT, POST and PATCH, and its ``Authorization`` header must never follow a
redirect to blob storage on another host (a presigned URL carries its own credentials, and a
registry token handed to a CDN is a leak). So the redirect loop here keeps the registry's
credentials apart from the other headers and drops them as soon as the host changes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ...archive.streams import Readable
from ...errors import DownloadError
from ...oci._json import load_json
from ...oci.errors import ManifestError
from ...redact import redact
from ..http import (
    ATTEMPTS,
    check_redirect,
    connection_failure,
    is_timeout,
    redirect_location,
    retry_after,
    stalled,
)
from ..urls import split_url

if TYPE_CHECKING:
    import requests

__all__ = ["RegistryError", "error_code", "read_body", "send"]

_REDIRECTS = (301, 302, 303, 307, 308)
_RETRY_STATUS = (429, 500, 502, 503, 504)
_MAX_REDIRECTS = 10
_BACKOFF = 0.25
_MAX_RETRY_AFTER = 30.0
_ERROR_BODY_MAX = 64 * 1024


class RegistryError(DownloadError):
    """A registry answered with an error, or refused what was asked.

    Attributes:
        status: the HTTP status, or ``None`` when no response was involved.
        code: the registry's error code (``MANIFEST_UNKNOWN``, ``UNAUTHORIZED``...), or ``""``.
    """

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def error_code(response: requests.Response) -> tuple[str, str]:
    """The first ``(code, message)`` of a registry's JSON error body, or ``("", "")``.

    The body is read only up to 64 KiB and only when it says it is JSON: an error page from a
    proxy can be anything, and none of it is worth memory.
    """
    if "json" not in response.headers.get("Content-Type", ""):
        return "", ""
    try:
        body = read_body(response, _ERROR_BODY_MAX, source="", peer="registry", timeout=0)
        errors = load_json(body, source="error body", limit=_ERROR_BODY_MAX).get("errors") or []
        first = errors[0]
        code, message = str(first.get("code", ""))[:64], str(first.get("message", ""))[:160]
    except (ManifestError, TypeError, AttributeError, IndexError, DownloadError):
        return "", ""  # not a registry's error document: the status alone is the message
    # One line, nothing a hostile registry could use to fake a second message.
    return redact(" ".join(code.split())), redact(" ".join(message.split()))


def read_body(response: requests.Response, most: int, *, source: str, peer: str, timeout: float) -> bytes:
    """Up to ``most`` bytes of a small body (a manifest, a token; pass a limit plus one to tell
    a body over it).

    Raises:
        DownloadError: the ``peer`` stalled, or the connection broke before the body's end
            (never urllib3's exceptions).
    """
    import requests
    import urllib3

    try:
        data: bytes = response.raw.read(most, decode_content=True)
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        if is_timeout(exc):
            raise stalled(source, peer, timeout) from None
        raise DownloadError(
            f"{source}: the connection to the {peer} broke before the end; try again"
        ) from None
    return data


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    authorization: str | None,
    verify: str | bool,
    timeout: float,
    allow_http: Callable[[str], bool],
    body: bytes | Readable | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """Send one request with redirects (GET and HEAD only) and retries; return the response.

    Args:
        session: the shared session.
        method: ``GET``, ``HEAD``, ``PUT``, ``POST``, ``PATCH`` or ``DELETE``.
        url: the full URL (no userinfo).
        headers: headers for every hop (``Accept``, ``Range``, ``Content-Type``).
        authorization: the ``Authorization`` value for the first host only, or ``None``.
        verify: TLS verification (``True`` or a CA bundle path).
        timeout: connect and read timeout in seconds.
        allow_http: whether plain http may be used for a host name.
        body: the request body; a stream body is sent once and never retried.
        sleep: for tests.

    Returns:
        The response, streaming (the caller closes it). Error statuses are returned, not raised,
        except that 429 and 5xx are retried first (``ATTEMPTS`` in all, honouring
        ``Retry-After``) when the request can be replayed.

    Raises:
        DownloadError: connection, TLS or timeout failure; a refused redirect.
    """
    import requests

    display = redact(url)
    replayable = body is None or isinstance(body, bytes)
    attempts = ATTEMPTS if replayable else 1
    last: Exception | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(_BACKOFF * 2 ** (attempt - 1) * (1 + random.random() / 4))
        current, auth, hops = url, authorization, 0
        try:
            while True:
                hop_headers = dict(headers)
                if auth is not None:
                    hop_headers["Authorization"] = auth
                response = session.request(
                    method,
                    current,
                    headers=hop_headers,
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
                current, auth = _redirect(
                    display, current, redirect_location(response), auth, hops, allow_http
                )
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
                    raise RegistryError(
                        f"{display}: registry busy (HTTP {response.status_code}), asks to retry after "
                        f"{wait:.0f} s",
                        response.status_code,
                    )
                sleep(wait)
            last = RegistryError(f"{display}: HTTP {response.status_code}", response.status_code)
            continue
        return response
    if isinstance(last, DownloadError):
        raise DownloadError(f"{last} (after {attempts} attempts)")
    assert last is not None
    raise connection_failure(last, display, timeout, verify)


def _redirect(
    display: str, url: str, location: str, auth: Any, hops: int, allow_http: Callable[[str], bool]
) -> tuple[str, Any]:
    if hops > _MAX_REDIRECTS:
        raise DownloadError(f"{display}: more than {_MAX_REDIRECTS} redirects")
    next_url = urljoin(url, location)
    check_redirect(display, url, next_url, allow_http, "refused")
    old, new = urlsplit(url), urlsplit(next_url)
    if (new.hostname, new.port, new.scheme) != (old.hostname, old.port, old.scheme):
        auth = None  # the registry's credentials are for the registry: never blob storage
    return split_url(next_url).url, auth  # userinfo in a Location header is never used
