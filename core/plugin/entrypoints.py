"""Finding the ``cnbkit`` entry points without :mod:`importlib.metadata` on the common path.

``importlib.metadata`` costs about 30 ms to import (it pulls in the email parser) before it
reads a single file, and it would parse every distribution's metadata to name it. A warm
resolve must start fast, so this module reads what it needs itself: the ``entry_points.txt``
of each ``*.dist-info``/``*.egg-info`` directory on ``sys.path``, and the ``Name`` and
``Version`` headers of only the distributions that have a ``cnbkit`` entry point. Any
``sys.path`` entry that is not a plain directory (a zip) sends the whole scan to
``importlib.metadata`` instead, so nothing is missed.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["EntryPoint", "find_entry_points"]


@dataclass(frozen=True)
class EntryPoint:
    """One entry point: its name, ``module[:attr]`` value and the distribution that has it."""

    name: str
    value: str
    distribution: str
    version: str

    def load(self) -> Any:
        """Import the module (and attribute) the entry point names."""
        module, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in attr.strip().split(".") if attr.strip() else []:
            obj = getattr(obj, part)
        return obj


def _section(text: str, group: str) -> list[tuple[str, str]]:
    found, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            inside = line == f"[{group}]"
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            found.append((name.strip(), value.strip()))
    return found


def _headers(info: str) -> tuple[str, str]:
    name = version = ""
    for candidate in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(info, candidate), encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    if not line.strip():
                        break  # the headers end at the first blank line
                    key, _, value = line.partition(":")
                    if key == "Name":
                        name = value.strip()
                    elif key == "Version":
                        version = value.strip()
        except OSError:
            continue
        break
    return name, version


def _scan(group: str) -> list[EntryPoint] | None:
    found: list[EntryPoint] = []
    for entry in dict.fromkeys(os.path.abspath(p or ".") for p in sys.path):
        if not os.path.isdir(entry):
            if os.path.exists(entry):
                return None  # a zip on sys.path: let importlib.metadata read it
            continue
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            info = os.path.join(entry, name)
            try:
                with open(os.path.join(info, "entry_points.txt"), encoding="utf-8") as fh:
                    points = _section(fh.read(), group)
            except OSError:
                continue
            if points:
                dist, version = _headers(info)
                found.extend(EntryPoint(n, v, dist, version) for n, v in points)
    return found


def _from_metadata(group: str) -> list[EntryPoint]:
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        name = (dist.metadata["Name"] if dist is not None else "") or ""
        found.append(EntryPoint(ep.name, ep.value, name, dist.version if dist is not None else ""))
    return found


def find_entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group`` on ``sys.path``, in ``sys.path`` order."""
    scanned = _scan(group)
    return scanned if scanned is not None else _from_metadata(group)
