"""The one rule for which paths of an OCI layout may be read or written, for reader and writer.

A layout is a directory someone else may have made, so nothing under it is followed: its
directories (``blobs/``, ``blobs/<algorithm>/``) must be real directories, since a symlink would
lead reads and writes out of the layout; and its files (``oci-layout``, ``index.json``, blobs)
are opened without following a link and without blocking, then must be regular files: a FIFO
would block the read until Ctrl-C, a device would never end. The directory itself may be a
symlink: the user named it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from ..oci.errors import LayoutError

__all__ = ["MARKER_LIMIT", "checked_dir", "open_regular", "read_small"]

MARKER_LIMIT = 4096  # an oci-layout file: {"imageLayoutVersion": "1.0.0"} and room to spare

# O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer; the
# flag is cleared once fstat has shown a regular file (where it changes nothing anyway).
_READ_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
)
_REGULAR = "a layout's files must be regular files: copy the image into a new layout"
_KINDS = (
    (stat.S_ISLNK, "a symlink"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISDIR, "a directory"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def checked_dir(root: Path, *parts: str, where: str, create: bool = False) -> Path:
    """``root/parts...``, after checking that each part is a real directory, not a symlink.

    A part that does not exist is created when ``create`` is true; otherwise the path is
    returned as it is, for the open that follows to report what is missing.

    Raises:
        LayoutError: a part is a symlink or not a directory (``where`` starts the message).
    """
    path = root
    for depth, part in enumerate(parts, 1):
        path = path / part
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return root.joinpath(*parts)
        if not stat.S_ISDIR(mode):
            name = "/".join(parts[:depth])
            raise LayoutError(
                f"{where}: {name} is {_kind(mode)}, not a directory; a layout is read and written "
                "only through its own directories: remove it or choose another layout"
            )
    return path


def open_regular(path: Path, *, where: str, name: str) -> int:
    """Open ``path`` for reading if it is a regular file; return the (blocking) descriptor.

    Raises:
        FileNotFoundError: there is no such file (the caller says what that means).
        LayoutError: a symlink, a FIFO, a device, a directory, or not readable.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        mode = _lstat_mode(path)
        if mode is not None and stat.S_ISLNK(mode):
            raise LayoutError(f"{where}: {name} is a symlink; {_REGULAR}") from None
        raise LayoutError(f"{where}: cannot read {name} ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise LayoutError(f"{where}: {name} is not a regular file ({_kind(mode)}); {_REGULAR}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_small(path: Path, *, where: str, name: str, limit: int) -> bytes:
    """The whole of a small regular file (``oci-layout``, ``index.json``) of at most ``limit`` bytes.

    Raises:
        FileNotFoundError: there is no such file.
        LayoutError: not a regular file (see :func:`open_regular`), or larger than ``limit``.
    """
    with os.fdopen(open_regular(path, where=where, name=name), "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise LayoutError(f"{where}: {name} is larger than {limit} bytes")
    return data


def _lstat_mode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return None
