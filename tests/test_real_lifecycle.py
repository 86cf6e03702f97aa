"""The real lifecycle (built from its released source by tools/peers) through ``cnbkit resolve``:
the release archive as the lifecycle's own packager lays it out, for both architectures, and the
lifecycle image its ``tools/image`` makes, pushed to the loopback registry."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import tomllib

from tests.conftest import cli_json
from tests.real_builds import push_lifecycle_image
from tests.services.peers import Peers
from tests.services.registry import Registry
from tests.services.skopeo import inspect

PHASES = {"analyzer", "builder", "creator", "detector", "exporter", "extender", "restorer", "rebaser"}


def _descriptor(archive: Path) -> dict[str, object]:
    """``lifecycle.toml`` read from the archive with the standard library (not cnbkit)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("lifecycle.toml")
        assert member is not None
        return tomllib.loads(member.read().decode())


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_the_real_release_archive_resolves(arch: str, peers: Peers, cache_dir: Path) -> None:
    archive = peers.archive(arch)
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    # The packager's layout: lifecycle.toml, then lifecycle/ with the binaries and phase links.
    assert members["lifecycle.toml"].isfile() and members["lifecycle/lifecycle"].isfile()
    assert members["lifecycle/launcher"].mode == 0o755
    for phase in PHASES:
        assert members[f"lifecycle/{phase}"].issym() and members[f"lifecycle/{phase}"].linkname == "lifecycle"
    assert {(m.uid, m.gid) for m in members.values()} == {(0, 0)}

    descriptor = _descriptor(archive)
    out = cli_json("resolve", str(archive), "--json", "--platform", f"linux/{arch}")
    assert out["version"] == peers.lifecycle_version == descriptor["lifecycle"]["version"]  # type: ignore[index]
    assert out["apis"] == descriptor["apis"]
    # The lists lifecycle 0.21's api/apis.go declares.
    assert (
        out["apis"]["buildpack"]["supported"][0] == "0.7" and "0.12" in out["apis"]["buildpack"]["supported"]
    )
    assert "0.15" in out["apis"]["platform"]["supported"]
    assert PHASES | {"launcher"} <= set(out["binaries"])
    assert (out["os"], out["arch"]) == ("linux", arch)


def test_the_real_binaries_carry_the_version(peers: Peers) -> None:
    # The Makefile's ldflags set cmd.Version; a phase invoked through its link prints it.
    result = subprocess.run(
        [str(peers.binary("creator")), "-version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"CNB_PLATFORM_API": "0.15"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == peers.lifecycle_version


def test_the_real_lifecycle_image_resolves_from_the_registry(
    peers: Peers, registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    tag = push_lifecycle_image(peers, registry, tmp_path)
    manifest = inspect(registry, tag, workdir=tmp_path)
    labels = manifest["Labels"]
    assert labels["io.buildpacks.lifecycle.version"] == peers.lifecycle_version

    out = cli_json("resolve", f"docker://{tag}", "--json", "--platform", "linux/amd64")
    assert out["resolver"] == "docker"
    assert out["version"] == peers.lifecycle_version
    assert (
        out["apis"]
        == json.loads(labels["io.buildpacks.lifecycle.apis"])
        == _descriptor(peers.archive())["apis"]
    )
    assert out["image"]["digest"] == manifest["Digest"]
    assert PHASES | {"launcher"} <= set(out["binaries"])
