"""Reading the archive once and telling its shape: the release tarball (``lifecycle.toml`` and
one directory of binaries) or the image shape (``cnb/lifecycle.toml``, ``cnb/lifecycle/``)."""

from __future__ import annotations

from ..archive.streams import close_stream
from ..archive.tarreader import TarEntry, iter_tar
from ..blob import Blob
from ..errors import LifecycleError
from ..redact import listing
from ..tomlfile import MAX_TOML_SIZE
from .layer import SpeculativeLayer
from .placement import LAYER_DIR, Item, under

__all__ = ["DESCRIPTORS", "Descriptors", "check_containers", "find_shape", "scan"]

DESCRIPTORS = ("lifecycle.toml", "cnb/lifecycle.toml")

Descriptors = dict[str, tuple[bytes, int, str]]  # name -> (bytes, mode, name as written)


def _read_descriptor(entry: TarEntry) -> tuple[bytes, int, str]:
    where = f"{entry.source}: {entry.original!r}"
    if entry.kind != "file":
        raise LifecycleError(f"{where} is a {entry.kind}; the descriptor must be a regular file")
    if entry.size > MAX_TOML_SIZE:
        raise LifecycleError(f"{where} is {entry.size} bytes; a descriptor is a small TOML file")
    return b"".join(entry.chunks()), entry.mode, entry.original


def scan(
    blob: Blob, layer: SpeculativeLayer, max_total: int | None = None
) -> tuple[Descriptors, dict[str, str]]:
    """Read ``blob`` once, feeding the entries that may be lifecycle to ``layer``.

    Returns:
        The descriptors found, and the root-level links (and a ``cnb`` that is no directory)
        by name, with what each is, for :func:`check_containers`: the layer makes its own
        directories, but a lifecycle directory the archive gave as a symlink is refused.
    """
    descriptors: Descriptors = {}
    containers: dict[str, str] = {}
    stream = blob.open()
    try:
        for entry in iter_tar(stream, blob.source, max_total=max_total):
            if entry.name in DESCRIPTORS:
                descriptors[entry.name] = _read_descriptor(entry)
            elif entry.name == "cnb" or ("/" not in entry.name and entry.kind != "dir"):
                # the layer makes its own cnb/; a root-level file is never lifecycle; only
                # links are remembered (a README is common; 100k of them cost nothing)
                if entry.kind in ("symlink", "hardlink") or (entry.name == "cnb" and entry.kind != "dir"):
                    target = f" to {entry.linkname!r}" if entry.linkname else ""
                    containers[entry.name] = f"{entry.original!r} is a {entry.kind}{target}"
                continue
            elif "cnb/lifecycle.toml" in descriptors and not under(entry.name, LAYER_DIR):
                continue  # image shape known: only cnb/lifecycle/ matters
            else:
                layer.add(entry)
    finally:
        close_stream(stream)
    return descriptors, containers


def check_containers(containers: dict[str, str], directory: str, source: str) -> None:
    """Refuse a lifecycle directory (or, in the image shape, ``cnb``) given as a link.

    Extracted, such an archive writes the lifecycle wherever the link points; the layer
    would silently differ from it, so neither is accepted.
    """
    for name in (directory.split("/")[0], directory):
        if name in containers:
            raise LifecycleError(
                f"{source}: {containers[name]}, but the lifecycle is expected in a real "
                f"directory {name + '/'!r}; refusing the archive"
            )


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
    listed = listing([f"{t}/" for t in (with_phases or tops)])
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
