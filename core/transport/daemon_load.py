"""Loading an image of the ``oci`` model into the Docker daemon (``docker load``), streamed.

The ``docker save`` archive is generated on the fly: a generator yields tar headers and each
blob's bytes as they are read (from the cache, or from the layer's registry as it downloads),
and the Docker SDK sends it to ``/images/load`` with chunked transfer encoding. Nothing is held
whole in memory. Layers go in as stored (gzip): ``docker load`` inflates them itself and checks
each against the config's diff IDs. ``manifest.json`` comes last; the daemon reads the whole
archive before it creates anything, so a failed stream leaves no image and no tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..errors import CnbkitError, UsageError
from ..oci.errors import ImageError
from ..oci.image import Image
from ..redact import printable
from .daemon import inspect_image
from .registry.reference import parse_reference
from .tar_stream import END, tar_file, tar_layer

__all__ = ["daemon_tag", "load_image", "save_stream"]


def daemon_tag(reference: str) -> str:
    """``REPO:TAG`` as the daemon names it (``latest`` added when no tag is given).

    Raises:
        UsageError: a malformed reference, or one with a digest.
    """
    ref = parse_reference(reference)
    if ref.digest is not None:
        raise UsageError(f"docker-daemon:{printable(reference)}: a load target takes a tag, not a digest")
    name = ref.name
    if ref.registry == "docker.io":  # the daemon's own short spelling
        name = ref.repository.removeprefix("library/")
    return f"{name}:{ref.tag or 'latest'}"


def save_stream(image: Image, tag: str | None) -> Iterator[bytes]:
    """The ``docker save`` archive of ``image`` tagged ``tag`` (untagged for ``None``), as chunks.

    Layout: ``<config hex>.json``, ``<layer hex>/layer.tar`` per distinct layer (as stored,
    compressed), ``manifest.json``; each blob verified against its digest as it streams.
    """
    config_name = f"{image.manifest.config.digest.partition(':')[2]}.json"
    yield tar_file(config_name, image.config.raw)
    names: list[str] = []
    written: set[str] = set()
    for layer in image.layers():
        name = f"{layer.digest.partition(':')[2]}/layer.tar"
        names.append(name)
        if name in written:  # the same blob twice (two empty layers): one file, named twice
            continue
        written.add(name)
        yield from tar_layer(name, layer)
    tags = [tag] if tag else []
    yield tar_file(
        "manifest.json", json.dumps([{"Config": config_name, "RepoTags": tags, "Layers": names}]).encode()
    )
    yield END


def _tag_if_present(client: Any, image: Image, tag: str) -> bool:
    """Tag the daemon's own copy of ``image`` when it has one, instead of loading it again.

    The daemon names an image by the digest of its config, and the config lists every layer's
    diff ID, which the daemon checked when it loaded them: the same ID is the same image, so a
    warm build to the daemon sends nothing. Only an optimisation: any doubt means a load.
    """
    image_id = image.manifest.config.digest
    try:
        found = inspect_image(client, image_id, "DOCKER_HOST")
    except ImageError:
        return False
    if found is None or found.get("Id") != image_id:
        return False
    repository, _, name = tag.rpartition(":")
    return bool(client.api.tag(image_id, repository, name, force=True))


def load_image(client: Any, image: Image, reference: str, *, where: str = "the Docker daemon") -> str:
    """Load ``image`` into the daemon of ``client`` (a Docker SDK client) as ``reference``.

    An image the daemon already has (the same ID) is only tagged.

    Returns:
        The image ID the daemon gives it (``sha256:`` of the config).

    Raises:
        UsageError: a malformed reference or one with a digest.
        CnbkitError: the daemon refused the archive (its message, one line), or a blob failed
            to read; the daemon then has no new image and the tag is unchanged.
    """
    import docker.errors
    import requests

    tag = daemon_tag(reference)
    try:
        if _tag_if_present(client, image, tag):
            return image.manifest.config.digest
        response = client.api.load_image(save_stream(image, tag))
        for message in response:  # the daemon reports errors inside the stream, not as a status
            if isinstance(message, dict) and message.get("error"):
                detail = printable(str(message["error"]))[:300]
                raise CnbkitError(f"docker-daemon:{tag}: {where} refused the image: {detail}")
    except docker.errors.DockerException as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CnbkitError(f"docker-daemon:{tag}: {where} refused the image ({printable(detail)})") from None
    except ValueError:  # the SDK parses an answer that is not chunked as one JSON document
        raise CnbkitError(
            f"docker-daemon:{tag}: {where} answered the load with something that is not a JSON stream; "
            "is DOCKER_HOST a Docker daemon?"
        ) from None
    except requests.RequestException as exc:
        raise CnbkitError(
            f"docker-daemon:{tag}: the connection to {where} broke during the load "
            f"({type(exc).__name__}); the daemon has no new image"
        ) from None
    return image.manifest.config.digest
