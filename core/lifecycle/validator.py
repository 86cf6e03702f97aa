"""The lifecycle validator: one pass over any Blob gives a :class:`Lifecycle` and its layer.

Both archive shapes are accepted (DESIGN.md section 5): the release tarball
(``lifecycle.toml`` at the root, the binaries in one top-level directory of any name) and the
image shape (``cnb/lifecycle.toml`` and ``cnb/lifecycle/``, with or without a leading ``/``).

The archive is read once, as a stream, to its very end (so the artifact's digest is known and
checked before anything is trusted). Entries are checked as they pass (:mod:`cnbkit.archive.tarreader`);
those that may belong to the lifecycle are written to the layer at once
(:mod:`cnbkit.lifecycle.layer`). Nothing outside the lifecycle directory can reach the layer. A
failure leaves nothing behind: not in the cache, not at the ``--save`` path.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from ..archive.streams import close_stream
from ..archive.tarreader import TarEntry, iter_tar, link_target
from ..blob import Blob
from ..cache import Cache
from ..errors import ArchiveError, LifecycleError
from ..oci.platform import Platform
from ..tomlfile import MAX_TOML_SIZE
from .descriptor import APISet, Descriptor, parse_descriptor
from .layer import LAYER_DIR, Item, LayerSink, SpeculativeLayer, write_sorted
from .model import OPTIONAL_PHASES, PHASES, Lifecycle, LifecycleAPIs

__all__ = ["cached_lifecycle", "validate_lifecycle"]

_DESCRIPTORS = ("lifecycle.toml", "cnb/lifecycle.toml")
_MAX_LINK_HOPS = 16
_FORMAT = 2  # bump when the cached metadata or the layer format changes

Descriptors = dict[str, tuple[bytes, int, str]]  # name -> (bytes, mode, name as written)


def _under(name: str, directory: str) -> bool:
    return name == directory or name.startswith(directory + "/")


def _read_descriptor(entry: TarEntry) -> tuple[bytes, int, str]:
    where = f"{entry.source}: {entry.original!r}"
    if entry.kind != "file":
        raise LifecycleError(f"{where} is a {entry.kind}; the descriptor must be a regular file")
    if entry.size > MAX_TOML_SIZE:
        raise LifecycleError(f"{where} is {entry.size} bytes; a descriptor is a small TOML file")
    return b"".join(entry.chunks()), entry.mode, entry.original


def _scan(blob: Blob, layer: SpeculativeLayer) -> Descriptors:
    descriptors: Descriptors = {}
    stream = blob.open()
    try:
        for entry in iter_tar(stream, blob.source):
            if entry.name in _DESCRIPTORS:
                descriptors[entry.name] = _read_descriptor(entry)
            elif entry.name == "cnb" or ("/" not in entry.name and entry.kind != "dir"):
                continue  # the layer makes its own cnb/; a root-level file is never lifecycle
            elif "cnb/lifecycle.toml" in descriptors and not _under(entry.name, LAYER_DIR):
                continue  # image shape known: only cnb/lifecycle/ matters
            else:
                layer.add(entry)
    finally:
        close_stream(stream)
    return descriptors


def _release_dir(items: dict[str, Item], source: str, phase_names: tuple[str, ...]) -> str:
    tops = sorted({name.split("/", 1)[0] for name in items if not _under(name, LAYER_DIR)})
    if len(tops) == 1:
        return tops[0]
    with_phases = [top for top in tops if any(f"{top}/{p}" in items for p in phase_names)]
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


def _shape(
    items: dict[str, Item], descriptors: Descriptors, source: str, phase_names: tuple[str, ...]
) -> tuple[str, str]:
    """Return (descriptor name, lifecycle directory) for the archive's shape."""
    image_dir_present = any(_under(name, LAYER_DIR) for name in items)
    if "cnb/lifecycle.toml" in descriptors and (image_dir_present or "lifecycle.toml" not in descriptors):
        return "cnb/lifecycle.toml", LAYER_DIR
    if "lifecycle.toml" in descriptors:
        return "lifecycle.toml", _release_dir(items, source, phase_names)
    raise LifecycleError(
        f"{source}: no lifecycle.toml at the archive root (nor cnb/lifecycle.toml): not a lifecycle archive"
    )


def _installed(items: dict[str, Item], directory: str) -> dict[str, Item]:
    """The lifecycle directory's entries, renamed to where they land: ``cnb/lifecycle/...``."""
    prefix = directory + "/"
    placed = {LAYER_DIR: items.get(directory, Item("dir", 0o755, directory))}
    for name, item in items.items():
        if name.startswith(prefix):
            placed[f"{LAYER_DIR}/{name[len(prefix) :]}"] = item
    return placed


def _check_links(placed: dict[str, Item], directory: str, source: str) -> None:
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
        if item.kind == "symlink" and not _under(link_target(name, item.linkname), LAYER_DIR):
            raise ArchiveError(
                f"{source}: symlink {item.original!r} -> {item.linkname!r} leaves the "
                "lifecycle directory; refusing the archive"
            )
        if item.kind == "hardlink":
            if not item.linkname.startswith(prefix):
                raise ArchiveError(
                    f"{source}: hardlink {item.original!r} -> {item.linkname!r} leaves the "
                    "lifecycle directory; refusing the archive"
                )
            target = f"{LAYER_DIR}/{item.linkname[len(prefix) :]}"
            if placed.get(target, Item("", 0, "")).kind != "file":
                raise ArchiveError(
                    f"{source}: hardlink {item.original!r} -> {item.linkname!r} names no "
                    "regular file of the lifecycle; refusing the archive"
                )
            item.linkname = target


def _resolves_to_file(placed: dict[str, Item], name: str) -> bool:
    for _ in range(_MAX_LINK_HOPS):
        item = placed.get(name)
        if item is None or item.kind not in ("file", "hardlink", "symlink"):
            return False
        if item.kind != "symlink":
            return True
        name = link_target(name, item.linkname)
    return False


def _check_binaries(
    placed: dict[str, Item], directory: str, platform: Platform, source: str
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
            detail = (
                f"a symlink to {item.linkname!r}, which leads to no file in the lifecycle"
                if item.kind == "symlink"
                else f"a {item.kind}"
            )
            raise LifecycleError(f"{where}: phase {phase + suffix!r} is {detail}")
        found.append(phase + suffix)
    return tuple(sorted(found))


def _layer_items(placed: dict[str, Item], descriptor: bytes, mode: int) -> list[tuple[str, Item]]:
    items = dict(placed)
    items["cnb"] = Item("dir", 0o755, "cnb")
    items["cnb/lifecycle.toml"] = Item("file", mode or 0o644, "lifecycle.toml", len(descriptor))
    for name in list(items):  # parents the archive did not list get a plain 0755 directory
        parent = name.rpartition("/")[0]
        while parent and parent not in items:
            items[parent] = Item("dir", 0o755, parent)
            parent = parent.rpartition("/")[0]
    return sorted(items.items(), key=lambda kv: kv[0].split("/"))


def _cache_key(digest: str, platform: Platform) -> str:
    return f"{digest.partition(':')[2]}-{'windows' if platform.is_windows else 'unix'}"


def _from_meta(
    meta: dict[str, Any], blob: Blob, platform: Platform, cache: Cache, layer: Path | None
) -> Lifecycle:
    if blob.digest is None:
        blob.digest = meta["source_digest"]
    if blob.size is None:
        blob.size = meta["source_size"]
    apis = meta["apis"]
    descriptor = Descriptor(
        version=meta["version"],
        buildpack=APISet(tuple(apis["buildpack"]["supported"]), tuple(apis["buildpack"]["deprecated"])),
        platform=APISet(tuple(apis["platform"]["supported"]), tuple(apis["platform"]["deprecated"])),
        text=meta["descriptor"].encode(),
    )
    target = blob.platform or platform

    def rebuild(save: Path | None) -> Path:
        rebuilt = _build(blob, platform, cache, save)
        assert rebuilt._layer_path is not None
        return rebuilt._layer_path

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
        _layer_path=layer,
        _rebuild=rebuild,
    )


def cached_lifecycle(blob: Blob, platform: Platform, cache: Cache) -> Lifecycle | None:
    """The lifecycle validated earlier from the same artifact, if the cache has it.

    Only possible when ``blob.digest`` is known before reading (a cached download, an image
    layer, a local file whose digest the cache remembered).
    """
    if blob.digest is None:
        return None
    directory = cache.lifecycle_dir(_cache_key(blob.digest, blob.platform or platform))
    try:
        meta = json.loads((directory / "lifecycle.json").read_text())
        if meta.get("format") != _FORMAT:
            return None
        os.utime(directory / "lifecycle.json")  # last use, for cache prune
    except (OSError, ValueError):
        return None
    layer = directory / "layer.tar"
    return _from_meta(meta, blob, platform, cache, layer if layer.is_file() else None)


def validate_lifecycle(
    blob: Blob, platform: Platform, cache: Cache, *, save: str | os.PathLike[str] | None = None
) -> Lifecycle:
    """Validate the lifecycle in ``blob`` for ``platform``, and write its layer.

    Args:
        blob: any blob; it is read once, to its end.
        platform: the target platform (``windows`` means ``.exe`` phases).
        cache: where the metadata (and, without ``save``, the layer) is kept.
        save: write the layer straight to this path (atomically) instead of into the cache.

    Returns:
        The :class:`Lifecycle`. A second call for the same artifact (same digest) is served
        from the cache without reading the artifact.

    Raises:
        ArchiveError: corrupt input or an entry the safety rules refuse.
        LifecycleError: no descriptor, a bad descriptor, missing phase binaries.
    """
    target = Path(save).absolute() if save is not None else None
    cached = cached_lifecycle(blob, platform, cache)
    if cached is None:
        return _build(blob, platform, cache, target)
    if target is not None:
        cached.save_layer(target)
    return cached


def _build(blob: Blob, platform: Platform, cache: Cache, save: Path | None) -> Lifecycle:
    target = blob.platform or platform
    phase_names = tuple(p + s for p in PHASES for s in ("", ".exe"))
    if save is not None:
        out = save.parent / f".{save.name}.{os.getpid()}.part"
    else:
        out = cache.new_temp_path(".layer")
    side_path = cache.new_temp_path(".spool")
    try:
        sink = LayerSink(out)
    except OSError as exc:
        raise LifecycleError(f"cannot write {save or out}: {exc.strerror or exc}") from None
    sorted_sink: LayerSink | None = None
    try:
        with open(side_path, "w+b") as side:
            layer = SpeculativeLayer(sink, side)
            descriptors = _scan(blob, layer)
            side.flush()
            descriptor_name, directory = _shape(layer.items, descriptors, blob.source, phase_names)
            data, mode, original = descriptors[descriptor_name]
            descriptor = parse_descriptor(data, f"{blob.source}: {original}")
            placed = _installed(layer.items, directory)
            _check_links(placed, directory, blob.source)
            binaries = _check_binaries(placed, directory, target, blob.source)
            if layer.matches(directory, placed):
                layer_digest, layer_size = layer.finish(data, mode)
            else:  # rewrite in sorted order from what was written and spooled
                sink.close()
                sorted_sink = LayerSink(out.with_name(out.name + ".sorted"))
                with open(out, "rb") as written:
                    fds = {"out": written.fileno(), "side": side.fileno()}
                    items = _layer_items(placed, data, mode)
                    layer_digest, layer_size = write_sorted(sorted_sink, items, data, fds)
                os.replace(sorted_sink.path, out)
        assert blob.digest is not None  # the stream was read to its end and verified
        meta = {
            "format": _FORMAT,
            "version": descriptor.version,
            "apis": LifecycleAPIs(descriptor.buildpack, descriptor.platform).to_json(),
            "os": "windows" if target.is_windows else "unix",
            "binaries": list(binaries),
            "descriptor": data.decode("utf-8"),
            "source": blob.source,
            "source_digest": blob.digest,
            "source_size": blob.size,
            "layer_digest": layer_digest,
            "layer_size": layer_size,
        }
        directory_path = cache.lifecycle_dir(_cache_key(blob.digest, target))
        directory_path.mkdir(parents=True, exist_ok=True)
        if save is not None:
            os.replace(out, save)
            layer_path = save
        else:
            layer_path = directory_path / "layer.tar"
            os.replace(out, layer_path)
        cache.write_json(directory_path / "lifecycle.json", meta)
        return _from_meta(meta, blob, platform, cache, layer_path)
    except BaseException:
        sink.abort()
        if sorted_sink is not None:
            sorted_sink.abort()
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            side_path.unlink()
