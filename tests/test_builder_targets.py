"""Multi-arch builders end to end through the CLI: ``[[targets]]`` and ``--target`` make one
builder per platform from an index build image and an index lifecycle image in the loopback
registry (or a lifecycle version from a loopback mirror), joined in an OCI image index; skopeo
reads each platform back; refusals are one line with nothing written."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cnbkit
import pytest

from tests.builder_support import (
    CNB_ENV,
    build_image,
    builder_project,
    builder_toml,
    buildpack,
    package_entries,
)
from tests.conftest import CLI, in_process
from tests.docker_images import lifecycle_spec, push_index, push_spec
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.images import Entry, ImageSpec, gzip_layer
from tests.lifecycles import big_lifecycle, descriptor, make_lifecycle
from tests.services.dockerd import Dockerd
from tests.services.registry import Registry
from tests.services.skopeo import skopeo
from tests.test_https import _run_with_pty_stderr
from tests.test_signals import leftovers, stop_with, wait_for

PLATFORMS = ("linux/amd64", "linux/arm64")
TARGETS = '[[targets]]\nos = "linux"\narch = "amd64"\n\n[[targets]]\nos = "linux"\narch = "arm64"\n'
SUFFIXES = {"linux/amd64": "linux.x86-64", "linux/arm64": "linux.arm64"}


# The layers whose content is the same for every target, by the start of their source.
SHARED = ("buildpack test/one@1.0.0", "cnb/order.toml", "cnb/stack.toml", "cnb/run.toml", "directories")


def _shared(layers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each of :data:`SHARED`'s layer record."""
    found = {s: [r for r in layers if r["source"].startswith(s)] for s in SHARED}
    assert all(len(records) == 1 for records in found.values()), layers
    return {s: records[0] for s, records in found.items()}


def create(target: str, config: Path, *extra: str) -> dict[str, Any]:
    code, out, err = in_process("builder", "create", target, "--config", str(config), "--json", *extra)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def refused(target: str, config: Path, *extra: str, code: int = 1) -> str:
    """The one ``error:`` line of a refused create (exit ``code``)."""
    found, out, err = in_process("builder", "create", target, "--config", str(config), *extra)
    assert found == code, (found, out, err)
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def build_spec(platform: str) -> ImageSpec:
    layer = [Entry("etc", kind="dir"), Entry("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mode=0o644)]
    return ImageSpec([layer], platform=platform, labels={"a.label": platform}, env=CNB_ENV)


@dataclass
class Images:
    """Index images in the loopback registry: the build image, the lifecycle image; a
    single-arch lifecycle image; each platform's lifecycle layer digest."""

    registry: Registry
    build: str
    lifecycle: str
    amd64_lifecycle: str
    lifecycle_layers: dict[str, str]
    run: str
    amd64_run: str


def _inspect(ref: str, work: Path, arch: str = "") -> dict[str, Any]:
    override = ("--override-arch", arch) if arch else ()
    shown = skopeo(*override, "inspect", "--tls-verify=false", ref, workdir=work).stdout
    found: dict[str, Any] = json.loads(shown)
    return found


@pytest.fixture(scope="module")
def images(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Images:
    work = tmp_path_factory.mktemp("targets")
    build = push_index(
        [build_spec(p) for p in PLATFORMS], registry, registry.unique_repo("build"), "v1", work
    )
    lifecycle_repo = registry.unique_repo("lifecycle")
    lifecycle = push_index([lifecycle_spec(p) for p in PLATFORMS], registry, lifecycle_repo, "v1", work)
    single = push_spec(lifecycle_spec("linux/amd64"), registry, registry.unique_repo("lc-amd64"), "v1", work)
    layers = {p: _inspect(f"docker://{lifecycle}", work, p.split("/")[1])["Layers"][-1] for p in PLATFORMS}
    assert layers["linux/amd64"] != layers["linux/arm64"]
    run = push_index([build_spec(p) for p in PLATFORMS], registry, registry.unique_repo("run"), "v1", work)
    amd64_run = push_spec(build_spec("linux/amd64"), registry, registry.unique_repo("run-amd64"), "v1", work)
    return Images(registry, build, lifecycle, single, layers, run, amd64_run)


def project(root: Path, images: Images, *, lifecycle: str = "", extra: str = TARGETS, run: str = "") -> Path:
    """builder.toml with the index build, lifecycle and run images and two targets."""
    root.mkdir()
    buildpack(root / "bp")
    config = builder_toml(
        root / "builder.toml",
        lifecycle=lifecycle or f'uri = "docker://{images.lifecycle}"',
        image=f"docker://{images.build}",
        extra=extra,
    )
    text = config.read_text().replace("cnbs/sample-base-run:jammy", run or images.run)
    config.write_text(text.replace('mirrors = ["mirror.example/run"]', f'mirrors = ["{images.run}"]'))
    return config


def test_two_targets_make_an_index_each_platform_with_its_own_lifecycle(
    images: Images, tmp_path: Path
) -> None:
    config = project(tmp_path / "p", images)
    out = tmp_path / "out"
    made = create(f"oci:{out}:v1", config)
    index = json.loads((out / "blobs" / "sha256" / made["digest"].split(":")[1]).read_bytes())
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    assert [m["platform"] for m in made["manifests"]] == list(PLATFORMS)
    assert [m["digest"] for m in made["manifests"]] == [m["digest"] for m in index["manifests"]]
    by_platform = {}
    for platform in PLATFORMS:
        arch = platform.split("/")[1]
        seen = _inspect(f"oci:{out}:v1", tmp_path, arch)
        assert seen["Architecture"] == arch and seen["Labels"]["a.label"] == platform
        # The lifecycle image's own layer for that platform, referenced as stored.
        assert images.lifecycle_layers[platform] in seen["Layers"]
        assert all(images.lifecycle_layers[p] not in seen["Layers"] for p in PLATFORMS if p != platform)
        by_platform[platform] = seen["Layers"]
    # The buildpack (architecture-independent), order.toml...: one blob for both.
    amd64, arm64 = (_shared(m["layers"]) for m in made["manifests"])
    assert all(amd64[s]["digest"] == arm64[s]["digest"] for s in SHARED)
    # Same inputs, same index digest.
    again = create(f"oci:{tmp_path / 'out2'}:v1", config)
    assert again["digest"] == made["digest"]


def test_a_second_target_compresses_nothing_the_first_made(images: Images, tmp_path: Path) -> None:
    config = project(tmp_path / "p", images)
    made = create(f"oci:{tmp_path / 'out'}:v1", config)
    first, second = (_shared(m["layers"]) for m in made["manifests"])
    # The second target's shared layers were found compressed (reused), not made again.
    assert not any(first[s]["reused"] for s in SHARED) and all(second[s]["reused"] for s in SHARED)


def test_the_target_being_built_is_said_on_a_terminal_only(images: Images, tmp_path: Path) -> None:
    config = str(project(tmp_path / "p", images))
    args = ["builder", "create", f"oci:{tmp_path / 'out'}:v1", "--config", config]
    code, _, terminal = _run_with_pty_stderr(args, {"CNBKIT_CACHE_DIR": str(tmp_path / "cache")})
    assert code == 0, terminal
    for number, platform in enumerate(PLATFORMS, 1):
        assert f"building the builder for {platform} ({number} of 2)".encode() in terminal
    code, out, err = in_process("builder", "create", f"oci:{tmp_path / 'out2'}:v1", "--config", config)
    assert code == 0 and "building the builder" not in err
    assert [line.split()[1] for line in out.splitlines() if line.startswith("  target ")] == list(PLATFORMS)


def test_one_target_from_the_command_line_makes_one_manifest(images: Images, tmp_path: Path) -> None:
    config = project(tmp_path / "p", images)
    out = tmp_path / "out"
    made = create(f"oci:{out}:v1", config, "--target", "linux/arm64")
    assert [m["platform"] for m in made["manifests"]] == ["linux/arm64"]
    top = json.loads((out / "index.json").read_text())["manifests"][0]
    assert (
        top["mediaType"] == "application/vnd.oci.image.manifest.v1+json" and top["digest"] == made["digest"]
    )
    seen = _inspect(f"oci:{out}:v1", tmp_path)
    assert seen["Architecture"] == "arm64" and images.lifecycle_layers["linux/arm64"] in seen["Layers"]


def test_a_lifecycle_version_downloads_each_architecture(
    images: Images, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    version = "0.20.5"
    for platform, suffix in SUFFIXES.items():
        archive = make_lifecycle(
            tmp_path / f"{suffix}.tgz", desc=descriptor(version), binary=f"#!/bin/sh\n# {platform}\n".encode()
        ).read_bytes()
        path = f"/mirror/v{version}/lifecycle-v{version}+{suffix}.tgz"
        https_server.add(path, archive)
        https_server.add(path + ".sha256", f"{hashlib.sha256(archive).hexdigest()}  x\n".encode())
    config = project(tmp_path / "p", images, lifecycle=f'version = "{version}"')
    out = tmp_path / "out"
    mirror = ("--lifecycle-mirror", https_server.url("/mirror"), "--ca-cert", str(ca_bundle))
    create(f"oci:{out}:v1", config, *mirror)
    fetched = {p for p in https_server.paths() if p.endswith(".tgz")}
    assert fetched == {f"/mirror/v{version}/lifecycle-v{version}+{s}.tgz" for s in SUFFIXES.values()}
    for platform in PLATFORMS:
        saved = tmp_path / f"{platform.replace('/', '-')}.tar"
        code, _, err = in_process("resolve", f"oci:{out}:v1", "--platform", platform, "--save", str(saved))
        assert code == 0, err
        with tarfile.open(saved) as tar:
            member = tar.extractfile("cnb/lifecycle/lifecycle")
            assert member is not None and f"# {platform}".encode() in member.read()


def test_one_lifecycle_archive_for_two_architectures_is_warned_about(images: Images, tmp_path: Path) -> None:
    config = project(tmp_path / "p", images, lifecycle='uri = "lifecycle.tgz"')
    make_lifecycle(config.parent / "lifecycle.tgz")
    code, _, err = in_process("builder", "create", f"oci:{tmp_path / 'out'}:v1", "--config", str(config))
    assert code == 0, err
    assert "is one archive for linux/amd64, linux/arm64" in err and err.count("one archive") == 1


def test_a_signal_stops_both_lifecycle_downloads_and_leaves_nothing(
    images: Images, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    version = "0.20.6"
    for suffix in SUFFIXES.values():
        path = f"/mirror/v{version}/lifecycle-v{version}+{suffix}.tgz"
        https_server.add(path, big_lifecycle(tmp_path / f"{suffix}.tgz", 2 * 1024 * 1024).read_bytes())
        https_server.slow(path, 0.5)  # a minute each: both downloads are under way at the signal
    config = project(tmp_path / "p", images, lifecycle=f'version = "{version}"')
    args = ["builder", "create", f"oci:{tmp_path / 'out'}:v1", "--config", str(config), "-q"]
    mirror = ["--lifecycle-mirror", https_server.url("/mirror"), "--ca-cert", str(ca_bundle)]
    proc = subprocess.Popen([*CLI, *args, *mirror], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def both_under_way() -> bool:
        return len([p for p in (cache_dir / "tmp").glob("*.part") if p.stat().st_size > 0]) == 2

    stop_with(proc, signal.SIGTERM, lambda: wait_for(both_under_way, "both archives downloading"))
    # The images read before are cached; nothing half-written is left.
    assert [name for name in leftovers(cache_dir) if name.startswith("tmp/")] == []
    assert not (tmp_path / "out").exists()


def test_a_target_the_build_image_lacks_is_refused(images: Images, tmp_path: Path) -> None:
    config = project(tmp_path / "p", images)
    out = tmp_path / "out"
    error = refused(f"oci:{out}:v1", config, "--target", "linux/amd64", "--target", "linux/s390x")
    assert "build image" in error and "has no linux/s390x (target linux/s390x)" in error
    assert "it has linux/amd64, linux/arm64" in error
    assert not out.exists()


def test_a_single_arch_lifecycle_image_for_two_targets_is_refused(images: Images, tmp_path: Path) -> None:
    config = project(tmp_path / "p", images, lifecycle=f'uri = "docker://{images.amd64_lifecycle}"')
    out = tmp_path / "out"
    error = refused(f"oci:{out}:v1", config)
    assert "lifecycle" in error and "is linux/amd64 only, not linux/arm64 (target linux/arm64)" in error
    assert not out.exists()


def test_a_run_image_without_a_target_is_refused(images: Images, tmp_path: Path) -> None:
    config = project(tmp_path / "p", images, run=images.amd64_run)
    out = tmp_path / "out"
    error = refused(f"oci:{out}:v1", config)
    assert f"run image {images.amd64_run}" in error
    assert "is linux/amd64 only, not linux/arm64 (target linux/arm64)" in error
    assert not out.exists()
    # One it cannot read is a warning (pack's words), not a failure.
    missing = f"{images.registry.host}/{images.registry.unique_repo('none')}:v1"
    config = project(tmp_path / "q", images, run=missing)
    code, _, err = in_process("builder", "create", f"oci:{out}:v1", "--config", str(config))
    assert code == 0, err
    assert f"run image '{missing}' is not accessible for linux/amd64" in err
    assert err.count("is not accessible") == 1  # not asked again for the second target
    # [stack] id must be the run image's stack too.
    config = project(tmp_path / "r", images, extra=TARGETS + '[stack]\nid = "io.other.stack"\n')
    error = refused(f"oci:{out}:v1", config)
    assert "stack 'io.other.stack' from builder config is incompatible with stack '' from run image" in error


def test_a_buildpack_without_the_target_is_refused(images: Images, tmp_path: Path) -> None:
    config = project(tmp_path / "p", images)
    toml = config.parent / "bp" / "buildpack.toml"
    # [[stacks]] as well: pack checks the targets all the same (the stacks only without them).
    toml.write_text(toml.read_text() + '[[stacks]]\nid = "*"\n[[targets]]\nos = "linux"\narch = "amd64"\n')
    out = tmp_path / "out"
    error = refused(f"oci:{out}:v1", config)
    assert "buildpack 'test/one@1.0.0' does not support target linux/arm64" in error
    assert '"arch":"amd64"' in error
    assert not out.exists()
    # The one target it supports is fine; the refused run had compressed nothing for it.
    made = create(f"oci:{out}:v1", config, "--target", "linux/amd64")
    assert [m["platform"] for m in made["manifests"]] == ["linux/amd64"]
    assert not any(record["reused"] for record in _shared(made["layers"]).values())


def test_a_windows_buildpack_on_a_linux_build_image_is_refused(images: Images, tmp_path: Path) -> None:
    config = project(tmp_path / "p", images, extra="")
    bin_dir = config.parent / "bp" / "bin"
    (bin_dir / "build").rename(bin_dir / "build.bat")
    out = tmp_path / "out"
    error = refused(f"oci:{out}:v1", config, "--platform", "linux/amd64")
    assert "buildpack 'test/one@1.0.0' does not support target linux/amd64" in error
    assert "inferred from its bin/ files: windows" in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--target", "linux"), "give the OS and the architecture"),
        (("--target", "linux/arm64:@22.04"), "has versions but no name"),
        (("--target", "linux/arm64", "--platform", "linux/arm64"), "cannot be used together"),
    ],
)
def test_a_bad_target_is_a_usage_error(
    images: Images, tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    config = project(tmp_path / "p", images)
    error = refused(f"oci:{tmp_path / 'out'}:v1", config, *args, code=2)
    assert said in error
    if "together" not in said:
        assert "[os][/arch][/variant][:distro@version" in error
    assert not (tmp_path / "out").exists()


def test_without_targets_a_single_image_of_another_platform_is_used_as_it_is(
    images: Images, tmp_path: Path
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    buildpack(root / "bp")
    arm = push_spec(
        build_spec("linux/arm64"), images.registry, images.registry.unique_repo("arm"), "v1", tmp_path
    )
    config = builder_toml(
        root / "builder.toml", lifecycle=f'uri = "docker://{images.lifecycle}"', image=f"docker://{arm}"
    )
    made = create(f"oci:{tmp_path / 'out'}:v1", config)
    assert [m["platform"] for m in made["manifests"]] == ["linux/arm64"]
    # The lifecycle followed the build image: the arm64 entry of the lifecycle index.
    assert images.lifecycle_layers["linux/arm64"] in [r["digest"] for r in made["layers"]]


def test_two_targets_pushed_make_an_index_tag_and_a_shared_layer_goes_once(
    images: Images, tmp_path: Path
) -> None:
    registry = images.registry
    config = project(tmp_path / "p", images)
    repo = registry.unique_repo("multi")
    mark = registry.mark()
    made = create(f"docker://{registry.host}/{repo}:v1", config)
    log = registry.log_requests(since=mark)
    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{repo}:v1", workdir=tmp_path
    )
    index = json.loads(raw.stdout)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]] == list(
        PLATFORMS
    )
    assert "sha256:" + hashlib.sha256(raw.stdout.encode()).hexdigest() == made["digest"]
    # The architecture-independent buildpack layer: one blob, uploaded once.
    shared = _shared(made["manifests"][0]["layers"])["buildpack test/one@1.0.0"]["digest"]
    uploads = [e for e in log if e.method == "PUT" and "/blobs/uploads/" in e.path]
    assert sum(shared.replace(":", "%3A") in e.query or shared in e.query for e in uploads) == 1
    # The tag is written last: after every manifest.
    puts = [e.path for e in log if e.method == "PUT" and "/manifests/" in e.path]
    assert puts[-1].endswith("/manifests/v1") and len(puts) == 3


def test_two_targets_into_dockerd_load_the_daemons_platform(
    images: Images, docker_host: Dockerd, tmp_path: Path
) -> None:
    config = project(tmp_path / "p", images)
    name = "cnbkit-test/multi-arch-builder:v1"
    made = create(f"docker-daemon:{name}", config)
    arch = docker_host.cli("version", "--format", "{{.Server.Arch}}").stdout.strip()
    info = json.loads(docker_host.cli("inspect", name).stdout)[0]
    assert info["Architecture"] == arch and info["Os"] == "linux"
    loaded = next(m for m in made["manifests"] if m["platform"] == f"linux/{arch}")
    assert info["RootFS"]["Layers"] == [layer["diff_id"] for layer in loaded["layers"]]


def test_a_buildpack_for_another_distribution_is_refused_and_the_api_takes_targets(tmp_path: Path) -> None:
    root = builder_project(tmp_path / "p", with_build_image=False)
    labels = {"io.buildpacks.base.distro.name": "ubuntu", "io.buildpacks.base.distro.version": "24.04"}
    build_image(root / "build", labels=labels)
    toml = root / "bp" / "buildpack.toml"
    toml.write_text(
        toml.read_text()
        + '[[targets]]\nos = "linux"\n[[targets.distros]]\nname = "ubuntu"\nversion = "22.04"\n'
    )
    out = tmp_path / "out"
    with pytest.raises(cnbkit.BuilderError) as caught:
        cnbkit.create_builder(root / "builder.toml", f"oci:{out}:v1", targets=["linux/amd64:ubuntu@24.04"])
    assert "does not support target linux/amd64, distribution ubuntu@24.04" in str(caught.value)
    assert not out.exists()
    toml.write_text(toml.read_text().replace('"22.04"', '"24.04"'))
    made = cnbkit.create_builder(root / "builder.toml", f"oci:{out}:v1", targets=["linux/amd64:ubuntu@24.04"])
    assert [m["platform"] for m in made.manifests] == ["linux/amd64"] and made.digest == made.image.digest


def test_a_file_target_without_an_architecture_is_refused_naming_its_line(tmp_path: Path) -> None:
    root = builder_project(tmp_path / "p")
    config = root / "builder.toml"
    config.write_text(config.read_text() + '\n[[targets]]\nos = "linux"\n')
    line = config.read_text().splitlines().index("[[targets]]") + 1
    out = tmp_path / "out"
    error = refused(f"oci:{out}:v1", config)
    assert f"builder.toml: targets (line {line}): a target needs os and arch" in error
    assert not out.exists()
    # --platform replaces the file's targets: one builder for it.
    made = create(f"oci:{out}:v1", config, "--platform", "linux/amd64")
    assert [m["platform"] for m in made["manifests"]] == ["linux/amd64"]


def package_for(platform: str, targets: list[dict[str, str]] | None = None) -> ImageSpec:
    """A one-buildpack package (test/pkg@2.0.0) for ``platform``, its layer marked with it."""
    entries = [
        *package_entries("test/pkg", "2.0.0"),
        Entry("cnb/buildpacks/test_pkg/2.0.0/for", platform.encode()),
    ]
    entry: dict[str, Any] = {"api": "0.10", "layerDiffID": gzip_layer(entries)[1]}
    if targets is not None:
        entry["targets"] = targets
    labels = {
        "io.buildpacks.buildpackage.metadata": json.dumps({"id": "test/pkg", "version": "2.0.0"}),
        "io.buildpacks.buildpack.layers": json.dumps({"test/pkg": {"2.0.0": entry}}),
    }
    return ImageSpec([entries], platform=platform, labels=labels)


def package_project(root: Path, images: Images, package: str) -> Path:
    """Two targets, and a buildpackage image besides the local buildpack."""
    config = project(root, images)
    text = config.read_text().replace(
        'uri = "bp"', f'uri = "bp"\n\n[[buildpacks]]\nuri = "docker://{package}"'
    )
    config.write_text(text)
    return config


def _package_layer(layers: list[dict[str, Any]], package: str) -> str:
    """The digest of the one layer from ``package`` (referenced as stored)."""
    found = [r["digest"] for r in layers if r["source"].endswith(f" of {package}")]
    assert len(found) == 1, [r["source"] for r in layers]
    return str(found[0])


def test_each_target_takes_its_platform_of_a_buildpackage_index(images: Images, tmp_path: Path) -> None:
    registry = images.registry
    package = push_index(
        [package_for(p) for p in PLATFORMS], registry, registry.unique_repo("pkg"), "v1", tmp_path
    )
    config = package_project(tmp_path / "p", images, package)
    made = create(f"oci:{tmp_path / 'out'}:v1", config)
    layers = {m["platform"]: _package_layer(m["layers"], package) for m in made["manifests"]}
    for platform in PLATFORMS:
        arch = platform.split("/")[1]
        seen = _inspect(f"docker://{package}", tmp_path, arch)
        assert layers[platform] == seen["Layers"][0], platform
    assert layers["linux/amd64"] != layers["linux/arm64"]


def test_a_single_image_buildpackage_serves_both_targets_unless_its_targets_say_not(
    images: Images, tmp_path: Path
) -> None:
    registry = images.registry
    package = push_spec(package_for("linux/amd64"), registry, registry.unique_repo("pkg"), "v1", tmp_path)
    config = package_project(tmp_path / "p", images, package)
    code, out, err = in_process(
        "builder", "create", f"oci:{tmp_path / 'out'}:v1", "--config", str(config), "--json"
    )
    assert code == 0, err
    assert f"package docker://{package} is linux/amd64 only; used for linux/arm64 too" in err
    made = json.loads(out)
    assert len({_package_layer(m["layers"], package) for m in made["manifests"]}) == 1
    # Its label names amd64 only: the arm64 target is refused (pack's EnsureTargetSupport).
    amd64 = [{"os": "linux", "arch": "amd64"}]
    package = push_spec(
        package_for("linux/amd64", amd64), registry, registry.unique_repo("pkg"), "v1", tmp_path
    )
    config = package_project(tmp_path / "q", images, package)
    error = refused(f"oci:{tmp_path / 'out2'}:v1", config)
    assert "buildpack 'test/pkg@2.0.0' does not support target linux/arm64" in error
    assert not (tmp_path / "out2").exists()
