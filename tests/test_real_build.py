"""A builder cnbkit made from the real lifecycle builds and runs an app with the real pack.

The build image, run image and buildpacks are tests/real_builds.py's (busybox, shell). cnbkit
loads the builder into the private dockerd; ``pack build --trust-builder --pull-policy never``
runs the lifecycle's ``creator`` in a container of it (``--network none``: dockerd has no bridge
here; ``--docker-host inherit`` bind-mounts DOCKER_HOST's socket for the export, where pack's
default mounts /var/run/docker.sock); ``docker run`` runs the app.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.docker_images import push_spec
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.real_builds import (
    APP_OUTPUT,
    BUSYBOX,
    GREETING,
    base_spec,
    builder_toml,
    push_lifecycle_image,
    sample_app,
    sample_buildpacks,
)
from tests.services.dockerd import Dockerd
from tests.services.peers import Peers
from tests.services.proc import tool_missing
from tests.services.registry import Registry
from tests.services.skopeo import registry_flags, skopeo


@pytest.fixture(scope="module")
def stack(registry: Registry, dockerd: Dockerd, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The build and run images pushed to the registry; the run image also in dockerd (pack
    looks it up there under ``--pull-policy never``)."""
    if not BUSYBOX.is_file():
        tool_missing(f"{BUSYBOX} is missing: install the Debian package busybox-static (tools/setup-tests)")
    work = tmp_path_factory.mktemp("stack")
    build = push_spec(base_spec(), registry, registry.unique_repo("tiny-build"), "t", work)
    run = push_spec(base_spec(), registry, registry.unique_repo("tiny-run"), "t", work)
    dockerd.cli("pull", run, timeout=120)
    return build, run


def _detected(log: str) -> list[str]:
    """The buildpacks the DETECTING section of pack's log names (``ID VERSION`` lines)."""
    section = log.split("===> DETECTING", 1)[1].split("===>", 1)[0]
    return [line.split()[0] for line in section.splitlines() if line.strip().startswith("test/")]


@pytest.fixture(scope="module")
def lifecycle_image(peers: Peers, registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real lifecycle image, made and pushed by the lifecycle's tools/image."""
    return push_lifecycle_image(peers, registry, tmp_path_factory.mktemp("lifecycle-image"))


def _lifecycle_source(source: str, request: pytest.FixtureRequest, work: Path) -> tuple[str, list[str]]:
    """The builder.toml ``[lifecycle] uri`` for ``source`` and the flags ``builder create`` needs."""
    peers: Peers = request.getfixturevalue("peers")
    if source == "tgz":
        return str(peers.archive()), []
    if source == "https":
        server: HTTPSServer = request.getfixturevalue("https_server")
        ca_bundle: Path = request.getfixturevalue("ca_bundle")
        return server.add_file(f"/{peers.archive().name}", peers.archive()), ["--ca-cert", str(ca_bundle)]
    image: str = request.getfixturevalue("lifecycle_image")
    if source == "docker":
        return f"docker://{image}", []
    registry: Registry = request.getfixturevalue("registry")
    layout = work / "lifecycle-layout"
    skopeo("copy", *registry_flags(registry, "src"), f"docker://{image}", f"oci:{layout}:lc", workdir=work)
    return f"oci:{layout}:lc", []


@pytest.mark.parametrize("source", ["tgz", "https", "docker", "oci"])
def test_a_builder_from_the_real_lifecycle_builds_and_runs_the_app(
    source: str,
    request: pytest.FixtureRequest,
    peers: Peers,
    docker_host: Dockerd,
    stack: tuple[str, str],
    tmp_path: Path,
    cache_dir: Path,
) -> None:
    build_image, run_image = stack
    lifecycle, flags = _lifecycle_source(source, request, tmp_path)
    config = builder_toml(
        tmp_path / "builder.toml",
        lifecycle=lifecycle,
        build_image=f"docker://{build_image}",
        run_image=run_image,
        buildpacks=sample_buildpacks(tmp_path / "buildpacks"),
    )
    builder = f"cnbkit-test/builder:{source}"
    created = run_cli("builder", "create", f"docker-daemon:{builder}", "--config", str(config), *flags)
    assert created.returncode == 0, created.stderr

    app = sample_app(tmp_path / "app")
    image = f"cnbkit-test/app:{source}"
    built = peers.run_pack(
        tmp_path, "build", image, "--builder", builder, "--trust-builder",
        "--pull-policy", "never", "--network", "none", "--docker-host", "inherit", "--path", str(app),
        docker_host=docker_host.host,
    )  # fmt: skip
    log = built.stdout + built.stderr
    assert built.returncode == 0, log
    # The optional buildpack did not detect (exit 100) and the build went on without it.
    assert _detected(log) == ["test/system", "test/hello"], log
    assert "test/hello built as 1000:1000" in log  # the lifecycle ran the buildpack as the CNB user

    ran = docker_host.cli("run", "--rm", "--network", "none", image, timeout=120)
    # The app's file, the [[build.env]] value the build saw, the system buildpack's layer.
    assert ran.stdout.splitlines() == [APP_OUTPUT, f"SAMPLE_GREETING={GREETING}", "system-pre ran"], ran
