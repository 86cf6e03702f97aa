"""What an ``oci-archive:`` or ``docker-archive:`` target may be (``cnbkit.atomic_writer``): a new
path or a regular file is written beside and renamed into place; a FIFO, or a link to one, is
streamed into; anything else is refused in one line, and a failure leaves nothing behind."""

from __future__ import annotations

import os
import resource
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from tests.builder_support import builder_project
from tests.conftest import CLI, one_line_error, run_cli
from tests.lifecycles import make_lifecycle
from tests.test_disk import in_namespace


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A builder.toml with local inputs (a file lifecycle, a layout build image)."""
    return builder_project(tmp_path / "project") / "builder.toml"


def _create(target: Path, config: Path) -> tuple[int, str]:
    result = run_cli("builder", "create", f"oci-archive:{target}:v1", "--config", str(config), "-q")
    return result.returncode, result.stderr


def _names(archive: Path) -> set[str]:
    with tarfile.open(archive) as tar:
        return set(tar.getnames())


def _beside(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_an_existing_file_is_replaced_whole_and_nothing_is_left_beside(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "out" / "builder.tar"
    target.parent.mkdir()
    target.write_bytes(b"an older builder")
    code, err = _create(target, config)
    assert code == 0, err
    assert {"index.json", "oci-layout"} <= _names(target)
    assert _beside(target.parent) == []


@pytest.mark.parametrize("through_link", [False, True], ids=["fifo", "link-to-fifo"])
def test_a_fifo_is_streamed_into(tmp_path: Path, config: Path, through_link: bool) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if through_link:
        target = tmp_path / "link"
        target.symlink_to(fifo)
    received = bytearray()

    def drain() -> None:
        with open(fifo, "rb") as reader:
            while chunk := reader.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    code, err = _create(target, config)
    reader.join(30)
    assert code == 0, err
    (tmp_path / "got.tar").write_bytes(bytes(received))
    assert {"index.json", "oci-layout"} <= _names(tmp_path / "got.tar")
    assert fifo.exists() and not fifo.is_file()  # still the FIFO: nothing renamed over it
    assert _beside(tmp_path) == []


def test_a_fifo_whose_reader_goes_away_is_one_line(tmp_path: Path, config: Path) -> None:
    make_lifecycle(config.parent / "lifecycle.tgz", binary=os.urandom(2_000_000))  # past any pipe buffer
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def read_a_little() -> None:
        with open(fifo, "rb") as reader:
            reader.read(10)

    reader = threading.Thread(target=read_a_little, daemon=True)
    reader.start()
    code, err = _create(fifo, config)
    reader.join(30)
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {fifo}: "), err


def test_a_directory_is_not_a_target(tmp_path: Path, config: Path) -> None:
    target = tmp_path / "a-directory"
    target.mkdir()
    line = one_line_error(run_cli("builder", "create", f"oci-archive:{target}:v1", "--config", str(config)))
    assert line == f"error: cannot write {target}: it is neither a file, a FIFO nor a character device"
    assert list(target.iterdir()) == []


def test_a_path_under_a_file_is_one_line(tmp_path: Path, config: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    target = tmp_path / "file" / "builder.tar"
    line = one_line_error(run_cli("builder", "create", f"oci-archive:{target}:v1", "--config", str(config)))
    assert line.startswith(f"error: cannot write {target}: "), line
    assert (tmp_path / "file").read_bytes() == b"x"


def test_a_write_that_fails_half_way_is_one_line_and_leaves_nothing(tmp_path: Path, config: Path) -> None:
    # The file size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so a write past it fails with
    # EFBIG) stands for a full disk. The first build fills the cache: the second writes only
    # the archive, which is larger than the limit.
    first = tmp_path / "first.tar"
    code, err = _create(first, config)
    assert code == 0, err
    limit = first.stat().st_size // 2
    target = tmp_path / "out" / "builder.tar"
    target.parent.mkdir()
    result = subprocess.run(
        [*CLI, "builder", "create", f"oci-archive:{target}:v1", "--config", str(config), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    line = one_line_error(result)
    assert line.startswith(f"error: cannot write {target}: "), line
    assert list(target.parent.iterdir()) == []


def test_a_target_that_cannot_be_renamed_over_is_one_line_and_leaves_nothing(
    tmp_path: Path, config: Path
) -> None:
    # A file bind-mounted onto itself (as a container's single-file volume is) is a mount point:
    # the temp file beside it is written, but rename(2) over it fails (EBUSY). The mount exists
    # only in the cnbkit subprocess's private mount namespace.
    target = tmp_path / "out" / "builder.tar"
    target.parent.mkdir()
    target.write_bytes(b"an older builder")
    result = in_namespace(
        'mount --bind "$1" "$1" && shift && exec "$@"',
        str(target),
        *CLI,
        "builder",
        "create",
        f"oci-archive:{target}:v1",
        "--config",
        str(config),
        "-q",
    )
    line = one_line_error(result)
    assert line.startswith(f"error: cannot write {target}: "), line
    assert target.read_bytes() == b"an older builder"
    assert _beside(target.parent) == []


def test_a_layout_file_that_cannot_be_written_is_one_line(tmp_path: Path, config: Path) -> None:
    # An OCI layout's small files (its marker first) are written whole by one call; a file-size
    # limit of a few bytes (EFBIG, standing for a full disk) fails the very first. The first
    # build fills the cache, so the second writes only the layout.
    code, err = _create(tmp_path / "first.tar", config)
    assert code == 0, err
    target = tmp_path / "layout"
    result = subprocess.run(
        [*CLI, "builder", "create", f"oci:{target}:v1", "--config", str(config), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (8, 8)),
    )
    line = one_line_error(result)
    # (the layout is built in a directory beside the target, renamed into place when complete)
    assert line.startswith(f"error: cannot write {tmp_path}/"), line
    assert line.endswith("/oci-layout: the file is larger than this system allows (ulimit -f?)"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "first.tar", "project"]
