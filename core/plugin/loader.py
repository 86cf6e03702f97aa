"""Loading plugins from the ``cnbkit`` entry-point group, each on its own.

pluggy's ``load_setuptools_entrypoints`` stops at the first plugin that fails to import and
follows the order of the filesystem. cnbkit loads the built-ins (the entry points of the
``cnbkit`` distribution itself) first, then the others sorted by distribution and entry-point
name, each in its own try/except: a broken plugin is reported on stderr by name and skipped.
Because pluggy asks the most recently registered plugin first, a third-party plugin can take
over a scheme a built-in claims.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import pluggy

from ..errors import UsageError
from . import hookspecs
from .entrypoints import EntryPoint, find_entry_points

__all__ = [
    "BUILTIN_DISTRIBUTION",
    "LoadedPlugin",
    "PluginLoadFailure",
    "load_plugins",
    "new_plugin_manager",
    "register_checked",
    "register_plugin",
    "registered_in_code",
    "unregister_plugin",
]

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
class PluginLoadFailure:
    """A plugin that failed to load, and why: a record for `cnbkit plugins`, not an exception."""

    name: str
    distribution: str
    error: str


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("CNBKIT_DISABLE_PLUGINS", "").split(",") if n.strip()}


@functools.cache  # one scan of the installed distributions per process
def _entry_points() -> list[EntryPoint]:
    found = []
    seen = set()
    for ep in find_entry_points(GROUP):
        # A distribution installed twice (editable and not) lists its entry points twice.
        if (ep.distribution.lower(), ep.name) not in seen:
            seen.add((ep.distribution.lower(), ep.name))
            found.append(ep)
    builtin = [ep for ep in found if ep.distribution.lower() == BUILTIN_DISTRIBUTION]
    others = sorted(
        (ep for ep in found if ep.distribution.lower() != BUILTIN_DISTRIBUTION),
        key=lambda ep: (ep.distribution.lower(), ep.name),
    )
    return builtin + others


def load_plugins(
    pm: pluggy.PluginManager, report: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)
) -> tuple[list[LoadedPlugin], list[PluginLoadFailure]]:
    """Register every plugin of the ``cnbkit`` entry-point group with ``pm``.

    Args:
        pm: the plugin manager (hookspecs already added).
        report: where to say that a plugin failed (stderr by default).

    Returns:
        The plugins registered, in registration order, and those that failed.
    """
    loaded: list[LoadedPlugin] = []
    failed: list[PluginLoadFailure] = []
    disabled = _disabled()
    for ep in _entry_points():
        dist, version = ep.distribution, ep.version
        if ep.name in disabled:
            continue
        if pm.has_plugin(ep.name):
            error = "another plugin of that name was registered before it"
        else:
            try:
                module: ModuleType = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not take cnbkit down
                error = _one_line(exc)
            else:
                error = register_checked(pm, module, ep.name)
        if error:
            failed.append(PluginLoadFailure(ep.name, dist, error))
            report(f"cnbkit: plugin {ep.name!r} (from {dist}) failed to load and is skipped: {error}")
            continue
        loaded.append(
            LoadedPlugin(ep.name, module.__name__, dist, version, dist.lower() == BUILTIN_DISTRIBUTION)
        )
    return loaded, failed


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())  # pluggy's messages are multi-line


def register_checked(pm: pluggy.PluginManager, plugin: object, name: str) -> str:
    """Register ``plugin`` as ``name``; return why it cannot be used (it is then left
    unregistered), or ``""``."""
    try:
        pm.register(plugin, name=name)
    except Exception as exc:  # noqa: BLE001 - reported by name, never fatal
        if pm.has_plugin(name):
            # pluggy's register() keeps the hooks it added before the one that failed
            # validation; none of a plugin reported as skipped may run.
            pm.unregister(name=name)
        return _one_line(exc)
    return _misdeclared(pm, plugin)


def _misdeclared(pm: pluggy.PluginManager, plugin: object) -> str:
    """Why a just-registered plugin cannot be used (it is then unregistered), or ``""``.

    pluggy accepts an implementation of a hook nobody declared (a typo such as
    ``cnbkit_reslove`` would silently never be called), hook wrappers, which cnbkit's typed
    facade does not run, and parameters with defaults, which pluggy never passes; all are
    reported instead.
    """
    problems = []
    for caller in pm.get_hookcallers(plugin) or []:
        impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
        if not caller.has_spec():
            known = ", ".join(sorted(n for n in hookspecs.__all__ if n.startswith("cnbkit_")))
            problems.append(f"{caller.name} is not a cnbkit hook (the hooks are {known})")
        elif any(i.wrapper or i.hookwrapper for i in impls):
            problems.append(f"{caller.name} is a hook wrapper, which cnbkit does not support")
        elif any(i.kwargnames for i in impls):
            extra = ", ".join(n for i in impls for n in i.kwargnames)
            problems.append(
                f"{caller.name} has parameters with defaults ({extra}), which are never passed: "
                "remove the defaults or the parameters"
            )
    if problems:
        pm.unregister(plugin)
    return "; ".join(problems)


_IN_CODE: dict[str, object] = {}


def register_plugin(plugin: object, name: str) -> None:
    """Register ``plugin`` for every resolve that starts after this call in this process.

    For embedding cnbkit and for testing a plugin without packaging it: ``plugin`` is a
    module, a class instance or any object with :data:`cnbkit.hookimpl` methods. It is
    registered after the entry-point plugins, so it is asked first. Its hooks are checked when
    a resolve loads the plugins (a misdeclared one is then a :class:`~cnbkit.PluginError`).

    Raises:
        UsageError: another plugin was registered in code under ``name``.
    """
    if name in _IN_CODE:
        raise UsageError(f"a plugin named {name!r} is registered already; unregister_plugin() it first")
    _IN_CODE[name] = plugin


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin` (no error when ``name`` was not registered)."""
    _IN_CODE.pop(name, None)


def registered_in_code() -> list[tuple[str, object]]:
    """The plugins :func:`register_plugin` holds, in registration order."""
    return list(_IN_CODE.items())


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with cnbkit's hookspecs and nothing registered."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm
