"""The Python API of builder creation: :func:`create_builder`, the path ``cnbkit builder create``
takes. It resolves every input through the plugins, hands them to the pure assembler
(:mod:`cnbkit.builder`), and exports the result through the ``cnbkit_export`` plugins."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .api import new_context, resolve_with
from .blob import Blob
from .builder.assemble import Inputs, assemble
from .builder.buildpack import Module, read_module
from .builder.compress import LayerStore
from .builder.config import BuilderConfig, ModuleEntry, read_config
from .builder.flatten import parse_flatten
from .builder.image import BuilderImage
from .builder.keylines import Path as KeyPath
from .builder.package import read_package
from .errors import BuilderError, CnbkitError, UsageError
from .lifecycle.model import Lifecycle
from .locator import local_path, parse_locator
from .oci.image import Image
from .options import Options
from .plugin.context import Context

__all__ = ["DEFAULT_LIFECYCLE_VERSION", "BuilderResult", "create_builder"]

DEFAULT_LIFECYCLE_VERSION = "0.21.0"  # pack v0.40's default, used when [lifecycle] says nothing
_CREATED_BY = {"name": "cnbkit", "version": __version__}
# pack's words, exactly (pkg/buildpack/downloader.go), and its HasDockerLocator prefix.
_IMAGE_KEY_WARNING = """The 'image' key is deprecated. Use 'uri="docker://..."' instead."""
_DOCKER_PREFIX = "docker:/"
_REGISTRY_PREFIX = "urn:cnb:registry:"
# pack's registry locator: ``ns/name`` (a version after it is checked as semver).
_REGISTRY_ID = re.compile(r"^[a-z0-9\-.]+/[a-z0-9\-.]+$")


@dataclass
class BuilderResult:
    """What :func:`create_builder` made.

    Attributes:
        digest: the builder's manifest digest.
        target: the target as given.
        written: what the export plugin says it wrote.
        lifecycle: the lifecycle inside.
        image: the builder image (its ``records`` list each layer and its source).
        warnings: pack's warnings (deprecated APIs, an empty order).
    """

    digest: str
    target: str
    written: str
    lifecycle: Lifecycle
    image: BuilderImage
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: ``digest``, ``target``, ``written``, ``lifecycle``, ``layers``."""
        return {
            "digest": self.digest,
            "target": self.target,
            "written": self.written,
            "lifecycle": {"version": self.lifecycle.version, "apis": self.lifecycle.apis.to_json()},
            "layers": [record.to_json() for record in self.image.records],
        }


@contextmanager
def _about(prefix: str) -> Iterator[None]:
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


def _check_run_images(config: BuilderConfig) -> None:
    """Each run image and mirror must be an image reference (pack parses them before fetching
    anything); a bad one is a failure in the file, exit 1, not a usage error."""
    from .transport.registry import parse_reference

    from_stack = config.lines.at(("run", "images")) is None  # [stack] run-image, merged
    for index, run in enumerate(config.run_images):
        at: KeyPath = ("stack", "run-image") if from_stack else ("run", "images", index, "image")
        mirrors: KeyPath = (
            ("stack", "run-image-mirrors") if from_stack else ("run", "images", index, "mirrors")
        )
        named = [(at, run.image), *(((*mirrors, n), mirror) for n, mirror in enumerate(run.mirrors))]
        for path, name in named:
            try:
                parse_reference(name)
            except CnbkitError as exc:
                raise BuilderError(f"{config.where_key(path)}: {exc}") from None


def _build_image(config: BuilderConfig, context: Context) -> Image:
    # The plugins' schemes first; a bare name no plugin claims is pack's docker image name.
    with _about(f"{config.path}: build image {config.build_image}"):
        return context.resolve_image(config.build_image, image_name=True)


def _lifecycle(config: BuilderConfig, context: Context) -> tuple[str, Lifecycle]:
    uri, version = config.lifecycle.uri or None, config.lifecycle.version or None
    if uri is None and version is None:
        version = DEFAULT_LIFECYCLE_VERSION
    key = "lifecycle.uri" if uri else "lifecycle.version"
    with _about(_where(config, key) if config.line(key) else f"{config.path}: [lifecycle]"):
        if version is not None:
            from .lifecycle.versions import parse_version

            try:
                parse_version(version)
            except CnbkitError as exc:  # a bad value inside a file is a failure, not a usage error
                raise BuilderError(f"'lifecycle.version' must be a valid semver: {exc}") from None
        return resolve_with(context, uri, version)


def _naked(uri: str, base_dir: Path) -> str:
    """What a value without a scheme names, as pack's ``GetLocatorType`` reads a naked locator:
    an existing path (relative to builder.toml) stays one; else ``NS/NAME[@VERSION]`` is a
    buildpack registry id (``urn:cnb:registry:``), else an image reference a package image
    (``docker://``). A value with a scheme goes to the plugins as written (one no plugin claims
    that is an image name, ``localhost:5000/pkg:1`` or ``pkg:1``, is then a package image too:
    ``Context.find(image_name=True)``)."""
    from .lifecycle.versions import semver_key
    from .transport.registry.reference import is_reference

    if parse_locator(uri).scheme is not None or local_path(uri, base_dir).exists():
        return uri
    ident, at, version = uri.partition("@")
    if _REGISTRY_ID.match(ident) and (not at or semver_key(version) is not None):
        return f"{_REGISTRY_PREFIX}{uri}"
    return f"docker://{uri}" if is_reference(uri) else uri


def _locator(entry: ModuleEntry, base_dir: Path, note: Callable[[str], None]) -> str:
    """What the entry's URI is looked up as: a value without a scheme as pack reads it
    (:func:`_naked`), or the deprecated ``image`` key's package image (``uri = "docker://REF"``,
    with pack's warning); anything else goes to the plugins as written."""
    if entry.key == "image":
        note(_IMAGE_KEY_WARNING)
        return entry.uri if entry.uri.startswith(_DOCKER_PREFIX) else f"docker://{entry.uri}"
    return _naked(entry.uri, base_dir)


@contextmanager
def _as_package(entry: ModuleEntry, locator: str, base_dir: Path) -> Iterator[None]:
    """Say why a bare value was looked up as an image: a path that is missing reads so too."""
    if entry.key == "image" or locator == entry.uri:
        yield
        return
    what = "buildpack registry id" if locator.startswith(_REGISTRY_PREFIX) else "package image"
    with _about(f"read as the {what} {locator} (no path {local_path(entry.uri, base_dir)})"):
        yield


def _modules(
    entry: ModuleEntry, kind: str, config: BuilderConfig, context: Context, note: Callable[[str], None]
) -> list[tuple[ModuleEntry, Module]]:
    """The module a ``[[buildpacks]]`` entry names, or every module of a buildpackage image
    (the main one paired with the entry, the others with its URI only).

    A Blob a resolver claims is a module (a directory, a ``.tgz``); when none claims the URI,
    an image an image source supplies is a buildpackage (``docker://``, ``oci:``, an OCI
    layout directory): the plugins' answer decides, no scheme is sniffed here."""
    line = f" (line {entry.line})" if entry.line else ""
    where = f"{config.path}: [[{kind}s]] {entry.key} {entry.uri!r}{line}"
    with _about(where):
        if not entry.uri:
            raise BuilderError(f"no uri: give the {kind}'s directory, .tgz, URL or package image")
        locator = _locator(entry, config.base_dir, note)
        with _as_package(entry, locator, config.base_dir):
            found = context.find(locator, image_name=True).artifact
        if isinstance(found, Blob):
            return [(entry, read_module(found, kind))]
        main, *others = read_package(found, kind, context.cache)
        return [(entry, main), *((ModuleEntry(entry.uri, line=entry.line, key=entry.key), m) for m in others)]


def create_builder(
    config_path: str | os.PathLike[str],
    target: str,
    *,
    platform: str | None = None,
    pull_policy: str | None = None,
    labels: Mapping[str, str] | None = None,
    tags: Sequence[str] = (),
    flatten: Sequence[str] = (),
    warn: Callable[[str], None] | None = None,
    **options: Any,
) -> BuilderResult:
    """Create a builder image from builder.toml and write it to ``target``.

    Args:
        config_path: builder.toml; relative URIs in it resolve against its directory.
        target: where the builder goes, as an export plugin understands it
            (``oci:DIR[:TAG]`` built in; relative to the working directory).
        platform: ``OS/ARCH[/VARIANT]`` of the build image to pick (default: the host's).
        pull_policy: ``always``, ``if-not-present`` or ``never``.
        labels: the user's labels (pack's ``--label``), set before the builder's own.
        tags: more names for the builder at the target (pack's ``--tag``): references for
            ``docker://`` and ``docker-daemon:``, tags for ``oci:DIR``.
        flatten: pack's ``--flatten`` values (``"<id>@<version>,..."``): each group's modules
            share one layer.
        warn: receives pack's warnings; by default they go to stderr (``cnbkit: ...``).
        **options: the other :meth:`Options.build` keywords (``offline``, ``ca_cert``,
            ``timeout``, ``allow_http``, ``cache_dir``, ``lifecycle_mirror``, ``quiet``, ...).

    Returns:
        A :class:`BuilderResult`: the digest, where it went, and each layer's source.

    Raises:
        CnbkitError: any failure, with a one-line message naming the file, key and both sides
            of a mismatch. Nothing is written at ``target`` unless every input was fine.
    """
    groups = parse_flatten(flatten)  # a usage error before anything is read
    config = read_config(config_path)
    _check_run_images(config)
    opts = Options.build(platform=platform, base_dir=config.base_dir, pull_policy=pull_policy, **options)
    context = new_context(opts)
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        (warn or context.notice)(message)

    image = _build_image(config, context)
    # pack: the lifecycle (and every module) follows the build image's platform, not the host's.
    context = context.with_platform(image.platform)
    shown, lifecycle = _lifecycle(config, context)
    buildpacks = [
        pair for entry in config.buildpacks for pair in _modules(entry, "buildpack", config, context, note)
    ]
    extensions = [
        pair for entry in config.extensions for pair in _modules(entry, "extension", config, context, note)
    ]
    inputs = Inputs(config, lifecycle, shown, image, buildpacks, extensions, dict(labels or {}), groups)
    builder = assemble(
        inputs,
        LayerStore(context.cache, context.progress),
        created_by=_CREATED_BY,
        reference=target,
        warn=note,
    )
    written = context.export(target, builder, tuple(tags))
    return BuilderResult(builder.digest, target, written, lifecycle, builder, warnings)
