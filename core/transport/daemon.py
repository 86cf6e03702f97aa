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
from ..oci._json import load_json
from ..oci.config import MAX_CONFIG_SIZE
from ..oci.errors import ImageError
from ..oci.platform import Platform, parse_platform
from ..redact import printable

__all__ = [
    "DEFAULT_SOCKET",
    "DaemonUnavailableError",
    "connect",
    "daemon_address",
    "daemon_platform",
    "docker_error",
    "inspect_image",
]

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


def docker_error(exc: Exception) -> str:
    """A Docker SDK error as one short, escaped line."""
    return printable(" ".join(str(exc).split()))[:300] or type(exc).__name__


def _get(client: Any, failed: str, path: str, *args: str) -> tuple[int, bytes]:
    """``GET path`` of the daemon API (``args`` filled in and quoted by the SDK's ``_url``): the
    status and at most ``MAX_CONFIG_SIZE + 1`` bytes of the body (the bounded JSON reader refuses
    more), never the SDK's own parsing, which reads whatever comes, however deep.

    Raises:
        ImageError: no answer (``failed`` says what was being asked).
    """
    import docker.errors

    api = client.api
    try:
        response = api._get(api._url(path, *args), stream=True)
        try:
            body = response.raw.read(MAX_CONFIG_SIZE + 1, decode_content=True)
        finally:
            response.close()
    except (docker.errors.DockerException, OSError) as exc:
        raise ImageError(f"{failed}: {docker_error(exc)}") from None
    return response.status_code, body


def inspect_image(client: Any, name: str, where: str) -> dict[str, Any] | None:
    """The daemon's answer to ``GET /images/NAME/json`` (``None``: no such image), read by the
    bounded JSON reader.

    Raises:
        ImageError: the daemon failed, or answered something that is not a JSON object.
    """
    failed = f"{name}: the Docker daemon at {where} failed to inspect it"
    status, body = _get(client, failed, "/images/{0}/json", name)
    if status == 404:
        return None
    source = f"{name}: the inspect answer of the Docker daemon at {where}"
    if status >= 400:
        try:
            message = load_json(body, source=source, limit=MAX_CONFIG_SIZE, error=ImageError).get("message")
        except (ImageError, AttributeError):
            message = None
        raise ImageError(f"{failed}: HTTP {status} {printable(str(message or ''))[:200]}")
    found = load_json(body, source=source, limit=MAX_CONFIG_SIZE, error=ImageError)
    if not isinstance(found, dict):
        raise ImageError(f"{source} is not a JSON object")
    return found


def daemon_platform(client: Any, where: str) -> Platform:
    """The daemon's OS and architecture (``GET /version``), read by the bounded JSON reader, in
    the OCI spelling (``x86_64`` is ``amd64``).

    Raises:
        ImageError: the daemon failed, or its answer names no OS and architecture.
    """
    failed = f"the Docker daemon at {where} did not say its platform"
    status, body = _get(client, failed, "/version")
    if status >= 400:
        raise ImageError(f"{failed} (HTTP {status})")
    found = load_json(
        body,
        source=f"the version answer of the Docker daemon at {where}",
        limit=MAX_CONFIG_SIZE,
        error=ImageError,
    )
    os_name = found.get("Os") if isinstance(found, dict) else None
    arch = found.get("Arch") if isinstance(found, dict) else None
    if not isinstance(os_name, str) or not isinstance(arch, str):
        raise ImageError(f"{failed}: its answer names no Os and Arch")
    try:
        return parse_platform(f"{os_name}/{arch}")
    except CnbkitError:
        raise ImageError(
            f"{failed}: {printable(os_name)[:40]}/{printable(arch)[:40]} is not a platform"
        ) from None
