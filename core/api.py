"""The Python API: :func:`resolve_lifecycle`, the same path ``cnbkit resolve`` takes."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from .blob import Blob, FileBlob
from .cache import Cache
from .errors import CnbkitError, LifecycleError, UsageError
from .lifecycle.model import Lifecycle
from .lifecycle.validator import validate_lifecycle
from .locator import parse_locator
from .options import Options
from .plugin.context import Context
from .plugin.host import PluginHost

__all__ = ["new_context", "resolve_lifecycle"]


def new_context(options: Options, host: PluginHost | None = None) -> Context:
    """A :class:`Context` for ``options`` with the plugins of the entry-point group loaded."""
    return Context(options, host or PluginHost.from_entry_points())


def _file_key(path: Path) -> tuple[str, str]:
    st = path.stat()
    return f"file:{path.resolve()}", f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _remembered_digest(blob: Blob, cache: Cache) -> None:
    # A local file whose size, times and inode are unchanged since it was validated needs no
    # second read: its digest (and so its validated lifecycle) comes from the cache.
    if isinstance(blob, FileBlob) and not blob.is_dir and blob.digest is None:
        key, stamp = _file_key(blob.path)
        entry = cache.lookup_stamp(key)
        if entry is not None and entry.etag == stamp:
            blob.digest = entry.digest


def _remember_digest(blob: Blob, cache: Cache) -> None:
    from .cache import CacheEntry

    if isinstance(blob, FileBlob) and not blob.is_dir and blob.digest and cache.root not in blob.path.parents:
        key, stamp = _file_key(blob.path)
        cache.remember_stamp(CacheEntry(url=key, digest=blob.digest, size=blob.size or 0, etag=stamp))


def _check_version(lifecycle: Lifecycle, requested: str, shown: str) -> None:
    from .lifecycle.versions import parse_version

    try:
        found = parse_version(lifecycle.version)
    except UsageError:
        found = lifecycle.version
    if found != parse_version(requested):
        raise LifecycleError(
            f"{shown} holds lifecycle {lifecycle.version}, not the requested {requested}: "
            "check the mirror's contents"
        )


def resolve_with(
    context: Context,
    uri: str | None = None,
    lifecycle_version: str | None = None,
    save: str | os.PathLike[str] | None = None,
) -> tuple[str, Lifecycle]:
    """Resolve and validate with an existing context; return the (redacted) URI and lifecycle.

    With ``save``, the layer is written there (atomically) as the archive is read.

    Raises:
        UsageError: neither or both of ``uri`` and ``lifecycle_version``.
    """
    if (uri is None) == (lifecycle_version is None):
        raise UsageError("give a lifecycle URI or a lifecycle version, not both or neither")
    if lifecycle_version is not None:
        from .lifecycle.versions import resolve_version

        shown, blob = resolve_version(lifecycle_version, context)
    else:
        assert uri is not None
        locator = parse_locator(uri, context.options.base_dir)
        shown, blob = str(locator), context.resolve(uri)
    _remembered_digest(blob, context.cache)
    # The layer is staged beside --save and renamed only once the policy hooks accepted it:
    # a refused lifecycle neither appears at the path nor replaces what was there before.
    target = Path(save).absolute() if save is not None else None
    if target is not None and not target.parent.is_dir():
        raise CnbkitError(f"cannot write {target}: the directory {target.parent} does not exist")
    staged = target.with_name(f".{target.name}.{os.getpid()}.staged") if target else None
    try:
        lifecycle = validate_lifecycle(blob, context.platform, context.cache, save=staged)
        _remember_digest(blob, context.cache)
        if lifecycle_version is not None:
            _check_version(lifecycle, lifecycle_version, shown)
        problems = context.host.check_lifecycle(lifecycle, context)
        if problems:
            raise LifecycleError(
                f"lifecycle {lifecycle.version} from {shown} was refused: {'; '.join(problems)}"
            )
        if target is not None and staged is not None:
            os.replace(staged, target)
            lifecycle = dataclasses.replace(lifecycle, _layer_path=target)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    return shown, lifecycle


def resolve_lifecycle(
    uri: str | None = None,
    *,
    lifecycle_version: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    platform: str | None = None,
    save: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Lifecycle:
    """Resolve a lifecycle from a URI (or a version) through the plugins and validate it.

    Args:
        uri: a bare path, ``file://``, ``https://``, ``docker://``, ``oci:`` or a plugin's
            scheme.
        lifecycle_version: instead of ``uri``: a release version (``0.21.0``).
        base_dir: what relative paths resolve against (default: the working directory).
        platform: ``OS/ARCH[/VARIANT]`` (default: the host's).
        save: write the normalised layer (an uncompressed tar) to this path, atomically.
        **options: the other :meth:`Options.build` keywords (``offline``, ``ca_cert``,
            ``timeout``, ``allow_http``, ``cache_dir``, ``lifecycle_mirror``, ...).

    Returns:
        The validated :class:`Lifecycle`; ``lifecycle.layer()`` streams its layer.

    Raises:
        CnbkitError: any failure, with a one-line message.
    """
    opts = Options.build(platform=platform, base_dir=base_dir, **options)
    context = new_context(opts)
    return resolve_with(context, uri, lifecycle_version, save)[1]
