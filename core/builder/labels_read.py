"""The builder labels read back: the shapes :mod:`.labels` writes (pack's
``internal/builder/metadata.go``), checked as they are read, since a builder's labels are
whatever its maker wrote.

One definition of each label: the names come from :mod:`.labels` and :mod:`.label_json`, the
JSON goes through the one bounded reader (:func:`.label_json.json_label`), and
``tests/test_builder_inspect.py`` writes the labels of a builder and reads them back equal.
A value of the wrong type is one line naming the label and the image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import BuilderError
from .checks import STACK_ID
from .label_json import LAYERS_LABELS, ModuleLayers, json_label, module_layers
from .labels import BUILDER_METADATA, BUILDPACK_ORDER, ORDER_EXTENSIONS, STACK_MIXINS, SYSTEM

__all__ = ["BuilderLabels", "read_builder_labels"]

Order = list[list[dict[str, Any]]]
"""Groups of ``{"id", "version", "optional"}``, as the order labels hold them."""


@dataclass(frozen=True)
class BuilderLabels:
    """What a builder's labels say.

    Attributes:
        description: the metadata's ``description``.
        created_by: ``{"name", "version"}`` of the tool that made it.
        stack_id: ``io.buildpacks.stack.id`` (``""`` when none).
        mixins: ``io.buildpacks.stack.mixins``.
        lifecycle_version: the lifecycle's version.
        apis: ``{"buildpack": {"deprecated", "supported"}, "platform": {...}}``.
        run_images: ``[{"image", "mirrors"}]``: ``images``, else the stack's ``runImage``.
        buildpacks / extensions: ``[{"id", "name", "version", "homepage"}]`` of the metadata.
        layers: ``{"buildpack": ModuleLayers, "extension": ModuleLayers}``.
        order / order_extensions: the detection orders.
        system: ``{"pre": [refs], "post": [refs]}``.
    """

    description: str
    created_by: dict[str, str]
    stack_id: str
    mixins: list[str]
    lifecycle_version: str
    apis: dict[str, dict[str, list[str]]]
    run_images: list[dict[str, Any]]
    buildpacks: list[dict[str, str]]
    extensions: list[dict[str, str]]
    layers: dict[str, ModuleLayers] = field(default_factory=dict)
    order: Order = field(default_factory=list)
    order_extensions: Order = field(default_factory=list)
    system: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


READ_LABELS = (
    BUILDER_METADATA,
    *LAYERS_LABELS.values(),
    BUILDPACK_ORDER,
    ORDER_EXTENSIONS,
    STACK_MIXINS,
    SYSTEM,
)
"""The labels :func:`read_builder_labels` interprets (the others are shown as they are)."""


class _Reader:
    """Checks one label's parts, naming the label and the image in every complaint."""

    def __init__(self, where: str, label: str) -> None:
        self.where, self.label = where, label

    def fail(self, key: str, shape: str) -> BuilderError:
        return BuilderError(
            f"{self.where}: label {self.label}: {key} must be {shape}; the builder is malformed, recreate it"
        )

    def obj(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "an object")
        return value

    def text(self, value: Any, key: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def texts(self, value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return list(value)

    def objs(self, value: Any, key: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "a list of objects")
        return list(value)

    def ref(self, value: dict[str, Any], key: str) -> dict[str, Any]:
        """A module reference: ``id``, ``version``, ``optional`` (pack's ModuleRef)."""
        return {
            "id": self.text(value.get("id"), f"{key} id"),
            "version": self.text(value.get("version"), f"{key} version"),
            "optional": value.get("optional") is True,
        }

    def info(self, value: dict[str, Any], key: str) -> dict[str, str]:
        """A module's ``id``, ``name``, ``version``, ``homepage`` (pack's ModuleInfo)."""
        return {k: self.text(value.get(k), f"{key} {k}") for k in ("id", "name", "version", "homepage")}

    def run_image(self, value: dict[str, Any], key: str) -> dict[str, Any]:
        return {
            "image": self.text(value.get("image"), f"{key} image"),
            "mirrors": self.texts(value.get("mirrors"), f"{key} mirrors"),
        }

    def order(self, value: Any, key: str = "the order") -> Order:
        return [
            [self.ref(ref, f"{key} group entry") for ref in self.objs(group.get("group"), f"{key} group")]
            for group in self.objs(value, key)
        ]


def read_order(value: Any, *, where: str, label: str) -> Order:
    """An order (``[{"group": [refs]}]``, ``null`` for none) as groups of refs: the order
    labels' shape, and a meta-buildpack's ``order`` in the layers label.

    Raises:
        BuilderError: not that shape (naming ``label`` and ``where``).
    """
    return _Reader(where, label).order(value)


def _apis(read: _Reader, value: Any) -> dict[str, dict[str, list[str]]]:
    apis = read.obj(value, "lifecycle.apis")
    result = {}
    for kind in ("buildpack", "platform"):
        entry = read.obj(apis.get(kind), f"lifecycle.apis.{kind}")
        result[kind] = {
            part: read.texts(entry.get(part), f"lifecycle.apis.{kind}.{part}")
            for part in ("deprecated", "supported")
        }
    return result


def _metadata(labels: Mapping[str, str], where: str) -> dict[str, Any]:
    value = json_label(labels, BUILDER_METADATA, where=where)
    if value is None:
        raise BuilderError(
            f"{where} is not a builder: it has no {BUILDER_METADATA} label; give a builder image "
            "(one made by cnbkit or pack builder create)"
        )
    return _Reader(where, BUILDER_METADATA).obj(value, "the label")


def read_builder_labels(labels: Mapping[str, str], *, where: str) -> BuilderLabels:
    """Read a builder's labels (``where`` names the image in messages).

    Raises:
        BuilderError: no ``io.buildpacks.builder.metadata`` label (not a builder), or a label
            that is not JSON or not of the shape pack writes.
    """
    meta = _metadata(labels, where)
    read = _Reader(where, BUILDER_METADATA)
    lifecycle = read.obj(meta.get("lifecycle"), "lifecycle")
    stack = read.obj(meta.get("stack"), "stack")
    images = [read.run_image(v, "images") for v in read.objs(meta.get("images"), "images")]
    if not images:  # a builder made before RFC-0096 names its run image in the stack only
        run = read.run_image(read.obj(stack.get("runImage"), "stack.runImage"), "stack.runImage")
        images = [run] if run["image"] else []
    created_by = read.obj(meta.get("createdBy"), "createdBy")
    mixins = json_label(labels, STACK_MIXINS, where=where)
    system = read.obj(json_label(labels, SYSTEM, where=where), "the label")
    system_read = _Reader(where, SYSTEM)
    return BuilderLabels(
        description=read.text(meta.get("description"), "description"),
        created_by={k: read.text(created_by.get(k), f"createdBy.{k}") for k in ("name", "version")},
        stack_id=labels.get(STACK_ID, ""),
        mixins=_Reader(where, STACK_MIXINS).texts(mixins, "the label"),
        lifecycle_version=read.text(lifecycle.get("version"), "lifecycle.version"),
        apis=_apis(read, lifecycle.get("apis")),
        run_images=images,
        buildpacks=[read.info(v, "buildpacks") for v in read.objs(meta.get("buildpacks"), "buildpacks")],
        extensions=[read.info(v, "extensions") for v in read.objs(meta.get("extensions"), "extensions")],
        layers={kind: module_layers(labels, kind, where=where) for kind in LAYERS_LABELS},
        order=read_order(
            json_label(labels, BUILDPACK_ORDER, where=where), where=where, label=BUILDPACK_ORDER
        ),
        order_extensions=read_order(
            json_label(labels, ORDER_EXTENSIONS, where=where), where=where, label=ORDER_EXTENSIONS
        ),
        system={
            part: [
                system_read.ref(ref, f"{part} entry")
                for ref in system_read.objs(
                    system_read.obj(system.get(part), part).get("buildpacks"), f"{part}.buildpacks"
                )
            ]
            for part in ("pre", "post")
        },
    )
