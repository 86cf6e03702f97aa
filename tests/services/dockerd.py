"""A private Docker daemon (Debian's ``dockerd``) on a unix socket, for the tests.

It runs with no networking of its own (``--bridge=none``, no iptables), the ``vfs`` storage
driver (works on any filesystem, no mounts), an empty ``--config-file`` (never the machine's
``/etc/docker/daemon.json``) and every path under a short private directory in ``/tmp`` (a unix
socket path must stay under 108 bytes). dockerd starts and supervises its own containerd under
``--exec-root``; no ``--containerd`` flag is needed. Registries on 127.0.0.0/8 are insecure by
default in dockerd, so it pulls from and pushes to the plain-HTTP test registries as they are.

Needs root (mounts, cgroups, containerd); ``start()`` fails (under CI) or skips clearly otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .proc import ServiceProcess, require_tool, service_env, tool_missing, wait_until

__all__ = ["Dockerd"]

_START_TIMEOUT = 60.0
_MNT_DETACH = 2


def _ping(sock: Path) -> bool:
    """True if the daemon answers ``GET /_ping`` with ``OK`` on ``sock``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0] and data.endswith(b"OK")
    except OSError:
        return False


def _mounts_under(directory: Path) -> list[str]:
    """The mount points at or below ``directory`` (from /proc/self/mountinfo)."""
    prefix = str(directory)
    points = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            # Field 5 is the mount point, with spaces etc. escaped as octal.
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return points


def _detach(mount_point: str) -> None:
    """``umount2(MNT_DETACH)``: a lazy unmount, which never blocks."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(mount_point.encode(), _MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot unmount {mount_point}: {os.strerror(errno)}")


class Dockerd:
    """One ``dockerd`` process. ``start()`` it (or use ``with``); ``stop()`` removes everything.

    Attributes:
        directory: the private directory (``/tmp/cnbd-XXXX``): data-root, exec-root, socket, log.
        socket_path: the API socket.
        host: ``unix:///tmp/cnbd-XXXX/d.sock``: the value for ``DOCKER_HOST`` / ``base_url``.
        env: ``{"DOCKER_HOST": host}``.
        config_dir: an empty ``DOCKER_CONFIG`` for ``cli()`` (never the user's ``~/.docker``).
        log_path: dockerd's (and its containerd's) output.
        startup_seconds: how long ``start()`` took until ``/_ping`` answered.
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="cnbd-", dir="/tmp"))
        self.socket_path = self.directory / "d.sock"
        self.host = f"unix://{self.socket_path}"
        self.env = {"DOCKER_HOST": self.host}
        self.config_dir = self.directory / "client-config"
        self.log_path = self.directory / "dockerd.log"
        self.startup_seconds = 0.0
        self._process: ServiceProcess | None = None

    def start(self) -> Dockerd:
        """Start dockerd and wait (at most a minute) until ``/_ping`` answers ``OK``."""
        binary = require_tool("dockerd", "docker.io")
        if os.geteuid() != 0:
            tool_missing("dockerd needs root here (no rootless setup): run the tests as root")
        self.config_dir.mkdir()
        (self.config_dir / "config.json").write_text("{}\n")
        daemon_json = self.directory / "daemon.json"
        daemon_json.write_text("{}\n")
        argv = [
            binary,
            f"--config-file={daemon_json}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=vfs",
            f"--data-root={self.directory / 'data'}",
            f"--exec-root={self.directory / 'exec'}",
            f"--pidfile={self.directory / 'dockerd.pid'}",
            f"--host=unix://{self.socket_path}",
        ]
        start = time.monotonic()
        process = ServiceProcess(argv, self.log_path, env=service_env())
        try:
            wait_until(
                lambda: _ping(self.socket_path) or not process.alive(),
                timeout=_START_TIMEOUT,
                interval=0.05,
                what=f"dockerd to answer /_ping on {self.socket_path}",
            )
        except TimeoutError as exc:
            process.stop(timeout=15)
            raise RuntimeError(f"{exc}; dockerd log:\n{process.log_tail(40)}") from None
        if not process.alive():
            process.stop()
            raise RuntimeError(
                f"dockerd exited with status {process.proc.returncode} at start:\n{process.log_tail(40)}"
            )
        self.startup_seconds = time.monotonic() - start
        self._process = process
        return self

    def stop(self) -> None:
        """SIGTERM dockerd (it stops its containerd), wait, SIGKILL stragglers; remove the directory.

        dockerd bind-mounts its data-root onto itself and undoes it on a clean shutdown only; any
        mount left under the directory (after a SIGKILL) is detached before the removal.
        """
        if self._process is not None:
            self._process.stop(timeout=20)
            self._process = None
        for mount_point in sorted(_mounts_under(self.directory), reverse=True):
            _detach(mount_point)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Dockerd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while dockerd is alive."""
        return self._process is not None and self._process.alive()

    def client(self, **kwargs: Any) -> Any:
        """A ``docker.DockerClient`` for this daemon (the caller closes it)."""
        import docker  # the SDK is a cnbkit dependency; imported late so this module loads without it

        kwargs.setdefault("timeout", 120)
        return docker.DockerClient(base_url=self.host, **kwargs)

    def cli(
        self, *args: str, timeout: float = 120, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` against this daemon with a private, empty ``DOCKER_CONFIG``."""
        docker_cli = require_tool("docker", "docker.io")
        full_env = service_env({"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.config_dir)})
        full_env.update(env or {})
        result = subprocess.run(
            [docker_cli, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def info(self) -> dict[str, Any]:
        """``docker info`` as a dict (via the CLI's JSON output)."""
        return dict(json.loads(self.cli("info", "--format", "{{json .}}").stdout))
