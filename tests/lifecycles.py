"""Builders for lifecycle archives in every shape the tests need (nothing is downloaded)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PHASES = ("analyzer", "builder", "creator", "detector", "exporter", "launcher", "restorer")
LINKED = ("analyzer", "builder", "creator", "detector", "exporter", "extender", "rebaser", "restorer")
BUILDPACK_APIS = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"]
PLATFORM_APIS = ["0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15"]


def descriptor(
    version: str = "0.21.0",
    *,
    style: str = "both",
    buildpack: list[str] | None = None,
    platform: list[str] | None = None,
    deprecated_buildpack: list[str] | None = None,
) -> bytes:
    """A lifecycle.toml: ``new`` ([apis]), ``old`` ([api]) or ``both`` (as real ones)."""
    bp = buildpack or BUILDPACK_APIS
    pf = platform or PLATFORM_APIS
    dep = deprecated_buildpack or []

    def q(items: list[str]) -> str:
        return ", ".join(f'"{i}"' for i in items)

    parts = []
    if style in ("new", "both"):
        parts.append(
            f"[apis]\n[apis.buildpack]\n  deprecated = [{q(dep)}]\n  supported = [{q(bp)}]\n"
            f"[apis.platform]\n  deprecated = []\n  supported = [{q(pf)}]\n"
        )
    if style in ("old", "both"):
        parts.append(f'[api]\n  buildpack = "{bp[0]}"\n  platform = "{pf[0]}"\n')
    parts.append(f'[lifecycle]\n  version = "{version}"\n')
    return "\n".join(parts).encode()


@dataclass
class Entry:
    """One tar entry to write: kind is file, dir, symlink, hardlink, chr, fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    linkname: str = ""
    mode: int | None = None
    size: int | None = None  # override the header size (for lying headers)


def lifecycle_entries(
    *,
    shape: str = "release",
    top: str = "lifecycle",
    windows: bool = False,
    symlinks: bool = True,
    binary: bytes = b"#!/bin/sh\necho lifecycle\n",
    desc: bytes | None = None,
    leading: str = "",
    omit: Iterable[str] = (),
) -> list[Entry]:
    """The entries of a valid lifecycle archive.

    Args:
        shape: ``release`` (lifecycle.toml + TOP/) or ``image`` (cnb/lifecycle.toml + cnb/lifecycle/).
        top: the release shape's binary directory name.
        windows: phases named ``*.exe``.
        symlinks: phases as symlinks to ``lifecycle`` (as real releases) or as regular files.
        binary: the content of the ``lifecycle`` (and launcher) binary.
        desc: the descriptor bytes (default: :func:`descriptor`).
        leading: a prefix for every name (``/`` or ``./``).
        omit: phase names to leave out.
    """
    exe = ".exe" if windows else ""
    root = "cnb/" if shape == "image" else ""
    bindir = "cnb/lifecycle" if shape == "image" else top
    entries: list[Entry] = []
    if shape == "image":
        entries.append(Entry("cnb", "dir"))
    entries.append(
        Entry(f"{root}lifecycle.toml", data=desc if desc is not None else descriptor(), mode=0o644)
    )
    entries.append(Entry(bindir, "dir"))
    entries.append(Entry(f"{bindir}/lifecycle{exe}", data=binary, mode=0o755))
    entries.append(Entry(f"{bindir}/launcher{exe}", data=binary, mode=0o755))
    for phase in LINKED:
        if phase in omit:
            continue
        if symlinks:
            entries.append(Entry(f"{bindir}/{phase}{exe}", "symlink", linkname=f"lifecycle{exe}"))
        else:
            entries.append(Entry(f"{bindir}/{phase}{exe}", data=binary, mode=0o755))
    if "launcher" in omit:
        entries = [e for e in entries if not e.name.endswith(f"/launcher{exe}")]
    for e in entries:
        e.name = leading + e.name
    return entries


def write_tar(path: Path, entries: Iterable[Entry], *, compress: str | None = "gzip") -> Path:
    """Write ``entries`` as a tar (gzip-compressed by default) at ``path``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mtime = 1700000000
            if e.kind == "file":
                info.size = len(e.data) if e.size is None else e.size
                info.mode = 0o644 if e.mode is None else e.mode
                tar.addfile(info, io.BytesIO(e.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "chr": tarfile.CHRTYPE,
                "blk": tarfile.BLKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[e.kind]
            info.mode = (0o755 if e.kind == "dir" else 0o777) if e.mode is None else e.mode
            info.linkname = e.linkname
            tar.addfile(info)
    data = buf.getvalue()
    if compress == "gzip":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
    return path


def make_lifecycle(path: Path, *, compress: str | None = "gzip", **kwargs: object) -> Path:
    """Write a valid lifecycle archive at ``path`` (see :func:`lifecycle_entries`)."""
    return write_tar(path, lifecycle_entries(**kwargs), compress=compress)  # type: ignore[arg-type]


def make_lifecycle_dir(root: Path, *, windows: bool = False) -> Path:
    """Write a release-shaped lifecycle as a directory tree at ``root``."""
    exe = ".exe" if windows else ""
    (root / "lifecycle").mkdir(parents=True)
    (root / "lifecycle.toml").write_bytes(descriptor())
    for name in ("lifecycle", "launcher"):
        path = root / "lifecycle" / f"{name}{exe}"
        path.write_bytes(b"#!/bin/sh\necho lifecycle\n")
        path.chmod(0o755)
    for phase in LINKED:
        os.symlink(f"lifecycle{exe}", root / "lifecycle" / f"{phase}{exe}")
    return root


def big_lifecycle(path: Path, size: int, *, sorted_entries: bool = True) -> Path:
    """A release-shaped lifecycle .tgz whose binaries hold ``size`` bytes that compress like
    compiled code (barely: about 95%), streamed to disk (no whole-archive buffer), for
    benchmarks and large-input tests.

    With ``sorted_entries`` the entries come in the order of lifecycle's own packager
    (``tools/packager``: ``lifecycle.toml`` first, then ``lifecycle/`` as Go's
    ``filepath.Walk`` lists it, names sorted); without, ``lifecycle`` comes before
    ``launcher``, as a hand-made ``tar`` may list them.
    """
    binaries = {"lifecycle": size * 2 // 3, "launcher": size - size * 2 // 3}
    names = sorted([*binaries, *LINKED]) if sorted_entries else [*binaries, *LINKED]
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        desc = descriptor()
        desc_info = tarfile.TarInfo("lifecycle.toml")
        desc_info.size = len(desc)
        tar.addfile(desc_info, io.BytesIO(desc))
        d = tarfile.TarInfo("lifecycle")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tar.addfile(d)
        for name in names:
            info = tarfile.TarInfo(f"lifecycle/{name}")
            if name in binaries:
                info.size = binaries[name]
                info.mode = 0o755
                tar.addfile(info, _RandomReader(binaries[name]))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = "lifecycle"
                info.mode = 0o777
                tar.addfile(info)
    return path


# Compiled binaries are nearly incompressible, but not random: their byte distribution is
# skewed, so deflate Huffman-codes them (a real 300 MB lifecycle gzips to about 281 MB) instead
# of storing them. Pure random bytes would make deflate emit stored blocks, which inflate at
# memcpy speed and say nothing about real archives. This table maps random bytes onto such a
# skewed distribution (gzip keeps about 95% of the size).
_SKEW = bytes((i * 7) % 256 if i < 192 else i % 64 for i in range(256))


class _RandomReader(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self._left = n

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        self._left -= size
        return os.urandom(size).translate(_SKEW)

    def readable(self) -> bool:
        return True
