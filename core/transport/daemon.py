"""The Docker daemon, reached through the Docker SDK (``DOCKER_HOST``), lazily.

``docker`` is imported here only, and only when a daemon is needed: constructing a client
connects, so a machine without Docker pays nothing, not even the import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["connect"]


def connect() -> Any:
    """A Docker SDK client configured from the environment (``DOCKER_HOST``, TLS variables)."""
    import docker

    return docker.from_env()
