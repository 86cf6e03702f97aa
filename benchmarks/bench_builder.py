"""``cnbkit builder create`` versus ``skopeo copy`` of the build image alone (the floor of moving
the base), to an OCI layout and to a loopback registry, cold and warm.

Run from the repository root: ``python benchmarks/bench_builder.py [--sizes 30,300] [--rounds 3]``.
Writes ``benchmarks/results/builder.{md,json}``.

Inputs (made once under benchmarks/work/, pushed to a private ``docker-registry`` on 127.0.0.1
by skopeo): a build image of about 100 MB (one base layer whose bytes compress like compiled
code, gzip level 1; ``CNB_USER_ID``/``CNB_GROUP_ID`` set), and per SIZE a lifecycle ``.tgz``
(``tests.lifecycles.big_lifecycle``) and an official-shaped lifecycle image
(``bench_docker.make_layout``), plus a one-file buildpack.

Contenders per size, paired and rotating (benchmarks/harness.py), each a whole process, cold
cache (``CNBKIT_CACHE_DIR`` emptied before each run):

* ``skopeo copy -> oci``: ``skopeo copy docker://BUILD oci:DIR`` (the floor for a layout);
* ``skopeo copy + tar -xzf``: the same, then ``tar -xzf`` of the lifecycle ``.tgz`` (the floor
  for a cold builder with a ``.tgz`` lifecycle, which must inflate and re-compress it);
* ``cnbkit tgz -> oci`` / ``cnbkit image -> oci``: ``cnbkit builder create oci:DIR`` with the
  ``.tgz`` / the image lifecycle; each followed (outside its timed region) by a warm run to a
  fresh layout with the cache it left (``... warm``);
* ``skopeo copy -> registry``: ``skopeo copy docker://BUILD docker://REGISTRY/NEW`` (a new
  repository each run);
* ``cnbkit tgz -> registry`` / ``cnbkit image -> registry``: ``cnbkit builder create
  docker://REGISTRY/NEW`` (a new repository each run: base and lifecycle image layers are
  mounted, the rest uploaded), each followed by a warm run to another new repository.
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
from benchmarks.bench_docker import _base, _layer, make_layout, write_image
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
    remove,
    run_paired,
    run_pipeline,
    run_timed,
    summarize,
)
from benchmarks.workload import ensure_input
from tests.builder_support import builder_toml, buildpack

BUILD_MB = 100


def make_build_layout(path: Path) -> Path:
    """The ~100 MB build image as an OCI layout (reused when already made)."""
    if (path / "index.json").is_file():
        return path
    fresh_dir(path)
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = [
        _layer(blobs, lambda t: _base(t, {"etc/passwd": 2000, "usr/lib/libbig.so": BUILD_MB * MB})),
    ]
    return write_image(
        path,
        layers,
        {
            "Env": ["PATH=/usr/bin:/bin", "CNB_USER_ID=1000", "CNB_GROUP_ID=1000"],
            "User": "1000:1000",
            "Labels": {"io.buildpacks.stack.id": "bench"},
        },
    )


def _log(message: str) -> None:
    print(message, flush=True)


def _case(registry: Any, build_ref: str, size_mb: int, rounds: int, work: Path) -> dict[str, Any]:
    from tests.services.skopeo import copy

    tgz = ensure_input(size_mb, log=_log).path
    lifecycle_ref = copy(
        f"oci:{make_layout(WORK_DIR / f'docker-image-{size_mb}mb', size_mb)}:v1",
        registry,
        f"lifecycle-{size_mb}",
        "v1",
        workdir=work,
    )
    project = fresh_dir(work / "project")
    buildpack(project / "bp", api="0.10")
    configs = {
        "tgz": builder_toml(project / "tgz.toml", lifecycle=f'uri = "{tgz}"', image=build_ref),
        "image": builder_toml(
            project / "image.toml", lifecycle=f'uri = "docker://{lifecycle_ref}"', image=build_ref
        ),
    }
    cache, out, extract = work / "cache", work / "out", work / "extract"
    env = child_env(CNBKIT_CACHE_DIR=str(cache), DOCKER_HOST=f"unix://{work}/no-daemon.sock")
    (work / "auth.json").write_text('{"auths": {}}')
    skopeo_env = child_env(REGISTRY_AUTH_FILE=str(work / "auth.json"))
    skopeo_base = ["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "--src-no-creds"]
    fresh = itertools.count(1)

    def new_repo(kind: str) -> str:
        return f"{registry.host}/bench-{kind}-{size_mb}-{next(fresh)}:v1"

    def builder(kind: str, target: str) -> list[str]:
        return [*cnbkit_command(), "builder", "create", target, "--config", str(configs[kind]), "-q"]

    def skopeo_to(target: str) -> list[str]:
        return [*skopeo_base, "--dest-tls-verify=false", "--dest-no-creds", f"docker://{build_ref}", target]

    warm: dict[str, list[Sample]] = {}

    def warm_run(name: str, argv_of: Any, before: Any = lambda: None) -> Any:
        warm[name] = []

        def follow_up(recorded: bool) -> None:
            before()
            sample = run_timed(argv_of(), env=env)
            if recorded:
                warm[name].append(sample)

        return follow_up

    oci_target = f"oci:{out}:v1"
    contenders = [
        Contender(
            "skopeo copy -> oci",
            " ".join(skopeo_to(oci_target)),
            lambda: remove(out),
            lambda: run_timed(skopeo_to(oci_target), env=skopeo_env),
        ),
        Contender(
            "skopeo copy + tar -xzf",
            f"{' '.join(skopeo_to(oci_target))} && tar -xzf {tgz.name} -C DIR",
            lambda: (remove(out), fresh_dir(extract)),
            lambda: run_pipeline(
                [["sh", "-c", f'{" ".join(skopeo_to(oci_target))} && tar -xzf "{tgz}" -C "{extract}"']],
                env=skopeo_env,
            ),
        ),
        Contender(
            "skopeo copy -> registry",
            " ".join(skopeo_to("docker://REGISTRY/NEW:v1")),
            lambda: None,
            lambda: run_timed(skopeo_to(f"docker://{new_repo('skopeo')}"), env=skopeo_env),
        ),
    ]
    for kind in configs:
        contenders.append(
            Contender(
                f"cnbkit {kind} -> oci",
                " ".join(builder(kind, "oci:DIR:v1")),
                lambda: (fresh_dir(cache), remove(out)),
                lambda kind=kind: run_timed(builder(kind, oci_target), env=env),  # type: ignore[misc]
                follow_up=warm_run(
                    f"cnbkit {kind} -> oci warm",
                    lambda kind=kind: builder(kind, oci_target),
                    lambda: remove(out),
                ),
            )
        )
        contenders.append(
            Contender(
                f"cnbkit {kind} -> registry",
                " ".join(builder(kind, "docker://REGISTRY/NEW:v1")),
                lambda: fresh_dir(cache),
                lambda kind=kind: run_timed(builder(kind, f"docker://{new_repo(kind)}"), env=env),  # type: ignore[misc]
                follow_up=warm_run(
                    f"cnbkit {kind} -> registry warm",
                    lambda kind=kind: builder(kind, f"docker://{new_repo(kind)}"),
                ),
            )
        )
    _log(f"  lifecycle {size_mb} MB ({tgz.stat().st_size / MB:.0f} MB .tgz), {rounds} rounds")
    samples = run_paired(contenders, rounds, log=_log)
    record: dict[str, Any] = {"size_mb": size_mb, "tgz_mb": round(tgz.stat().st_size / MB, 1)}
    for name, series in {**samples, **warm}.items():
        command = next(
            (c.command for c in contenders if c.name == name), name.removesuffix(" warm") + " (warm)"
        )
        record[name] = summarize(series, command)
    pairs = {
        "cnbkit tgz -> oci": "skopeo copy + tar -xzf",
        "cnbkit image -> oci": "skopeo copy -> oci",
        "cnbkit tgz -> registry": "skopeo copy -> registry",
        "cnbkit image -> registry": "skopeo copy -> registry",
    }
    for name, floor in pairs.items():
        record[f"{name} / {floor}"] = paired_ratios(samples[name], samples[floor])
    for kind in configs:  # warm runs against the skopeo copy of the same round
        record[f"cnbkit {kind} -> oci warm / skopeo copy -> oci"] = paired_ratios(
            warm[f"cnbkit {kind} -> oci warm"], samples["skopeo copy -> oci"]
        )
        record[f"cnbkit {kind} -> registry warm / skopeo copy -> registry"] = paired_ratios(
            warm[f"cnbkit {kind} -> registry warm"], samples["skopeo copy -> registry"]
        )
    return record


def _table(cases: list[dict[str, Any]]) -> str:
    rows = ["| lifecycle | contender | wall s | peak RSS MB |", "|---|---|---|---|"]
    ratios = ["| lifecycle | ratio (paired, per round) | median (min-max) |", "|---|---|---|"]
    for case in cases:
        for name, value in case.items():
            if not isinstance(value, dict):
                continue
            if "wall" in value:
                wall = Spread(value["wall"]["median"], value["wall"]["min"], value["wall"]["max"])
                rows.append(f"| {case['size_mb']} MB | {name} | {wall.fmt()} | {value['peak_rss_mb']} |")
            elif "median" in value:
                ratio = Spread(value["median"], value["min"], value["max"])
                ratios.append(f"| {case['size_mb']} MB | {name} | {ratio.fmt()} |")
    return "\n".join(rows) + "\n\n" + "\n".join(ratios)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the tables and write benchmarks/results/builder.{md,json}."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench_builder.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="30,300", help="lifecycle sizes in MB (default 30,300)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per size (default 3)")
    parser.add_argument(
        "--targets",
        type=int,
        choices=(2,),
        help="instead: two targets against one (benchmarks/bench_targets.py), results builder-targets",
    )
    args = parser.parse_args(argv)
    if args.targets:
        return _targets(args)
    from tests.services.registry import Registry
    from tests.services.skopeo import copy

    work = fresh_dir(WORK_DIR / "builder-run")
    cases = []
    with Registry(work / "registry", name="bench-registry") as registry:
        build_ref = copy(
            f"oci:{make_build_layout(WORK_DIR / 'build-image-100mb')}:v1",
            registry,
            "build",
            "v1",
            workdir=work,
        )
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            cases.append(_case(registry, build_ref, size, args.rounds, fresh_dir(work / f"case-{size}")))
    table = _table(cases)
    command = f"python benchmarks/bench_builder.py --sizes {args.sizes} --rounds {args.rounds}"
    facts = machine_facts(
        {"skopeo": ["skopeo", "--version"], "docker-registry": ["docker-registry", "--version"]}
    )
    markdown = (
        f"# cnbkit benchmark: builder create vs skopeo copy of the build image\n\nRun with `{command}`.\n\n"
    )
    markdown += f"{table}\n\n" + report.machine_table(facts) + "\n"
    report.write_results("builder", markdown, {"command": command, "cases": cases, "machine": facts})
    print(table)
    return 0


def _targets(args: argparse.Namespace) -> int:
    """``--targets 2``: the two-target builder against the one-target one, per size."""
    from benchmarks.bench_targets import targets_case
    from tests.services.registry import Registry

    work = fresh_dir(WORK_DIR / "builder-targets-run")
    with Registry(work / "registry", name="bench-registry") as registry:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        cases = [
            targets_case(registry, size, args.rounds, fresh_dir(work / f"case-{size}"), _log)
            for size in sizes
        ]
    table = _table(cases)
    command = f"python benchmarks/bench_builder.py --targets 2 --sizes {args.sizes} --rounds {args.rounds}"
    facts = machine_facts({"skopeo": ["skopeo", "--version"]})
    markdown = f"# cnbkit benchmark: a two-target builder against one target\n\nRun with `{command}`.\n\n"
    markdown += f"{table}\n\n" + report.machine_table(facts) + "\n"
    report.write_results("builder-targets", markdown, {"command": command, "cases": cases, "machine": facts})
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
