"""Buildpackage images: the buildpacks (or extensions) a package image holds, each with the
image's layer that holds it, referenced as stored.

A buildpackage (``pack buildpack package``) names its main module in the
``io.buildpacks.buildpackage.metadata`` label and every module it holds in
``io.buildpacks.buildpack.layers`` (``io.buildpacks.extension.layers`` for extensions):
``{id: {version: {api, stacks, targets, order, layerDiffID, name, homepage}}}``. Each module's
layer is found by its ``layerDiffID`` among the image's layers.
"""

from __future__ import annotations

from typing import Any

from ..cache import Cache
from ..errors import BuilderError
from ..oci.image import Image, Layer
from ..redact import printable
from .buildpack import Module, is_module_dir, parse_api
from .contents import check_package_layer
from .label_json import LAYERS_LABELS, json_label

__all__ = ["METADATA_LABEL", "read_package"]

METADATA_LABEL = "io.buildpacks.buildpackage.metadata"


def _json_label(image: Image, name: str) -> Any:
    value = json_label(image.config.labels, name, where=image.reference)
    if value is None:
        raise BuilderError(f"{image.reference} is not a buildpackage: it has no {name} label")
    return value


def _tables(value: Any, where: str) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BuilderError(f"{where} must be a list of objects")
    return tuple(value)


def _check_layers(modules: list[Module], kind: str, cache: Cache | None) -> None:
    """Read each layer the modules name once: referenced as stored, it is never rewritten, so
    what it holds must stay inside the directories of the modules it holds."""
    roots: dict[str, tuple[Layer, set[str]]] = {}
    for module in modules:
        assert module.layer is not None
        roots.setdefault(module.layer.digest, (module.layer, set()))[1].add(module.root)
    for layer, inside in roots.values():
        check_package_layer(layer, inside, kind, cache)


def read_package(image: Image, kind: str = "buildpack", cache: Cache | None = None) -> list[Module]:
    """The modules of buildpackage ``image``: the main one first, then the others by ``id@version``.

    ``cache``, when given, remembers the layers that passed the checks (by digest), so the
    next build of the same package reads none of them.

    Raises:
        BuilderError: a label missing or malformed, or a module whose layer is not in the image.
        ArchiveError: a module's layer holds an entry outside the modules' directories, or
            writes through a link (:func:`.contents.check_package_layer`).
    """
    meta = _json_label(image, METADATA_LABEL)
    modules = _json_label(image, LAYERS_LABELS[kind])
    if not isinstance(meta, dict) or not isinstance(modules, dict):
        raise BuilderError(f"{image.reference}: the buildpackage labels must be JSON objects")
    main = (meta.get("id"), meta.get("version"))
    by_diff_id: dict[Any, Layer] = {layer.diff_id: layer for layer in image.layers() if layer.diff_id}
    found: list[Module] = []
    for ident, versions in modules.items():
        if not isinstance(versions, dict):
            raise BuilderError(
                f"{image.reference}: {LAYERS_LABELS[kind]} {printable(ident)[:80]!r} is malformed"
            )
        for version, entry in versions.items():
            where = f"{image.reference}: {kind} {printable(f'{ident}@{version}')[:120]}"
            if not isinstance(entry, dict) or not isinstance(ident, str) or not ident:
                raise BuilderError(f"{where}: malformed entry in {LAYERS_LABELS[kind]}")
            if not is_module_dir(ident, version):
                raise BuilderError(f"{where}: the id or version cannot be a path")
            layer = by_diff_id.get(entry.get("layerDiffID"))
            if layer is None:
                raise BuilderError(
                    f"{where}: no layer with diff ID {printable(str(entry.get('layerDiffID')))[:80]}"
                )
            info = {k: entry[k] for k in ("name", "homepage") if isinstance(entry.get(k), str)}
            found.append(
                Module(
                    kind=kind,
                    id=ident,
                    version=version,
                    api=parse_api(entry.get("api", "0.1"), f"{where}: api"),
                    blob=None,
                    info=info,
                    stacks=_tables(entry.get("stacks"), f"{where}: stacks"),
                    targets=_tables(entry.get("targets"), f"{where}: targets"),
                    order=_tables(entry.get("order"), f"{where}: order"),
                    layer=layer,
                    origin=image.reference,
                )
            )
    _check_layers(found, kind, cache)
    found.sort(key=lambda m: (m.id, m.version) != main)  # stable: the main module first
    if not found or (found[0].id, found[0].version) != main:
        shown = printable(f"{main[0]}@{main[1]}")[:120]
        raise BuilderError(
            f"{image.reference}: the main {kind} {shown} of the package is not in its layers label"
        )
    return found
