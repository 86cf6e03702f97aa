"""Compressing the builder's new layers once: gzip on a thread, cached by diff ID.

A layer's tar is made on a producer thread that also hashes it (the diff ID) and gzips it
(``isal`` at level 1 where it is installed: several times faster than zlib's level 6 for a few
percent more bytes; zlib level 1 otherwise); the caller's thread and the cache writer's thread
hash and write the compressed bytes. isal, zlib and hashlib release the GIL, so on two cores
the stages overlap. The compressed blob lands in the shared cache and the index remembers
``layer-gzip:<diff ID>`` -> blob, so a second builder with the same layer compresses nothing;
a layer whose diff ID is known in advance (the lifecycle's) is not even read.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..archive.streams import CHUNK
from ..archive.threads import ThreadedReader
from ..cache import Cache
from ..cache.records import LayerGzip
from ..errors import ArchiveError
from ..progress import Progress
from .layers import NewLayer

__all__ = ["GZIP_LEVEL", "CompressedLayer", "LayerStore"]

_gzip_lib: ModuleType
try:
    from isal import isal_zlib

    _gzip_lib = isal_zlib
    GZIP_LEVEL = 1  # isal's levels run 0-3; 1 is its fast, still well-compressing level
except ImportError:  # pragma: no cover - only where isal has no wheel
    _gzip_lib = zlib
    GZIP_LEVEL = 1


@dataclass(frozen=True)
class CompressedLayer:
    """A new layer, gzipped, in the cache.

    Attributes:
        diff_id: ``sha256:`` of the uncompressed tar.
        digest: ``sha256:`` of the gzip blob.
        size: the blob's size.
        path: the blob's file in the cache.
        source: what the layer holds, from :class:`NewLayer`.
        reused: ``True`` when the cache had it (nothing was compressed).
    """

    diff_id: str
    digest: str
    size: int
    path: Path
    source: str
    reused: bool


# The library and level are part of a gzip record's key, as they decide the bytes.
_COMPRESSOR = f"{_gzip_lib.__name__}-{GZIP_LEVEL}"


def _key(diff_id: str) -> str:
    return f"{_COMPRESSOR}:{diff_id}"


class LayerStore:
    """Compressed layers in the shared cache.

    Args:
        cache: the shared cache.
        progress: ``progress(description, total)`` makes a reporter (``update(n)``, ``close()``)
            for each layer compressed, told the uncompressed bytes as they pass
            (``context.progress``: a bar on a terminal, else nothing).
    """

    def __init__(self, cache: Cache, progress: Callable[[str, int | None], Progress] | None = None) -> None:
        self._cache = cache
        self._progress = progress

    def _cached(self, diff_id: str, layer: NewLayer) -> CompressedLayer | None:
        entry = self._cache.recall(LayerGzip, _key(diff_id))
        if entry is None:
            return None
        path = self._cache.blob_path(entry.digest)
        return CompressedLayer(diff_id, entry.digest, entry.size, path, layer.source, True)

    def _diff_id(self, layer: NewLayer) -> str:
        hasher = hashlib.sha256()
        for chunk in layer.chunks():
            hasher.update(chunk)
        return f"sha256:{hasher.hexdigest()}"

    def get(self, layer: NewLayer) -> CompressedLayer:
        """The compressed layer, from the cache or made now.

        A layer without a known diff ID is hashed first (a cheap pass: hashing runs at about
        1 GB/s, gzip at a fraction of that), so that the cache is asked before anything is
        compressed.

        Raises:
            ArchiveError: the layer's tar did not have the diff ID it was announced with.
            WriteError: the cache cannot be written.
        """
        diff_id = layer.diff_id or self._diff_id(layer)
        found = self._cached(diff_id, layer)
        if found is not None:
            return found
        tar_hash = hashlib.sha256()
        bar = self._progress(f"gzip {layer.source[:40]}", None) if self._progress is not None else None

        def produce(put: Callable[[bytes], None]) -> None:
            deflater = _gzip_lib.compressobj(GZIP_LEVEL, _gzip_lib.DEFLATED, 31)
            for chunk in layer.chunks():
                tar_hash.update(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                if out := deflater.compress(chunk):
                    put(out)
            put(deflater.flush())

        reader = ThreadedReader(produce, name="cnbkit-gzip", depth=16)
        writer = self._cache.writer()
        try:
            with writer:
                while chunk := reader.read(CHUNK):
                    writer.write(chunk)
                actual = f"sha256:{tar_hash.hexdigest()}"
                if actual != diff_id:
                    raise ArchiveError(f"{layer.source}: the layer changed while it was compressed")
                path = writer.commit()
        finally:
            reader.close()
            if bar is not None:
                bar.close()
        digest = f"sha256:{path.name}"
        blob_size = path.stat().st_size
        self._cache.remember(
            LayerGzip(_key(diff_id), compressor=_COMPRESSOR, diff_id=diff_id, digest=digest, size=blob_size)
        )
        return CompressedLayer(diff_id, digest, blob_size, path, layer.source, False)
