"""The ``oci-export`` plugin: ``cnbkit_export`` for ``oci:DIR[:TAG]`` targets (OCI image layouts).

All the work (blobs once, atomic index, nothing left behind on failure) is the core's
``cnbkit.export_layout``; a plugin for another target kind would look the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnbkit import Context, UsageError, hookimpl, parse_locator

if TYPE_CHECKING:  # the image model is imported only when a builder is exported
    from cnbkit import Image, ImageIndex


@hookimpl
def cnbkit_exporters() -> list[str]:
    """Targets: what ``cnbkit_export`` below writes."""
    return ["oci:DIR[:TAG] (an OCI image layout)"]


@hookimpl
def cnbkit_export(
    target: str, image: Image, context: Context, tags: tuple[str, ...], index: ImageIndex | None
) -> str | None:
    """Write ``image`` to the OCI layout ``oci:DIR[:TAG]`` (``DIR`` relative to the working
    directory, as the user typed it on the command line); each of ``tags`` is one more tag in
    its ``index.json`` naming the same manifest (the blobs are there: written once). A
    multi-platform ``index``: every image, and the tag names the index."""
    locator = parse_locator(target)
    if locator.scheme != "oci":
        return None
    # the layout writer: only when a layout is written
    from cnbkit import export_layout, parse_layout_locator

    directory = parse_layout_locator(locator.rest).path
    for tag in tags:  # every name checked before anything is written
        if parse_layout_locator(f"{directory}:{tag}").tag != tag:
            raise UsageError(f"--tag {tag!r}: an oci:DIR target takes a tag name (v2, latest), not a path")
    written_image = index or image
    written = export_layout(written_image, locator.rest)
    for tag in tags:
        export_layout(written_image, f"{directory}:{tag}")
    return written
