"""``cnbkit builder create`` versus the real ``pack builder create`` (tools/peers builds it), on
the same builder.toml, to a loopback registry and to a Docker daemon, cold and warm.

Run from the repository root: ``python benchmarks/bench_pack.py [--sizes 30,300] [--rounds 3]``
(after ``bash tools/peers``). Writes ``benchmarks/results/pack.{md,json}``.

Inputs, as benchmarks/bench_builder.py makes them: a ~100 MB build image pushed to a private
``docker-registry`` on 127.0.0.1, per SIZE a lifecycle ``.tgz`` and an official-shaped
lifecycle image in that registry, and a one-file buildpack. A private ``dockerd``
(tests/services/dockerd.py) is the daemon.

Per size, lifecycle source (``tgz``, ``image``) and target (``registry``: ``pack --publish`` and
``cnbkit builder create docker://REGISTRY/NEW``; ``daemon``: pack's default and ``cnbkit builder
create docker-daemon:NAME``), pack and cnbkit run paired and rotating (benchmarks/harness.py),
each a whole process:

* cold: pack's home (``PACK_HOME``) and cnbkit's cache emptied and every image of the daemon
  removed before the run (so a daemon run pulls the build image, as on a fresh machine);
* warm: the same command again right after, with what the cold run left (outside the cold
  run's timed region).

Registry runs see no daemon (``DOCKER_HOST`` names a socket nobody serves). Peak RSS is the
tool's own process tree; the daemon's work is in neither.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report
from benchmarks.bench_builder import make_build_layout
from benchmarks.bench_docker import make_layout
from benchmarks.harness import (
    MB,
    WORK_DIR,
    Contender,
    Sample,
    Spread,
    child_env,
    cnbkit_command,
    fresh_dir,
    machine_facts,
    paired_ratios,
    run_paired,
    run_timed,
    summarize,
)
from benchmarks.workload import ensure_input
from tests.builder_support import builder_toml, buildpack

SOURCES = ("tgz", "image")
TARGETS = ("registry", "daemon")


def _log(message: str) -> None:
    print(message, flush=True)


def _config(path: Path, lifecycle: str, image: str) -> Path:
    """builder.toml: the lifecycle, the one-file buildpack, ``image`` as build and run image."""
    builder_toml(path, lifecycle=f'uri = "{lifecycle}"', image=image)
    text = path.read_text().replace("cnbs/sample-base-run:jammy", image)
    path.write_text(text.replace('mirrors = ["mirror.example/run"]\n', ""))
    return path


class _Case:
    """One size: the builder.tomls, the environments and the commands of both tools."""

    def __init__(
        self, registry: Any, dockerd: Any, pack: Path, build_ref: str, size_mb: int, work: Path
    ) -> None:
        from tests.services.skopeo import copy

        self.registry, self.dockerd, self.pack, self.work = registry, dockerd, pack, work
        self.size_mb = size_mb
        self.tgz = ensure_input(size_mb, log=_log).path
        layout = make_layout(WORK_DIR / f"docker-image-{size_mb}mb", size_mb)
        lifecycle_ref = copy(f"oci:{layout}:v1", registry, f"lifecycle-{size_mb}", "v1", workdir=work)
        project = fresh_dir(work / "project")
        buildpack(project / "bp", api="0.10")
        # The build image's name without a scheme: pack's form, which cnbkit reads as docker://.
        # It is the run image too (pack fetches the run image to check it).
        self.configs = {
            kind: _config(project / f"{kind}.toml", lifecycle, build_ref)
            for kind, lifecycle in (("tgz", str(self.tgz)), ("image", f"docker://{lifecycle_ref}"))
        }
        self.homes = {"pack": work / "pack-home", "cnbkit": work / "cnbkit-cache"}
        (work / "docker-config").mkdir()
        (work / "docker-config" / "config.json").write_text("{}\n")
        self._fresh = itertools.count(1)

    def env(self, tool: str, target: str) -> dict[str, str]:
        daemon = self.dockerd.host if target == "daemon" else f"unix://{self.work}/no-daemon.sock"
        common = {"DOCKER_HOST": daemon, "DOCKER_CONFIG": str(self.work / "docker-config")}
        if tool == "pack":
            return child_env(HOME=str(self.homes["pack"]), PACK_HOME=str(self.homes["pack"]), **common)
        return child_env(CNBKIT_CACHE_DIR=str(self.homes["cnbkit"]), **common)

    def argv(self, tool: str, source: str, target: str, *, shown: bool = False) -> list[str]:
        """The command; a new repository (registry) or name (daemon) each time."""
        n = "N" if shown else str(next(self._fresh))
        name = f"bench-{tool}-{source}-{self.size_mb}-{n}:v1"
        config = str(self.configs[source])
        if tool == "pack":
            where = [f"{self.registry.host}/{name}", "--publish"] if target == "registry" else [name]
            return [str(self.pack), "builder", "create", *where, "--config", config, "--quiet"]
        dest = f"docker://{self.registry.host}/{name}" if target == "registry" else f"docker-daemon:{name}"
        return [*cnbkit_command(), "builder", "create", dest, "--config", config, "-q"]

    def cold(self, tool: str) -> None:
        """Untimed: empty the tool's cache and remove every image of the daemon."""
        fresh_dir(self.homes[tool])
        images = self.dockerd.cli("images", "-aq").stdout.split()
        if images:
            self.dockerd.cli("rmi", "-f", *sorted(set(images)), check=False)

    def contender(self, tool: str, source: str, target: str, warm: dict[str, list[Sample]]) -> Contender:
        name = f"{tool} {source} -> {target}"
        warm[f"{name} warm"] = []

        def follow_up(recorded: bool) -> None:
            sample = run_timed(self.argv(tool, source, target), env=self.env(tool, target))
            if recorded:
                warm[f"{name} warm"].append(sample)

        return Contender(
            name,
            " ".join(self.argv(tool, source, target, shown=True)),
            lambda: self.cold(tool),
            lambda: run_timed(self.argv(tool, source, target), env=self.env(tool, target)),
            follow_up=follow_up,
        )


def _run_case(case: _Case, rounds: int) -> dict[str, Any]:
    record: dict[str, Any] = {"size_mb": case.size_mb, "tgz_mb": round(case.tgz.stat().st_size / MB, 1)}
    for source, target in itertools.product(SOURCES, TARGETS):
        warm: dict[str, list[Sample]] = {}
        contenders = [case.contender(tool, source, target, warm) for tool in ("pack", "cnbkit")]
        _log(f"  lifecycle {case.size_mb} MB, {source} -> {target}, {rounds} rounds")
        samples = {**run_paired(contenders, rounds, log=_log), **warm}
        for name, series in samples.items():
            command = next((c.command for c in contenders if c.name == name), name)
            record[name] = summarize(series, command)
        for when in ("", " warm"):
            ours, theirs = (
                samples[f"cnbkit {source} -> {target}{when}"],
                samples[f"pack {source} -> {target}{when}"],
            )
            record[f"cnbkit / pack: {source} -> {target}{when or ' cold'}"] = paired_ratios(ours, theirs)
    return record


def _table(cases: list[dict[str, Any]]) -> str:
    rows = ["| lifecycle | run | wall s | peak RSS MB |", "|---|---|---|---|"]
    ratios = ["| lifecycle | cnbkit / pack (paired, per round) | median (min-max) |", "|---|---|---|"]
    for case in cases:
        for name, value in case.items():
            if isinstance(value, dict) and "wall" in value:
                wall = Spread(value["wall"]["median"], value["wall"]["min"], value["wall"]["max"])
                rows.append(f"| {case['size_mb']} MB | {name} | {wall.fmt()} | {value['peak_rss_mb']} |")
            elif isinstance(value, dict) and "median" in value:
                ratio = Spread(value["median"], value["min"], value["max"])
                ratios.append(
                    f"| {case['size_mb']} MB | {name.removeprefix('cnbkit / pack: ')} | {ratio.fmt()} |"
                )
    return "\n".join(rows) + "\n\n" + "\n".join(ratios)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables and write benchmarks/results/pack.{md,json}."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench_pack.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="30,300", help="lifecycle sizes in MB (default 30,300)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per case (default 3)")
    args = parser.parse_args(argv)
    from tests.services.dockerd import Dockerd
    from tests.services.peers import find_peers
    from tests.services.registry import Registry
    from tests.services.skopeo import copy

    peers = find_peers()
    if peers is None:
        _log("bench_pack: the real pack is not built: run bash tools/peers first")
        return 1
    work = fresh_dir(WORK_DIR / "pack-run")
    cases = []
    with Registry(work / "registry", name="bench-registry") as registry, Dockerd() as dockerd:
        layout = make_build_layout(WORK_DIR / "build-image-100mb")
        build_ref = copy(f"oci:{layout}:v1", registry, "build", "v1", workdir=work)
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            case = _Case(registry, dockerd, peers.pack, build_ref, size, fresh_dir(work / f"case-{size}"))
            cases.append(_run_case(case, args.rounds))
    table = _table(cases)
    command = f"python benchmarks/bench_pack.py --sizes {args.sizes} --rounds {args.rounds}"
    facts = machine_facts({"pack": [str(peers.pack), "version"], "dockerd": ["dockerd", "--version"]})
    markdown = f"# cnbkit benchmark: builder create vs pack builder create\n\nRun with `{command}`.\n\n"
    markdown += f"{table}\n\n" + report.machine_table(facts) + "\n"
    report.write_results("pack", markdown, {"command": command, "cases": cases, "machine": facts})
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
