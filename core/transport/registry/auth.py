"""Registry authentication: the ``WWW-Authenticate`` challenge, basic auth, and bearer tokens.

The token flow is Docker's (distribution ``docs/spec/auth/token.md``): the registry answers
401 with ``Bearer realm=...,service=...,scope=...``; the client asks the realm for a token for
that scope (with basic auth when it has credentials, or an OAuth2 ``refresh_token`` POST when
it has an identity token) and sends it as ``Authorization: Bearer``. Tokens are kept in memory
for the process, per registry and scope, until shortly before they expire; they live only in
``Authorization`` headers, never in a message, a log line or a cache key.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from ...oci._json import load_json
from ...redact import redact
from ..urls import DOWNGRADE, NOT_HTTP, scheme_refusal
from .credentials import Credentials, CredentialsProvider
from .wire import RegistryError, read_body

if TYPE_CHECKING:
    import requests

    # method, URL, headers, Authorization (or None), body: Connection's sender
    Sender = Callable[[str, str, dict[str, str], str | None, bytes | None], requests.Response]

__all__ = [
    "Authenticator",
    "Challenge",
    "basic_authorization",
    "clear_token_cache",
    "login_advice",
    "parse_challenges",
]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DEFAULT_EXPIRY = 60.0  # the token spec's default when expires_in is missing
_MIN_EXPIRY = 10.0
_TOKEN_BODY_MAX = 1024 * 1024

_tokens: dict[tuple[str, ...], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header.

    Attributes:
        scheme: lower-case (``bearer``, ``basic``).
        params: parameters by lower-case name (``realm``, ``service``, ``scope``).
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value (RFC 7235), tolerating what registries send.

    Quoted strings may hold commas and ``\\"`` escapes; several challenges may share one header
    (``requests`` joins repeated headers with ``, ``). Parsing stops at the first thing that is
    not a token, a parameter or a separator, keeping what came before.
    """
    challenges: list[Challenge] = []
    current: Challenge | None = None
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        match = _TOKEN.match(header, i)
        if not match:
            break
        name, i = match.group(), match.end()
        j = i
        while j < n and header[j] in " \t":
            j += 1
        if j < n and header[j] == "=" and current is not None:
            j += 1
            while j < n and header[j] in " \t":
                j += 1
            value, i = _value(header, j)
            current.params[name.lower()] = value
        else:
            current = Challenge(name.lower())
            challenges.append(current)
    return challenges


def basic_authorization(creds: Credentials | None) -> str | None:
    """The ``Authorization: Basic`` value for ``creds``: for a registry's basic challenge and a
    token server alike. Either half is enough (a password alone may be an access token); with
    neither, ``None`` (anonymous)."""
    if creds is None or not (creds.username or creds.password):
        return None
    pair = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _value(header: str, i: int) -> tuple[str, int]:
    if i < len(header) and header[i] == '"':
        out, i = [], i + 1
        while i < len(header) and header[i] != '"':
            if header[i] == "\\" and i + 1 < len(header):
                i += 1
            out.append(header[i])
            i += 1
        return "".join(out), i + 1
    match = _TOKEN.match(header, i)
    return (match.group(), match.end()) if match else ("", i)


def clear_token_cache() -> None:
    """Forget every bearer token this process holds (tests; a change of credentials)."""
    with _tokens_lock:
        _tokens.clear()


def login_advice(registry: str) -> str:
    """What to do about a 401 (never mentions the secret)."""
    return f"check credentials for {registry} (docker login / DOCKER_CONFIG)"


class Authenticator:
    """Authorization for one registry, from its ping challenge onwards.

    Args:
        registry: the registry name for credentials and messages (``docker.io``, ``host:port``).
        scheme: ``https`` or ``http``: the scheme the registry is reached with (no realm may
            downgrade it).
        credentials: finds credentials; called at most once, and only when a challenge needs them.
        send: sends a request (method, URL, headers, authorization, body): the connection's,
            so that the token request has the registry's TLS, timeout and redirect rules.
        timeout: seconds (for the message when the token server stalls).
        allow_http: whether plain http may be used for a host.
    """

    def __init__(
        self,
        registry: str,
        scheme: str,
        credentials: CredentialsProvider,
        send: Sender,
        *,
        timeout: float,
        allow_http: Callable[[str], bool],
    ) -> None:
        self.registry = registry
        self.scheme = scheme
        self.challenge: Challenge | None = None
        self._provider = credentials
        self._credentials: Credentials | None = None
        self._looked_up = False
        self._send = send
        self._timeout = timeout
        self._allow_http = allow_http

    def set_challenge(self, header: str) -> None:
        """Take the challenge from a 401's ``WWW-Authenticate`` (bearer preferred over basic)."""
        challenges = {c.scheme: c for c in parse_challenges(header)}
        self.challenge = challenges.get("bearer") or challenges.get("basic")

    def _creds(self) -> Credentials | None:
        if not self._looked_up:
            self._looked_up = True
            self._credentials = self._provider(self.registry)
        return self._credentials

    def authorization(self, scopes: tuple[str, ...], *, renew: bool = False) -> str | None:
        """The ``Authorization`` value for a request needing ``scopes``, or ``None`` (anonymous).

        Args:
            scopes: token scopes (``repository:org/app:pull``); ignored by basic auth.
            renew: fetch a new token even if one is cached (the registry refused the cached one).

        Raises:
            RegistryError: the realm is unsafe or refused the credentials.
        """
        challenge = self.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return basic_authorization(self._creds())
        if challenge.scheme != "bearer":
            raise RegistryError(f"{self.registry}: unsupported authentication scheme {challenge.scheme!r}")
        creds = self._creds()
        realm, service = challenge.params.get("realm", ""), challenge.params.get("service", "")
        key = (self.registry, realm, service, " ".join(sorted(scopes)), creds.username if creds else "")
        now = time.monotonic()
        with _tokens_lock:
            cached = _tokens.get(key)
            if renew:
                _tokens.pop(key, None)
            elif cached is not None and cached[1] > now:
                return f"Bearer {cached[0]}"
        token, lifetime = self._fetch(realm, service, scopes, creds)
        with _tokens_lock:
            # Renew a little early: a token must not expire between the check and the request.
            _tokens[key] = (token, now + lifetime - min(_MIN_EXPIRY, lifetime / 4))
        return f"Bearer {token}"

    def _check_realm(self, realm: str) -> str:
        parts = urlsplit(realm)
        host = parts.hostname or ""
        refusal = scheme_refusal(realm, self._allow_http, after=f"{self.scheme}:")
        if not host or refusal is NOT_HTTP:
            raise RegistryError(f"{self.registry}: the token realm {redact(realm)!r} is not an http(s) URL")
        if refusal is DOWNGRADE:
            raise RegistryError(
                f"{self.registry}: refusing a plain-http token realm ({redact(realm)}) for an https registry"
            )
        if refusal:
            raise RegistryError(
                f"{self.registry}: the token realm {redact(realm)} is plain http; refused (only "
                f"loopback or --insecure-registry {host} may use http)"
            )
        if parts.username is not None:
            raise RegistryError(f"{self.registry}: the token realm {redact(realm)} holds userinfo; refused")
        return realm

    def _fetch(
        self, realm: str, service: str, scopes: tuple[str, ...], creds: Credentials | None
    ) -> tuple[str, float]:
        realm = self._check_realm(realm)
        headers = {"Accept": "application/json"}
        if creds is not None and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "cnbkit",
            }
            if service:
                form["service"] = service
            if scopes:
                form["scope"] = " ".join(scopes)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            method, url, body, authorization = "POST", realm, urlencode(form).encode(), None
        else:
            query = ([("service", service)] if service else []) + [("scope", s) for s in scopes]
            sep = "&" if "?" in realm else "?"
            url = realm + (sep + urlencode(query) if query else "")
            method, body, authorization = "GET", None, basic_authorization(creds)
        response = self._send(method, url, headers, authorization, body)
        try:
            if response.status_code != 200:
                status = response.status_code
                advice = login_advice(self.registry) if status in (400, 401, 403) else "try again later"
                raise RegistryError(
                    f"{self.registry}: the token server {redact(realm.split('?')[0])} answered HTTP "
                    f"{status}; {advice}",
                    status,
                )
            raw = read_body(
                response,
                _TOKEN_BODY_MAX + 1,
                source=f"{self.registry}: token from {redact(realm.split('?')[0])}",
                peer="token server",
                timeout=self._timeout,
            )
        finally:
            response.close()
        source = f"{self.registry}: the token server's answer"
        data = load_json(raw, source=source, limit=_TOKEN_BODY_MAX, error=RegistryError)
        try:
            token = data.get("token") or data.get("access_token")
            lifetime = float(data.get("expires_in") or _DEFAULT_EXPIRY)
        except (ValueError, TypeError, AttributeError):
            token, lifetime = None, 0.0
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.registry}: the token server sent no usable token")
        if not token.isascii() or not token.isprintable() or " " in token:  # it becomes a header
            raise RegistryError(
                f"{self.registry}: the token server sent a token that is not printable ASCII; refused"
            )
        return token, max(lifetime, _MIN_EXPIRY)
