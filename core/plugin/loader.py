"""Loading plugins from the ``cnbkit`` entry-point group, each on its own.

pluggy's ``load_setuptools_entrypoints`` stops at the first plugin that fails to import and
follows the order of the filesystem. cnbkit loads the built-ins (the entry points of the
``cnbkit`` distribution itself) first, then the others sorted by distribution and entry-point
name, each in its own try/except: a broken plugin is reported on stderr by name and skipped.
Because pluggy asks the most recently registered plugin first, a third-party plugin can take
over a scheme a built-in claims.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

import pluggy

from . import hookspecs

__all__ = ["BUILTIN_DISTRIBUTION", "LoadedPlugin", "PluginLoadError", "load_plugins"]

BUILTIN_DISTRIBUTION = "cnbkit"
GROUP = "cnbkit"


@dataclass(frozen=True)
class LoadedPlugin:
    """A plugin that was registered: its entry-point name, module and distribution."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool


@dataclass(frozen=True)
class PluginLoadError:
    """A plugin that failed to load, and why."""

    name: str
    distribution: str
    error: str


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("CNBKIT_DISABLE_PLUGINS", "").split(",") if n.strip()}


def _entry_points() -> list[tuple[metadata.EntryPoint, str, str]]:
    found = []
    seen = set()
    # entry_points(group=...) reads only entry_points.txt files; walking distributions()
    # would parse every installed package's METADATA first (about 40 ms here).
    for ep in metadata.entry_points(group=GROUP):
        dist = ep.dist
        name = (dist.metadata["Name"] if dist is not None else "") or ""
        version = dist.version if dist is not None else ""
        # A distribution installed twice (editable and not) lists its entry points twice.
        if (name.lower(), ep.name) not in seen:
            seen.add((name.lower(), ep.name))
            found.append((ep, name, version))
    builtin = [f for f in found if f[1].lower() == BUILTIN_DISTRIBUTION]
    others = sorted(
        (f for f in found if f[1].lower() != BUILTIN_DISTRIBUTION), key=lambda f: (f[1].lower(), f[0].name)
    )
    return builtin + others


def load_plugins(
    pm: pluggy.PluginManager, report: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)
) -> tuple[list[LoadedPlugin], list[PluginLoadError]]:
    """Register every plugin of the ``cnbkit`` entry-point group with ``pm``.

    Args:
        pm: the plugin manager (hookspecs already added).
        report: where to say that a plugin failed (stderr by default).

    Returns:
        The plugins registered, in registration order, and those that failed.
    """
    loaded: list[LoadedPlugin] = []
    failed: list[PluginLoadError] = []
    disabled = _disabled()
    for ep, dist, version in _entry_points():
        if ep.name in disabled:
            continue
        if pm.has_plugin(ep.name):
            error = "another plugin of that name was registered before it"
        else:
            try:
                module: ModuleType = ep.load()
                pm.register(module, name=ep.name)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not take cnbkit down
                error = " ".join(f"{type(exc).__name__}: {exc}".split())  # pluggy's are multi-line
                if pm.has_plugin(ep.name):
                    # pluggy's register() keeps the hooks it added before the one that failed
                    # validation; none of a plugin reported as skipped may run.
                    pm.unregister(name=ep.name)
            else:
                error = _misdeclared(pm, module)
        if error:
            failed.append(PluginLoadError(ep.name, dist, error))
            report(f"cnbkit: plugin {ep.name!r} (from {dist}) failed to load and is skipped: {error}")
            continue
        loaded.append(
            LoadedPlugin(ep.name, module.__name__, dist, version, dist.lower() == BUILTIN_DISTRIBUTION)
        )
    return loaded, failed


def _misdeclared(pm: pluggy.PluginManager, module: ModuleType) -> str:
    """Why a just-registered plugin cannot be used (it is then unregistered), or ``""``.

    pluggy accepts an implementation of a hook nobody declared (a typo such as
    ``cnbkit_reslove`` would silently never be called) and hook wrappers, which cnbkit's typed
    facade does not run; both are reported instead.
    """
    problems = []
    for caller in pm.get_hookcallers(module) or []:
        if not caller.has_spec():
            known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("cnbkit_")))
            problems.append(f"{caller.name} is not a cnbkit hook (the hooks are {known})")
        elif any(i.plugin is module and (i.wrapper or i.hookwrapper) for i in caller.get_hookimpls()):
            problems.append(f"{caller.name} is a hook wrapper, which cnbkit does not support")
    if problems:
        pm.unregister(module)
    return "; ".join(problems)


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with cnbkit's hookspecs and nothing registered."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm
