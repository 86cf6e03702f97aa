"""Start-up, before and after: ``python benchmarks/startup.py [--base REV] [--rounds N]``.

Runs the same commands from two checkouts in one run, alternating: the working tree, and
``REV`` (default: the commit before the package layout, e86d217) extracted with ``git
archive`` into ``benchmarks/work/`` and put first on ``PYTHONPATH``. Both use this
environment's installed dependencies and entry points. Each command is a whole process:

* ``cnbkit --version``;
* ``python -c "import cnbkit"``;
* a warm ``cnbkit resolve FILE -q`` (the lifecycle is validated once first, so the run reads
  only the cache's record).

Prints medians, min-max, and the median of the paired differences (after - before), and
writes ``benchmarks/results/startup.md``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import WORK_DIR, child_env, fresh_dir
from tests.lifecycles import make_lifecycle

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; from cnbkit.cli import main; sys.exit(main())"


def _checkout(rev: str) -> Path:
    """``rev``'s cnbkit as an importable tree: ``DIR/cnbkit`` (core/ + resolvers/)."""
    dest = fresh_dir(WORK_DIR / "startup" / rev)
    archive = subprocess.run(
        ["git", "archive", rev, "core", "resolvers"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    (dest / "core").rename(dest / "cnbkit")
    shutil.rmtree(dest / "cnbkit" / "resolvers", ignore_errors=True)
    (dest / "resolvers").rename(dest / "cnbkit" / "resolvers")
    return dest


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="e86d217", help="the 'before' revision")
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    work = fresh_dir(WORK_DIR / "startup-run")
    archive = make_lifecycle(work / "lifecycle.tgz")
    trees = {"before": _checkout(args.base), "after": ROOT / "core"}
    envs = {}
    for label, tree in trees.items():
        extra = {"CNBKIT_CACHE_DIR": str(work / f"cache-{label}")}
        if label == "before":
            extra["PYTHONPATH"] = str(tree)
        envs[label] = child_env(**extra)
    commands = {
        "cnbkit --version": [sys.executable, "-c", CLI, "--version"],
        "import cnbkit": [sys.executable, "-c", "import cnbkit"],
        "warm resolve FILE -q": [sys.executable, "-c", CLI, "resolve", str(archive), "-q"],
    }
    for label in trees:  # warm the caches, and prove each tree is the one imported
        subprocess.run(commands["warm resolve FILE -q"], env=envs[label], check=True)
        where = subprocess.run(
            [sys.executable, "-c", "import cnbkit; print(cnbkit.__file__)"],
            env=envs[label],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert where.startswith(str(trees[label] if label == "before" else ROOT)), (label, where)
    times: dict[tuple[str, str], list[float]] = {(c, lbl): [] for c in commands for lbl in trees}
    for round_ in range(args.rounds):
        for name, argv in commands.items():
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for label in order:
                times[(name, label)].append(_time(argv, envs[label]))
    lines = [
        f"# Start-up: {args.base} (before) vs the working tree (after), {args.rounds} alternating rounds",
        "",
        "| command | before median (min-max) | after median (min-max) | paired after - before, median |",
        "|---|---|---|---|",
    ]
    for name in commands:
        before, after = times[(name, "before")], times[(name, "after")]
        diff = statistics.median(a - b for a, b in zip(after, before, strict=True))
        lines.append(
            f"| `{name}` | {statistics.median(before) * 1000:.0f} ms ({min(before) * 1000:.0f}-"
            f"{max(before) * 1000:.0f}) | {statistics.median(after) * 1000:.0f} ms ({min(after) * 1000:.0f}-"
            f"{max(after) * 1000:.0f}) | {diff * 1000:+.0f} ms |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results" / "startup.md").write_text(text)


if __name__ == "__main__":
    main()
