"""Where a lifecycle's entries land in the layer: ``cnb/lifecycle/...``, whatever the shape.

One renaming rule (:func:`installed_name`) serves both the fast path, which writes entries as
they stream, and the checks and the sorted rewrite, which see the whole lifecycle at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..archive.links import under

__all__ = ["LAYER_DIR", "DataRef", "Item", "installed_name", "layer_items", "place", "sort_key", "under"]

LAYER_DIR = "cnb/lifecycle"


def sort_key(name: str) -> str:
    """The layer's order: by path components, so parents come right before their children.

    A string, not a list of components (a list per entry is what a 100,000-entry sort held): a
    NUL sorts below every character a name may hold (the tar reader refuses control
    characters), so ``a/b`` before ``a-c`` exactly as ``["a", "b"] < ["a-c"]``.
    """
    return name.replace("/", "\0")


# Kept for every entry of the lifecycle (and, until the shape is known, of every top-level
# directory): slots, not a __dict__ per object.
@dataclass(frozen=True, slots=True)
class DataRef:
    """Where an entry's data was kept: in the layer written so far, or in the side spool."""

    in_layer: bool
    offset: int


@dataclass(slots=True)
class Item:
    """What the layer needs to know of one archive entry (never its data: that is on disk).

    Attributes:
        kind: ``file``, ``dir``, ``symlink`` or ``hardlink``.
        mode: permission bits.
        original: the name as the archive wrote it, for messages.
        size: the data size.
        linkname: a symlink's target as written, or a hardlink's target path.
        data: where a file's data is, once it was written or spooled.
    """

    kind: str
    mode: int
    original: str
    size: int = 0
    linkname: str = ""
    data: DataRef | None = None


def installed_name(name: str, directory: str) -> str:
    """The layer name of the archive entry ``name`` of the lifecycle directory ``directory``."""
    return LAYER_DIR if name == directory else f"{LAYER_DIR}/{name[len(directory) + 1 :]}"


def place(items: dict[str, Item], directory: str) -> dict[str, Item]:
    """The lifecycle directory's entries, by the name they get in the layer."""
    placed = {LAYER_DIR: items.get(directory, Item("dir", 0o755, directory))}
    for name, item in items.items():
        if name.startswith(directory + "/"):
            placed[installed_name(name, directory)] = item
    return placed


def layer_items(placed: dict[str, Item], descriptor: bytes, mode: int) -> list[tuple[str, Item]]:
    """Every entry of the layer in order: ``cnb``, the descriptor, parents before children."""
    items = dict(placed)
    items["cnb"] = Item("dir", 0o755, "cnb")
    items["cnb/lifecycle.toml"] = Item("file", mode or 0o644, "lifecycle.toml", len(descriptor))
    for name in list(items):  # parents the archive did not list get a plain 0755 directory
        parent = name.rpartition("/")[0]
        while parent and parent not in items:
            items[parent] = Item("dir", 0o755, parent)
            parent = parent.rpartition("/")[0]
    return _targets_first(sorted(items.items(), key=lambda kv: sort_key(kv[0])))


def _targets_first(ordered: list[tuple[str, Item]]) -> list[tuple[str, Item]]:
    """Make the first name of each group of hardlinks, in layer order, the one with the data.

    Sorting by path can put a hardlink before its target (``a/x`` links to ``z``), and tar
    cannot make a link to a file it has not written yet. A group of hardlinks is one file
    under several names, so the first name carries the data and the others (the old target
    included) link to it: the same files, in sorted order, and the layer extracts.
    """
    position = {name: i for i, (name, _) in enumerate(ordered)}
    groups: dict[str, list[str]] = {}
    for name, item in ordered:
        if item.kind == "hardlink":
            groups.setdefault(item.linkname, []).append(name)
    items = dict(ordered)
    for target, links in groups.items():
        first = links[0]  # in layer order already
        if position[first] > position[target]:
            continue
        data = items[target]
        items[first] = replace(data, original=items[first].original)
        items[target] = Item("hardlink", data.mode, data.original, linkname=first)
        for link in links[1:]:
            items[link] = replace(items[link], linkname=first)
    return list(items.items())
