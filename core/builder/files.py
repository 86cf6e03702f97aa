"""The files a builder carries under ``/cnb``, in pack's exact text: ``order.toml``,
``system.toml``, ``stack.toml``, ``run.toml`` and the ``build-config/env`` map."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from ..errors import BuilderError
from .config import BuilderConfig, ModuleRef, RunImage

__all__ = ["build_env_files", "order_toml", "resolve_order", "run_toml", "stack_toml", "system_toml"]

_SUFFIXES = ("default", "override", "append", "prepend")
# One file name, and no '.': the lifecycle reads NAME.SUFFIX by splitting at the first '.'.
_ENV_NAME = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def _q(value: str) -> str:
    # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
    return json.dumps(value, ensure_ascii=False)


def _qs(values: Iterable[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def resolve_order(
    groups: Sequence[Sequence[ModuleRef]], available: Sequence[tuple[str, str]], kind: str, where: str
) -> list[list[ModuleRef]]:
    """Fill in omitted versions and check that every ref names a module on the builder.

    Args:
        groups: the order as configured.
        available: ``(id, version)`` of every module the builder holds.
        kind: ``buildpack`` or ``extension``, for messages.
        where: ``FILE: order`` for messages.

    Raises:
        BuilderError: pack's messages: no such id, no such version, several versions.
    """
    resolved = []
    for group in groups:
        out = []
        for ref in group:
            versions = sorted({v for i, v in available if i == ref.id})
            if not versions:
                raise BuilderError(f"{where}: no versions of {kind} '{ref.id}' were found on the builder")
            if not ref.version:
                if len(versions) > 1:
                    raise BuilderError(
                        f"{where}: unable to resolve version: multiple versions of '{ref.id}' - "
                        "must specify an explicit version"
                    )
                ref = ModuleRef(ref.id, versions[0], ref.optional, ref.extra)
            elif ref.version not in versions:
                raise BuilderError(
                    f"{where}: {kind} '{ref.id}' with version '{ref.version}' was not found on the "
                    f"builder (it has {', '.join(versions)})"
                )
            out.append(ref)
        resolved.append(out)
    return resolved


def _groups(table: str, groups: Sequence[Sequence[ModuleRef]], optional: bool) -> list[str]:
    blocks = []
    for group in groups:
        lines = [f"[[{table}]]", ""]
        for ref in group:
            lines += [f"  [[{table}.group]]", f"    id = {_q(ref.id)}", f"    version = {_q(ref.version)}"]
            if optional and ref.optional:
                lines.append("    optional = true")
            lines.append("")
        blocks.append("\n".join(lines))
    return blocks


def order_toml(
    order: Sequence[Sequence[ModuleRef]], order_extensions: Sequence[Sequence[ModuleRef]] = ()
) -> bytes:
    """``/cnb/order.toml`` as pack's TOML encoder writes it (extensions never ``optional``)."""
    blocks = _groups("order", order, True) + _groups("order-extensions", order_extensions, False)
    return "\n".join(blocks).rstrip("\n").encode() + (b"\n" if blocks else b"")


def system_toml(pre: Sequence[ModuleRef], post: Sequence[ModuleRef]) -> bytes:
    """``/cnb/system.toml``; empty bytes when there are no system buildpacks."""
    if not pre and not post:
        return b""
    lines = ["[system]"]
    for name, refs in (("pre", pre), ("post", post)):
        if not refs:
            continue
        lines.append(f"  [system.{name}]")
        for ref in refs:
            lines += [
                "",
                f"    [[system.{name}.buildpacks]]",
                f"      id = {_q(ref.id)}",
                f"      version = {_q(ref.version)}",
            ]
            if ref.optional:
                lines.append("      optional = true")
    return ("\n".join(lines) + "\n").encode()


def _run_image_lines(run: RunImage, indent: str) -> list[str]:
    lines = [f"{indent}image = {_q(run.image)}"]
    if run.mirrors:
        lines.append(f"{indent}mirrors = {_qs(run.mirrors)}")
    return lines


def stack_toml(config: BuilderConfig) -> bytes:
    """``/cnb/stack.toml``: the first run image (or ``[stack] run-image``), else empty."""
    if config.stack.id and config.stack.run_image:
        run = RunImage(config.stack.run_image, config.stack.run_image_mirrors)
    elif config.run_images:
        run = config.run_images[0]
    else:
        return b""
    return ("\n".join(["[run-image]", *_run_image_lines(run, "  ")]) + "\n").encode()


def run_toml(runs: Sequence[RunImage]) -> bytes:
    """``/cnb/run.toml``: one ``[[images]]`` block per run image."""
    blocks = ["\n".join(["[[images]]", *_run_image_lines(run, "  ")]) for run in runs]
    return ("\n\n".join(blocks) + "\n").encode() if blocks else b""


def build_env_files(config: BuilderConfig) -> dict[str, str]:
    """The ``/cnb/build-config/env/<KEY>`` files for ``[[build.env]]`` (pack's rules).

    Raises:
        BuilderError: an empty name, a name that is no plain variable name (it is a file name
            under ``/cnb/build-config/env/``), an unknown ``suffix``, or ``append``/``prepend``
            with no ``delim``.
    """
    files: dict[str, str] = {}
    where = config.where("build.env")
    for index, env in enumerate(config.build_env):
        if not env.name:
            raise BuilderError(f"{config.where('build.env', index)}: env name should not be empty")
        if not _ENV_NAME.fullmatch(env.name):
            # the name is a file name under /cnb/build-config/env/: '../../etc/motd' or '.'
            # would write elsewhere (pack does not check)
            raise BuilderError(
                f"{config.where('build.env', index)}: env name {env.name[:80]!r} is not a variable "
                "name: use ASCII letters, digits, '_' and '-'"
            )
        if env.suffix and env.suffix not in _SUFFIXES:
            raise BuilderError(
                f"{where}: unknown action type '{env.suffix}' for '{env.name}' "
                f"(use one of {', '.join(_SUFFIXES)})"
            )
        files[f"{env.name}.{env.suffix}" if env.suffix else env.name] = env.value
        if env.delim:
            files[f"{env.name}.delim"] = env.delim
    for key in files:
        name, _, suffix = key.rpartition(".")
        if suffix in ("append", "prepend") and f"{name}.delim" not in files:
            raise BuilderError(f"{where}: '{key}' needs a delim: set delim for '{name}'")
    return files
