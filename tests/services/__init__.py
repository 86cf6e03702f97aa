"""Real services on loopback for the tests: registries, a token server, dockerd, credential helpers.

Nothing here is a mock: ``docker-registry`` (CNCF Distribution), ``dockerd`` and the credential
helpers are the real programs, started on 127.0.0.1 or on a unix socket, and stopped (their whole
process group) when the test session ends. ``tests/services/fixtures.py`` holds the pytest
fixtures and is registered for the whole suite by ``tests/conftest.py``.

Modules:
    proc: start/stop a child process group, free ports, bounded waits, "tool missing" handling.
    registry: ``Registry`` (plain, htpasswd, token auth, TLS, pull-through cache) and its access log.
    token_server: ``TokenServer``, the Docker token protocol with real ES256 JWTs.
    dockerd: ``Dockerd``, a private Docker daemon on a unix socket.
    credentials: ``docker-credential-<name>`` helpers and ``DOCKER_CONFIG`` writers.
    skopeo: a tiny OCI layout (umoci) and ``skopeo copy`` / ``skopeo inspect`` against a ``Registry``.
"""
