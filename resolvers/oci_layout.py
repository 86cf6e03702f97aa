"""The ``oci-layout`` resolver: images in an OCI image layout directory.

It claims ``oci:DIR[:TAG]``, ``oci:DIR@sha256:<hex>`` and a bare path to a directory holding
an ``oci-layout`` file, and supplies the image through ``cnbkit_resolve_image``: the core finds
the lifecycle in it (the same service serves every image source), and the builder gets build
images the same way. Reading the layout (digests validated before they become paths, every
blob verified) is the core's ``cnbkit.open_layout``; this plugin only says what is its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnbkit import Context, Locator, hookimpl

if TYPE_CHECKING:  # the image model is imported only when a layout is opened
    from cnbkit import Image

_MARKER = "oci-layout"  # the file that makes a directory an OCI image layout (image-spec)


@hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims: ``oci:`` references and directories that are OCI layouts."""
    return ["oci:DIR[:TAG]", "oci:DIR@sha256:HEX", "DIR holding an oci-layout file"]


@hookimpl
def cnbkit_resolve_image(locator: Locator, context: Context) -> Image | None:
    """Open the image an ``oci:`` reference (or a layout directory) names, for the target platform."""
    # Imported here: every resolve loads this plugin, few open a layout.
    from cnbkit import open_layout, parse_layout_locator

    if locator.scheme == "oci":
        parsed = parse_layout_locator(locator.rest)
        path = locator.path_for(parsed.path)
        return open_layout(path, tag=parsed.tag, digest=parsed.digest, platform=context.platform)
    if locator.scheme in (None, "file"):
        path = locator.local_path()
        # A bare directory is ours only when it is a layout; anything else stays the file
        # resolver's (which passes on layout directories, so the two never both claim one).
        if path.is_dir() and (path / _MARKER).is_file():
            return open_layout(path, platform=context.platform)
    return None
