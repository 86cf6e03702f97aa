"""A pluggy hook wrapper: cnbkit calls implementations one by one and cannot run wrappers."""

from __future__ import annotations

from collections.abc import Generator

import cnbkit


@cnbkit.hookimpl(wrapper=True)
def cnbkit_resolve(locator: cnbkit.Locator, context: cnbkit.Context) -> Generator[None, object, object]:
    """Would time every resolve, if cnbkit ran wrappers."""
    return (yield)
