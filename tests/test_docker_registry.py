"""The docker resolver against real registries: ``context.resolve_image("docker://...")``.

Images are official-shaped lifecycle images built here and pushed with skopeo; every layer is
read back through its verified stream. (The end-to-end ``cnbkit resolve docker://...`` tests
are in tests/test_docker_resolve_e2e.py.)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.oci import mediatypes as mt
from cnbkit.oci.errors import PlatformNotFoundError
from cnbkit.options import Options
from cnbkit.transport.registry import RegistryClient, parse_reference

from tests.docker_images import lifecycle_spec, push_index, push_spec, read_layers
from tests.images import Entry, tar_layer
from tests.services.credentials import CredentialHelper, DockerConfig
from tests.services.registry import Registry
from tests.services.skopeo import inspect


def open_image(uri: str, cache: Path, **options: Any) -> cnbkit.Image:
    options.setdefault("pull_policy", "always")
    options.setdefault("platform", "linux/amd64")
    return new_context(Options.build(cache_dir=cache, **options)).resolve_image(uri)


def names_in(layer: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return tar.getnames()


def lifecycle_toml(image: cnbkit.Image) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(read_layers(image)[-1])) as tar:
        member = tar.extractfile("/cnb/lifecycle.toml")
        assert member is not None
        return member.read()


def test_by_tag_and_by_digest_every_layer_verified(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("lifecycle")
    push_spec(lifecycle_spec(), registry, repo, "0.21.0", tmp_path)
    image = open_image(f"docker://{registry.host}/{repo}:0.21.0", cache_dir)
    assert image.manifest.media_type == mt.OCI_MANIFEST
    assert image.config.label("io.buildpacks.lifecycle.version") == "0.21.0"
    layers = read_layers(image)
    assert len(layers) == 3
    assert "etc/passwd" in names_in(layers[0])
    assert "/cnb/lifecycle/analyzer" in names_in(layers[2])
    assert b'version = "0.21.0"' in lifecycle_toml(image)
    for layer in image.layers():  # every blob went into the cache by digest
        assert (cache_dir / "blobs" / "sha256" / layer.digest.split(":")[1]).is_file()

    raw = inspect(registry, f"{registry.host}/{repo}:0.21.0", workdir=tmp_path)
    by_digest = open_image(f"docker://{registry.host}/{repo}@{image.digest}", tmp_path / "other-cache")
    assert by_digest.digest == image.digest
    assert raw["Digest"] == image.digest
    assert read_layers(by_digest) == layers


@pytest.mark.parametrize("spelling", ["docker://", "docker:/", "docker:///"])
def test_all_three_spellings(spelling: str, registry: Registry, tmp_path: Path, cache_dir: Path) -> None:
    repo = registry.unique_repo("spelling")
    push_spec(lifecycle_spec(), registry, repo, "v1", tmp_path)
    image = open_image(f"{spelling}{registry.host}/{repo}:v1", cache_dir)
    assert image.reference == f"{registry.host}/{repo}:v1"
    assert len(image.layers()) == 3


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_multi_arch_picks_the_platform(
    docker: bool, registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("multi")
    specs = [lifecycle_spec(p) for p in ("linux/amd64", "linux/arm64")]
    push_index(specs, registry, repo, "v1", tmp_path, docker=docker)
    uri = f"docker://{registry.host}/{repo}:v1"
    amd = open_image(uri, cache_dir, platform="linux/amd64")
    arm = open_image(uri, cache_dir, platform="linux/arm64")
    assert (amd.config.architecture, arm.config.architecture) == ("amd64", "arm64")
    assert arm.platform.variant in ("", "v8")
    assert amd.digest != arm.digest
    assert b"linux/arm64" in read_layers(arm)[-1]
    assert b"linux/amd64" in read_layers(amd)[-1]
    expected = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
    assert amd.manifest.media_type == expected
    # aarch64 is arm64, and v8 its default variant
    assert open_image(uri, cache_dir, platform="linux/aarch64/v8").digest == arm.digest


def test_an_absent_platform_lists_the_available_ones(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("absent")
    push_index([lifecycle_spec("linux/amd64"), lifecycle_spec("linux/arm64")], registry, repo, "v1", tmp_path)
    with pytest.raises(PlatformNotFoundError) as caught:
        open_image(f"docker://{registry.host}/{repo}:v1", cache_dir, platform="linux/s390x")
    message = str(caught.value)
    assert "linux/s390x" in message and "linux/amd64" in message and "linux/arm64" in message
    assert "unknown" not in message  # the attestation entry is no platform
    assert caught.value.available == ["linux/amd64", "linux/arm64"]


def test_a_single_image_of_another_platform_is_refused(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("single")
    push_spec(lifecycle_spec("linux/arm64"), registry, repo, "v1", tmp_path)
    with pytest.raises(PlatformNotFoundError, match=r"is linux/arm64, not linux/amd64"):
        open_image(f"docker://{registry.host}/{repo}:v1", cache_dir)


def test_docker_schema2(registry: Registry, tmp_path: Path, cache_dir: Path) -> None:
    repo = registry.unique_repo("schema2")
    push_spec(lifecycle_spec(), registry, repo, "v1", tmp_path, extra=("--format", "v2s2"))
    image = open_image(f"docker://{registry.host}/{repo}:v1", cache_dir)
    assert image.manifest.media_type == mt.DOCKER_MANIFEST
    assert all(layer.descriptor.media_type == mt.DOCKER_LAYER_GZIP for layer in image.layers())
    assert "/cnb/lifecycle/launcher" in names_in(read_layers(image)[-1])


def test_warm_tag_costs_one_head_and_a_digest_none(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("warm")
    push_index([lifecycle_spec("linux/amd64"), lifecycle_spec("linux/arm64")], registry, repo, "v1", tmp_path)
    uri = f"docker://{registry.host}/{repo}:v1"
    first = open_image(uri, cache_dir)
    read_layers(first)
    mark = registry.mark()
    again = open_image(uri, cache_dir)
    read_layers(again)
    seen = [(e.method, e.path) for e in registry.log_requests(since=mark)]
    assert seen == [("HEAD", f"/v2/{repo}/manifests/v1")]  # not even the /v2/ ping
    mark = registry.mark()
    pinned = open_image(f"docker://{registry.host}/{repo}@{first.digest}", cache_dir)
    read_layers(pinned)
    assert registry.log_requests(since=mark) == []
    # offline: the tag is what it pointed at last time, and nothing is asked
    offline = open_image(uri, cache_dir, offline=True)
    assert offline.digest == first.digest
    assert registry.log_requests(since=mark) == []


def test_offline_without_the_cache_says_so(registry: Registry, cache_dir: Path) -> None:
    with pytest.raises(cnbkit.CacheMissError, match=r"never resolved on this machine \(--offline\)"):
        open_image(f"docker://{registry.host}/nothing:v1", cache_dir, offline=True)


def test_a_retagged_image_is_seen_by_the_warm_head(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("retag")
    push_spec(lifecycle_spec(marker="one"), registry, repo, "v1", tmp_path)
    first = open_image(f"docker://{registry.host}/{repo}:v1", cache_dir)
    push_spec(lifecycle_spec(marker="two"), registry, repo, "v1", tmp_path / "again")
    second = open_image(f"docker://{registry.host}/{repo}:v1", cache_dir)
    assert second.digest != first.digest
    assert b"two" in read_layers(second)[-1]


def test_a_registry_that_wants_credentials_is_never_revalidated_without_them(
    registry_basic: Registry, docker_config: DockerConfig, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry_basic.unique_repo("noquick")
    push_spec(lifecycle_spec(), registry_basic, repo, "v1", tmp_path)
    assert registry_basic.username and registry_basic.password
    docker_config.write_auths({registry_basic.host: (registry_basic.username, registry_basic.password)})
    uri = f"docker://{registry_basic.host}/{repo}:v1"
    open_image(uri, cache_dir)
    mark = registry_basic.mark()
    open_image(uri, cache_dir)
    assert [e.status for e in registry_basic.log_requests("HEAD", since=mark)][-1] == 200
    assert registry_basic.count("GET", "/v2/", since=mark) == 1  # the full path: ping, then log in


def test_a_warm_tag_or_digest_imports_neither_requests_nor_docker(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("lazy")
    push_spec(lifecycle_spec(), registry, repo, "v1", tmp_path)
    image = open_image(f"docker://{registry.host}/{repo}:v1", cache_dir, pull_policy="if-not-present")
    read_layers(image)
    pinned = f"docker://{registry.host}/{repo}@{image.digest}"
    tagged = f"docker://{registry.host}/{repo}:v1"
    code = (
        "import sys\n"
        "from cnbkit.api import new_context\n"
        "from cnbkit.options import Options\n"
        f"new_context(Options.build(platform='linux/amd64')).resolve_image({tagged!r})\n"
        f"image = new_context(Options.build(platform='linux/amd64')).resolve_image({pinned!r})\n"
        "for layer in image.layers():\n"
        "    stream = layer.open()\n"
        "    while stream.read(65536): pass\n"
        "print(sorted(m for m in ('requests', 'docker', 'urllib3') if m in sys.modules))\n"
    )
    env = {**os.environ, "CNBKIT_CACHE_DIR": str(cache_dir), "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    root = Path(__file__).parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_pull_through_cache_serves_the_lifecycle_unchanged(
    registry: Registry, registry_proxy: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("proxied")
    push_spec(lifecycle_spec(), registry, repo, "v1", tmp_path)
    direct = open_image(f"docker://{registry.host}/{repo}:v1", cache_dir)
    through = open_image(f"docker://{registry_proxy.host}/{repo}:v1", tmp_path / "cache2")
    assert through.digest == direct.digest
    assert read_layers(through) == read_layers(direct)
    assert registry_proxy.count("GET", rf"/v2/{repo}/blobs/sha256:[0-9a-f]{{64}}") >= 3


def test_tls_registry_with_the_ca_bundle(registry_tls: Registry, tmp_path: Path, cache_dir: Path) -> None:
    repo = registry_tls.unique_repo("tls")
    push_spec(lifecycle_spec(), registry_tls, repo, "v1", tmp_path)
    image = open_image(f"docker://{registry_tls.host}/{repo}:v1", cache_dir, ca_cert=registry_tls.ca_bundle)
    assert len(read_layers(image)) == 3


# -- auth ---------------------------------------------------------------------------------------


def test_basic_auth_from_config_json(
    registry_basic: Registry, docker_config: DockerConfig, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry_basic.unique_repo("basic")
    push_spec(lifecycle_spec(), registry_basic, repo, "v1", tmp_path)
    uri = f"docker://{registry_basic.host}/{repo}:v1"
    with pytest.raises(cnbkit.CnbkitError, match=rf"{registry_basic.host}.*401"):
        open_image(uri, cache_dir)
    assert registry_basic.username and registry_basic.password
    docker_config.write_auths({registry_basic.host: (registry_basic.username, registry_basic.password)})
    assert len(read_layers(open_image(uri, cache_dir))) == 3


@pytest.mark.parametrize("how", ["credsStore", "credHelpers"])
def test_basic_auth_from_a_credential_helper(
    how: str,
    registry_basic: Registry,
    docker_config: DockerConfig,
    credential_helper: CredentialHelper,
    tmp_path: Path,
    cache_dir: Path,
) -> None:
    repo = registry_basic.unique_repo("helper")
    push_spec(lifecycle_spec(), registry_basic, repo, "v1", tmp_path)
    assert registry_basic.username and registry_basic.password
    credential_helper.add(registry_basic.host, registry_basic.username, registry_basic.password)
    if how == "credsStore":
        docker_config.write_creds_store(credential_helper)
    else:
        docker_config.write_cred_helpers({registry_basic.host: credential_helper})
    image = open_image(f"docker://{registry_basic.host}/{repo}:v1", cache_dir)
    assert len(read_layers(image)) == 3
    assert credential_helper.calls("get")


def test_token_auth(
    registry_token: Registry, docker_config: DockerConfig, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry_token.unique_repo("token")
    push_spec(lifecycle_spec(), registry_token, repo, "v1", tmp_path)
    assert registry_token.username and registry_token.password
    docker_config.write_auths({registry_token.host: (registry_token.username, registry_token.password)})
    server = registry_token.token_server
    assert server is not None
    mark = server.mark()
    image = open_image(f"docker://{registry_token.host}/{repo}:v1", cache_dir)
    assert len(read_layers(image)) == 3
    assert server.count(status=200, user=registry_token.username, since=mark) >= 1


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_wrong_credentials_name_the_registry_never_the_password(
    kind: str,
    registry_basic: Registry,
    registry_token: Registry,
    docker_config: DockerConfig,
    tmp_path: Path,
    cache_dir: Path,
) -> None:
    target = registry_basic if kind == "basic" else registry_token
    repo = target.unique_repo("wrong")
    push_spec(lifecycle_spec(), target, repo, "v1", tmp_path)
    secret = "not-the-Passw0rd-xyzzy"
    docker_config.write_auths({target.host: ("cnbkit", secret)})
    with pytest.raises(cnbkit.CnbkitError) as caught:
        open_image(f"docker://{target.host}/{repo}:v1", cache_dir)
    message = str(caught.value)
    assert target.host in message
    assert secret not in message and "\n" not in message


# -- tampering ----------------------------------------------------------------------------------


def _storage_blob(registry: Registry, digest: str) -> Path:
    hexdigest = digest.split(":")[1]
    return registry.root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def _push_raw(registry: Registry, repo: str, layer: bytes) -> tuple[str, str]:
    """Push a one-layer image whose layer is an uncompressed tar (so its bytes after the tar end
    marker are plain to see); return the manifest and layer digests."""
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
    return client.put_manifest(ref, manifest, mt.OCI_MANIFEST), _digest(layer)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("where", ["inside", "after-end-marker"])
def test_a_tampered_blob_is_an_error_and_nothing_is_cached(
    where: str, registry: Registry, cache_dir: Path
) -> None:
    repo = registry.unique_repo("tamper")
    layer = tar_layer([Entry("cnb/", kind="dir"), Entry("cnb/lifecycle.toml", b"x" * 3000, mode=0o644)])
    manifest_digest, layer_digest = _push_raw(registry, repo, layer)
    stored = _storage_blob(registry, layer_digest)
    data = bytearray(stored.read_bytes())
    position = 700 if where == "inside" else len(data) - 10  # the last bytes: zero blocks after the end
    assert where == "inside" or not any(data[len(data) - 1024 :])
    data[position] ^= 0x41
    stored.write_bytes(bytes(data))
    image = open_image(f"docker://{registry.host}/{repo}:v1", cache_dir)
    with pytest.raises(cnbkit.DigestMismatchError, match=layer_digest):
        read_layers(image)
    assert not (cache_dir / "blobs" / "sha256" / layer_digest.split(":")[1]).exists()
    assert image.digest == manifest_digest
    # nothing half-written is left behind either
    assert not [p for p in (cache_dir / "tmp").glob("*") if p.is_file()]


def test_a_tampered_manifest_fetched_by_digest_is_an_error(registry: Registry, cache_dir: Path) -> None:
    repo = registry.unique_repo("tamper-manifest")
    layer = gzip.compress(tar_layer([]))
    manifest_digest, _ = _push_raw(registry, repo, layer)
    stored = _storage_blob(registry, manifest_digest)
    data = stored.read_bytes()
    # The config's size, one digit changed: the same length, still a manifest the registry serves.
    match = re.search(rb'"size": ?(\d+)', data)
    assert match is not None
    digit = match.start(1)
    stored.write_bytes(
        data[:digit] + str((int(data[digit : digit + 1]) + 1) % 10).encode() + data[digit + 1 :]
    )
    with pytest.raises(cnbkit.DigestMismatchError, match=manifest_digest):
        open_image(f"docker://{registry.host}/{repo}@{manifest_digest}", cache_dir)
    assert not (cache_dir / "blobs" / "sha256" / manifest_digest.split(":")[1]).exists()
