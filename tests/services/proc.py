"""Child processes for the service fixtures: started in their own process group, always stopped.

Every service runs as the leader of a new session (so one ``killpg`` reaches all it forks), with
``PR_SET_PDEATHSIG`` = SIGKILL (so it dies with the pytest process even if pytest itself is
killed), with stdout and stderr in a log file, and with an environment stripped of proxies and
Docker settings (services must only ever talk to loopback).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

__all__ = [
    "ServiceProcess",
    "free_port",
    "require_tool",
    "service_env",
    "tool_missing",
    "wait_until",
]

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
_STRIPPED = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CONTEXT",
    "REGISTRY_HTTP_ADDR",
)


def tool_missing(message: str) -> None:
    """Stop the fixture: a failure under ``CI`` (which must run everything), a skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure; .ci/run installs the tools)", pytrace=False)
    pytest.skip(message)


def require_tool(name: str, package: str) -> str:
    """Return the absolute path of command ``name``, or fail/skip naming the Debian ``package``."""
    path = shutil.which(name)
    if path is None:
        tool_missing(f"'{name}' is not on PATH: install the Debian package '{package}'")
        raise AssertionError("unreachable")  # pragma: no cover - tool_missing always raises
    return path


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment without proxies or Docker settings, plus ``NO_PROXY`` for loopback."""
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED and not k.startswith("REGISTRY_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env.update(extra or {})
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry if it is taken meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], T | None], *, timeout: float, interval: float = 0.02, what: str) -> T:
    """Call ``check`` until it returns something other than None/False; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGKILL it when the pytest process goes away.
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ServiceProcess:
    """One child process (and everything it forks) with its output in ``log_path``.

    Attributes:
        argv: the command line.
        log_path: stdout and stderr, interleaved.
        proc: the ``subprocess.Popen``.
    """

    def __init__(self, argv: Sequence[str], log_path: Path, *, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env if env is not None else service_env(),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.proc.poll() is None

    def log_text(self) -> str:
        """The whole log so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, *, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, wait up to ``timeout`` s, then SIGKILL the group and stragglers.

        Descendants that left the group (dockerd starts containerd in a session of its own) are
        found before the signal and killed too if they outlive their parent. Returns the exit code.
        """
        try:
            descendants = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored, but bound it
            self.proc.wait(timeout=5)
        _, still_alive = psutil.wait_procs(descendants, timeout=min(timeout, 5))
        for child in still_alive:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(still_alive, timeout=5)
        self._log.close()
        return self.proc.returncode
