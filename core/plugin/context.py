"""The context a plugin receives: what it needs and must not build itself.

This is the one place that composes the services (cache, HTTP session, downloads, the Docker
client) from the options; the services themselves take only the few things they need.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from ..cache import Cache
from ..errors import NoResolverError
from ..locator import parse_locator
from ..options import Options
from ..progress import Progress
from ..redact import described, redact
from .services import Services

if TYPE_CHECKING:
    from ..blob import Blob
    from ..lifecycle.model import Lifecycle
    from ..locator import Locator
    from ..oci.image import Image
    from ..oci.image_index import ImageIndex
    from ..oci.platform import Platform
    from ..transport.http import Session
    from ..transport.registry import RegistryClient

__all__ = ["Context", "Found", "Hooks"]


class Hooks(Protocol):
    """The typed hook calls a Context makes (:class:`~cnbkit.plugin.host.PluginHost` is one)."""

    def resolve(self, locator: Locator, context: Context) -> Blob | None:
        """Ask the resolvers until one claims ``locator``; ``None`` when none does."""
        ...

    def check_lifecycle(self, lifecycle: Lifecycle, context: Context) -> list[str]:
        """Every problem the policy hooks find."""

    def resolve_image(self, locator: Locator, context: Context) -> tuple[Image, str] | None:
        """Ask the image sources until one supplies an image; the image and its plugin's name."""

    def export(
        self,
        target: str,
        image: Image,
        context: Context,
        tags: tuple[str, ...] = (),
        index: ImageIndex | None = None,
    ) -> tuple[str, str] | None:
        """Ask the export plugins until one writes the image; what it wrote and its name."""

    def claims(self) -> dict[str, list[str]]:
        """What each plugin says it claims (for "no plugin claims" messages)."""

    def exporters(self) -> dict[str, list[str]]:
        """What each plugin says it exports to (for "no plugin exports to" messages)."""


class Found:
    """What a URI named (:meth:`Context.find`): ``artifact``, the Blob a resolver claimed it as
    or the image an image source supplied, and ``plugin``, the name of the one that answered."""

    __slots__ = ("artifact", "plugin")

    def __init__(self, artifact: Blob | Image, plugin: str) -> None:
        self.artifact = artifact
        self.plugin = plugin


class Context:
    """Shared services for one resolve (or one builder creation).

    Never changed: its properties are read-only, per-call settings derived (:meth:`with_platform`).

    Args:
        options: every option, after flags and environment were combined.
        host: the typed hook calls (the plugin host).
        services: the services to share (a derived Context's); made from ``options`` if omitted.
    """

    def __init__(self, options: Options, host: Hooks, *, services: Services | None = None) -> None:
        self._options = options
        self._host = host
        self._services = services or Services(options)

    @property
    def options(self) -> Options:
        """Every option, after flags and environment were combined (``platform`` included)."""
        return self._options

    @property
    def platform(self) -> Platform:
        """The target platform: ``--platform``, else the host's; a builder's build image's."""
        return self._options.platform

    @property
    def pull_policy(self) -> str:
        """``always``, ``if-not-present`` or ``never``."""
        return self._options.pull_policy

    @property
    def offline(self) -> bool:
        """Resolve from the cache only."""
        return self._options.offline

    @property
    def cache(self) -> Cache:
        """The shared content-addressed :class:`~cnbkit.Cache`."""
        return self._services.cache

    def with_platform(self, platform: Platform) -> Context:
        """A new Context for ``platform`` (``options.platform`` too), sharing the services."""
        if platform == self.platform:
            return self
        return Context(replace(self._options, platform=platform), self._host, services=self._services)

    def notice(self, message: str) -> None:
        """Tell the user something on stderr (not an error; silent with ``--quiet``)."""
        self._services.notice(message)

    def progress(self, description: str, total: int | None) -> Progress:
        """A progress reporter for a long transfer: a bar on a terminal, else nothing."""
        return self._services.progress(description, total)

    def http_session(self) -> Session:
        """The one ``requests`` session of this context (created on first use).

        It trusts the environment for proxies (``HTTPS_PROXY``, ``NO_PROXY``); TLS
        verification, timeouts and retries are applied per request by :meth:`download`,
        which plugins should prefer.
        """
        return self._services.session()

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
        return self._services.downloader().download(url, sha256=sha256)

    def docker_client(self) -> Any:
        """A Docker SDK client from the environment (``DOCKER_HOST``), created on first use:
        constructing one connects, so a machine without Docker pays nothing until needed.

        Raises:
            CnbkitError: no daemon answers (the message says where it was looked for).
        """
        return self._services.docker()

    def registry_client(self) -> RegistryClient:
        """The OCI distribution client of this context (created on first use, with this
        context's session, CA bundle, timeout, ``--insecure-registry`` hosts, progress and
        Docker credentials). Plugins normally want :meth:`registry_image` instead."""
        return self._services.registry()

    def registry_image(self, reference: str) -> Image:
        """The image ``reference`` (``[registry/]repo[:tag][@sha256:...]``, Docker Hub defaults)
        from its registry (or the ``--registry-mirror`` of it), for ``context.platform``.

        A tag costs one ``HEAD``; a digest whose manifest is cached costs no request. Manifests,
        configs and layers are verified and kept in the cache by digest; layers stream when read.
        With ``--offline``, only the cache is used (a tag is what it last pointed at).

        Raises:
            UsageError: a malformed reference.
            PlatformNotFoundError: no image for the platform (the message lists those there are).
            CnbkitError: the registry refused, could not be reached, or sent bad content.
        """
        from .sources import registry_image

        return registry_image(
            reference, self.registry_client, self.cache, self.options, self._services.mirrors
        )

    def daemon_image(self, reference: str, *, required: bool = True) -> Image | None:
        """The image ``reference`` from the Docker daemon (``DOCKER_HOST``), for ``context.platform``.

        The image is streamed out of the daemon (``docker save``) into the cache once; after
        that, opening it again costs one ``inspect``. Without ``required``, a missing daemon
        (checked without importing the Docker SDK when there is no socket), an image the daemon
        lacks or has for another platform are ``None``, silently: that is the
        ``if-not-present`` pull policy's first step.

        Raises:
            CnbkitError: (``required``) no daemon, no such image, another platform; and, either
                way, a save that fails or does not match its config.
        """
        from .sources import daemon_image

        return daemon_image(
            self.docker_client, reference, cache=self.cache, options=self.options, required=required
        )

    def push_image(self, image: Image | ImageIndex, reference: str) -> str:
        """Push ``image`` to the registry as ``reference`` (``[registry/]repo[:tag]``): a ``HEAD``
        per blob first, a layer from another repository of the same registry mounted, the rest
        streamed (one ``PUT`` when small, chunks when large), the manifest last. Credentials and
        plain-http rules as for pulling; ``--offline`` refuses (a ``UsageError``). A
        multi-platform image goes image by image, each manifest by its digest, the index last
        under the tag.

        Returns:
            ``docker://REGISTRY/REPO:TAG sha256:...``.
        """
        from .exports import push

        return push(
            self.registry_client,
            image,
            reference,
            offline=self.offline,
            progress=self.progress,
            notice=self.notice,
            cache=self.cache,
        )

    def load_image(self, image: Image | ImageIndex, reference: str) -> str:
        """Load ``image`` into the Docker daemon (``DOCKER_HOST``) tagged ``reference``, from a
        ``docker save`` archive made as it is sent (never whole in memory). Of a multi-platform
        image, the one for the daemon's OS and architecture (a daemon keeps no index).

        Returns:
            ``docker-daemon:REPO:TAG sha256:<image ID>`` (the daemon keeps no manifest).
        """
        from .exports import load

        return load(self.docker_client, image, reference)

    def resolve(self, uri: str) -> Blob:
        """Send another URI through the resolver plugins (for plugins that rewrite URIs).

        An error names the URI the user gave as well as the one forwarded.

        Raises:
            NoResolverError: no resolver claims ``uri``; image sources are not asked (:meth:`find`).
            CnbkitError: the URIs forward to each other in a loop (or more than 8 deep), or
                whatever resolving ``uri`` raised.
        """
        locator = parse_locator(uri, self.options.base_dir)
        shown = str(locator)
        with self._services.forwarding(shown):
            blob = self._host.resolve(locator, self)
            if blob is None:
                raise NoResolverError(f"no plugin claims {shown!r}; claimed: {self._claimed()}")
            return blob

    def find_image(self, uri: str) -> Image | None:
        """The image a ``cnbkit_resolve_image`` plugin supplies for ``uri`` as written, or
        ``None`` when no plugin claims it; errors as for :meth:`resolve_image`."""
        locator = parse_locator(uri, self.options.base_dir)
        with self._services.forwarding(str(locator)):
            found = self._host.resolve_image(locator, self)
        return None if found is None else found[0]

    def resolve_image(self, uri: str, *, image_name: bool = False) -> Image:
        """Get a single-platform image through the ``cnbkit_resolve_image`` plugins.

        The builder's images come this way; a plugin may use it to forward a reference. The
        plugins get ``uri`` as written, for ``context.platform``; with ``image_name``, one no
        plugin claims that parses as an image name (pack's ``cnbs/build:jammy``) is then
        asked for as ``docker://URI``.

        Raises:
            NoResolverError: no plugin supplies images for ``uri`` (named as written).
            CnbkitError: the references forward to each other in a loop (or more than 8 deep),
                or whatever getting the image raised.
        """
        from ..transport.registry.reference import is_reference

        image = self.find_image(uri)
        if image is None and image_name and is_reference(uri):
            image = self.find_image(f"docker://{uri}")
        if image is None:
            shown = str(parse_locator(uri, self.options.base_dir))
            raise NoResolverError(f"no plugin supplies an image for {shown!r}; claimed: {self._claimed()}")
        return image

    def find(self, uri: str, *, image_name: bool = False) -> Found:
        """What ``uri`` names: the Blob a resolver claims it as, else the image an image source
        supplies (``oci:DIR``, a layout directory, ``docker://``); ``image_name`` as in :meth:`resolve_image`.

        Raises:
            NoResolverError: no plugin claims ``uri``; the message lists what is claimed.
            CnbkitError: as :meth:`resolve` and :meth:`resolve_image`.
        """
        locator = parse_locator(uri, self.options.base_dir)
        shown = str(locator)
        with self._services.forwarding(shown):
            blob = self._host.resolve(locator, self)
            if blob is not None:
                return Found(blob, blob.resolver)
            image = self._host.resolve_image(locator, self)
        if image is None and image_name:
            from ..transport.registry.reference import is_reference  # only now: no plugin claimed it

            if is_reference(uri):
                return self.find(f"docker://{uri}")
        if image is None:
            raise NoResolverError(f"no plugin claims {shown!r}; claimed: {self._claimed()}")
        return Found(image[0], image[1])

    def _claimed(self) -> str:
        return described(self._host.claims())

    def export(
        self, target: str, image: Image, tags: tuple[str, ...] = (), index: ImageIndex | None = None
    ) -> str:
        """Write ``image`` to ``target`` (and under ``tags``, more names for it there) through
        the ``cnbkit_export`` plugins. With ``index`` (a multi-platform image, of which
        ``image`` is one), only the plugins whose hook takes ``index`` are asked.

        Returns:
            What the plugin that handled it says it wrote.

        Raises:
            NoResolverError: no plugin writes to such a target.
            CnbkitError: whatever writing raised.
        """
        found = self._host.export(target, image, self, tuple(tags), index)
        if found is None:
            known = described(self._host.exporters())
            with_tags = " with --tag names" if tags else ""
            several = " a multi-platform image" if index is not None else ""
            raise NoResolverError(
                f"no plugin exports{several} to {redact(target)!r}{with_tags}; write one of: {known}"
            )
        return found[0]

    def check_lifecycle(self, lifecycle: Lifecycle) -> list[str]:
        """Every problem the ``cnbkit_check_lifecycle`` plugins find, each prefixed with the
        plugin's name (the core's policy step; plugins need not call it)."""
        return self._host.check_lifecycle(lifecycle, self)
