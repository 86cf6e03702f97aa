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
    from cnbkit import Image, ImageIndex


@hookimpl
def cnbkit_exporters() -> list[str]:
    """Targets: what ``cnbkit_export`` below writes."""
    return ["docker://[REGISTRY/]REPO[:TAG] (a registry)", "docker-daemon:REPO[:TAG] (the Docker daemon)"]


@hookimpl
def cnbkit_export(
    target: str, image: Image, context: Context, tags: tuple[str, ...], index: ImageIndex | None
) -> str | None:
    """Push ``image`` to ``docker://[REGISTRY/]REPO[:TAG]`` (also pack's ``docker:/REF``) or load
    it into the daemon as ``docker-daemon:REPO[:TAG]``. A multi-platform ``index`` is pushed
    whole (every manifest, then the index under the tag); the daemon gets its own platform's.

    Each of ``tags`` (a full reference, as pack's ``--tag``) names the same image: the manifest
    is pushed under it too (its blobs found there by ``HEAD`` or mounted: sent once), or the
    daemon, which has the image by then, only tags it."""
    locator = parse_locator(target)
    if locator.scheme not in ("docker", "docker-daemon"):
        return None
    reference = locator.rest
    if not reference:
        raise UsageError(f"{target}: no image reference; write {locator.scheme}:[REGISTRY/]REPO[:TAG]")
    from cnbkit import parse_image_reference  # the reference grammar: only when an image is written

    for tag in tags:  # every name checked before anything is written
        if parse_image_reference(tag).digest is not None:
            raise UsageError(f"--tag {tag!r}: a tag names the image, not a digest; write REPO:TAG")
    write = context.push_image if locator.scheme == "docker" else context.load_image
    written_image = index or image
    written = write(written_image, reference)
    for tag in tags:
        write(written_image, tag)
    return written
