"""A Docker token server (the registry "token" auth flow) on loopback, signing real ES256 JWTs.

Protocol (https://distribution.github.io/distribution/spec/auth/token/): a registry with
``auth.token`` answers 401 with ``WWW-Authenticate: Bearer realm=R,service=S,scope=...``; the
client calls ``GET R?service=S&scope=repository:NAME:pull,push`` (any number of ``scope``
parameters) with basic auth, gets ``{"token", "access_token", "expires_in", "issued_at"}`` and
retries with ``Authorization: Bearer <token>``.

The JWT is signed with an EC P-256 key whose self-signed certificate is the registry's
``rootcertbundle``. The header carries ``x5c`` (the certificate, which is what Distribution 2.8
verifies against the bundle) and ``kid`` (the libtrust key ID of the key, which 2.8 also accepts).

Policy: known users with the right password get every action they ask for; anonymous requests
get ``pull`` only when ``anonymous_pull`` is on (else 401); a wrong password is always 401; a
``service`` other than ours is 400. Every request is recorded (``requests``, ``count()``).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

__all__ = ["TokenRequest", "TokenServer", "decode_jwt", "libtrust_key_id"]


class _QuietServer(ThreadingHTTPServer):
    """A client (the registry, cnbkit) closing its connection early is not a test failure:
    without this, socketserver prints a traceback into the test output."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class TokenRequest:
    """One request to the token server.

    Attributes:
        method: ``GET`` (``POST``, the OAuth2 form, is answered 404 so clients fall back to GET).
        path: the path without the query.
        service: the ``service`` parameter, or None.
        scopes: every ``scope`` parameter, in order.
        user: the basic-auth user name sent, or None (anonymous).
        status: the status answered.
        granted: the ``access`` claim of the token issued (empty when none was issued).
        at: ``time.monotonic()`` when the request was handled.
    """

    method: str
    path: str
    service: str | None
    scopes: tuple[str, ...]
    user: str | None
    status: int
    granted: tuple[dict[str, Any], ...]
    at: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The libtrust key ID Distribution 2.x computes for a key (its ``kid`` lookup table)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (header, claims) of a JWT, unverified: for assertions on what was issued."""
    header, claims, _ = token.split(".")
    return json.loads(_unb64url(header)), json.loads(_unb64url(claims))


def _parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    # "repository:name/part:pull,push" (a name never holds ':'), "registry:catalog:*".
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


class TokenServer:
    """The token server. Start it with ``start()`` (or ``with``), stop it with ``stop()``.

    Attributes:
        service: the ``service`` name the registry is configured with (and tokens' ``aud``).
        issuer: the tokens' ``iss`` (the registry's ``auth.token.issuer``).
        users: user name -> password of the accepted basic-auth credentials.
        anonymous_pull: grant ``pull`` (only) to requests without credentials.
        ttl: ``expires_in`` of the tokens, in seconds (the JWT ``exp`` follows it).
        cert_path: the signing certificate (PEM): the registry's ``rootcertbundle``.
        requests: every request handled, in order.
    """

    def __init__(
        self,
        directory: Path,
        *,
        users: dict[str, str] | None = None,
        service: str = "cnbkit-test-registry",
        issuer: str = "cnbkit-test-token-issuer",
        anonymous_pull: bool = False,
        ttl: int = 300,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.service = service
        self.issuer = issuer
        self.users = dict(users if users is not None else {"cnbkit": "token-pw"})
        self.anonymous_pull = anonymous_pull
        self.ttl = ttl
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._ssl_context = ssl_context
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cnbkit test token signer")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "token-signer.pem"
        self.cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self.key_id = libtrust_key_id(self._key.public_key())
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> TokenServer:
        """Listen on 127.0.0.1 (a port the kernel picks) in a daemon thread."""
        server = self

        class Handler(_Handler):
            owner = server

        httpd = _QuietServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        if self._ssl_context is not None:
            httpd.socket = self._ssl_context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on."""
        assert self._httpd is not None, "token server not started"
        return int(self._httpd.server_address[1])

    @property
    def realm(self) -> str:
        """The token endpoint (``auth.token.realm``), e.g. ``http://127.0.0.1:PORT/token``."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/token"

    # -- counters --------------------------------------------------------------------------------

    def mark(self) -> int:
        """A position in ``requests``: pass it as ``since=`` to count only what comes after."""
        with self._lock:
            return len(self.requests)

    def log(self, *, since: int = 0) -> list[TokenRequest]:
        """The requests recorded from position ``since`` on."""
        with self._lock:
            return list(self.requests[since:])

    def count(
        self, *, status: int | None = None, user: str | None = None, scope: str | None = None, since: int = 0
    ) -> int:
        """How many requests (from ``since`` on) had this status / user / one scope equal to ``scope``."""
        return sum(
            1
            for r in self.log(since=since)
            if (status is None or r.status == status)
            and (user is None or r.user == user)
            and (scope is None or scope in r.scopes)
        )

    @property
    def issued(self) -> int:
        """How many tokens were handed out (200 answers) in total."""
        return self.count(status=200)

    @property
    def rejected(self) -> int:
        """How many requests were refused with 401 in total."""
        return self.count(status=401)

    def reset(self) -> None:
        """Forget every recorded request (prefer ``mark()`` on a shared, session-wide server)."""
        with self._lock:
            self.requests.clear()

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- tokens ----------------------------------------------------------------------------------

    def issue(self, subject: str, access: list[dict[str, Any]], *, ttl: int | None = None) -> str:
        """A signed JWT for ``subject`` granting ``access`` (``[{type, name, actions}]``)."""
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "kid": self.key_id,
            "x5c": [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + (self.ttl if ttl is None else ttl),
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _grant(self, scopes: list[str], user: str | None) -> list[dict[str, Any]]:
        access = []
        for scope in scopes:
            parsed = _parse_scope(scope)
            if parsed is None:
                continue
            kind, name, actions = parsed
            if user is None:
                actions = [a for a in actions if a == "pull"]
            if actions:
                access.append({"type": kind, "name": name, "actions": actions})
        return access


class _Handler(BaseHTTPRequestHandler):
    owner: TokenServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # recorded in TokenServer.requests instead

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _user(self) -> tuple[str | None, bool]:
        # (user name, credentials valid); (None, True) for anonymous.
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("basic "):
            return None, True
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "", False
        expected = self.owner.users.get(user)
        return user, expected is not None and secrets.compare_digest(expected, password)

    def do_GET(self) -> None:
        owner = self.owner
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        service = query.get("service", [None])[0]
        scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
        user, valid = self._user()
        granted: list[dict[str, Any]] = []
        body: dict[str, Any]
        if url.path != "/token":
            status, body = 404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}
        elif service != owner.service:
            status, body = (
                400,
                {"errors": [{"code": "INVALID_SERVICE", "message": f"unknown service {service}"}]},
            )
        elif not valid or (user is None and not owner.anonymous_pull):
            status, body = 401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        else:
            granted = owner._grant(scopes, user)
            token = owner.issue(user or "", granted)
            status = 200
            body = {
                "token": token,
                "access_token": token,
                "expires_in": owner.ttl,
                "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
            }
        owner._record(
            TokenRequest(
                "GET", url.path, service, tuple(scopes), user, status, tuple(granted), time.monotonic()
            )
        )
        headers = {"WWW-Authenticate": 'Basic realm="cnbkit-test-token"'} if status == 401 else None
        self._send(status, body, headers)

    def do_POST(self) -> None:
        # The OAuth2 (refresh-token) form: not offered; Docker clients then fall back to GET.
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urlsplit(self.path)
        self.owner._record(TokenRequest("POST", url.path, None, (), None, 404, (), time.monotonic()))
        self._send(404, {"errors": [{"code": "UNSUPPORTED", "message": "use GET"}]})
