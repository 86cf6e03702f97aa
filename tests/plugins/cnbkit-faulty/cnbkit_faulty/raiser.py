"""Claims ``raise://`` and fails there with an exception that is not a CnbkitError."""

from __future__ import annotations

import cnbkit


@cnbkit.hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims ``raise://ANYTHING``."""
    return ["raise://ANYTHING"]


@cnbkit.hookimpl
def cnbkit_resolve(locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Blob | None:
    """Fail the way a plugin bug does: a plain ``KeyError`` from deep inside."""
    if locator.scheme != "raise":
        return None
    return _lookup({}, locator.rest)


def _lookup(table: dict[str, cnbkit.Blob], key: str) -> cnbkit.Blob:
    return table[key]
