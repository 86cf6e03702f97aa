"""The inputs of each builder :func:`~cnbkit.create_builder` makes: one per target (or one
without targets), each input resolved through the plugins once per distinct platform.

Per target: the build image's entry for that platform, the lifecycle for that OS and
architecture (a ``version`` downloads that archive; an image lifecycle picks that platform),
each buildpackage image's entry for it; local buildpacks are read once and shared by all.
Without targets, one builder for ``--platform``, else for the build image's own platform when it
is a single image (pack uses it as it is), else for the host's from an index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from .api import resolve_with
from .archive.threads import side_by_side
from .builder.buildpack import Module
from .builder.checks import STACK_ID
from .builder.config import BuilderConfig, ModuleEntry, Target
from .builder.targets import parse_targets, target_platform, target_text
from .errors import BuilderError, CnbkitError, UsageError
from .lifecycle.model import Lifecycle
from .oci.errors import PlatformNotFoundError
from .oci.image import Image
from .oci.platform import Platform, parse_platform
from .plugin.context import Context
from .redact import listing

__all__ = ["DEFAULT_LIFECYCLE_VERSION", "Planned", "Planner", "about", "choose_targets"]

DEFAULT_LIFECYCLE_VERSION = "0.21.0"  # pack v0.40's default, used when [lifecycle] says nothing

Pairs = list[tuple[ModuleEntry, Module]]
ReadModules = Callable[[ModuleEntry, str, Context], Pairs]
"""Reads a ``[[buildpacks]]``/``[[extensions]]`` entry (its kind given) for a context's platform."""


@contextmanager
def about(prefix: str) -> Iterator[None]:
    """Put ``prefix`` in front of a failure's one-line message (a new error of its type).

    What fails here is a value of builder.toml: a usage error (exit 2, say an invalid image
    reference) becomes a :class:`BuilderError` (exit 1), as the command line was right."""
    try:
        yield
    except UsageError as exc:
        raise BuilderError(f"{prefix}: {exc}") from exc
    except CnbkitError as exc:
        raise exc.within(prefix) from exc


def _where(config: BuilderConfig, key: str) -> str:
    line = config.line(key)
    return f"{config.path}: {key}" + (f" (line {line})" if line else "")


def choose_targets(
    config: BuilderConfig, targets: Sequence[str] | None, platform: str | None
) -> tuple[Target, ...]:
    """The targets to build: ``targets`` (``--target`` values) replace builder.toml's
    ``[[targets]]``; ``platform`` (one builder for it) replaces them too.

    Raises:
        UsageError: both ``platform`` and ``targets``; a malformed ``--target``.
    """
    if targets and platform is not None:
        raise UsageError("--platform and --target cannot be used together: give each platform as a --target")
    if targets:
        return parse_targets(targets)
    return () if platform is not None else config.targets


@dataclass(frozen=True)
class Planned:
    """What one builder is made of (all resolved for ``platform``).

    Attributes:
        target: the target it is for, or ``None`` (no targets).
        context: the context for its platform.
        image: the build image.
        shown / lifecycle: where the lifecycle came from (for messages), and the lifecycle.
        buildpacks / extensions: each builder.toml entry with the module read from it.
    """

    target: Target | None
    context: Context
    image: Image
    shown: str
    lifecycle: Lifecycle
    buildpacks: Pairs
    extensions: Pairs

    @property
    def platform(self) -> Platform:
        """The builder's platform: its build image's."""
        return self.image.platform


class Planner:
    """Resolves each builder's inputs; each input once per distinct platform, a local module once.

    Args:
        config: builder.toml.
        context: the context of the run (its platform: ``--platform`` or the host's).
        read_modules: reads one module entry for a context.
        note: receives warnings (a run image that cannot be read).
    """

    def __init__(
        self,
        config: BuilderConfig,
        context: Context,
        read_modules: ReadModules,
        note: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.config = config
        self.context = context
        self.read_modules = read_modules
        self.note = note
        self._by_platform: dict[Platform, Planned] = {}
        self._shared: dict[tuple[str, int], Pairs] = {}  # local modules: the same for every platform
        self._inaccessible: set[str] = set()  # run images that could not be read

    def plan(self, targets: Sequence[Target], *, platform_given: bool) -> list[Planned]:
        """One :class:`Planned` per target (the same platform twice is resolved once), or
        one without targets.

        The build and run images are read first, in the targets' order (manifests and
        configs); then the lifecycles, side by side (each a download and its validation: the
        heavy part, on two cores); then the modules, a local one once for all.

        Raises:
            BuilderError: a target an input lacks (the platforms it has listed), a target
                without os or arch; whatever resolving an input raised (the first target's
                failure when several fail).
        """
        if not targets:
            return [self._untargeted(platform_given)]
        keys = [target_platform(target, self.config, index) for index, target in enumerate(targets)]
        first: dict[Platform, Target] = {}  # each platform with its first target, in order
        for key, target in zip(keys, targets, strict=True):
            first.setdefault(key, target)
        images = {
            platform: self._images(self.context.with_platform(platform), target)
            for platform, target in first.items()
        }
        lifecycles = side_by_side(
            [
                partial(self._target_lifecycle, images[platform][0], target)
                for platform, target in first.items()
            ]
        )
        for (platform, target), lifecycle in zip(first.items(), lifecycles, strict=True):
            context, image = images[platform]
            self._by_platform[platform] = self._inputs(context, image, target, lifecycle)
        return [
            Planned(target, *_fields(self._by_platform[key]))
            for key, target in zip(keys, targets, strict=True)
        ]

    def _untargeted(self, platform_given: bool) -> Planned:
        context = self.context
        try:
            image = self._build_image(context)
        except PlatformNotFoundError as exc:
            if platform_given or not exc.single:
                raise
            # pack: a single-image build image is used as it is, whatever the host's platform.
            context = context.with_platform(parse_platform(exc.available[0]))
            image = self._build_image(context)
        return self._inputs(context.with_platform(image.platform), image, None)

    def _images(self, context: Context, target: Target) -> tuple[Context, Image]:
        what = f"{self.config.path}: build image {self.config.build_image}"
        with _for_target(what, context.platform, target):
            image = self._build_image(context)
        self._run_images(context, target)
        # The image's platform may say more (its variant): the rest follows it, as pack does.
        return context.with_platform(image.platform), image

    def _target_lifecycle(self, context: Context, target: Target) -> tuple[str, Lifecycle]:
        with _for_target(f"{self.config.path}: lifecycle", context.platform, target):
            return self._lifecycle(context)

    def _inputs(
        self,
        context: Context,
        image: Image,
        target: Target | None,
        lifecycle: tuple[str, Lifecycle] | None = None,
    ) -> Planned:
        config = self.config
        shown, found = lifecycle or self._lifecycle(context)
        modules: dict[str, Pairs] = {"buildpack": [], "extension": []}
        for kind, entries in (("buildpack", config.buildpacks), ("extension", config.extensions)):
            for index, entry in enumerate(entries):
                if target is None:
                    modules[kind] += self._module(kind, index, entry, context)
                    continue
                with _for_target(f"{config.path}: [[{kind}s]] {entry.uri!r}", context.platform, target):
                    modules[kind] += self._module(kind, index, entry, context)
        return Planned(target, context, image, shown, found, modules["buildpack"], modules["extension"])

    def _module(self, kind: str, index: int, entry: ModuleEntry, context: Context) -> Pairs:
        shared = self._shared.get((kind, index))
        if shared is not None:
            return shared
        try:
            pairs = self.read_modules(entry, kind, context)
        except PlatformNotFoundError as exc:
            found = parse_platform(exc.available[0]) if exc.single else None
            if found is None or found.os != context.platform.os:
                raise
            # pack: a buildpackage that is one image serves every architecture of its OS (its
            # buildpacks' [[targets]], when its label has them, decide: EnsureTargetSupport).
            self.note(
                f"{self.config.path}: {kind} package {entry.uri} is {found} only; "
                f"used for {context.platform} too, as pack does"
            )
            pairs = self.read_modules(entry, kind, context.with_platform(found))
        if all(module.blob is not None for _, module in pairs):  # not a buildpackage image's
            self._shared[(kind, index)] = pairs
        return pairs

    def _run_images(self, context: Context, target: Target) -> None:
        """Each run image (and mirror) must have the target's platform, and ``[stack] id``'s
        stack when set (pack checks them per target too). One that cannot be read (not found,
        unreachable, offline) is a warning, as pack's ``run image ... is not accessible``."""
        for run in self.config.run_images:
            for name in (run.image, *run.mirrors):
                if name in self._inaccessible:  # unreachable for one platform: for all (once)
                    continue
                what = f"{self.config.path}: run image {name}"
                try:
                    with _for_target(what, context.platform, target):
                        image = context.resolve_image(name, image_name=True)
                except BuilderError:
                    raise
                except CnbkitError as exc:
                    self._inaccessible.add(name)
                    self.note(f"run image '{name}' is not accessible for {context.platform}: {exc}")
                    continue
                found = image.config.label(STACK_ID, "") or ""
                if self.config.stack.id and found != self.config.stack.id:
                    raise BuilderError(
                        f"{self.config.where('stack.id')}: stack '{self.config.stack.id}' from builder "
                        f"config is incompatible with stack '{found}' from run image {name} "
                        f"({context.platform})"
                    )

    def _build_image(self, context: Context) -> Image:
        # The plugins' schemes first; a bare name no plugin claims is pack's docker image name.
        with about(f"{self.config.path}: build image {self.config.build_image}"):
            return context.resolve_image(self.config.build_image, image_name=True)

    def _lifecycle(self, context: Context) -> tuple[str, Lifecycle]:
        config = self.config
        uri, version = config.lifecycle.uri or None, config.lifecycle.version or None
        if uri is None and version is None:
            version = DEFAULT_LIFECYCLE_VERSION
        key = "lifecycle.uri" if uri else "lifecycle.version"
        with about(_where(config, key) if config.line(key) else f"{config.path}: [lifecycle]"):
            if version is not None:
                from .lifecycle.versions import parse_version

                try:
                    parse_version(version)
                except CnbkitError as exc:  # a bad value inside a file is a failure, not a usage error
                    raise BuilderError(f"'lifecycle.version' must be a valid semver: {exc}") from None
            return resolve_with(context, uri, version)


def _fields(planned: Planned) -> tuple[Context, Image, str, Lifecycle, Pairs, Pairs]:
    return (
        planned.context,
        planned.image,
        planned.shown,
        planned.lifecycle,
        planned.buildpacks,
        planned.extensions,
    )


@contextmanager
def _for_target(what: str, platform: Platform, target: Target) -> Iterator[None]:
    """An input without ``platform`` is refused naming the target and what the input has."""
    try:
        yield
    except PlatformNotFoundError as exc:
        shown = target_text(target)
        if exc.single:
            raise BuilderError(
                f"{what}: it is {exc.available[0]} only, not {platform} (target {shown}): give an "
                "image index with every target's platform, or drop the target"
            ) from None
        has = listing(exc.available) if exc.available else "no image with a platform"
        raise BuilderError(
            f"{what}: it has no {platform} (target {shown}); it has {has}: add that platform "
            "to it, or drop the target"
        ) from None
