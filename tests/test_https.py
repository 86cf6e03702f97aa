"""The ``https`` resolver end to end, against a real TLS server on loopback.

Every test drives ``cnbkit resolve`` in a subprocess (or ``cnbkit.resolve_lifecycle``) and
checks what the server saw (requests, headers, body bytes) and what the cache holds.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import cnbkit
import pytest

from tests.conftest import CLI, digest_of, one_line_error, run_cli
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    http_server_fixture,
    https_server_b_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.lifecycles import big_lifecycle, descriptor, lifecycle_entries, make_lifecycle, write_tar

PATH = "/releases/lifecycle.tgz"


def serve_lifecycle(server: HTTPSServer, tmp_path: Path, path: str = PATH, **kwargs: Any) -> bytes:
    """Put a fresh lifecycle .tgz at ``path`` on ``server``; return its bytes."""
    data = make_lifecycle(
        tmp_path / f"served-{len(server.paths())}-{path.strip('/').replace('/', '_')}", **kwargs
    )
    content = data.read_bytes()
    server.add(path, content)
    return content


def serve_big(server: HTTPSServer, tmp_path: Path, size: int, path: str = PATH) -> bytes:
    """Put a lifecycle .tgz of about ``size`` incompressible bytes at ``path``."""
    content = big_lifecycle(tmp_path / "big.tgz", size).read_bytes()
    server.add(path, content)
    return content


def resolve_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``cnbkit resolve ARGS --json``, asserted successful; the parsed output."""
    result = run_cli("resolve", *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def blobs(cache_dir: Path) -> list[Path]:
    """The blob files in the cache."""
    return sorted(p for p in (cache_dir / "blobs").rglob("*") if p.is_file())


def assert_nothing_cached(cache_dir: Path) -> None:
    """No blob, no record, no lifecycle and no temp file was left behind."""
    assert blobs(cache_dir) == []
    assert list((cache_dir / "records").glob("*")) == []
    assert list((cache_dir / "lifecycles").glob("*")) == []
    assert list((cache_dir / "tmp").glob("*")) == []


def assert_tmp_empty(cache_dir: Path) -> None:
    """Nothing is left in the cache's tmp/."""
    assert list((cache_dir / "tmp").glob("*")) == []


# -- 1. TLS trust ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "--ca-cert"])
def test_resolve_over_https_with_the_test_ca(
    how: str, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_lifecycle(https_server, tmp_path)
    args = ["--ca-cert", str(ca_bundle)] if how == "--ca-cert" else []
    env = {} if how == "--ca-cert" else {how: str(ca_bundle)}
    data = resolve_json(https_server.url(PATH), *args, env=env)
    assert data["resolver"] == "https"
    assert data["digest"] == digest_of(content)
    assert data["size"] == len(content)
    assert data["version"] == "0.21.0"
    assert [(r.path, r.status) for r in https_server.log] == [(PATH, 200)]
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]
    assert_tmp_empty(cache_dir)


def test_without_the_ca_certificate_verification_fails(
    https_server: HTTPSServer, tmp_path: Path, cache_dir: Path
) -> None:
    serve_lifecycle(https_server, tmp_path)
    error = one_line_error(run_cli("resolve", https_server.url(PATH), "--timeout", "5"))
    assert "certificate verification failed" in error
    assert https_server.url(PATH) in error
    assert "--ca-cert" in error
    assert https_server.log == []  # no request ever went over an unverified connection
    assert https_server.tls_failures >= 1
    assert_nothing_cached(cache_dir)


def test_api_resolves_over_https(https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path) -> None:
    content = serve_lifecycle(https_server, tmp_path, windows=True)
    lifecycle = cnbkit.resolve_lifecycle(
        https_server.url(PATH), ca_cert=ca_bundle, platform="windows/amd64", timeout=5
    )
    assert lifecycle.blob.digest == digest_of(content)
    assert lifecycle.blob.resolver == "https"
    assert "analyzer.exe" in lifecycle.binaries


# -- 2. revalidation and --offline -------------------------------------------------------------


def test_second_resolve_revalidates_with_etag_then_works_offline(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_lifecycle(https_server, tmp_path)
    env = {"SSL_CERT_FILE": str(ca_bundle)}
    first = resolve_json(https_server.url(PATH), env=env)
    second = resolve_json(https_server.url(PATH), env=env)
    assert first["digest"] == second["digest"] == digest_of(content)
    log = https_server.log
    assert [r.status for r in log] == [200, 304]
    assert log[0].body_bytes == len(content)
    assert log[1].headers["if-none-match"] == HTTPSServer.etag_of(content)
    assert log[1].body_bytes == 0
    assert https_server.body_bytes() == len(content)

    https_server.stop()
    offline = resolve_json(https_server.url(PATH), "--offline", env=env)
    assert offline["digest"] == digest_of(content)
    env_offline = resolve_json(https_server.url(PATH), env={**env, "CNBKIT_OFFLINE": "1"})
    assert env_offline["digest"] == digest_of(content)
    # Without --offline, the stopped server is a clear connection failure, not a stale answer.
    error = one_line_error(run_cli("resolve", https_server.url(PATH), "--timeout", "2", env=env))
    assert "connection failed" in error and https_server.url(PATH) in error
    assert len(blobs(cache_dir)) == 1


def test_offline_with_an_empty_cache_is_a_clear_error(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    serve_lifecycle(https_server, tmp_path)
    result = run_cli("resolve", https_server.url(PATH), "--offline", "--ca-cert", str(ca_bundle))
    error = one_line_error(result)
    assert "not in the cache" in error and "--offline" in error
    assert https_server.url(PATH) in error
    assert https_server.log == []
    assert blobs(cache_dir) == []


def test_changed_content_is_fetched_again(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    env = {"SSL_CERT_FILE": str(ca_bundle)}
    old = serve_lifecycle(https_server, tmp_path)
    assert resolve_json(https_server.url(PATH), env=env)["digest"] == digest_of(old)
    new = write_tar(tmp_path / "new.tgz", lifecycle_entries(desc=descriptor("0.22.0"))).read_bytes()
    https_server.add(PATH, new)
    data = resolve_json(https_server.url(PATH), env=env)
    assert data["digest"] == digest_of(new)
    assert data["version"] == "0.22.0"
    assert [r.status for r in https_server.log] == [200, 200]
    assert {p.read_bytes() for p in blobs(cache_dir)} == {old, new}


# -- 4. faults ---------------------------------------------------------------------------------


def test_404_names_the_url_and_status(https_server: HTTPSServer, ca_bundle: Path, cache_dir: Path) -> None:
    error = one_line_error(run_cli("resolve", https_server.url("/missing.tgz"), "--ca-cert", str(ca_bundle)))
    assert https_server.url("/missing.tgz") in error
    assert "HTTP 404" in error
    assert [r.status for r in https_server.log] == [404]  # a 404 is not retried
    assert_nothing_cached(cache_dir)


def test_500_then_200_is_retried(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_lifecycle(https_server, tmp_path)
    https_server.statuses(PATH, 500)
    data = resolve_json(https_server.url(PATH), "--ca-cert", str(ca_bundle))
    assert data["digest"] == digest_of(content)
    assert [r.status for r in https_server.log] == [500, 200]
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]


def test_persistent_503_gives_up_after_the_attempts(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    serve_lifecycle(https_server, tmp_path)
    https_server.statuses(PATH, *([503] * 10))
    error = one_line_error(run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle)))
    assert "HTTP 503" in error and https_server.url(PATH) in error
    assert [r.status for r in https_server.log] == [503] * 4
    assert_nothing_cached(cache_dir)


def test_429_with_retry_after_is_honoured(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_lifecycle(https_server, tmp_path)
    https_server.statuses(PATH, (429, {"Retry-After": "1"}))
    data = resolve_json(https_server.url(PATH), "--ca-cert", str(ca_bundle))
    assert data["digest"] == digest_of(content)
    log = https_server.log
    assert [r.status for r in log] == [429, 200]
    assert log[1].at - log[0].at >= 0.9  # waited as told, not the short default backoff
    assert len(blobs(cache_dir)) == 1


def test_unparsable_retry_after_falls_back_to_the_backoff(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    content = serve_lifecycle(https_server, tmp_path)
    https_server.statuses(PATH, (503, {"Retry-After": "soon"}))
    data = resolve_json(https_server.url(PATH), "--ca-cert", str(ca_bundle))
    assert data["digest"] == digest_of(content)
    assert [r.status for r in https_server.log] == [503, 200]


def test_retry_after_beyond_the_limit_fails_at_once(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    serve_lifecycle(https_server, tmp_path)
    https_server.statuses(PATH, (429, {"Retry-After": "3600"}))
    error = one_line_error(run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle)))
    assert "429" in error and "3600 s" in error and https_server.url(PATH) in error
    assert [r.status for r in https_server.log] == [429]
    assert_nothing_cached(cache_dir)


def test_dropped_connection_is_resumed_with_range(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_big(https_server, tmp_path, 3 * 1024 * 1024)
    half = len(content) // 2
    https_server.drop(PATH, after=half)
    data = resolve_json(https_server.url(PATH), "--ca-cert", str(ca_bundle))
    assert data["digest"] == digest_of(content)
    log = https_server.log
    assert [r.status for r in log] == [200, 206]
    assert "range" not in log[0].headers
    assert log[0].body_bytes == half
    assert log[1].headers["range"] == f"bytes={half}-"
    assert log[1].headers["if-range"] == HTTPSServer.etag_of(content)
    assert https_server.body_bytes() == len(content)  # nothing was sent twice
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]
    assert_tmp_empty(cache_dir)


def test_resume_from_a_server_without_range_support(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_big(https_server, tmp_path, 1024 * 1024)
    https_server.drop(PATH, after=300_000)
    https_server.ignore_range(PATH)
    data = resolve_json(https_server.url(PATH), "--ca-cert", str(ca_bundle))
    assert data["digest"] == digest_of(content)
    log = https_server.log
    assert [r.status for r in log] == [200, 200]
    assert log[1].headers["range"] == "bytes=300000-"
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]


def test_content_changed_while_resuming_is_refused_and_not_cached(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    old = serve_big(https_server, tmp_path, 1024 * 1024)
    new = big_lifecycle(tmp_path / "new.tgz", 1024 * 1024).read_bytes()
    assert old != new
    https_server.drop(PATH, after=200_000, then=new)
    error = one_line_error(run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle)))
    assert https_server.url(PATH) in error
    assert "changed" in error
    assert [r.status for r in https_server.log] == [200, 200]  # If-Range no longer held
    assert_nothing_cached(cache_dir)
    # The next resolve gets the new content whole.
    https_server.clear_log()
    data = resolve_json(https_server.url(PATH), "--ca-cert", str(ca_bundle))
    assert data["digest"] == digest_of(new)
    assert [r.status for r in https_server.log] == [200]
    assert [p.read_bytes() for p in blobs(cache_dir)] == [new]


@pytest.mark.parametrize("where", ["before the headers", "in the body"])
def test_stalled_server_times_out(
    where: str, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    serve_big(https_server, tmp_path, 1024 * 1024)
    https_server.stall(PATH, 60, after=None if where == "before the headers" else 100_000)
    start = time.monotonic()
    result = run_cli(
        "resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle), "--timeout", "1", timeout=30
    )
    elapsed = time.monotonic() - start
    error = one_line_error(result)
    assert https_server.url(PATH) in error
    assert "1 s" in error and "--timeout" in error
    assert elapsed < 8, elapsed  # a timeout is not retried four times over
    assert_nothing_cached(cache_dir)


def test_pinned_digest_mismatch_names_both_digests(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_lifecycle(https_server, tmp_path)
    wrong = "ab" * 32
    error = one_line_error(
        run_cli("resolve", https_server.url(PATH) + f"#sha256={wrong}", "--ca-cert", str(ca_bundle))
    )
    assert f"sha256:{wrong}" in error
    assert digest_of(content) in error
    assert_nothing_cached(cache_dir)


def test_pinned_digest_match_needs_no_request_the_second_time(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_lifecycle(https_server, tmp_path)
    pinned = https_server.url(PATH) + "#sha256=" + hashlib.sha256(content).hexdigest().upper()
    first = resolve_json(pinned, "--ca-cert", str(ca_bundle))
    assert (first["digest"], first["size"]) == (digest_of(content), len(content))
    assert [r.status for r in https_server.log] == [200]
    assert "if-none-match" not in https_server.log[0].headers
    second = resolve_json(pinned, "--ca-cert", str(ca_bundle))
    assert (second["digest"], second["size"]) == (digest_of(content), len(content))
    assert len(https_server.log) == 1  # content-addressed: no revalidation, no request at all
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]


def test_pinned_digest_of_a_known_lifecycle_makes_no_request(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    # The same archive validated from a file: its lifecycle is cached by digest, so a pinned
    # URL with that digest needs no download, and must not leave a lock or connection behind
    # (a second resolve in the same process would wait for that lock forever).
    content = serve_lifecycle(https_server, tmp_path)
    local = tmp_path / "local.tgz"
    local.write_bytes(content)
    pinned = https_server.url(PATH) + "#sha256=" + hashlib.sha256(content).hexdigest()
    assert cnbkit.resolve_lifecycle(str(local)).blob.digest == digest_of(content)
    for _ in range(2):
        lifecycle = cnbkit.resolve_lifecycle(pinned, ca_cert=ca_bundle, timeout=5)
        assert lifecycle.blob.digest == digest_of(content)
        assert lifecycle.blob.resolver == "https"
    assert https_server.log == []


def test_a_download_dropped_unopened_releases_its_lock(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    # A plugin that asks context.download() and then drops the blob unopened must not leave
    # the URL locked (the lock goes with the blob): the next resolve of that URL in the same
    # process would otherwise wait forever.
    from cnbkit.api import new_context
    from cnbkit.options import Options

    content = serve_lifecycle(https_server, tmp_path)
    context = new_context(Options.build(ca_cert=ca_bundle, timeout=5))
    blob = context.download(https_server.url(PATH))
    del blob
    lifecycle = cnbkit.resolve_lifecycle(https_server.url(PATH), ca_cert=ca_bundle, timeout=5)
    assert lifecycle.blob.digest == digest_of(content)
    assert [r.status for r in https_server.log] == [200, 200]
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]


def test_malformed_pin_is_refused_before_any_request(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path
) -> None:
    serve_lifecycle(https_server, tmp_path)
    error = one_line_error(
        run_cli("resolve", https_server.url(PATH) + "#sha256=abc", "--ca-cert", str(ca_bundle))
    )
    assert "64" in error and "hex" in error
    assert https_server.log == []


def test_body_shorter_than_content_length_fails_and_caches_nothing(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_big(https_server, tmp_path, 512 * 1024)
    https_server.short(PATH, 1000)
    error = one_line_error(run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle)))
    assert https_server.url(PATH) in error
    assert "incomplete" in error and str(len(content)) in error
    statuses = [r.status for r in https_server.log]
    assert statuses[0] == 200 and set(statuses[1:]) == {206}  # resumed, yet still short
    assert_nothing_cached(cache_dir)


def test_body_shorter_once_is_completed_by_a_resume(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_big(https_server, tmp_path, 512 * 1024)
    https_server.short(PATH, 1000, times=1)
    data = resolve_json(https_server.url(PATH), "--ca-cert", str(ca_bundle))
    assert data["digest"] == digest_of(content)
    log = https_server.log
    assert [r.status for r in log] == [200, 206]
    assert log[1].headers["range"] == f"bytes={len(content) - 1000}-"
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]


def test_not_a_lifecycle_is_not_cached_as_one(
    https_server: HTTPSServer, ca_bundle: Path, cache_dir: Path
) -> None:
    https_server.add(PATH, b"<html>this is a login page</html>\n")
    error = one_line_error(run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle)))
    assert https_server.url(PATH) in error
    assert list((cache_dir / "lifecycles").glob("*")) == []
    assert_tmp_empty(cache_dir)


# -- 5. concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("pinned", [False, True], ids=["revalidated", "pinned"])
def test_eight_processes_download_once(
    pinned: bool, https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_big(https_server, tmp_path, 1024 * 1024)
    https_server.slow(PATH, 0.05)  # the first download lasts long enough for all to queue
    url = https_server.url(PATH) + (f"#sha256={hashlib.sha256(content).hexdigest()}" if pinned else "")
    env = {**os.environ, "SSL_CERT_FILE": str(ca_bundle)}
    procs = [
        subprocess.Popen(
            [*CLI, "resolve", url, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, [err for _, err in outputs]
    assert {json.loads(out)["digest"] for out, _ in outputs} == {digest_of(content)}
    with_body = [r for r in https_server.log if r.body_bytes]
    assert [r.status for r in with_body] == [200]
    assert https_server.body_bytes() == len(content)
    assert all(r.status == 304 for r in https_server.log if r not in with_body)
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]
    assert len(list((cache_dir / "lifecycles").glob("*"))) == 1
    assert_tmp_empty(cache_dir)


# -- 6. credentials, redirects, plain http -----------------------------------------------------


def _walk_for_secret(root: Path, secrets: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if any(s in path.name for s in secrets):
            found.append(f"name {path}")
        if path.is_file():
            data = path.read_bytes()
            if any(s.encode() in data for s in secrets):
                found.append(f"content {path}")
    return found


def test_credentials_go_to_the_first_host_only_and_never_show(
    https_server: HTTPSServer,
    https_server_b: HTTPSServer,
    ca_bundle: Path,
    tmp_path: Path,
    cache_dir: Path,
) -> None:
    content = serve_lifecycle(https_server_b, tmp_path)
    https_server.redirect(PATH, https_server_b.url(PATH))
    url = https_server.url(PATH, userinfo="user:s3cret")
    basic = base64.b64encode(b"user:s3cret").decode()
    secrets = ["s3cret", basic]

    human = run_cli("resolve", url, "--ca-cert", str(ca_bundle))
    assert human.returncode == 0, human.stderr
    as_json = run_cli("resolve", url, "--ca-cert", str(ca_bundle), "--json")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["uri"] == https_server.url(PATH, userinfo="user:***")
    assert data["digest"] == digest_of(content)

    a_log, b_log = https_server.log, https_server_b.log
    assert a_log and all(r.headers.get("authorization") == f"Basic {basic}" for r in a_log)
    assert [r.status for r in b_log] == [200, 304]
    assert all("authorization" not in r.headers for r in b_log)
    assert b_log[0].headers["host"] == f"127.0.0.2:{https_server_b.port}"

    for result in (human, as_json):
        assert not any(s in result.stdout + result.stderr for s in secrets)
    assert "user:***@" in human.stdout
    # A failure names the URL too, redacted.
    https_server_b.remove(PATH)
    error = one_line_error(run_cli("resolve", url + ".missing", "--ca-cert", str(ca_bundle)))
    assert f"127.0.0.1:{https_server.port}{PATH}.missing" in error and "HTTP 404" in error
    assert not any(s in error for s in secrets)
    listing = run_cli("cache", "ls", "--json")
    assert listing.returncode == 0 and not any(s in listing.stdout for s in secrets)
    assert _walk_for_secret(cache_dir, secrets) == []


def test_secret_query_parameters_stay_out_of_output_and_cache(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = serve_lifecycle(https_server, tmp_path)
    url = https_server.url(PATH) + "?X-Amz-Signature=deadbeef42&token=t0psecret"
    data = resolve_json(url, "--ca-cert", str(ca_bundle))
    assert data["digest"] == digest_of(content)
    assert https_server.log[0].path == PATH + "?X-Amz-Signature=deadbeef42&token=t0psecret"
    assert "deadbeef42" not in json.dumps(data) and "t0psecret" not in json.dumps(data)
    listing = run_cli("cache", "ls", "--json")
    assert "deadbeef42" not in listing.stdout and "t0psecret" not in listing.stdout
    assert _walk_for_secret(cache_dir, ["deadbeef42", "t0psecret"]) == []


def test_https_to_http_redirect_is_refused(
    https_server: HTTPSServer, http_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    serve_lifecycle(http_server, tmp_path)
    https_server.redirect(PATH, http_server.url(PATH))
    error = one_line_error(run_cli("resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle)))
    assert "https to http" in error
    assert [r.status for r in https_server.log] == [302]
    assert http_server.log == []  # refused before connecting
    assert_nothing_cached(cache_dir)


def test_plain_http_to_loopback_is_allowed(http_server: HTTPSServer, tmp_path: Path, cache_dir: Path) -> None:
    content = serve_lifecycle(http_server, tmp_path)
    data = resolve_json(http_server.url(PATH))
    assert data["digest"] == digest_of(content)
    assert data["resolver"] == "https"
    assert [r.status for r in http_server.log] == [200]


def test_plain_http_to_a_remote_host_is_refused_without_connecting(
    http_server: HTTPSServer, tmp_path: Path, cache_dir: Path
) -> None:
    # A loopback proxy catches any attempt to connect: the refusal must come first.
    content = serve_lifecycle(http_server, tmp_path)
    env = {"HTTP_PROXY": http_server.base_url, "http_proxy": http_server.base_url, "NO_PROXY": ""}
    remote = "http://192.0.2.10" + PATH  # TEST-NET-1: documentation only
    error = one_line_error(run_cli("resolve", remote, env=env))
    assert "--allow-http" in error and remote in error
    assert http_server.log == []
    assert_nothing_cached(cache_dir)
    # With --allow-http the request goes out (to the loopback proxy, never further).
    data = resolve_json(remote, "--allow-http", env=env)
    assert data["digest"] == digest_of(content)
    assert [(r.target, r.status) for r in http_server.log] == [(remote, 200)]


# -- 8. progress -------------------------------------------------------------------------------


def _run_with_pty_stderr(args: list[str], env: dict[str, str]) -> tuple[int, str, bytes]:
    """Run the CLI with stderr on a pseudo-terminal; return (exit code, stdout, terminal bytes)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen(
        [*CLI, *args],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = bytearray()
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode(), bytes(seen)


def test_progress_bar_on_a_terminal_only(https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path) -> None:
    serve_big(https_server, tmp_path, 4 * 1024 * 1024)
    https_server.slow(PATH, 0.005)
    env = {"SSL_CERT_FILE": str(ca_bundle)}
    code, out, terminal = _run_with_pty_stderr(["resolve", https_server.url(PATH)], env)
    assert code == 0, terminal
    assert "Lifecycle 0.21.0" in out
    text = terminal.decode(errors="replace")
    assert "%|" in text and "B/s" in text and https_server.url(PATH) in text

    # --json on a terminal: no bar (a fresh cache, so the download happens again).
    code, out, terminal = _run_with_pty_stderr(
        ["resolve", https_server.url(PATH), "--json"], {**env, "CNBKIT_CACHE_DIR": str(tmp_path / "c2")}
    )
    assert code == 0 and json.loads(out)["resolver"] == "https"
    assert terminal == b""

    # Not a terminal: nothing on stderr.
    result = run_cli("resolve", https_server.url(PATH), env={**env, "CNBKIT_CACHE_DIR": str(tmp_path / "c3")})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [r.status for r in https_server.log] == [200, 200, 200]


def test_a_killed_download_leaves_no_visible_entry(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    import signal
    import subprocess
    import time

    content = serve_big(https_server, tmp_path, 2 * 1024 * 1024)
    https_server.stall(PATH, 30, after=len(content) // 2, times=1)  # half the body, then nothing
    proc = subprocess.Popen(
        [*CLI, "resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle), "--timeout", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    parts: list[Path] = []
    while time.monotonic() < deadline and not any(p.stat().st_size >= len(content) // 4 for p in parts):
        time.sleep(0.05)
        parts = [p for p in (cache_dir / "tmp").glob("*.part") if p.exists()]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert parts, "the download never reached the cache's tmp/"
    assert blobs(cache_dir) == [] and list((cache_dir / "records").glob("*")) == []
    assert list((cache_dir / "lifecycles").glob("*")) == []
    # The next resolve downloads again and succeeds; prune clears the killed one's leftover.
    assert resolve_json(https_server.url(PATH), "--ca-cert", str(ca_bundle))["digest"] == digest_of(content)
    assert [p.read_bytes() for p in blobs(cache_dir)] == [content]
    for part in (cache_dir / "tmp").glob("*"):
        os.utime(part, (time.time() - 7200, time.time() - 7200))
    assert run_cli("cache", "prune").returncode == 0
    assert list((cache_dir / "tmp").glob("*")) == []
