"""What a builder's inputs resolve to: a buildpack ``uri`` naming an OCI layout directory is a
buildpackage (asked of the image sources once no resolver claims it, no scheme sniffed), and
every plugin sees one platform: the build image's, in ``context.platform`` and
``context.options.platform`` alike (the Context is derived, never assigned)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cnbkit
import pytest
from cnbkit.api import new_context
from cnbkit.options import Options
from cnbkit.transport.layout import open_layout

from tests.builder_support import build_image, builder_project, builder_toml, package_spec
from tests.conftest import one_line_error, run_cli
from tests.images import write_image


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A builder project (file lifecycle, buildpack ``bp``, build image ``build``) whose
    buildpacks also name ``pkg``, a buildpackage saved as an OCI layout beside builder.toml."""
    root = builder_project(tmp_path / "project")
    write_image(root / "pkg", package_spec(), "latest")
    builder_toml(
        root / "builder.toml",
        lifecycle='uri = "lifecycle.tgz"',
        buildpacks=("bp", "pkg"),
        order=("test/one", "test/pkg"),
    )
    return root


def test_a_buildpack_uri_naming_an_oci_layout_directory_is_a_buildpackage(
    project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(project / "builder.toml"), "--json",
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    sources = [layer["source"] for layer in result["layers"]]
    # The package's two modules, each its own layer referenced as stored (not one archive).
    assert sum(source.endswith(f"of oci:{project / 'pkg'}") for source in sources) == 2, sources
    made_image = open_layout(out, tag="v1", platform=cnbkit.parse_platform("linux/amd64"))
    assert made_image.digest == result["digest"]
    modules = json.loads(made_image.config.labels["io.buildpacks.buildpack.layers"])
    assert sorted(modules) == ["test/dep", "test/one", "test/pkg"]


def test_a_layout_that_is_no_buildpackage_is_one_line(project: Path, tmp_path: Path) -> None:
    build_image(project / "pkg-plain")
    builder_toml(project / "builder.toml", lifecycle='uri = "lifecycle.tgz"', buildpacks=("bp", "pkg-plain"))
    failed = run_cli(
        "builder", "create", f"oci:{tmp_path / 'out'}:v1", "--config", str(project / "builder.toml"),
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    error = one_line_error(failed)
    assert "uri 'pkg-plain'" in error and "is not a buildpackage" in error
    assert not (tmp_path / "out").exists()


class SeenPlatforms:
    """A forwarding resolver (``seen:PATH``) that notes the platform its Context says."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @cnbkit.hookimpl
    def cnbkit_resolve(self, locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Blob | None:
        if locator.scheme != "seen":
            return None
        self.seen.append((str(context.platform), str(context.options.platform)))
        return context.resolve(locator.rest)


@pytest.fixture
def seen() -> Iterator[SeenPlatforms]:
    plugin = SeenPlatforms()
    cnbkit.register_plugin(plugin, "test-seen-platforms")
    yield plugin
    cnbkit.unregister_plugin("test-seen-platforms")


def test_plugins_see_the_build_images_platform_everywhere_in_the_context(
    project: Path, tmp_path: Path, seen: SeenPlatforms
) -> None:
    build_image(project / "build-arm", platform="linux/arm64/v8")
    builder_toml(
        project / "builder.toml",
        lifecycle='uri = "seen:lifecycle.tgz"',
        image="oci:build-arm:latest",
        buildpacks=("seen:bp",),
    )
    made = cnbkit.create_builder(
        project / "builder.toml",
        f"oci:{tmp_path / 'out'}:v1",
        platform="linux/arm64",  # the image says more: its variant
        cache_dir=tmp_path / "cache",
        quiet=True,
    )
    assert (made.lifecycle.arch, made.lifecycle.variant) == ("arm64", "v8")
    # The lifecycle and the buildpack were both asked for with the build image's platform,
    # and the options a plugin reads agree with it.
    assert seen.seen == [("linux/arm64/v8", "linux/arm64/v8")] * 2


def test_the_context_is_derived_never_assigned(tmp_path: Path) -> None:
    context = new_context(Options.build(platform="linux/amd64", cache_dir=tmp_path))
    arm = context.with_platform(cnbkit.parse_platform("linux/arm64"))
    assert (str(context.platform), str(context.options.platform)) == ("linux/amd64", "linux/amd64")
    assert (str(arm.platform), str(arm.options.platform)) == ("linux/arm64", "linux/arm64")
    assert arm.cache is context.cache and arm.pull_policy == context.pull_policy
    for name in ("platform", "pull_policy", "offline", "options", "cache"):
        with pytest.raises(AttributeError):
            setattr(context, name, getattr(arm, name))


def test_a_buildpackage_module_cannot_be_flattened(project: Path, tmp_path: Path) -> None:
    # Its layer is referenced as stored (never unpacked): one line, exit 1, nothing written.
    out = tmp_path / "out"
    made = run_cli(
        "builder", "create", f"oci:{out}:v1", "--config", str(project / "builder.toml"),
        "--flatten", "test/one@1.0.0,test/pkg@2.0.0",
        env={"CNBKIT_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    error = one_line_error(made)
    assert "--flatten: test/pkg@2.0.0 comes from" in error and "flatten only modules" in error, error
    assert not out.exists()
