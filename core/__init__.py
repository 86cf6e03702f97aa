"""cnbkit: get a Cloud Native Buildpacks lifecycle from wherever it lives into a builder.

The public surface, for users of the Python API and for plugin authors alike. Built-in
resolvers import only these names, exactly as a third-party plugin does.
"""

from __future__ import annotations

from .api import resolve_lifecycle
from .blob import Blob, FileBlob
from .cache import Cache
from .errors import (
    ArchiveError,
    CacheMissError,
    CnbkitError,
    DigestMismatchError,
    DownloadError,
    LifecycleError,
    NoResolverError,
    PluginError,
    UsageError,
)
from .lifecycle.descriptor import APISet, Descriptor
from .lifecycle.model import Lifecycle, LifecycleAPIs
from .locator import Locator, parse_locator
from .oci.platform import Platform, parse_platform
from .plugin.context import Context
from .plugin.hookspecs import hookimpl
from .redact import redact

__version__ = "0.1.0"

__all__ = [
    "APISet",
    "ArchiveError",
    "Blob",
    "Cache",
    "CacheMissError",
    "CnbkitError",
    "Context",
    "Descriptor",
    "DigestMismatchError",
    "DownloadError",
    "FileBlob",
    "Lifecycle",
    "LifecycleAPIs",
    "LifecycleError",
    "Locator",
    "NoResolverError",
    "Platform",
    "PluginError",
    "UsageError",
    "__version__",
    "hookimpl",
    "parse_locator",
    "parse_platform",
    "redact",
    "resolve_lifecycle",
]
