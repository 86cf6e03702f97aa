"""Where a symlink in the layer really leads: resolved against the layer's own entries.

A lexical check (normalise ``dir/target`` and look at the prefix) is fooled by a chain: with
``a -> .`` and ``b -> a/..``, ``b`` looks like ``cnb/lifecycle`` but is ``cnb``; then
``c -> b/..`` is the root and ``d -> c/etc/passwd`` the host's password file, although each
target looks harmless on its own. So every symlink is resolved the way the kernel would
resolve it once the layer is extracted: component by component, following the symlinks the
layer itself holds (their targets exactly as written), ``..`` going up from where the walk
really is. Every place the walk passes must be inside the lifecycle directory or one of its
ancestors (``cnb``, the root): anywhere else belongs to other layers of the image, which can
hold anything, so a walk through there is refused.

Each symlink is resolved once and remembered, so a walk that meets a symlink splices in its
resolution: the cost is linear in the total length of the link targets, whatever the chains.
"""

from __future__ import annotations

from ..errors import ArchiveError
from .placement import LAYER_DIR, Item, under

__all__ = ["MAX_LINK_DEPTH", "resolve_symlinks"]

MAX_LINK_DEPTH = 40  # nested symlinks, as Linux's limit on one path walk
_ANCESTORS = ("", "cnb")  # LAYER_DIR's parents: the layer writes them as directories


class _Resolver:
    def __init__(self, placed: dict[str, Item], source: str) -> None:
        self._placed = placed
        self._source = source
        self.done: dict[str, str] = {}
        self._active: list[str] = []

    def _refuse(self, name: str, detail: str) -> ArchiveError:
        item = self._placed[name]
        return ArchiveError(
            f"{self._source}: symlink {item.original!r} -> {item.linkname!r} {detail}; refusing the archive"
        )

    def resolve(self, name: str) -> str:
        """The path the symlink ``name`` leads to (a layer path, inside the lifecycle)."""
        known = self.done.get(name)
        if known is not None:
            return known
        if name in self._active:
            raise self._refuse(self._active[0], "is part of a symlink loop")
        if len(self._active) >= MAX_LINK_DEPTH:
            raise self._refuse(self._active[0], f"goes through more than {MAX_LINK_DEPTH} symlinks")
        self._active.append(name)
        target = self._placed[name].linkname
        # the link's directory holds no symlink (check_links refuses entries under one)
        path = [] if target.startswith("/") else name.split("/")[:-1]
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if path:
                    path.pop()
            else:
                path.append(part)
                here = "/".join(path)
                item = self._placed.get(here)
                if item is not None and item.kind == "symlink":
                    resolved = self.resolve(here)
                    path = resolved.split("/") if resolved else []
            where = "/".join(path)
            if where not in _ANCESTORS and not under(where, LAYER_DIR):
                raise self._refuse(self._active[0], "leaves the lifecycle directory")
        where = "/".join(path)
        if not under(where, LAYER_DIR):
            raise self._refuse(self._active[0], "leaves the lifecycle directory")
        self._active.pop()
        self.done[name] = where
        return where


def resolve_symlinks(placed: dict[str, Item], source: str) -> dict[str, str]:
    """Resolve every symlink of the layer; return where each leads (by layer name).

    Args:
        placed: the lifecycle's entries by their layer name; no entry lies under a symlink.
        source: the artifact's name, for messages.

    Raises:
        ArchiveError: a symlink whose walk leaves the lifecycle directory at any step, or a
            loop, or more than :data:`MAX_LINK_DEPTH` nested symlinks; the message names the
            symlink as the archive wrote it.
    """
    resolver = _Resolver(placed, source)
    for name, item in placed.items():
        if item.kind == "symlink":
            resolver.resolve(name)
    return resolver.done
