"""``cnbkit builder create`` with two targets versus one (``bench_builder.py --targets 2``).

Inputs (made once under benchmarks/work/, pushed to the private registry by skopeo): the ~100 MB
build image as an index of linux/amd64 and linux/arm64 (one base layer, shared), and the
official-shaped lifecycle image of SIZE MB as an index of the same platforms, each with its own
lifecycle layer (the arm64 binaries one byte longer: other bytes, as real ones are), plus a
one-file buildpack. Contenders, paired and rotating, cold cache each, each followed by a warm
run to a fresh layout: ``--target linux/amd64`` and ``--target linux/amd64 --target
linux/arm64``, both to ``oci:DIR:v1``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_docker import _base, _layer, _lifecycle, write_image
from benchmarks.harness import (
    MB,
    WORK_DIR,
    Contender,
    Sample,
    child_env,
    cnbkit_command,
    fresh_dir,
    paired_ratios,
    remove,
    run_paired,
    run_timed,
    summarize,
)
from tests.builder_support import builder_toml, buildpack

__all__ = ["targets_case"]

ARCHES = ("amd64", "arm64")
_INDEX = "application/vnd.oci.image.index.v1+json"
BUILD_MB = 100


def _index_layout(
    path: Path, layers_of: Callable[[Path, str], list[dict[str, Any]]], settings: dict[str, Any]
) -> Path:
    """An OCI layout whose ``v1`` is an index of one image per :data:`ARCHES` (made once)."""
    if (path / "index.json").is_file() and json.loads((path / "index.json").read_text())["manifests"][0][
        "mediaType"
    ] == _INDEX:
        return path
    fresh_dir(path)
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    entries = []
    for arch in ARCHES:
        write_image(path, layers_of(blobs, arch), settings, architecture=arch)
        entry = json.loads((path / "index.json").read_text())["manifests"][0]
        entry.pop("annotations")
        entries.append({**entry, "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": _INDEX, "manifests": entries}).encode()
    digest = hashlib.sha256(index).hexdigest()
    (blobs / digest).write_bytes(index)
    top = {
        "mediaType": _INDEX,
        "digest": f"sha256:{digest}",
        "size": len(index),
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return path


def _build_index(path: Path) -> Path:
    shared: list[dict[str, Any]] = []

    def layers(blobs: Path, _arch: str) -> list[dict[str, Any]]:
        if not shared:
            files = {"etc/passwd": 2000, "usr/lib/libbig.so": BUILD_MB * MB}
            shared.append(_layer(blobs, lambda t: _base(t, files)))
        return shared

    settings = {
        "Env": ["PATH=/usr/bin:/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=1000"],
        "User": "1000:1000",
        "Labels": {"io.buildpacks.stack.id": "bench"},
    }
    return _index_layout(path, layers, settings)


def _lifecycle_index(path: Path, size_mb: int) -> Path:
    def layers(blobs: Path, arch: str) -> list[dict[str, Any]]:
        size = size_mb * MB + ARCHES.index(arch)
        return [
            _layer(
                blobs, lambda t: _base(t, {"etc/passwd": 2000, "etc/ssl/certs/ca-certificates.crt": 220_000})
            ),
            _layer(blobs, lambda t: _lifecycle(t, size)),
        ]

    return _index_layout(path, layers, {"Labels": {"io.buildpacks.lifecycle.version": "0.21.0"}})


def targets_case(
    registry: Any, size_mb: int, rounds: int, work: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """One target against two, cold and warm, to an OCI layout; the record for the report."""
    from tests.services.skopeo import copy

    build = _build_index(WORK_DIR / "build-index-100mb")
    lifecycle = _lifecycle_index(WORK_DIR / f"lifecycle-index-{size_mb}mb", size_mb)
    build_ref = copy(f"oci:{build}:v1", registry, "build-index", "v1", workdir=work, extra=("--all",))
    lifecycle_ref = copy(
        f"oci:{lifecycle}:v1", registry, f"lifecycle-index-{size_mb}", "v1", workdir=work, extra=("--all",)
    )
    project = fresh_dir(work / "project")
    buildpack(project / "bp", api="0.10")
    config = builder_toml(
        project / "builder.toml", lifecycle=f'uri = "docker://{lifecycle_ref}"', image=f"docker://{build_ref}"
    )
    # The run image is read for each target: the build index stands in for it (and its mirror).
    text = config.read_text().replace("cnbs/sample-base-run:jammy", build_ref)
    config.write_text(text.replace("mirror.example/run", build_ref))
    cache, out = work / "cache", work / "out"
    env = child_env(CNBKIT_CACHE_DIR=str(cache), DOCKER_HOST=f"unix://{work}/no-daemon.sock")
    flags = {
        "1 target": ["--target", "linux/amd64"],
        "2 targets": ["--target", "linux/amd64", "--target", "linux/arm64"],
    }

    def argv(name: str) -> list[str]:
        return [
            *cnbkit_command(),
            "builder",
            "create",
            f"oci:{out}:v1",
            "--config",
            str(config),
            "-q",
            *flags[name],
        ]

    warm: dict[str, list[Sample]] = {f"{name} warm": [] for name in flags}

    def follow_up(name: str) -> Callable[[bool], None]:
        def run(recorded: bool) -> None:
            remove(out)
            sample = run_timed(argv(name), env=env)
            if recorded:
                warm[f"{name} warm"].append(sample)

        return run

    contenders = [
        Contender(
            f"cnbkit {name} -> oci",
            " ".join(argv(name)).replace(str(out), "DIR"),
            lambda: (fresh_dir(cache), remove(out)),
            lambda name=name: run_timed(argv(name), env=env),  # type: ignore[misc]
            follow_up=follow_up(name),
        )
        for name in flags
    ]
    log(f"  targets: lifecycle {size_mb} MB per platform, {rounds} rounds")
    samples = run_paired(contenders, rounds, log=log)
    record: dict[str, Any] = {"size_mb": size_mb}
    for contender in contenders:
        record[contender.name] = summarize(samples[contender.name], contender.command)
    for name in flags:
        record[f"cnbkit {name} -> oci warm"] = summarize(warm[f"{name} warm"], f"the same, warm ({name})")
    record["2 targets / 1 target, cold"] = paired_ratios(
        samples["cnbkit 2 targets -> oci"], samples["cnbkit 1 target -> oci"]
    )
    record["2 targets / 1 target, warm"] = paired_ratios(warm["2 targets warm"], warm["1 target warm"])
    return record
