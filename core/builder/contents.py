"""What a buildpack's (or extension's) layer holds, checked as one tree before it is accepted.

A module's layer is extracted into ``/cnb/buildpacks/<id>/<version>/`` of a builder that also
holds the validated lifecycle and the build image's files, so nothing of the module may land
anywhere else: not by its name, not through its own symlinks (``esc -> ../../../lifecycle``
then ``esc/detector``). The tree obeys the rule every tree of a layer obeys
(:func:`cnbkit.archive.links.check_tree`, the lifecycle's too); and since a module's layer is
written (or referenced) in archive order, not rewritten sorted, a name may appear only once (a
directory may be repeated) and a hardlink must follow the file it names: the tree checked is
then the tree any tar extracts.

Two sources: a module's archive (:class:`ModuleTree`, names relative to the module's
directory), and a buildpackage image's layer (:func:`check_package_layer`, layer names).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Collection
from dataclasses import dataclass

from ..archive.links import check_tree
from ..archive.streams import close_stream
from ..archive.tarreader import TarEntry, iter_tar
from ..cache import Cache
from ..cache.records import PackageVerdict
from ..errors import ArchiveError, WriteError
from ..oci.image import Layer

__all__ = ["ModuleTree", "check_package_layer"]

_ROOT_DEPTH = 4  # cnb/buildpacks/<id>/<version>: a module's directory is four names deep
# Bumped whenever the rules below change, so a layer accepted under older rules is read again.
_RULES_VERSION = 1


@dataclass(frozen=True)
class _Node:
    kind: str
    original: str
    linkname: str


class ModuleTree:
    """The entries of one module, by their name relative to the module's directory.

    Args:
        source: the artifact's name, for messages.
        what: ``buildpack`` or ``extension``, for messages.
    """

    def __init__(self, source: str, what: str) -> None:
        self.source = source
        self.what = what
        self._nodes: dict[str, _Node] = {}

    def add(self, name: str, entry: TarEntry, linkname: str = "") -> None:
        """Take one entry (``name`` relative to the module's directory, never empty).

        Args:
            name: the entry's name relative to the module's directory.
            entry: the checked tar entry.
            linkname: a hardlink's target relative to the module's directory (ignored otherwise).

        Raises:
            ArchiveError: a name seen before (but a directory again), or a hardlink to no file
                written before it.
        """
        seen = self._nodes.get(name)
        if seen is not None and (seen.kind != "dir" or entry.kind != "dir"):
            # the earlier entry is extracted first: a link written through, then replaced
            raise ArchiveError(
                f"{self.source}: entry {entry.original!r} appears twice in the {self.what}; "
                "refusing the archive"
            )
        if entry.kind == "hardlink":
            target = self._nodes.get(linkname)
            if target is None or target.kind != "file":
                raise ArchiveError(
                    f"{self.source}: hardlink {entry.original!r} -> {entry.linkname!r} names no "
                    f"regular file of the {self.what} before it; refusing the archive"
                )
        else:
            linkname = entry.linkname
        self._nodes[name] = _Node(entry.kind, entry.original, linkname)

    def check(self, root: str) -> None:
        """Check the tree as it will be extracted at ``root`` (``cnb/buildpacks/<id>/<version>``).

        Raises:
            ArchiveError: an entry under a symlink or a file, or a symlink leaving ``root``
                (:func:`cnbkit.archive.links.check_tree`).
        """
        placed = {
            f"{root}/{name}": _Node(n.kind, n.original, f"{root}/{n.linkname}") if n.kind == "hardlink" else n
            for name, n in self._nodes.items()
        }
        check_tree(placed, root, self.source, self.what)


def _verdict_key(layer: Layer, roots: Collection[str], what: str) -> str:
    """The cache key of "this layer, holding these modules' directories, passed the rules"."""
    named = hashlib.sha256("\0".join(sorted(roots)).encode("utf-8", "surrogateescape")).hexdigest()
    return f"package-check:{_RULES_VERSION}:{what}:{layer.digest}:{named}"


def check_package_layer(layer: Layer, roots: Collection[str], what: str, cache: Cache | None = None) -> None:
    """Read a buildpackage image's layer through the strict tar reader and check its tree.

    Every entry must be inside one of ``roots`` (the directories of the modules the image says
    the layer holds), or be a directory above them; each module's tree obeys
    :class:`ModuleTree`'s rules inside its own directory.

    With a ``cache``, a layer that passed is remembered by its digest (content-addressed, so
    the verdict holds for the same bytes anywhere): a warm ``builder create`` neither fetches
    nor reads a package layer it checked before, and a push can still mount it unread.

    Raises:
        ArchiveError: an entry outside, or a tree that breaks a rule; a corrupt layer.
        DigestMismatchError: the layer is not what its descriptor says.
    """
    key = _verdict_key(layer, roots, what)
    if cache is not None:
        known = cache.recall(PackageVerdict, key)
        if known is not None and known.layer_digest == layer.digest:
            return
    trees = {root: ModuleTree(layer.source, what) for root in roots}
    above = {"/".join(root.split("/")[:depth]) for root in roots for depth in range(1, _ROOT_DEPTH)}
    stream = layer.open_tar()
    try:
        for entry in iter_tar(stream, layer.source):
            name = entry.name
            root = "/".join(name.split("/", _ROOT_DEPTH)[:_ROOT_DEPTH])
            tree = trees.get(root)
            if name in above or (tree is not None and name == root):
                if entry.kind != "dir":
                    raise ArchiveError(
                        f"{layer.source}: entry {entry.original!r} is a {entry.kind} where the "
                        f"{what} directories need a directory; refusing the archive"
                    )
            elif tree is None:
                shown = " or ".join(f"{r}/" for r in sorted(roots)[:3])
                raise ArchiveError(
                    f"{layer.source}: entry {entry.original!r} lies outside {shown}, where the "
                    f"image says its {what}s are; refusing the archive"
                )
            else:
                link = entry.linkname
                if entry.kind == "hardlink" and not link.startswith(root + "/"):
                    raise ArchiveError(
                        f"{layer.source}: hardlink {entry.original!r} -> {link!r} leaves the "
                        f"{what} directory; refusing the archive"
                    )
                tree.add(name[len(root) + 1 :], entry, link[len(root) + 1 :])
    finally:
        close_stream(stream)
    for root, tree in trees.items():
        tree.check(root)
    if cache is not None:
        # Only an optimisation: a read-only or full cache just means the next build reads again.
        with contextlib.suppress(OSError, WriteError):
            cache.remember(PackageVerdict(key, layer_digest=layer.digest))
