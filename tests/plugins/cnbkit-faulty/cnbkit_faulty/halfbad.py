"""A valid ``cnbkit_resolve`` beside a ``cnbkit_resolvers`` with a wrong signature.

pluggy validates hook implementations one at a time while registering, so without care the
valid one stays registered although the plugin is reported as skipped.
"""

from __future__ import annotations

import cnbkit


@cnbkit.hookimpl
def cnbkit_resolve(locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Blob | None:
    """Claims ``halfbad://PATH``; must never be asked, since the plugin fails to load."""
    if locator.scheme != "halfbad":
        return None
    return cnbkit.FileBlob(locator.rest)


@cnbkit.hookimpl
def cnbkit_resolvers(verbose: bool) -> list[str]:
    """Wrong: this hook takes no arguments."""
    return ["halfbad://PATH"]
