"""The ``oci-export`` plugin: ``cnbkit_export`` for ``oci:DIR[:TAG]`` targets (OCI image layouts).

All the work (blobs once, atomic index, nothing left behind on failure) is the core's
``cnbkit.export_layout``; a plugin for another target kind would look the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnbkit import Context, hookimpl, parse_locator

if TYPE_CHECKING:  # the image model is imported only when a builder is exported
    from cnbkit import Image


@hookimpl
def cnbkit_exporters() -> list[str]:
    """Targets: what ``cnbkit_export`` below writes."""
    return ["oci:DIR[:TAG] (an OCI image layout)"]


@hookimpl
def cnbkit_export(target: str, image: Image, context: Context) -> str | None:
    """Write ``image`` to the OCI layout ``oci:DIR[:TAG]`` (``DIR`` relative to the working
    directory, as the user typed it on the command line)."""
    locator = parse_locator(target)
    if locator.scheme != "oci":
        return None
    from cnbkit import export_layout  # the layout writer: only when a layout is written

    return export_layout(image, locator.rest)
