"""cnbkit-takeover: answers bare paths and ``file://`` before cnbkit's own ``file`` resolver.

Its ``cnbkit_resolve`` is an ordinary implementation: registered after the built-ins, it is
asked before every one of them (pluggy asks the most recently registered first). It must not be
``trylast``: pluggy asks ``trylast`` implementations oldest first, so the built-in's would
answer before it. Each answer is appended to the file named by ``TAKEOVER_MARKER`` when that is
set, so a test can see that it was asked.
"""

from __future__ import annotations

import os

import cnbkit


@cnbkit.hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims what the built-in ``file`` resolver claims."""
    return ["PATH", "file://PATH"]


@cnbkit.hookimpl
def cnbkit_resolve(locator: cnbkit.Locator, context: cnbkit.Context) -> cnbkit.Blob | None:
    """Return a FileBlob for a bare path or ``file:`` URI, recording that it was asked."""
    if locator.scheme not in (None, "file"):
        return None
    marker = os.environ.get("TAKEOVER_MARKER")
    if marker:
        with open(marker, "a", encoding="utf-8") as out:
            out.write(f"{locator}\n")
    return cnbkit.FileBlob(locator.local_path(), source=str(locator))
