"""Targets: the platforms a builder is made for (pack's ``[[targets]]`` and ``--target``), and
whether a buildpack supports one (pack's ``EnsureTargetSupport``).

One builder is made per target, each from that platform's build image, lifecycle and
buildpackages; more than one are joined in an image index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..errors import BuilderError, UsageError
from ..oci.image import Image
from ..oci.platform import TARGET_SYNTAX, Platform, parse_platform
from .buildpack import Module
from .config import BuilderConfig, Target

__all__ = [
    "DISTRO_NAME",
    "DISTRO_VERSION",
    "check_target_support",
    "parse_target",
    "parse_targets",
    "target_platform",
    "target_text",
]

# The build image's distribution, as the lifecycle reads it (pack's OSDistribution*Label).
DISTRO_NAME = "io.buildpacks.base.distro.name"
DISTRO_VERSION = "io.buildpacks.base.distro.version"
_EXAMPLE = "linux/arm64 or linux/amd64:ubuntu@22.04@24.04"


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"--target {text!r}: {why}; expected {TARGET_SYNTAX}, e.g. {_EXAMPLE}")


def parse_target(text: str) -> Target:
    """One ``--target`` value (pack's syntax): ``OS/ARCH[/VARIANT]``, then after ``:`` the
    distributions, ``;``-separated, each ``NAME@VERSION`` (more ``@VERSION`` each add one more
    version of that name; a name alone means any version).

    Raises:
        UsageError: no OS and architecture, a distribution without a name, more than one ``:``.
    """
    platform_part, colon, distros_part = text.strip().partition(":")
    if ":" in distros_part:
        raise _bad(text, "more than one ':'")
    if platform_part.count("/") < 1 or not all(platform_part.split("/")):
        raise _bad(text, "give the OS and the architecture")
    try:
        platform = parse_platform(platform_part)
    except UsageError:
        raise _bad(text, f"{platform_part!r} is not OS/ARCH[/VARIANT]") from None
    distros: list[tuple[str, str]] = []
    for item in distros_part.split(";") if colon else ():
        name, *versions = item.strip().split("@")
        if not name:
            raise _bad(text, f"distribution {item!r} has versions but no name")
        if any(not version for version in versions):
            raise _bad(text, f"distribution {item!r} has an empty version")
        distros += [(name, version) for version in versions] or [(name, "")]
    return Target(platform.os, platform.architecture, platform.variant, tuple(distros))


def parse_targets(values: Sequence[str]) -> tuple[Target, ...]:
    """Every ``--target`` value, in order (:func:`parse_target`)."""
    return tuple(parse_target(value) for value in values)


def target_platform(target: Target, config: BuilderConfig | None = None, index: int = 0) -> Platform:
    """The platform a target asks for (aliases folded: ``x86_64`` is ``amd64``).

    Raises:
        BuilderError: a ``[[targets]]`` entry of builder.toml without ``os`` or ``arch``.
    """
    if not target.os or not target.arch:
        where = config.where("targets", index) if config is not None else "target"
        raise BuilderError(f'{where}: a target needs os and arch (e.g. os = "linux", arch = "arm64")')
    return parse_platform("/".join(p for p in (target.os, target.arch, target.variant) if p))


def target_text(target: Target) -> str:
    """The target as ``--target`` writes it (``linux/arm64:ubuntu@22.04``), for messages."""
    shown = "/".join(p for p in (target.os, target.arch, target.variant) if p)
    distros = ";".join(f"{name}@{version}" if version else name for name, version in target.distros)
    return f"{shown}:{distros}" if distros else shown


def _inferred(module: Module) -> tuple[str, ...]:
    # pack's detectPlatformSpecificValues: bin/build means linux, bin/build.bat or .exe windows.
    found: tuple[str, ...] = ("linux",) if "bin/build" in module.build_files else ()
    if {"bin/build.bat", "bin/build.exe"} & set(module.build_files):
        found += ("windows",)
    return found


def _supports(declared: dict[str, object], platform: Platform, distro: tuple[str, str]) -> bool:
    if declared.get("os") != platform.os:
        return False
    if declared.get("arch", "") not in ("", "*", platform.architecture):
        return False
    wanted = declared.get("distros") or declared.get("distributions") or []
    if not wanted or not all(distro) or not isinstance(wanted, list):
        return True
    return any(isinstance(d, dict) and (d.get("name"), d.get("version")) == distro for d in wanted)


def check_target_support(buildpacks: Sequence[Module], image: Image) -> None:
    """pack's ``EnsureTargetSupport``: each buildpack (not a composite one) must support the
    build image's OS and architecture, and its distribution (the ``io.buildpacks.base.distro.*``
    labels) when both sides name one.

    A buildpack without ``[[targets]]`` but with ``[[stacks]]`` is not checked here. One with
    neither supports the OS its ``bin/build`` (linux) or
    ``bin/build.bat``/``.exe`` (windows) is for, on any architecture, as the Buildpack API
    spec says (pack 0.40 accepts only ``amd64`` there, which refuses every arm64 builder of
    such buildpacks); a buildpackage's module, whose files are not read, is not checked.

    Raises:
        BuilderError: the first buildpack that does not fit, named with the target.
    """
    platform = image.platform
    labels = image.config.labels
    distro = (labels.get(DISTRO_NAME, "") or "", labels.get(DISTRO_VERSION, "") or "")
    for module in buildpacks:
        if module.order:  # a composite buildpack: its order is checked instead, as pack does
            continue
        if module.targets:
            if any(_supports(t, platform, distro) for t in module.targets):
                continue
            declared = json.dumps(list(module.targets), sort_keys=True, separators=(",", ":"))
        else:
            systems = _inferred(module)
            # pack: without [[targets]], a [[stacks]] buildpack is the stack checks' alone.
            if module.stacks or module.blob is None or not systems or platform.os in systems:
                continue
            declared = f"inferred from its bin/ files: {', '.join(systems)}"
        shown_distro = f", distribution {distro[0]}@{distro[1]}" if all(distro) else ""
        raise BuilderError(
            f"{module.source}: buildpack '{module.ref}' does not support target {platform}{shown_distro} "
            f"(build image {image.reference}); its targets: {declared}: unable to satisfy target "
            "os/arch constraints (add the target to its buildpack.toml or drop it from the builder's)"
        )
