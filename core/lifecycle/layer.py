"""Writing the normalised lifecycle layer once, while the archive streams past.

Page-cache writes are what a resolve costs most (about 0.5 s per 300 MB on a two-core machine),
so the layer is written exactly once in the common case: entries go straight to the output,
renamed to ``cnb/lifecycle/...``, while the archive is read. That is only right when the
archive lists the lifecycle directory in sorted order with nothing surprising; the layer checks
this as it goes and, when the guess fails (unsorted entries, a second candidate directory, the
image shape after all), :meth:`SpeculativeLayer.finish` writes it again in sorted order from
the bytes already written plus a side spool. Both paths give the same bytes.

A background thread hashes and writes, so that the page-cache copy overlaps with inflating.
The rewrite, after the stream, runs in the foreground through one reusable buffer, and never
renames over an existing file (ext4 then forces the new file to disk first).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..archive.hashing import HashingFile
from ..archive.tarreader import TarEntry
from ..archive.tarwrite import END_MARKER, padding, tar_header
from ..errors import ArchiveError, WriteError
from .placement import LAYER_DIR, DataRef, Item, installed_name, layer_items, sort_key, under

__all__ = ["MAX_ENTRIES", "SpeculativeLayer"]

_COPY_BUFFER = 1024 * 1024  # the rewrite's reads: big, into one buffer
# What may belong to the lifecycle is kept, one small record an entry (the sorted rewrite and
# the checks need every name): a lifecycle holds a few dozen entries, an image's whole
# filesystem tens of thousands; past this, memory would grow with a hostile archive.
MAX_ENTRIES = 50_000


class SpeculativeLayer:
    """Collects the entries that may belong to the lifecycle, writing them as it goes.

    Args:
        out: the layer file to create (a temp path; the caller renames it into place).
        side: the side spool's path (deleted by :meth:`close`).

    Raises:
        WriteError: a file cannot be created.
    """

    def __init__(self, out: Path, side: Path) -> None:
        self.path = out
        self._side_path = side
        self._sink = HashingFile(out, background=True)
        try:
            self._side: BinaryIO = open(side, "w+b")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            self._sink.abort()
            raise WriteError.from_os(side, exc) from None
        self.items: dict[str, Item] = {}
        self.directory: str | None = None  # the guess: which directory holds the lifecycle
        self.fast = True
        self._written: set[str] = {"cnb"}
        self._last = sort_key("cnb")
        self._sink.write(tar_header("cnb", "dir", 0o755))

    def _try_fast(self, name: str, item: Item, entry: TarEntry) -> bool:
        assert self.directory is not None
        installed = installed_name(name, self.directory)
        if installed != LAYER_DIR and LAYER_DIR not in self._written:
            self._emit(LAYER_DIR, "dir", 0o755)  # the archive did not list the directory first
        parent = installed.rpartition("/")[0]
        key = sort_key(installed)
        if installed in self._written or parent not in self._written or key <= self._last:
            return False
        linkname = item.linkname
        if item.kind == "hardlink":
            linkname = installed_name(linkname, self.directory) if under(linkname, self.directory) else ""
            if linkname not in self._written:  # tar links only to a file already written
                return False
        self._sink.write(tar_header(installed, item.kind, item.mode & 0o777, item.size, linkname))
        item.data = DataRef(True, self._sink.size)
        for chunk in entry.chunks():
            self._sink.write(chunk)
        self._sink.write(padding(item.size))
        self._written.add(installed)
        self._last = key
        return True

    def _emit(self, installed: str, kind: str, mode: int) -> None:
        self._sink.write(tar_header(installed, kind, mode))
        self._written.add(installed)
        self._last = sort_key(installed)

    def add(self, entry: TarEntry) -> None:
        """Take one archive entry that may belong to the lifecycle."""
        name = entry.name
        under_layer_dir = name == LAYER_DIR or name.startswith(LAYER_DIR + "/")
        directory = LAYER_DIR if under_layer_dir else name.split("/", 1)[0]
        # the name as written is most often the name itself: one string kept, not two
        original = name if entry.original == name else entry.original
        item = Item(entry.kind, entry.mode, original, entry.size, entry.linkname)
        if name in self.items:
            self.fast = False  # a later entry replaces an earlier one: rewrite in order
        elif len(self.items) >= MAX_ENTRIES:
            raise ArchiveError(
                f"{entry.source}: more than {MAX_ENTRIES:,} entries outside the archive root (a "
                "lifecycle holds a few dozen); refusing the archive"
            )
        if self.directory is None and (directory != "cnb" or name == "cnb"):
            # cnb/ outside cnb/lifecycle (cnb/buildpacks, ...) says nothing about the shape
            self.directory = directory
        written = self.fast and directory == self.directory and self._try_fast(name, item, entry)
        if not written:
            if directory == self.directory:
                self.fast = False
            if item.kind == "file":
                item.data = DataRef(False, self._side.tell())
                try:
                    for chunk in entry.chunks():
                        self._side.write(chunk)
                except OSError as exc:
                    raise WriteError.from_os(self._side_path, exc) from None
        self.items[name] = item

    def finish(
        self, directory: str, placed: dict[str, Item], descriptor: bytes, mode: int
    ) -> tuple[str, int]:
        """Complete the layer for the lifecycle in ``directory``; return its digest and size.

        Args:
            directory: the archive directory that holds the lifecycle.
            placed: its entries by their name in the layer (:func:`placement.place`).
            descriptor: the ``lifecycle.toml`` bytes, written as ``cnb/lifecycle.toml``.
            mode: the descriptor's mode.
        """
        if self.fast and directory == self.directory and set(placed) | {"cnb"} == self._written:
            self._sink.write(tar_header("cnb/lifecycle.toml", "file", mode & 0o777, len(descriptor)))
            self._sink.write(descriptor)
            self._sink.write(padding(len(descriptor)))
            self._sink.write(END_MARKER)
            return self._sink.finish()
        return self._rewrite(placed, descriptor, mode)

    def _rewrite(self, placed: dict[str, Item], descriptor: bytes, mode: int) -> tuple[str, int]:
        """Write the layer again in sorted order, from what was written plus the side spool.

        In the foreground, through one reusable buffer (the stream has ended: there is nothing
        left to overlap with), and the sorted copy takes the speculative file's name only after
        that file is unlinked: on ext4 a rename *over* a file forces the new file's writeback
        (auto_da_alloc), a quarter of a second per 300 MB or much more on a busy disk.
        """
        self._sink.finish()
        self._side.flush()
        sorted_path = self.path.with_name(self.path.name + ".sorted")
        sink = HashingFile(sorted_path)
        buffer = bytearray(_COPY_BUFFER)
        try:
            with open(self.path, "rb") as written:
                fds = {True: written.fileno(), False: self._side.fileno()}
                for name, item in layer_items(placed, descriptor, mode):
                    self._write_item(sink, name, item, descriptor, fds, buffer)
            sink.write(END_MARKER)
            result = sink.finish()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            os.rename(sorted_path, self.path)
        except OSError as exc:
            sink.abort()
            raise WriteError.from_os(self.path, exc) from None
        except BaseException:
            sink.abort()
            raise
        return result

    @staticmethod
    def _write_item(
        sink: HashingFile, name: str, item: Item, descriptor: bytes, fds: dict[bool, int], buffer: bytearray
    ) -> None:
        mode = item.mode & 0o777  # setuid, setgid and sticky bits never ride into a builder
        if name == "cnb/lifecycle.toml":
            sink.write(tar_header(name, "file", mode, len(descriptor)))
            sink.write(descriptor)
            sink.write(padding(len(descriptor)))
            return
        sink.write(tar_header(name, item.kind, mode, item.size, item.linkname))
        if item.kind == "file" and item.size:
            assert item.data is not None
            for view in _views_at(fds[item.data.in_layer], item.data.offset, item, buffer):
                sink.write(view)
            sink.write(padding(item.size))

    def close(self) -> None:
        """Remove the side spool (the layer file stays, for the caller to rename or drop)."""
        self._side.close()
        with contextlib.suppress(FileNotFoundError):
            self._side_path.unlink()

    def abort(self) -> None:
        """Stop writing and delete the layer and the spool."""
        self._sink.abort()
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.with_name(self.path.name + ".sorted").unlink()


def _views_at(fd: int, offset: int, item: Item, buffer: bytearray) -> Iterator[memoryview]:
    """The entry's data, read into ``buffer`` (one reusable MiB: no allocation per chunk)."""
    view = memoryview(buffer)
    done = 0
    while done < item.size:
        want = min(len(buffer), item.size - done)
        got = os.preadv(fd, [view[:want]], offset + done)
        if not got:
            raise ArchiveError(f"entry {item.original!r}: spool ended early")
        done += got
        yield view[:got]
