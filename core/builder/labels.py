"""The labels pack writes on a builder, in its JSON shapes (``internal/builder/metadata.go``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import BuilderError
from ..lifecycle.model import Lifecycle
from .buildpack import Module
from .config import BuilderConfig, ModuleRef, RunImage
from .label_json import LAYERS_LABELS, ModuleLayers, json_label

__all__ = [
    "BUILDER_METADATA",
    "BUILDPACK_LAYERS",
    "BUILDPACK_ORDER",
    "STACK_MIXINS",
    "builder_labels",
    "go_json",
]

BUILDER_METADATA = "io.buildpacks.builder.metadata"
BUILDPACK_LAYERS = LAYERS_LABELS["buildpack"]
EXTENSION_LAYERS = LAYERS_LABELS["extension"]
BUILDPACK_ORDER = "io.buildpacks.buildpack.order"
ORDER_EXTENSIONS = "io.buildpacks.buildpack.order-extensions"
SYSTEM = "io.buildpacks.buildpack.system"
STACK_MIXINS = "io.buildpacks.stack.mixins"


def go_json(value: Any) -> str:
    """JSON as Go's ``encoding/json`` writes it: compact, ``<``, ``>`` and ``&`` escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _earliest(versions: Sequence[str]) -> str:
    return min(versions, key=lambda v: tuple(int(p) for p in v.split("."))) if versions else ""


def _module_info(module: Module) -> dict[str, Any]:
    info: dict[str, Any] = {"id": module.id}
    if module.info.get("name"):
        info["name"] = module.info["name"]
    info["version"] = module.version
    for key in ("description", "homepage", "keywords", "licenses"):
        if module.info.get(key):
            info[key] = module.info[key]
    return info


def _layers_label(modules: Sequence[Module], diff_ids: Mapping[str, str], base: ModuleLayers) -> str:
    result: dict[str, Any] = {ident: dict(versions) for ident, versions in base.items()}
    for module in modules:
        entry: dict[str, Any] = {"api": module.api}
        if module.stacks:
            entry["stacks"] = list(module.stacks)
        if module.targets:
            # pack's dist.Target: "os" and "arch" always written (empty when unset).
            entry["targets"] = [
                {"os": t.get("os", ""), "arch": t.get("arch", ""), **t} for t in module.targets
            ]
        if module.order:
            entry["order"] = list(module.order)
        entry["layerDiffID"] = diff_ids[module.ref]
        if module.info.get("homepage"):
            entry["homepage"] = module.info["homepage"]
        if module.info.get("name"):
            entry["name"] = module.info["name"]
        result.setdefault(module.id, {})[module.version] = entry
    return go_json(result)


def _order_label(order: Sequence[Sequence[ModuleRef]], optional: bool = True) -> str:
    if not order:
        return "null"
    groups = []
    for group in order:
        refs = []
        for ref in group:
            item = ref.to_json()
            if not optional:
                item.pop("optional", None)
            refs.append(item)
        groups.append({"group": refs})
    return go_json(groups)


def _run_image(config: BuilderConfig) -> RunImage | None:
    if config.stack.id and config.stack.run_image:
        return RunImage(config.stack.run_image, config.stack.run_image_mirrors)
    if config.stack.id and config.run_images:
        return config.run_images[0]
    return None


def builder_labels(
    config: BuilderConfig,
    lifecycle: Lifecycle,
    buildpacks: Sequence[Module],
    extensions: Sequence[Module],
    diff_ids: Mapping[str, str],
    base_labels: Mapping[str, str],
    base_modules: Mapping[str, ModuleLayers],
    created_by: Mapping[str, str],
) -> dict[str, str]:
    """The labels to add to the build image's own.

    Args:
        config: builder.toml.
        lifecycle: the lifecycle in the builder.
        buildpacks / extensions: the modules, in the order they were added.
        diff_ids: ``id@version`` -> the diff ID of its layer.
        base_labels: the build image's labels.
        base_modules: its module layers labels, read (merged with the new modules, as pack).
        created_by: ``{"name", "version"}`` of the tool.
    """
    apis = lifecycle.apis
    run = _run_image(config)
    metadata = {
        "description": config.description,
        "buildpacks": [_module_info(m) for m in buildpacks] or None,
        "extensions": [_module_info(m) for m in extensions] or None,
        "stack": {"runImage": run.to_json() if run else {"image": "", "mirrors": None}},
        "lifecycle": {
            "version": lifecycle.version,
            "api": {
                "buildpack": _earliest([*apis.buildpack.deprecated, *apis.buildpack.supported]),
                "platform": _earliest([*apis.platform.deprecated, *apis.platform.supported]),
            },
            "apis": {
                "buildpack": {
                    "deprecated": list(apis.buildpack.deprecated),
                    "supported": list(apis.buildpack.supported),
                },
                "platform": {
                    "deprecated": list(apis.platform.deprecated),
                    "supported": list(apis.platform.supported),
                },
            },
        },
        "createdBy": dict(created_by),
        "images": [r.to_json() for r in config.run_images] or None,
    }
    mixins: Any = None
    with contextlib.suppress(BuilderError):  # as pack: mixins that cannot be read are none
        mixins = json_label(base_labels, STACK_MIXINS, where="build image")
    labels = {
        BUILDER_METADATA: go_json(metadata),
        BUILDPACK_LAYERS: _layers_label(buildpacks, diff_ids, base_modules["buildpack"]),
        EXTENSION_LAYERS: _layers_label(extensions, diff_ids, base_modules["extension"]),
        BUILDPACK_ORDER: _order_label(config.order),
        STACK_MIXINS: go_json(mixins if isinstance(mixins, list) else None),
    }
    if config.order_extensions:
        labels[ORDER_EXTENSIONS] = _order_label(config.order_extensions, optional=False)
    if config.system_pre or config.system_post:
        # pack's dist.System: "pre" and "post" always written ({} for an empty one).
        system: dict[str, Any] = {}
        for name, refs in (("pre", config.system_pre), ("post", config.system_post)):
            system[name] = {"buildpacks": [r.to_json() for r in refs]} if refs else {}
        labels[SYSTEM] = go_json(system)
    return labels
