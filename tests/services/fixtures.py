"""The service fixtures, registered for the whole suite (``pytest_plugins`` in tests/conftest.py).

Session-scoped (started on first use, stopped at the end of the session; share them, so use
``registry.unique_repo()`` names and ``mark()`` / ``since=`` for counts):

``registry``
    anonymous, plain HTTP ``Registry`` on 127.0.0.1.
``registry_basic``
    htpasswd basic auth; ``.username`` / ``.password`` / ``.creds``.
``token_server``
    the ``TokenServer`` (plain HTTP on 127.0.0.1) behind ``registry_token``; user ``cnbkit`` /
    ``token-pw``; ``.requests``, ``.mark()``, ``.count(status=, user=, scope=, since=)``,
    ``.issued``, ``.rejected``.
``registry_token``
    token auth through ``token_server`` (``.token_server``; ``.username`` / ``.password`` are the
    token server's user).
``services_ca``
    the ``trustme.CA`` the TLS services use.
``registry_tls``
    anonymous HTTPS registry; ``.ca_bundle`` (PEM file), ``.cert_dir`` (holds ``ca.crt``).
``registry_proxy``
    a pull-through cache of ``registry`` (``.upstream``); pushes to it are refused.
``registry_factory``
    ``registry_factory(auth="none"|"htpasswd"|"token", tls=False, upstream=None, ...)`` starts
    one more ``Registry`` (stopped at session end); a token registry without ``token_server=``
    gets its own (HTTPS if ``tls=True``); ``upstream=`` (an anonymous or token registry, HTTP or
    HTTPS) makes a pull-through cache of it.
``dockerd``
    a private ``Dockerd``: ``.host`` (``unix://...``), ``.env`` (``{"DOCKER_HOST": ...}``),
    ``.client()``, ``.cli(...)``.

Function-scoped:

``docker_host``
    ``dockerd`` with ``DOCKER_HOST`` set in the environment for this test.
``docker_config``
    a fresh ``DockerConfig`` with ``DOCKER_CONFIG`` set for this test.
``credential_helper``
    a ``CredentialHelper`` named ``cnbkit-test`` whose directory is first on ``PATH``.
``make_credential_helper``
    ``make_credential_helper(name)``: more helpers, same directory on ``PATH``.

A missing tool (``docker-registry``, ``dockerd``, ``skopeo``, ``umoci``) fails the test under
``CI`` and skips it elsewhere.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from .credentials import CredentialHelper, DockerConfig
from .dockerd import Dockerd
from .registry import AuthKind, Registry
from .token_server import TokenServer

__all__ = [
    "credential_helper",
    "docker_config",
    "docker_host",
    "dockerd",
    "make_credential_helper",
    "registry",
    "registry_basic",
    "registry_factory",
    "registry_proxy",
    "registry_tls",
    "registry_token",
    "services_ca",
    "token_server",
]

RegistryFactory = Callable[..., Registry]


@pytest.fixture(scope="session")
def services_ca() -> trustme.CA:
    """The test CA of the TLS registries and token servers."""
    return trustme.CA()


@pytest.fixture(scope="session")
def registry_factory(
    tmp_path_factory: pytest.TempPathFactory, services_ca: trustme.CA
) -> Iterator[RegistryFactory]:
    """Start registries on demand; every one (and its own token server) stops at session end."""
    started: list[Registry] = []
    token_servers: list[TokenServer] = []

    def start(
        *,
        auth: AuthKind = "none",
        tls: bool = False,
        upstream: Registry | None = None,
        upstream_credentials: tuple[str, str] | None = None,
        token_server: TokenServer | None = None,
        username: str = "cnbkit",
        password: str = "registry-pw",
        name: str | None = None,
    ) -> Registry:
        label = name or f"registry-{auth}{'-tls' if tls else ''}{'-proxy' if upstream else ''}"
        directory = tmp_path_factory.mktemp(label)
        if auth == "token" and token_server is None:
            context = None
            if tls:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                services_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            token_server = TokenServer(directory / "token", users={username: password}, ssl_context=context)
            token_server.start()
            token_servers.append(token_server)
        registry = Registry(
            directory,
            name=label,
            auth=auth,
            username=username,
            password=password,
            token_server=token_server,
            ca=services_ca if tls else None,
            upstream=upstream,
            upstream_credentials=upstream_credentials,
        )
        registry.start()
        started.append(registry)
        return registry

    try:
        yield start
    finally:
        for registry in reversed(started):
            registry.stop()
        for server in token_servers:
            server.stop()


@pytest.fixture(scope="session")
def registry(registry_factory: RegistryFactory) -> Registry:
    """An anonymous, plain-HTTP registry on 127.0.0.1 (``.url``, ``.host``, ``.log_requests()``)."""
    return registry_factory(name="registry-plain")


@pytest.fixture(scope="session")
def registry_basic(registry_factory: RegistryFactory) -> Registry:
    """A registry with htpasswd basic auth (``.username``, ``.password``, ``.creds``)."""
    return registry_factory(auth="htpasswd", name="registry-basic")


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    """The token server of ``registry_token``: user ``cnbkit`` / ``token-pw``, request counters."""
    server = TokenServer(tmp_path_factory.mktemp("token-server"), users={"cnbkit": "token-pw"})
    with server:
        yield server


@pytest.fixture(scope="session")
def registry_token(registry_factory: RegistryFactory, token_server: TokenServer) -> Registry:
    """A registry with token auth through ``token_server`` (``.token_server``, ``.creds``)."""
    return registry_factory(auth="token", token_server=token_server, name="registry-token")


@pytest.fixture(scope="session")
def registry_tls(registry_factory: RegistryFactory) -> Registry:
    """An anonymous HTTPS registry; trust ``.ca_bundle`` (or skopeo's ``--cert-dir=.cert_dir``)."""
    return registry_factory(tls=True, name="registry-tls")


@pytest.fixture(scope="session")
def registry_proxy(registry_factory: RegistryFactory, registry: Registry) -> Registry:
    """A pull-through cache of ``registry`` (its ``.upstream``); read-only."""
    return registry_factory(upstream=registry, name="registry-proxy")


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """A private dockerd on a unix socket (``.host``, ``.env``, ``.client()``, ``.cli()``)."""
    daemon = Dockerd()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def docker_host(dockerd: Dockerd, monkeypatch: pytest.MonkeyPatch) -> Dockerd:
    """``dockerd``, with ``DOCKER_HOST`` pointing at it for this test."""
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    for var in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(var, raising=False)
    return dockerd


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DockerConfig:
    """An empty ``DOCKER_CONFIG`` directory for this test (write it with ``.write_auths()`` etc.)."""
    config = DockerConfig(tmp_path / "docker-config")
    monkeypatch.setenv("DOCKER_CONFIG", str(config.directory))
    return config


@pytest.fixture
def make_credential_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], CredentialHelper]:
    """``make_credential_helper(name)`` -> a ``docker-credential-<name>`` on ``PATH`` for this test."""
    bin_dir = tmp_path / "credential-helpers"
    added = False

    def make(name: str) -> CredentialHelper:
        nonlocal added
        helper = CredentialHelper(bin_dir, name)
        if not added:
            monkeypatch.setenv("PATH", helper.env_path())
            added = True
        return helper

    return make


@pytest.fixture
def credential_helper(make_credential_helper: Callable[[str], CredentialHelper]) -> CredentialHelper:
    """``docker-credential-cnbkit-test`` on ``PATH`` (fill it with ``.add(server, user, secret)``)."""
    return make_credential_helper("cnbkit-test")
