"""The context a plugin receives: what it needs and must not build itself.

This is the one place that composes the services (cache, HTTP session, downloads, the Docker
client) from the options; the services themselves take only the few things they need.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol

from ..cache import Cache, default_cache_dir
from ..errors import CnbkitError, UsageError
from ..locator import parse_locator
from ..options import Options
from ..progress import Progress, new_progress

if TYPE_CHECKING:
    from ..blob import Blob
    from ..lifecycle.model import Lifecycle
    from ..locator import Locator
    from ..oci.platform import Platform
    from ..transport.download import Downloader
    from ..transport.http import Session

__all__ = ["Context", "Hooks"]

_MAX_DEPTH = 8  # URIs a plugin may forward through context.resolve before it is a loop


class Hooks(Protocol):
    """The typed hook calls a Context makes (:class:`~cnbkit.plugin.host.PluginHost` is one)."""

    def resolve(self, locator: Locator, context: Context) -> Blob:
        """Ask the resolvers until one claims ``locator``."""
        ...

    def check_lifecycle(self, lifecycle: Lifecycle, context: Context) -> list[str]:
        """Every problem the policy hooks find."""
        ...


class Context:
    """Shared services for one resolve (or one builder creation).

    Attributes:
        options: every option, after flags and environment were combined.
        platform: the target platform (``--platform``, else the host's).
        pull_policy: ``always``, ``if-not-present`` or ``never``.
        offline: resolve from the cache only.
        cache: the shared content-addressed :class:`~cnbkit.Cache`.
    """

    def __init__(self, options: Options, host: Hooks) -> None:
        self.options = options
        self.platform: Platform = options.platform
        self.pull_policy = options.pull_policy
        self.offline = options.offline
        self.cache = Cache(options.cache_dir or default_cache_dir())
        self._host = host
        self._session: Session | None = None
        self._downloader: Downloader | None = None
        self._docker: Any = None
        self._resolving: list[str] = []

    def notice(self, message: str) -> None:
        """Tell the user something on stderr (not an error; silent with ``--quiet``)."""
        if not self.options.quiet:
            from ..redact import printable

            print(f"cnbkit: {printable(message)}", file=sys.stderr)

    def progress(self, description: str, total: int | None) -> Progress:
        """A progress reporter for a long transfer: a bar on a terminal, else nothing."""
        return new_progress(description, total, enabled=self.options.progress)

    def http_session(self) -> Session:
        """The one ``requests`` session of this context (created on first use).

        It trusts the environment for proxies (``HTTPS_PROXY``, ``NO_PROXY``); TLS
        verification, timeouts and retries are applied per request by :meth:`download`,
        which plugins should prefer.
        """
        if self._session is None:
            from ..transport.http import new_session

            self._session = new_session()
        return self._session

    def download(self, url: str, *, sha256: str | None = None) -> Blob:
        """Fetch an ``https://`` (or allowed ``http://``) URL through the cache.

        TLS, proxies, timeouts, retries with backoff, ``Range`` resume, ETag revalidation and
        ``--offline`` all apply. The request is made here, at the call: an HTTP error status
        raises at once (``DownloadError.status`` holds it, e.g. 404). The body streams into
        the cache when the returned Blob is first opened. With ``sha256``, nothing happens on
        the network until then, and not at all when the cache has that content.

        Args:
            url: the URL, possibly with userinfo (never printed nor used as a cache key).
            sha256: the 64 lower-case hex digits the content must have (no ``sha256:``
                prefix), as in a ``#sha256=`` pin.

        Raises:
            DownloadError: refused scheme, HTTP error status (``status`` set), TLS, timeout.
            CacheMissError: ``--offline`` and the cache lacks the URL.
        """
        if self._downloader is None:
            from ..transport.download import Downloader

            self._downloader = Downloader(
                cache=self.cache,
                session=self.http_session,
                verify=self.options.verify,
                timeout=self.options.timeout,
                allow_http=self.options.allow_http,
                offline=self.offline,
                progress=self.progress,
                notice=self.notice,
                max_size=self.options.max_size,
            )
        return self._downloader.download(url, sha256=sha256)

    def docker_client(self) -> Any:
        """A Docker SDK client from the environment (``DOCKER_HOST``), created on first use:
        constructing one connects, so a machine without Docker pays nothing until needed."""
        if self._docker is None:
            from ..transport.daemon import connect

            self._docker = connect()
        return self._docker

    def resolve(self, uri: str) -> Blob:
        """Send another URI through the resolver plugins (for plugins that rewrite URIs).

        An error names the URI the user gave as well as the one forwarded.

        Raises:
            UsageError: the URIs forward to each other in a loop (or more than 8 deep).
            CnbkitError: whatever resolving ``uri`` raised.
        """
        locator = parse_locator(uri, self.options.base_dir)
        shown = str(locator)
        if shown in self._resolving or len(self._resolving) >= _MAX_DEPTH:
            chain = " -> ".join([*self._resolving, shown])
            raise UsageError(f"URIs forward to each other in a loop: {chain}")
        self._resolving.append(shown)
        try:
            return self._host.resolve(locator, self)
        except CnbkitError as exc:
            if len(self._resolving) > 1 and not getattr(exc, "_cnbkit_via", False):
                exc.args = (f"{self._resolving[0]} (forwarded as {shown}): {exc}",)
                exc._cnbkit_via = True  # type: ignore[attr-defined]
            raise
        finally:
            self._resolving.pop()

    def check_lifecycle(self, lifecycle: Lifecycle) -> list[str]:
        """Every problem the ``cnbkit_check_lifecycle`` plugins find, each prefixed with the
        plugin's name (the core's policy step; plugins need not call it)."""
        return self._host.check_lifecycle(lifecycle, self)
