"""The local disk: write failures are named and never retried as network trouble, a read-only
cache serves warm resolves, and ``cache clear``/``prune`` touch only the cache's own files.

Tests run as root, where file permissions are not enforced, so "read-only" and "full" are
made real with the kernel: a file-size limit (``RLIMIT_FSIZE``), and a private mount namespace
(``unshare -m``) holding a small tmpfs or a read-only bind mount of the cache. The mounts exist
only inside the cnbkit subprocess and vanish with it.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

from tests.conftest import CLI, digest_of, one_line_error, run_cli
from tests.https_server import (  # noqa: F401 - fixtures
    HTTPSServer,
    ca_bundle_fixture,
    https_server_fixture,
    test_ca_fixture,
)
from tests.lifecycles import big_lifecycle, make_lifecycle

PATH = "/releases/lifecycle.tgz"
# Mount a private view of $1 (the second argument on), then run the rest as the command.
_TMPFS = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
_READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'


def in_namespace(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``sh -c script sh ARGS`` in a private mount namespace (root only)."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux's unshare is needed (apt-get install util-linux)"
    return subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def leftovers(root: Path) -> list[str]:
    """Every file under ``root`` but lock files (empty, kept on purpose)."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.parent.name != "locks"
    )


# -- 11. a full disk or a file-size limit ---------------------------------------------------


def test_a_file_size_limit_is_named_and_not_retried(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = big_lifecycle(tmp_path / "big.tgz", 2 * 1024 * 1024).read_bytes()
    https_server.add(PATH, content)
    limit = 256 * 1024

    def small_files() -> None:  # like `ulimit -f 256` (Python ignores SIGXFSZ: writes get EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "out"
    out.mkdir()
    args = ["resolve", https_server.url(PATH), "--ca-cert", str(ca_bundle)]
    result = subprocess.run(
        [*CLI, *args, "--save", str(out / "layer.tar")],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_files,
        check=False,
    )
    line = one_line_error(result)
    assert "the file is larger than this system allows (ulimit -f?)" in line, line
    assert "connection" not in line
    assert len(https_server.requests_for(PATH)) == 1  # a disk problem is never retried
    assert leftovers(cache_dir) == []
    assert list(out.iterdir()) == []


def test_a_full_disk_is_named_and_not_retried(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = big_lifecycle(tmp_path / "big.tgz", 4 * 1024 * 1024).read_bytes()
    https_server.add(PATH, content)
    cache_dir.mkdir()
    env = {**os.environ, "CNBKIT_CACHE_DIR": str(cache_dir)}
    result = in_namespace(
        _TMPFS,
        "1m",
        str(cache_dir),
        "env",
        *[f"{k}={v}" for k, v in env.items() if k in ("CNBKIT_CACHE_DIR", "PATH", "NO_PROXY")],
        *CLI,
        "resolve",
        https_server.url(PATH),
        "--ca-cert",
        str(ca_bundle),
    )
    line = one_line_error(result)
    assert f"cannot write {cache_dir}/" in line and "no space left on the device" in line, line
    assert "connection" not in line
    assert len(https_server.requests_for(PATH)) == 1
    # The tmpfs went with the namespace; nothing reached the real cache dir either.
    assert leftovers(cache_dir) == []


# -- 14. a read-only cache --------------------------------------------------------------------


def test_a_read_only_cache_serves_warm_resolves(
    https_server: HTTPSServer, ca_bundle: Path, tmp_path: Path, cache_dir: Path
) -> None:
    content = make_lifecycle(tmp_path / "l.tgz").read_bytes()
    https_server.add(PATH, content)
    local = make_lifecycle(tmp_path / "local.tgz")
    url = https_server.url(PATH)
    pinned = f"{url}.pinned#sha256={digest_of(content)[7:]}"
    https_server.add(f"{PATH}.pinned", content)
    for uri in (url, str(local), pinned):  # fill the cache, as a CI image build would
        assert run_cli("resolve", uri, "--ca-cert", str(ca_bundle)).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*")}
    https_server.clear_log()

    out = tmp_path / "out"
    out.mkdir()
    env = ["env", f"CNBKIT_CACHE_DIR={cache_dir}", f"PATH={os.environ['PATH']}", "NO_PROXY=127.0.0.1"]

    def read_only(*args: str) -> subprocess.CompletedProcess[str]:
        return in_namespace(_READ_ONLY, str(cache_dir), *env, *CLI, *args)

    warm = read_only("resolve", url, "--ca-cert", str(ca_bundle), "--json", "--save", str(out / "a.tar"))
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout)["digest"] == digest_of(content)
    assert [r.status for r in https_server.log] == [304]  # revalidated, nothing to write
    assert (out / "a.tar").stat().st_size > 0
    for args in ([str(local)], [pinned], [url, "--offline"]):
        result = read_only("resolve", *args, "--ca-cert", str(ca_bundle), "--quiet")
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr == ""
    assert read_only("cache", "ls").returncode == 0

    # What does need a write says so, in one line, naming the cache.
    https_server.add("/other.tgz", make_lifecycle(tmp_path / "other.tgz", binary=b"other").read_bytes())
    cold = read_only("resolve", https_server.url("/other.tgz"), "--ca-cert", str(ca_bundle))
    line = one_line_error(cold)
    assert f"cannot write {cache_dir}/" in line and "the file system is read-only" in line, line
    assert len(https_server.requests_for("/other.tgz")) == 1
    # The bind mount was private to the subprocess: the real cache is writable and unchanged.
    assert {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*")} == before


# -- 12. only the cache's own files ------------------------------------------------------------


def test_clear_and_prune_leave_foreign_files_alone(tmp_path: Path, cache_dir: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    assert run_cli("resolve", str(archive)).returncode == 0
    # CNBKIT_CACHE_DIR pointed at a folder that other things use too (~/.cache, say).
    (cache_dir / "notes.txt").write_text("mine")
    (cache_dir / "other-tool" / "deep").mkdir(parents=True)
    (cache_dir / "other-tool" / "deep" / "data.bin").write_bytes(b"\0" * 10)
    os.symlink(tmp_path / "elsewhere", cache_dir / "a-link")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("keep")
    old = time.time() - 90 * 86400
    for path in (cache_dir / "notes.txt", cache_dir / "other-tool"):
        os.utime(path, (old, old))

    assert run_cli("cache", "prune", "--days", "0").returncode == 0
    result = run_cli("cache", "clear")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in cache_dir.iterdir()) == ["a-link", "notes.txt", "other-tool"]
    assert (cache_dir / "notes.txt").read_text() == "mine"
    assert (cache_dir / "other-tool" / "deep" / "data.bin").read_bytes() == b"\0" * 10
    assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "keep"
    listing = json.loads(run_cli("cache", "ls", "--json").stdout)
    assert listing["blobs"] == [] and listing["lifecycles"] == []


def test_clear_and_prune_leave_foreign_files_inside_the_layout_folders(
    tmp_path: Path, cache_dir: Path
) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    assert run_cli("resolve", str(archive)).returncode == 0
    # Another tool sharing the folder keeps a tmp/ and an index/ of its own.
    foreign = [
        cache_dir / "tmp" / "session.sqlite",
        cache_dir / "index" / "search-index.json",
        cache_dir / "records" / "notes.json",
        cache_dir / "blobs" / "thumbnails" / "a.png",
        cache_dir / "lifecycles" / "README",
    ]
    old = time.time() - 90 * 86400
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not cnbkit's")
        os.utime(path, (old, old))
    assert run_cli("cache", "prune", "--days", "0").returncode == 0
    assert all(path.read_text() == "not cnbkit's" for path in foreign)
    assert run_cli("cache", "clear").returncode == 0
    assert all(path.read_text() == "not cnbkit's" for path in foreign)
    assert sorted(str(p.relative_to(cache_dir)) for p in cache_dir.rglob("*") if p.is_file()) == sorted(
        str(p.relative_to(cache_dir)) for p in foreign
    )
