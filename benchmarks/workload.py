"""The benchmark inputs: lifecycle ``.tgz`` files made by ``tests.lifecycles.big_lifecycle``.

They live in ``benchmarks/work/`` (git-ignored) and are reused across runs: a sidecar JSON
records what was asked for, a fingerprint of the generator (``tests/lifecycles.py``) and the
file's resulting size, and a file is made again when any of them no longer agrees.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .harness import MB, REPO, WORK_DIR

__all__ = ["Input", "ensure_input"]


@dataclass(frozen=True)
class Input:
    """One generated lifecycle archive.

    Attributes:
        path: the ``.tgz``.
        size_mb: the bytes of binaries inside, in decimal MB (``big_lifecycle``'s ``size``).
        sorted_entries: entries in the order of lifecycle's own packager (cnbkit's fast path).
        tgz_bytes: the archive's size on disk.
    """

    path: Path
    size_mb: int
    sorted_entries: bool
    tgz_bytes: int

    @property
    def label(self) -> str:
        """``300 MB`` or ``300 MB unsorted``."""
        return f"{self.size_mb} MB" + ("" if self.sorted_entries else " unsorted")

    def record(self) -> dict[str, object]:
        """The fields every benchmark result carries about its input."""
        return {
            "input": self.path.name,
            "label": self.label,
            "size_mb": self.size_mb,
            "sorted_entries": self.sorted_entries,
            "tgz_bytes": self.tgz_bytes,
        }


def _name(size_mb: int, sorted_entries: bool) -> str:
    return f"l{size_mb}" + ("" if sorted_entries else "-unsorted") + ".tgz"


def ensure_input(
    size_mb: int, sorted_entries: bool = True, *, log: Callable[[str], None], work: Path = WORK_DIR
) -> Input:
    """Return the input for ``size_mb`` (and entry order), generating it if missing or stale."""
    path = work / _name(size_mb, sorted_entries)
    sidecar = path.with_suffix(".json")
    generator = REPO / "tests" / "lifecycles.py"
    wanted = {
        "size_bytes": size_mb * MB,
        "sorted_entries": sorted_entries,
        "generator_sha256": hashlib.sha256(generator.read_bytes()).hexdigest(),
    }
    try:
        recorded = json.loads(sidecar.read_text())
        if {k: recorded.get(k) for k in wanted} == wanted and path.stat().st_size == recorded["tgz_bytes"]:
            return Input(path, size_mb, sorted_entries, recorded["tgz_bytes"])
    except (OSError, ValueError, KeyError):
        pass
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.lifecycles import big_lifecycle

    work.mkdir(parents=True, exist_ok=True)
    log(f"  generating {path.name} ({size_mb} MB of binaries, with tests.lifecycles.big_lifecycle) ...")
    start = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    big_lifecycle(tmp, size_mb * MB, sorted_entries=sorted_entries)
    tmp.replace(path)
    tgz_bytes = path.stat().st_size
    sidecar.write_text(json.dumps({**wanted, "tgz_bytes": tgz_bytes}, indent=1) + "\n")
    log(f"  generated {path.name}: {tgz_bytes} bytes in {time.perf_counter() - start:.1f} s")
    return Input(path, size_mb, sorted_entries, tgz_bytes)
