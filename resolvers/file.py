"""The ``file`` resolver: bare paths and ``file://`` URIs (``.tgz``, ``.tar``, directories).

It is ``trylast`` for bare paths, so that any plugin with a scheme of its own is asked first. A
directory holding an ``oci-layout`` file is an image, not a lifecycle tree: it passes on it, and
the core asks the image sources (the ``oci-layout`` resolver) instead. So it does on a ``.cnb``
file (a buildpackage saved as an OCI layout in a tar, pack's ``--format file``): the
``archives`` plugin supplies it as an image, as pack reads it, never as a buildpack ``.tgz``.
"""

from __future__ import annotations

import os

from cnbkit import PACKAGE_FILE_SUFFIX, Blob, CnbkitError, Context, FileBlob, Locator, hookimpl


@hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims: a bare path and ``file://``."""
    return ["PATH", "file://PATH"]


@hookimpl(trylast=True)
def cnbkit_resolve(locator: Locator, context: Context) -> Blob | None:
    """Return a :class:`~cnbkit.FileBlob` for a bare path or a ``file:`` URI."""
    if locator.scheme not in (None, "file"):
        return None
    path = locator.local_path()
    if not path.exists():
        written = os.path.expanduser(locator.rest if locator.scheme else locator.raw)
        hint = "" if os.path.isabs(written) else f" (relative paths resolve against {locator.base_dir})"
        raise CnbkitError(f"{path}: no such file or directory{hint}")
    if path.is_dir() and (path / "oci-layout").is_file():
        return None  # an OCI image layout: the image sources' (cnbkit_resolve_image)
    if path.suffix == PACKAGE_FILE_SUFFIX:
        return None  # a buildpackage file: the archives plugin's image
    return FileBlob(path, source=str(path))
