"""Mutation testing of the code that guards users: does the suite notice a one-line bug there?

For each module below, cosmic-ray (``pip install -e '.[mutation]'``) makes every one-line
mutant it can (a comparison flipped, ``and`` for ``or``, a number changed, a ``not`` added, a
loop that never runs...) and runs that module's tests against each, in a scratch copy of the
repository (the worktree is never touched). A mutant the tests pass with *survived*: either a
test is missing, or the mutant is equivalent (it cannot change what a user sees); each
equivalent survivor is listed, with its reason, in ``benchmarks/mutation_equivalent.md``.

Not part of the suite or CI: it runs the tests once per mutant (hours for every module).

Usage (from the repository root, in the venv)::

    python benchmarks/mutation.py --list                # the modules and their tests
    python benchmarks/mutation.py archive/links.py      # one module (or several)
    python benchmarks/mutation.py                       # every module (long)
    python benchmarks/mutation.py redact.py --limit 20  # a sample of 20 mutants per module
    python benchmarks/mutation.py --recheck redact.py   # its saved survivors against today's tests

It writes ``benchmarks/results/mutation.md`` and ``.json`` (counts, kill rate, seconds per
mutant, each unexplained survivor with its diff) and exits 1 if a survivor is not listed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.md"

# Each module (under core/) and the pytest arguments that select its tests: the tests written
# for its rules (with ``-k`` where a file holds many others), so a mutant costs seconds, not the
# whole suite. ``-x`` stops at the first failure: a killed mutant is cheap, a survivor costs the
# whole selection.
_LINKS_K = "test_bad_archive or links_a or hostile"  # -k matches module names too
MODULES: dict[str, tuple[str, ...]] = {
    "archive/links.py": (
        "tests/test_bad_input.py",
        "tests/test_resolve_file.py",
        "tests/test_builder_hostile_modules.py",
        "-k",
        _LINKS_K,
    ),
    "archive/tarreader.py": ("tests/test_tarreader_rules.py", "tests/test_tarreader.py"),
    "archive/tarheader.py": ("tests/test_tarheader.py",),
    "archive/tarinput.py": ("tests/test_tarinput.py", "tests/test_tarreader.py"),
    "archive/hashing.py": ("tests/test_hashing.py", "tests/test_layer_verify.py"),
    "archive/digest.py": (
        "tests/test_oci_model.py",
        "tests/test_oci_layout.py",
        "tests/test_registry_lies.py",
    ),
    "archive/atomic.py": (
        "tests/test_archive_targets.py",
        "tests/test_save_target.py",
        "tests/test_cache.py",
    ),
    "archive/compression.py": (
        "tests/test_compression.py",
        "tests/test_bad_input.py",  # its gzip, zip, xz and empty cases, through the CLI
        "-k",
        "test_compression or gzip or zip or xz or empty",
    ),
    "archive/streams.py": ("tests/test_streams.py", "tests/test_layer_verify.py", "tests/test_tarreader.py"),
    "archive/tarwrite.py": ("tests/test_tarwrite.py", "tests/test_archives.py", "tests/test_save_target.py"),
    "archive/threads.py": ("tests/test_threads.py", "tests/test_streams.py", "tests/test_layer_verify.py"),
    "lifecycle/checks.py": (
        "tests/test_bad_input.py",
        "tests/test_resolve_file.py",
        "-k",
        "test_bad_archive or resolve_file",
    ),
    "oci/image.py": ("tests/test_image_hook.py", "tests/test_layer_verify.py", "tests/test_oci_layout.py"),
    "transport/request.py": (
        "tests/test_retries.py",
        "tests/test_redirect_credentials.py",
        "tests/test_registry_lies.py",
        "tests/test_https.py",
    ),
    "transport/download.py": ("tests/test_download.py",),
    "transport/registry/client.py": (
        "tests/test_registry_lies.py",
        "tests/test_registry_client.py",
        "tests/test_hostile_registry.py",
        "tests/test_size_limit.py",
    ),
    "transport/registry/wire.py": (
        "tests/test_registry_errors.py",
        "tests/test_hostile_registry.py",
        "tests/test_registry_client.py",
    ),
    "transport/registry/connection.py": ("tests/test_connection.py",),
    "transport/registry/auth.py": (
        "tests/test_challenges.py",
        "tests/test_registry_lies.py",
        "tests/test_hostile_registry.py",
        "tests/test_registry_client.py",
    ),
    "transport/registry/credentials.py": ("tests/test_credentials.py",),
    "transport/registry/reference.py": ("tests/test_registry_reference.py",),
    "transport/registry/quick.py": ("tests/test_registry_quick.py",),
    "transport/registry/image.py": ("tests/test_registry_image.py",),
    "transport/registry/push.py": ("tests/test_push.py",),
    "transport/registry/push_image.py": ("tests/test_push_image.py",),
    "cache/store.py": ("tests/test_cache_store.py", "tests/test_cache.py", "tests/test_disk.py"),
    "cache/records.py": ("tests/test_cache_records.py", "tests/test_cache.py"),
    "cache/locks.py": ("tests/test_locks.py", "tests/test_cache.py"),
    "cache/upkeep.py": ("tests/test_cache_upkeep.py", "tests/test_cache.py", "tests/test_disk.py"),
    "cache/stamps.py": (
        "tests/test_cache_store.py",
        "tests/test_resolve_file.py",
        "tests/test_cache_records.py",
    ),
    "builder/layers.py": ("tests/test_builder_create.py", "tests/test_builder_assemble.py"),
    "builder/labels.py": (
        "tests/test_builder_create.py",
        "tests/test_builder_cnb.py",
        "tests/test_builder_inspect.py::test_extensions_are_listed_with_their_layers_and_order",
        "tests/test_pack_conformance.py",  # every label against the real pack's (30 s)
    ),
    "builder/files.py": (
        "tests/test_builder_files.py",
        "tests/test_builder_config.py",
        "tests/test_builder_create.py",
    ),
    "redact.py": ("tests/test_redact.py", "tests/test_locator.py", "tests/test_long_errors.py"),
}

# Mutants that are the same program by construction, never worth a run: ``x == None`` for
# ``x is None`` (and the reverse) on the values cnbkit compares (None, small ints, str
# literals, enum members), and a decorator removed from a Protocol's property stub.
EXCLUDED_OPERATORS = (
    "core/ReplaceComparisonOperator_Eq_Is$",
    "core/ReplaceComparisonOperator_NotEq_IsNot$",
    "core/ReplaceComparisonOperator_Is_Eq$",
    "core/ReplaceComparisonOperator_IsNot_NotEq$",
)

_PYTEST = "-m pytest -x -q -p no:cacheprovider --timeout 120"
_ROW = re.compile(r"^\| `(?P<module>[^`]+)` \| `(?P<operator>[^`]+)` \| `(?P<line>.*)` \| (?P<why>.+) \|$")


def listed_equivalents() -> dict[tuple[str, str, str], str]:
    """``(module, operator, original line)`` -> why, from the table in mutation_equivalent.md."""
    if not EQUIVALENT.exists():
        return {}
    found = {}
    for row in EQUIVALENT.read_text().splitlines():
        match = _ROW.match(row)
        if match:
            found[(match["module"], match["operator"], match["line"].strip())] = match["why"]
    return found


def scratch_copy(work: Path) -> Path:
    """The repository's files as they are now (committed or not), without caches or venvs."""
    copy = work / "repo"
    skip = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache", "results"
    )
    for name in ("core", "resolvers", "tests", "examples", ".mypy-src", "docs", "tools"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, copy / name, symlinks=True, ignore=skip)
    for name in ("pyproject.toml", "README.md", "plugins.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, copy / name)
    return copy


def scratch_environment(copy: Path) -> dict[str, str]:
    """The environment under which tests (and the CLI they start) import cnbkit from ``copy``."""
    # .mypy-src/cnbkit is a link to core/: first on the path, it makes `import cnbkit` (in the
    # tests and in every CLI subprocess they start) read the copy, ahead of the editable
    # install's finder; cnbkit.resolvers still comes from the worktree (never mutated).
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy / ".mypy-src"), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _cosmic(args: list[str], copy: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name(args[0])
    return subprocess.run(
        ["nice", "-n", "10", str(tool), *args[1:]],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def run_module(
    module: str, tests: tuple[str, ...], work: Path, limit: int | None, seed: int
) -> dict[str, Any]:
    """Mutate ``core/<module>`` in a scratch copy; return the counts and every survivor."""
    copy = scratch_copy(work / module.replace("/", "_"))
    env = scratch_environment(copy)
    where = subprocess.run(
        [sys.executable, "-c", "import cnbkit; print(cnbkit.__file__)"], cwd=copy, env=env,
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(str(copy)), f"the tests would import cnbkit from {where}, not the copy"
    command = f"{sys.executable} {_PYTEST} {shlex.join(tests)}"
    started = time.monotonic()
    baseline = subprocess.run(
        ["nice", "-n", "10", *shlex.split(command)],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    base_seconds = time.monotonic() - started
    if baseline.returncode != 0:
        raise SystemExit(f"error: {module}: its tests fail without a mutant:\n{baseline.stdout[-3000:]}")
    config = copy / "mutation.toml"
    excluded = ", ".join(json.dumps(e) for e in EXCLUDED_OPERATORS)
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "core/{module}"\n'
        f"timeout = {max(60.0, 4 * base_seconds):.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n"
        '[cosmic-ray.distributor]\nname = "local"\n'
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n"
    )
    session = copy / "session.sqlite"
    for step in (
        ["cosmic-ray", "init", str(config), str(session)],
        ["cr-filter-operators", str(session), str(config)],
    ):
        done = _cosmic(step, copy, env)
        if done.returncode != 0:
            raise SystemExit(f"error: {module}: {' '.join(step[:2])} failed:\n{done.stderr[-3000:]}")
    generated = _dump(copy, env, session)
    pending = [item for item, result in generated if result is None]
    in_annotations = [item for item in pending if _in_annotation(copy / "core" / module, item)]
    _skip(session, in_annotations, "in an annotation")
    pending = [item for item in pending if item not in in_annotations]
    if limit is not None and len(pending) > limit:
        # cosmic-ray's job ids are random: sort by the mutation itself, so a seed names one sample
        pending.sort(
            key=lambda item: (
                item["mutations"][0]["operator_name"],
                item["mutations"][0]["start_pos"],
                item["mutations"][0]["occurrence"],
            )
        )
        _skip_all_but(session, pending, random.Random(seed).sample(pending, limit))
    started = time.monotonic()
    done = _cosmic(["cosmic-ray", "exec", str(config), str(session)], copy, env)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {module}: cosmic-ray exec failed:\n{done.stderr[-3000:]}")
    summary = _summary(module, tests, copy, _dump(copy, env, session), seconds, base_seconds)
    summary["generated"] = len(pending)
    summary["sampled"] = limit is not None and len(pending) > limit
    return summary


def _dump(
    copy: Path, env: dict[str, str], session: Path
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    out = _cosmic(["cosmic-ray", "dump", str(session)], copy, env).stdout
    return [tuple(json.loads(line)) for line in out.splitlines() if line.strip()]  # type: ignore[misc]


def _skip_all_but(session: Path, pending: list[dict[str, Any]], keep: list[dict[str, Any]]) -> None:
    kept = {item["job_id"] for item in keep}
    _skip(session, [item for item in pending if item["job_id"] not in kept], "not sampled")


def _skip(session: Path, items: list[dict[str, Any]], why: str) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in items:
            db.set_result(item["job_id"], WorkResult(output=why, worker_outcome=WorkerOutcome.SKIPPED))


_ANNOTATIONS: dict[Path, list[tuple[tuple[int, int], tuple[int, int]]]] = {}


def _in_annotation(path: Path, item: dict[str, Any]) -> bool:
    """Whether the mutation is inside a type annotation or an ``if TYPE_CHECKING:`` block: every
    module of the package has ``from __future__ import annotations``, so annotations are never
    evaluated, and ``X | None`` made ``X * None`` is the same program (mypy, not a test, guards
    them)."""
    import ast

    if path not in _ANNOTATIONS:
        spans = []
        for node in ast.walk(ast.parse(path.read_text())):
            found: list[ast.expr | None] = []
            if isinstance(node, ast.arg):
                found.append(node.annotation)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append(node.returns)
            elif isinstance(node, ast.AnnAssign):
                found.append(node.annotation)
            elif (
                isinstance(node, ast.If)
                and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"
            ):
                spans += [
                    ((n.lineno, n.col_offset), (n.end_lineno or n.lineno, n.end_col_offset or 0))
                    for n in node.body
                ]
            for expr in found:
                if expr is not None and expr.end_lineno is not None and expr.end_col_offset is not None:
                    spans.append(((expr.lineno, expr.col_offset), (expr.end_lineno, expr.end_col_offset)))
        _ANNOTATIONS[path] = spans
    line, col = item["mutations"][0]["start_pos"]
    return any(start <= (line, col) < end for start, end in _ANNOTATIONS[path])


def recheck(summary: dict[str, Any], work: Path) -> dict[str, Any]:
    """``summary`` with each unexplained survivor tried again against the tests as they are now.

    A survivor's saved diff is applied to a scratch copy and the module's tests run: if they
    fail, the mutant is counted killed (``killed_on_recheck``). A diff that no longer applies
    (the source moved on) leaves the survivor as it was: run the module again then. Seconds a
    recheck takes are not added to the run's.
    """
    module = summary["module"]
    if all(v["equivalent"] is not None for v in summary["survivors"]):
        return summary  # nothing to try again
    copy = scratch_copy(work / f"recheck_{module.replace('/', '_')}")
    env = scratch_environment(copy)
    command = [sys.executable, *shlex.split(_PYTEST), *MODULES[module]]
    baseline = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, check=False)
    if baseline.returncode != 0:  # else every mutant would look killed
        raise SystemExit(f"error: {module}: its tests fail without a mutant:\n{baseline.stdout[-3000:]}")
    kept = []
    for survivor in summary["survivors"]:
        lines = survivor["diff"].splitlines(keepends=True)
        start = next((i for i, line in enumerate(lines) if line.startswith("--- a/")), None)
        if survivor["equivalent"] is not None or start is None:
            kept.append(survivor)
            continue
        diff = "".join(lines[start:])

        def patch(direction: str, diff: str = diff) -> int:
            return subprocess.run(
                ["patch", "-p1", "--silent", "--reject-file=-", "--no-backup-if-mismatch", direction],
                input=diff, cwd=copy, text=True, capture_output=True, check=False,
            ).returncode  # fmt: skip

        if patch("--forward"):
            kept.append(survivor)
            continue
        try:
            done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, check=False)
        finally:
            if patch("--reverse"):
                raise SystemExit(f"error: {module}: a rechecked mutant could not be taken back out of {copy}")
        if done.returncode == 0:
            kept.append(survivor)
        else:
            summary["killed"] += 1
            summary["survived"] -= 1
            summary["killed_on_recheck"] = summary.get("killed_on_recheck", 0) + 1
    summary["survivors"] = kept
    summary["kill_rate"] = summary["killed"] / summary["mutants"] if summary["mutants"] else None
    return summary


def _summary(
    module: str,
    tests: tuple[str, ...],
    copy: Path,
    results: list[tuple[dict[str, Any], dict[str, Any] | None]],
    seconds: float,
    base_seconds: float,
) -> dict[str, Any]:
    source = (copy / "core" / module).read_text().splitlines()
    equivalents = listed_equivalents()
    killed = timeouts = survived = listed = 0
    survivors = []
    for item, result in results:
        if result is None or result["worker_outcome"] != "normal":
            continue  # skipped (excluded operator, not sampled) or no mutation possible
        if result["test_outcome"] != "survived":
            killed += 1
            timeouts += result.get("output") == "timeout"
            continue
        survived += 1
        mutation = item["mutations"][0]
        line = source[mutation["start_pos"][0] - 1].strip()
        why = equivalents.get((module, mutation["operator_name"], line))
        listed += why is not None
        survivors.append(
            {
                "line": mutation["start_pos"][0],
                "operator": mutation["operator_name"],
                "source": line,
                "equivalent": why,
                "diff": result.get("diff", ""),
            }
        )
    ran = killed + survived
    return {
        "module": module,
        "tests": list(tests),
        "mutants": ran,
        "killed": killed,
        "killed_by_timeout": timeouts,
        "survived": survived,
        "survived_listed_equivalent": listed,
        "kill_rate": killed / ran if ran else None,
        "seconds": round(seconds, 1),
        "seconds_per_mutant": round(seconds / ran, 2) if ran else None,
        "tests_seconds_unmutated": round(base_seconds, 1),
        "survivors": sorted(survivors, key=lambda s: s["line"]),
    }


def _relisted(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with its survivors matched against mutation_equivalent.md as it is now."""
    equivalents = listed_equivalents()
    for survivor in summary["survivors"]:
        survivor["equivalent"] = equivalents.get(
            (summary["module"], survivor["operator"], survivor["source"])
        )
    summary["survived_listed_equivalent"] = sum(v["equivalent"] is not None for v in summary["survivors"])
    return summary


def _report(summaries: list[dict[str, Any]]) -> str:
    lines = [
        "# Mutation testing",
        "",
        "`python benchmarks/mutation.py " + " ".join(s["module"] for s in summaries) + "` (run piecewise: "
        "each module's latest run)",
        "",
        "| module | mutants | killed | survived (listed equivalent) | kill rate "
        "| kill rate, equivalents aside | s/mutant | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        real = s["mutants"] - s["survived_listed_equivalent"]
        made = s.get("generated", s["mutants"])
        if s.get("sampled", made > s["mutants"]):
            sampled = f" (sample of {made})"
        elif made > s["mutants"]:  # cosmic-ray gave no verdict on the others (an error of its own)
            sampled = f" ({made - s['mutants']} of {made} gave no verdict)"
        else:
            sampled = ""
        if s.get("killed_on_recheck"):
            sampled += f" ({s['killed_on_recheck']} killed on recheck)"
        lines.append(
            f"| `{s['module']}` | {s['mutants']}{sampled} | {s['killed']} | {s['survived']} "
            f"({s['survived_listed_equivalent']}) | {_rate(s['killed'], s['mutants'])} | "
            f"{_rate(s['killed'], real)} | {s['seconds_per_mutant']} | {s['seconds']:.0f} s |"
        )
    mutants = sum(s["mutants"] for s in summaries)
    killed = sum(s["killed"] for s in summaries)
    listed = sum(s["survived_listed_equivalent"] for s in summaries)
    seconds = sum(s["seconds"] for s in summaries)
    lines.append(
        f"| **all** | {mutants} | {killed} | {mutants - killed} ({listed}) | {_rate(killed, mutants)} | "
        f"{_rate(killed, mutants - listed)} | {seconds / mutants if mutants else 0:.2f} | {seconds:.0f} s |"
    )
    unexplained = [(s["module"], v) for s in summaries for v in s["survivors"] if v["equivalent"] is None]
    lines += ["", f"## Survivors not listed in mutation_equivalent.md: {len(unexplained)}", ""]
    for module, survivor in unexplained:
        lines += [
            f"### `{module}` line {survivor['line']}: `{survivor['operator']}`",
            "",
            "```diff",
            survivor["diff"].strip(),
            "```",
            "",
        ]
    return "\n".join(lines) + "\n"


def _rate(killed: int, total: int) -> str:
    return f"{100 * killed / total:.1f}%" if total else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules under core/ (default: all); see --list")
    parser.add_argument("--list", action="store_true", help="show the modules and their tests")
    parser.add_argument("--limit", type=int, help="run a random sample of this many mutants per module")
    parser.add_argument("--seed", type=int, default=24, help="the sample's seed")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies (printed)")
    parser.add_argument(
        "--report", action="store_true", help="only rewrite mutation.md from the saved results and the list"
    )
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="try each unexplained survivor of the saved results again against the tests as they are now",
    )
    args = parser.parse_args(argv)
    if args.report:
        _write([])
        return 0
    if args.list:
        for module, tests in MODULES.items():
            print(f"{module}: {' '.join(tests)}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module {unknown[0]!r}; see --list")
    work = Path(tempfile.mkdtemp(prefix="cnbkit-mutation-"))
    summaries = []
    try:
        saved = (
            {s["module"]: s for s in json.loads((RESULTS / "mutation.json").read_text())}
            if args.recheck
            else {}
        )
        for module in args.modules or list(saved or MODULES):
            if not args.recheck:
                summary = run_module(module, MODULES[module], work, args.limit, args.seed)
            elif module in saved:
                summary = recheck(_relisted(saved[module]), work)
            else:
                continue  # never run: nothing to recheck
            summaries.append(summary)
            print(
                f"{module}: {summary['killed']}/{summary['mutants']} killed, {summary['survived']} survived "
                f"({summary['survived_listed_equivalent']} listed equivalent), {summary['seconds']:.0f} s",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"scratch copies kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    unexplained = sum(s["survived"] - s["survived_listed_equivalent"] for s in summaries)
    _write(summaries)
    return 1 if unexplained else 0


def _write(summaries: list[dict[str, Any]]) -> None:
    """Merge this run's modules into benchmarks/results/mutation.json (a module run again
    replaces its earlier result), and write mutation.md from all of them."""
    import fcntl  # runs of other modules may finish at the same time

    RESULTS.mkdir(exist_ok=True)
    saved = RESULTS / "mutation.json"
    with open(RESULTS / ".mutation.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = {s["module"]: s for s in (json.loads(saved.read_text()) if saved.exists() else [])}
        merged.update((s["module"], s) for s in summaries)
        ordered = [_relisted(merged[m]) for m in MODULES if m in merged]
        saved.write_text(json.dumps(ordered, indent=2) + "\n")
        (RESULTS / "mutation.md").write_text(_report(ordered))
    print(f"wrote {RESULTS / 'mutation.md'}")


if __name__ == "__main__":
    sys.exit(main())
