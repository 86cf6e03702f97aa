"""The ``file`` benchmark (issue 2): a local lifecycle ``.tgz``, cnbkit versus ``tar -xzf``.

Per round, alternating which goes first:

* ``cnbkit resolve FILE.tgz --save OUT.tar -q`` with a fresh, empty ``CNBKIT_CACHE_DIR``
  (cold: read, hash, inflate, check every entry, write the normalised layer), then, untimed
  for the pair, ``cnbkit resolve FILE.tgz -q`` with the same cache (warm: the stat stamp
  gives the digest, the cached metadata gives the lifecycle; the archive is not read).
* ``tar -xzf FILE.tgz -C FRESHDIR`` (inflate and unpack, no checks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .harness import (
    MB,
    WORK_DIR,
    Contender,
    RunFailed,
    Sample,
    child_env,
    cnbkit_command,
    fresh_dir,
    paired_ratios,
    remove,
    run_paired,
    run_timed,
    summarize,
)
from .workload import Input

__all__ = ["COLD", "PEER", "WARM", "run_file"]

COLD = "cnbkit cold"
WARM = "cnbkit warm"
PEER = "tar -xzf"


def _case(inp: Input, rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    runs = WORK_DIR / "runs" / "file"
    cnbkit_dir, tar_dir = runs / "cnbkit", runs / "tar"
    cache, out = cnbkit_dir / "cache", cnbkit_dir / "out" / "layer.tar"
    env = child_env(CNBKIT_CACHE_DIR=str(cache))
    cli = cnbkit_command()
    cold_argv = [*cli, "resolve", str(inp.path), "--save", str(out), "-q"]
    warm_argv = [*cli, "resolve", str(inp.path), "-q"]
    tar_argv = ["tar", "-xzf", str(inp.path), "-C", str(tar_dir)]
    warm: list[Sample] = []

    def prepare_cnbkit() -> None:
        fresh_dir(cnbkit_dir)
        out.parent.mkdir()

    def check_cnbkit() -> None:
        if not out.is_file() or out.stat().st_size < inp.size_mb * MB:
            raise RunFailed(f"cnbkit left no complete layer at {out}")

    def layers() -> set[tuple[str, int, int]]:
        # A cold --save also links its layer into the cache; a warm run must leave it as it is.
        return {(str(p), p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.glob("lifecycles/*/layer.tar")}

    def warm_run(recorded: bool) -> None:
        before = layers()
        sample = run_timed(warm_argv, env=env)
        if layers() != before:
            raise RunFailed("the warm run re-read the archive (it wrote a layer into the cache)")
        if recorded:
            warm.append(sample)

    def check_tar() -> None:
        binary = tar_dir / "lifecycle" / "lifecycle"
        if not binary.is_file() or binary.stat().st_size != inp.size_mb * MB * 2 // 3:
            raise RunFailed(f"tar did not unpack {binary} completely")

    def shown(argv: Sequence[str]) -> str:
        text = " ".join(argv).replace(str(inp.path), "FILE.tgz").replace(str(out), "OUT.tar")
        return text.replace(str(tar_dir), "FRESHDIR")

    contenders = [
        Contender(
            COLD,
            shown(["cnbkit", *cold_argv[len(cli) :]]),
            prepare_cnbkit,
            lambda: run_timed(cold_argv, env=env),
            check_cnbkit,
            warm_run,
        ),
        Contender(
            PEER,
            shown(tar_argv),
            lambda: fresh_dir(tar_dir),
            lambda: run_timed(tar_argv, env=env),
            check_tar,
        ),
    ]
    log(f"  file {inp.label}: {inp.path.name}, {inp.tgz_bytes / MB:.1f} MB")
    samples = run_paired(contenders, rounds, log=log)
    remove(runs)
    return {
        **inp.record(),
        "contenders": {
            COLD: summarize(samples[COLD], contenders[0].command),
            PEER: summarize(samples[PEER], contenders[1].command),
            WARM: summarize(warm, shown(["cnbkit", *warm_argv[len(cli) :]])),
        },
        "ratios": {f"{COLD} / {PEER}": paired_ratios(samples[COLD], samples[PEER])},
    }


def run_file(inputs: Sequence[Input], rounds: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run the ``file`` benchmark for every input; return one record per input."""
    return [_case(inp, rounds, log) for inp in inputs]
