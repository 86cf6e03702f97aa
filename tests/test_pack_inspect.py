"""``cnbkit builder inspect`` of a builder made by the real pack (tests/services/peers.py) shows
what ``pack builder inspect`` itself shows of it: the lifecycle's version and APIs, the
buildpacks at their versions, the run image, the stack and the detection order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import cli_json, run_cli
from tests.docker_images import push_spec
from tests.real_builds import base_spec, builder_toml, sample_buildpacks
from tests.services.dockerd import Dockerd
from tests.services.peers import Peers
from tests.services.registry import Registry


def _pack_order(groups: list[dict[str, Any]]) -> list[list[str]]:
    """pack's ``detection_order`` as groups of ``id@version`` (``?`` marks optional)."""
    return [
        [f"{b['id']}@{b.get('version', '')}{'?' if b.get('optional') else ''}" for b in g["buildpacks"]]
        for g in groups
    ]


def _pack_facts(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "lifecycle": info["lifecycle"]["version"],
        "apis": {
            kind: {k: v or [] for k, v in info["lifecycle"][f"{kind}_apis"].items()}
            for kind in ("buildpack", "platform")
        },
        "buildpacks": sorted(f"{b['id']}@{b['version']}" for b in info["buildpacks"]),
        "run": [r["name"] for r in info["run_images"]],
        "stack": (info.get("stack") or {}).get("id", ""),
        "order": _pack_order(info["detection_order"]),
    }


def _cnbkit_facts(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "lifecycle": report["lifecycle"]["version"],
        "apis": report["lifecycle"]["apis"],
        "buildpacks": sorted(f"{b['id']}@{b['version']}" for b in report["buildpacks"]),
        "run": [name for r in report["run_images"] for name in [r["image"], *r["mirrors"]]],
        "stack": report["stack"]["id"],
        "order": [
            [f"{r['id']}@{r['version']}{'?' if r['optional'] else ''}" for r in g["group"]]
            for g in report["order"]
        ],
    }


def test_a_pack_builder_is_inspected_as_pack_inspects_it(
    peers: Peers, registry: Registry, docker_host: Dockerd, tmp_path: Path, cache_dir: Path
) -> None:
    build = push_spec(base_spec(), registry, registry.unique_repo("pi-build"), "t", tmp_path)
    run = push_spec(base_spec(), registry, registry.unique_repo("pi-run"), "t", tmp_path)
    config = builder_toml(
        tmp_path / "builder.toml",
        lifecycle=str(peers.archive()),
        build_image=build,
        run_image=run,
        buildpacks=sample_buildpacks(tmp_path / "buildpacks"),
    )
    ref = registry.ref(registry.unique_repo("pi-by-pack"), "t")
    made = peers.run_pack(tmp_path, "builder", "create", ref, "--config", str(config), "--publish")
    assert made.returncode == 0, made.stdout + made.stderr
    shown = peers.run_pack(
        tmp_path, "builder", "inspect", ref, "--output", "json", "--depth", "-1", docker_host=docker_host.host
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    by_pack = _pack_facts(json.loads(shown.stdout)["remote_info"])

    report = cli_json("builder", "inspect", f"docker://{ref}", "--json", "--pull-policy", "always")
    assert _cnbkit_facts(report) == by_pack
    assert by_pack["lifecycle"] == peers.lifecycle_version and by_pack["buildpacks"]
    # What pack does not show, found in pack's layout: the build image's layers, then pack's
    # directories layer, then the lifecycle's, below the buildpacks'.
    assert len(report["build_image"]["layers"]) == len(base_spec().layers)
    lifecycle = report["lifecycle"]["layer"]
    assert lifecycle["index"] == len(base_spec().layers) + 1 and lifecycle["digest"].startswith("sha256:")
    assert all(b["layer"]["digest"] and b["layer"]["size"] for b in report["buildpacks"])
    text = run_cli("builder", "inspect", f"docker://{ref}", "--pull-policy", "always")
    assert text.returncode == 0, text.stderr
    assert f"\n  Version: {peers.lifecycle_version}\n" in text.stdout
    assert all(b["id"] in text.stdout for b in report["buildpacks"])
