"""Buildpacks and extensions from a directory or ``.tgz``: their descriptor, and their layer.

A module's archive is read twice, as a stream: once to find and parse ``buildpack.toml`` (or
``extension.toml``) and learn the artifact's digest, once to write the layer. Buildpacks are
small, and two passes keep memory flat and the reader simple.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..archive.streams import close_stream
from ..archive.tarreader import TarEntry, iter_tar
from ..archive.tarwrite import END_MARKER, padding, tar_header
from ..blob import Blob
from ..errors import BuilderError, TomlError
from ..lifecycle.descriptor import api_version
from ..oci.image import Layer
from ..tomlfile import MAX_TOML_SIZE, loads
from .contents import ModuleTree

__all__ = ["Module", "is_module_dir", "parse_api", "read_module"]

_EXECUTABLES = ("bin/build", "bin/detect", "bin/generate")
_BUILD_FILES = ("bin/build", "bin/build.bat", "bin/build.exe")  # what pack infers the OS from
_INFO_KEYS = ("name", "homepage", "description", "keywords", "licenses")


def parse_api(value: Any, where: str) -> str:
    """A Buildpack API as ``X.Y`` (``"0.10"``, ``"v0.2"``, ``"1"`` -> ``1.0``), by the lifecycle
    descriptor's rule (ASCII digits only).

    Raises:
        BuilderError: not such a string.
    """
    version = api_version(value)
    if version is None:
        raise BuilderError(f'{where}: invalid api {str(value)[:40]!r}: expected a string like "0.10"')
    return version


def is_module_dir(ident: str, version: str) -> bool:
    """Whether ``id`` and ``version`` make one directory ``<id with / as _>/<version>``: a
    version with a ``/``, ``.`` or ``..``, or an id that is ``.``, absolute or climbs, would
    put the module somewhere else."""
    if not ident or not version or "/" in version or version in (".", ".."):
        return False
    return ident != "." and not ident.startswith("/") and ".." not in ident.split("/")


@dataclass(frozen=True)
class Module:
    """A buildpack or extension read from its archive.

    Attributes:
        kind: ``buildpack`` or ``extension``.
        id / version / api: from the descriptor (``api`` as ``X.Y``; ``0.1`` when absent, as pack).
        info: the ``[buildpack]`` table (name, homepage, ...) for the metadata labels.
        stacks / targets / order: the descriptor's ``[[stacks]]``, ``[[targets]]``, ``[[order]]``.
        blob: the archive (``None`` for a module of a buildpackage image).
        layer: the buildpackage image's layer holding the module, referenced as stored, or
            ``None`` for a module read from an archive (its layer is made).
        origin: how messages name where a module of an image came from.
        build_files: which of ``bin/build``, ``bin/build.bat``, ``bin/build.exe`` the archive
            holds (pack infers the OS of a buildpack without ``[[targets]]`` from them).
    """

    kind: str
    id: str
    version: str
    api: str
    blob: Blob | None
    info: dict[str, Any] = field(default_factory=dict, hash=False)
    stacks: tuple[dict[str, Any], ...] = ()
    targets: tuple[dict[str, Any], ...] = ()
    order: tuple[dict[str, Any], ...] = ()
    layer: Layer | None = field(default=None, hash=False, compare=False)
    origin: str = ""
    build_files: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """Where the module came from, for messages."""
        return self.blob.source if self.blob is not None else self.origin

    @property
    def ref(self) -> str:
        """``id@version``, as pack names modules in messages and sorts layers."""
        return f"{self.id}@{self.version}"

    @property
    def root(self) -> str:
        """Where the module goes: ``cnb/buildpacks/<id with / as _>/<version>``."""
        folder = "buildpacks" if self.kind == "buildpack" else "extensions"
        return f"cnb/{folder}/{self.id.replace('/', '_')}/{self.version}"

    def layer_chunks(self) -> Iterator[bytes]:
        """The module's layer as an uncompressed tar: pack's normalisation (root owner, fixed
        mtime, 0755 for directories and anything executable, 0644 for the rest)."""
        yield from self.entry_chunks()
        yield END_MARKER

    def entry_chunks(self) -> Iterator[bytes]:
        """The layer's entries without the end marker (a flattened layer joins several)."""
        if self.blob is None:
            raise BuilderError(
                f"{self.ref} from {self.origin}: a buildpackage's layer is referenced, not made"
            )
        escaped = self.root.rsplit("/", 1)[0]
        yield tar_header(escaped, "dir", 0o755)
        yield tar_header(self.root, "dir", 0o755)
        stream = self.blob.open()
        try:
            for entry in iter_tar(stream, self.blob.source):
                yield from self._entry(entry)
        finally:
            close_stream(stream)

    def _entry(self, entry: TarEntry) -> Iterator[bytes]:
        name = f"{self.root}/{entry.name}"
        executable = entry.mode & 0o111 or entry.name in _EXECUTABLES
        mode = 0o755 if entry.kind == "dir" or executable else 0o644
        linkname = entry.linkname
        if entry.kind == "hardlink":
            linkname = f"{self.root}/{linkname}"
        yield tar_header(name, entry.kind, mode, entry.size, linkname)
        if entry.kind == "file":
            yield from entry.chunks()
            yield padding(entry.size)


def _table(doc: dict[str, Any], key: str, where: str) -> tuple[dict[str, Any], ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BuilderError(f"{where}: [[{key}]] must be an array of tables")
    return tuple(value)


def _parse(data: bytes, name: str, kind: str, blob: Blob) -> Module:
    where = f"{blob.source}: {name}"
    try:
        doc = loads(data, where)
    except TomlError as exc:
        raise BuilderError(str(exc)) from None
    table = doc.get(kind)
    if not isinstance(table, dict):
        raise BuilderError(f"{where}: no [{kind}] table")
    ident, version = table.get("id"), table.get("version")
    if not isinstance(ident, str) or not ident or not isinstance(version, str) or not version:
        raise BuilderError(f"{where}: [{kind}] needs a string id and version")
    if not is_module_dir(ident, version):
        raise BuilderError(f"{where}: [{kind}] id {ident!r} or version {version!r} cannot be a path")
    info = {k: v for k, v in table.items() if k in _INFO_KEYS}
    return Module(
        kind=kind,
        id=ident,
        version=version,
        api=parse_api(doc.get("api", "0.1"), f"{where}: api"),
        blob=blob,
        info=info,
        stacks=_table(doc, "stacks", where),
        targets=_table(doc, "targets", where),
        order=_table(doc, "order", where),
    )


def read_module(blob: Blob, kind: str = "buildpack") -> Module:
    """Read a buildpack (``kind="buildpack"``) or extension from its archive.

    Args:
        blob: a directory or archive whose root holds ``buildpack.toml`` (``extension.toml``).
        kind: ``buildpack`` or ``extension``.

    Raises:
        BuilderError: no descriptor at the root, or a malformed one.
        ArchiveError: a corrupt archive, an entry the safety rules refuse, or a tree that would
            write outside the module's directory (:mod:`.contents`).
    """
    wanted = f"{kind}.toml"
    found: tuple[bytes, str] | None = None
    build_files: set[str] = set()
    tree = ModuleTree(blob.source, kind)
    stream = blob.open()
    try:
        for entry in iter_tar(stream, blob.source):
            tree.add(entry.name, entry, entry.linkname)
            if entry.name in _BUILD_FILES and entry.kind != "dir":
                build_files.add(entry.name)
            if entry.name == wanted and entry.kind == "file" and found is None:
                if entry.size > MAX_TOML_SIZE:
                    raise BuilderError(f"{blob.source}: {wanted} is {entry.size} bytes; too large")
                found = (b"".join(entry.chunks()), entry.original)
    finally:
        close_stream(stream)
    if found is None:
        raise BuilderError(f"{blob.source}: no {wanted} at the root: not a {kind}")
    module = replace(_parse(found[0], found[1], kind, blob), build_files=tuple(sorted(build_files)))
    # The second pass (the layer) reads the same bytes: the Blob's digest is checked again.
    tree.check(module.root)
    return module
