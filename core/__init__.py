"""cnbkit: get a Cloud Native Buildpacks lifecycle from wherever it lives into a builder.

The public surface, for users of the Python API and for plugin authors alike. Built-in
resolvers import only these names, exactly as a third-party plugin does (plugins.md).

The face is lazy (PEP 562): ``import cnbkit`` loads nothing but this module and the errors;
each name is imported from its home module the first time it is used, so the CLI and a warm
resolve pay only for what they touch. docs/architecture.md maps the packages behind it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ArchiveError,
    BuilderError,
    CacheMissError,
    CnbkitError,
    DigestMismatchError,
    DownloadError,
    LifecycleError,
    NoResolverError,
    PluginError,
    TomlError,
    UsageError,
    WriteError,
)

# Bound here, not lazily: ``redact`` is also the name of its module, and the first import of a
# submodule sets the package's attribute of that name (``cnbkit.redact`` would become the module
# as soon as anything imported ``cnbkit.redact``). The module is small and imports stdlib only.
from .redact import printable, redact

if TYPE_CHECKING:
    from .api import resolve_lifecycle
    from .archive.atomic import atomic_writer
    from .archive.streams import Readable, close_stream
    from .blob import Blob, FileBlob
    from .builder_api import create_builder
    from .cache import Cache
    from .lifecycle.descriptor import APISet, Descriptor
    from .lifecycle.model import Lifecycle, LifecycleAPIs
    from .lifecycle.versions import semver_key
    from .locator import PACKAGE_FILE_SUFFIX, Locator, parse_locator
    from .oci import mediatypes as media_types
    from .oci.config import ImageConfig
    from .oci.descriptor import Descriptor as OciDescriptor
    from .oci.errors import ImageError, ImageNotFoundError, ManifestError, PlatformNotFoundError
    from .oci.image import Image, Layer
    from .oci.image_index import ImageIndex
    from .oci.manifest import Index, Manifest
    from .oci.platform import Platform, parse_platform
    from .plugin.context import Context
    from .plugin.hookspecs import hookimpl
    from .plugin.loader import register_plugin, unregister_plugin
    from .transport.daemon import DaemonUnavailableError
    from .transport.docker_archive import open_docker_archive, write_docker_archive
    from .transport.layout import LayoutLocator, open_layout, parse_layout_locator
    from .transport.layout_export import export_layout
    from .transport.oci_archive import open_oci_archive, write_oci_archive
    from .transport.registry.reference import Reference as ImageReference
    from .transport.registry.reference import parse_reference as parse_image_reference
    from .transport.registry.wire import RegistryError

__version__ = "0.1.0"

# name -> the module that defines it (relative to this package), or "module:its own name"
_LAZY = {
    "atomic_writer": ".archive.atomic",
    "media_types": ".oci.mediatypes:",
    "OciDescriptor": ".oci.descriptor:Descriptor",
    "ImageError": ".oci.errors",
    "ImageNotFoundError": ".oci.errors",
    "ManifestError": ".oci.errors",
    "PlatformNotFoundError": ".oci.errors",
    "DaemonUnavailableError": ".transport.daemon",
    "open_docker_archive": ".transport.docker_archive",
    "write_docker_archive": ".transport.docker_archive",
    "open_oci_archive": ".transport.oci_archive",
    "write_oci_archive": ".transport.oci_archive",
    "PACKAGE_FILE_SUFFIX": ".locator",
    "ImageReference": ".transport.registry.reference:Reference",
    "parse_image_reference": ".transport.registry.reference:parse_reference",
    "RegistryError": ".transport.registry.wire",
    "resolve_lifecycle": ".api",
    "create_builder": ".builder_api",
    "export_layout": ".transport.layout_export",
    "Readable": ".archive.streams",
    "close_stream": ".archive.streams",
    "Blob": ".blob",
    "FileBlob": ".blob",
    "Cache": ".cache",
    "APISet": ".lifecycle.descriptor",
    "Descriptor": ".lifecycle.descriptor",
    "Lifecycle": ".lifecycle.model",
    "LifecycleAPIs": ".lifecycle.model",
    "semver_key": ".lifecycle.versions",
    "Locator": ".locator",
    "parse_locator": ".locator",
    "ImageConfig": ".oci.config",
    "Image": ".oci.image",
    "Layer": ".oci.image",
    "ImageIndex": ".oci.image_index",
    "Index": ".oci.manifest",
    "Manifest": ".oci.manifest",
    "Platform": ".oci.platform",
    "parse_platform": ".oci.platform",
    "Context": ".plugin.context",
    "hookimpl": ".plugin.hookspecs",
    "register_plugin": ".plugin.loader",
    "unregister_plugin": ".plugin.loader",
    "LayoutLocator": ".transport.layout",
    "open_layout": ".transport.layout",
    "parse_layout_locator": ".transport.layout",
}

__all__ = [
    "APISet",
    "ArchiveError",
    "Blob",
    "BuilderError",
    "Cache",
    "CacheMissError",
    "CnbkitError",
    "Context",
    "Descriptor",
    "DigestMismatchError",
    "DownloadError",
    "FileBlob",
    "Image",
    "ImageConfig",
    "ImageIndex",
    "Index",
    "Layer",
    "LayoutLocator",
    "Lifecycle",
    "LifecycleAPIs",
    "LifecycleError",
    "Locator",
    "Manifest",
    "NoResolverError",
    "Platform",
    "PluginError",
    "Readable",
    "TomlError",
    "UsageError",
    "WriteError",
    "__version__",
    "create_builder",
    "export_layout",
    "hookimpl",
    "open_layout",
    "parse_layout_locator",
    "parse_locator",
    "parse_platform",
    "printable",
    "redact",
    "register_plugin",
    "resolve_lifecycle",
    "unregister_plugin",
    "atomic_writer",
    "media_types",
    "OciDescriptor",
    "ImageError",
    "ImageNotFoundError",
    "ManifestError",
    "PlatformNotFoundError",
    "DaemonUnavailableError",
    "open_docker_archive",
    "write_docker_archive",
    "open_oci_archive",
    "write_oci_archive",
    "PACKAGE_FILE_SUFFIX",
    "ImageReference",
    "parse_image_reference",
    "RegistryError",
    "semver_key",
    "close_stream",
]


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'cnbkit' has no attribute {name!r}")
    module, colon, attribute = where.partition(":")
    loaded = importlib.import_module(module, __name__)
    # "module:" is the module itself; "module:attr" a name the face spells differently
    value = (getattr(loaded, attribute) if attribute else loaded) if colon else getattr(loaded, name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
