"""What ``context.registry_image`` and ``context.daemon_image`` do: hand the transport what it
needs of the context's options and services (for the daemon, after deciding whether it may be
asked at all), as :mod:`.exports` does for pushes and loads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..cache import Cache
from ..options import Options

if TYPE_CHECKING:
    from ..oci.image import Image
    from ..transport.registry import RegistryClient

__all__ = ["daemon_image", "registry_image"]


def registry_image(
    reference: str,
    client: Callable[[], RegistryClient],
    cache: Cache,
    options: Options,
    mirrors: Mapping[str, str],
) -> Image:
    """The image ``reference`` from its registry (or its mirror), for ``options.platform``; see
    :meth:`~cnbkit.plugin.context.Context.registry_image`."""
    from ..transport.registry import parse_reference
    from ..transport.registry.image import open_registry_image

    return open_registry_image(
        parse_reference(reference),
        client=client,
        cache=cache,
        platform=options.platform,
        offline=options.offline,
        verify=options.verify,
        timeout=options.timeout,
        insecure=options.insecure_registries,
        mirrors=mirrors,
    )


def daemon_image(
    client: Callable[[], Any],
    reference: str,
    *,
    cache: Cache,
    options: Options,
    required: bool,
) -> Image | None:
    """The image ``reference`` from the daemon ``client()`` connects to; see
    :meth:`~cnbkit.plugin.context.Context.daemon_image`.

    Raises:
        CnbkitError: (``required``) no daemon, no such image, another platform; and, either
            way, a save that fails or does not match its config.
    """
    from ..transport.daemon import DaemonUnavailableError, daemon_address
    from ..transport.daemon_image import open_daemon_image

    where = daemon_address()
    if where is None:
        if not required:
            return None
        raise DaemonUnavailableError(
            f"{reference}: no Docker daemon (DOCKER_HOST is unset or its socket is missing); "
            "start Docker, set DOCKER_HOST, or use --pull-policy if-not-present"
        )
    try:
        connected = client()
    except DaemonUnavailableError:
        if not required:
            return None
        raise
    return open_daemon_image(
        connected,
        reference,
        cache=cache,
        platform=options.platform,
        where=where,
        required=required,
        max_size=options.max_size,
    )
