"""Assembly: resolved inputs in, a builder image out, in pack's layer order.

Pure with respect to the world: the caller (the API, through the plugins) resolves the
lifecycle, the build image and the modules; this module only checks that they fit, makes the
layers and the labels, and returns a :class:`~cnbkit.builder.image.BuilderImage`. Every check
runs before the first byte is compressed, so a bad input fails fast and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ..lifecycle.model import Lifecycle
from ..oci.image import Image, Layer
from .buildpack import Module
from .checks import (
    check_extensions_platform,
    check_lifecycle_platform,
    check_module,
    check_nested_orders,
    check_stack,
    check_stack_support,
    user_and_group,
)
from .compress import LayerStore
from .config import BuilderConfig, ModuleEntry
from .files import build_env_files, order_toml, resolve_order, run_toml, stack_toml, system_toml
from .flatten import flattened_layer
from .image import Added, BuilderImage, make_image
from .label_json import LAYERS_LABELS, ModuleLayers, module_layers
from .labels import builder_labels
from .layers import NewLayer, directories_layer, files_layer, lifecycle_layer
from .targets import check_target_support

__all__ = ["Inputs", "assemble", "check"]


@dataclass(frozen=True)
class Inputs:
    """Everything a builder is made of, already resolved.

    Attributes:
        config: builder.toml.
        lifecycle: the validated lifecycle.
        lifecycle_source: how messages name where it came from.
        build_image: the build image.
        buildpacks / extensions: each builder.toml entry with the module read from it.
        labels: the user's labels (pack's ``--label``): set before the builder's own, which win.
        flatten: pack's ``--flatten`` groups (``id@version`` sets): each group's modules share
            one layer (a name that is not among the modules is ignored, as pack does).
    """

    config: BuilderConfig
    lifecycle: Lifecycle
    lifecycle_source: str
    build_image: Image
    buildpacks: Sequence[tuple[ModuleEntry, Module]]
    extensions: Sequence[tuple[ModuleEntry, Module]] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    flatten: Sequence[frozenset[str]] = ()


def _unique(pairs: Sequence[tuple[ModuleEntry, Module]]) -> list[Module]:
    # pack: a module defined twice is added once; the last definition wins.
    by_ref: dict[str, Module] = {}
    for _, module in pairs:
        by_ref.pop(module.ref, None)
        by_ref[module.ref] = module
    return list(by_ref.values())


def check(inputs: Inputs, warn: Callable[[str], None]) -> tuple[int, int]:
    """Every check :func:`assemble` makes before its first layer (a builder of several targets
    checks each target's inputs before it assembles any).

    Returns:
        The build image's ``CNB_USER_ID`` and ``CNB_GROUP_ID``.

    Raises:
        BuilderError: the inputs do not fit (each message names both sides).
    """
    config, lifecycle, image = inputs.config, inputs.lifecycle, inputs.build_image
    uid, gid = user_and_group(image)
    check_stack(config, image)
    check_lifecycle_platform(lifecycle, image, inputs.lifecycle_source)
    check_extensions_platform(config, lifecycle)
    for kind, pairs in (("buildpacks", inputs.buildpacks), ("extensions", inputs.extensions)):
        for entry, module in pairs:
            where = f"{config.path}: [[{kind}]] {entry.uri}" + (f" (line {entry.line})" if entry.line else "")
            warning = check_module(module, entry, lifecycle, where)
            if warning:
                warn(warning)
    buildpacks = _unique(inputs.buildpacks)
    check_nested_orders(buildpacks)
    check_stack_support(buildpacks, image)
    check_target_support(buildpacks, image)
    return uid, gid


def _base_diff_id(on_base: Mapping[str, ModuleLayers], module: Module) -> str | None:
    """The layer diff ID the build image's own module label gives ``module``, if it has it."""
    found = on_base[module.kind].get(module.id, {}).get(module.version, {}).get("layerDiffID")
    return found if isinstance(found, str) else None


def _lifecycle_layer(lifecycle: Lifecycle, source: str) -> Layer | NewLayer:
    # A lifecycle that came out of an image whose one layer held it alone: the image service
    # names that layer (``Blob.image.layer``), and the builder references it as stored (same
    # digest, so a registry already holding the lifecycle image skips it; never inflated and
    # recompressed). Otherwise the normalised layer is compressed (once: cached by diff ID).
    image = lifecycle.blob.image
    if image is not None and image.layer is not None and image.layer.diff_id is not None:
        return image.layer
    return lifecycle_layer(
        f"lifecycle {lifecycle.version} from {source}", lifecycle.layer_digest, lifecycle.layer
    )


def _module_parts(
    modules: Sequence[Module], flattened: Sequence[tuple[Module, ...]], store: LayerStore
) -> Iterator[tuple[tuple[Module, ...], Added, str]]:
    """Each module layer with the modules it holds and its diff ID: the ``--flatten`` groups
    first (one layer each), then one per module, as pack orders them."""
    for group in flattened:
        layer = store.get(flattened_layer(group))
        yield group, (layer, layer.source), layer.diff_id
    done = {module.ref for group in flattened for module in group}
    for module in modules:
        if module.ref in done:
            continue
        if module.layer is not None and module.layer.diff_id is not None:
            # A buildpackage image's layer, referenced as stored (same digest as in the package).
            yield (module,), (module.layer, f"{module.kind} {module.ref}"), module.layer.diff_id
        else:
            layer = store.get(
                NewLayer(f"{module.kind} {module.ref} from {module.source}", module.layer_chunks)
            )
            yield (module,), (layer, f"{module.kind} {module.ref}"), layer.diff_id


def assemble(
    inputs: Inputs,
    store: LayerStore,
    *,
    created_by: Mapping[str, str],
    reference: str,
    warn: Callable[[str], None] = lambda _message: None,
) -> BuilderImage:
    """Check the inputs and make the builder image.

    Args:
        inputs: the resolved lifecycle, build image and modules, with builder.toml.
        store: where compressed layers are kept (and found again).
        created_by: ``{"name", "version"}`` for the metadata label.
        reference: how messages name the builder (the export target).
        warn: receives pack's warnings (a deprecated Buildpack API, an empty order).

    Raises:
        BuilderError: the inputs do not fit (each message names both sides).
        CnbkitError: a module or the lifecycle cannot be read, the cache cannot be written.
    """
    config, lifecycle = inputs.config, inputs.lifecycle
    uid, gid = check(inputs, warn)
    image = inputs.build_image
    # Read once, before any layer is made: a malformed label fails fast, naming the image.
    on_base = {
        kind: module_layers(image.config.labels, kind, where=f"build image {image.reference}")
        for kind in LAYERS_LABELS
    }
    buildpacks = sorted(_unique(inputs.buildpacks), key=lambda m: m.ref)
    extensions = sorted(_unique(inputs.extensions), key=lambda m: m.ref)
    available = [(m.id, m.version) for m in buildpacks]
    order = resolve_order(config.order, available, "buildpack", config.where("order"))
    order_ext = resolve_order(
        config.order_extensions,
        [(m.id, m.version) for m in extensions],
        "extension",
        config.where("order-extensions"),
    )
    system_pre = resolve_order([config.system_pre], available, "buildpack", config.where("system"))[0]
    system_post = resolve_order([config.system_post], available, "buildpack", config.where("system"))[0]
    env = build_env_files(config)
    if not config.order:
        warn(f"builder configuration {config.path}: empty 'order' definition")

    # Each --flatten group as the modules it names (checked here, before a layer is made).
    groups = [tuple(m for m in [*buildpacks, *extensions] if m.ref in refs) for refs in inputs.flatten]
    flattened = [group for group in groups if group]
    for group in flattened:
        flattened_layer(group)
    lifecycle_part = _lifecycle_layer(lifecycle, inputs.lifecycle_source)
    added: list[Added] = [(store.get(directories_layer(uid, gid)), "directories")]
    added.append(
        lifecycle_part if isinstance(lifecycle_part, Layer) else (store.get(lifecycle_part), "lifecycle")
    )
    diff_ids: dict[str, str] = {}
    for group, part, diff_id in _module_parts([*buildpacks, *extensions], flattened, store):
        # pack (§4.4): the same module with the same layer already on the build image is skipped;
        # with another layer, a whiteout of its directory goes first. A flattened package (or a
        # --flatten group) holds several modules in one layer: it is added once.
        bases = [_base_diff_id(on_base, module) for module in group]
        if any(base != diff_id for base in bases) and diff_id not in diff_ids.values():
            for module, base_diff_id in zip(group, bases, strict=True):
                if base_diff_id is not None and base_diff_id != diff_id:
                    folder, _, version = module.root.rpartition("/")
                    whiteout = files_layer(
                        f"whiteout of {module.ref} on the build image", [(f"{folder}/.wh.{version}", b"")]
                    )
                    added.append((store.get(whiteout), f"whiteout {module.ref}"))
            added.append(part)
        diff_ids.update(dict.fromkeys((module.ref for module in group), diff_id))
    files = [("order.toml", order_toml(order, order_ext))]
    if system_pre or system_post:
        files.append(("system.toml", system_toml(system_pre, system_post)))
    files += [("stack.toml", stack_toml(config)), ("run.toml", run_toml(config.run_images))]
    for name, data in files:
        added.append((store.get(files_layer(f"cnb/{name}", [(f"cnb/{name}", data)])), name))
    if env:
        env_files = [(f"cnb/build-config/env/{key}", value.encode()) for key, value in sorted(env.items())]
        added.append((store.get(files_layer("cnb/build-config/env", env_files)), "build-config env"))
    added.append((store.get(files_layer("platform/env (empty)", [])), "platform env"))
    labels = builder_labels(
        config, lifecycle, buildpacks, extensions, diff_ids, image.config.labels, on_base, created_by
    )
    return make_image(inputs.build_image, added, {**inputs.labels, **labels}, reference)
