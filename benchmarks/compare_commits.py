"""Two builds of cnbkit side by side: paired, alternating runs of the same resolve.

For "did this change make anything slower?": the older build runs from its own tree and venv
(for example ``git worktree add /tmp/base COMMIT`` and a venv there), the newer one from this
checkout. Each round runs both, in alternating order, with a fresh cache for a cold run (and
the same warm cache for a warm one); it reports medians and the paired ratio new/base of wall
and CPU time (user + sys of the child). CPU time is the steadier figure on a busy machine.

    python benchmarks/compare_commits.py --base /tmp/base/.venv/bin/python --rounds 7 \\
        benchmarks/work/l30.tgz benchmarks/work/l300.tgz

The inputs are any URIs ``cnbkit resolve`` takes; ``benchmarks/run.py`` generates the ``.tgz``
files in ``benchmarks/work/``. With ``--builder``, the inputs are builder.toml files instead,
and each run is ``cnbkit builder create oci:DIR:bench --config INPUT`` to a fresh layout (cold:
an empty cache; warm: the cache the cold run left):

    python benchmarks/compare_commits.py --base /tmp/base/.venv/bin/python --builder \\
        examples/builder.toml
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(python: str, argv: list[str], cache: Path) -> tuple[float, float]:
    env = dict(os.environ, CNBKIT_CACHE_DIR=str(cache))
    start = time.perf_counter()
    # From a neutral directory: ``python -m`` puts the working directory first on sys.path,
    # and a checkout's own *.egg-info would lend one build the other's entry points.
    process = subprocess.Popen([python, "-m", "cnbkit", *argv], env=env, cwd=cache.parent)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{python} -m cnbkit {' '.join(argv)} failed ({status})")
    return wall, usage.ru_utime + usage.ru_stime


def _report(name: str, base: list[tuple[float, float]], new: list[tuple[float, float]]) -> None:
    for index, kind in enumerate(("wall", "cpu")):
        b, n = [x[index] for x in base], [x[index] for x in new]
        ratios = [y / x for x, y in zip(b, n, strict=True)]
        print(
            f"{name} {kind}: base {statistics.median(b):.3f} s, new {statistics.median(n):.3f} s, "
            f"paired new/base {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print one line per input, mode and measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the python of the older build's venv")
    parser.add_argument("--new", default=sys.executable, help="the python of the newer build (this one)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--builder", action="store_true", help="inputs are builder.toml files")
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args(argv)
    builds = {"base": args.base, "new": args.new}
    with tempfile.TemporaryDirectory(prefix="cnbkit-compare-") as tmp:
        work = Path(tmp)
        for uri in [os.path.abspath(i) if os.path.exists(i) else i for i in args.inputs]:
            cold: dict[str, list[tuple[float, float]]] = {name: [] for name in builds}
            warm: dict[str, list[tuple[float, float]]] = {name: [] for name in builds}
            for round_ in range(args.rounds):
                order = list(builds) if round_ % 2 == 0 else list(reversed(builds))
                for name in order:
                    cache = work / f"cache-{name}"
                    shutil.rmtree(cache, ignore_errors=True)
                    if args.builder:
                        for runs in (cold, warm):
                            out = work / f"out-{name}"
                            shutil.rmtree(out, ignore_errors=True)
                            argv = ["builder", "create", f"oci:{out}:bench", "--config", uri, "-q"]
                            runs[name].append(_run(builds[name], argv, cache))
                        continue
                    save = str(work / f"layer-{name}.tar")
                    cold[name].append(_run(builds[name], ["resolve", uri, "--save", save, "-q"], cache))
                    warm[name].append(_run(builds[name], ["resolve", uri, "-q"], cache))
            label = Path(uri).name or uri
            _report(f"{label} cold" + ("" if args.builder else " --save"), cold["base"], cold["new"])
            _report(f"{label} warm", warm["base"], warm["new"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
