"""Which layer supplies each path of the final filesystem: layers applied with whiteouts.

A pure algorithm over entry names and kinds (no bytes, no I/O), fed the **top layer first**,
so that a caller looking for one subtree (``cnb/lifecycle``) can stop reading lower layers as
soon as that subtree's final content is known, and can decide while streaming a layer whether
each of its entries survives into the final filesystem.

Semantics, as containerd and the OCI image-spec ``layer.md`` apply layers bottom-up:

* ``DIR/.wh.NAME`` deletes ``DIR/NAME`` and everything under it from *lower* layers.
* ``DIR/.wh..wh..opq`` hides everything under ``DIR`` from lower layers (``DIR`` stays).
* A whiteout never hides an entry of its own layer. Other ``.wh..wh.*`` names (aufs
  bookkeeping) are ignored.
* A non-directory at ``P`` replaces whatever lower layers had at and under ``P``.
* A directory over a lower directory merges with it; over a lower non-directory it replaces it.
* Every ancestor of an entry (whiteouts included) is a directory of that layer, written or
  not ("implicit"). The owner of a directory is the topmost layer that *wrote* an entry for
  it in the run of layers where it stayed a directory, or ``None`` if only implied.
* Within a layer, the last entry for a name wins. Names are compared as written: a layer
  that writes files through a lower layer's symlink (``lib -> usr/lib``) is not resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..archive.tarreader import normalize_name

__all__ = ["DIRECTORY", "OPAQUE", "WHITEOUT_PREFIX", "Node", "Overlay", "OverlayLayer"]

DIRECTORY = "dir"  # the kind :class:`~cnbkit.archive.tarreader.TarEntry` gives a directory
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
_META_PREFIX = ".wh..wh."


@dataclass(frozen=True)
class Node:
    """A path of the final filesystem.

    Attributes:
        kind: the entry kind (``dir``, ``file``, ``symlink``, ``hardlink``, ...).
        layer: the index of the layer that supplies it; ``None`` for a directory no layer
            wrote an entry for (it exists because entries below it do).
    """

    kind: str
    layer: int | None

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return self.kind == DIRECTORY


def _ancestors(name: str) -> Iterator[str]:
    """The proper ancestors of ``name``, nearest first (``a/b`` for ``a/b/c``), without root."""
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        yield name


def _related(name: str, scope: str) -> bool:
    """True when ``name`` is ``scope``, above it or below it: only these can affect it."""
    if not scope or not name or name == scope:  # "" is the root, above everything
        return True
    return name.startswith(scope + "/") or scope.startswith(name + "/")


class Overlay:
    """The final filesystem of a layer stack, computed top layer first.

    Args:
        scope: only names at, above or below this path are tracked (``""`` = everything):
            looking for ``cnb/lifecycle`` then costs memory for that subtree only.

    Example:
        >>> overlay = Overlay("cnb/lifecycle")
        >>> for layer in reversed(image.layers()):  # doctest: +SKIP
        ...     overlay.add_layer(names_and_kinds(layer), layer.index)
        ...     if overlay.settled():
        ...         break
    """

    def __init__(self, scope: str = "") -> None:
        self.scope = normalize_name(scope)
        self._nodes: dict[str, Node] = {}
        self._blocked_at: set[str] = set()  # lower layers lose this path and all under it
        self._blocked_under: set[str] = set()  # lower layers lose all under this path ("" = root)
        self._last: int | None = None

    def _blocked(self, name: str) -> bool:
        """True when no lower layer can contribute ``name`` any more."""
        if name in self._blocked_at:
            return True
        if "" in self._blocked_under:
            return True
        return any(a in self._blocked_at or a in self._blocked_under for a in _ancestors(name))

    def begin_layer(self, index: int) -> OverlayLayer:
        """Start the next lower layer; feed it entries, then call :meth:`OverlayLayer.finish`.

        Args:
            index: the layer's position in the image (0 = bottom); must decrease.

        Raises:
            ValueError: ``index`` is not below the previous layer's.
        """
        if self._last is not None and index >= self._last:
            raise ValueError(f"layers are fed top first: layer {index} after layer {self._last}")
        self._last = index
        return OverlayLayer(self, index)

    def add_layer(self, entries: Iterable[tuple[str, str]], index: int) -> None:
        """Apply a whole layer given as ``(name, kind)`` pairs, top layer first.

        Args:
            entries: the layer's entries in tar order; names are normalised here.
            index: the layer's position in the image (0 = bottom).
        """
        layer = self.begin_layer(index)
        for name, kind in entries:
            layer.add(name, kind)
        layer.finish()

    def settled(self, prefix: str | None = None) -> bool:
        """True when no lower layer can change what is at or under ``prefix`` (default: the scope).

        That is the case once a layer removed the path (a whiteout of it or of an ancestor),
        replaced it or an ancestor by a non-directory, or made it (with a known owner) or
        an ancestor opaque.
        """
        name = self.scope if prefix is None else normalize_name(prefix)
        if self._blocked(name):
            return True
        node = self._nodes.get(name)
        return name in self._blocked_under and node is not None and node.layer is not None

    def node(self, name: str) -> Node | None:
        """What is at ``name`` in the filesystem of the layers fed so far, or ``None``."""
        return self._nodes.get(normalize_name(name))

    def visible(self, name: str) -> bool:
        """True when ``name`` exists in the filesystem of the layers fed so far."""
        return normalize_name(name) in self._nodes

    def owner(self, name: str) -> int | None:
        """The index of the layer supplying ``name``, or ``None`` (absent, or implied directory)."""
        node = self.node(name)
        return None if node is None else node.layer

    def tree(self, prefix: str | None = None) -> dict[str, Node]:
        """Every path at and under ``prefix`` (default: the scope), sorted by name."""
        root = self.scope if prefix is None else normalize_name(prefix)
        under = root + "/" if root else ""
        return {
            name: node for name, node in sorted(self._nodes.items()) if name == root or name.startswith(under)
        }


class OverlayLayer:
    """One layer being fed to an :class:`Overlay` (from :meth:`Overlay.begin_layer`).

    Its whiteouts and replacements only take effect for lower layers, at :meth:`finish`.
    """

    def __init__(self, overlay: Overlay, index: int) -> None:
        self._overlay = overlay
        self.index = index
        self._kinds: dict[str, str] = {}  # explicit entries of this layer, last one wins
        self._whiteouts: set[str] = set()
        self._opaque: set[str] = set()
        self._created: set[str] = set()  # paths whose node this layer made
        self._adopted: set[str] = set()  # implied directories from above this layer wrote
        self._finished = False

    def add(self, name: str, kind: str) -> bool:
        """Record one entry; return True when this layer supplies it in the final filesystem.

        A True answer is final once the layer is fed (a later entry of the same name in this
        layer supersedes it): the caller can extract the entry's data as it streams past.
        Whiteout entries and names outside the scope return False.
        """
        name = normalize_name(name)
        if not name:
            return False
        parent, _, base = name.rpartition("/")
        # Every entry, whiteouts and names outside the scope included, makes its parent a
        # directory of this layer (which replaces a lower non-directory there).
        self._imply(parent)
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE:
                if _related(parent, self._overlay.scope):
                    self._opaque.add(parent)
            elif not base.startswith(_META_PREFIX) and base != WHITEOUT_PREFIX:
                hidden = base[len(WHITEOUT_PREFIX) :]
                target = f"{parent}/{hidden}" if parent else hidden
                if _related(target, self._overlay.scope):
                    self._whiteouts.add(target)
            return False
        if not _related(name, self._overlay.scope):
            return False
        self._kinds[name] = kind
        return self._place(name, kind, explicit=True)

    def _imply(self, parent: str) -> None:
        """Make ``parent`` and its ancestors (those in the scope) directories of this layer."""
        scope = self._overlay.scope
        for name in [parent, *_ancestors(parent)] if parent else []:
            if name not in self._kinds and _related(name, scope):
                self._place(name, DIRECTORY, explicit=False)

    def _place(self, name: str, kind: str, *, explicit: bool) -> bool:
        overlay = self._overlay
        if overlay._blocked(name):
            return False
        node = overlay._nodes.get(name)
        if node is None or name in self._created:
            # Nothing above decided this path: this layer does (its last entry wins).
            if node is not None and not explicit:
                return False  # an entry of this layer is already there
            overlay._nodes[name] = Node(kind, self.index if explicit else None)
            self._created.add(name)
            return explicit
        # An upper layer decided; only a directory it merely implied can take an owner here.
        if node.is_dir and explicit and (node.layer is None or name in self._adopted):
            if kind == DIRECTORY:
                overlay._nodes[name] = Node(DIRECTORY, self.index)
                self._adopted.add(name)
                return True
            if name in self._adopted:
                # A later entry of this layer turned the directory it wrote into a file,
                # which the upper layer's directory replaces: back to an implied directory.
                overlay._nodes[name] = Node(DIRECTORY, None)
                self._adopted.discard(name)
        return False

    def finish(self) -> None:
        """Apply this layer's whiteouts and replacements to the layers below it."""
        if self._finished:
            return
        self._finished = True
        overlay = self._overlay
        overlay._blocked_at.update(self._whiteouts)
        overlay._blocked_under.update(self._opaque)
        overlay._blocked_at.update(name for name, kind in self._kinds.items() if kind != DIRECTORY)
