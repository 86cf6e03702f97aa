"""The ``https`` resolver: ``https://`` URLs, and ``http://`` for loopback or when allowed.

All the work (cache, revalidation, pinning, retries, resume) is the core's
``context.download``, the same service a third-party resolver of URLs would use.
"""

from __future__ import annotations

from cnbkit import Blob, Context, Locator, UsageError, hookimpl


@hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims: ``https://`` and ``http://`` (loopback, or with ``--allow-http``)."""
    return ["https://URL[#sha256=HEX]", "http://URL (loopback or --allow-http)"]


@hookimpl
def cnbkit_resolve(locator: Locator, context: Context) -> Blob | None:
    """Download (or revalidate) the URL; ``#sha256=<hex>`` pins the content."""
    if locator.scheme not in ("https", "http"):
        return None
    pin = None
    if locator.fragment:
        key, _, value = locator.fragment.partition("=")
        if key != "sha256":
            raise UsageError(f"{locator}: unknown URL fragment {locator.fragment!r}; only #sha256=<hex> pins")
        pin = value.lower()
    return context.download(locator.raw, sha256=pin)
