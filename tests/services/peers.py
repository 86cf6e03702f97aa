"""The real pack and lifecycle that ``tools/peers`` builds from their released sources.

The versions come from ``tools/peer-versions`` (the one place that pins them); the builds from
the cache directory ``tools/peers`` owns (``$CNBKIT_PEERS_DIR``, else
``$XDG_CACHE_HOME/cnbkit-peers``, else ``~/.cache/cnbkit-peers``). The ``peers`` fixture fails
under ``CI`` (and skips elsewhere) when they are not built: ``bash tools/peers`` builds them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .proc import tool_missing

__all__ = ["Peers", "find_peers", "peer_versions", "peers"]

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE_ARCH = {"amd64": "x86-64", "arm64": "arm64"}  # the release archives' names for GOARCH


def peer_versions() -> dict[str, str]:
    """``{"PACK_VERSION": ..., "LIFECYCLE_VERSION": ...}`` from ``tools/peer-versions``."""
    pairs = {}
    for line in (ROOT / "tools" / "peer-versions").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def _cache_dir() -> Path:
    if explicit := os.environ.get("CNBKIT_PEERS_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnbkit-peers"


@dataclass(frozen=True)
class Peers:
    """Paths to the built tools.

    Attributes:
        pack: the ``pack`` binary (host platform).
        lifecycle_version: the lifecycle's version (``0.21.17``).
        lifecycle_dir: ``lifecycle-V/``: ``linux-ARCH/lifecycle/``, the release archives and
            ``image-tool`` (the lifecycle's ``tools/image``).
    """

    pack: Path
    lifecycle_version: str
    lifecycle_dir: Path

    def archive(self, arch: str = "amd64") -> Path:
        """The release archive ``lifecycle-vV+linux.ARCH.tgz`` for GOARCH ``arch``."""
        return self.lifecycle_dir / f"lifecycle-v{self.lifecycle_version}+linux.{ARCHIVE_ARCH[arch]}.tgz"

    def binary(self, name: str, arch: str = "amd64") -> Path:
        """A file of the lifecycle's directory for ``arch`` (``lifecycle``, ``launcher``, a phase)."""
        return self.lifecycle_dir / f"linux-{arch}" / "lifecycle" / name

    def run_pack(
        self, home: Path, *args: str, docker_host: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """``pack ARGS`` with ``home`` as HOME and PACK_HOME (never the user's config) and the
        Docker daemon ``docker_host`` (none: pack has no daemon), captured as text."""
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "PACK_HOME": str(home / "pack")}
        if docker_host:
            env.update(DOCKER_HOST=docker_host, DOCKER_CONFIG=str(home / "docker-config"))
        return subprocess.run(
            [str(self.pack), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )

    @property
    def image_tool(self) -> Path:
        """The lifecycle's ``tools/image``: ``-lifecyclePath TGZ -baseImage REF -tag REF``."""
        return self.lifecycle_dir / "image-tool"


def find_peers() -> Peers | None:
    """The built tools, or None when ``tools/peers`` has not built them (all of them) yet."""
    versions = peer_versions()
    cache = _cache_dir()
    found = Peers(
        pack=cache / f"pack-{versions['PACK_VERSION']}" / "pack",
        lifecycle_version=versions["LIFECYCLE_VERSION"],
        lifecycle_dir=cache / f"lifecycle-{versions['LIFECYCLE_VERSION']}",
    )
    needed = [found.pack, found.image_tool, *(found.archive(arch) for arch in ARCHIVE_ARCH)]
    return found if all(path.is_file() for path in needed) else None


@pytest.fixture(scope="session")
def peers() -> Peers:
    """The real pack and lifecycle (a failure under CI when ``tools/peers`` has not built them)."""
    found = find_peers()
    if found is None:
        tool_missing(f"the real pack and lifecycle are not built in {_cache_dir()}: run bash tools/peers")
    assert found is not None
    return found
