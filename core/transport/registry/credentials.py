"""Registry credentials from the Docker CLI's configuration (``DOCKER_CONFIG``/``config.json``).

The Docker SDK's own code reads the file and runs the ``docker-credential-*`` helpers
(``credsStore``, ``credHelpers``), so cnbkit finds exactly what ``docker pull`` would. It is
imported only when a registry asks for credentials and a configuration file exists: an
anonymous pull never pays for it. The Docker CLI also accepts ``username``/``password`` in an
``auths`` entry, which the SDK skips; that one form is read here from the same file.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...errors import CnbkitError
from ...redact import redact

__all__ = ["Credentials", "CredentialsProvider", "DockerConfigCredentials", "find_docker_config"]


@dataclass(frozen=True)
class Credentials:
    """What to log in to a registry with; the secrets never appear in ``repr``.

    Attributes:
        username: the account name (``""`` with an identity token alone).
        password: the password or access token.
        identity_token: an OAuth2 refresh token (``identitytoken`` in ``config.json``).
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


class CredentialsProvider(Protocol):
    """Returns the credentials for a registry (``docker.io``, ``ghcr.io``, ``host:port``)."""

    def __call__(self, registry: str) -> Credentials | None:
        """The credentials for ``registry``, or ``None`` to go anonymous."""
        ...


def find_docker_config(config_dir: str | None = None) -> Path | None:
    """The Docker client configuration file, found as the Docker CLI finds it, or ``None``.

    ``config_dir`` or ``$DOCKER_CONFIG``, when given, is the only place looked at (as with the
    CLI: pointing ``DOCKER_CONFIG`` at an empty directory means "no credentials"); else
    ``~/.docker/config.json``, else the legacy ``~/.dockercfg``.
    """
    directory = config_dir or os.environ.get("DOCKER_CONFIG")
    if directory:
        path = Path(directory) / "config.json"
        return path if path.is_file() else None
    home = Path.home()
    return next((p for p in (home / ".docker" / "config.json", home / ".dockercfg") if p.is_file()), None)


class DockerConfigCredentials:
    """A :class:`CredentialsProvider` over the Docker configuration, read once when first asked.

    Args:
        config_dir: a directory holding ``config.json`` (default: ``$DOCKER_CONFIG``, then
            ``~/.docker``).
    """

    def __init__(self, config_dir: str | None = None) -> None:
        self._config_dir = config_dir
        self._loaded = False
        self._path: Path | None = None
        self._raw: dict[str, Any] = {}
        self._config: Any = None

    def _load(self) -> None:
        self._loaded = True
        self._path = find_docker_config(self._config_dir)
        if self._path is None:
            return
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CnbkitError(
                f"{self._path}: not a readable Docker config file ({type(exc).__name__})"
            ) from None
        if not isinstance(raw, dict):
            raise CnbkitError(f"{self._path}: not a Docker config file (expected a JSON object)")
        self._raw = raw
        if not raw:  # nothing in it; and the SDK, given an empty dict, reads a file of its own
            return
        import docker.auth
        import docker.errors

        try:  # load_config pops what it parses: hand it a copy
            self._config = docker.auth.load_config(config_dict=json.loads(json.dumps(raw)))
        except (docker.errors.DockerException, ValueError, TypeError, AttributeError) as exc:
            # AttributeError: "auths" that is not an object (the SDK calls its .items())
            raise CnbkitError(f"{self._path}: invalid Docker config ({_safe(exc)})") from None

    def __call__(self, registry: str) -> Credentials | None:
        """The credentials ``docker pull`` would use for ``registry``, or ``None``.

        Raises:
            CnbkitError: the file is malformed or a credential helper failed (the message names
                the file and the helper, never a secret).
        """
        if not self._loaded:
            self._load()
        if self._config is None:
            return None
        import docker.auth
        import docker.errors

        try:
            with warnings.catch_warnings():  # a missing helper is reported as an error below
                warnings.simplefilter("ignore")
                found = docker.auth.resolve_authconfig(self._config, registry)
        except (docker.errors.DockerException, ValueError, TypeError, KeyError, OSError) as exc:
            # KeyError: a helper's JSON answer without "Username" or "Secret"
            raise CnbkitError(
                f"credentials for {registry} from {self._path}: {_safe(exc)}; check credsStore/"
                "credHelpers and that the docker-credential-* helper is on PATH"
            ) from None
        if found is None:
            return None
        if found.get("IdentityToken"):
            return Credentials(username=found.get("username") or "", identity_token=found["IdentityToken"])
        username = found.get("username") or found.get("Username") or ""
        password = found.get("password") or found.get("Password") or ""
        if username or password:
            return Credentials(username=username, password=password)
        return self._plain_entry(registry)

    def _plain_entry(self, registry: str) -> Credentials | None:
        """An ``auths`` entry with ``username``/``password`` (the Docker CLI reads those)."""
        import docker.auth

        auths = self._raw.get("auths")
        if not isinstance(auths, dict):
            return None
        for key, entry in auths.items():
            if not isinstance(entry, dict) or docker.auth.resolve_index_name(key) != registry:
                continue
            username, password = entry.get("username"), entry.get("password")
            if isinstance(username, str) and isinstance(password, str) and (username or password):
                return Credentials(username=username, password=password)
        return None


def _safe(exc: Exception) -> str:
    """An exception as one short line; helpers' output is trimmed, URLs redacted."""
    return redact(" ".join(str(exc).split()))[:200] or type(exc).__name__
