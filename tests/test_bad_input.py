"""Bad input: one clear line, exit 1, no traceback, and nothing left behind anywhere."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import one_line_error, run_cli
from tests.lifecycles import Entry, descriptor, lifecycle_entries, make_lifecycle, write_tar


def _desc(text: str) -> Callable[[Path], Path]:
    return lambda p: make_lifecycle(p, desc=text.encode())


def _with(extra: list[Entry], **kwargs: object) -> Callable[[Path], Path]:
    return lambda p: write_tar(p, lifecycle_entries(**kwargs) + extra)  # type: ignore[arg-type]


def _corrupt_gzip(p: Path) -> Path:
    make_lifecycle(p)
    data = bytearray(p.read_bytes())
    for i in range(30, min(len(data) - 20, 200)):
        data[i] ^= 0x55
    p.write_bytes(bytes(data))
    return p


def _truncated_gzip(p: Path) -> Path:
    make_lifecycle(p, binary=os.urandom(50_000))
    p.write_bytes(p.read_bytes()[:-3000])
    return p


def _truncated_tar(p: Path) -> Path:
    make_lifecycle(p, compress=None, binary=os.urandom(50_000))
    p.write_bytes(p.read_bytes()[:20_000])
    return p


def _absurd_size(p: Path) -> Path:
    import tarfile

    header = tarfile.TarInfo("lifecycle/huge")
    header.size = 3 * 1024**3  # claims 3 GiB; the data never comes
    p.write_bytes(header.tobuf(tarfile.GNU_FORMAT) + b"\0" * 4096)
    return p


def _without_descriptor(p: Path) -> Path:
    return write_tar(p, [e for e in lifecycle_entries() if e.name != "lifecycle.toml"])


def _crc_mismatch(p: Path) -> Path:
    make_lifecycle(p)
    data = bytearray(p.read_bytes())
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    p.write_bytes(bytes(data))
    return p


def _garbage_after_gzip(p: Path) -> Path:
    make_lifecycle(p)
    p.write_bytes(p.read_bytes() + b"this is not gzip")
    return p


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing descriptor": (_without_descriptor, "no lifecycle.toml at the archive root"),
    "malformed toml": (_desc('[lifecycle]\nversion = "0.21.0\n'), "invalid TOML: "),
    "deeply nested toml": (_desc("a = " + "[" * 100_000 + "]" * 100_000), "lifecycle.toml"),
    "huge integer toml": (_desc("x = " + "9" * 100_000), "lifecycle.toml"),
    "not utf-8 toml": (lambda p: make_lifecycle(p, desc=b"\xff\xfe"), "not UTF-8"),
    "no apis": (_desc('[lifecycle]\nversion = "0.21.0"\n'), "no buildpack or platform API versions"),
    "bad api version": (
        _desc('[api]\nbuildpack = "x.y"\nplatform = "0.3"\n[lifecycle]\nversion = "1.0.0"\n'),
        "invalid API version 'x.y'",
    ),
    "no version": (
        lambda p: make_lifecycle(p, desc=descriptor().replace(b'version = "0.21.0"', b"")),
        "[lifecycle] version is missing",
    ),
    "missing binary": (lambda p: make_lifecycle(p, omit=("detector",)), "lacks the phase binaries detector"),
    "dangling phase symlink": (
        lambda p: write_tar(p, [e for e in lifecycle_entries() if not e.name.endswith("/lifecycle")]),
        "phase 'analyzer' is a symlink to 'lifecycle'",
    ),
    "symlink escaping": (
        _with([Entry("lifecycle/evil", "symlink", linkname="../../etc/shadow")]),
        "symlink 'lifecycle/evil' -> '../../etc/shadow' leaves the lifecycle directory",
    ),
    "absolute symlink escaping": (
        _with([Entry("lifecycle/evil", "symlink", linkname="/etc/shadow")]),
        "leaves the lifecycle directory",
    ),
    # Each step of a walk is checked, not only where it ends: these end inside the lifecycle,
    # but pass through places other layers of the image fill (a buildpack could put a link there).
    "symlink leaving and coming back": (
        _with([Entry("lifecycle/evil", "symlink", linkname="../../usr/../cnb/lifecycle/lifecycle")]),
        "symlink 'lifecycle/evil' -> '../../usr/../cnb/lifecycle/lifecycle' leaves the lifecycle directory",
    ),
    "symlink through the buildpacks": (
        _with([Entry("lifecycle/evil", "symlink", linkname="../buildpacks/x/../../lifecycle/lifecycle")]),
        "symlink 'lifecycle/evil' -> '../buildpacks/x/../../lifecycle/lifecycle' leaves the lifecycle",
    ),
    "symlink escaping after a dot": (
        _with([Entry("lifecycle/evil", "symlink", linkname="./../../etc/shadow")]),
        "symlink 'lifecycle/evil' -> './../../etc/shadow' leaves the lifecycle directory",
    ),
    # links.py's docstring: each target looks harmless alone; walked, d is the host's file
    "symlink chain to the root": (
        _with(
            [
                Entry("lifecycle/a", "symlink", linkname="."),
                Entry("lifecycle/b", "symlink", linkname="a/.."),
                Entry("lifecycle/c", "symlink", linkname="b/.."),
                Entry("lifecycle/d", "symlink", linkname="c/etc/passwd"),
            ]
        ),
        "symlink 'lifecycle/b' -> 'a/..' leaves the lifecycle directory",
    ),
    "symlink loop": (
        _with([Entry("lifecycle/a", "symlink", linkname="b"), Entry("lifecycle/b", "symlink", linkname="a")]),
        "symlink 'lifecycle/a' -> 'b' is part of a symlink loop",
    ),
    # a walk that leaves inside another link's walk: the link the archive holds is named
    "symlink through a link that leaves": (
        _with(
            [
                Entry("lifecycle/outer", "symlink", linkname="inner/x"),
                Entry("lifecycle/inner", "symlink", linkname="../../etc"),
            ]
        ),
        "symlink 'lifecycle/outer' -> 'inner/x' leaves the lifecycle directory",
    ),
    "symlink through a link that ends outside": (
        _with(
            [
                Entry("lifecycle/outer", "symlink", linkname="inner/x"),
                Entry("lifecycle/inner", "symlink", linkname=".."),
            ]
        ),
        "symlink 'lifecycle/outer' -> 'inner/x' leaves the lifecycle directory",
    ),
    "hardlink to nothing": (
        _with([Entry("lifecycle/h", "hardlink", linkname="lifecycle/nothing")]),
        "names no regular file of the lifecycle",
    ),
    "hardlink to a directory": (
        _with([Entry("lifecycle/d", "dir"), Entry("lifecycle/h", "hardlink", linkname="lifecycle/d")]),
        "hardlink 'lifecycle/h' -> 'lifecycle/d/' names no regular file of the lifecycle",
    ),
    "hardlink to a symlink": (
        _with([Entry("lifecycle/h", "hardlink", linkname="lifecycle/detector")]),
        "hardlink 'lifecycle/h' -> 'lifecycle/detector' names no regular file of the lifecycle",
    ),
    "41 nested symlinks": (
        _with(
            [
                Entry(f"lifecycle/l{i}", "symlink", linkname=f"l{i + 1}" if i < 41 else "lifecycle")
                for i in range(1, 42)
            ]
        ),
        "symlink 'lifecycle/l1' -> 'l2' goes through more than 40 symlinks",
    ),
    "phase symlink escaping": (
        lambda p: write_tar(
            p,
            [
                Entry(e.name, "symlink", linkname="/bin/sh") if e.name == "lifecycle/analyzer" else e
                for e in lifecycle_entries()
            ],
        ),
        "symlink 'lifecycle/analyzer' -> '/bin/sh'",
    ),
    "phase is a directory": (
        lambda p: write_tar(
            p,
            [Entry(e.name, "dir") if e.name == "lifecycle/detector" else e for e in lifecycle_entries()],
        ),
        "phase 'detector' is a dir",
    ),
    "lifecycle directory is a symlink": (
        lambda p: write_tar(
            p,
            [
                Entry("lifecycle", "symlink", linkname="/usr/bin") if e.name == "lifecycle" else e
                for e in lifecycle_entries()
            ],
        ),
        "'lifecycle' is a symlink to '/usr/bin', but the lifecycle is expected in a real directory",
    ),
    "image-shape lifecycle directory is a symlink": (
        lambda p: write_tar(
            p,
            [
                Entry(e.name, "symlink", linkname="/usr/bin") if e.name == "cnb/lifecycle" else e
                for e in lifecycle_entries(shape="image")
            ],
        ),
        "the lifecycle directory 'cnb/lifecycle' is a symlink to '/usr/bin', not a directory",
    ),
    "image-shape lifecycle directory is a file": (
        lambda p: write_tar(
            p,
            [
                Entry(e.name, data=b"x") if e.name == "cnb/lifecycle" else e
                for e in lifecycle_entries(shape="image")
            ],
        ),
        "the lifecycle directory 'cnb/lifecycle' is a file, not a directory",
    ),
    "entry under a symlink": (
        _with([Entry("lifecycle/sub", "symlink", linkname="."), Entry("lifecycle/sub/x", data=b"x")]),
        "lies under the symlink 'lifecycle/sub'",
    ),
    "dot-dot entry": (
        _with([Entry("lifecycle/../../escape", data=b"x")]),
        "entry 'lifecycle/../../escape' leaves the archive root",
    ),
    "dot-dot outside lifecycle": (
        _with([Entry("../escape", data=b"x")]),
        "entry '../escape' leaves the archive root",
    ),
    "hardlink outside": (
        _with([Entry("lifecycle/pw", "hardlink", linkname="etc/passwd")]),
        "hardlink 'lifecycle/pw' -> 'etc/passwd' leaves the lifecycle directory",
    ),
    "hardlink escaping root": (
        _with([Entry("lifecycle/pw", "hardlink", linkname="../etc/passwd")]),
        "hardlink to '../etc/passwd' outside the archive",
    ),
    "device node": (_with([Entry("lifecycle/null", "chr")]), "entry 'lifecycle/null' is a character device"),
    "block device elsewhere": (_with([Entry("dev/sda", "blk")]), "entry 'dev/sda' is a block device"),
    "fifo": (_with([Entry("lifecycle/pipe", "fifo")]), "entry 'lifecycle/pipe' is a FIFO"),
    "descriptor is a symlink": (
        lambda p: write_tar(
            p, [Entry("lifecycle.toml", "symlink", linkname="/etc/passwd"), *lifecycle_entries()[1:]]
        ),
        "the descriptor must be a regular file",
    ),
    "corrupt gzip": (_corrupt_gzip, "corrupt gzip data"),
    "gzip crc mismatch": (_crc_mismatch, "corrupt gzip data"),
    "truncated gzip": (_truncated_gzip, "truncated gzip stream"),
    "garbage after gzip": (_garbage_after_gzip, "unexpected bytes after the gzip stream"),
    "truncated tar": (_truncated_tar, "truncated tar archive"),
    "absurd size": (_absurd_size, "entry 'lifecycle/huge' claims an absurd size"),
    "empty file": (lambda p: (p.write_bytes(b""), p)[1], "is empty"),
    "zip file": (lambda p: (p.write_bytes(b"PK\x03\x04" + b"\0" * 100), p)[1], "is a zip archive"),
    "xz file": (lambda p: (p.write_bytes(b"\xfd7zXZ\0" + b"\0" * 100), p)[1], "is an xz archive"),
    "not an archive": (lambda p: (p.write_bytes(b"hello world, this is text " * 40), p)[1], "l.tgz"),
    "gzip of junk": (lambda p: (p.write_bytes(gzip.compress(b"junk" * 1000)), p)[1], "l.tgz"),
}


def cache_files(root: Path) -> list[str]:
    """Every file in the cache but the lock files (which hold no content)."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.parent.name != "locks"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_archive(tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    archive = make(tmp_path / "l.tgz")
    out = tmp_path / "out" / "layer.tar"
    out.parent.mkdir()
    result = run_cli("resolve", str(archive), "--save", str(out))
    line = one_line_error(result)
    assert expected in line, line
    assert str(archive) in line  # every message names the file
    assert list(out.parent.iterdir()) == []  # --save wrote nothing, not even a temp file
    assert cache_files(Path(os.environ["CNBKIT_CACHE_DIR"])) == []


def test_malformed_toml_names_line_and_column(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz", desc=b'[lifecycle]\nversion = "0.21.0\n')
    line = one_line_error(run_cli("resolve", str(archive)))
    assert "line 2, column" in line and "lifecycle.toml" in line


def test_nonexistent_path(tmp_path: Path) -> None:
    line = one_line_error(run_cli("resolve", str(tmp_path / "nope.tgz"), "--save", str(tmp_path / "o.tar")))
    assert line == f"error: {tmp_path / 'nope.tgz'}: no such file or directory"
    assert not (tmp_path / "o.tar").exists()


def test_save_into_a_missing_directory(tmp_path: Path) -> None:
    archive = make_lifecycle(tmp_path / "l.tgz")
    out = tmp_path / "no" / "such" / "layer.tar"
    line = one_line_error(run_cli("resolve", str(archive), "--save", str(out)))
    assert line == f"error: cannot write {out}: the directory {out.parent} does not exist"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli("--debug", "resolve", str(tmp_path / "nope.tgz"))
    assert result.returncode == 1 and "Traceback" in result.stderr
    after = run_cli("resolve", str(tmp_path / "nope.tgz"), "--debug")
    assert after.returncode == 1 and "Traceback" in after.stderr
    env = run_cli("resolve", str(tmp_path / "nope.tgz"), env={"CNBKIT_DEBUG": "1"})
    assert "Traceback" in env.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["resolve", "x.tgz", "--platform", "linux"],
        ["resolve", "x.tgz", "--platform", "linux/amd64/v1/extra"],
        ["resolve", "--lifecycle-version", "not-a-version"],
        ["resolve", "x.tgz", "--no-such-option"],
        ["resolve"],
        ["resolve", "x.tgz", "--lifecycle-version", "0.21.0"],
        ["resolve", "x.tgz", "--pull-policy", "sometimes"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr


def test_unclaimed_scheme_lists_the_claims() -> None:
    line = one_line_error(run_cli("resolve", "ftp://example.invalid/l.tgz"))
    assert "no plugin claims 'ftp://example.invalid/l.tgz'" in line
    assert "file://PATH (file)" in line and "https://" in line


def test_password_in_uri_is_never_printed() -> None:
    result = run_cli("resolve", "ftp://user:hunter2@example.invalid/l.tgz", "--json")
    assert result.returncode == 1
    assert "hunter2" not in result.stderr + result.stdout
    assert "user:***@example.invalid" in result.stderr
