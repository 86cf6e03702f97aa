"""The ``https`` benchmark (issue 7): a lifecycle ``.tgz`` over HTTPS from a loopback nginx.

Per round, the order rotating:

* ``cnbkit resolve URL --ca-cert CA -q`` with a fresh, empty cache (cold: download, hash,
  cache the blob, inflate, check, write the layer into the cache); then, outside the others'
  timed regions, the same command again with the cache kept (warm: one conditional request
  answered 304, the lifecycle from the cached metadata). The server's access log must show
  exactly one ``200`` for the cold run and exactly one ``304`` for the warm one.
* ``curl -sS --cacert CA URL | tar -xzf - -C FRESHDIR``: the same work without cnbkit's
  checks, hashing or cache (download, inflate, unpack).
* ``curl -sS --cacert CA -o FILE URL``: the network floor.
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
    run_pipeline,
    run_timed,
    summarize,
)
from .servers import LogLine, Server
from .workload import Input

__all__ = ["COLD", "CURL", "CURL_TAR", "WARM", "run_https"]

COLD = "cnbkit cold"
WARM = "cnbkit warm"
CURL_TAR = "curl | tar -xzf"
CURL = "curl -o"


def _describe(lines: Sequence[LogLine]) -> str:
    return ", ".join(f"{x.method} {x.status} ({x.body_bytes} B)" for x in lines) or "no request"


def _case(inp: Input, server: Server, rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    runs = WORK_DIR / "runs" / "https"
    cnbkit_dir, tar_dir, curl_dir = runs / "cnbkit", runs / "curl-tar", runs / "curl"
    cache = cnbkit_dir / "cache"
    env = child_env(CNBKIT_CACHE_DIR=str(cache))
    url, ca = server.url(inp.path.name), str(server.ca)
    cli = cnbkit_command()
    cnbkit_argv = [*cli, "resolve", url, "--ca-cert", ca, "-q"]
    curl_tar = [["curl", "-sS", "--cacert", ca, url], ["tar", "-xzf", "-", "-C", str(tar_dir)]]
    curl_o = ["curl", "-sS", "--cacert", ca, "-o", str(curl_dir / inp.path.name), url]
    warm: list[Sample] = []
    cold_requests: list[str] = []
    warm_requests: list[str] = []
    mark = [0]

    def prepare_cnbkit() -> None:
        fresh_dir(cnbkit_dir)
        mark[0] = server.log_mark()

    def check_cnbkit() -> None:
        lines = server.lines_since(mark[0])
        if [(x.status, x.body_bytes) for x in lines] != [(200, inp.tgz_bytes)]:
            raise RunFailed(f"cold run: expected one 200 of {inp.tgz_bytes} B, server saw {_describe(lines)}")
        blobs = list(cache.glob("blobs/sha256/*"))
        if len(blobs) != 1 or blobs[0].stat().st_size != inp.tgz_bytes:
            raise RunFailed(f"cold run: the cache does not hold the blob ({blobs})")
        layers = list(cache.glob("lifecycles/*/layer.tar"))
        if len(layers) != 1 or layers[0].stat().st_size < inp.size_mb * MB:
            raise RunFailed("cold run: the cache does not hold the layer")
        cold_requests.append(_describe(lines))

    def warm_run(recorded: bool) -> None:
        before = server.log_mark()
        sample = run_timed(cnbkit_argv, env=env)
        lines = server.lines_since(before)
        if [x.status for x in lines] != [304]:
            raise RunFailed(f"warm run: expected exactly one 304, server saw {_describe(lines)}")
        if recorded:
            warm.append(sample)
            warm_requests.append(_describe(lines))

    def check_tar() -> None:
        binary = tar_dir / "lifecycle" / "lifecycle"
        if not binary.is_file() or binary.stat().st_size != inp.size_mb * MB * 2 // 3:
            raise RunFailed(f"curl | tar did not unpack {binary} completely")

    def check_curl() -> None:
        got = curl_dir / inp.path.name
        if not got.is_file() or got.stat().st_size != inp.tgz_bytes:
            raise RunFailed(f"curl -o did not download {got} completely")

    def shown(argv: Sequence[str]) -> str:
        text = " ".join(argv).replace(ca, "CA").replace(url, "https://127.0.0.1:PORT/FILE.tgz")
        return text.replace(str(tar_dir), "FRESHDIR").replace(str(curl_dir / inp.path.name), "FILE")

    contenders = [
        Contender(
            COLD,
            shown(["cnbkit", *cnbkit_argv[len(cli) :]]),
            prepare_cnbkit,
            lambda: run_timed(cnbkit_argv, env=env),
            check_cnbkit,
            warm_run,
        ),
        Contender(
            CURL_TAR,
            " | ".join(shown(argv) for argv in curl_tar),
            lambda: fresh_dir(tar_dir),
            lambda: run_pipeline(curl_tar, env=env),
            check_tar,
        ),
        Contender(
            CURL,
            shown(curl_o),
            lambda: fresh_dir(curl_dir),
            lambda: run_timed(curl_o, env=env),
            check_curl,
        ),
    ]
    log(f"  https {inp.label}: {url}")
    samples = run_paired(contenders, rounds, log=log)
    remove(runs)
    return {
        **inp.record(),
        "url": url,
        "contenders": {
            COLD: summarize(samples[COLD], contenders[0].command),
            CURL_TAR: summarize(samples[CURL_TAR], contenders[1].command),
            CURL: summarize(samples[CURL], contenders[2].command),
            WARM: summarize(warm, contenders[0].command),
        },
        "ratios": {
            f"{COLD} / {CURL_TAR}": paired_ratios(samples[COLD], samples[CURL_TAR]),
            f"{COLD} / {CURL}": paired_ratios(samples[COLD], samples[CURL]),
        },
        "server_log": {"cold": cold_requests, "warm": warm_requests},
    }


def run_https(
    inputs: Sequence[Input], server: Server, rounds: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Run the ``https`` benchmark for every input; return one record per input."""
    return [_case(inp, server, rounds, log) for inp in inputs]
