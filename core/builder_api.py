"""The Python API of builder creation: :func:`create_builder`, the path ``cnbkit builder create``
takes. It resolves every input through the plugins, hands them to the pure assembler
(:mod:`cnbkit.builder`), and exports the result through the ``cnbkit_export`` plugins."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .api import new_context
from .blob import Blob
from .builder.assemble import Inputs, assemble, check
from .builder.buildpack import Module, read_module
from .builder.compress import LayerStore
from .builder.config import BuilderConfig, ModuleEntry, read_config
from .builder.flatten import parse_flatten
from .builder.image import BuilderImage
from .builder.keylines import Path as KeyPath
from .builder.package import read_package
from .builder_inputs import DEFAULT_LIFECYCLE_VERSION, Planned, Planner, about, choose_targets
from .errors import BuilderError, CnbkitError
from .lifecycle.model import Lifecycle
from .locator import local_path, parse_locator
from .oci.image_index import ImageIndex
from .options import Options
from .plugin.context import Context

__all__ = ["DEFAULT_LIFECYCLE_VERSION", "BuilderResult", "create_builder"]

_CREATED_BY = {"name": "cnbkit", "version": __version__}
# pack's words, exactly (pkg/buildpack/downloader.go), and its HasDockerLocator prefix.
_IMAGE_KEY_WARNING = """The 'image' key is deprecated. Use 'uri="docker://..."' instead."""
_DOCKER_PREFIX = "docker:/"
_REGISTRY_PREFIX = "urn:cnb:registry:"
# pack's registry locator: ``ns/name`` (a version after it is checked as semver).
_REGISTRY_ID = re.compile(r"^[a-z0-9\-.]+/[a-z0-9\-.]+\Z")


@dataclass
class BuilderResult:
    """What :func:`create_builder` made.

    Attributes:
        digest: the image index's digest when there are several targets, else the builder's
            manifest digest.
        target: the target as given.
        written: what the export plugin says it wrote.
        lifecycle: the lifecycle inside (the first target's).
        image: the builder image (the first target's; its ``records`` list each layer and
            its source).
        warnings: pack's warnings (deprecated APIs, an empty order), each once.
        images: every builder image, one per target, in the targets' order.
    """

    digest: str
    target: str
    written: str
    lifecycle: Lifecycle
    image: BuilderImage
    warnings: list[str] = field(default_factory=list)
    images: list[BuilderImage] = field(default_factory=list)

    @property
    def manifests(self) -> list[dict[str, Any]]:
        """One ``{"platform", "digest", "layers"}`` per target (one when there are none)."""
        return [
            {
                "platform": str(image.platform),
                "digest": image.digest,
                "layers": [record.to_json() for record in image.records],
            }
            for image in self.images or [self.image]
        ]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: ``digest``, ``target``, ``written``, ``lifecycle``, ``layers``
        (the first target's), ``manifests``."""
        return {
            "digest": self.digest,
            "target": self.target,
            "written": self.written,
            "lifecycle": {"version": self.lifecycle.version, "apis": self.lifecycle.apis.to_json()},
            "layers": [record.to_json() for record in self.image.records],
            "manifests": self.manifests,
        }


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
    with about(f"read as the {what} {locator} (no path {local_path(entry.uri, base_dir)})"):
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
    with about(where):
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
    targets: Sequence[str] | None = None,
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
        platform: ``OS/ARCH[/VARIANT]``: one builder for that platform (default: builder.toml's
            ``[[targets]]``, else the build image's own platform, else the host's from an index).
        targets: pack's ``--target`` values (``"linux/arm64"``,
            ``"linux/amd64:ubuntu@22.04"``): one builder each, replacing ``[[targets]]``;
            several are joined in an image index.
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
        A :class:`BuilderResult`: the digest, where it went, each target's manifest and each
        layer's source.

    Raises:
        CnbkitError: any failure, with a one-line message naming the file, key and both sides
            of a mismatch. Nothing is written at ``target`` unless every input was fine.
    """
    groups = parse_flatten(flatten)  # a usage error before anything is read
    config = read_config(config_path)
    chosen = choose_targets(config, targets, platform)
    _check_run_images(config)
    opts = Options.build(platform=platform, base_dir=config.base_dir, pull_policy=pull_policy, **options)
    context = new_context(opts)
    warnings: list[str] = []

    def note(message: str) -> None:
        if message not in warnings:  # once, however many targets repeat it
            warnings.append(message)
            (warn or context.notice)(message)

    def read(entry: ModuleEntry, kind: str, for_platform: Context) -> list[tuple[ModuleEntry, Module]]:
        return _modules(entry, kind, config, for_platform, note)

    # pack: the lifecycle (and every module) follows the build image's platform, not the host's.
    plans = Planner(config, context, read, note).plan(chosen, platform_given=platform is not None)
    _one_archive(plans, note)
    store = LayerStore(context.cache, context.progress)
    every = [
        Inputs(
            config,
            planned.lifecycle,
            planned.shown,
            planned.image,
            planned.buildpacks,
            planned.extensions,
            dict(labels or {}),
            groups,
        )
        for planned in plans
    ]
    for inputs in every[1:]:  # every target fits before a layer of the first is made
        check(inputs, note)
    images = []
    for number, inputs in enumerate(every, 1):
        if len(plans) > 1 and opts.progress and sys.stderr.isatty():  # as the progress bars
            shown = inputs.build_image.platform
            context.notice(f"building the builder for {shown} ({number} of {len(plans)})")
        images.append(assemble(inputs, store, created_by=_CREATED_BY, reference=target, warn=note))
    written, digest = _export(context, target, images, tuple(tags))
    return BuilderResult(digest, target, written, plans[0].lifecycle, images[0], warnings, images)


def _one_archive(plans: Sequence[Planned], note: Callable[[str], None]) -> None:
    """Warn when one lifecycle archive serves targets of several architectures: a lifecycle
    file or URL holds one architecture's binaries (an image or a ``version`` gives each its own)."""
    archives = {planned.lifecycle.blob.digest for planned in plans}
    machines = sorted({f"{p.platform.os}/{p.platform.architecture}" for p in plans})
    if len(machines) > 1 and len(archives) == 1 and plans[0].lifecycle.blob.image is None:
        note(
            f"lifecycle {plans[0].shown} is one archive for {', '.join(machines)}: its binaries run "
            "on one of them at most; use [lifecycle] version or a multi-platform lifecycle image"
        )


def _export(
    context: Context, target: str, images: Sequence[BuilderImage], tags: tuple[str, ...]
) -> tuple[str, str]:
    """Write one builder, or several joined in an image index; what was written and its digest."""
    if len(images) == 1:  # one target: a single manifest, as pack makes
        return context.export(target, images[0], tags), images[0].digest
    index = ImageIndex(target, images)
    return context.export(target, images[0], tags, index=index), index.digest
