"""Builders pushed to a registry (``docker://REF``) and loaded into dockerd (``docker-daemon:REF``),
with lifecycles from the registry and the daemon: counted in the registry's own access log and
read back by skopeo and ``docker inspect``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cnbkit
import pytest
from cnbkit.cli import main
from cnbkit.transport.registry import RegistryClient, parse_reference
from cnbkit.transport.registry.push_image import push_image

from tests.builder_support import (
    EXAMPLES,
    build_image,
    builder_toml,
    buildpack,
    package_entries,
    package_spec,
)
from tests.conftest import run_cli
from tests.docker_images import lifecycle_spec, push_spec, to_daemon
from tests.images import gzip_layer, write_image
from tests.lifecycles import make_lifecycle
from tests.services.dockerd import Dockerd
from tests.services.registry import AccessLogEntry, Registry
from tests.services.skopeo import copy, skopeo
from tests.test_https import _run_with_pty_stderr

USER = "1000:1001"


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def create(target: str, config: Path, *extra: str) -> dict[str, Any]:
    code, out, err = cli("builder", "create", target, "--config", str(config), "--json", *extra)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


@dataclass
class Pushed:
    """A build image and a lifecycle image in the loopback registry, and a project using them."""

    registry: Registry
    build_repo: str
    lifecycle_repo: str
    build_layers: list[str]
    lifecycle_layers: list[str]
    project: Path


def _layer_digests(registry: Registry, ref: str, work: Path) -> list[str]:
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}", workdir=work).stdout)
    return list(info["Layers"])


@pytest.fixture(scope="module")
def pushed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    """Shared by the module: images pushed once (skopeo), a builder.toml naming them."""
    work = tmp_path_factory.mktemp("push")
    build_repo, lifecycle_repo = registry.unique_repo("build"), registry.unique_repo("lifecycle")
    build_image(work / "build", user=USER, tag="v1")
    build_ref = copy(f"oci:{work / 'build'}:v1", registry, build_repo, "v1", workdir=work)
    lifecycle_ref = push_spec(lifecycle_spec(), registry, lifecycle_repo, "v1", work)
    project = work / "project"
    project.mkdir()
    buildpack(project / "bp")
    # A pack user's bare image name for the build image; the lifecycle as a docker:// image.
    builder_toml(project / "builder.toml", lifecycle=f'uri = "docker://{lifecycle_ref}"', image=build_ref)
    return Pushed(
        registry,
        build_repo,
        lifecycle_repo,
        _layer_digests(registry, build_ref, work),
        _layer_digests(registry, lifecycle_ref, work),
        project,
    )


def _check_unpacked(layout: Path, bundle: Path) -> None:
    """``umoci unpack`` of ``layout:v1`` shows the lifecycle's phases, its descriptor, the
    buildpack and the order, with the owners and modes of DESIGN.md section 6."""
    umoci = shutil.which("umoci")
    assert umoci, "umoci is needed (CI installs it)"
    subprocess.run([umoci, "unpack", "--image", f"{layout}:v1", str(bundle)], check=True, capture_output=True)
    rootfs = bundle / "rootfs"
    for phase in ("analyzer", "builder", "detector", "exporter", "launcher", "restorer"):
        assert (rootfs / "cnb" / "lifecycle" / phase).exists(), phase
    assert (rootfs / "cnb" / "lifecycle.toml").is_file()
    detect = rootfs / "cnb" / "buildpacks" / "test_one" / "1.0.0" / "bin" / "detect"
    assert detect.stat().st_mode & 0o777 == 0o755 and detect.stat().st_uid == 0
    assert 'id = "test/one"' in (rootfs / "cnb" / "order.toml").read_text()
    assert (rootfs / "layers").stat().st_uid == 1000 and (rootfs / "layers").stat().st_gid == 1001
    assert int((rootfs / "cnb" / "order.toml").stat().st_mtime) == 315532801


def _uploads(entries: list[AccessLogEntry]) -> list[str]:
    """The digests of the blob uploads completed (the closing ``PUT ...?digest=``)."""
    found = []
    for entry in entries:
        if entry.method == "PUT" and "/blobs/uploads/" in entry.path:
            match = re.search(r"digest=(sha256(?::|%3A)[a-f0-9]{64})", entry.query)
            assert match, entry
            found.append(match.group(1).replace("%3A", ":"))
    return found


def _mounts(entries: list[AccessLogEntry]) -> list[str]:
    return [
        re.sub("%3A", ":", re.search(r"mount=([^&]+)", e.query).group(1))  # type: ignore[union-attr]
        for e in entries
        if e.method == "POST" and "mount=" in e.query and e.status == 201
    ]


def test_a_push_mounts_what_the_registry_has_and_twice_is_the_same_digest(
    pushed: Pushed, tmp_path: Path
) -> None:
    registry = pushed.registry
    target_repo = registry.unique_repo("builder")
    target = f"docker://{registry.host}/{target_repo}:v1"
    config = pushed.project / "builder.toml"
    mark = registry.mark()
    first = create(target, config, "--pull-policy", "always")
    log = registry.log_requests(since=mark)

    lifecycle_layer = pushed.lifecycle_layers[-1]
    # The lifecycle image's lone lifecycle layer is the builder's, as stored (item 3: registry):
    # base layers, the directories layer, then the lifecycle.
    assert first["layers"][len(pushed.build_layers) + 1]["digest"] == lifecycle_layer
    new = {layer["digest"] for layer in first["layers"]} - {lifecycle_layer, *pushed.build_layers}
    uploaded = _uploads(log)
    # No base layer and no lifecycle layer was sent: they were mounted from their repositories.
    config_digest = layer_config_digest(registry, target_repo, first["digest"], tmp_path)
    assert set(uploaded) - new == {config_digest}
    assert not set(uploaded) & {lifecycle_layer, *pushed.build_layers}
    assert set(_mounts(log)) == {lifecycle_layer, *pushed.build_layers}
    # The base layers were never downloaded to be uploaded again (only the lifecycle's were
    # read, to find and check the lifecycle in them).
    fetched = {e.path.rpartition("/")[2] for e in log if e.method == "GET" and "/blobs/sha256:" in e.path}
    assert not fetched & set(pushed.build_layers)
    # The manifest came last.
    assert [e.method for e in log if "/manifests/" in e.path and target_repo in e.path][-1] == "PUT"
    assert log.index(next(e for e in log if e.method == "PUT" and "/manifests/" in e.path)) > max(
        i for i, e in enumerate(log) if "/blobs/uploads/" in e.path
    )

    # Read back by skopeo: the digest and the labels.
    info = json.loads(skopeo("inspect", "--tls-verify=false", target, workdir=tmp_path).stdout)
    assert info["Digest"] == first["digest"]
    metadata = json.loads(info["Labels"]["io.buildpacks.builder.metadata"])
    assert metadata["lifecycle"]["version"] == "0.21.0"
    assert (
        metadata["lifecycle"]["apis"]["buildpack"]["supported"] and metadata["lifecycle"]["apis"]["platform"]
    )
    assert info["Labels"]["a.label"] == "kept"

    # Twice: the same digest in the registry and in a layout; nothing uploaded, nothing mounted.
    mark = registry.mark()
    again = create(target, config, "--pull-policy", "always")
    log = registry.log_requests(since=mark)
    assert again["digest"] == first["digest"]
    assert _uploads(log) == [] and _mounts(log) == []
    assert not [e for e in log if e.method == "PATCH"]
    # To a new repository: what this machine pushed before is mounted from where it went.
    mark = registry.mark()
    other = create(
        f"docker://{registry.host}/{registry.unique_repo('builder')}:v1", config, "--pull-policy", "always"
    )
    log = registry.log_requests(since=mark)
    assert other["digest"] == first["digest"] and _uploads(log) == []
    assert set(_mounts(log)) == {layer["digest"] for layer in first["layers"]} | {config_digest}
    layout = create(f"oci:{tmp_path / 'out'}:v1", config, "--pull-policy", "always")
    assert layout["digest"] == first["digest"]
    _check_unpacked(tmp_path / "out", tmp_path / "bundle")


def test_every_tag_names_the_one_digest_and_blobs_go_once(pushed: Pushed, tmp_path: Path) -> None:
    registry = pushed.registry
    repo, other = registry.unique_repo("builder"), registry.unique_repo("builder")
    target = f"docker://{registry.host}/{repo}:v1"
    tags = [f"{registry.host}/{repo}:v2", f"{registry.host}/{other}:latest"]
    mark = registry.mark()
    result = create(target, pushed.project / "builder.toml", "--tag", tags[0], "--tag", tags[1])
    log = registry.log_requests(since=mark)
    for ref in (target, *(f"docker://{tag}" for tag in tags)):
        info = json.loads(skopeo("inspect", "--tls-verify=false", ref, workdir=tmp_path).stdout)
        assert info["Digest"] == result["digest"], ref
    # Each blob is uploaded at most once (the other names find it there, or mount it).
    uploaded = [e.query for e in log if e.method == "PUT" and "/blobs/uploads/" in e.path]
    assert uploaded and len(uploaded) == len(set(uploaded)), uploaded  # the query names the digest
    manifests = {e.path for e in log if e.method == "PUT" and "/manifests/" in e.path}
    assert manifests == {
        f"/v2/{repo}/manifests/v1",
        f"/v2/{repo}/manifests/v2",
        f"/v2/{other}/manifests/latest",
    }


def layer_config_digest(registry: Registry, repo: str, digest: str, work: Path) -> str:
    """The config digest of the manifest ``digest`` in ``repo``."""
    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{repo}@{digest}", workdir=work
    )
    return str(json.loads(raw.stdout)["config"]["digest"])


def test_large_blobs_go_in_chunks_and_a_failed_push_leaves_no_tag(pushed: Pushed, tmp_path: Path) -> None:
    registry = pushed.registry
    result = cnbkit.create_builder(
        pushed.project / "builder.toml", f"oci:{tmp_path / 'out'}:v1", pull_policy="always", quiet=True
    )
    client = RegistryClient()
    repo = registry.unique_repo("chunked")
    mark = registry.mark()
    pushed_result = push_image(
        client,
        result.image,
        parse_reference(f"{registry.host}/{repo}:v1"),
        monolithic_max=300,
        chunk_size=256,
    )
    log = registry.log_requests(since=mark)
    assert pushed_result.digest == result.digest
    big = [r.digest for r in result.image.records if r.size > 300 and r.digest in pushed_result.uploaded]
    assert big, "some blob must be over the threshold"
    patches = [e for e in log if e.method == "PATCH"]
    assert len(patches) >= sum(-(-r.size // 256) for r in result.image.records if r.digest in big)
    assert client.head_manifest(parse_reference(f"{registry.host}/{repo}:v1"))[0] == result.digest

    # A blob that fails half way: no manifest PUT, the tag does not exist.
    broken = registry.unique_repo("broken")
    new_layers = result.image._new  # the test damages one cached layer on purpose
    victim = next(r for r in result.image.records if r.digest in new_layers and r.size > 100)
    Path(new_layers[victim.digest].path).write_bytes(b"not the layer")
    mark = registry.mark()
    with pytest.raises(cnbkit.CnbkitError):
        push_image(client, result.image, parse_reference(f"{registry.host}/{broken}:v1"))
    assert registry.count("PUT", rf"/v2/{broken}/manifests/.*", since=mark) == 0


def test_a_builder_loads_into_dockerd_with_a_lifecycle_from_the_daemon(
    docker_host: Dockerd, tmp_path: Path
) -> None:
    """Lifecycle from the daemon (its layer passed through), builder loaded as a streamed save."""
    lifecycle_name = "cnbkit-test/push-lifecycle:v1"
    to_daemon(lifecycle_spec(), docker_host, lifecycle_name, tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    buildpack(project / "bp")
    build_image(project / "build", user=USER)
    config = builder_toml(project / "builder.toml", lifecycle=f'uri = "docker://{lifecycle_name}"')
    target = "docker-daemon:cnbkit-test/pushed-builder:v1"
    result = create(target, config, "--pull-policy", "never")
    in_layout = create(f"oci:{tmp_path / 'out'}:v1", config, "--pull-policy", "never")
    _check_unpacked(tmp_path / "out", tmp_path / "bundle")
    inspected = json.loads(skopeo("inspect", f"oci:{tmp_path / 'out'}:v1", workdir=tmp_path).stdout)
    label = json.loads(inspected["Labels"]["io.buildpacks.builder.metadata"])
    assert label["lifecycle"]["version"] == "0.21.0" and label["lifecycle"]["apis"]["buildpack"]["supported"]
    assert in_layout["digest"] == result["digest"]
    lifecycle_info = json.loads(docker_host.cli("inspect", lifecycle_name).stdout)[0]
    # The daemon's layers are uncompressed: the lifecycle layer's digest is its diff ID.
    assert result["layers"][2]["digest"] == lifecycle_info["RootFS"]["Layers"][-1]

    info = json.loads(docker_host.cli("inspect", "cnbkit-test/pushed-builder:v1").stdout)[0]
    assert result["written"] == f"{target} {info['Id']}"
    assert info["Config"]["User"] == USER
    assert "CNB_USER_ID=1000" in info["Config"]["Env"] and "CNB_GROUP_ID=1001" in info["Config"]["Env"]
    assert info["Config"]["WorkingDir"] == "/layers"
    labels = info["Config"]["Labels"]
    assert json.loads(labels["io.buildpacks.builder.metadata"])["lifecycle"]["version"] == "0.21.0"
    assert labels["a.label"] == "kept"
    assert info["RootFS"]["Layers"] == [layer["diff_id"] for layer in result["layers"]]

    # The image works: a container's filesystem has the lifecycle and the order.
    created = docker_host.cli(
        "create", "cnbkit-test/pushed-builder:v1", "/cnb/lifecycle/detector"
    ).stdout.strip()
    try:
        copied = docker_host.cli("cp", f"{created}:/cnb/order.toml", "-").stdout  # a tar of the file
        assert 'id = "test/one"' in copied
    finally:
        docker_host.cli("rm", created)

    # Loading again: the same image ID, the tag still there. The daemon has the image (its ID is
    # the config's digest), so nothing is loaded: it is only tagged, under a new name too.
    since = f"{time.time():.6f}"
    again = create(target, config, "--pull-policy", "never")
    assert again["written"] == result["written"]
    other = create("docker-daemon:cnbkit-test/pushed-builder-too:v2", config, "--pull-policy", "never")
    assert other["written"].split()[1] == info["Id"]
    until = f"{time.time() + 1:.6f}"
    events = docker_host.cli(
        "events", "--since", since, "--until", until, "--filter", "type=image", "--format", "{{.Action}}"
    ).stdout.split()
    assert "tag" in events and "load" not in events, events
    assert (
        json.loads(docker_host.cli("inspect", "cnbkit-test/pushed-builder-too:v2").stdout)[0]["Id"]
        == info["Id"]
    )
    # --tag: more names on the one image (the daemon has it: each is only a tag).
    create(
        target, config, "--pull-policy", "never",
        "--tag", "cnbkit-test/pushed-builder:v3", "--tag", "cnbkit-test/pushed-builder-alt:latest",
    )  # fmt: skip
    for name in (target.partition(":")[2], "cnbkit-test/pushed-builder:v3", "cnbkit-test/pushed-builder-alt"):
        assert json.loads(docker_host.cli("inspect", name).stdout)[0]["Id"] == info["Id"], name


def test_across_registries_base_layers_stream_with_the_pull_credentials(
    pushed: Pushed, registry_token: Registry, docker_config: Any, tmp_path: Path
) -> None:
    """To another registry (token auth, credentials from DOCKER_CONFIG as for pulling): the base
    layers stream from their registry straight into the upload, once each."""
    source = pushed.registry
    repo = registry_token.unique_repo("builder")
    target = f"docker://{registry_token.host}/{repo}:v1"
    config = pushed.project / "builder.toml"

    # In a subprocess: the in-process token server's own tracebacks would mix into stderr here.
    failed = run_cli("builder", "create", target, "--config", str(config), "--pull-policy", "always")
    code, err = failed.returncode, failed.stderr
    assert code == 1 and len(err.strip().splitlines()) == 1 and registry_token.password not in err
    assert registry_token.host in err and "401" in err and "DOCKER_CONFIG" in err, err
    assert registry_token.count("PUT", rf"/v2/{repo}/manifests/.*") == 0

    docker_config.write_auths({registry_token.host: (registry_token.username, registry_token.password)})
    source_mark, mark = source.mark(), registry_token.mark()
    result = create(target, config, "--pull-policy", "always")
    uploaded = _uploads(registry_token.log_requests(since=mark))
    assert set(pushed.build_layers) <= set(uploaded)  # another registry: no mount, streamed
    fetched = [
        e.path.rpartition("/")[2]
        for e in source.log_requests("GET", r"/v2/.*/blobs/sha256:.*", since=source_mark)
        if e.status == 200
    ]
    assert sorted(d for d in fetched if d in pushed.build_layers) == sorted(pushed.build_layers)
    info = json.loads(
        skopeo(
            "inspect", "--tls-verify=false", f"--creds={registry_token.creds}", target, workdir=tmp_path
        ).stdout
    )
    assert info["Digest"] == result["digest"]


def test_compression_and_upload_show_progress_on_a_terminal_only(pushed: Pushed, tmp_path: Path) -> None:
    registry = pushed.registry
    config = str(pushed.project / "builder.toml")
    env = {"CNBKIT_CACHE_DIR": str(tmp_path / "cache")}
    target = f"docker://{registry.host}/{registry.unique_repo('bars')}:v1"
    code, _, terminal = _run_with_pty_stderr(["builder", "create", target, "--config", config], env)
    text = terminal.decode(errors="replace")
    assert code == 0, text
    assert "gzip cnb/order.toml" in text and "push " in text and "B/s" in text
    assert "pushed " in text and "blobs uploaded" in text  # the notice
    piped = run_cli(
        "builder", "create", target, "--config", config, env={**env, "CNBKIT_CACHE_DIR": str(tmp_path / "c2")}
    )
    assert piped.returncode == 0 and "B/s" not in piped.stderr


# -- buildpackage images ---------------------------------------------------------------------


def test_a_buildpackage_image_contributes_its_layers_as_stored(pushed: Pushed, tmp_path: Path) -> None:
    registry = pushed.registry
    package_ref = push_spec(package_spec(), registry, registry.unique_repo("package"), "v1", tmp_path)
    package_layers = _layer_digests(registry, package_ref, tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    buildpack(project / "bp")
    build_ref = f"{registry.host}/{pushed.build_repo}:v1"
    config = builder_toml(
        project / "builder.toml",
        lifecycle=f'uri = "docker://{registry.host}/{pushed.lifecycle_repo}:v1"',
        image=build_ref,
        buildpacks=("bp", f"docker://{package_ref}"),
        order=("test/one", "test/pkg", "test/dep"),
    )
    target_repo = registry.unique_repo("builder-pkg")
    mark = registry.mark()
    result = create(f"docker://{registry.host}/{target_repo}:v1", config, "--pull-policy", "always")
    digests = [layer["digest"] for layer in result["layers"]]
    assert set(package_layers) <= set(digests)
    log = registry.log_requests(since=mark)
    assert set(package_layers) <= set(_mounts(log)) and not set(package_layers) & set(_uploads(log))
    # The package's layers were read once, to check that they stay in their modules' directories.
    # That verdict is remembered by digest: with the layers gone from cnbkit's cache, the next
    # build of the same package fetches none of them (it only mounts them again).
    blobs = Path(os.environ["CNBKIT_CACHE_DIR"]) / "blobs" / "sha256"
    for digest in package_layers:
        (blobs / digest.removeprefix("sha256:")).unlink(missing_ok=True)
    mark = registry.mark()
    create(
        f"docker://{registry.host}/{registry.unique_repo('builder-pkg')}:v1",
        config,
        "--pull-policy",
        "always",
    )
    fetched = {e.path.rpartition("/")[2] for e in registry.log_requests(since=mark) if e.method == "GET"}
    assert not fetched & set(package_layers)

    info = json.loads(
        skopeo(
            "inspect", "--tls-verify=false", f"docker://{registry.host}/{target_repo}:v1", workdir=tmp_path
        ).stdout
    )
    layers_label = json.loads(info["Labels"]["io.buildpacks.buildpack.layers"])
    assert set(layers_label) == {"test/one", "test/pkg", "test/dep"}
    by_digest = {layer["digest"]: layer["diff_id"] for layer in result["layers"]}
    assert layers_label["test/pkg"]["2.0.0"]["layerDiffID"] == by_digest[package_layers[1]]
    metadata = json.loads(info["Labels"]["io.buildpacks.builder.metadata"])
    assert {"id": "test/pkg", "name": "Package", "version": "2.0.0", "homepage": "https://x"} in metadata[
        "buildpacks"
    ]

    # Also from an OCI layout (oci:), the same builder; an image that is no package: one line.
    layout = tmp_path / "pkg-layout"
    write_image(layout, package_spec(), "v1")
    config.write_text(config.read_text().replace(f"docker://{package_ref}", f"oci:{layout}:v1"))
    again = create(f"oci:{tmp_path / 'out'}:v1", config, "--pull-policy", "always")
    assert again["digest"] == result["digest"]
    # A flattened package: both modules in one layer, which the builder then holds once.
    flat_layer = [*package_entries("test/dep", "1.0.0"), *package_entries("test/pkg", "2.0.0")[1:]]
    flat = package_spec()
    flat_diff = gzip_layer(flat_layer)[1]
    modules = json.loads(flat.labels["io.buildpacks.buildpack.layers"])
    for versions in modules.values():
        for entry in versions.values():
            entry["layerDiffID"] = flat_diff
    flat.labels["io.buildpacks.buildpack.layers"] = json.dumps(modules)
    flat.layers = [flat_layer]
    write_image(tmp_path / "flat", flat, "v1")
    config.write_text(config.read_text().replace(f"oci:{layout}:v1", f"oci:{tmp_path / 'flat'}:v1"))
    flattened = create(f"oci:{tmp_path / 'out-flat'}:v1", config, "--pull-policy", "always")
    assert [layer["diff_id"] for layer in flattened["layers"]].count(flat_diff) == 1
    assert len(flattened["layers"]) == len(again["layers"]) - 1
    config.write_text(config.read_text().replace(f"oci:{tmp_path / 'flat'}:v1", f"docker://{build_ref}"))
    code, _, err = cli("builder", "create", f"oci:{tmp_path / 'out2'}:v1", "--config", str(config))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "is not a buildpackage: it has no io.buildpacks.buildpackage.metadata label" in err
    assert not (tmp_path / "out2").exists()


def test_a_load_that_fails_leaves_no_image_and_no_daemon_is_one_line(
    docker_host: Dockerd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    buildpack(project / "bp")
    build_image(project / "build", user=USER)
    make_lifecycle(project / "lifecycle.tgz")
    config = builder_toml(project / "builder.toml", lifecycle='uri = "lifecycle.tgz"')
    made = cnbkit.create_builder(config, f"oci:{tmp_path / 'out'}:v1", quiet=True)
    # Damage one compressed layer in the cache: the stream fails at its end, mid-archive.
    victim = next(r for r in made.image.records if r.source.startswith("buildpack"))
    damaged = made.image._new[victim.digest].path  # the test damages one cached layer on purpose
    data = bytearray(damaged.read_bytes())
    data[-10] ^= 0xFF
    damaged.write_bytes(bytes(data))
    code, _, err = cli("builder", "create", "docker-daemon:cnbkit-test/broken:v1", "--config", str(config))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert victim.digest in err, err  # names the blob that did not match
    assert docker_host.cli("image", "inspect", "cnbkit-test/broken:v1", check=False).returncode != 0

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    code, _, err = cli("builder", "create", "docker-daemon:cnbkit-test/none:v1", "--config", str(config))
    assert code == 1 and err.startswith("error: docker-daemon:cnbkit-test/none:v1: no Docker daemon"), err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("docker://127.0.0.1:9/x:v1", ("--offline",), "--offline forbids pushing to a registry"),
        ("docker://127.0.0.1:9/x@sha256:" + "a" * 64, (), "a push target takes a tag, not a digest"),
        ("docker-daemon:x@sha256:" + "a" * 64, (), "a load target takes a tag, not a digest"),
        ("docker://", (), "no image reference"),
    ],
)
def test_targets_that_cannot_be_written_are_refused_in_one_line(
    target: str, extra: tuple[str, ...], message: str
) -> None:
    config = str(EXAMPLES / "builder.toml")
    code, out, err = cli("builder", "create", target, "--config", config, *extra)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and message in err, err


def test_a_layout_links_cached_blobs_and_refuses_a_damaged_one(pushed: Pushed, tmp_path: Path) -> None:
    """Warm: the layout's blobs are the cache's files (linked after their digest was checked,
    nothing copied); a cache file that no longer matches is not linked, and the export fails."""
    config = pushed.project / "builder.toml"
    create(f"oci:{tmp_path / 'cold'}:v1", config, "--pull-policy", "always")
    result = cnbkit.create_builder(config, f"oci:{tmp_path / 'warm'}:v1", pull_policy="always", quiet=True)
    blobs = tmp_path / "warm" / "blobs" / "sha256"
    for record in result.image.records:
        assert (blobs / record.digest[7:]).stat().st_nlink >= 2, record.source  # shared with the cache
    victim = next(r for r in result.image.records if r.digest in result.image._new and r.size > 100)
    cached = result.image._new[victim.digest].path  # damaged on purpose: replace, never edit in place
    cached.unlink()
    cached.write_bytes(b"x" * victim.size)
    code, _, err = cli("builder", "create", f"oci:{tmp_path / 'third'}:v1", "--config", str(config))
    assert code == 1 and victim.digest in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "third").exists()


def test_a_pushed_builder_pulls_into_dockerd(pushed: Pushed, docker_host: Dockerd, tmp_path: Path) -> None:
    """``docker pull`` of the pushed builder from the loopback registry: labels, User, env."""
    registry = pushed.registry
    target = f"{registry.host}/{registry.unique_repo('pulled')}:v1"
    result = create(f"docker://{target}", pushed.project / "builder.toml", "--pull-policy", "always")
    docker_host.cli("pull", target)
    info = json.loads(docker_host.cli("inspect", target).stdout)[0]
    assert f"{target.rpartition(':')[0]}@{result['digest']}" in info["RepoDigests"]
    assert info["Config"]["User"] == USER and "CNB_USER_ID=1000" in info["Config"]["Env"]
    labels = info["Config"]["Labels"]
    assert json.loads(labels["io.buildpacks.builder.metadata"])["lifecycle"]["version"] == "0.21.0"
    assert "io.buildpacks.buildpack.layers" in labels and labels["a.label"] == "kept"
