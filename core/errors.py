"""The exception hierarchy: every error cnbkit raises on purpose is a :class:`CnbkitError`.

The CLI prints ``error: <message>`` for these and exits 1 (2 for :class:`UsageError`), so each
message is written to stand alone on one line: what was wrong, where, and what to do.
"""

from __future__ import annotations

import errno
import os
from typing import TypeVar

__all__ = [
    "ArchiveError",
    "BuilderError",
    "CacheMissError",
    "CnbkitError",
    "DigestMismatchError",
    "DownloadError",
    "LifecycleError",
    "NoResolverError",
    "PluginError",
    "TomlError",
    "UsageError",
    "WriteError",
]


_E = TypeVar("_E", bound="CnbkitError")


class CnbkitError(Exception):
    """Base of every error cnbkit raises on purpose; its message is meant for the user."""

    exit_code = 1

    def within(self: _E, prefix: str) -> _E:
        """This error with ``prefix: `` before its message: a new exception of the same type
        and attributes, for a caller that knows where it happened to raise ``from`` this one
        (an exception in flight is never rewritten)."""
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.args = (f"{prefix}: {self}",)
        return twin


class UsageError(CnbkitError):
    """A bad command line or API argument (exit code 2)."""

    exit_code = 2


class NoResolverError(CnbkitError):
    """No plugin claimed a URI."""


class PluginError(CnbkitError):
    """A plugin raised an unexpected exception; the message names the plugin.

    Attributes:
        plugin: the plugin's name.
    """

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(message)
        self.plugin = plugin


class ArchiveError(CnbkitError):
    """An archive is corrupt, truncated, or holds an entry that the safety rules refuse."""


class LifecycleError(CnbkitError):
    """The archive is readable but is not a valid lifecycle (descriptor, binaries)."""


class BuilderError(CnbkitError):
    """A builder cannot be made from these inputs: builder.toml, a buildpack, the build image or
    the lifecycle does not fit the others; the message names both sides."""


class TomlError(CnbkitError):
    """A TOML document could not be decoded; the message names the file (and line)."""


class DownloadError(CnbkitError):
    """A download failed (HTTP status, TLS, timeout, short body).

    Attributes:
        status: the HTTP status when the server answered with an error (``404``), else
            ``None`` (the connection, TLS or the body failed).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DigestMismatchError(DownloadError):
    """Content did not match the digest it was pinned to or published with."""


class CacheMissError(CnbkitError):
    """``--offline`` was asked for and the cache lacks what is needed."""


# Local write failures, said as a user would say them; never mistaken for network trouble.
_WRITE_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this system allows (ulimit -f?)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "the directory does not exist",
    errno.EPIPE: "its reader closed the pipe",
}


class WriteError(CnbkitError):
    """A local file could not be written (disk full, read-only, no permission).

    Attributes:
        errno: the operating system's error number, when there was one.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno

    @classmethod
    def from_os(cls, path: str | os.PathLike[str], exc: OSError) -> WriteError:
        """The error for writing ``path`` failing with ``exc``, naming the cause."""
        reason = _WRITE_REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        return cls(f"cannot write {os.fspath(path)}: {reason}", exc.errno)
