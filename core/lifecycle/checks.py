"""The lifecycle's own rules: links stay inside it, and every phase binary is there and is a file."""

from __future__ import annotations

from ..archive.links import check_tree
from ..errors import ArchiveError, LifecycleError
from ..oci.platform import Platform
from .model import OPTIONAL_PHASES, PHASES
from .placement import LAYER_DIR, Item

__all__ = ["check_binaries", "check_links"]


def check_links(placed: dict[str, Item], directory: str, source: str) -> dict[str, str]:
    """Check the layer's tree and links; return where each symlink leads (by layer name).

    The lifecycle directory must be a directory; a hardlink names a file of the lifecycle (and
    gets that file's layer name); then the rules every tree of a layer obeys
    (:func:`cnbkit.archive.links.check_tree`): no entry under a symlink or a file, hardlinks to
    regular files, every symlink inside the lifecycle directory at every step.

    Raises:
        ArchiveError: the first entry that breaks a rule, named as the archive wrote it.
    """
    top = placed[LAYER_DIR]
    if top.kind != "dir":
        what = f"a symlink to {top.linkname!r}" if top.kind == "symlink" else f"a {top.kind}"
        raise ArchiveError(
            f"{source}: the lifecycle directory {top.original!r} is {what}, not a directory; "
            "refusing the archive"
        )
    prefix = directory + "/"
    for item in placed.values():
        if item.kind == "hardlink":
            if not item.linkname.startswith(prefix):
                raise ArchiveError(
                    f"{source}: hardlink {item.original!r} -> {item.linkname!r} leaves the "
                    "lifecycle directory; refusing the archive"
                )
            item.linkname = f"{LAYER_DIR}/{item.linkname[len(prefix) :]}"
    return check_tree(placed, LAYER_DIR, source, "lifecycle")


def _resolves_to_file(placed: dict[str, Item], links: dict[str, str], name: str) -> bool:
    item = placed.get(name)
    if item is not None and item.kind == "symlink":
        item = placed.get(links[name])
    return item is not None and item.kind in ("file", "hardlink")


def check_binaries(
    placed: dict[str, Item], links: dict[str, str], directory: str, platform: Platform, source: str
) -> tuple[str, ...]:
    """Check that every phase binary is there and leads to a regular file; return their names.

    Args:
        placed: the lifecycle's entries by layer name.
        links: where each symlink leads (:func:`check_links`).
        directory: the archive's lifecycle directory, for messages.
        platform: the target platform (``windows``: ``.exe`` phases).
        source: the artifact's name, for messages.

    Raises:
        LifecycleError: a phase is missing, or is not a file (nor a link to one).
    """
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
        if not _resolves_to_file(placed, links, name):
            item = placed[name]
            detail = (
                f"a symlink to {item.linkname!r}, which leads to no file in the lifecycle"
                if item.kind == "symlink"
                else f"a {item.kind}"
            )
            raise LifecycleError(f"{where}: phase {phase + suffix!r} is {detail}")
        found.append(phase + suffix)
    return tuple(sorted(found))
