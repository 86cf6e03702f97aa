"""The exception hierarchy: every error cnbkit raises on purpose is a :class:`CnbkitError`.

The CLI prints ``error: <message>`` for these and exits 1 (2 for :class:`UsageError`), so each
message is written to stand alone on one line: what was wrong, where, and what to do.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "CacheMissError",
    "CnbkitError",
    "DigestMismatchError",
    "DownloadError",
    "LifecycleError",
    "NoResolverError",
    "PluginError",
    "UsageError",
]


class CnbkitError(Exception):
    """Base of every error cnbkit raises on purpose; its message is meant for the user."""

    exit_code = 1


class UsageError(CnbkitError):
    """A bad command line or API argument (exit code 2)."""

    exit_code = 2


class NoResolverError(CnbkitError):
    """No plugin claimed a URI."""


class PluginError(CnbkitError):
    """A plugin raised an unexpected exception; the message names the plugin."""

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(message)
        self.plugin = plugin


class ArchiveError(CnbkitError):
    """An archive is corrupt, truncated, or holds an entry that the safety rules refuse."""


class LifecycleError(CnbkitError):
    """The archive is readable but is not a valid lifecycle (descriptor, binaries)."""


class DownloadError(CnbkitError):
    """A download failed (HTTP status, TLS, timeout, short body)."""


class DigestMismatchError(DownloadError):
    """Content did not match the digest it was pinned to or published with."""


class CacheMissError(CnbkitError):
    """``--offline`` was asked for and the cache lacks what is needed."""
