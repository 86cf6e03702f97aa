"""Where cnbkit's time goes: ``python benchmarks/where_time_goes.py`` from the repository root.

For the lead, not a benchmark: it explains the figures ``run.py`` reports.

1. A start-up ladder: whole-process medians of ever larger slices of a warm resolve
   (bare interpreter, ``site``, ``import cnbkit.cli``, ``import requests``, plugin discovery,
   then warm ``file`` and ``https`` resolves), run alternately.
2. ``-X importtime`` of the warm ``https`` resolve: the heaviest imports on that path.
3. ``cProfile`` of the warm ``https`` resolve: the heaviest calls (imports included).
4. ``py-spy`` (``pip install py-spy``; skipped without it) of a cold ``https`` resolve of
   the 300 MB input, sorted and unsorted: CPU samples per thread and the lines they sit on.

Writes ``benchmarks/results/profile.md``.
"""

from __future__ import annotations

import argparse
import collections
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    GNU_TIME,
    MB,
    WORK_DIR,
    child_env,
    cnbkit_command,
    exit_on_sigterm,
    fresh_dir,
    machine_facts,
    remove,
)
from benchmarks.report import machine_table, write_results
from benchmarks.servers import Server, https_server
from benchmarks.workload import Input, ensure_input

_RUNS = WORK_DIR / "runs" / "profile"
_SPY_RATE = 250  # samples per second


def _log(message: str) -> None:
    print(message, flush=True)


def _wall(argv: Sequence[str], env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(list(argv), env=dict(env), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


Step = tuple[str, list[str], dict[str, str], int | None]  # name, argv, env, index of its base step


def _ladder(steps: Sequence[Step], rounds: int) -> str:
    times: list[list[float]] = [[] for _ in steps]
    for _, argv, env, _ in steps:  # warm-up: bytecode, page cache
        _wall(argv, env)
    for _ in range(rounds):
        for i, (_, argv, env, _) in enumerate(steps):
            times[i].append(_wall(argv, env))
    medians = [statistics.median(t) * 1000 for t in times]
    rows = ["| # | step | median ms | min ms | over step # |", "|---:|---|---:|---:|---:|"]
    for i, (name, _, _, base) in enumerate(steps):
        delta = "" if base is None else f"{medians[i] - medians[base]:+.0f} over #{base + 1}"
        rows.append(f"| {i + 1} | {name} | {medians[i]:.0f} | {min(times[i]) * 1000:.0f} | {delta} |")
    return "\n".join(rows)


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _importtime(argv: Sequence[str], env: Mapping[str, str], top: int = 15) -> str:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], env=dict(env), capture_output=True, text=True, check=True
    )
    rows: list[tuple[int, int, int, str]] = []
    for line in done.stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    total = sum(self_us for self_us, _, _, _ in rows)
    outer = sorted((r for r in rows if r[2] == 0), key=lambda r: -r[1])[:top]
    lines = [
        f"{len(rows)} modules imported, {total / 1000:.0f} ms of import time in all (under -X importtime, "
        "which itself adds some).",
        "",
        "| top-level import (and everything it pulls in) | cumulative ms |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {cum / 1000:.1f} |" for _, cum, _, name in outer]
    heavy = sorted(rows, key=lambda r: -r[0])[:top]
    lines += ["", "| module (own time only) | self ms |", "|---|---:|"]
    lines += [f"| {name} | {self_us / 1000:.1f} |" for self_us, _, _, name in heavy]
    return "\n".join(lines)


def _cprofile(argv: Sequence[str], env: Mapping[str, str], top: int = 22) -> str:
    with tempfile.TemporaryDirectory(prefix="cnbkit-prof-") as tmp:
        out = Path(tmp) / "warm.prof"
        subprocess.run(
            [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "cnbkit", *argv],
            env=dict(env),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        stats = pstats.Stats(str(out))
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(entry[3] for entry in raw.values())
    rows = []
    for (filename, line, func), (_, _, tottime, cumtime, _) in raw.items():
        if filename.startswith("<frozen") or filename == "~" or "runpy" in filename:
            continue  # the import machinery and exec: their time shows under what they import
        short = filename.replace(str(Path(sys.prefix)), "$PREFIX").replace("/work/main/", "")
        rows.append((cumtime, tottime, f"{short}:{line}({func})"))
    rows.sort(reverse=True)
    lines = [
        f"Whole run under cProfile: {total * 1000:.0f} ms (profiling overhead included).",
        "",
        "| function | cumulative ms | own ms |",
        "|---|---:|---:|",
    ]
    lines += [f"| `{name}` | {cum * 1000:.1f} | {own * 1000:.1f} |" for cum, own, name in rows[:top]]
    return "\n".join(lines)


def _parse_spy(raw: Path) -> dict[str, collections.Counter[str]]:
    names: dict[str, str] = {}
    per_thread: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        m = re.match(r"thread \((\w+)\)(?::\s*(.*))?", frames[0])
        if m is None:
            continue
        tid = m.group(1)
        if m.group(2):
            names[tid] = m.group(2).strip()
        leaf = frames[-1] if len(frames) > 1 else "?"
        per_thread[tid][leaf.replace("/work/main/", "")] += int(count)
    labelled: dict[str, collections.Counter[str]] = {}
    for tid, counts in per_thread.items():
        label = names.get(tid, tid)
        if label in labelled:  # a second thread of the same name (the rewrite's layer writer)
            label = f"{label} (2nd, tid {tid})"
        labelled[label] = counts
    return labelled


def _spy(argv: Sequence[str], env: Mapping[str, str], prepare: Callable[[], object], label: str) -> str:
    spy = shutil.which("py-spy")
    if spy is None:
        return "py-spy is not installed (`pip install py-spy`): no thread profile."
    prepare()
    wall = _wall(argv, env)
    cpu = ""
    if GNU_TIME:
        prepare()
        done = subprocess.run(
            [GNU_TIME, "-f", "%U %S", *argv], env=dict(env), capture_output=True, text=True, check=True
        )
        user, system = (float(x) for x in done.stderr.split()[-2:])
        cpu = f", CPU {user:.2f} s user + {system:.2f} s system"
    prepare()
    raw = WORK_DIR / f"py-spy-{label}.txt"
    subprocess.run(
        [spy, "record", "--threads", "-r", str(_SPY_RATE), "-f", "raw", "-o", str(raw), "--", *argv],
        env=dict(env),
        check=True,
        capture_output=True,
    )
    threads = _parse_spy(raw)
    lines = [
        f"Unprofiled run: {wall:.2f} s wall{cpu}. Under py-spy ({_SPY_RATE} Hz; idle samples "
        "dropped, though py-spy still counts some lock waits such as `Condition.wait` as running; "
        f"raw stacks in `benchmarks/work/{raw.name}`):",
        "",
        "| thread | sampled s (samples) | top lines (share of the thread's samples) |",
        "|---|---:|---|",
    ]
    for name, counts in sorted(threads.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(counts.values())
        top = "; ".join(f"`{leaf}` {n / total:.0%}" for leaf, n in counts.most_common(6))
        lines.append(f"| {name} | {total / _SPY_RATE:.2f} ({total}) | {top} |")
    return "\n".join(lines)


def _sections(server: Server, big: Input, unsorted: Input, rounds: int) -> list[tuple[str, str]]:
    cli = cnbkit_command()
    cache = _RUNS / "cache"
    env = child_env(CNBKIT_CACHE_DIR=str(cache))
    nopyc = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    nopyc.pop("PYTHONPYCACHEPREFIX")
    url = server.url(big.path.name)
    https_args = ["resolve", url, "--ca-cert", str(server.ca), "-q"]
    file_args = ["resolve", str(big.path), "-q"]
    fresh_dir(_RUNS)
    for args in (https_args, file_args):  # prime the cache: later runs are warm
        subprocess.run([*cli, *args], env=env, check=True)
    py = sys.executable
    discover = "from cnbkit.plugin.host import PluginHost; PluginHost.from_entry_points()"
    steps: list[Step] = [
        ("python -S -c pass (bare interpreter)", [py, "-S", "-c", "pass"], env, None),
        (
            "python -c pass (+ site: .pth files, incl. the editable-install finder)",
            [py, "-c", "pass"],
            env,
            0,
        ),
        (
            "python -c 'import cnbkit.cli' (imports the cnbkit package)",
            [py, "-c", "import cnbkit.cli"],
            env,
            1,
        ),
        ("+ PluginHost.from_entry_points() (plugin discovery)", [py, "-c", discover], env, 2),
        ("+ import requests", [py, "-c", f"{discover}; import requests"], env, 3),
        ("cnbkit resolve FILE.tgz -q (warm: stat stamp, cached metadata)", [*cli, *file_args], env, 3),
        ("cnbkit resolve URL --ca-cert CA -q (warm: one 304)", [*cli, *https_args], env, 4),
        ("the same without a bytecode cache (PYTHONDONTWRITEBYTECODE=1)", [*cli, *https_args], nopyc, 6),
    ]
    _log("  start-up ladder ...")
    ladder = _ladder(steps, rounds)
    _log("  importtime and cProfile of the warm https resolve ...")
    imports = _importtime(["-c", "from cnbkit.cli import run; run()", *https_args], env)
    profile = _cprofile(https_args, env)
    cold_cache = _RUNS / "cold-cache"
    cold_env = child_env(CNBKIT_CACHE_DIR=str(cold_cache))
    _log("  py-spy of cold https resolves ...")
    spies = []
    for inp in (big, unsorted):
        argv = [*cli, "resolve", server.url(inp.path.name), "--ca-cert", str(server.ca), "-q"]
        label = f"cold-https-{inp.path.stem}"
        spies.append((inp.label, _spy(argv, cold_env, lambda: fresh_dir(cold_cache), label)))
    remove(_RUNS)
    sections = [
        (
            "Start-up ladder (warm path)",
            f"Whole-process medians of {rounds} alternating runs; each step adds to the one before.\n\n"
            + ladder,
        ),
        ("Imports on the warm https path (`-X importtime`)", imports),
        ("cProfile of the warm https resolve (main thread)", profile),
    ]
    sections += [(f"py-spy of a cold https resolve, {label}", text) for label, text in spies]
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    """Profile the warm and cold paths and write ``results/profile.md``."""
    parser = argparse.ArgumentParser(prog="python benchmarks/where_time_goes.py", description=__doc__)
    parser.add_argument("--size", type=int, default=300, help="input size in MB (default 300)")
    parser.add_argument("--rounds", type=int, default=9, help="runs per start-up ladder step (default 9)")
    parser.add_argument("--server", choices=("nginx", "python"), default="nginx")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    big = ensure_input(args.size, True, log=_log)
    unsorted = ensure_input(args.size, False, log=_log)
    facts = machine_facts()
    with (
        tempfile.TemporaryDirectory(prefix="cnbkit-bench-") as tmp,
        https_server(WORK_DIR, Path(tmp), prefer=args.server) as server,
    ):
        _log(f"profiling against {server.kind} on 127.0.0.1:{server.port}")
        sections = _sections(server, big, unsorted, args.rounds)
    body = "\n\n".join(f"## {title}\n\n{text}" for title, text in sections)
    markdown = (
        f"# Where cnbkit's time goes\n\nRun with `python benchmarks/where_time_goes.py` on {facts['date']} "
        f"({big.label} input, {big.tgz_bytes / MB:.0f} MB .tgz, served by {server.kind}).\n\n"
        f"{body}\n\n## Machine\n\n{machine_table(facts)}\n"
    )
    path = write_results("profile", markdown, {"machine": facts, "sections": dict(sections)})
    print(markdown)
    _log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
