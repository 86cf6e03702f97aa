"""Docker credentials for the tests: real ``docker-credential-<name>`` helpers and ``config.json``.

``CredentialHelper`` writes an executable ``docker-credential-<name>`` (a Python script run by
this interpreter with ``-IS``, so it starts fast) that speaks the credential-helper protocol
(https://github.com/docker/docker-credential-helpers):

* ``get``: the server URL on stdin -> ``{"ServerURL", "Username", "Secret"}`` on stdout, or
  ``credentials not found in native keychain`` and exit 1;
* ``store``: ``{"ServerURL", "Username", "Secret"}`` on stdin;
* ``erase``: the server URL on stdin;
* ``list``: ``{ServerURL: Username}`` on stdout.

Its store is a JSON file; every call is appended to a JSON-lines file so tests can assert how
often, and with what, the helper ran (``calls()``).

``DockerConfig`` writes ``config.json`` in a ``DOCKER_CONFIG`` directory in each of the three
forms clients read: ``auths`` (base64 ``user:password``), ``credsStore`` and ``credHelpers``; the
writers merge, so the forms combine.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["CredentialHelper", "DockerConfig", "NOT_FOUND"]

NOT_FOUND = "credentials not found in native keychain"

_SCRIPT = '''\
#!{python} -IS
"""docker-credential-{name}: a test credential helper (store: {store})."""
import json, sys, time

STORE = {store!r}
CALLS = {calls!r}
NOT_FOUND = {not_found!r}


def load():
    try:
        with open(STORE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {{}}


def save(data):
    with open(STORE + ".tmp", "w") as f:
        json.dump(data, f)
    import os
    os.replace(STORE + ".tmp", STORE)


def main():
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    payload = sys.stdin.read()
    with open(CALLS, "a") as f:
        f.write(json.dumps({{"action": action, "input": payload, "at": time.time()}}) + "\\n")
    data = load()
    if action == "get":
        url = payload.strip()
        entry = data.get(url)
        if entry is None:
            sys.stdout.write(NOT_FOUND + "\\n")
            return 1
        json.dump({{"ServerURL": url, "Username": entry[0], "Secret": entry[1]}}, sys.stdout)
        return 0
    if action == "store":
        cred = json.loads(payload)
        data[cred["ServerURL"]] = [cred.get("Username", ""), cred.get("Secret", "")]
        save(data)
        return 0
    if action == "erase":
        data.pop(payload.strip(), None)
        save(data)
        return 0
    if action == "list":
        json.dump({{url: entry[0] for url, entry in data.items()}}, sys.stdout)
        return 0
    sys.stderr.write("unknown action %r\\n" % action)
    return 2


sys.exit(main())
'''


class CredentialHelper:
    """An executable ``docker-credential-<name>`` in ``bin_dir`` (put that directory on ``PATH``).

    Attributes:
        name: the helper name as ``credsStore`` / ``credHelpers`` spell it (without the prefix).
        path: the executable.
        bin_dir: its directory.
        store_path: its JSON store (server URL -> [username, secret]).
        calls_path: one JSON line per call: ``{"action", "input", "at"}``.
    """

    def __init__(self, bin_dir: Path, name: str = "cnbkit-test") -> None:
        self.name = name
        self.bin_dir = bin_dir
        bin_dir.mkdir(parents=True, exist_ok=True)
        self.path = bin_dir / f"docker-credential-{name}"
        self.store_path = bin_dir / f"{name}-store.json"
        self.calls_path = bin_dir / f"{name}-calls.jsonl"
        self.path.write_text(
            _SCRIPT.format(
                python=sys.executable,
                name=name,
                store=str(self.store_path),
                calls=str(self.calls_path),
                not_found=NOT_FOUND,
            )
        )
        self.path.chmod(0o755)
        self.store_path.write_text("{}")

    def add(self, server_url: str, username: str, secret: str) -> None:
        """Put credentials for ``server_url`` (e.g. ``127.0.0.1:5000``) in the helper's store."""
        data = json.loads(self.store_path.read_text())
        data[server_url] = [username, secret]
        self.store_path.write_text(json.dumps(data))

    def stored(self) -> dict[str, tuple[str, str]]:
        """The store: server URL -> (username, secret)."""
        return {k: (v[0], v[1]) for k, v in json.loads(self.store_path.read_text()).items()}

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """Every call so far (``action`` filters: ``get``, ``store``, ``erase``, ``list``)."""
        if not self.calls_path.exists():
            return []
        calls = [json.loads(line) for line in self.calls_path.read_text().splitlines() if line.strip()]
        return [c for c in calls if action is None or c["action"] == action]

    def env_path(self, path: str | None = None) -> str:
        """``PATH`` with ``bin_dir`` first (``path`` defaults to the current ``PATH``)."""
        rest = os.environ.get("PATH", "") if path is None else path
        return f"{self.bin_dir}{os.pathsep}{rest}" if rest else str(self.bin_dir)


class DockerConfig:
    """A ``DOCKER_CONFIG`` directory and its ``config.json``.

    Attributes:
        directory: the value for ``DOCKER_CONFIG``.
        path: ``directory / "config.json"``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "config.json"

    def read(self) -> dict[str, Any]:
        """The current ``config.json`` ({} when there is none)."""
        return dict(json.loads(self.path.read_text())) if self.path.exists() else {}

    def write(self, config: dict[str, Any]) -> Path:
        """Replace ``config.json`` with ``config``."""
        self.path.write_text(json.dumps(config, indent=2) + "\n")
        return self.path

    def _merge(self, key: str, value: Any) -> Path:
        config = self.read()
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
        return self.write(config)

    def write_auths(self, auths: dict[str, tuple[str, str]]) -> Path:
        """``auths``: server -> ``{"auth": base64("user:password")}``.

        ``auths`` is e.g. ``{"127.0.0.1:5000": ("user", "password")}``.
        """
        entries = {
            server: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
            for server, (user, password) in auths.items()
        }
        return self._merge("auths", entries)

    def write_identity_token(self, server: str, token: str) -> Path:
        """``auths``: server -> ``{"identitytoken": token}`` (an OAuth2 refresh token)."""
        return self._merge("auths", {server: {"identitytoken": token}})

    def write_creds_store(self, helper: str | CredentialHelper) -> Path:
        """``credsStore``: every registry's credentials come from ``docker-credential-<helper>``."""
        return self._merge("credsStore", helper.name if isinstance(helper, CredentialHelper) else helper)

    def write_cred_helpers(self, helpers: dict[str, str | CredentialHelper]) -> Path:
        """``credHelpers``: server -> helper name, e.g. ``{"127.0.0.1:5000": "cnbkit-test"}``."""
        names = {s: h.name if isinstance(h, CredentialHelper) else h for s, h in helpers.items()}
        return self._merge("credHelpers", names)
