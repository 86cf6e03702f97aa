"""The typed facade over pluggy: the rest of cnbkit never touches ``pm.hook``.

It walks the implementations itself, so it knows which plugin answered a ``firstresult``
hook, names the plugin when one raises, and can trace every call
(``CNBKIT_TRACE_HOOKS=1`` prints each call and its outcome on stderr).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from ..blob import Blob
from ..errors import CnbkitError, PluginError
from ..redact import redact
from .loader import (
    LoadedPlugin,
    PluginLoadFailure,
    load_plugins,
    new_plugin_manager,
    register_checked,
    registered_in_code,
)

if TYPE_CHECKING:
    from ..lifecycle.model import Lifecycle
    from ..locator import Locator
    from ..oci.image import Image
    from ..oci.image_index import ImageIndex
    from ..oci.platform import Platform
    from .context import Context

__all__ = ["PluginHost"]


class PluginHost:
    """The registered plugins and typed calls to their hooks.

    Args:
        pm: a plugin manager with cnbkit's hookspecs and the plugins registered.
        loaded: what :func:`cnbkit.plugin.loader.load_plugins` registered (for ``cnbkit plugins``).
        failed: plugins that failed to load.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        loaded: list[LoadedPlugin] | None = None,
        failed: list[PluginLoadFailure] | None = None,
    ) -> None:
        self._pm = pm
        self.loaded = loaded or []
        self.failed = failed or []
        self._trace = os.environ.get("CNBKIT_TRACE_HOOKS", "") not in ("", "0")

    @classmethod
    def from_entry_points(
        cls, report: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)
    ) -> PluginHost:
        """Load every plugin of the ``cnbkit`` entry-point group (built-ins first), then those
        registered in code with :func:`cnbkit.register_plugin` (so they are asked first)."""
        pm = new_plugin_manager()
        loaded, failed = load_plugins(pm, report)
        host = cls(pm, loaded, failed)
        for name, plugin in registered_in_code():
            host.register(plugin, name)
        return host

    def register(self, plugin: object, name: str) -> None:
        """Register ``plugin`` (a module, class instance or object with ``@hookimpl``
        methods) with this host only; it is asked before every plugin registered earlier.

        Raises:
            PluginError: the name is taken, or the plugin's hooks are misdeclared.
        """
        if self._pm.has_plugin(name):
            raise PluginError(name, f"a plugin named {name!r} is registered already")
        error = register_checked(self._pm, plugin, name)
        if error:
            raise PluginError(name, f"plugin {name!r} cannot be registered: {error}")

    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        # pluggy calls the list back to front: tryfirst, then the latest registered, ...
        return list(reversed(getattr(self._pm.hook, hook).get_hookimpls()))

    def _call(self, impl: pluggy.HookImpl, hook: str, kwargs: dict[str, Any], what: str) -> Any:
        args = {name: kwargs[name] for name in impl.argnames}
        start = time.perf_counter()
        try:
            result = impl.function(**args)
        except CnbkitError as exc:
            self._log(hook, impl.plugin_name, what, f"raised {type(exc).__name__}", start)
            if hook == "cnbkit_check_lifecycle":  # a refusal must say whose policy it is
                raise PluginError(impl.plugin_name, f"plugin {impl.plugin_name!r}: {exc}") from exc
            raise
        except Exception as exc:
            self._log(hook, impl.plugin_name, what, f"raised {type(exc).__name__}", start)
            message = redact(f"{type(exc).__name__}: {exc}")
            raise PluginError(
                impl.plugin_name, f"plugin {impl.plugin_name!r} failed in {hook}({what}): {message}"
            ) from exc
        self._log(hook, impl.plugin_name, what, "passed" if result is None else "answered", start)
        return result

    def _log(self, hook: str, plugin: str, what: str, outcome: str, start: float) -> None:
        if self._trace:
            ms = (time.perf_counter() - start) * 1000
            print(f"cnbkit: trace: {hook}({what}) -> {plugin}: {outcome} in {ms:.1f} ms", file=sys.stderr)

    def resolve(self, locator: Locator, context: Context) -> Blob | None:
        """Ask the resolvers in order until one claims ``locator``.

        Returns:
            The Blob, credited to the plugin that claimed it (:meth:`cnbkit.Blob.credited`),
            or ``None`` when none does (image sources are not asked: what comes back is a Blob
            or nothing, never an image in disguise).

        Raises:
            PluginError: a plugin raised an unexpected exception (named in the message) or
                returned something that is not a :class:`cnbkit.Blob`.
        """
        kwargs = {"locator": locator, "context": context}
        for impl in self._impls("cnbkit_resolve"):
            blob = self._call(impl, "cnbkit_resolve", kwargs, str(locator))
            if blob is None:
                continue
            if not isinstance(blob, Blob):
                raise PluginError(
                    impl.plugin_name,
                    f"plugin {impl.plugin_name!r} returned {type(blob).__name__} for {locator}, "
                    "expected a cnbkit.Blob",
                )
            return blob.credited(impl.plugin_name)
        return None

    def resolve_image(self, locator: Locator, context: Context) -> tuple[Image, str] | None:
        """Ask the image sources in order until one supplies an image for ``locator``.

        Returns:
            The image and the name of the plugin that supplied it, or ``None`` when no plugin
            claims the locator.

        Raises:
            PluginError: a plugin raised an unexpected exception, returned something that is
                not a :class:`cnbkit.Image`, or an image for another platform than
                ``context.platform`` (the core checks what every plugin returns).
        """
        from ..oci.image import Image  # the image model is needed only once an image is asked for

        kwargs = {"locator": locator, "context": context}
        for impl in self._impls("cnbkit_resolve_image"):
            image = self._call(impl, "cnbkit_resolve_image", kwargs, str(locator))
            if image is None:
                continue
            if not isinstance(image, Image):
                raise PluginError(
                    impl.plugin_name,
                    f"plugin {impl.plugin_name!r} returned {type(image).__name__} for {locator}, "
                    "expected a cnbkit.Image",
                )
            wanted = context.platform
            if not _fits(wanted, image.platform):
                raise PluginError(
                    impl.plugin_name,
                    f"plugin {impl.plugin_name!r} supplied a {image.platform} image for {locator}, "
                    f"but {wanted} was asked for; the plugin must pick context.platform's image",
                )
            return image, impl.plugin_name
        return None

    def export(
        self,
        target: str,
        image: Image,
        context: Context,
        tags: tuple[str, ...] = (),
        index: ImageIndex | None = None,
    ) -> tuple[str, str] | None:
        """Ask the ``cnbkit_export`` plugins in order until one writes ``image`` to ``target``
        (under ``tags`` too: then only the plugins whose hook takes ``tags`` are asked; a
        multi-platform ``index``: only those whose hook takes ``index``).

        Returns:
            What the plugin says it wrote and the plugin's name, or ``None`` when no plugin
            handles the target.

        Raises:
            PluginError: a plugin raised an unexpected exception or returned a non-string.
        """
        kwargs = {"target": target, "image": image, "context": context, "tags": tags, "index": index}
        for impl in self._impls("cnbkit_export"):
            if tags and "tags" not in impl.argnames:
                continue  # it would write the target without the other names
            if index is not None and "index" not in impl.argnames:
                continue  # it would write one platform of several
            written = self._call(impl, "cnbkit_export", kwargs, redact(target))
            if written is None:
                continue
            if not isinstance(written, str):
                raise PluginError(
                    impl.plugin_name,
                    f"plugin {impl.plugin_name!r} returned {type(written).__name__} from cnbkit_export, "
                    "expected a string",
                )
            return written, impl.plugin_name
        return None

    def claims(self) -> dict[str, list[str]]:
        """What each plugin says it claims, by plugin name, in the order they are asked."""
        return self._described("cnbkit_resolvers")

    def exporters(self) -> dict[str, list[str]]:
        """What each plugin says it exports to, by plugin name, in the order they are asked."""
        return self._described("cnbkit_exporters")

    def _described(self, hook: str) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for impl in self._impls(hook):
            # A plugin that cannot describe itself must not break `cnbkit plugins` or the
            # "no plugin claims X" message: its failure is shown in place of its patterns.
            try:
                described = self._call(impl, hook, {}, "")
                result[impl.plugin_name] = _strings(described, impl.plugin_name, hook)
            except CnbkitError as exc:
                result[impl.plugin_name] = [f"(unknown: {exc})"]
        return result

    def check_lifecycle(self, lifecycle: Lifecycle, context: Context) -> list[str]:
        """Every problem the ``cnbkit_check_lifecycle`` implementations report, prefixed with
        the plugin's name."""
        problems: list[str] = []
        kwargs = {"lifecycle": lifecycle, "context": context}
        for impl in self._impls("cnbkit_check_lifecycle"):
            found = self._call(impl, "cnbkit_check_lifecycle", kwargs, lifecycle.version)
            for problem in _strings(found, impl.plugin_name, "cnbkit_check_lifecycle"):
                problems.append(f"{impl.plugin_name}: {problem}")
        return problems

    def describe(self) -> list[dict[str, Any]]:
        """The ``cnbkit plugins --json`` list: name, claims, exports, module, distribution, version."""
        claims, exports = self.claims(), self.exporters()
        rows: list[dict[str, Any]] = []
        for plugin in self.loaded:
            rows.append(
                {
                    "name": plugin.name,
                    "claims": claims.get(plugin.name, []),
                    "exports": exports.get(plugin.name, []),
                    "module": plugin.module,
                    "distribution": plugin.distribution,
                    "version": plugin.version,
                }
            )
        for name, module in self._pm.list_name_plugin():
            if not any(p.name == name for p in self.loaded):  # registered in code (tests, API)
                rows.append(
                    {
                        "name": name,
                        "claims": claims.get(name, []),
                        "exports": exports.get(name, []),
                        "module": getattr(module, "__name__", repr(module)),
                        "distribution": None,
                        "version": None,
                    }
                )
        return rows


def _fits(wanted: Platform, got: Platform) -> bool:
    """Whether an image whose config says ``got`` serves the platform ``wanted``; a config
    without a variant fits every variant of its architecture (image configs often omit it)."""
    if wanted.matches(got):
        return True
    return not got.variant and (got.os, got.architecture) == (wanted.os, wanted.architecture)


def _strings(value: object, plugin: str, hook: str) -> list[str]:
    """A hook's list-of-strings answer; a lone string counts as a list of one.

    Raises:
        PluginError: anything else (naming the plugin), rather than a list of characters.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    raise PluginError(
        plugin, f"plugin {plugin!r} returned {type(value).__name__} from {hook}, expected a list of strings"
    )
