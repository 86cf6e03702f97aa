"""The shared cache: content-addressed blobs, typed records, locks and its upkeep."""

from __future__ import annotations

from .locks import Releasable
from .store import LAYOUT, Cache, default_cache_dir

__all__ = ["LAYOUT", "Cache", "Releasable", "default_cache_dir"]
