"""Reading the archive once and telling its shape: the release tarball (``lifecycle.toml`` and
one directory of binaries) or the image shape (``cnb/lifecycle.toml``, ``cnb/lifecycle/``)."""

from __future__ import annotations

from ..archive.streams import close_stream
from ..archive.tarreader import TarEntry, iter_tar
from ..blob import Blob
from ..errors import LifecycleError
from ..tomlfile import MAX_TOML_SIZE
from .layer import SpeculativeLayer
from .placement import LAYER_DIR, Item, under

__all__ = ["DESCRIPTORS", "Descriptors", "find_shape", "scan"]

DESCRIPTORS = ("lifecycle.toml", "cnb/lifecycle.toml")

Descriptors = dict[str, tuple[bytes, int, str]]  # name -> (bytes, mode, name as written)


def _read_descriptor(entry: TarEntry) -> tuple[bytes, int, str]:
    where = f"{entry.source}: {entry.original!r}"
    if entry.kind != "file":
        raise LifecycleError(f"{where} is a {entry.kind}; the descriptor must be a regular file")
    if entry.size > MAX_TOML_SIZE:
        raise LifecycleError(f"{where} is {entry.size} bytes; a descriptor is a small TOML file")
    return b"".join(entry.chunks()), entry.mode, entry.original


def scan(blob: Blob, layer: SpeculativeLayer) -> Descriptors:
    descriptors: Descriptors = {}
    stream = blob.open()
    try:
        for entry in iter_tar(stream, blob.source):
            if entry.name in DESCRIPTORS:
                descriptors[entry.name] = _read_descriptor(entry)
            elif entry.name == "cnb" or ("/" not in entry.name and entry.kind != "dir"):
                continue  # the layer makes its own cnb/; a root-level file is never lifecycle
            elif "cnb/lifecycle.toml" in descriptors and not under(entry.name, LAYER_DIR):
                continue  # image shape known: only cnb/lifecycle/ matters
            else:
                layer.add(entry)
    finally:
        close_stream(stream)
    return descriptors


def _release_dir(items: dict[str, Item], source: str, phase_names: tuple[str, ...]) -> str:
    tops = sorted({name.split("/", 1)[0] for name in items if not under(name, LAYER_DIR)})
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


def find_shape(
    items: dict[str, Item], descriptors: Descriptors, source: str, phase_names: tuple[str, ...]
) -> tuple[str, str]:
    """Return (descriptor name, lifecycle directory) for the archive's shape."""
    image_dir_present = any(under(name, LAYER_DIR) for name in items)
    if "cnb/lifecycle.toml" in descriptors and (image_dir_present or "lifecycle.toml" not in descriptors):
        return "cnb/lifecycle.toml", LAYER_DIR
    if "lifecycle.toml" in descriptors:
        return "lifecycle.toml", _release_dir(items, source, phase_names)
    raise LifecycleError(
        f"{source}: no lifecycle.toml at the archive root (nor cnb/lifecycle.toml): not a lifecycle archive"
    )
