"""Where the symlinks of a tree of tar entries really lead, and the tree's other link rules.

One rule for every tree cnbkit writes into an image layer from someone else's archive: the
lifecycle (``cnb/lifecycle``), and each buildpack or extension
(``cnb/buildpacks/<id>/<version>``). The entries must stay inside their directory, and so must
every symlink, walked the way the kernel will walk it once the layer is extracted.

A lexical check (normalise ``dir/target`` and look at the prefix) is fooled by a chain: with
``a -> .`` and ``b -> a/..``, ``b`` looks like ``cnb/lifecycle`` but is ``cnb``; then
``c -> b/..`` is the root and ``d -> c/etc/passwd`` the host's password file, although each
target looks harmless on its own. So every symlink is resolved component by component,
following the symlinks the tree itself holds (their targets exactly as written), ``..`` going
up from where the walk really is. Every place the walk passes must be inside the directory or
one of its ancestors (``cnb``, the root: the builder writes them as directories): anywhere else
belongs to other layers of the image, which can hold anything, so a walk through there is
refused.

Each symlink is resolved once and remembered, so a walk that meets a symlink splices in its
resolution: the cost is linear in the total length of the link targets, whatever the chains;
the other checks cost one look-up per parent of each entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..errors import ArchiveError

__all__ = ["MAX_LINK_DEPTH", "Linked", "check_tree", "under"]

MAX_LINK_DEPTH = 40  # nested symlinks, as Linux's limit on one path walk


class Linked(Protocol):
    """What the checks need of an entry: its kind, its name as written, its link target."""

    @property
    def kind(self) -> str:
        """``file``, ``dir``, ``symlink`` or ``hardlink``."""

    @property
    def original(self) -> str:
        """The name as the archive wrote it, for messages."""

    @property
    def linkname(self) -> str:
        """A symlink's target as written; a hardlink's target, by its name in the tree."""


def under(name: str, directory: str) -> bool:
    """Whether ``name`` is ``directory`` or inside it."""
    return name == directory or name.startswith(directory + "/")


class _Resolver:
    def __init__(self, placed: Mapping[str, Linked], top: str, source: str, what: str) -> None:
        self._placed = placed
        self._top = top
        parts = top.split("/")
        self._passes = {"/".join(parts[:i]) for i in range(len(parts))}  # the root, ..., top's parent
        self._source = source
        self._what = what
        self.done: dict[str, str] = {}
        self._active: list[str] = []

    def _refuse(self, name: str, detail: str) -> ArchiveError:
        item = self._placed[name]
        return ArchiveError(
            f"{self._source}: symlink {item.original!r} -> {item.linkname!r} {detail}; refusing the archive"
        )

    def resolve(self, name: str) -> str:
        """The path the symlink ``name`` leads to (a tree path, inside the directory)."""
        known = self.done.get(name)
        if known is not None:
            return known
        if name in self._active:
            raise self._refuse(self._active[0], "is part of a symlink loop")
        if len(self._active) >= MAX_LINK_DEPTH:
            raise self._refuse(self._active[0], f"goes through more than {MAX_LINK_DEPTH} symlinks")
        self._active.append(name)
        target = self._placed[name].linkname
        # the link's directory holds no symlink (check_tree refuses entries under one)
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
            if where not in self._passes and not under(where, self._top):
                raise self._refuse(self._active[0], f"leaves the {self._what} directory")
        where = "/".join(path)
        if not under(where, self._top):
            raise self._refuse(self._active[0], f"leaves the {self._what} directory")
        self._active.pop()
        self.done[name] = where
        return where


def check_tree(placed: Mapping[str, Linked], top: str, source: str, what: str) -> dict[str, str]:
    """Check a tree's entries and links; return where each symlink leads (by tree name).

    No entry may lie under a symlink (it would be written wherever the link leads) or a file
    (tar fails half-way); a hardlink must name a regular file of the tree; every symlink,
    resolved against the tree's own entries, stays inside ``top`` at every step (its
    ancestors may be passed through).

    Args:
        placed: the entries by their name in the layer, all inside ``top``.
        top: the directory the tree must stay in (``cnb/lifecycle``).
        source: the artifact's name, for messages.
        what: what the tree is, for messages (``lifecycle``, ``buildpack``).

    Raises:
        ArchiveError: the first entry that breaks a rule, named as the archive wrote it: a
            symlink whose walk leaves ``top`` at any step, or a loop, or more than
            :data:`MAX_LINK_DEPTH` nested symlinks.
    """
    for name, item in placed.items():
        parent = name.rpartition("/")[0]
        while parent and parent != top:
            above = placed.get(parent)
            if above is not None and above.kind != "dir":
                # a symlink would carry the entry anywhere; a file makes tar fail half-way
                raise ArchiveError(
                    f"{source}: entry {item.original!r} lies under the {above.kind} "
                    f"{above.original!r}; refusing the archive"
                )
            parent = parent.rpartition("/")[0]
        if item.kind == "hardlink":
            target = placed.get(item.linkname)
            if target is None or target.kind != "file":
                shown = target.original if target is not None else item.linkname
                raise ArchiveError(
                    f"{source}: hardlink {item.original!r} -> {shown!r} names no regular file "
                    f"of the {what}; refusing the archive"
                )
    resolver = _Resolver(placed, top, source, what)
    for name, item in placed.items():
        if item.kind == "symlink":
            resolver.resolve(name)
    return resolver.done
