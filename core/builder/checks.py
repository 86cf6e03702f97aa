"""Whether the inputs fit together; each failure is one line naming both sides."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import BuilderError
from ..lifecycle.model import Lifecycle
from ..oci.image import Image
from .buildpack import Module
from .config import BuilderConfig, ModuleEntry

__all__ = ["check_lifecycle_platform", "check_module", "check_stack", "user_and_group"]

STACK_ID = "io.buildpacks.stack.id"
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
