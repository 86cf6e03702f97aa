"""The ``docker-export`` plugin: ``cnbkit_export`` for ``docker://REF`` (push to a registry) and
``docker-daemon:REF`` (load into the Docker daemon).

The work is the core's, through ``context.push_image`` and ``context.load_image`` (blobs
skipped, mounted or streamed; the manifest last; a streamed ``docker save`` archive): this
module imports only the face, as a third party's exporter would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnbkit import Context, UsageError, hookimpl, parse_locator

if TYPE_CHECKING:  # the image model is imported only when a builder is exported
    from cnbkit import Image


@hookimpl
def cnbkit_exporters() -> list[str]:
    """Targets: what ``cnbkit_export`` below writes."""
    return ["docker://[REGISTRY/]REPO[:TAG] (a registry)", "docker-daemon:REPO[:TAG] (the Docker daemon)"]


@hookimpl
def cnbkit_export(target: str, image: Image, context: Context) -> str | None:
    """Push ``image`` to ``docker://[REGISTRY/]REPO[:TAG]`` (also pack's ``docker:/REF``) or load
    it into the daemon as ``docker-daemon:REPO[:TAG]``."""
    locator = parse_locator(target)
    if locator.scheme not in ("docker", "docker-daemon"):
        return None
    reference = locator.rest
    if not reference:
        raise UsageError(f"{target}: no image reference; write {locator.scheme}:[REGISTRY/]REPO[:TAG]")
    if locator.scheme == "docker":
        return context.push_image(image, reference)
    return context.load_image(image, reference)
