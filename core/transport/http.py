"""HTTP for every resolver: one session, clear errors, transfers that can be interrupted.

The request itself (redirects, retries) is :func:`cnbkit.transport.request.send`.
``requests`` is imported only in :mod:`cnbkit.transport` and only inside the functions that
need it: the CLI and a warm resolve of a local file never pay for it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import TYPE_CHECKING, Any

from ..errors import DownloadError
from ..redact import redact

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
    "Session",
    "connection_failure",
    "is_timeout",
    "new_session",
    "retry_or_raise",
    "stalled",
]

ATTEMPTS = 4  # tries of a request, and breaks of a body, before giving up (request.py)


def new_session() -> requests.Session:
    """A session that trusts the environment for proxies and does no retries of its own."""
    import requests

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "cnbkit"
    return session


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
