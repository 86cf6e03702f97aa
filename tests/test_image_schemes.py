"""Issue 22, items 1 and 2: a plugin's image scheme reaches the plugins as written in
``[build] image``, ``[[buildpacks]] uri`` and ``[lifecycle] uri``; only a reference no plugin
claims that parses as an image name becomes ``docker://``; errors name the reference as written;
an image for another platform than the one asked for is refused naming its plugin."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import cnbkit
import pytest

from tests.builder_support import build_image, builder_toml, buildpack
from tests.conftest import in_process
from tests.docker_images import lifecycle_spec
from tests.images import write_image
from tests.lifecycles import make_lifecycle
from tests.test_builder_hostile_modules import package_layout


class Recorder:
    """An image source that records every reference it is asked for and serves the layouts of
    ``images`` (reference as written -> layout directory and tag)."""

    def __init__(self, images: dict[str, tuple[Path, str]], platform: str | None = None) -> None:
        self.images = images
        self.asked: list[str] = []
        self.platform = platform

    @cnbkit.hookimpl
    def cnbkit_resolve_image(self, locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Image | None:
        self.asked.append(locator.raw)
        if locator.raw not in self.images:
            return None
        layout, tag = self.images[locator.raw]
        platform = cnbkit.parse_platform(self.platform) if self.platform else context.platform
        return cnbkit.open_layout(layout, tag=tag, platform=platform)

    @cnbkit.hookimpl
    def cnbkit_resolvers(self) -> list[str]:
        return ["docker-archive:PATH (recorded)", "acme:NAME (recorded)"]


@contextlib.contextmanager
def registered(plugin: object, name: str = "recorder") -> Iterator[None]:
    cnbkit.register_plugin(plugin, name)
    try:
        yield
    finally:
        cnbkit.unregister_plugin(name)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    build_image(root / "build")
    write_image(root / "lifecycle-image", lifecycle_spec())
    package_layout(root / "pkg")
    make_lifecycle(root / "lifecycle")
    buildpack(root / "bp")
    return root


def test_a_plugins_scheme_reaches_it_as_written_everywhere(project: Path, tmp_path: Path) -> None:
    recorder = Recorder(
        {
            "docker-archive:./build.tar": (project / "build", "latest"),
            "docker-archive:lifecycle.tar": (project / "lifecycle-image", "latest"),
            "acme:pkg": (project / "pkg", "v1"),
        }
    )
    config = builder_toml(
        project / "builder.toml",
        lifecycle='uri = "docker-archive:lifecycle.tar"',
        image="docker-archive:./build.tar",
        buildpacks=("acme:pkg",),
        order=("test/pkg",),
    )
    with registered(recorder):
        code, out, err = in_process(
            "builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(config), "--json"
        )
    assert code == 0, err
    assert recorder.asked == ["docker-archive:./build.tar", "docker-archive:lifecycle.tar", "acme:pkg"]
    sources = [layer["source"] for layer in json.loads(out)["layers"]]
    assert any("lifecycle-image:latest" in s for s in sources), sources  # its one layer, passed through


def test_an_unclaimed_image_name_becomes_docker(project: Path, tmp_path: Path) -> None:
    # "acme:build" parses as an image name and no plugin answers for it: it is docker://acme:build.
    recorder = Recorder(
        {
            "docker://acme:build": (project / "build", "latest"),
            "docker-archive:lifecycle.tar": (project / "lifecycle-image", "latest"),
            "docker-archive:pkg.tar": (project / "pkg", "v1"),
        }
    )
    config = builder_toml(
        project / "builder.toml",
        lifecycle='uri = "docker-archive:lifecycle.tar"',
        image="acme:build",
        buildpacks=("docker-archive:pkg.tar",),
        order=("test/pkg",),
    )
    with registered(recorder):
        code, _, err = in_process("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(config))
    assert code == 0, err
    assert recorder.asked == [
        "acme:build", "docker://acme:build", "docker-archive:lifecycle.tar", "docker-archive:pkg.tar"
    ]  # fmt: skip


def test_an_unclaimed_reference_is_named_as_written(project: Path, tmp_path: Path) -> None:
    config = builder_toml(project / "builder.toml", image="nosuch:./build.tar")
    code, _, err = in_process("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(config))
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1, err
    assert "'nosuch:./build.tar'" in errors[0] and "docker://nosuch" not in errors[0], errors[0]
    assert not (tmp_path / "out").exists()


def test_an_image_for_another_platform_is_refused_naming_the_plugin(project: Path, tmp_path: Path) -> None:
    # The plugin ignores the platform asked for and hands back its linux/amd64 image.
    recorder = Recorder({"docker-archive:./build.tar": (project / "build", "latest")}, platform="linux/amd64")
    config = builder_toml(project / "builder.toml", image="docker-archive:./build.tar")
    with registered(recorder, "careless-images"):
        code, _, err = in_process(
            "builder",
            "create",
            f"oci:{tmp_path / 'out'}:t",
            "--config",
            str(config),
            "--platform",
            "linux/arm64",
        )
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 1 and len(errors) == 1, err
    assert "careless-images" in errors[0] and "linux/amd64" in errors[0] and "linux/arm64" in errors[0], (
        errors[0]
    )
    assert not (tmp_path / "out").exists()
