"""HTTP for every resolver: one session, manual redirects, retries, clear errors.

``requests`` is imported only in :mod:`cnbkit.transport` and only inside the functions that
need it: the CLI and a warm resolve of a local file never pay for it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..errors import DownloadError
from ..redact import redact
from .urls import DOWNGRADE, NOT_HTTP, HttpTarget, scheme_refusal, split_url

if TYPE_CHECKING:
    import requests

    from ..archive.hashing import HashingFile

    Session = requests.Session  # the type the context hands plugins, named here only

__all__ = [
    "ATTEMPTS",
    "Interruptible",
    "abort_response",
    "full_length",
    "ca_hint",
    "check_redirect",
    "Session",
    "connection_failure",
    "is_timeout",
    "new_session",
    "open_response",
    "redirect_location",
    "retry_or_raise",
    "stalled",
    "retry_after",
]

_REDIRECTS = (301, 302, 303, 307, 308)
_RETRY_STATUS = (429, 500, 502, 503, 504)
_MAX_REDIRECTS = 10
ATTEMPTS = 4
_BACKOFF = 0.25
_MAX_RETRY_AFTER = 30.0


def new_session() -> requests.Session:
    """A session that trusts the environment for proxies and does no retries of its own."""
    import requests

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "cnbkit"
    return session


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


# Where a CA bundle comes from after --ca-cert, in cnbkit's order (options.py): first set wins.
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def ca_hint(verify: str | bool) -> str:
    """What to tell a user whose certificate check failed: the bundle actually in effect.

    Suggesting ``SSL_CERT_FILE`` to a user whose ``REQUESTS_CA_BUNDLE`` wins over it sends them
    to change a variable that is not read; so the hint names the variable (or ``--ca-cert``)
    that gave ``verify``, and suggests a variable only when the system store was used.
    """
    if isinstance(verify, str):
        for name in _CA_VARIABLES:
            value = os.environ.get(name)
            if value:
                if value == verify:
                    return (
                        f"the CA bundle in use is {name}={verify}: add the server's CA to it, or "
                        "give another with --ca-cert FILE"
                    )
                break  # the first set variable lost to --ca-cert
        import ssl

        defaults = ssl.get_default_verify_paths()
        if verify not in (defaults.cafile, defaults.openssl_cafile):
            return f"the CA bundle in use is --ca-cert {verify}: add the server's CA to it"
    return "give the server's CA bundle with --ca-cert FILE or SSL_CERT_FILE"


def connection_failure(
    exc: Exception, display: str, timeout: float, verify: str | bool = True
) -> DownloadError:
    """The one-line :class:`DownloadError` for a request that failed without an answer
    (TLS, timeout, proxy, refused connection), naming ``display`` and the fix."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        reason = (
            "certificate verification failed" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else "TLS failed"
        )
        return DownloadError(f"{display}: {reason}; {ca_hint(verify)}")
    if isinstance(exc, (requests.exceptions.Timeout,)) or "timed out" in str(exc).lower():
        return DownloadError(
            f"{display}: no answer within {timeout:g} s; raise --timeout or CNBKIT_TIMEOUT if the "
            "server is slow"
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return DownloadError(f"{display}: the proxy failed ({redact(str(exc))[:200]}); check HTTPS_PROXY")
    return DownloadError(f"{display}: connection failed ({type(exc).__name__}); check the host and network")


def abort_response(response: requests.Response) -> None:
    """Shut down the socket under a streaming ``response``, from any thread.

    A thread blocked reading the body (a stalled server) gets the end of the stream at once
    instead of waiting out the read timeout: this is how Ctrl-C and SIGTERM stop a download
    within a second. Only the socket is shut down, not closed: the reading thread still owns
    the descriptor and closes it on its way out.
    """
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop the TLS
            # state under the reading thread's feet.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def redirect_location(response: requests.Response) -> str:
    """A redirect's ``Location`` as the text it is: UTF-8 (as requests reads it), not the
    Latin-1 mojibake of the raw header."""
    location: str = response.headers["location"]
    try:
        return location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return location


class Interruptible:
    """A transfer that another thread can stop while it is blocked reading ``self.response``.

    :meth:`interrupt` (Ctrl-C, or a reader that gave up, via ``ThreadedReader.close``) shuts
    the socket down, so the read returns at once; the transfer calls :meth:`check_interrupted`
    where it would otherwise resume or commit: a body cut short this way is never retried nor
    cached.
    """

    response: requests.Response
    partial: HashingFile | None = None  # the temp file being written, set by the transfer
    _interrupted = False

    def interrupt(self) -> None:
        """Stop the transfer from another thread."""
        self._interrupted = True
        abort_response(self.response)

    def abandon(self) -> None:
        """Remove the temp file of a transfer that :meth:`interrupt` could not stop in time:
        one blocked where no socket can be shut down (a resume waiting for its headers). Its
        thread, should it ever wake, finds the file gone and is never committed."""
        partial = self.partial
        if partial is not None:
            partial.abort()

    def check_interrupted(self, what: str) -> None:
        """Raise :class:`DownloadError` once :meth:`interrupt` was called."""
        if self._interrupted:
            raise DownloadError(f"{what}: the download was cancelled")


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a read or connect timeout."""
    while exc is not None:
        if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def open_response(
    session: requests.Session,
    target: HttpTarget,
    *,
    headers: dict[str, str],
    verify: str | bool,
    timeout: float,
    allow_http: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> requests.Response:
    """GET ``target`` with redirects, retries and backoff; return the streaming response.

    Redirects are followed by hand, so that credentials from the URL go only to the original
    host, an ``https`` URL never redirects to ``http``, and every hop gets the same checks.
    Connection errors, 429 and 5xx are retried (``ATTEMPTS`` in all) with exponential backoff,
    honouring ``Retry-After``; a timeout is not retried (a stalled server tends to stay so).

    Raises:
        DownloadError: any failure, with the (redacted) URL and the HTTP status.
    """
    import requests

    last: Exception | None = None
    for attempt in range(ATTEMPTS):
        if attempt:
            sleep(_BACKOFF * 2 ** (attempt - 1) * (1 + random.random() / 4))
        url, auth, hops = target.url, target.auth, 0
        try:
            while True:
                response = session.get(
                    url,
                    headers=headers,
                    auth=auth,
                    stream=True,
                    allow_redirects=False,
                    verify=verify,
                    timeout=(timeout, timeout),
                )
                if response.status_code not in _REDIRECTS or "location" not in response.headers:
                    break
                response.close()
                hops += 1
                next_url = urljoin(url, redirect_location(response))
                url, auth = _redirect(target, url, next_url, auth, allow_http, hops)
        except UnicodeDecodeError:
            # requests decodes every redirect's Location as UTF-8, even with redirects off
            raise DownloadError(f"{target.display}: redirected to a Location that is not UTF-8") from None
        except requests.exceptions.RequestException as exc:
            if is_timeout(exc) or isinstance(exc, requests.exceptions.SSLError):
                raise connection_failure(exc, target.display, timeout, verify) from None
            last = exc
            continue
        if response.status_code in _RETRY_STATUS and attempt + 1 < ATTEMPTS:
            wait = retry_after(response)
            response.close()
            if wait is not None:
                if wait > _MAX_RETRY_AFTER:
                    raise DownloadError(
                        f"{target.display}: server busy (HTTP {response.status_code}), asks to "
                        f"retry after {wait:.0f} s"
                    )
                sleep(wait)
            last = DownloadError(f"{target.display}: HTTP {response.status_code}")
            continue
        return response
    if isinstance(last, DownloadError):
        raise DownloadError(f"{last} (after {ATTEMPTS} attempts)")
    assert last is not None
    raise connection_failure(last, target.display, timeout, verify)


def _redirect(
    target: HttpTarget, url: str, next_url: str, auth: Any, allow_http: bool, hops: int
) -> tuple[str, Any]:
    if hops > _MAX_REDIRECTS:
        raise DownloadError(f"{target.display}: more than {_MAX_REDIRECTS} redirects")
    check_redirect(target.display, url, next_url, lambda _host: allow_http, "pass --allow-http")
    old, new = urlsplit(url), urlsplit(next_url)
    if (new.hostname, new.port) != (old.hostname, old.port):
        auth = None  # credentials were given for the first host only
    clean = split_url(next_url)  # userinfo in a Location header is never used
    return clean.url, auth


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


def full_length(response: Any) -> int | None:
    """The length of the whole file a 200 or 206 response is (part of), when it says."""
    if response.status_code == 206:
        size = response.headers.get("Content-Range", "").rpartition("/")[2]
    else:
        size = response.headers.get("Content-Length", "")
    return int(size) if size.isdigit() else None


def stalled(source: str, peer: str, timeout: float) -> DownloadError:
    """The error for a ``peer`` (``registry``, ``server``...) that went silent mid-body."""
    return DownloadError(
        f"{source}: the {peer} stopped sending for {timeout:g} s; raise --timeout or CNBKIT_TIMEOUT"
    )


def retry_or_raise(
    exc: BaseException,
    source: str,
    *,
    peer: str,
    timeout: float,
    failures: int,
    received: int,
    total: int | None,
) -> None:
    """Decide after a body broke off: return to resume it, or raise when it is hopeless.

    A stalled peer (a read timeout) is not retried: it would stall again. A connection that
    broke ``failures`` times (:data:`ATTEMPTS` in all) is given up.

    Raises:
        DownloadError: naming ``source``, the stall or the bytes received before each break.
    """
    if is_timeout(exc):
        raise stalled(source, peer, timeout) from None
    if failures >= ATTEMPTS:
        expected = f" of {total}" if total is not None else ""
        raise DownloadError(
            f"{source}: download incomplete: the connection broke after {received}{expected} bytes, "
            f"{failures} times"
        ) from None
