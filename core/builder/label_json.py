"""Labels that hold JSON (a build image's or a buildpackage's module labels), read by the one
bounded JSON reader and checked for shape, so a malformed label is one line naming the label and
the image, not a ``RecursionError`` or a ``TypeError`` half way through assembly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import BuilderError
from ..oci._json import load_json
from ..oci.config import MAX_CONFIG_SIZE

__all__ = ["LAYERS_LABELS", "ModuleLayers", "json_label", "module_layers"]

LAYERS_LABELS = {"buildpack": "io.buildpacks.buildpack.layers", "extension": "io.buildpacks.extension.layers"}

ModuleLayers = dict[str, dict[str, dict[str, Any]]]
"""``{id: {version: {"api": ..., "layerDiffID": ...}}}``: what a module layers label holds."""


def json_label(labels: Mapping[str, str], name: str, *, where: str) -> Any:
    """Label ``name`` parsed as JSON, or ``None`` when the image lacks it.

    Raises:
        BuilderError: not JSON, or nested too deep (``where`` names the image).
    """
    raw = labels.get(name)
    if raw is None:
        return None
    return load_json(raw, source=f"{where}: label {name}", limit=MAX_CONFIG_SIZE, error=BuilderError)


def module_layers(labels: Mapping[str, str], kind: str, *, where: str) -> ModuleLayers:
    """The ``io.buildpacks.<kind>.layers`` label of an image (empty when it has none).

    Raises:
        BuilderError: not JSON, or not an object of ids, each an object of versions, each an
            object.
    """
    name = LAYERS_LABELS[kind]
    value = json_label(labels, name, where=where)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(versions, dict) and all(isinstance(entry, dict) for entry in versions.values())
        for versions in value.values()
    ):
        raise BuilderError(
            f"{where}: label {name} must map each {kind} id to its versions, and each version to an "
            "object; fix or remove the label"
        )
    return value
