"""Issue 22, items 3 and 4: the built-in ``docker-archive:`` and ``oci-archive:`` image sources
and export targets. A lifecycle and a build image come out of skopeo-made archives; the builder
written to an archive is read back by ``skopeo inspect``, by umoci (through ``skopeo copy``)
and, for ``docker-archive:``, by ``docker load``, also streamed through ``/dev/stdout``."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.builder_support import build_image, builder_toml, buildpack
from tests.conftest import CLI, one_line_error, run_cli
from tests.docker_images import lifecycle_spec
from tests.images import write_image
from tests.services.dockerd import Dockerd
from tests.services.proc import require_tool, service_env
from tests.services.skopeo import skopeo
from tests.test_builder_hostile_modules import package_layout

REFS = {
    "docker-archive": ("acme/lifecycle:1", "acme/build:1", "acme/builder:1"),
    "oci-archive": ("lc", "b", "v1"),
}


def _project(root: Path, scheme: str) -> Path:
    """builder.toml whose lifecycle and build image are skopeo-made ``scheme`` archives."""
    root.mkdir()
    lc_ref, build_ref, _ = REFS[scheme]
    write_image(root / "lc-layout", lifecycle_spec())
    build_image(root / "build-layout")
    skopeo("copy", f"oci:{root / 'lc-layout'}:latest", f"{scheme}:{root / 'lc.tar'}:{lc_ref}", workdir=root)
    skopeo(
        "copy",
        f"oci:{root / 'build-layout'}:latest",
        f"{scheme}:{root / 'build.tar'}:{build_ref}",
        workdir=root,
    )
    buildpack(root / "bp")
    builder_toml(
        root / "builder.toml",
        lifecycle=f'uri = "{scheme}:lc.tar:{lc_ref}"',
        image=f"{scheme}:build.tar:{build_ref}",
    )
    return root / "builder.toml"


def _unpacked(source: str, work: Path) -> Path:
    """``skopeo copy SOURCE oci:`` then ``umoci unpack``: the builder's root filesystem."""
    skopeo("copy", source, f"oci:{work / 'copy'}:t", workdir=work)
    umoci = require_tool("umoci", "umoci")
    subprocess.run([umoci, "unpack", "--image", f"{work / 'copy'}:t", str(work / "bundle")], check=True)
    return work / "bundle" / "rootfs"


@pytest.mark.parametrize("scheme", sorted(REFS))
def test_a_builder_from_archives_to_an_archive(scheme: str, tmp_path: Path) -> None:
    config = _project(tmp_path / "project", scheme)
    out_ref = REFS[scheme][2]
    result = run_cli(
        "builder", "create", f"{scheme}:{tmp_path / 'out.tar'}:{out_ref}", "--config", str(config), "--json"
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["written"].startswith(f"{scheme}:{tmp_path / 'out.tar'}")
    lifecycle = created["layers"][2]["source"]  # the lifecycle image's one layer, as stored
    assert (
        lifecycle.startswith("layer sha256:")
        and f"of {scheme}:{tmp_path / 'project' / 'lc.tar'}" in lifecycle
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temp file left
    info = json.loads(
        skopeo("inspect", f"{scheme}:{tmp_path / 'out.tar'}:{out_ref}", workdir=tmp_path).stdout
    )
    metadata = json.loads(info["Labels"]["io.buildpacks.builder.metadata"])
    assert metadata["lifecycle"]["version"] == "0.21.0"
    assert metadata["buildpacks"][0]["id"] == "test/one"
    rootfs = _unpacked(f"{scheme}:{tmp_path / 'out.tar'}:{out_ref}", tmp_path)
    assert (rootfs / "cnb" / "lifecycle" / "lifecycle").is_file()
    assert (rootfs / "cnb" / "buildpacks" / "test_one" / "1.0.0" / "bin" / "build").is_file()
    assert (rootfs / "etc" / "passwd").is_file()  # the build image's own layer


def test_docker_loads_what_cnbkit_wrote(dockerd: Dockerd, tmp_path: Path) -> None:
    config = _project(tmp_path / "project", "docker-archive")
    target = tmp_path / "builder.tar"
    result = run_cli("builder", "create", f"docker-archive:{target}:acme/loaded:1", "--config", str(config))
    assert result.returncode == 0, result.stderr
    dockerd.cli("load", "-i", str(target))
    labels = json.loads(
        dockerd.cli("image", "inspect", "acme/loaded:1", "--format", "{{json .Config.Labels}}").stdout
    )
    assert "io.buildpacks.builder.metadata" in labels


def test_builder_create_to_stdout_streams_into_docker_load(dockerd: Dockerd, tmp_path: Path) -> None:
    config = _project(tmp_path / "project", "docker-archive")
    docker = require_tool("docker", "docker.io")
    env = service_env({"DOCKER_HOST": dockerd.host, "DOCKER_CONFIG": str(dockerd.config_dir)})
    create = subprocess.Popen(
        [*CLI, "builder", "create", "docker-archive:/dev/stdout:acme/piped:1", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert create.stdout is not None
    load = subprocess.run(
        [docker, "load"], stdin=create.stdout, capture_output=True, text=True, env=env, timeout=120
    )
    create.stdout.close()
    err = create.communicate(timeout=120)[1].decode()
    assert create.returncode == 0, err
    assert "Created builder docker-archive:/dev/stdout:acme/piped:1" in err  # the report went to stderr
    assert load.returncode == 0 and "acme/piped:1" in load.stdout, load.stderr
    dockerd.cli("image", "inspect", "acme/piped:1")


@pytest.mark.parametrize("scheme", sorted(REFS))
def test_a_broken_archive_is_one_line_naming_it(scheme: str, tmp_path: Path) -> None:
    config = _project(tmp_path / "project", scheme)
    (tmp_path / "project" / "build.tar").write_bytes(b"not a tar archive" * 40)
    line = one_line_error(run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(config)))
    assert f"{scheme}:build.tar" in line, line
    assert not (tmp_path / "out").exists()


def test_an_archive_into_a_missing_directory_leaves_nothing(tmp_path: Path) -> None:
    config = _project(tmp_path / "project", "docker-archive")
    target = tmp_path / "no-such-dir" / "b.tar"
    line = one_line_error(run_cli("builder", "create", f"docker-archive:{target}:x", "--config", str(config)))
    assert "does not exist" in line, line
    assert not (tmp_path / "no-such-dir").exists()
    assert shutil.which("skopeo")


def test_a_buildpackage_from_an_archive(tmp_path: Path) -> None:
    config = _project(tmp_path / "project", "oci-archive")
    root = tmp_path / "project"
    package_layout(root / "pkg-layout")
    skopeo("copy", f"oci:{root / 'pkg-layout'}:v1", f"oci-archive:{root / 'pkg.tar'}:pkg", workdir=root)
    builder_toml(
        config,
        lifecycle='uri = "oci-archive:lc.tar:lc"',
        image="oci-archive:build.tar:b",
        buildpacks=("oci-archive:pkg.tar:pkg",),
        order=("test/pkg",),
    )
    result = run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    sources = [layer["source"] for layer in json.loads(result.stdout)["layers"]]
    assert any("oci-archive:" in s and "pkg.tar" in s for s in sources), sources


def _save_tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_hostile_docker_archives_are_refused_in_one_line(tmp_path: Path) -> None:
    config = _project(tmp_path / "project", "docker-archive")
    root = tmp_path / "project"
    listed = b'[{"Config": "c.json", "RepoTags": ["acme/build:1"], "Layers": ["../x/layer.tar"]}]'
    config_json = b'{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}'
    cases = {
        "missing layer": ({"manifest.json": listed, "c.json": config_json}, "which it lacks"),
        "deep manifest.json": ({"manifest.json": b"[" * 100 + b"]" * 100}, "nest"),
        "no manifest.json": ({"c.json": b"{}"}, "no manifest.json"),
    }  # fmt: skip
    for case, (files, expected) in cases.items():
        _save_tar(root / "build.tar", files)
        line = one_line_error(
            run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(config))
        )
        assert "docker-archive:build.tar" in line and expected in line, (case, line)
    (root / "build.tar").unlink()
    os.mkfifo(root / "build.tar")  # nobody writes it: reading would block forever
    line = one_line_error(
        run_cli("builder", "create", f"oci:{tmp_path / 'out'}:t", "--config", str(config), timeout=60)
    )
    assert "not a regular file" in line, line
    assert not (tmp_path / "out").exists()
