"""What ``context.push_image`` and ``context.load_image`` do: compose the transports (registry
client, Docker client) from the context and hand them the image."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..cache import Cache
from ..errors import UsageError
from ..progress import Progress

if TYPE_CHECKING:
    from ..oci.image import Image
    from ..transport.registry import RegistryClient

__all__ = ["load", "push"]


def push(
    client: Callable[[], RegistryClient],
    image: Image,
    reference: str,
    *,
    offline: bool,
    progress: Callable[[str, int | None], Progress],
    notice: Callable[[str], None],
    cache: Cache | None = None,
) -> str:
    """Push ``image`` to ``reference`` with the client ``client()`` makes; see
    :meth:`~cnbkit.plugin.context.Context.push_image`.

    Raises:
        UsageError: a malformed reference, a digest instead of a tag, or ``--offline``.
        CnbkitError: the registry refused, could not be reached, or a blob failed to read; the
            tag is then unchanged (the manifest goes last).
    """
    from ..transport.registry import parse_reference
    from ..transport.registry.push_image import push_image

    ref = parse_reference(reference)
    if offline:
        raise UsageError(f"docker://{ref}: --offline forbids pushing to a registry")
    result = push_image(client(), image, ref, progress=progress, cache=cache)
    notice(f"pushed docker://{result.reference}: {result.summary()}")
    return f"docker://{result.reference} {result.digest}"


def load(client: Callable[[], Any], image: Image, reference: str) -> str:
    """Load ``image`` into the daemon ``client()`` connects to (a Docker SDK client) as
    ``reference``; see :meth:`~cnbkit.plugin.context.Context.load_image`.

    Raises:
        UsageError: a malformed reference or one with a digest.
        CnbkitError: no daemon, or it refused the image (no new image, the tag unchanged).
    """
    from ..transport.daemon import DaemonUnavailableError, daemon_address
    from ..transport.daemon_load import daemon_tag, load_image

    tag = daemon_tag(reference)  # a bad reference is a usage error, daemon or not
    where = daemon_address()
    if where is None:
        raise DaemonUnavailableError(
            f"docker-daemon:{tag}: no Docker daemon (DOCKER_HOST is unset or its socket is missing); "
            "start Docker or set DOCKER_HOST"
        )
    image_id = load_image(client(), image, reference, where=f"the Docker daemon at {where}")
    return f"docker-daemon:{tag} {image_id}"
