"""The docker resolver and the Docker daemon: pull policies against a private ``dockerd``.

The image is put into dockerd only (``skopeo copy ... docker-daemon:``), so a resolve that
finds it found it in the daemon; the registry tests are in tests/test_docker_registry.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.oci.errors import ImageNotFoundError, PlatformNotFoundError
from cnbkit.options import Options

from tests.docker_images import lifecycle_spec, push_spec, read_layers, to_daemon
from tests.images import gzip_layer
from tests.services.dockerd import Dockerd
from tests.services.registry import Registry


def open_image(uri: str, cache: Path, **options: Any) -> cnbkit.Image:
    options.setdefault("platform", "linux/amd64")
    return new_context(Options.build(cache_dir=cache, **options)).resolve_image(uri)


@pytest.fixture(scope="module")
def daemon_image(dockerd: Dockerd, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An official-shaped lifecycle image that exists only in dockerd."""
    name = "127.0.0.1:9/only-in-daemon/lifecycle:0.21.0"  # port 9: no registry answers there
    to_daemon(lifecycle_spec(), dockerd, name, tmp_path_factory.mktemp("daemon-image"))
    return name


@pytest.mark.parametrize("policy", ["if-not-present", "never"])
def test_an_image_only_in_the_daemon_resolves(
    policy: str, daemon_image: str, docker_host: Dockerd, cache_dir: Path
) -> None:
    image = open_image(f"docker://{daemon_image}", cache_dir, pull_policy=policy)
    assert "Docker daemon" in image.reference
    layers = read_layers(image)
    spec = lifecycle_spec()
    # docker save gives the uncompressed layers: each is exactly the layer whose diff ID it has
    assert [gzip_layer(entries)[1] for entries in spec.layers] == list(image.config.diff_ids)
    assert [layer.digest for layer in image.layers()] == list(image.config.diff_ids)
    with tarfile.open(fileobj=io.BytesIO(layers[-1])) as tar:
        assert "/cnb/lifecycle/analyzer" in tar.getnames() or "cnb/lifecycle/analyzer" in tar.getnames()
    assert image.config.label("io.buildpacks.lifecycle.version") == "0.21.0"
    # a second open finds config and layers cached: the same image, without a second save
    again = open_image(f"docker://{daemon_image}", cache_dir, pull_policy=policy)
    assert again.digest == image.digest


def test_never_with_no_daemon_is_a_clear_error(tmp_path: Path, cache_dir: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with pytest.raises(cnbkit.CnbkitError, match=r"no Docker daemon .*--pull-policy if-not-present"):
        open_image("docker://127.0.0.1:9/x/lifecycle:1", cache_dir, pull_policy="never")


def test_never_with_a_dead_daemon_address_is_a_clear_error(cache_dir: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    with pytest.raises(cnbkit.CnbkitError, match=r"cannot reach the Docker daemon at tcp://127.0.0.1:9"):
        open_image("docker://127.0.0.1:9/x/lifecycle:1", cache_dir, pull_policy="never")


def test_never_and_an_image_the_daemon_lacks(docker_host: Dockerd, cache_dir: Path) -> None:
    with pytest.raises(ImageNotFoundError, match=r"no such image in the Docker daemon at unix://"):
        open_image("docker://127.0.0.1:9/not/there:1", cache_dir, pull_policy="never")


def test_never_and_the_daemons_image_of_another_platform(
    daemon_image: str, docker_host: Dockerd, cache_dir: Path
) -> None:
    with pytest.raises(PlatformNotFoundError, match=r"is linux/amd64, not linux/arm64"):
        open_image(f"docker://{daemon_image}", cache_dir, pull_policy="never", platform="linux/arm64")


@pytest.mark.parametrize("host", ["missing-socket", "dead-tcp"])
def test_with_no_daemon_if_not_present_resolves_from_the_registry(
    host: str, registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("nodaemon")
    push_spec(lifecycle_spec(), registry, repo, "v1", tmp_path)
    docker_host = f"unix://{tmp_path}/no-daemon.sock" if host == "missing-socket" else "tcp://127.0.0.1:9"
    code = (
        "import sys\n"
        "from cnbkit.api import new_context\n"
        "from cnbkit.options import Options\n"
        "context = new_context(Options.build(platform='linux/amd64'))\n"
        f"image = context.resolve_image('docker://{registry.host}/{repo}:v1')\n"
        "print(type(image).__name__, 'docker' in sys.modules)\n"
    )
    env = {**os.environ, "CNBKIT_CACHE_DIR": str(cache_dir), "DOCKER_HOST": docker_host}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # silent
    # no socket: the Docker SDK is not even imported; a tcp address must be tried
    assert out.stdout.split() == ["RegistryImage", "False" if host == "missing-socket" else "True"]


def test_if_not_present_prefers_the_daemon_and_always_goes_to_the_registry(
    registry: Registry, docker_host: Dockerd, tmp_path: Path, cache_dir: Path
) -> None:
    repo = registry.unique_repo("both")
    ref = push_spec(lifecycle_spec(), registry, repo, "v1", tmp_path)
    assert type(open_image(f"docker://{ref}", cache_dir)).__name__ == "RegistryImage"  # not in dockerd
    docker_host.cli("pull", ref)
    assert type(open_image(f"docker://{ref}", cache_dir)).__name__ == "DaemonImage"
    mark = registry.mark()
    assert type(open_image(f"docker://{ref}", cache_dir, pull_policy="always")).__name__ == "RegistryImage"
    assert registry.count("HEAD", rf"/v2/{repo}/manifests/v1", since=mark) == 1
