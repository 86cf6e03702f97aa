"""The Python API: :func:`resolve_lifecycle`, the same path ``cnbkit resolve`` takes."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from .archive.streams import close_stream, drain_into
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


def _lifecycle_blob(context: Context, uri: str) -> Blob:
    """The Blob of the lifecycle ``uri`` names: the one a resolver claims it as, else the
    lifecycle out of the image an image source supplies (``oci:DIR:TAG``, ``docker://REF``),
    taken out by the one core service and credited to that plugin."""
    found = context.find(uri)
    if isinstance(found.artifact, Blob):
        return found.artifact
    from .lifecycle.from_image import image_blob

    return image_blob(found.artifact, context.cache, found.plugin)


def _check_version(lifecycle: Lifecycle, requested: str, shown: str) -> None:
    from .lifecycle.versions import normal_version, parse_version

    found = normal_version(lifecycle.version) or lifecycle.version
    if found != parse_version(requested):
        raise LifecycleError(
            f"{shown} holds lifecycle {lifecycle.version}, not the requested {requested}: "
            "check the mirror's contents"
        )


def _save_target(save: str | os.PathLike[str]) -> tuple[Path, bool]:
    """Where ``--save`` writes, and whether it streams there (``True``) or replaces a file.

    A new path or a regular file is written atomically (a temp file beside it, renamed). A FIFO
    or a character device (``/dev/null``, a terminal), or a symlink to one (``/dev/stdout``
    when it is a pipe), is streamed into, never replaced. Anything else is refused before any
    work: a directory, a socket, and a symlink to a file (replacing it would break the link,
    and writing through it would not be atomic).

    Raises:
        WriteError: the target is refused, or its directory does not exist.
    """
    target = Path(save).absolute()
    try:
        st = target.lstat()
    except FileNotFoundError:
        if not target.parent.is_dir():
            raise WriteError(f"cannot write {target}: the directory {target.parent} does not exist") from None
        return target, False
    except OSError as exc:
        raise WriteError.from_os(target, exc) from None
    if stat.S_ISREG(st.st_mode):
        return target, False
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            if _is_stream(target.stat().st_mode):
                return target, True
        raise WriteError(
            f"cannot write {target}: it is a symlink, which --save neither replaces nor writes "
            f"through to a file; give the file itself ({os.path.realpath(target)})"
        )
    if _is_stream(st.st_mode):
        return target, True
    kind = "a directory" if stat.S_ISDIR(st.st_mode) else "neither a file, a FIFO nor a character device"
    raise WriteError(f"cannot write {target}: it is {kind}; give a file path for the layer")


def _is_stream(mode: int) -> bool:
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _stream_layer(lifecycle: Lifecycle, target: Path) -> None:
    """Write the layer into the FIFO or device ``target`` (it stays what it is)."""
    reader = lifecycle.layer()  # verified against the layer digest as it is read
    try:
        # No O_CREAT, no O_TRUNC: it exists and is not a file. A FIFO's open waits for its
        # reader, as with any writer.
        with open(os.open(target, os.O_WRONLY | os.O_NOCTTY), "wb") as out:
            drain_into(reader, out)
    except OSError as exc:
        raise WriteError.from_os(target, exc) from None
    finally:
        close_stream(reader)


def resolve_with(
    context: Context,
    uri: str | None = None,
    lifecycle_version: str | None = None,
    save: str | os.PathLike[str] | None = None,
) -> tuple[str, Lifecycle]:
    """Resolve and validate with an existing context; return the (redacted) URI and lifecycle.

    With ``save``, the layer is written there (atomically) as the archive is read, and put in
    place only once the policy plugins accepted the lifecycle. A FIFO or character device at
    ``save`` (``/dev/stdout`` on a pipe) is streamed into after that instead; a directory or a
    symlink to a file is refused before any work.

    Raises:
        UsageError: neither or both of ``uri`` and ``lifecycle_version``.
        WriteError: ``save`` is refused (a directory, a symlink to a file) or cannot be written.
    """
    if (uri is None) == (lifecycle_version is None):
        raise UsageError("give a lifecycle URI or a lifecycle version, not both or neither")
    target, stream = _save_target(save) if save is not None else (None, False)
    if lifecycle_version is not None:
        from .lifecycle.versions import resolve_version

        shown, blob = resolve_version(
            lifecycle_version, context.platform, context.options.lifecycle_mirror, context
        )
    else:
        assert uri is not None
        shown, blob = str(parse_locator(uri, context.options.base_dir)), _lifecycle_blob(context, uri)
    local = _local_file(blob)
    known = None
    if local is not None and blob.digest is None:
        known = remembered_digest(context.cache, local)
        if known is not None:
            blob = blob.known_as(known)

    def accept(lifecycle: Lifecycle) -> None:
        if lifecycle_version is not None:
            _check_version(lifecycle, lifecycle_version, shown)
        problems = context.check_lifecycle(lifecycle)
        if problems:
            raise LifecycleError(
                f"lifecycle {lifecycle.version} from {shown} was refused: {'; '.join(problems)}"
            )

    # A stream target gets the layer only once it was accepted: it goes to the cache first.
    direct = None if stream else target
    lifecycle = validate_lifecycle(
        blob, context.platform, context.cache, save=direct, accept=accept, max_size=context.options.max_size
    )
    if stream and target is not None:
        _stream_layer(lifecycle, target)
    read = lifecycle.blob  # its digest is known now: read to its end, or from the cache's record
    if local is not None and read.digest is not None and read.digest != known:
        # Only when it changed: a warm resolve writes nothing (a read-only cache serves it).
        remember_digest(context.cache, local, read.digest, read.size or 0)
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
        save: write the normalised layer (an uncompressed tar) to this path, atomically; or
            stream it into a FIFO or character device there (never replaced).
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
