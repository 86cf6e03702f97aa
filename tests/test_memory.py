"""Memory stays flat as the archive grows: the resolve streams, it never holds a blob."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import CLI, one_line_error, run_cli
from tests.lifecycles import big_lifecycle
from tests.services.dockerd import Dockerd
from tests.services.registry import Registry
from tests.tarbytes import entry, lifecycle_with
from tests.test_tarreader import gzip_long_name, make_many_entries

# Linux reports a child's peak RSS from before its exec too, i.e. the size of the process it
# was forked from (pytest: easily 100 MB). So fork the measured CLI from a small interpreter
# that does nothing else, and let that one report the child's peak.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_kib(args: list[str], env: dict[str, str], *, exit_code: int = 0) -> int:
    """Run the CLI, check it exits with ``exit_code``, and return its peak resident set size in KiB."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, *CLI, *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == exit_code, result.stderr
    return int(result.stderr.strip().splitlines()[-1])


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


def test_hundred_thousand_entries_stay_small(tmp_path: Path) -> None:
    # Python's tarfile kept every member: 100k empty entries cost it 132 MB.
    archive = make_many_entries(tmp_path / "many.tgz", 100_000)
    peak = peak_rss_kib(
        ["resolve", str(archive), "--save", str(tmp_path / "out.tar"), "-q"], dict(os.environ)
    )
    assert peak < 100 * 1024, peak


def _many_in_the_lifecycle(path: Path, count: int) -> Path:
    """A valid lifecycle .tgz whose lifecycle directory holds ``count`` more empty files
    (after its phases: unsorted, so the layer is rewritten in order)."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(lifecycle_with(b"".join(entry(f"lifecycle/f{i:06d}") for i in range(count))))
    return path


def test_a_lifecycle_of_a_hundred_thousand_entries_is_refused_and_stays_small(tmp_path: Path) -> None:
    # issue 17.10: every entry of the lifecycle directory is kept until the layer is written
    # (name, mode, size, where its data is): 100,000 of them peaked at 127 MB. Past 50,000 an
    # archive is refused, one line, before its records cost more.
    archive = _many_in_the_lifecycle(tmp_path / "many.tgz", 100_000)
    args = ["resolve", str(archive), "--save", str(tmp_path / "out.tar"), "-q"]
    peak = peak_rss_kib(args, dict(os.environ), exit_code=1)
    assert peak < 50 * 1024, peak
    line = one_line_error(run_cli(*args))
    assert line == (
        f"error: {archive}: more than 50,000 entries outside the archive root (a lifecycle holds a "
        "few dozen); refusing the archive"
    )
    assert not (tmp_path / "out.tar").exists()


def test_the_largest_lifecycle_accepted_stays_small(tmp_path: Path) -> None:
    # Just under the limit, and unsorted (the rewrite holds the most): 73 MB before the
    # records were made smaller, 57 MB after.
    archive = _many_in_the_lifecycle(tmp_path / "many.tgz", 49_900)
    peak = peak_rss_kib(
        ["resolve", str(archive), "--save", str(tmp_path / "out.tar"), "-q"], dict(os.environ)
    )
    assert peak < 66 * 1024, peak


def test_gnu_long_name_of_128_mib_is_never_buffered(tmp_path: Path) -> None:
    archive = gzip_long_name(tmp_path / "long.tgz", 128 * 1024 * 1024)
    peak = peak_rss_kib(["resolve", str(archive), "-q"], dict(os.environ), exit_code=1)
    assert peak < 50 * 1024, peak  # tarfile read it whole: about 280 MB


def test_a_builder_push_and_load_stream_their_layers(
    tmp_path: Path, registry: Registry, dockerd: Dockerd
) -> None:
    """A 48 MB bigger lifecycle costs a builder pushed to a registry or loaded into dockerd no
    more than buffers: compression, upload and the generated save archive all stream."""
    from tests.builder_support import build_image, builder_toml, buildpack

    buildpack(tmp_path / "bp")
    build_image(tmp_path / "build")
    env = {**os.environ, "DOCKER_HOST": dockerd.host}
    peaks = {}
    for size in (4, 28):
        big_lifecycle(tmp_path / f"l{size}.tgz", size * 1024 * 1024)
        config = builder_toml(tmp_path / f"b{size}.toml", lifecycle=f'uri = "l{size}.tgz"')
        for kind, target in (
            ("push", f"docker://{registry.host}/{registry.unique_repo('memory')}:v1"),
            ("load", f"docker-daemon:cnbkit-test/memory-{size}:v1"),
        ):
            env["CNBKIT_CACHE_DIR"] = str(tmp_path / f"cache-{size}-{kind}")  # cold: compression too
            peaks[(kind, size)] = peak_rss_kib(
                ["builder", "create", target, "--config", str(config), "-q"], env
            )
    for kind in ("push", "load"):
        assert peaks[(kind, 28)] - peaks[(kind, 4)] < 12 * 1024, peaks
