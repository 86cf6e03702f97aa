"""The services a :class:`~cnbkit.plugin.context.Context` composes from the options, each made
on first use and shared by every Context derived from it (``context.with_platform(p)``): one
cache, one HTTP session, one downloader, one registry client, one Docker client. None of them
depends on the platform, so a derived Context reuses them as they are."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..cache import Cache, default_cache_dir
from ..errors import CnbkitError
from ..options import Options
from ..progress import Progress, new_progress

if TYPE_CHECKING:
    from ..transport.download import Downloader
    from ..transport.http import Session
    from ..transport.registry import RegistryClient

__all__ = ["Services"]

_MAX_DEPTH = 8  # URIs a plugin may forward through context.resolve before it is a loop


class Services:
    """The shared services of one resolve (or one builder creation).

    Args:
        options: the options they are made from (only their platform-free fields are read).

    Attributes:
        cache: the content-addressed cache.
        mirrors: ``--registry-mirror``'s ``{registry: mirror}``, checked here, before any fetch.

    Raises:
        UsageError: a registry mirror of another form than ``REGISTRY=MIRROR``.
    """

    def __init__(self, options: Options) -> None:
        self._options = options
        self.mirrors: dict[str, str] = {}
        if options.registry_mirrors:
            from ..transport.registry.reference import parse_mirrors

            self.mirrors = parse_mirrors(options.registry_mirrors)
        self.cache = Cache(options.cache_dir or default_cache_dir())
        # The URIs being resolved, outermost first: one chain per thread (a builder's targets
        # resolve their lifecycles side by side, the same URI in each).
        self._chains = threading.local()
        self._session: Session | None = None
        self._downloader: Downloader | None = None
        self._docker: Any = None
        self._registry: RegistryClient | None = None

    @contextmanager
    def forwarding(self, shown: str) -> Iterator[None]:
        """Track the chain of URIs forwarded through the Context (every derived one too):
        refuse loops, and name the user's URI in an error behind a forward.

        Raises:
            CnbkitError: ``shown`` is being resolved already, or the chain is 8 deep.
        """
        chain: list[str] = self._chains.__dict__.setdefault("chain", [])
        if shown in chain or len(chain) >= _MAX_DEPTH:
            # The plugins' configuration is at fault, not the command line: a failure (exit 1).
            raise CnbkitError(f"URIs forward to each other in a loop: {' -> '.join([*chain, shown])}")
        chain.append(shown)
        try:
            yield
        except CnbkitError as exc:
            via = f"{chain[0]} (forwarded as "
            if len(chain) > 1 and not str(exc).startswith(via):  # the innermost forward says it
                raise exc.within(f"{via}{shown})") from exc
            raise
        finally:
            chain.pop()

    def notice(self, message: str) -> None:
        """Tell the user something on stderr (not an error; silent with ``--quiet``)."""
        if not self._options.quiet:
            from ..redact import printable

            print(f"cnbkit: {printable(message)}", file=sys.stderr)

    def progress(self, description: str, total: int | None) -> Progress:
        """A progress reporter for a long transfer: a bar on a terminal, else nothing."""
        return new_progress(description, total, enabled=self._options.progress)

    def session(self) -> Session:
        """The one ``requests`` session."""
        if self._session is None:
            from ..transport.http import new_session

            self._session = new_session()
        return self._session

    def downloader(self) -> Downloader:
        """The one https downloader (TLS, timeouts, retries, ``--offline`` from the options)."""
        if self._downloader is None:
            from ..transport.download import Downloader

            options = self._options
            self._downloader = Downloader(
                cache=self.cache,
                session=self.session,
                verify=options.verify,
                timeout=options.timeout,
                allow_http=options.allow_http,
                offline=options.offline,
                progress=self.progress,
                notice=self.notice,
                max_size=options.max_size,
            )
        return self._downloader

    def docker(self) -> Any:
        """The one Docker SDK client (connecting is deferred to the first call)."""
        if self._docker is None:
            from ..transport.daemon import connect

            self._docker = connect()
        return self._docker

    def registry(self) -> RegistryClient:
        """The one OCI distribution client."""
        if self._registry is None:
            from ..transport.registry import RegistryClient

            options = self._options
            self._registry = RegistryClient(
                self.session(),
                verify=options.verify,
                timeout=options.timeout,
                insecure=options.insecure_registries,
                progress=self.progress,
                notice=self.notice,
                max_size=options.max_size,
            )
        return self._registry
