"""``--save`` never replaces what is not a regular file: FIFOs and character devices are
streamed into (``--save /dev/stdout | tar t`` works), directories and symlinks to files are
refused in one line, before any work.

The device here is a private node made with ``mknod`` (the same as /dev/null), and stdout is
named ``/dev/fd/1``: a regression that replaced the target would then hit only the test's own
files, never the machine's /dev.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import subprocess
import tarfile
import threading
from pathlib import Path

from tests.conftest import CLI, one_line_error, run_cli
from tests.lifecycles import make_lifecycle

PHASE = "cnb/lifecycle/analyzer"


def saved_digest(stdout: str) -> str:
    """The layer digest the human output reports after ``layer saved to``."""
    match = re.search(r"layer saved to .*\((\d+) bytes, (sha256:[0-9a-f]{64})\)", stdout)
    assert match, stdout
    return match[2]


def names(layer: bytes) -> list[str]:
    """The entry names of an uncompressed tar."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return tar.getnames()


def test_a_fifo_is_streamed_into_and_stays_a_fifo(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    fifo = tmp_path / "layer.fifo"
    os.mkfifo(fifo)
    received = bytearray()

    def read() -> None:
        with open(fifo, "rb") as pipe:
            received.extend(pipe.read())

    for _ in ("cold", "warm"):  # validated now, then served from the cache
        received.clear()
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        result = run_cli("resolve", str(archive), "--save", str(fifo))
        reader.join(30)
        assert result.returncode == 0, result.stderr
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
        assert "sha256:" + hashlib.sha256(received).hexdigest() == saved_digest(result.stdout)
        assert PHASE in names(bytes(received))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "l.tgz", "layer.fifo"]


def test_a_character_device_is_written_to_not_replaced(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    result = run_cli("resolve", str(archive), "--save", str(null))
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(null.lstat().st_mode) and null.lstat().st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "l.tgz", "null"]


def test_save_to_stdout_piped_into_tar(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    command = " ".join(f"'{a}'" for a in [*CLI, "resolve", str(archive), "--save", "/dev/fd/1"])
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | tar t"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert PHASE in result.stdout.splitlines()
    assert "Lifecycle 0.21.0" not in result.stdout  # the report went to stderr ...
    assert "Lifecycle 0.21.0" in result.stderr  # ... so that the tar stream stays clean


def test_a_symlink_to_a_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    real = tmp_path / "real.tar"
    real.write_bytes(b"the user's file")
    link = tmp_path / "link.tar"
    link.symlink_to(real)
    dangling = tmp_path / "dangling.tar"
    dangling.symlink_to(tmp_path / "nowhere.tar")
    for target, points_to in ((link, real), (dangling, tmp_path / "nowhere.tar")):
        line = one_line_error(run_cli("resolve", str(archive), "--save", str(target)))
        assert line == (
            f"error: cannot write {target}: it is a symlink, which --save neither replaces nor "
            f"writes through to a file; give the file itself ({points_to})"
        )
        assert target.is_symlink()
    assert real.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling.tar", "l.tgz", "link.tar", "real.tar"]


def test_a_directory_is_refused_before_any_work(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    directory = tmp_path / "out"
    directory.mkdir()
    line = one_line_error(run_cli("resolve", str(archive), "--save", str(directory)))
    assert line == f"error: cannot write {directory}: it is a directory; give a file path for the layer"
    assert list(directory.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.tgz", "out"]  # not even a cache


def test_a_regular_file_is_still_replaced_atomically(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    target = tmp_path / "layer.tar"
    target.write_bytes(b"old")
    inode = target.stat().st_ino
    result = run_cli("resolve", str(archive), "--save", str(target))
    assert result.returncode == 0, result.stderr
    assert PHASE in names(target.read_bytes())
    assert target.stat().st_ino != inode  # a new file renamed over the old one
