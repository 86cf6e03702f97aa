"""The context a plugin receives: what it needs and must not build itself."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ..cache import Cache, default_cache_dir
from ..locator import parse_locator
from ..options import Options
from ..progress import Progress, new_progress

if TYPE_CHECKING:
    import requests

    from ..blob import Blob
    from ..oci.platform import Platform
    from .host import PluginHost

__all__ = ["Context"]


class Context:
    """Shared services for one resolve (or one builder creation).

    Attributes:
        options: every option, after flags and environment were combined.
        platform: the target platform (``--platform``, else the host's).
        pull_policy: ``always``, ``if-not-present`` or ``never``.
        offline: resolve from the cache only.
        cache: the shared content-addressed :class:`~cnbkit.Cache`.
    """

    def __init__(self, options: Options, host: PluginHost) -> None:
        self.options = options
        self.platform: Platform = options.platform
        self.pull_policy = options.pull_policy
        self.offline = options.offline
        self.cache = Cache(options.cache_dir or default_cache_dir())
        self.host = host
        self._session: requests.Session | None = None
        self._docker: Any = None

    def notice(self, message: str) -> None:
        """Tell the user something on stderr (not an error; silent with ``--quiet``)."""
        if not self.options.quiet:
            print(f"cnbkit: {message}", file=sys.stderr)

    def progress(self, description: str, total: int | None) -> Progress:
        """A progress reporter for a long transfer: a bar on a terminal, else nothing."""
        return new_progress(description, total, enabled=self.options.progress)

    def http_session(self) -> requests.Session:
        """The one ``requests`` session of this context (created on first use).

        It trusts the environment for proxies (``HTTPS_PROXY``, ``NO_PROXY``); TLS
        verification, timeouts and retries are applied per request by
        :meth:`download` (:mod:`cnbkit.transport.download`), which plugins should prefer.
        """
        if self._session is None:
            from ..transport.http import new_session

            self._session = new_session()
        return self._session

    def download(self, url: str, *, sha256: str | None = None) -> Blob:
        """Fetch an ``https://`` (or allowed ``http://``) URL through the cache.

        TLS, proxies, timeouts, retries with backoff, ``Range`` resume, ETag revalidation and
        ``--offline`` all apply. The download happens when the returned Blob is first
        opened, streaming into the cache while it is read.

        Args:
            url: the URL, possibly with userinfo (never printed nor used as a cache key).
            sha256: the hex digest the content must have (``#sha256=`` pinning).
        """
        from ..transport.download import download_blob

        return download_blob(self, url, sha256=sha256)

    def docker_client(self) -> Any:
        """A Docker SDK client from the environment (``DOCKER_HOST``), created on first use:
        constructing one connects, so a machine without Docker pays nothing until needed."""
        if self._docker is None:
            import docker

            self._docker = docker.from_env()
        return self._docker

    def resolve(self, uri: str) -> Blob:
        """Send another URI through the resolver plugins (for plugins that rewrite URIs)."""
        return self.host.resolve(parse_locator(uri, self.options.base_dir), self)
