"""What ``context.daemon_image`` does: decide whether a daemon may be asked at all, compose
the Docker client from the context and hand it to the transport (as :mod:`.exports` does for
pushes and loads)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..cache import Cache

if TYPE_CHECKING:
    from ..oci.image import Image
    from ..oci.platform import Platform

__all__ = ["daemon_image"]


def daemon_image(
    client: Callable[[], Any],
    reference: str,
    *,
    cache: Cache,
    platform: Platform,
    max_size: int,
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
        platform=platform,
        where=where,
        required=required,
        max_size=max_size,
    )
