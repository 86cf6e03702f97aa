"""Shared fixtures: the CLI runner and a private cache for every test."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.environment import NETWORK_ENV

pytest_plugins = ["tests.services.fixtures", "tests.services.peers"]

# Run the console script's code with this interpreter, so the tests use the installed cnbkit
# whatever PATH holds.
CLI = [sys.executable, "-c", "import sys; from cnbkit.cli import main; sys.exit(main())"]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache (CNBKIT_CACHE_DIR) for API calls and CLI runs in this test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("CNBKIT_CACHE_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Never the user's cache, CA bundle, proxy or plugin settings.
    monkeypatch.setenv("CNBKIT_CACHE_DIR", str(tmp_path / "cache"))
    for var in (
        *NETWORK_ENV,
        "DOCKER_CONFIG",
        "DOCKER_HOST",
        "CNBKIT_OFFLINE",
        "CNBKIT_TIMEOUT",
        "CNBKIT_ALLOW_HTTP",
        "CNBKIT_DISABLE_PLUGINS",
        "CNBKIT_LIFECYCLE_MIRROR",
        "CNBKIT_DEBUG",
        "CNBKIT_TRACE_HOOKS",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    yield


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``cnbkit ARGS`` in a subprocess with the test's environment plus ``env``."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout, check=False
    )


def cli_json(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None) -> Any:
    """Run ``cnbkit ARGS``, assert it succeeded, and return the JSON it printed."""
    result = run_cli(*args, env=env, cwd=cwd)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def in_process(*args: str) -> tuple[int, str, str]:
    """Run ``cnbkit ARGS`` in this process (so plugins registered in code are asked): the exit
    code, stdout and stderr."""
    import contextlib
    import io

    from cnbkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the run failed with exit 1 and exactly one ``error:`` line; return it."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return errors[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI, a skipped test is a failure: a missing service must never pass silently."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which must run every test: {report.longrepr}"
