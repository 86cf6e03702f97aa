"""What is in a builder: its labels (:mod:`.labels_read`) and its manifest and config, as one
report (the ``--json`` object of ``cnbkit builder inspect``). Pure: an image of the ``oci``
model in, a dict out; no layer is opened.

Which layer is which follows the layout pack and cnbkit write (``builder create``): the build
image's layers, a directories layer, the lifecycle layer, the module layers (found by the diff
IDs the layers labels name), then the small files (order, stack, run, env). So the lifecycle
layer is the one below the topmost run of module layers, and the build image's layers are those
below it and the directories layer. A builder without module layers shows neither.
"""

from __future__ import annotations

from typing import Any

from ..errors import BuilderError
from ..oci.image import Image, Layer
from .labels_read import READ_LABELS, BuilderLabels, Order, read_builder_labels, read_order

__all__ = ["inspect_builder"]

UNLIMITED = -1
MAX_ORDER_ENTRIES = 100_000  # far beyond any real builder; a hostile label could reach 2**100


def _layer(layer: Layer | None) -> dict[str, Any] | None:
    if layer is None:
        return None
    return {"index": layer.index, "digest": layer.digest, "diff_id": layer.diff_id, "size": layer.size}


def _split(layers: list[Layer], modules: set[str]) -> tuple[list[Layer], Layer | None]:
    """The build image's layers and the lifecycle layer (see the module's docstring)."""
    tops = [layer.index for layer in layers if layer.diff_id in modules]
    if not tops:
        return [], None
    lowest = max(tops)
    while lowest > 0 and layers[lowest - 1].diff_id in modules:
        lowest -= 1
    lifecycle = layers[lowest - 1] if lowest >= 1 else None
    return layers[: max(lowest - 2, 0)], lifecycle


def _modules(
    infos: list[dict[str, str]],
    kind_layers: dict[str, dict[str, dict[str, Any]]],
    by_diff_id: dict[str, Layer],
) -> list[dict[str, Any]]:
    """The metadata's modules, each with its API and layer from the layers label."""
    result = []
    for info in infos:
        entry = kind_layers.get(info["id"], {}).get(info["version"], {})
        diff_id = entry.get("layerDiffID")
        layer = by_diff_id.get(diff_id) if isinstance(diff_id, str) else None
        api = entry.get("api")
        result.append(
            {
                **info,
                "api": api if isinstance(api, str) else "",
                "layer": {"diff_id": diff_id, "digest": layer.digest, "size": layer.size}
                if layer is not None
                else (
                    {"diff_id": diff_id, "digest": None, "size": None} if isinstance(diff_id, str) else None
                ),
            }
        )
    return result


def _expand(order: Order, layers: dict[str, dict[str, dict[str, Any]]], depth: int, where: str) -> list[Any]:
    """The order as ``[{"group": [ref]}]``, a meta-buildpack's ref holding its own ``order``
    (read from the layers label) down to ``depth`` levels (-1: all; a loop stops at the path).

    Raises:
        BuilderError: the tree would hold more than :data:`MAX_ORDER_ENTRIES` entries (labels
            whose meta-buildpacks name each other many times over grow it exponentially).
    """
    shown = 0

    def groups(order: Order, level: int, path: tuple[str, ...]) -> list[Any]:
        nonlocal shown
        result = []
        for group in order:
            refs = []
            shown += len(group)
            if shown > MAX_ORDER_ENTRIES:
                raise BuilderError(
                    f"{where}: the detection order expands to more than {MAX_ORDER_ENTRIES:,} entries; "
                    "give a smaller --depth"
                )
            for ref in group:
                item: dict[str, Any] = dict(ref)
                versions = layers.get(ref["id"], {})
                # an entry without a version means the only one there is (as pack resolves it)
                version = ref["version"] or (next(iter(versions)) if len(versions) == 1 else "")
                key = f"{ref['id']}@{version}"
                inner = versions.get(version, {}).get("order")
                if inner and key not in path and (depth == UNLIMITED or level < depth):
                    nested = read_order(inner, where=where, label=f"the order of {key}")
                    item["order"] = groups(nested, level + 1, (*path, key))
                refs.append(item)
            result.append({"group": refs})
        return result

    return groups(order, 0, ())


def inspect_builder(image: Image, *, depth: int = UNLIMITED) -> dict[str, Any]:
    """The report on builder ``image`` (``--json`` of ``cnbkit builder inspect``).

    Args:
        image: the builder, from any image source.
        depth: how deep the detection order expands meta-buildpacks (-1: all the way).

    Returns:
        ``{"reference", "digest", "platform", "platforms", "description", "created_by", "stack", "lifecycle",
        "run_images", "buildpacks", "extensions", "order", "order_extensions", "system",
        "build_image", "labels"}`` (README, ``builder inspect``).

    Raises:
        BuilderError: not a builder (the missing label named), or a malformed label.
    """
    labels: BuilderLabels = read_builder_labels(image.config.labels, where=image.reference)
    layers = image.layers()
    by_diff_id = {layer.diff_id: layer for layer in layers if layer.diff_id}
    module_ids = {
        entry.get("layerDiffID")
        for kind in labels.layers.values()
        for versions in kind.values()
        for entry in versions.values()
    }
    base, lifecycle_layer = _split(layers, {d for d in module_ids if isinstance(d, str)})
    lifecycle_at = _layer(lifecycle_layer)
    made = [entry.created_by for entry in image.config.history if not entry.empty_layer]
    if lifecycle_at is not None and len(made) == len(layers):  # the history says how it was made
        lifecycle_at["created_by"] = made[lifecycle_at["index"]]
    where = image.reference
    return {
        "reference": image.reference,
        "digest": image.digest,
        "platform": str(image.platform),
        "platforms": list(image.platforms) or [str(image.platform)],
        "description": labels.description,
        "created_by": labels.created_by,
        "stack": {"id": labels.stack_id, "mixins": labels.mixins},
        "lifecycle": {
            "version": labels.lifecycle_version,
            "apis": labels.apis,
            "layer": lifecycle_at,
        },
        "run_images": labels.run_images,
        "buildpacks": _modules(labels.buildpacks, labels.layers["buildpack"], by_diff_id),
        "extensions": _modules(labels.extensions, labels.layers["extension"], by_diff_id),
        "order": _expand(labels.order, labels.layers["buildpack"], depth, where),
        "order_extensions": _expand(labels.order_extensions, labels.layers["extension"], depth, where),
        "system": labels.system,
        "build_image": {"layers": [_layer(layer) for layer in base]},
        "labels": {k: v for k, v in sorted(image.config.labels.items()) if k not in READ_LABELS},
    }
