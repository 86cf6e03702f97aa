"""The lifecycle validator: one pass over any Blob, a :class:`Lifecycle` and its layer.

Both archive shapes are accepted (DESIGN.md section 5): the release tarball
(``lifecycle.toml`` at the root, the binaries in one top-level directory of any name) and the
image shape (``cnb/lifecycle.toml`` and ``cnb/lifecycle/``, with or without a leading ``/``).

The archive is read once, as a stream: entries are checked as they pass, the data of those
that may belong to the lifecycle goes to a spool file, and once the stream has been read to
its end (so the artifact's digest is known and verified) the normalised layer is written
from the spool: ``cnb/``, ``cnb/lifecycle.toml``, ``cnb/lifecycle/...``, sorted, root-owned,
mtime 1980-01-01T00:00:01Z. Nothing outside the lifecycle can reach that layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .blob import Blob
from .cache import Cache
from .descriptor import APISet, Descriptor, parse_descriptor
from .errors import ArchiveError, LifecycleError
from .platform import Platform
from .streams import CHUNK, HashingReader, Readable, close_stream
from .tarsafe import TarEntry, iter_tar, link_target
from .tarwrite import TarWriter
from .tomlfile import MAX_TOML_SIZE

__all__ = ["OPTIONAL_PHASES", "PHASES", "Lifecycle", "LifecycleAPIs", "validate_lifecycle"]

PHASES = ("analyzer", "builder", "creator", "detector", "exporter", "launcher", "restorer")
OPTIONAL_PHASES = ("extender", "rebaser")
LAYER_DIR = "cnb/lifecycle"
_DESCRIPTORS = ("lifecycle.toml", "cnb/lifecycle.toml")
_MAX_LINK_HOPS = 16
_FORMAT = 1  # bump when the cached metadata or layer format changes


@dataclass(frozen=True)
class LifecycleAPIs:
    """The Buildpack and Platform API versions a lifecycle supports."""

    buildpack: APISet
    platform: APISet

    def to_json(self) -> dict[str, dict[str, list[str]]]:
        """``{"buildpack": {"supported", "deprecated"}, "platform": {...}}``."""
        return {"buildpack": self.buildpack.to_json(), "platform": self.platform.to_json()}


@dataclass(frozen=True)
class Lifecycle:
    """A validated lifecycle.

    Attributes:
        version: the descriptor's ``[lifecycle] version``.
        apis: the Buildpack and Platform APIs, supported and deprecated.
        os: the target OS (``linux`` or ``windows``).
        arch: the target architecture (``amd64``, ``arm64``, ...).
        variant: the architecture variant, or ``""``.
        binaries: the phase file names found, sorted (``analyzer`` or ``analyzer.exe``).
        descriptor: the parsed ``lifecycle.toml``.
        blob: the artifact it came from; ``blob.digest`` is its sha256.
        layer_digest: ``sha256:`` of the normalised layer (its diffID in an image).
        layer_size: the layer's byte count.
    """

    version: str
    apis: LifecycleAPIs
    os: str
    arch: str
    variant: str
    binaries: tuple[str, ...]
    descriptor: Descriptor
    blob: Blob
    layer_digest: str
    layer_size: int
    _layer_path: Path = field(repr=False)

    @property
    def platform(self) -> Platform:
        """The target platform as a :class:`~cnbkit.Platform`."""
        return Platform(self.os, self.arch, self.variant)

    def layer(self) -> Readable:
        """Open the normalised builder layer (an uncompressed tar).

        The stream is verified against :attr:`layer_digest` as it is read; a cache file that
        changed on disk fails at the end of the stream instead of being served.
        """
        return HashingReader(
            open(self._layer_path, "rb"),  # noqa: SIM115 - closed by the reader's close()
            expected=self.layer_digest,
            source=f"cached layer of lifecycle {self.version}",
        )

    def save_layer(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`layer` to ``path`` atomically: a temp file beside it, then a rename.

        Nothing is left at ``path`` (nor a temp file beside it) if anything fails.
        """
        target = Path(path).absolute()
        tmp = target.parent / f".{target.name}.{os.getpid()}.part"
        try:
            reader = self.layer()
            try:
                with open(tmp, "wb") as out:
                    while chunk := reader.read(CHUNK):
                        out.write(chunk)
            finally:
                close_stream(reader)
            os.replace(tmp, target)
        except OSError as exc:
            raise LifecycleError(f"cannot write {target}: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return target

    def to_json(self, uri: str) -> dict[str, Any]:
        """The ``cnbkit resolve --json`` object of DESIGN.md section 7 (``uri`` redacted)."""
        return {
            "uri": uri,
            "resolver": self.blob.resolver,
            "version": self.version,
            "os": self.os,
            "arch": self.arch,
            "apis": self.apis.to_json(),
            "binaries": list(self.binaries),
            "digest": self.blob.digest,
            "size": self.blob.size,
        }


@dataclass
class _Item:
    kind: str
    mode: int
    original: str
    size: int = 0
    linkname: str = ""
    offset: int = -1  # where the data starts in the spool


@dataclass
class _Scan:
    items: dict[str, _Item] = field(default_factory=dict)
    descriptors: dict[str, tuple[bytes, int, str]] = field(default_factory=dict)


def _spool_entries(stream: Readable, source: str, spool: BinaryIO) -> _Scan:
    scan = _Scan()
    for entry in iter_tar(stream, source):
        if entry.name in _DESCRIPTORS:
            scan.descriptors[entry.name] = (_read_descriptor(entry), entry.mode, entry.original)
            continue
        if "/" not in entry.name and entry.kind != "dir":
            continue  # a root-level file that is no descriptor: never part of a lifecycle
        if "cnb/lifecycle.toml" in scan.descriptors and not _under(entry.name, LAYER_DIR):
            continue  # image shape already known: only cnb/lifecycle/ matters
        item = _Item(entry.kind, entry.mode, entry.original, entry.size, entry.linkname)
        if entry.kind == "file":
            item.offset = spool.tell()
            for chunk in entry.chunks():
                spool.write(chunk)
        scan.items[entry.name] = item
    return scan


def _read_descriptor(entry: TarEntry) -> bytes:
    where = f"{entry.source}: {entry.original!r}"
    if entry.kind != "file":
        raise LifecycleError(f"{where} is a {entry.kind}; the descriptor must be a regular file")
    if entry.size > MAX_TOML_SIZE:
        raise LifecycleError(f"{where} is {entry.size} bytes; a descriptor is a small TOML file")
    return b"".join(entry.chunks())


def _under(name: str, directory: str) -> bool:
    return name == directory or name.startswith(directory + "/")


def _release_dir(scan: _Scan, source: str, phase_names: tuple[str, ...]) -> str:
    tops = sorted({name.split("/", 1)[0] for name in scan.items})
    if len(tops) == 1:
        return tops[0]
    with_phases = [top for top in tops if any(f"{top}/{p}" in scan.items for p in phase_names)]
    if len(with_phases) == 1:
        return with_phases[0]
    if not tops:
        raise LifecycleError(
            f"{source}: has lifecycle.toml but no directory of phase binaries "
            "(expected lifecycle/analyzer, lifecycle/builder, ...)"
        )
    if not with_phases and "lifecycle" in tops:
        return "lifecycle"
    listed = ", ".join(f"{t}/" for t in (with_phases or tops))
    raise LifecycleError(
        f"{source}: cannot tell which top-level directory holds the lifecycle ({listed}); "
        "a release archive has lifecycle.toml and one directory of binaries"
    )


def _shape(scan: _Scan, source: str, phase_names: tuple[str, ...]) -> tuple[str, str]:
    """Return (descriptor name, lifecycle directory) for the archive's shape."""
    image_dir_present = any(_under(name, LAYER_DIR) for name in scan.items)
    if "cnb/lifecycle.toml" in scan.descriptors and (
        image_dir_present or "lifecycle.toml" not in scan.descriptors
    ):
        return "cnb/lifecycle.toml", LAYER_DIR
    if "lifecycle.toml" in scan.descriptors:
        scan.items = {n: i for n, i in scan.items.items() if not _under(n, LAYER_DIR)}
        return "lifecycle.toml", _release_dir(scan, source, phase_names)
    raise LifecycleError(
        f"{source}: no lifecycle.toml at the archive root (nor cnb/lifecycle.toml): "
        "not a lifecycle archive"
    )


def _installed(scan: _Scan, directory: str) -> dict[str, _Item]:
    """The lifecycle directory's entries, renamed to where they land: ``cnb/lifecycle/...``."""
    prefix = directory + "/"
    placed = {LAYER_DIR: scan.items.get(directory, _Item("dir", 0o755, directory))}
    for name, item in scan.items.items():
        if name.startswith(prefix):
            placed[f"{LAYER_DIR}/{name[len(prefix):]}"] = item
    return placed


def _check_links(placed: dict[str, _Item], directory: str, source: str) -> None:
    symlinks = {name for name, item in placed.items() if item.kind == "symlink"}
    prefix = directory + "/"
    for name, item in placed.items():
        parent = name.rpartition("/")[0]
        while parent and parent != LAYER_DIR:
            if parent in symlinks:
                raise ArchiveError(
                    f"{source}: entry {item.original!r} lies under the symlink "
                    f"{placed[parent].original!r}; refusing the archive"
                )
            parent = parent.rpartition("/")[0]
        if item.kind == "symlink":
            target = link_target(name, item.linkname)
            if not target.startswith(LAYER_DIR + "/"):
                raise ArchiveError(
                    f"{source}: symlink {item.original!r} -> {item.linkname!r} leaves the "
                    "lifecycle directory; refusing the archive"
                )
        elif item.kind == "hardlink":
            if not item.linkname.startswith(prefix):
                raise ArchiveError(
                    f"{source}: hardlink {item.original!r} -> {item.linkname!r} leaves the "
                    "lifecycle directory; refusing the archive"
                )
            target = f"{LAYER_DIR}/{item.linkname[len(prefix):]}"
            if placed.get(target, _Item("", 0, "")).kind != "file":
                raise ArchiveError(
                    f"{source}: hardlink {item.original!r} -> {item.linkname!r} names no "
                    "earlier regular file; refusing the archive"
                )
            item.linkname = target


def _resolves_to_file(placed: dict[str, _Item], name: str) -> bool:
    for _ in range(_MAX_LINK_HOPS):
        item = placed.get(name)
        if item is None:
            return False
        if item.kind in ("file", "hardlink"):
            return True
        if item.kind != "symlink":
            return False
        name = link_target(name, item.linkname)
    return False


def _check_binaries(
    placed: dict[str, _Item], directory: str, platform: Platform, source: str
) -> tuple[str, ...]:
    suffix = ".exe" if platform.is_windows else ""
    where = f"{source}: lifecycle directory {directory + '/'!r}"
    missing = [p + suffix for p in PHASES if f"{LAYER_DIR}/{p}{suffix}" not in placed]
    if missing:
        other = "" if suffix else ".exe"
        if all(f"{LAYER_DIR}/{p}{other}" in placed for p in PHASES):
            if platform.is_windows:
                raise LifecycleError(
                    f"{where} holds no .exe phase binaries: it is not a Windows lifecycle "
                    f"(requested platform {platform})"
                )
            raise LifecycleError(
                f"{where} holds Windows phase binaries (analyzer.exe, ...): resolve it with "
                "--platform windows/amd64"
            )
        raise LifecycleError(f"{where} lacks the phase binaries {', '.join(missing)}")
    found = []
    for phase in PHASES + OPTIONAL_PHASES:
        name = f"{LAYER_DIR}/{phase}{suffix}"
        if name not in placed:
            continue
        if not _resolves_to_file(placed, name):
            item = placed[name]
            detail = f"a symlink to {item.linkname!r}, which the archive does not hold" if item.kind == "symlink" else f"a {item.kind}"
            raise LifecycleError(f"{where}: phase {phase + suffix!r} is {detail}; expected a file")
        found.append(phase + suffix)
    return tuple(sorted(found))


def _layer_items(placed: dict[str, _Item], descriptor: tuple[bytes, int, str]) -> list[tuple[str, _Item]]:
    items = dict(placed)
    items["cnb"] = _Item("dir", 0o755, "cnb")
    items["cnb/lifecycle.toml"] = _Item("file", descriptor[1] or 0o644, descriptor[2], len(descriptor[0]))
    for name in list(items):  # parents the archive did not list get a plain 0755 directory
        parent = name.rpartition("/")[0]
        while parent and parent not in items:
            items[parent] = _Item("dir", 0o755, parent)
            parent = parent.rpartition("/")[0]
    return sorted(items.items(), key=lambda kv: kv[0].split("/"))


class _HashingFile:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


def _write_layer(
    out: BinaryIO, items: list[tuple[str, _Item]], spool_fd: int, descriptor: bytes
) -> tuple[str, int]:
    hashing = _HashingFile(out)
    writer = TarWriter(hashing)  # type: ignore[arg-type]
    for name, item in items:
        mode = item.mode & 0o777  # setuid/setgid/sticky bits never ride into a builder
        if name == "cnb/lifecycle.toml":
            writer.add(name, "file", mode, size=len(descriptor), chunks=(descriptor,))
        elif item.kind == "file":
            writer.add(name, "file", mode, size=item.size, chunks=_pread_chunks(spool_fd, item))
        else:
            writer.add(name, item.kind, mode, linkname=item.linkname)
    writer.close()
    return f"sha256:{hashing.hash.hexdigest()}", hashing.size


def _pread_chunks(fd: int, item: _Item) -> Any:
    done = 0
    while done < item.size:
        chunk = os.pread(fd, min(CHUNK, item.size - done), item.offset + done)
        if not chunk:
            raise ArchiveError(f"entry {item.original!r}: spool ended early")
        done += len(chunk)
        yield chunk


def _cache_key(digest: str, platform: Platform) -> str:
    return f"{digest.partition(':')[2]}-{'windows' if platform.is_windows else 'unix'}"


def _from_meta(meta: dict[str, Any], blob: Blob, platform: Platform, directory: Path) -> Lifecycle:
    if blob.digest is None:
        blob.digest = meta["source_digest"]
    if blob.size is None:
        blob.size = meta["source_size"]
    descriptor = Descriptor(
        version=meta["version"],
        buildpack=APISet(tuple(meta["apis"]["buildpack"]["supported"]), tuple(meta["apis"]["buildpack"]["deprecated"])),
        platform=APISet(tuple(meta["apis"]["platform"]["supported"]), tuple(meta["apis"]["platform"]["deprecated"])),
        text=meta["descriptor"].encode(),
    )
    target = blob.platform or platform
    return Lifecycle(
        version=descriptor.version,
        apis=LifecycleAPIs(descriptor.buildpack, descriptor.platform),
        os=target.os,
        arch=target.architecture,
        variant=target.variant,
        binaries=tuple(meta["binaries"]),
        descriptor=descriptor,
        blob=blob,
        layer_digest=meta["layer_digest"],
        layer_size=meta["layer_size"],
        _layer_path=directory / "layer.tar",
    )


def cached_lifecycle(blob: Blob, platform: Platform, cache: Cache) -> Lifecycle | None:
    """The lifecycle validated earlier from the same artifact, if the cache has it.

    Only possible when ``blob.digest`` is known before reading (a cached download, an image
    layer, a file whose digest the cache remembered).
    """
    if blob.digest is None:
        return None
    directory = cache.lifecycle_dir(_cache_key(blob.digest, blob.platform or platform))
    try:
        meta = json.loads((directory / "lifecycle.json").read_text())
        if meta.get("format") != _FORMAT or not (directory / "layer.tar").is_file():
            return None
        os.utime(directory / "lifecycle.json")  # last use, for cache prune
    except (OSError, ValueError):
        return None
    return _from_meta(meta, blob, platform, directory)


def validate_lifecycle(blob: Blob, platform: Platform, cache: Cache) -> Lifecycle:
    """Validate the lifecycle in ``blob`` for ``platform`` and build its layer in the cache.

    Args:
        blob: any blob; it is read once, to its end.
        platform: the target platform (``windows`` means ``.exe`` phases).
        cache: where the spool, the layer and the metadata go.

    Returns:
        The :class:`Lifecycle`. A second call for the same artifact (same digest) is served
        from the cache without reading the artifact.

    Raises:
        ArchiveError: corrupt input or an entry the safety rules refuse.
        LifecycleError: no descriptor, a bad descriptor, missing phase binaries.
    """
    cached = cached_lifecycle(blob, platform, cache)
    if cached is not None:
        return cached
    target = blob.platform or platform
    suffix = ".exe" if target.is_windows else ""
    phase_names = tuple(p + s for p in PHASES for s in {suffix, ".exe", ""})
    spool_path = cache.new_temp_path(".spool")
    staging = cache.new_temp_path(".lifecycle")
    try:
        with open(spool_path, "w+b") as spool:
            stream = blob.open()
            try:
                scan = _spool_entries(stream, blob.source, spool)
            finally:
                close_stream(stream)
            spool.flush()
            descriptor_name, directory = _shape(scan, blob.source, phase_names)
            data, _mode, original = scan.descriptors[descriptor_name]
            descriptor = parse_descriptor(data, f"{blob.source}: {original}")
            placed = _installed(scan, directory)
            _check_links(placed, directory, blob.source)
            binaries = _check_binaries(placed, directory, target, blob.source)
            items = _layer_items(placed, scan.descriptors[descriptor_name])
            staging.mkdir()
            with open(staging / "layer.tar", "wb") as out:
                layer_digest, layer_size = _write_layer(out, items, spool.fileno(), data)
        assert blob.digest is not None  # the stream was read to its end
        meta = {
            "format": _FORMAT,
            "version": descriptor.version,
            "apis": LifecycleAPIs(descriptor.buildpack, descriptor.platform).to_json(),
            "os": "windows" if target.is_windows else "unix",
            "binaries": list(binaries),
            "descriptor": data.decode(),
            "source": blob.source,
            "source_digest": blob.digest,
            "source_size": blob.size,
            "layer_digest": layer_digest,
            "layer_size": layer_size,
        }
        (staging / "lifecycle.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        published = cache.publish_dir(staging, _cache_key(blob.digest, target))
        return _from_meta(meta, blob, platform, published)
    finally:
        with contextlib.suppress(FileNotFoundError):
            spool_path.unlink()
        shutil.rmtree(staging, ignore_errors=True)
