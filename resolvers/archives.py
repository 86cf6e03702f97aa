"""The ``archives`` plugin: ``docker-archive:PATH[:REF]`` (a ``docker save`` tarball) and
``oci-archive:PATH[:REF]`` (an OCI layout in a tar), as image sources and export targets.

Written from the ``cnbkit`` face alone, as a third party would: reading and writing are the
core's ``open_docker_archive``/``write_docker_archive`` and ``open_oci_archive``/
``write_oci_archive``; this plugin only says which references are its own. As in skopeo,
``PATH`` ends at the first ``:``; ``REF`` picks an image of the archive, or tags the one written.
A bare path or ``file://`` URI ending in ``.cnb`` (a buildpackage file, pack's ``--format file``)
is read as ``oci-archive:PATH``, as pack reads it; the ``file`` resolver passes on it. So is an
``https://`` URL of one, downloaded whole through the core's downloads first (the ``https``
resolver passes on it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cnbkit import (
    PACKAGE_FILE_SUFFIX,
    Context,
    FileBlob,
    Locator,
    UsageError,
    close_stream,
    hookimpl,
    parse_locator,
)

if TYPE_CHECKING:  # the image model is imported only when an archive is opened
    from cnbkit import Image

_SCHEMES = ("docker-archive", "oci-archive")


@hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims: archives as image sources (lifecycle, build image, buildpackages)."""
    return [f"{scheme}:PATH[:REF]" for scheme in _SCHEMES] + [
        f"PATH{PACKAGE_FILE_SUFFIX}",
        f"https://URL{PACKAGE_FILE_SUFFIX}[#sha256=HEX]",
    ]


@hookimpl
def cnbkit_exporters() -> list[str]:
    """Targets: the same archives, written atomically or streamed (``/dev/stdout``)."""
    return [f"{scheme}:PATH[:REF]" for scheme in _SCHEMES]


def _split(scheme: str, rest: str) -> tuple[str, str | None]:
    path, _, ref = rest.partition(":")
    if not path:
        raise UsageError(f"{scheme}:{rest}: no path; write {scheme}:PATH[:REF]")
    return os.path.expanduser(path), ref or None


def _downloaded(locator: Locator, context: Context) -> Path:
    """The URL's file, downloaded whole into the cache first (the layout reader seeks in it):
    the core's downloads (TLS, ETag revalidation, ``#sha256=`` pins, ``--offline``)."""
    blob = context.download(locator.raw, sha256=locator.pin())
    if isinstance(blob, FileBlob):  # revalidated (304), or pinned and cached: no byte read
        return blob.path
    stream = blob.open()  # read to its end, the body is verified and committed to the cache
    try:
        while stream.read(1 << 20):
            pass
    finally:
        close_stream(stream)
    assert blob.digest is not None  # recorded at the stream's end
    return context.cache.blob_path(blob.digest)


@hookimpl
def cnbkit_resolve_image(locator: Locator, context: Context) -> Image | None:
    """The image of the archive (``PATH`` relative to the base directory), for the platform."""
    if locator.scheme in ("https", "http"):
        if not locator.url_path.endswith(PACKAGE_FILE_SUFFIX):
            return None
        full, ref, scheme = _downloaded(locator, context), None, "oci-archive"
    elif locator.scheme in (None, "file"):
        full, ref = locator.local_path(), None
        if full.suffix != PACKAGE_FILE_SUFFIX or not full.is_file():
            return None
        scheme = "oci-archive"
    elif locator.scheme in _SCHEMES:
        scheme = locator.scheme
        path, ref = _split(scheme, locator.rest)
        full = locator.path_for(path)
    else:
        return None
    from cnbkit import open_docker_archive, open_oci_archive

    opener = open_docker_archive if scheme == "docker-archive" else open_oci_archive
    return opener(full, ref=ref, platform=context.platform, max_size=context.options.max_size)


@hookimpl
def cnbkit_export(target: str, image: Image, context: Context, tags: tuple[str, ...]) -> str | None:
    """Write ``image`` to the archive (``PATH`` relative to the working directory)."""
    locator = parse_locator(target)
    if locator.scheme not in _SCHEMES:
        return None
    if tags:  # one archive, one name: the loader (docker load, skopeo) tags it
        raise UsageError(
            f"{locator.scheme}: targets take no --tag: name the image in the target "
            f"({locator.scheme}:PATH:REF) and tag it where it is loaded"
        )
    from cnbkit import write_docker_archive, write_oci_archive

    path, ref = _split(locator.scheme, locator.rest)
    writer = write_docker_archive if locator.scheme == "docker-archive" else write_oci_archive
    return writer(image, path, ref)
