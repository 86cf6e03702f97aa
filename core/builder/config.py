"""Reading builder.toml (pack's schema) into a :class:`BuilderConfig`.

The rules are pack's (``builder/config_reader.go``): strict keys, the RFC-0096 merge of
``[stack]`` into ``[build]``/``[[run.images]]``, ``[lifecycle]`` with ``uri`` or ``version``
(never both), relative URIs against the file's directory. Where cnbkit differs: an image name
without a scheme (``cnbs/sample-base-build:jammy``) becomes ``docker://NAME`` for the image
plugins, and every message names the file and, where it can be found, the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BuilderError, TomlError
from ..tomlfile import MAX_TOML_SIZE, loads
from .keylines import KeyLines
from .keylines import Path as KeyPath
from .schema import check_document, fold_key

__all__ = [
    "BuildEnv",
    "BuilderConfig",
    "LifecycleConfig",
    "ModuleEntry",
    "ModuleRef",
    "RunImage",
    "StackConfig",
    "Target",
    "read_config",
]


@dataclass(frozen=True)
class ModuleRef:
    """One ``[[order.group]]`` (or system) entry: ``id``, ``version`` (may be ``""``), ``optional``.

    Attributes:
        extra: the other ModuleInfo keys as written (pack copies them into the order label).
    """

    id: str
    version: str = ""
    optional: bool = False
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        """pack's JSON of a ModuleRef: ``id``, ``version`` and ``optional`` when set, then the rest."""
        result: dict[str, Any] = {"id": self.id}
        if self.version:
            result["version"] = self.version
        if self.optional:
            result["optional"] = True
        result.update({k: v for k, v in self.extra.items() if v not in ("", [], False)})
        return result


@dataclass(frozen=True)
class ModuleEntry:
    """One ``[[buildpacks]]`` or ``[[extensions]]`` entry.

    Attributes:
        uri: where the module is (``uri``, else the deprecated ``image``), as written.
        id: the id it must have, or ``""``.
        version: the version it must have, or ``""``.
        line: the line of its ``uri`` in builder.toml, for messages.
        key: the key ``uri`` came from: ``"uri"``, or ``"image"`` (deprecated: a package image).
    """

    uri: str
    id: str = ""
    version: str = ""
    line: int | None = None
    key: str = "uri"


@dataclass(frozen=True)
class RunImage:
    """A run image and its mirrors (``[[run.images]]``)."""

    image: str
    mirrors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """pack's ``{"image", "mirrors"}`` (``mirrors`` ``null`` when none)."""
        return {"image": self.image, "mirrors": list(self.mirrors) or None}


@dataclass(frozen=True)
class StackConfig:
    """``[stack]`` (deprecated by RFC-0096, still read)."""

    id: str = ""
    build_image: str = ""
    run_image: str = ""
    run_image_mirrors: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildEnv:
    """One ``[[build.env]]`` entry."""

    name: str
    value: str = ""
    suffix: str = ""
    delim: str = ""


@dataclass(frozen=True)
class Target:
    """One ``[[targets]]`` entry."""

    os: str = ""
    arch: str = ""
    variant: str = ""
    distros: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LifecycleConfig:
    """``[lifecycle]``: at most one of ``uri`` and ``version``."""

    uri: str = ""
    version: str = ""


@dataclass(frozen=True)
class BuilderConfig:
    """A read builder.toml.

    Attributes:
        path: the file, absolute.
        base_dir: its directory: relative URIs resolve against it.
        build_image: ``[build] image`` (or ``[stack] build-image``) as written.
        run_images: ``[[run.images]]`` (or ``[stack] run-image``).
        order: ``[[order]]``, each group a list of refs.
        system_pre / system_post: ``[system]`` buildpacks.
    """

    path: Path
    base_dir: Path
    description: str = ""
    lifecycle: LifecycleConfig = LifecycleConfig()
    buildpacks: tuple[ModuleEntry, ...] = ()
    extensions: tuple[ModuleEntry, ...] = ()
    order: tuple[tuple[ModuleRef, ...], ...] = ()
    order_extensions: tuple[tuple[ModuleRef, ...], ...] = ()
    stack: StackConfig = StackConfig()
    build_image: str = ""
    build_env: tuple[BuildEnv, ...] = ()
    run_images: tuple[RunImage, ...] = ()
    targets: tuple[Target, ...] = ()
    system_pre: tuple[ModuleRef, ...] = ()
    system_post: tuple[ModuleRef, ...] = ()
    text: str = field(default="", repr=False)
    lines: KeyLines = field(default_factory=lambda: KeyLines(""), repr=False, compare=False)

    def line(self, key_path: str) -> int | None:
        """The line where ``key_path`` (dotted, array positions left out) is first written, or
        ``None``."""
        return self.lines.first(key_path)

    def where(self, key_path: str, index: int | None = None) -> str:
        """``FILE: KEY (line N)`` for messages; with ``index``, the line of that entry of the
        ``KEY`` array (a ``[[KEY]]`` header or an inline entry)."""
        line = self.lines.at((*key_path.split("."), index)) if index is not None else None
        return self._shown(key_path, line or self.line(key_path))

    def where_key(self, path: KeyPath) -> str:
        """``FILE: KEY (line N)`` for the key at ``path`` (with array positions:
        ``("run", "images", 1, "image")``)."""
        shown = ".".join(p for p in path if isinstance(p, str))
        return self._shown(shown, self.lines.at(path) or self.line(shown))

    def _shown(self, key_path: str, line: int | None) -> str:
        return f"{self.path}: {key_path}" + (f" (line {line})" if line else "")


_REF_KEYS = ("id", "version", "optional")


def _ref(item: dict[str, Any]) -> ModuleRef:
    return ModuleRef(
        id=item.get("id", ""),
        version=item.get("version", ""),
        optional=item.get("optional", False),
        extra={k: v for k, v in item.items() if k not in _REF_KEYS},
    )


def _order(items: list[dict[str, Any]]) -> tuple[tuple[ModuleRef, ...], ...]:
    return tuple(tuple(_ref(ref) for ref in entry.get("group", [])) for entry in items)


def _modules(items: list[dict[str, Any]], kind: str, lines: KeyLines) -> tuple[ModuleEntry, ...]:
    result = []
    for index, item in enumerate(items):
        uri = item.get("uri", "") or item.get("image", "")
        key = "uri" if item.get("uri") else "image"
        line = (lines.at((kind, index, key)) or lines.at((kind, index))) if uri else None
        ident, version = item.get("id", ""), item.get("version", "")
        result.append(ModuleEntry(uri=uri, id=ident, version=version, line=line, key=key))
    return tuple(result)


def _merge_images(doc: dict[str, Any], stack: StackConfig) -> tuple[str, tuple[RunImage, ...]]:
    # pack's mergeStackWithImages: [build]/[run] win, [stack] fills in what they lack.
    build = doc.get("build", {}).get("image", "") or stack.build_image
    runs = tuple(
        RunImage(r.get("image", ""), tuple(r.get("mirrors", [])))
        for r in doc.get("run", {}).get("images", [])
    )
    if not runs and stack.run_image:
        runs = (RunImage(stack.run_image, stack.run_image_mirrors),)
    return build, runs


def parse_config(text: str, path: Path) -> BuilderConfig:
    """Parse builder.toml text (already read from ``path``).

    Raises:
        TomlError: invalid TOML (with its line), hostile TOML, unknown keys, wrong types.
        BuilderError: ``[lifecycle]`` with both ``uri`` and ``version``; no build image; a
            run image without a name.
    """
    doc = loads(text.encode("utf-8", "surrogateescape"), str(path))
    lines = KeyLines(text, fold=fold_key)
    doc = check_document(doc, lines, str(path))
    lifecycle = LifecycleConfig(**{k: v for k, v in doc.get("lifecycle", {}).items()})
    if lifecycle.uri and lifecycle.version:
        raise BuilderError(
            f"{path}: [lifecycle]{_line(lines, 'lifecycle.version')}: "
            "'lifecycle' can only declare 'version' or 'uri', not both"
        )
    raw_stack = doc.get("stack", {})
    stack = StackConfig(
        id=raw_stack.get("id", ""),
        build_image=raw_stack.get("build-image", ""),
        run_image=raw_stack.get("run-image", ""),
        run_image_mirrors=tuple(raw_stack.get("run-image-mirrors", [])),
    )
    build_image, run_images = _merge_images(doc, stack)
    if not build_image:
        raise BuilderError(f"{path}: invalid builder config: build.image is required ([build] image = ...)")
    # pack: with no run image, a [stack] id alone is not enough (ValidateConfig's third rule).
    if not run_images:
        raise BuilderError(f"{path}: invalid builder config: run.images are required ([[run.images]])")
    if any(not run.image for run in run_images):
        raise BuilderError(f"{path}: invalid builder config: run.images.image is required")
    system = doc.get("system", {})
    return BuilderConfig(
        path=path,
        base_dir=path.parent,
        description=doc.get("description", ""),
        lifecycle=lifecycle,
        buildpacks=_modules(doc.get("buildpacks", []), "buildpacks", lines),
        extensions=_modules(doc.get("extensions", []), "extensions", lines),
        order=_order(doc.get("order", [])),
        order_extensions=_order(doc.get("order-extensions", [])),
        stack=stack,
        build_image=build_image,
        build_env=tuple(
            BuildEnv(e.get("name", ""), e.get("value", ""), e.get("suffix", ""), e.get("delim", ""))
            for e in doc.get("build", {}).get("env", [])
        ),
        run_images=run_images,
        targets=tuple(
            Target(
                t.get("os", ""),
                t.get("arch", ""),
                t.get("variant", ""),
                tuple((d.get("name", ""), d.get("version", "")) for d in t.get("distros", [])),
            )
            for t in doc.get("targets", [])
        ),
        system_pre=tuple(_ref(r) for r in system.get("pre", {}).get("buildpacks", [])),
        system_post=tuple(_ref(r) for r in system.get("post", {}).get("buildpacks", [])),
        text=text,
        lines=lines,
    )


def _line(lines: KeyLines, key_path: str) -> str:
    line = lines.first(key_path)
    return f" (line {line})" if line else ""


def read_config(path: str | os.PathLike[str]) -> BuilderConfig:
    """Read and check builder.toml at ``path``.

    Raises:
        BuilderError: the file cannot be read, or what :func:`parse_config` raises.
        TomlError: see :func:`parse_config`.
    """
    target = Path(path).absolute()
    try:
        with open(target, "rb") as file:
            data = file.read(MAX_TOML_SIZE + 1)
    except OSError as exc:
        raise BuilderError(f"opening config file: {target}: {exc.strerror or exc}") from None
    if len(data) > MAX_TOML_SIZE:
        raise TomlError(f"{target}: too large for a builder.toml (over {MAX_TOML_SIZE} bytes)")
    try:
        # A byte-order mark (as Windows editors save UTF-8) is not part of the text: pack's
        # decoder skips it too.
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TomlError(f"{target}: not UTF-8 text (byte {exc.start})") from None
    return parse_config(text, target)
