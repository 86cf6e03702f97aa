"""The layers a builder adds, before compression: each a deterministic tar and a source name.

Every new layer is an uncompressed tar stream made on the fly (:class:`NewLayer`); the
lifecycle layer is ``Lifecycle.layer()`` exactly, so its diff ID is known before a byte is
read and a cached compressed copy is found without reading it at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..archive.streams import CHUNK, Readable, close_stream
from ..archive.tarwrite import END_MARKER, NORMALIZED_MTIME, padding, tar_header

__all__ = ["NewLayer", "directories_layer", "files_layer", "lifecycle_layer", "stream_chunks"]


@dataclass(frozen=True)
class NewLayer:
    """A layer the builder adds.

    Attributes:
        source: what it holds and where from, for ``--json`` and messages.
        chunks: makes the uncompressed tar, from the start, each time it is called.
        diff_id: the tar's ``sha256:`` when known in advance (the lifecycle's), else ``None``.
    """

    source: str
    chunks: Callable[[], Iterator[bytes]]
    diff_id: str | None = None


def stream_chunks(open_stream: Callable[[], Readable]) -> Iterator[bytes]:
    """The chunks of a stream opened now, closed at the end (or when abandoned)."""
    stream = open_stream()
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    finally:
        close_stream(stream)


def _owned_dir(name: str, uid: int, gid: int) -> bytes:
    if uid == 0 and gid == 0:
        return tar_header(name, "dir", 0o755)
    import tarfile  # tar_header writes root-owned entries only; these two belong to the CNB user

    info = tarfile.TarInfo(name + "/")
    info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, gid, NORMALIZED_MTIME
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def directories_layer(uid: int, gid: int) -> NewLayer:
    """pack's first layer: ``/workspace`` and ``/layers`` owned by the build image's
    ``CNB_USER_ID:CNB_GROUP_ID``, the root-owned ``/cnb`` tree, ``/platform/env``, and the
    ``/lifecycle -> /cnb/lifecycle`` compat symlink (pack puts that in its lifecycle layer;
    here the lifecycle layer is ``Lifecycle.layer()`` byte for byte, so it lives here)."""

    def chunks() -> Iterator[bytes]:
        yield _owned_dir("workspace", uid, gid)
        yield _owned_dir("layers", uid, gid)
        for name in (
            "cnb",
            "cnb/buildpacks",
            "cnb/extensions",
            "platform",
            "platform/env",
            "cnb/build-config",
            "cnb/build-config/env",
        ):
            yield tar_header(name, "dir", 0o755)
        yield tar_header("lifecycle", "symlink", 0o644, linkname="/cnb/lifecycle")
        yield END_MARKER

    return NewLayer(f"directories (/workspace and /layers owned by {uid}:{gid}, /cnb, /platform)", chunks)


def files_layer(source: str, files: Sequence[tuple[str, bytes]]) -> NewLayer:
    """A layer of small root-owned 0644 files (``cnb/order.toml``, build-config env, ...)."""

    def chunks() -> Iterator[bytes]:
        for name, data in files:
            yield tar_header(name, "file", 0o644, len(data))
            yield data
            yield padding(len(data))
        yield END_MARKER

    return NewLayer(source, chunks)


def lifecycle_layer(source: str, diff_id: str, open_layer: Callable[[], Readable]) -> NewLayer:
    """The lifecycle layer: exactly what ``open_layer`` (``Lifecycle.layer``) streams."""
    return NewLayer(source, lambda: stream_chunks(open_layer), diff_id)
