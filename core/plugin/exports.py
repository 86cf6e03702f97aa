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
    from ..oci.image_index import ImageIndex
    from ..transport.registry import RegistryClient

__all__ = ["load", "push"]


def push(
    client: Callable[[], RegistryClient],
    image: Image | ImageIndex,
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


def _for_daemon(client: Any, index: ImageIndex, tag: str, where: str) -> Image:
    """The one image of ``index`` the daemon runs (pack's rule: its OS and architecture)."""
    from ..errors import BuilderError
    from ..transport.daemon import daemon_platform

    platform = daemon_platform(client, where)
    os_name, arch = platform.os, platform.architecture
    image = index.image_for(os_name, arch)
    if image is None:
        have = ", ".join(str(one.platform) for one in index.images)
        raise BuilderError(
            f"docker-daemon:{tag}: no target matches the daemon's platform {os_name}/{arch} "
            f"(the builder is for {have}); add a --target for {os_name}/{arch} or push to a registry"
        )
    return image


def load(client: Callable[[], Any], image: Image | ImageIndex, reference: str) -> str:
    """Load ``image`` into the daemon ``client()`` connects to (a Docker SDK client) as
    ``reference``; see :meth:`~cnbkit.plugin.context.Context.load_image`. Of a multi-platform
    image, the daemon gets the one for its own OS and architecture (a daemon keeps no index).

    Raises:
        UsageError: a malformed reference or one with a digest.
        BuilderError: no image of the index is for the daemon's platform.
        CnbkitError: no daemon, or it refused the image (no new image, the tag unchanged).
    """
    from ..oci.image_index import ImageIndex
    from ..transport.daemon import DaemonUnavailableError, daemon_address
    from ..transport.daemon_load import daemon_tag, load_image

    tag = daemon_tag(reference)  # a bad reference is a usage error, daemon or not
    where = daemon_address()
    if where is None:
        raise DaemonUnavailableError(
            f"docker-daemon:{tag}: no Docker daemon (DOCKER_HOST is unset or its socket is missing); "
            "start Docker or set DOCKER_HOST"
        )
    docker = client()
    if isinstance(image, ImageIndex):
        image = _for_daemon(docker, image, tag, where)
    image_id = load_image(docker, image, reference, where=f"the Docker daemon at {where}")
    return f"docker-daemon:{tag} {image_id}"
