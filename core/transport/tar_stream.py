"""A tar archive made as it is sent: headers, then each blob's bytes as they are read.

``docker save`` archives (for ``docker load`` and ``docker-archive:``) and ``oci-archive:``
files are written this way: never whole in memory, each layer verified as it streams.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator

from ..archive.streams import CHUNK, close_stream
from ..oci.image import Layer

__all__ = ["END", "tar_dir", "tar_file", "tar_layer"]

END = b"\0" * 1024  # the end-of-archive marker


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % 512)


def tar_dir(name: str) -> bytes:
    """The header of directory ``name`` (``blobs/``)."""
    return _header(name, 0, tarfile.DIRTYPE)


def tar_file(name: str, data: bytes) -> bytes:
    """A small file, whole: header, data, padding."""
    return _header(name, len(data)) + data + _padding(len(data))


def tar_layer(name: str, layer: Layer) -> Iterator[bytes]:
    """A layer as file ``name``: its blob streamed as stored, verified against its digest (the
    stream raises at its end if the bytes are not the digest's)."""
    yield _header(name, layer.size)
    stream = layer.open()
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    finally:
        close_stream(stream)
    yield _padding(layer.size)
