"""The Docker daemon, reached through the Docker SDK (``DOCKER_HOST``), lazily.

``docker`` is imported here only, and only when a daemon is needed: constructing a client
connects, so a machine without Docker pays nothing, not even the import.
:func:`daemon_address` tells, without importing anything, whether a daemon may be there at all.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from ..errors import CnbkitError

__all__ = ["DEFAULT_SOCKET", "DaemonUnavailableError", "connect", "daemon_address"]

DEFAULT_SOCKET = "/var/run/docker.sock"


def daemon_address() -> str | None:
    """Where the daemon would be (``DOCKER_HOST``, else the default socket), or ``None`` when
    there is certainly none: an unset ``DOCKER_HOST`` and no socket, or a ``unix://`` socket
    that does not exist. Cheap: no import, no connection."""
    host = os.environ.get("DOCKER_HOST", "").strip()
    if not host:
        return f"unix://{DEFAULT_SOCKET}" if _is_socket(DEFAULT_SOCKET) else None
    if host.startswith("unix://"):
        return host if _is_socket(host[len("unix://") :]) else None
    return host  # tcp://, ssh://, npipe://: only a connection can tell


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class DaemonUnavailableError(CnbkitError):
    """No Docker daemon answers where ``DOCKER_HOST`` (or the default socket) says it is."""


def connect() -> Any:
    """A Docker SDK client configured from the environment (``DOCKER_HOST``, TLS variables).

    Raises:
        DaemonUnavailableError: no daemon answers (the message names where it was looked for).
    """
    import docker
    import docker.errors

    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
        reason = " ".join(str(exc).split())[:200]
        raise DaemonUnavailableError(
            f"cannot reach the Docker daemon at {where} ({reason}); start it or set DOCKER_HOST"
        ) from None
