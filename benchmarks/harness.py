"""The measuring machinery every benchmark shares.

* Whole processes are timed with :func:`time.perf_counter` from just before the first
  ``fork``/``exec`` to the moment the last process of the command was reaped.
* Peak memory is each process's ``ru_maxrss``, taken through GNU ``/usr/bin/time -f %M``
  wrapped around every process. Not :func:`os.wait4` on our own children: Linux adds the
  RSS high-water mark of the image a child had *before* ``exec`` to its ``ru_maxrss``, and a
  child forked (or vforked) from this Python process starts out as large as it is (15-40 MB),
  so ``tar`` would "peak" at the harness's size. ``time`` is a 1 MB process, so its children
  start small, and it reports ``wait4`` of its child, which covers the child's waited-for
  descendants too (``tar -z`` includes the ``gzip`` it spawns). For a pipeline
  (``curl | tar``) each process gets its own ``time`` and the largest peak is reported (each
  one is kept in the JSON). Without GNU ``time``, :func:`os.wait4` is used and the figures
  are upper bounds (the report says so).
* Contenders run alternately and paired: round ``i`` runs every contender once, the order
  rotating from round to round, and ratios are taken within a round.
* Every contender's previous output is deleted, and dirty pages written back (``sync``),
  *before* its timed region starts: deletion and writeback of earlier runs are never timed
  and never spill into a later run.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.environment import NETWORK_ENV

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work"
RESULTS_DIR = BENCH_DIR / "results"
MB = 1_000_000  # sizes and memory are in decimal megabytes throughout

_DROPPED_ENV = NETWORK_ENV


class RunFailed(RuntimeError):
    """A benchmarked command exited non-zero or produced the wrong output."""


@dataclass
class Sample:
    """One timed run of a command (or pipeline).

    Attributes:
        wall: whole-process wall time in seconds.
        rss_kib: the largest ``ru_maxrss`` (KiB) among the command's processes.
        rss_each: ``ru_maxrss`` (KiB) of each process, in pipeline order.
    """

    wall: float
    rss_kib: int
    rss_each: list[int] = field(default_factory=list)

    @property
    def rss_mb(self) -> float:
        """Peak RSS in decimal megabytes."""
        return self.rss_kib * 1024 / MB


PYCACHE = WORK_DIR / "pycache"
BYTECODE = (
    "cached, as in an installed cnbkit: PYTHONPYCACHEPREFIX=benchmarks/work/pycache, "
    "the caller's PYTHONDONTWRITEBYTECODE dropped; the warm-up round compiles"
)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for benchmarked commands; ``extra`` is added last.

    No proxies, no CA overrides and no cnbkit settings from the caller; loopback is never
    proxied. Bytecode is cached in ``work/pycache`` as an installed package's is (pip
    compiles at install time): a caller's ``PYTHONDONTWRITEBYTECODE=1`` would otherwise make
    every run compile cnbkit's modules from source, 25-50 ms here, which no user pays.
    """
    dropped = (*_DROPPED_ENV, "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("CNBKIT_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra)
    return env


def cnbkit_command() -> list[str]:
    """How a user runs cnbkit: the console script installed beside this interpreter.

    The script next to ``sys.executable`` is used rather than whatever ``PATH`` finds first
    (under pyenv that is a shell shim that adds ~50 ms to every run).
    """
    script = Path(sys.executable).parent / "cnbkit"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from cnbkit.cli import run; run()"]


def exit_on_sigterm() -> None:
    """Turn SIGTERM into :class:`SystemExit`, so that ``finally`` blocks stop the server."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def fresh_dir(path: Path) -> Path:
    """Delete ``path`` if it exists, create it empty, and flush dirty pages (untimed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.sync()
    return path


def remove(path: Path) -> None:
    """Delete a file or directory tree if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _gnu_time() -> str | None:
    path = "/usr/bin/time"
    if not os.access(path, os.X_OK):
        return None
    done = subprocess.run([path, "-f", "%M", "true"], capture_output=True, text=True, check=False)
    return path if done.returncode == 0 and done.stderr.strip().isdigit() else None


GNU_TIME = _gnu_time()
RSS_METHOD = (
    "ru_maxrss of each process via GNU /usr/bin/time -f %M (max over a pipeline's processes)"
    if GNU_TIME
    else "ru_maxrss via os.wait4 of each child (upper bound: includes the harness's RSS at fork)"
)


def _reap(proc: subprocess.Popen[bytes], rss_file: Path | None) -> int:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if rss_file is None:
        return int(usage.ru_maxrss)
    lines = rss_file.read_text().split()
    return int(lines[-1]) if lines and lines[-1].isdigit() else int(usage.ru_maxrss)


def run_pipeline(
    commands: Sequence[Sequence[str]], *, env: Mapping[str, str], cwd: Path | None = None
) -> Sample:
    """Run ``commands`` joined by pipes (one command is a pipeline of one) and time it.

    Raises:
        RunFailed: any process exited non-zero (its stderr is in the message).
    """
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="cnbkit-bench-run-") as tmp, contextlib.ExitStack() as stack:
        errors = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
        rss_files = [Path(tmp) / f"rss{i}" if GNU_TIME else None for i in range(len(commands))]
        argvs = [
            [GNU_TIME, "-f", "%M", "-o", str(rss), *argv] if GNU_TIME and rss else list(argv)
            for argv, rss in zip(commands, rss_files, strict=True)
        ]
        stdin: Any = subprocess.DEVNULL
        try:
            start = time.perf_counter()
            for i, argv in enumerate(argvs):
                last = i == len(argvs) - 1
                proc = subprocess.Popen(
                    argv,
                    stdin=stdin,
                    stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                    stderr=errors[i],
                    env=dict(env),
                    cwd=cwd,
                )
                if stdin is not subprocess.DEVNULL:
                    stdin.close()  # the next process holds the pipe now
                stdin = proc.stdout
                procs.append(proc)
            rss = [_reap(proc, rss_file) for proc, rss_file in zip(procs, rss_files, strict=True)]
            wall = time.perf_counter() - start
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    proc.wait()
        for command, proc, err in zip(commands, procs, errors, strict=True):
            if proc.returncode != 0:
                err.seek(0)
                message = err.read().decode(errors="replace").strip()
                raise RunFailed(f"{' '.join(command)} exited {proc.returncode}: {message[-2000:]}")
    return Sample(wall=wall, rss_kib=max(rss), rss_each=rss)


def run_timed(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> Sample:
    """Run one command and time it (see :func:`run_pipeline`)."""
    return run_pipeline([argv], env=env, cwd=cwd)


@dataclass
class Contender:
    """One command in a paired comparison.

    Attributes:
        name: the label in tables (``cnbkit cold``, ``tar -xzf``).
        command: the command line as shown in the report.
        prepare: untimed: delete the previous output, make fresh directories.
        run: the timed part; returns the sample.
        check: untimed, after the run: verify the output (raise :class:`RunFailed`).
        follow_up: after ``check``, outside this contender's timed region: extra runs that
            need its state (a warm run after a cold one). Called with ``True`` in recorded
            rounds and ``False`` in the warm-up; it keeps its own samples.
    """

    name: str
    command: str
    prepare: Callable[[], object]
    run: Callable[[], Sample]
    check: Callable[[], None] = lambda: None
    follow_up: Callable[[bool], None] = lambda recorded: None


def run_paired(
    contenders: Sequence[Contender], rounds: int, *, log: Callable[[str], None]
) -> dict[str, list[Sample]]:
    """One untimed warm-up round, then ``rounds`` rounds of every contender, order rotating.

    Round ``i`` starts with contender ``i % n``: with two contenders they alternate which
    goes first; with three, each leads every third round.
    """
    samples: dict[str, list[Sample]] = {c.name: [] for c in contenders}
    for c in contenders:  # warm-up: page cache, server, first-run effects; not recorded
        c.prepare()
        c.run()
        c.check()
        c.follow_up(False)
    for i in range(rounds):
        k = i % len(contenders)
        order = [*contenders[k:], *contenders[:k]]
        parts = []
        for c in order:
            c.prepare()
            sample = c.run()
            c.check()
            samples[c.name].append(sample)
            c.follow_up(True)
            parts.append(f"{c.name} {sample.wall:.2f}s")
        log(f"    round {i + 1}/{rounds}: " + ", ".join(parts))
    return samples


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of a series."""

    median: float
    lo: float
    hi: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (at least one)."""
        return cls(statistics.median(values), min(values), max(values))

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        """``1.23 (1.10-1.40)`` with an optional unit after the median."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.median)}{unit} ({f.format(self.lo)}\u2013{f.format(self.hi)})"

    def to_json(self) -> dict[str, float]:
        """``{"median", "min", "max"}``."""
        return {"median": self.median, "min": self.lo, "max": self.hi}


def summarize(samples: Sequence[Sample], command: str) -> dict[str, Any]:
    """The JSON record of one contender: every sample, then the spreads."""
    return {
        "command": command,
        "wall_s": [round(s.wall, 4) for s in samples],
        "rss_kib": [s.rss_kib for s in samples],
        "rss_kib_each_process": [s.rss_each for s in samples],
        "wall": Spread.of([s.wall for s in samples]).to_json(),
        "peak_rss_mb": round(max(s.rss_mb for s in samples), 1),
    }


def paired_ratios(num: Sequence[Sample], den: Sequence[Sample]) -> dict[str, Any]:
    """Round-by-round ``num / den`` wall-time ratios and their spread."""
    values = [a.wall / b.wall for a, b in zip(num, den, strict=True)]
    return {"values": [round(v, 4) for v in values], **Spread.of(values).to_json()}


def _first_line(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    return 0.0


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False, timeout=10
        )
    except OSError:
        return ""
    return done.stdout.strip()


def _source_state() -> tuple[str, str]:
    """The commit, and what differs from it in the code being measured (core/, resolvers/)."""
    head = _git("rev-parse", "--short", "HEAD") or "?"
    changed = _git("status", "--porcelain", "--", "core", "resolvers").splitlines()
    digest = hashlib.sha256()
    for folder in ("core", "resolvers"):
        for path in sorted((REPO / folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    detail = ", ".join(line[3:] for line in changed) if changed else "none"
    return head, f"sha256 {digest.hexdigest()[:12]} of core/ and resolvers/ *.py; uncommitted: {detail}"


def machine_facts(tools: Mapping[str, Sequence[str]] = {}) -> dict[str, Any]:
    """What the figures depend on: cores, CPU, memory, Python, kernel, tool versions, date."""
    from importlib.metadata import PackageNotFoundError, version

    def pkg(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    head, source = _source_state()
    facts: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": _cpu_model(),
        "mem_total_gb": _mem_total_gb(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "cnbkit": pkg("cnbkit"),
        "cnbkit_commit": head,
        "cnbkit_source": source,
        "cnbkit_command": " ".join(cnbkit_command()),
        "isal": pkg("isal"),
        "requests": pkg("requests"),
        "peak_rss_method": RSS_METHOD,
        "python_bytecode": BYTECODE,
        "loadavg_at_start": _loadavg(),
    }
    for name, argv in tools.items():
        facts[name] = _first_line(argv)
    return facts


def fmt_mb(kib: int) -> str:
    """KiB as decimal megabytes, one decimal."""
    return f"{kib * 1024 / MB:.1f}"
