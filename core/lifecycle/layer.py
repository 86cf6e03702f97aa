"""Writing the normalised lifecycle layer once, while the archive streams past.

Page-cache writes are what a resolve costs most here (DESIGN.md section 10: about 0.5 s per
300 MB on this machine), so the layer is written exactly once in the common case: entries go
straight to the output, renamed to ``cnb/lifecycle/...``, while the archive is read. That is
only right when the archive lists the lifecycle directory in sorted order with nothing
surprising; the builder checks this as it goes and, when the guess fails (unsorted entries, a
second candidate directory, the image shape after all), rewrites the layer in sorted order
from the bytes already written plus a side spool. Both paths give the same bytes.

A background thread hashes and writes, so that the page-cache copy overlaps with inflating.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..archive.streams import CHUNK
from ..archive.tarreader import TarEntry
from ..archive.tarwrite import END_MARKER, padding, tar_header
from ..errors import ArchiveError

__all__ = ["LAYER_DIR", "Item", "LayerSink", "SpeculativeLayer", "write_sorted"]

LAYER_DIR = "cnb/lifecycle"
_QUEUE_CHUNKS = 64


@dataclass
class Item:
    """What the layer needs to know of one archive entry (never its data: that is on disk).

    Attributes:
        where: ``out`` (data already in the layer file) or ``side`` (in the side spool).
        offset: where the data starts in that file.
    """

    kind: str
    mode: int
    original: str
    size: int = 0
    linkname: str = ""
    where: str = ""
    offset: int = -1


class LayerSink:
    """A file written and hashed on a background thread.

    Args:
        path: the file to create (it must not exist).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "xb")  # noqa: SIM115 - closed by close/abort
        self._hash = hashlib.sha256()
        self.offset = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cnbkit-layer-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._hash.update(data)
                    self._file.write(data)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = exc

    def write(self, data: bytes) -> None:
        """Queue ``data`` (it is hashed and written in order)."""
        if self._error is not None:
            raise self._failed()
        self._queue.put(data)
        self.offset += len(data)

    def _failed(self) -> ArchiveError:
        return ArchiveError(f"cannot write {self.path}: {self._error}")

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._file.close()

    def close(self) -> tuple[str, int]:
        """Finish writing; return the ``sha256:`` digest and size of the file."""
        self._stop()
        if self._error is not None:
            raise self._failed()
        return f"sha256:{self._hash.hexdigest()}", self.offset

    def abort(self) -> None:
        """Stop and delete the file."""
        self._stop()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _key(name: str) -> list[str]:
    # Sorting by path components puts parents right before their children.
    return name.split("/")


class SpeculativeLayer:
    """Collects the entries that may belong to the lifecycle, writing them as it goes.

    Args:
        sink: where the layer is written.
        side: a spool for the data of entries the speculation did not take.
    """

    def __init__(self, sink: LayerSink, side: BinaryIO) -> None:
        self.sink = sink
        self.side = side
        self.items: dict[str, Item] = {}
        self.directory: str | None = None  # the guess: which directory holds the lifecycle
        self.fast = True
        self._written: set[str] = {"cnb"}
        self._last = _key("cnb")
        sink.write(tar_header("cnb", "dir", 0o755))

    def _installed(self, name: str) -> str:
        assert self.directory is not None
        return LAYER_DIR if name == self.directory else f"{LAYER_DIR}/{name[len(self.directory) + 1 :]}"

    def _try_fast(self, name: str, item: Item, entry: TarEntry) -> bool:
        installed = self._installed(name)
        if installed != LAYER_DIR and LAYER_DIR not in self._written:
            self._emit(LAYER_DIR, "dir", 0o755)  # the archive did not list the directory first
        parent = installed.rpartition("/")[0]
        key = _key(installed)
        if installed in self._written or parent not in self._written or key <= self._last:
            return False
        linkname = item.linkname
        if item.kind == "hardlink" and self.directory and linkname.startswith(self.directory + "/"):
            linkname = self._installed(linkname)
        self.sink.write(tar_header(installed, item.kind, item.mode & 0o777, item.size, linkname))
        item.where, item.offset = "out", self.sink.offset
        self._copy(entry, self.sink.write)
        self.sink.write(padding(item.size))
        self._written.add(installed)
        self._last = key
        return True

    def _emit(self, installed: str, kind: str, mode: int) -> None:
        self.sink.write(tar_header(installed, kind, mode))
        self._written.add(installed)
        self._last = _key(installed)

    @staticmethod
    def _copy(entry: TarEntry, write: Any) -> None:
        for chunk in entry.chunks():
            write(chunk)

    def add(self, entry: TarEntry) -> None:
        """Take one archive entry that may belong to the lifecycle."""
        name = entry.name
        directory = (
            LAYER_DIR if name == LAYER_DIR or name.startswith(LAYER_DIR + "/") else name.split("/", 1)[0]
        )
        item = Item(entry.kind, entry.mode, entry.original, entry.size, entry.linkname)
        if name in self.items:
            self.fast = False  # a later entry replaces an earlier one: rewrite in order
        if self.directory is None and (directory != "cnb" or name == "cnb"):
            # cnb/ outside cnb/lifecycle (cnb/buildpacks, ...) says nothing about the shape
            self.directory = directory
        written = self.fast and directory == self.directory and self._try_fast(name, item, entry)
        if not written:
            if directory == self.directory:
                self.fast = False
            if item.kind == "file":
                item.where, item.offset = "side", self.side.tell()
                self._copy(entry, self.side.write)
        self.items[name] = item

    def matches(self, directory: str, placed: dict[str, Item]) -> bool:
        """Whether what was written is exactly the layer for ``directory`` and ``placed``."""
        return self.fast and directory == self.directory and set(placed) | {"cnb"} == self._written

    def finish(self, descriptor: bytes, mode: int) -> tuple[str, int]:
        """Append ``cnb/lifecycle.toml`` and the end marker; return the digest and size."""
        self.sink.write(tar_header("cnb/lifecycle.toml", "file", mode & 0o777, len(descriptor)))
        self.sink.write(descriptor)
        self.sink.write(padding(len(descriptor)))
        self.sink.write(END_MARKER)
        return self.sink.close()


def _chunks_at(fd: int, item: Item) -> Iterator[bytes]:
    done = 0
    while done < item.size:
        chunk = os.pread(fd, min(CHUNK, item.size - done), item.offset + done)
        if not chunk:
            raise ArchiveError(f"entry {item.original!r}: spool ended early")
        done += len(chunk)
        yield chunk


def write_sorted(
    sink: LayerSink,
    items: list[tuple[str, Item]],
    descriptor: bytes,
    fds: dict[str, int],
) -> tuple[str, int]:
    """Write the layer from ``items`` (already sorted) with data from the spools ``fds``."""
    for name, item in items:
        mode = item.mode & 0o777  # setuid, setgid and sticky bits never ride into a builder
        if name == "cnb/lifecycle.toml":
            sink.write(tar_header(name, "file", mode, len(descriptor)))
            sink.write(descriptor)
            sink.write(padding(len(descriptor)))
            continue
        sink.write(tar_header(name, item.kind, mode, item.size, item.linkname))
        if item.kind == "file" and item.size:
            for chunk in _chunks_at(fds[item.where], item):
                sink.write(chunk)
            sink.write(padding(item.size))
    sink.write(END_MARKER)
    return sink.close()
