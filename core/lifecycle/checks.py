"""The lifecycle's own rules: links stay inside it, and every phase binary is there and is a file."""

from __future__ import annotations

from ..archive.tarreader import link_target
from ..errors import ArchiveError, LifecycleError
from ..oci.platform import Platform
from .model import OPTIONAL_PHASES, PHASES
from .placement import LAYER_DIR, Item, under

__all__ = ["check_binaries", "check_links"]

_MAX_LINK_HOPS = 16


def check_links(placed: dict[str, Item], directory: str, source: str) -> None:
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
        if item.kind == "symlink" and not under(link_target(name, item.linkname), LAYER_DIR):
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


def check_binaries(
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
