"""The ``https`` resolver: ``https://`` URLs, and ``http://`` for loopback or when allowed.

All the work (cache, revalidation, pinning, retries, resume) is the core's
``context.download``, the same service a third-party resolver of URLs would use.
"""

from __future__ import annotations

from cnbkit import PACKAGE_FILE_SUFFIX, Blob, Context, Locator, hookimpl


@hookimpl
def cnbkit_resolvers() -> list[str]:
    """Claims: ``https://`` and ``http://`` (loopback, or with ``--allow-http``)."""
    return ["https://URL[#sha256=HEX]", "http://URL (loopback or --allow-http)"]


@hookimpl
def cnbkit_resolve(locator: Locator, context: Context) -> Blob | None:
    """Download (or revalidate) the URL; ``#sha256=<hex>`` pins the content. A ``.cnb`` URL
    (a buildpackage file) is the ``archives`` plugin's image: this resolver passes on it."""
    if locator.scheme not in ("https", "http") or locator.url_path.endswith(PACKAGE_FILE_SUFFIX):
        return None
    return context.download(locator.raw, sha256=locator.pin())
