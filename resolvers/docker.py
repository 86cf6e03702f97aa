"""The ``docker`` resolver: ``docker://REF`` (and pack's ``docker:/REF``, ``docker:///REF``), and
``docker-daemon:REF``, the daemon's image whatever the pull policy (the spelling the export
writes, so an exported builder can be read back: ``cnbkit builder inspect docker-daemon:REF``).

It supplies images (``cnbkit_resolve_image``); the core finds the lifecycle in them. Where the
image comes from follows the pull policy, as ``pack`` documents it:

* ``if-not-present`` (the default): the Docker daemon's image when a daemon is reachable and
  has it for the platform, else the registry (no daemon needed; a missing one costs nothing);
* ``always``: the registry;
* ``never``: the daemon only; no daemon or no image is an error saying so.

Everything else (auth, verification, caching, platform choice) is the core's, through
``context.registry_image`` and ``context.daemon_image``: this module imports only the face.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnbkit import Context, Locator, UsageError, hookimpl

if TYPE_CHECKING:  # the image model is imported only when an image is made
    from cnbkit import Image


@hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims: ``docker://REF`` and pack's spellings ``docker:/REF`` and ``docker:///REF``."""
    return [
        "docker://[REGISTRY/]REPO[:TAG][@sha256:HEX] (also docker:/REF, docker:///REF)",
        "docker-daemon:REPO[:TAG] (images of the Docker daemon)",
    ]


@hookimpl
def cnbkit_resolve_image(locator: Locator, context: Context) -> Image | None:
    """The image ``REF`` names, from the daemon or its registry as the pull policy says."""
    if locator.scheme not in ("docker", "docker-daemon"):
        return None
    reference = locator.rest
    if locator.scheme == "docker-daemon" and reference:
        return context.daemon_image(reference)
    if not reference:
        raise UsageError(f"{locator}: no image reference; write docker://[REGISTRY/]REPO[:TAG][@sha256:...]")
    policy = context.pull_policy
    if policy == "never":
        return context.daemon_image(reference)
    if policy == "if-not-present" and not context.offline:
        image = context.daemon_image(reference, required=False)
        if image is not None:
            return image
    return context.registry_image(reference)
