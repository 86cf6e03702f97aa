"""``cnbkit resolve docker://...`` end to end: the docker resolver's image, the core's lifecycle
out of it (lifecycle/from_image), the CLI's output and exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from cnbkit.oci import mediatypes as mt
from cnbkit.transport.registry import RegistryClient, parse_reference

from tests.conftest import cli_json, one_line_error, run_cli
from tests.docker_images import lifecycle_layer, lifecycle_spec, push_index, push_spec, to_daemon
from tests.images import Entry, ImageSpec, tar_layer
from tests.services.credentials import DockerConfig
from tests.services.dockerd import Dockerd
from tests.services.registry import Registry
from tests.services.skopeo import inspect

PLATFORM = ("--platform", "linux/amd64")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _names(tar_path: Path) -> list[str]:
    with tarfile.open(tar_path) as tar:
        return tar.getnames()


@pytest.mark.parametrize("spelling", ["docker://", "docker:/", "docker:///"])
def test_resolve_a_lifecycle_image_by_every_spelling(
    spelling: str, registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("e2e")
    ref = push_spec(lifecycle_spec(), registry, repo, "0.21.0", tmp_path)
    manifest = inspect(registry, ref, workdir=tmp_path)
    out = cli_json("resolve", f"{spelling}{ref}", "--json", *PLATFORM)
    assert out["resolver"] == "docker"
    assert out["version"] == "0.21.0"
    assert out["image"] == {"digest": manifest["Digest"], "platform": "linux/amd64"}
    assert "analyzer" in out["binaries"]
    assert out["apis"]["buildpack"]["supported"][-1] == "0.12"


def test_by_digest_with_save_and_human_output(registry: Registry, tmp_path: Path, cache_dir: Path) -> None:
    repo = registry.unique_repo("e2e-digest")
    ref = push_spec(lifecycle_spec(), registry, repo, "v1", tmp_path)
    digest = inspect(registry, ref, workdir=tmp_path)["Digest"]
    saved = tmp_path / "lifecycle.tar"
    result = run_cli("resolve", f"docker://{registry.host}/{repo}@{digest}", "--save", str(saved), *PLATFORM)
    assert result.returncode == 0, result.stderr
    assert digest in result.stdout and "linux/amd64" in result.stdout
    names = _names(saved)
    assert any(n.endswith("cnb/lifecycle/analyzer") for n in names)
    assert not any("etc/passwd" in n for n in names)  # the base layers stay out


def test_multi_arch_index_picks_the_platform(registry: Registry, tmp_path: Path, cache_dir: Path) -> None:
    repo = registry.unique_repo("e2e-multi")
    push_index([lifecycle_spec("linux/amd64"), lifecycle_spec("linux/arm64")], registry, repo, "v1", tmp_path)
    uri = f"docker://{registry.host}/{repo}:v1"
    amd = cli_json("resolve", uri, "--json", "--platform", "linux/amd64")
    arm = cli_json("resolve", uri, "--json", "--platform", "linux/arm64")
    assert amd["image"]["platform"] == "linux/amd64"
    assert arm["image"]["platform"].startswith("linux/arm64")
    assert amd["image"]["digest"] != arm["image"]["digest"]
    error = one_line_error(run_cli("resolve", uri, "--platform", "linux/s390x"))
    assert "linux/amd64" in error and "linux/arm64" in error


def test_a_layer_with_etc_passwd_gives_a_lifecycle_without_it(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("e2e-passwd")
    mixed = [Entry("etc/", kind="dir"), Entry("etc/passwd", b"root:x:0:0::/:/bin/sh\n"), *lifecycle_layer()]
    spec = ImageSpec([mixed], labels=lifecycle_spec().labels)
    ref = push_spec(spec, registry, repo, "v1", tmp_path)
    saved = tmp_path / "l.tar"
    result = run_cli("resolve", f"docker://{ref}", "--save", str(saved), *PLATFORM)
    assert result.returncode == 0, result.stderr
    assert not any("passwd" in n for n in _names(saved))


def test_wrong_credentials_exit_1_naming_the_registry_never_the_password(
    registry_basic: Registry, docker_config: DockerConfig, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry_basic.unique_repo("e2e-wrong")
    ref = push_spec(lifecycle_spec(), registry_basic, repo, "v1", tmp_path)
    secret = "wr0ng-Secret-plugh"
    docker_config.write_auths({registry_basic.host: ("cnbkit", secret)})
    result = run_cli("resolve", f"docker://{ref}", *PLATFORM)
    error = one_line_error(result)
    assert registry_basic.host in error
    assert secret not in result.stderr + result.stdout


def test_daemon_never_and_no_daemon(dockerd: Dockerd, tmp_path: Path, cache_dir: Path) -> None:
    name = "127.0.0.1:9/e2e-daemon/lifecycle:0.21.0"
    to_daemon(lifecycle_spec(), dockerd, name, tmp_path)
    out = cli_json(
        "resolve", f"docker://{name}", "--json", "--pull-policy", "never", *PLATFORM, env=dockerd.env
    )
    assert out["resolver"] == "docker" and out["version"] == "0.21.0"
    missing = {"DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    error = one_line_error(
        run_cli("resolve", f"docker://{name}", "--pull-policy", "never", *PLATFORM, env=missing)
    )
    assert "no Docker daemon" in error


def _push_raw_lifecycle(registry: Registry, repo: str) -> tuple[str, str, bytes]:
    """A one-layer lifecycle image whose layer is an uncompressed tar, pushed by the client."""
    layer = tar_layer(lifecycle_layer())
    client = RegistryClient()
    ref = parse_reference(f"{registry.host}/{repo}:v1")
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]}}
    ).encode()
    for blob in (layer, config):
        client.upload_blob(ref, io.BytesIO(blob), _digest(blob), len(blob))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": mt.OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
        }
    ).encode()
    return client.put_manifest(ref, manifest, mt.OCI_MANIFEST), _digest(layer), layer


def test_a_single_layer_lifecycle_keeps_its_digest_and_tampering_after_the_end_marker_fails(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("e2e-tamper")
    _, layer_digest, _ = _push_raw_lifecycle(registry, repo)
    uri = f"docker://{registry.host}/{repo}:v1"
    out = cli_json("resolve", uri, "--json", *PLATFORM)
    assert out["digest"] == layer_digest  # the lone lifecycle layer passes through
    # One byte changed after the tar's end marker, in the registry's storage: no tar reader
    # sees it, only the digest can tell.
    hexdigest = layer_digest.split(":")[1]
    stored = registry.root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
    data = bytearray(stored.read_bytes())
    assert not any(data[-1024:])
    data[-10] ^= 0x41
    stored.write_bytes(bytes(data))
    fresh = tmp_path / "fresh-cache"
    result = run_cli("resolve", uri, *PLATFORM, env={"CNBKIT_CACHE_DIR": str(fresh)})
    error = one_line_error(result)
    assert layer_digest in error
    assert not (fresh / "blobs" / "sha256" / hexdigest).exists()
    assert not list(fresh.glob("lifecycles/*"))
