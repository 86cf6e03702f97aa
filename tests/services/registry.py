"""A real CNCF Distribution registry (``docker-registry serve``) on 127.0.0.1, and its access log.

Variants (any combination of):
    * anonymous, or ``htpasswd`` basic auth (a bcrypt entry made here), or ``token`` auth against a
      ``TokenServer`` (real ES256 JWTs the registry verifies against ``rootcertbundle``);
    * plain HTTP, or HTTPS with a certificate from a ``trustme`` test CA;
    * a pull-through cache (``proxy.remoteurl``) of another ``Registry``: anonymous or token auth,
      HTTP or HTTPS (Distribution 2.8's cache cannot log in to a basic-auth upstream).

The registry's output (its own log and the Apache "combined" access log) goes to ``log_path``;
``log_requests()`` / ``count()`` parse the access lines, after making sure every request the
caller completed has been written (a sentinel request is sent and waited for). A registry is
shared by a whole session, so use ``unique_repo()`` for names and ``mark()`` / ``since=`` to count
only the requests of one test.

Configuration is written as JSON, which the registry's YAML parser reads as it is.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import re
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import requests
import trustme

from .proc import ServiceProcess, free_port, require_tool, service_env, wait_until
from .token_server import TokenServer

__all__ = ["AccessLogEntry", "AuthKind", "Registry", "htpasswd_entry"]

AuthKind = Literal["none", "htpasswd", "token"]

# 127.0.0.1 - - [01/Dec/2026:20:24:57 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "skopeo/1.9.3"
_ACCESS = re.compile(
    r'^(?P<remote>\S+) \S+ (?P<user>\S+) \[[^\]]+\] "(?P<method>[A-Z]+) (?P<target>\S+) [^"]*" '
    r'(?P<status>\d{3}) (?P<size>\d+|-) "[^"]*" "(?P<agent>[^"]*)"'
)
_SYNC_PARAM = "cnbkit-log-sync"
_START_TIMEOUT = 15.0
_counter = itertools.count(1)


def htpasswd_entry(user: str, password: str) -> str:
    """One ``user:$2b$...`` htpasswd line (bcrypt, cost 4: valid and fast)."""
    import bcrypt  # imported here: collecting the suite must not need it

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"


@dataclass(frozen=True)
class AccessLogEntry:
    """One line of the registry's access log.

    Attributes:
        method: ``GET``, ``HEAD``, ``PUT``, ...
        path: the request path, without the query (e.g. ``/v2/repo/manifests/tag``).
        query: the query string, without ``?`` (often empty).
        status: the status answered.
        size: the body bytes sent.
        user: the authenticated user name the access log shows (``-`` when none).
        user_agent: the ``User-Agent`` header.
    """

    method: str
    path: str
    query: str
    status: int
    size: int
    user: str
    user_agent: str


class Registry:
    """A ``docker-registry serve`` process. ``start()`` it (or use ``with``); ``stop()`` it.

    Attributes:
        name: a label for messages and file names.
        directory: this registry's private directory (config, storage, log, certificates).
        root: ``storage.filesystem.rootdirectory``.
        config_path: the configuration file.
        log_path: the registry's stdout and stderr (its access log included).
        auth: ``"none"``, ``"htpasswd"`` or ``"token"``.
        username / password: the credentials accepted (htpasswd: the one user; token: the first
            user of the token server), or None for an anonymous registry.
        token_server: the ``TokenServer`` of a ``token`` registry, else None.
        upstream: the registry this one is a pull-through cache of, else None.
        ca_bundle: the test CA (PEM) to trust for an HTTPS registry, else None.
        cert_dir: a directory holding ``ca.crt`` (skopeo's ``--cert-dir``), else None.
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str = "registry",
        auth: AuthKind = "none",
        username: str = "cnbkit",
        password: str = "registry-pw",
        token_server: TokenServer | None = None,
        ca: trustme.CA | None = None,
        upstream: Registry | None = None,
        upstream_credentials: tuple[str, str] | None = None,
    ) -> None:
        self.name = name
        self.directory = directory
        self.root = directory / "storage"
        self.config_path = directory / "config.yml"
        self.log_path = directory / "registry.log"
        if upstream is not None and upstream.auth == "htpasswd":
            # proxy/proxyauth.go keys credentials by the challenge realm, which for Basic is not
            # a URL: the cache never sends them (it only logs in to token-auth upstreams).
            raise ValueError("Distribution 2.8's pull-through cache cannot log in to a basic-auth upstream")
        self.auth = auth
        self.token_server = token_server
        self.upstream = upstream
        self._upstream_credentials = upstream_credentials
        self._ca = ca
        if auth == "htpasswd":
            self.username: str | None = username
            self.password: str | None = password
        elif auth == "token":
            if token_server is None:
                raise ValueError("a token registry needs a token_server")
            self.username, self.password = next(iter(token_server.users.items()), (None, None))
        else:
            self.username = self.password = None
        self.ca_bundle: Path | None = None
        self.cert_dir: Path | None = None
        self.port = 0
        self._process: ServiceProcess | None = None
        self._sync = itertools.count(1)
        self._log_lock = threading.Lock()
        self._log_offset = 0
        self._parsed: list[AccessLogEntry] = []

    # -- addresses -------------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``https`` for a TLS registry, else ``http``."""
        return "https" if self._ca is not None else "http"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT`` (no trailing slash)."""
        return f"{self.scheme}://{self.host}"

    @property
    def creds(self) -> str | None:
        """``user:password`` (skopeo's ``--creds``), or None for an anonymous registry."""
        return None if self.username is None else f"{self.username}:{self.password}"

    @property
    def verify(self) -> str | bool:
        """What ``requests`` needs as ``verify=``: the CA bundle path for HTTPS, else True."""
        return str(self.ca_bundle) if self.ca_bundle is not None else True

    def ref(self, repo: str, tag_or_digest: str = "latest") -> str:
        """``127.0.0.1:PORT/repo:tag`` (or ``@sha256:...`` when given a digest)."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.host}/{repo}{sep}{tag_or_digest}"

    def unique_repo(self, prefix: str = "test") -> str:
        """A repository name no other test of this session uses: ``prefix-N``."""
        return f"{prefix}-{next(_counter)}"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Registry:
        """Write the config and start the registry on a free port; wait until ``/v2/`` answers."""
        binary = require_tool("docker-registry", "docker-registry")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(exist_ok=True)
        self._write_auth_files()
        env_extra = {}
        if self.upstream is not None and self.upstream.ca_bundle is not None:
            env_extra["SSL_CERT_FILE"] = str(self.upstream.ca_bundle)  # Go's trust store override
        last_error = ""
        for _attempt in range(5):
            self.port = free_port()
            self.config_path.write_text(json.dumps(self._config(), indent=2))
            self.log_path.write_bytes(b"")
            self._log_offset = 0
            self._parsed = []
            process = ServiceProcess(
                [binary, "serve", str(self.config_path)], self.log_path, env=service_env(env_extra)
            )
            try:
                wait_until(
                    lambda p=process: self._answers() or not p.alive(),  # type: ignore[misc]
                    timeout=_START_TIMEOUT,
                    what=f"{self.name} on {self.url}/v2/",
                )
            except TimeoutError as exc:
                process.stop()
                raise RuntimeError(f"{exc}; registry log:\n{process.log_tail()}") from None
            if process.alive():
                self._process = process
                return self
            process.stop()
            last_error = process.log_tail()
            if "address already in use" not in last_error:
                break
        raise RuntimeError(f"{self.name} did not start ({self.config_path}):\n{last_error}")

    def stop(self) -> None:
        """Stop the registry (SIGTERM, then SIGKILL, of its process group)."""
        if self._process is not None:
            self._process.stop(timeout=5)
            self._process = None

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the registry process is alive."""
        return self._process is not None and self._process.alive()

    # -- configuration ---------------------------------------------------------------------------

    def _write_auth_files(self) -> None:
        if self.auth == "htpasswd":
            assert self.username is not None and self.password is not None
            (self.directory / "htpasswd").write_text(htpasswd_entry(self.username, self.password) + "\n")
        if self._ca is not None:
            cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1")
            cert.private_key_pem.write_to_path(str(self.directory / "tls.key"))
            chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
            (self.directory / "tls.crt").write_bytes(chain)
            self.ca_bundle = self.directory / "ca.pem"
            self._ca.cert_pem.write_to_path(str(self.ca_bundle))
            self.cert_dir = self.directory / "certs.d"
            self.cert_dir.mkdir(exist_ok=True)
            self._ca.cert_pem.write_to_path(str(self.cert_dir / "ca.crt"))

    def _config(self) -> dict[str, Any]:
        http_cfg: dict[str, Any] = {"addr": self.host, "secret": secrets.token_hex(16)}
        if self._ca is not None:
            http_cfg["tls"] = {
                "certificate": str(self.directory / "tls.crt"),
                "key": str(self.directory / "tls.key"),
            }
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http_cfg,
        }
        if self.auth == "htpasswd":
            config["auth"] = {"htpasswd": {"realm": "cnbkit-test", "path": str(self.directory / "htpasswd")}}
        elif self.auth == "token":
            assert self.token_server is not None
            config["auth"] = {
                "token": {
                    "realm": self.token_server.realm,
                    "service": self.token_server.service,
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(self.token_server.cert_path),
                }
            }
        if self.upstream is not None:
            proxy: dict[str, Any] = {"remoteurl": self.upstream.url}
            creds = self._upstream_credentials
            if creds is None and self.upstream.username is not None:
                creds = (self.upstream.username, self.upstream.password or "")
            if creds is not None:
                proxy["username"], proxy["password"] = creds
            config["proxy"] = proxy
        return config

    # -- talking to it ---------------------------------------------------------------------------

    def _connection(self, timeout: float = 2.0) -> http.client.HTTPConnection:
        if self._ca is not None:
            context = ssl.create_default_context(cafile=str(self.directory / "ca.pem"))
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def _answers(self, target: str = f"/v2/?{_SYNC_PARAM}=ready") -> int | None:
        """The status of ``GET target`` (any answer means the registry is up), or None."""
        conn = self._connection()
        try:
            conn.request("GET", target, headers={"User-Agent": "cnbkit-tests-probe"})
            response = conn.getresponse()
            response.read()
            return response.status
        except OSError:
            return None
        finally:
            conn.close()

    def session(self) -> requests.Session:
        """A ``requests`` session that trusts the test CA and authenticates like a Docker client.

        htpasswd: basic auth. token: on a 401 it fetches a token from the realm named in
        ``WWW-Authenticate`` (with the basic credentials) and retries with ``Bearer``.
        """
        session = requests.Session()
        session.trust_env = False
        session.verify = self.verify
        if self.auth == "htpasswd" and self.username is not None:
            session.auth = (self.username, self.password or "")
        elif self.auth == "token":
            session.auth = _BearerAuth(self.username, self.password, verify=self.verify)
        return session

    # -- the access log --------------------------------------------------------------------------

    def _sync_log(self, timeout: float = 5.0) -> list[AccessLogEntry]:
        """Every access log entry so far, the caller's completed requests certainly included.

        A line is written after its response is sent: so send a marker request and read on
        until its line shows up. The log is read incrementally (only new bytes each time).
        """
        marker = f"{_SYNC_PARAM}={next(self._sync)}-{time.monotonic_ns()}"
        if not self.running:
            self._read_new_lines()
            return self._parsed
        self._answers(f"/v2/?{marker}")
        wait_until(
            lambda: marker in self._read_new_lines(),
            timeout=timeout,
            interval=0.005,
            what=f"the access log line of {self.name}'s marker request",
        )
        return self._parsed

    def _read_new_lines(self) -> set[str]:
        """Parse the complete lines added since the last read; return the marker queries seen."""
        markers = set()
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a partly written last line waits for the next read
        self._log_offset += end
        for line in data[:end].decode(errors="replace").splitlines():
            m = _ACCESS.match(line)
            if m is None:
                continue
            path, _, query = m["target"].partition("?")
            if query.startswith(_SYNC_PARAM + "="):
                markers.add(query)
                continue
            size = m["size"]
            self._parsed.append(
                AccessLogEntry(
                    m["method"],
                    path,
                    query,
                    int(m["status"]),
                    0 if size == "-" else int(size),
                    m["user"],
                    m["agent"],
                )
            )
        return markers

    def mark(self) -> int:
        """A position in the access log: pass it as ``since=`` to see only later requests."""
        with self._log_lock:
            return len(self._sync_log())

    def log_requests(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        since: int = 0,
    ) -> list[AccessLogEntry]:
        """The access log entries from position ``since`` on, filtered.

        Args:
            method: only this HTTP method (``"HEAD"``...).
            path: a regular expression the whole path must match (``re.fullmatch``), e.g.
                ``r"/v2/lib/.+/blobs/sha256:[0-9a-f]{64}"``.
            status: only this status.
            since: a value from ``mark()``.
        """
        with self._log_lock:
            entries = self._sync_log()[since:]
        pattern = re.compile(path) if path is not None else None
        return [
            e
            for e in entries
            if (method is None or e.method == method)
            and (pattern is None or pattern.fullmatch(e.path))
            and (status is None or e.status == status)
        ]

    def count(
        self, method: str | None = None, path: str | None = None, *, status: int | None = None, since: int = 0
    ) -> int:
        """``len(log_requests(...))``: e.g. ``count("HEAD", r"/v2/app/manifests/v1", since=m) == 1``."""
        return len(self.log_requests(method, path, status=status, since=since))


class _BearerAuth(requests.auth.AuthBase):
    """Docker-style token auth for ``requests``: answer a Bearer challenge with a token."""

    _PARAM = re.compile(r'(\w+)="([^"]*)"')

    def __init__(self, username: str | None, password: str | None, *, verify: str | bool) -> None:
        self.username = username
        self.password = password
        self.verify = verify
        self.token: str | None = None

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token is not None:
            r.headers["Authorization"] = f"Bearer {self.token}"
        r.register_hook("response", self._on_response)  # type: ignore[no-untyped-call]
        return r

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or not challenge.lower().startswith("bearer "):
            return response
        if getattr(response.request, "_cnbkit_retried", False):
            return response
        params = dict(self._PARAM.findall(challenge))
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        basic = None
        if self.username is not None:
            basic = "Basic " + base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        token_response = requests.get(
            params["realm"],
            params=query,
            headers={"Authorization": basic} if basic else {},
            verify=self.verify,
            timeout=10,
        )
        if token_response.status_code != 200:
            return response
        body = token_response.json()
        self.token = body.get("token") or body.get("access_token")
        response.content  # noqa: B018 - release the connection before the retry
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {self.token}"
        retry._cnbkit_retried = True  # type: ignore[attr-defined]
        new = response.connection.send(retry, **kwargs)
        new.history.append(response)
        new.request = retry
        return new
