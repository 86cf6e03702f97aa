"""Five one-line bugs in the code that guards users, each applied and its test run.

Each mutation below once survived the whole suite; a test was written for each. This applies
them one at a time to a scratch copy of the repository (as ``mutation.py`` does: the worktree
is never touched), runs the test written for it without and with the mutation, and prints one
row each. It exits 1 if a mutation survives, or if its line is gone from the source (then the
mutation is out of date: write it against the new line).

Usage (from the repository root, in the venv)::

    python benchmarks/mutation_known.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):  # run as a script: the repository root on the path, as its siblings do
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.mutation import scratch_copy, scratch_environment


class Known(NamedTuple):
    """A mutation: ``old`` (found once in ``module``) made ``new``; ``tests`` must catch it."""

    what: str
    module: str
    old: str
    new: str
    tests: tuple[str, ...]


KNOWN = (
    Known(
        "the per-step check of a link's walk removed",
        "core/archive/links.py",
        "if where not in self._passes and not under(where, self._top):",
        "if False:",
        ("tests/test_bad_input.py", "-k", "coming or buildpacks"),
    ),
    Known(
        "a manifest by digest checked against the registry's Docker-Content-Digest first",
        "core/transport/registry/client.py",
        "expected = ref.digest or (self._digest_header(ref, header) if header else None)",
        "expected = (self._digest_header(ref, header) if header else None) or ref.digest",
        ("tests/test_registry_lies.py", "-k", "by_digest or sha512"),
    ),
    Known(
        "an origin of scheme and host only (a token kept on another port)",
        "core/transport/request.py",
        'return parts.scheme, (parts.hostname or ""), parts.port',
        'return parts.scheme, (parts.hostname or ""), None',
        ("tests/test_registry_lies.py", "-k", "another_port"),
    ),
    Known(
        "a plugin image's layer read past its descriptor's size",
        "core/oci/image.py",
        "if self._seen > self._size:",
        "if False:",
        ("tests/test_image_hook.py", "-k", "longer_than"),
    ),
    Known(
        "lifecycle.api in the builder metadata the newest API, not pack's earliest",
        "core/builder/labels.py",
        "return min(versions, key=",
        "return max(versions, key=",
        ("tests/test_builder_create.py", "-k", "bundled_example"),
    ),
)


def _pytest(copy: Path, env: dict[str, str], tests: tuple[str, ...]) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=copy, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    failed = [line.removeprefix("FAILED ").split(" - ")[0] for line in lines if line.startswith("FAILED")]
    return done.returncode, ", ".join(failed) or (lines[-1] if lines else done.stderr[-300:])


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="cnbkit-mutation-known-"))
    bad = 0
    try:
        copy = scratch_copy(work)
        env = scratch_environment(copy)
        print("| mutation | module | unmutated | mutated: failed |\n|---|---|---|---|")
        for known in KNOWN:
            path = copy / known.module
            source = path.read_text()
            if source.count(known.old) != 1:
                print(f"| {known.what} | `{known.module}` | line not found once: out of date | - |")
                bad += 1
                continue
            clean, clean_says = _pytest(copy, env, known.tests)
            path.write_text(source.replace(known.old, known.new))
            try:
                mutated, mutated_says = _pytest(copy, env, known.tests)
            finally:
                path.write_text(source)
            bad += clean != 0 or mutated == 0
            verdict = mutated_says if mutated else f"SURVIVED ({mutated_says})"
            print(f"| {known.what} | `{known.module}` | {clean_says} | {verdict} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
