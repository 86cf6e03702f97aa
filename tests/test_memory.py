"""Memory stays flat as the archive grows: the resolve streams, it never holds a blob."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import CLI
from tests.lifecycles import big_lifecycle


def peak_rss_kib(args: list[str], env: dict[str, str]) -> int:
    """Run the CLI and return the child's peak resident set size in KiB (from wait4)."""
    proc = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read() if proc.stderr else ""
    return usage.ru_maxrss


def test_peak_memory_does_not_grow_with_the_archive(tmp_path: Path) -> None:
    small = big_lifecycle(tmp_path / "small.tgz", 4 * 1024 * 1024, sorted_entries=False)
    large = big_lifecycle(tmp_path / "large.tgz", 96 * 1024 * 1024, sorted_entries=False)
    env = dict(os.environ)
    peaks = {}
    for archive in (small, large):
        env["CNBKIT_CACHE_DIR"] = str(tmp_path / f"cache-{archive.stem}")
        # unsorted entries take the rewrite path too: both paths must stream
        peaks[archive.stem] = peak_rss_kib(
            ["resolve", str(archive), "--save", str(tmp_path / "out.tar")], env
        )
    growth = peaks["large"] - peaks["small"]
    # 92 MiB more input may cost a few MiB of buffers, never the blob itself
    assert growth < 12 * 1024, peaks
    assert peaks["large"] < 80 * 1024, peaks
