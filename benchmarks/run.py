"""Run cnbkit's side-by-side benchmarks: ``python benchmarks/run.py`` from the repository root.

Prints a table per benchmark and writes ``benchmarks/results/{file,https}.{md,json}``.
See ``benchmarks/README.md`` for what is compared and how.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_file, bench_https, report
from benchmarks.harness import WORK_DIR, exit_on_sigterm, machine_facts
from benchmarks.servers import https_server, nginx_binary
from benchmarks.workload import Input, ensure_input

DEFAULT_ROUNDS = 9
BUSY_LOAD = 1.0  # 1-minute load average above which the figures are flagged as noisy


def _sizes(text: str) -> list[int]:
    if text.strip().lower() in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes in MB, comma-separated (30,300)") from None
    if any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="cnbkit versus tar -xzf (file) and curl | tar (https), paired and alternating.",
    )
    parser.add_argument("--only", choices=("file", "https"), help="run one benchmark (default: both)")
    parser.add_argument(
        "--sizes", type=_sizes, default=[30, 300], metavar="MB,MB", help="binary sizes in MB (default 30,300)"
    )
    parser.add_argument(
        "--unsorted",
        type=_sizes,
        default=[300],
        metavar="MB,...",
        help="sizes also run with unsorted entries, cnbkit's rewrite path (default 300; 'none' to skip)",
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help=f"timed rounds per case (default {DEFAULT_ROUNDS})"
    )
    parser.add_argument(
        "--server",
        choices=("nginx", "python"),
        default="nginx",
        help="HTTPS server (default nginx; falls back to python when nginx is missing)",
    )
    return parser


def _log(message: str) -> None:
    print(message, flush=True)


def _load() -> float:
    return os.getloadavg()[0]


def _warn_if_busy() -> None:
    load = _load()
    if load > BUSY_LOAD:
        _log(
            f"  note: the machine is busy (1-minute load {load:.2f} on {os.cpu_count()} cores): "
            "the figures will be noisy"
        )


def _markdown(
    title: str,
    command: str,
    rounds: int,
    table: str,
    targets: Sequence[Mapping[str, Any]],
    commands: Mapping[str, str],
    facts: Mapping[str, Any],
    extra: str = "",
) -> str:
    compared = "\n".join(f"- {name}: `{cmd}`" for name, cmd in commands.items())
    return f"""# cnbkit benchmark: {title}

Run with `{command}` on {facts["date"]}: {rounds} timed rounds per input after one untimed
warm-up round; times are whole-process wall seconds, `median (min\u2013max)`; ratios are paired
(round by round), `median (min\u2013max)`. Method and meaning: `benchmarks/README.md`.
{extra}
{table}

## Targets

{report.targets_list(targets)}

## Commands compared

{compared}

## Machine

{report.machine_table(facts)}
"""


def _commands(cases: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    if not cases:
        return {}
    # the same for every input (FILE.tgz stands for each)
    return {name: rec["command"] for name, rec in cases[-1]["contenders"].items()}


def _inputs(sizes: Sequence[int], unsorted: Sequence[int], log: Callable[[str], None]) -> list[Input]:
    inputs = [ensure_input(size, True, log=log) for size in sizes]
    inputs += [ensure_input(size, False, log=log) for size in unsorted]
    return inputs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; return 0 (targets missed are reported, not failures)."""
    args = _parser().parse_args(argv)
    exit_on_sigterm()
    if args.rounds < 1:
        _parser().error("--rounds must be at least 1")
    command = shlex.join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    _log("preparing inputs in benchmarks/work/ ...")
    inputs = _inputs(args.sizes, args.unsorted, _log)
    nginx = nginx_binary()
    tools = {"tar": ["tar", "--version"], "gzip": ["gzip", "--version"], "curl": ["curl", "--version"]}
    if nginx:
        tools["nginx"] = [nginx, "-v"]
    facts = machine_facts(tools)
    written: list[Path] = []

    if args.only in (None, "file"):
        _log("file benchmark: cnbkit resolve FILE.tgz --save OUT.tar -q  vs  tar -xzf FILE.tgz -C DIR")
        _warn_if_busy()
        load_before = _load()
        cases = bench_file.run_file(inputs, args.rounds, _log)
        load_after = _load()
        table, targets = report.file_report(cases)
        extra = f"\n1-minute load average before / after: {load_before:.2f} / {load_after:.2f}.\n"
        md = _markdown("file (issue 2)", command, args.rounds, table, targets, _commands(cases), facts, extra)
        data = {
            "benchmark": "file",
            "command": command,
            "rounds": args.rounds,
            "machine": facts,
            "cases": cases,
            "targets": targets,
            "loadavg_1min": {"before": load_before, "after": load_after},
        }
        written.append(report.write_results("file", md, data))
        _log("\n" + table + "\n\n" + report.targets_list(targets) + "\n")

    if args.only in (None, "https"):
        if args.server == "nginx" and nginx is None:
            _log("nginx is not installed (apt-get install nginx-light): using the Python fallback server")
        with (
            tempfile.TemporaryDirectory(prefix="cnbkit-bench-") as tmp,
            https_server(WORK_DIR, Path(tmp), prefer=args.server) as server,
        ):
            _log(f"https benchmark: served by {server.kind} on 127.0.0.1:{server.port}")
            _warn_if_busy()
            load_before = _load()
            cases = bench_https.run_https(inputs, server, args.rounds, _log)
            load_after = _load()
        table, targets = report.https_report(cases)
        extra = (
            f"\nServer: {server.kind}, `listen 127.0.0.1:PORT ssl`, sendfile on, etag on. "
            f"1-minute load average before / after: {load_before:.2f} / {load_after:.2f}.\n"
        )
        md = _markdown(
            "https (issue 7)", command, args.rounds, table, targets, _commands(cases), facts, extra
        )
        data = {
            "benchmark": "https",
            "command": command,
            "rounds": args.rounds,
            "machine": facts,
            "server": server.kind,
            "cases": cases,
            "targets": targets,
            "loadavg_1min": {"before": load_before, "after": load_after},
        }
        written.append(report.write_results("https", md, data))
        _log("\n" + table + "\n\n" + report.targets_list(targets) + "\n")

    _log(f"done in {time.perf_counter() - started:.0f} s; wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
