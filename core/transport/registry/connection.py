"""The authenticated channel to registries: ping, scheme choice, auth retries, error messages.

Every operation of :class:`~cnbkit.transport.registry.client.RegistryClient` goes through
:meth:`Connection.request`, which pings the registry once (``GET /v2/``) to learn its scheme
and its challenge, adds the ``Authorization`` header the challenge calls for, and answers one
401 by renewing the token (or fetching credentials) and sending the request again.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from ...archive.streams import Readable
from ...errors import DownloadError
from ...redact import redact
from ..request import origin, send
from ..urls import PLAIN_HTTP, http_allowed, scheme_refusal
from .auth import Authenticator, login_advice
from .credentials import CredentialsProvider
from .reference import Reference
from .wire import RegistryError, error_code

if TYPE_CHECKING:
    import requests

__all__ = ["Connection", "http_allowed", "pull_scope", "push_scope"]


def pull_scope(ref: Reference) -> tuple[str, ...]:
    """The token scope to read ``ref``'s repository."""
    return (f"repository:{ref.repository}:pull",)


def push_scope(ref: Reference) -> tuple[str, ...]:
    """The token scope to write ``ref``'s repository."""
    return (f"repository:{ref.repository}:pull,push",)


_ADVICE = {
    403: "the credentials lack access to this repository",
    404: "check the repository name, the tag or the digest",
    429: "rate limited by the registry: log in (docker login) or try again later",
}


@dataclass
class _Endpoint:
    base: str  # scheme://host[:port]
    auth: Authenticator


class Connection:
    """Pinged registries and their authenticators, shared by every operation of a client.

    Args:
        session: the shared ``requests`` session.
        verify: TLS verification (``True`` or a CA bundle path).
        timeout: connect and read timeout in seconds.
        insecure: ``True`` to allow plain http to any registry, or the hosts (``host`` or
            ``host:port``) allowed it; loopback hosts are always allowed.
        credentials: finds credentials for a registry when a challenge asks for them.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        verify: str | bool,
        timeout: float,
        insecure: bool | Collection[str],
        credentials: CredentialsProvider,
    ) -> None:
        self.session = session
        self.verify = verify
        self.timeout = timeout
        self._insecure = insecure
        self._credentials = credentials
        self._endpoints: dict[str, _Endpoint] = {}
        self._lock = threading.Lock()

    def allow_http(self, host: str) -> bool:
        """Whether plain http may be used with ``host`` (``name``, ``name:port`` or ``[v6]:port``)."""
        return http_allowed(host, self._insecure)

    def endpoint(self, ref: Reference) -> _Endpoint:
        """The pinged endpoint of ``ref``'s registry (pinged on first use, once per client).

        Raises:
            RegistryError: the registry is unreachable, is not a registry, or needs plain http
                that was not allowed.
        """
        with self._lock:
            endpoint = self._endpoints.get(ref.api_host)
            if endpoint is None:
                endpoint = self._ping(ref)
                self._endpoints[ref.api_host] = endpoint
            return endpoint

    def _ping(self, ref: Reference) -> _Endpoint:
        host = ref.api_host
        try:
            return self._ping_at(ref, "https")
        except DownloadError as exc:
            if not self.allow_http(ref.api_host):
                hint = (
                    ""
                    if "TLS" not in str(exc)
                    else f"; if it serves plain http, use --insecure-registry {host}"
                )
                raise RegistryError(f"{ref.registry}: {exc}{hint}") from None
            https_error = exc
        try:
            return self._ping_at(ref, "http")
        except DownloadError as exc:
            raise RegistryError(f"{ref.registry}: {https_error}; over plain http: {exc}") from None

    def _ping_at(self, ref: Reference, scheme: str) -> _Endpoint:
        base = f"{scheme}://{ref.api_host}"
        auth = Authenticator(
            ref.registry,
            scheme,
            self._credentials,
            self._send,
            timeout=self.timeout,
            allow_http=self.allow_http,
        )
        response = self._send("GET", f"{base}/v2/", {}, None, None)
        try:
            if response.status_code == 401:
                header = response.headers.get("WWW-Authenticate", "")
                auth.set_challenge(header)
                if auth.challenge is None:
                    raise RegistryError(
                        f"{ref.registry}: answered 401 with no usable WWW-Authenticate challenge", 401
                    )
            elif response.status_code != 200:
                raise RegistryError(
                    f"{ref.registry}: {base}/v2/ answered HTTP {response.status_code}: not a registry "
                    "(check the host and port)",
                    response.status_code,
                )
        finally:
            response.close()
        return _Endpoint(base, auth)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        authorization: str | None,
        body: bytes | Readable | None,
    ) -> requests.Response:
        return send(
            self.session,
            method,
            url,
            headers=headers,
            credentials=authorization,
            body=body,
            verify=self.verify,
            timeout=self.timeout,
            allow_http=self.allow_http,
            peer="registry",
            error=RegistryError,
        )

    def request(
        self,
        ref: Reference,
        method: str,
        path: str,
        *,
        scopes: tuple[str, ...],
        headers: dict[str, str] | None = None,
        body: bytes | Readable | None = None,
    ) -> requests.Response:
        """Send an authorised request to ``ref``'s registry; return the (streaming) response.

        Args:
            ref: names the registry (its repository is in ``path`` and ``scopes`` already).
            method: the HTTP method.
            path: ``/v2/...`` or an absolute URL the registry gave (an upload ``Location``);
                the ``Authorization`` header is sent only if it is on the registry's host.
            scopes: the token scopes the request needs.
            headers: more headers.
            body: the body; a stream is sent once (a 401 then is returned, not retried).

        Raises:
            RegistryError: see :meth:`endpoint`, and a refused token or realm.
            DownloadError: connection, TLS or timeout failure.
        """
        endpoint = self.endpoint(ref)
        url = urljoin(endpoint.base + "/", path)
        same_host = origin(url) == origin(endpoint.base)
        refusal = scheme_refusal(url, self.allow_http, after=endpoint.base)
        if refusal:  # an upload Location, a mount's session: the registry's own rule holds
            raise RegistryError(
                f"{ref.name}: the registry sent a URL that is {refusal} ({redact(url)}); refused, before "
                f"anything was sent there{_http_hint(refusal, url)}"
            )
        headers = headers or {}
        authorization = endpoint.auth.authorization(scopes) if same_host else None
        response = self._send(method, url, headers, authorization, body)
        if response.status_code != 401 or not same_host or not (body is None or isinstance(body, bytes)):
            return response
        header = response.headers.get("WWW-Authenticate")
        if header:
            endpoint.auth.set_challenge(header)
        renewed = endpoint.auth.authorization(scopes, renew=True)
        if renewed is None or (renewed == authorization and renewed.startswith("Basic ")):
            return response  # nothing new to offer: the caller reports the 401
        response.close()
        return self._send(method, url, headers, renewed, body)

    def failure(self, ref: Reference, response: requests.Response, what: str) -> RegistryError:
        """A one-line error for an unexpected response (which is closed).

        It names the registry and repository, ``what`` was asked, the status, the registry's
        error code and message, and what to do; never a credential.
        """
        code, message = error_code(response)
        response.close()
        status = response.status_code
        text = f"{ref.name}: {what}: HTTP {status}"
        if code:
            text += f" {code}"
        if message and message.lower() != code.lower().replace("_", " "):
            text += f" ({message})"
        advice = login_advice(ref.registry) if status == 401 else _ADVICE.get(status)
        if advice:
            text += f"; {advice}"
        return RegistryError(text, status, code)


def _http_hint(refusal: str, url: str) -> str:
    if refusal is not PLAIN_HTTP:
        return ""
    host = urlsplit(url).netloc.rpartition("@")[2]  # host[:port] as --insecure-registry names it: no userinfo
    return f" (only loopback and --insecure-registry hosts may use plain http: {host})"
