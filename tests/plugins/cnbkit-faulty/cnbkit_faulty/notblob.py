"""Claims ``notblob://`` and returns a path string instead of a :class:`cnbkit.Blob`."""

from __future__ import annotations

from typing import Any

import cnbkit


@cnbkit.hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims ``notblob://PATH``."""
    return ["notblob://PATH"]


@cnbkit.hookimpl
def cnbkit_resolve(locator: cnbkit.Locator, context: cnbkit.Context) -> Any:
    """The classic mistake: the path of the artifact, not a Blob of it."""
    if locator.scheme != "notblob":
        return None
    return locator.rest
