"""Exporting an image of the ``oci`` model into an OCI image layout (``oci:DIR[:TAG]``).

Blobs are written once: one already in the layout is not read again, and one in cnbkit's cache
is hard-linked (after its digest is checked) when the layout is on the same file system. A
new layout is written in a hidden directory beside the target and renamed into place only when
complete, so a failure leaves nothing at the target; into an existing layout, ``index.json``
changes last (readers never see a tag pointing at a half-written image).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ..archive.atomic import beside
from ..archive.streams import close_stream
from ..archive.threads import side_by_side
from ..errors import UsageError, WriteError
from ..locator import local_path
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.image import Image
from ..oci.image_index import ImageIndex
from .layout import parse_layout_locator
from .layout_writer import LayoutWriter

__all__ = ["export_layout"]


def _link_cached(writer: LayoutWriter, images: Sequence[Image]) -> None:
    """Hard-link every blob of ``images`` that cnbkit's cache holds and the layout lacks, each
    checked first; the checks (reading and hashing, no writes) run side by side, so a warm
    export of two platforms' lifecycle layers costs about one. A blob that cannot be linked is
    copied by :func:`_write_image`."""
    cached: dict[str, tuple[Path, int]] = {}
    for image in images:
        for layer in image.layers():
            if layer.digest in cached or layer.origin is None or writer.has_blob(layer.digest):
                continue
            found = layer.origin.cached_blob(layer.descriptor)
            if found is not None:
                cached[layer.digest] = (found, layer.size)
    checks = [partial(writer.check_file, path, digest, size) for digest, (path, size) in cached.items()]
    for digest, ok in zip(cached, side_by_side(checks), strict=True):
        if ok:
            path, size = cached[digest]
            writer.link_blob(path, digest, size, checked=True)


def _write_image(writer: LayoutWriter, image: Image) -> None:
    """Every blob of ``image``, its manifest last; a blob already in the layout is not read."""
    for layer in image.layers():
        if writer.has_blob(layer.digest):
            continue  # there before, or linked from the cache
        stream = layer.open()  # verified against the digest and size as it streams
        try:
            writer.write_blob_stream(stream, expected=layer.digest)
        finally:
            close_stream(stream)
    writer.write_blob(image.config.raw, expected=image.manifest.config.digest)
    writer.write_blob(image.manifest.raw, expected=image.digest)


def _write(writer: LayoutWriter, image: Image | ImageIndex, tag: str | None) -> None:
    _link_cached(writer, image.images if isinstance(image, ImageIndex) else [image])
    if isinstance(image, ImageIndex):
        for one in image.images:  # a blob two platforms share is in the layout after the first
            _write_image(writer, one)
        writer.write_blob(image.index.raw, expected=image.digest)
        writer.add(image.index.descriptor(), tag)
    else:
        _write_image(writer, image)
        writer.add(Descriptor(mt.OCI_MANIFEST, image.digest, image.manifest.size), tag)


def export_layout(
    image: Image | ImageIndex, rest: str, base_dir: str | os.PathLike[str] | None = None
) -> str:
    """Write ``image`` to the layout ``oci:REST`` (``DIR`` or ``DIR:TAG``).

    Args:
        image: any image of the ``oci`` model (a builder, an image another plugin supplied),
            or a multi-platform image: its index is what ``index.json`` names.
        rest: what follows ``oci:``; a relative ``DIR`` resolves against ``base_dir``.
        base_dir: the directory relative paths resolve against (default: the working dir).

    Returns:
        ``oci:DIR[:TAG] sha256:...``: where the image went and its manifest (or index) digest.

    Raises:
        UsageError: a digest instead of a tag (a written image's digest is not chosen).
        LayoutError: the directory exists and is not an OCI layout.
        WriteError: a file cannot be written (the message names it).
    """
    where = parse_layout_locator(rest)
    if where.digest is not None:
        raise UsageError(f"oci:{rest}: an export target takes a tag, not a digest")
    target = local_path(where.path, base_dir)
    shown = f"oci:{target}" + (f":{where.tag}" if where.tag else "")
    try:
        if target.exists():
            _write(LayoutWriter(target), image, where.tag)
        else:
            if not target.parent.is_dir():
                raise WriteError(f"cannot write {target}: the directory {target.parent} does not exist")
            temp = beside(target)
            try:
                _write(LayoutWriter(temp), image, where.tag)
                os.rename(temp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    shutil.rmtree(temp)
    except OSError as exc:
        raise WriteError.from_os(target, exc) from None
    return f"{shown} {image.digest}"
