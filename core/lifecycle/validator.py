"""The lifecycle validator: one pass over any Blob gives a :class:`Lifecycle` and its layer.

Both archive shapes are accepted: the release tarball (``lifecycle.toml`` at the root, the
binaries in one top-level directory of any name) and the image shape (``cnb/lifecycle.toml``
and ``cnb/lifecycle/``, with or without a leading ``/``).

The archive is read once, as a stream, to its very end (so the artifact's digest is known and
checked before anything is trusted). Entries are checked as they pass
(:mod:`cnbkit.archive.tarreader`); those that may belong to the lifecycle are written to the
layer at once (:mod:`.layer`). Nothing outside the lifecycle directory can reach the layer. A
failure, or a lifecycle the caller's ``accept`` refuses, leaves nothing behind: not in the
cache, not at the ``save`` path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from ..archive.atomic import beside
from ..blob import Blob
from ..cache import Cache
from ..errors import WriteError
from ..oci.platform import Platform
from . import metadata
from .descriptor import parse_descriptor
from .model import PHASES, Lifecycle, StoredLayer

__all__ = ["Accept", "Rebuilder", "validate_lifecycle"]

Accept = Callable[[Lifecycle], None]
"""Called with a validated lifecycle before its layer is put in place; raise to refuse it."""

_PHASE_NAMES = tuple(p + s for p in PHASES for s in ("", ".exe"))


def validate_lifecycle(
    blob: Blob,
    platform: Platform,
    cache: Cache,
    *,
    save: str | os.PathLike[str] | None = None,
    accept: Accept | None = None,
    max_size: int | None = None,
) -> Lifecycle:
    """Validate the lifecycle in ``blob`` for ``platform``, and write its layer.

    Args:
        blob: any blob; it is read once, to its end.
        platform: the target platform (``windows`` means ``.exe`` phases).
        cache: where the metadata (and, without ``save``, the layer) is kept.
        save: write the layer straight to this path (atomically) instead of into the cache.
        accept: extra checks (the policy plugins); a refusal leaves ``save`` untouched.
        max_size: the most bytes the uncompressed archive may hold (and so the layer); default
            :data:`cnbkit.archive.tarreader.DEFAULT_MAX_TOTAL` (4 GiB).

    Returns:
        The :class:`Lifecycle`. A second call for the same artifact (same digest) is served
        from the cache without reading the artifact.

    Raises:
        ArchiveError: corrupt input, an entry the safety rules refuse, or more than ``max_size``.
        LifecycleError: no descriptor, a bad descriptor, missing phase binaries.
        WriteError: the layer cannot be written.
    """
    target = Path(save).absolute() if save is not None else None
    accept = _with_label_check(blob, accept)
    cached = metadata.load(cache, blob, platform, Rebuilder(platform, cache, max_size))
    if cached is None:
        return _build(blob, platform, cache, target, accept, max_size)
    if accept is not None:
        accept(cached)
    if target is not None:
        cached.save_layer(target)
    return cached


class Rebuilder:
    """Makes a validated lifecycle's layer again (a cached layer that went away, a ``--save``
    file linked into the cache that was edited): the artifact is validated anew, as the first
    time, without the policy step that already accepted it.

    Args:
        platform: the platform it was validated for.
        cache: the cache it was validated into.
        max_size: the size limit it was validated with.
    """

    __slots__ = ("cache", "max_size", "platform")

    def __init__(self, platform: Platform, cache: Cache, max_size: int | None) -> None:
        self.platform = platform
        self.cache = cache
        self.max_size = max_size

    def __call__(self, blob: Blob, dest: Path | None) -> Path:
        """Read ``blob`` again; write the layer to ``dest``, or into the cache; return where."""
        path = _build(blob, self.platform, self.cache, dest, None, self.max_size).stored.path
        assert path is not None  # a lifecycle just built has its layer file
        return path


def _with_label_check(blob: Blob, accept: Accept | None) -> Accept | None:
    """``accept``, preceded for a lifecycle out of an image by the check of its labels."""
    info = blob.image
    if info is None:
        return accept
    from .from_image import check_labels

    def checked(lifecycle: Lifecycle) -> None:
        check_labels(info, lifecycle.descriptor)
        if accept is not None:
            accept(lifecycle)

    return checked


def _build(
    blob: Blob,
    platform: Platform,
    cache: Cache,
    save: Path | None,
    accept: Accept | None,
    max_size: int | None,
) -> Lifecycle:
    # The reading machinery (the tar reader, shapes, link checks, the layer writer) is imported
    # here: a warm resolve is served from the cache and never needs it.
    from .checks import check_binaries, check_links
    from .layer import SpeculativeLayer
    from .placement import place
    from .shape import check_containers, find_shape, scan

    target = blob.platform or platform
    out = beside(save) if save is not None else cache.new_temp_path(".layer")
    layer = SpeculativeLayer(out, cache.new_temp_path(".spool"))
    try:
        descriptors, containers = scan(blob, layer, max_size)
        descriptor_name, directory = find_shape(layer.items, descriptors, blob.source, _PHASE_NAMES)
        check_containers(containers, directory, blob.source)
        data, mode, original = descriptors[descriptor_name]
        descriptor = parse_descriptor(data, f"{blob.source}: {original}")
        placed = place(layer.items, directory)
        links = check_links(placed, directory, blob.source)
        binaries = check_binaries(placed, links, directory, target, blob.source)
        layer_digest, layer_size = layer.finish(directory, placed, data, mode)

        def lifecycle_at(path: Path) -> Lifecycle:
            return Lifecycle.from_descriptor(
                descriptor,
                target,
                binaries=binaries,
                blob=blob,
                layer_digest=layer_digest,
                layer_size=layer_size,
                stored=StoredLayer(path, Rebuilder(platform, cache, max_size)),
            )

        if accept is not None:
            accept(lifecycle_at(out))  # the policy sees the layer before anyone else can
        assert blob.digest is not None  # the stream was read to its end and verified
        if save is not None:
            final = save
        else:
            final = metadata.lifecycle_dir(cache, blob.digest, target) / metadata.LAYER_NAME
            final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(out, final)
        except OSError as exc:
            raise WriteError.from_os(final, exc) from None
        lifecycle = lifecycle_at(final)
        metadata.store(cache, lifecycle, data)
        if save is not None:
            _link_into_cache(
                final, metadata.lifecycle_dir(cache, blob.digest, target) / metadata.LAYER_NAME, cache
            )
        return lifecycle
    except BaseException:
        layer.abort()
        raise
    finally:
        layer.close()


def _link_into_cache(saved: Path, cached: Path, cache: Cache) -> None:
    """Keep the layer written to ``save`` in the cache too, as a hard link (nothing copied), so
    that a warm ``--save`` copies it instead of reading the whole artifact again.

    The two names share one inode: a saved file edited in place changes the cached layer too,
    which is why the cached layer is verified before it is served when it has another name
    (:meth:`Lifecycle.layer`) and replaced by a rebuild when it no longer matches. Another
    filesystem, or a read-only cache: nothing is kept, as before.
    """
    if cached.exists():
        return
    try:
        tmp = cache.new_temp_path(".layer")
    except WriteError:
        return
    try:
        os.link(saved, tmp)
        os.rename(tmp, cached)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
