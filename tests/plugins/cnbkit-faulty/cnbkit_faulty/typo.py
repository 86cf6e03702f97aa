"""A misspelt hook name: pluggy alone would accept it and never call it."""

from __future__ import annotations

import cnbkit


@cnbkit.hookimpl
def cnbkit_reslove(locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Blob | None:
    """Meant to be ``cnbkit_resolve``."""
    return None
