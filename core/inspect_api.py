"""The Python API of ``cnbkit builder inspect`` and ``cnbkit builder diff``: the builder images
come through the image plugins (``context.resolve_image``: an OCI layout, a registry, the
daemon, any plugin's source), and the pure report (:mod:`cnbkit.builder.inspect`) reads their
manifest, config and labels; no layer is opened."""

from __future__ import annotations

from typing import Any

from .api import new_context
from .builder.diff import diff_builders
from .builder.inspect import UNLIMITED, inspect_builder
from .errors import CnbkitError
from .oci.image import Image
from .oci.platform import parse_platform
from .options import Options
from .plugin.context import Context
from .redact import redact

__all__ = ["diff_builder_images", "inspect_builder_image"]


def _image(context: Context, uri: str) -> Image:
    try:
        return context.resolve_image(uri)
    except CnbkitError as exc:  # name the image as the user wrote it (a source may not)
        if uri not in str(exc):
            raise exc.within(uri) from exc
        raise


def _report(context: Context, uri: str, depth: int, *, every: bool = False) -> dict[str, Any]:
    """The report on ``uri``; with ``every``, a multi-platform builder's other platforms are
    reported in ``others`` (each image is resolved again for its platform)."""
    image = _image(context, uri)
    report = inspect_builder(image, depth=depth)
    report["reference"] = redact(uri)  # as the user gave it, credentials masked
    report["others"] = []
    for platform in image.platforms if every else ():
        if platform != report["platform"]:
            other = inspect_builder(_image(context.with_platform(parse_platform(platform)), uri), depth=depth)
            report["others"].append({**other, "reference": report["reference"], "others": []})
    return report


def inspect_builder_image(uri: str, *, depth: int = UNLIMITED, **options: Any) -> dict[str, Any]:
    """The report on the builder ``uri`` names (``cnbkit builder inspect --json``).

    Args:
        uri: ``oci:DIR[:TAG]``, ``docker://REF``, ``docker-daemon:REF`` or a plugin's image URI.
        depth: how deep the detection order expands meta-buildpacks (-1: all).
        **options: :meth:`Options.build` keywords (``platform``, ``pull_policy``, ``offline``...).

    Raises:
        CnbkitError: the image cannot be had, or is not a builder (one line naming the label).
    """
    every = options.get("platform") is None  # --platform picks one; else every platform is shown
    return _report(new_context(Options.build(**options)), uri, depth, every=every)


def diff_builder_images(a: str, b: str, **options: Any) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """Both builders' reports and the changes from ``a`` to ``b`` (:func:`diff_builders`)."""
    context = new_context(Options.build(**options))
    left, right = _report(context, a, UNLIMITED), _report(context, b, UNLIMITED)
    return left, right, diff_builders(left, right)
