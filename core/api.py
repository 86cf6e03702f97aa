"""The Python API: :func:`resolve_lifecycle`, the same path ``cnbkit resolve`` takes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .blob import Blob, FileBlob
from .cache.stamps import remember_digest, remembered_digest
from .errors import LifecycleError, UsageError, WriteError
from .lifecycle.model import Lifecycle
from .lifecycle.validator import validate_lifecycle
from .locator import parse_locator
from .options import Options
from .plugin.context import Context
from .plugin.host import PluginHost

__all__ = ["new_context", "resolve_lifecycle", "resolve_with"]


def new_context(options: Options, host: PluginHost | None = None) -> Context:
    """A :class:`Context` for ``options`` with the plugins of the entry-point group loaded."""
    return Context(options, host or PluginHost.from_entry_points())


def _local_file(blob: Blob) -> Path | None:
    return blob.path if isinstance(blob, FileBlob) and not blob.is_dir else None


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


def _save_target(save: str | os.PathLike[str]) -> Path:
    target = Path(save).absolute()
    if not target.parent.is_dir():
        raise WriteError(f"cannot write {target}: the directory {target.parent} does not exist")
    return target


def resolve_with(
    context: Context,
    uri: str | None = None,
    lifecycle_version: str | None = None,
    save: str | os.PathLike[str] | None = None,
) -> tuple[str, Lifecycle]:
    """Resolve and validate with an existing context; return the (redacted) URI and lifecycle.

    With ``save``, the layer is written there (atomically) as the archive is read, and put in
    place only once the policy plugins accepted the lifecycle.

    Raises:
        UsageError: neither or both of ``uri`` and ``lifecycle_version``.
    """
    if (uri is None) == (lifecycle_version is None):
        raise UsageError("give a lifecycle URI or a lifecycle version, not both or neither")
    target = _save_target(save) if save is not None else None
    if lifecycle_version is not None:
        from .lifecycle.versions import resolve_version

        shown, blob = resolve_version(
            lifecycle_version, context.platform, context.options.lifecycle_mirror, context
        )
    else:
        assert uri is not None
        shown, blob = str(parse_locator(uri, context.options.base_dir)), context.resolve(uri)
    local = _local_file(blob)
    if local is not None and blob.digest is None:
        known = remembered_digest(context.cache, local)
        if known is not None:
            blob.record(known)

    def accept(lifecycle: Lifecycle) -> None:
        if lifecycle_version is not None:
            _check_version(lifecycle, lifecycle_version, shown)
        problems = context.check_lifecycle(lifecycle)
        if problems:
            raise LifecycleError(
                f"lifecycle {lifecycle.version} from {shown} was refused: {'; '.join(problems)}"
            )

    lifecycle = validate_lifecycle(
        blob, context.platform, context.cache, save=target, accept=accept, max_size=context.options.max_size
    )
    if local is not None and blob.digest is not None:
        remember_digest(context.cache, local, blob.digest, blob.size or 0)
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
        uri: a bare path, ``file://``, ``https://`` or any scheme a plugin claims.
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
