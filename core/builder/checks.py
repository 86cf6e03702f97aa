"""Whether the inputs fit together; each failure is one line naming both sides."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import BuilderError
from ..lifecycle.model import Lifecycle
from ..oci.image import Image
from .buildpack import Module
from .config import BuilderConfig, ModuleEntry
from .label_json import json_label

__all__ = [
    "check_extensions_platform",
    "check_lifecycle_platform",
    "check_module",
    "check_stack",
    "check_stack_support",
    "user_and_group",
]

STACK_ID = "io.buildpacks.stack.id"
MIXINS = "io.buildpacks.stack.mixins"
_EXTENSIONS_PLATFORM = (0, 13)
_DIGITS = re.compile(r"[0-9]{1,10}", re.ASCII)
_MAX_ID = 2**31 - 1


def _api_key(api: str) -> tuple[int, int]:
    major, _, minor = api.partition(".")
    return int(major), int(minor or 0)


def user_and_group(image: Image) -> tuple[int, int]:
    """The build image's ``CNB_USER_ID`` and ``CNB_GROUP_ID`` (pack's messages).

    Raises:
        BuilderError: either is missing, empty or not an integer.
    """
    ids = []
    for name in ("CNB_USER_ID", "CNB_GROUP_ID"):
        value = image.config.env_value(name)
        if not value:
            raise BuilderError(f"build image {image.reference}: image missing required env var '{name}'")
        # ASCII digits only: int() also takes "1_000", " 1000 " and Arabic-Indic digits, which the
        # lifecycle (Go's strconv.Atoi) refuses when the builder runs; a sign is refused too.
        number = int(value) if _DIGITS.fullmatch(value) else -1
        if not 0 <= number <= _MAX_ID:
            shown = value[:40]
            raise BuilderError(
                f"build image {image.reference}: failed to parse '{name}', "
                f"value '{shown}' should be an integer"
            )
        ids.append(number)
    return ids[0], ids[1]


def check_stack(config: BuilderConfig, image: Image) -> None:
    """With ``[stack] id``, the build image's ``io.buildpacks.stack.id`` must match it.

    Raises:
        BuilderError: they differ (both named).
    """
    if not config.stack.id:
        return
    found = image.config.label(STACK_ID, "") or ""
    if found != config.stack.id:
        raise BuilderError(
            f"{config.where('stack.id')}: stack '{config.stack.id}' from builder config is incompatible "
            f"with stack '{found}' from build image {image.reference}"
        )


def check_lifecycle_platform(lifecycle: Lifecycle, image: Image, shown: str) -> None:
    """The lifecycle must be built for the build image's OS and architecture (kpack's rule;
    pack does not check, and a builder with the wrong binaries fails only when it runs).

    Raises:
        BuilderError: they differ.
    """
    want = image.platform
    if (lifecycle.os, lifecycle.arch) != (want.os, want.architecture):
        raise BuilderError(
            f"lifecycle {lifecycle.version} from {shown} is for {lifecycle.platform}, "
            f"but build image {image.reference} is {want}"
        )


def check_module(module: Module, entry: ModuleEntry, lifecycle: Lifecycle, where: str) -> str | None:
    """Check a module against its builder.toml entry and the lifecycle's Buildpack APIs.

    Returns:
        A warning when the module uses a deprecated API, else ``None``.

    Raises:
        BuilderError: the id or version differs from builder.toml's, or the API is not one the
            lifecycle supports or deprecates (pack's message, with the lists).
    """
    kind = module.kind
    if entry.id and entry.id != module.id:
        raise BuilderError(
            f"{where}: {kind} from URI '{entry.uri}' has ID '{module.id}' which does not match "
            f"ID '{entry.id}' from builder config"
        )
    if entry.version and entry.version != module.version:
        raise BuilderError(
            f"{where}: {kind} from URI '{entry.uri}' has version '{module.version}' which does not "
            f"match version '{entry.version}' from builder config"
        )
    apis = lifecycle.apis.buildpack
    wanted = _api_key(module.api)
    if any(_api_key(a) == wanted for a in apis.deprecated):
        return f"{kind.capitalize()} '{module.ref}' is using deprecated Buildpacks API version '{module.api}'"
    if not any(_api_key(a) == wanted for a in apis.supported):
        raise BuilderError(
            f"{kind} '{module.ref}' (Buildpack API {module.api}) is incompatible with lifecycle "
            f"'{lifecycle.version}' (Buildpack API(s) {', '.join(apis.supported)})"
        )
    return None


def check_nested_orders(buildpacks: Sequence[Module]) -> None:
    """A composite buildpack's ``[[order]]`` may name only buildpacks on the builder.

    Raises:
        BuilderError: pack's ``buildpack 'id@version' not found on the builder``.
    """
    present = {m.ref for m in buildpacks}
    for module in buildpacks:
        for group in module.order:
            for ref in group.get("group", []) if isinstance(group, dict) else []:
                name = f"{ref.get('id', '')}@{ref.get('version', '')}" if isinstance(ref, dict) else str(ref)
                if name not in present:
                    raise BuilderError(
                        f"{module.ref} (order of a composite buildpack): buildpack '{name}' not found "
                        "on the builder"
                    )


def _image_mixins(image: Image) -> set[str]:
    where = f"build image {image.reference}"
    value = json_label(image.config.labels, MIXINS, where=where)
    if value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BuilderError(
            f"{where}: label {MIXINS} must be a JSON array of strings; fix or remove the label"
        )
    return set(value)


def check_stack_support(buildpacks: Sequence[Module], image: Image) -> None:
    """pack's ``EnsureStackSupport``: a buildpack that declares ``[[stacks]]`` must name the
    build image's stack id (or ``*``), and the image's mixins label must hold each of that
    stack's mixins but the ``run:`` ones (compared as written: ``build:git`` is not ``git``).
    Composite buildpacks are checked through their order instead, as pack does.

    Raises:
        BuilderError: pack's ``does not support stack`` or ``requires missing mixin(s)``.
    """
    stack_id = image.config.label(STACK_ID, "") or ""
    mixins: set[str] | None = None  # read once, and only when a buildpack asks
    for module in buildpacks:
        if module.order or not module.stacks:
            continue
        stack = next((s for s in module.stacks if s.get("id") in (stack_id, "*")), None)
        if stack is None:
            raise BuilderError(
                f"{module.source}: buildpack '{module.ref}' does not support stack '{stack_id}' "
                f"(the stack of build image {image.reference})"
            )
        wanted = stack.get("mixins") or []
        if not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted):
            raise BuilderError(f"{module.source}: buildpack '{module.ref}': stacks.mixins must be strings")
        mixins = _image_mixins(image) if mixins is None else mixins
        missing = sorted({m for m in wanted if not m.startswith("run:")} - mixins)
        if missing:
            raise BuilderError(
                f"{module.source}: buildpack '{module.ref}' requires missing mixin(s): "
                f"{', '.join(missing)} (build image {image.reference} has label {MIXINS} without them)"
            )


def check_extensions_platform(config: BuilderConfig, lifecycle: Lifecycle) -> None:
    """Image extensions need a lifecycle whose newest Platform API is 0.13 or later (pack's
    ``validateLifecycleVersion``; pack allows older ones only in experimental mode). Skipped
    when the lifecycle lists no Platform API, as pack does.

    Raises:
        BuilderError: pack's message.
    """
    supported = lifecycle.apis.platform.supported
    if not (config.extensions or config.order_extensions) or not supported:
        return
    newest = max(supported, key=_api_key)
    if _api_key(newest) < _EXTENSIONS_PLATFORM:
        raise BuilderError(
            f"{config.path}: builder config contains image extensions, but the lifecycle Platform API "
            f"version ({newest}) is older than 0.13; support for image extensions with Platform API "
            f"< 0.13 is currently experimental: use a lifecycle that supports Platform API 0.13"
        )
