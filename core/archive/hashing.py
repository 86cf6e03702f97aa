"""Hashing while bytes pass: a reader that checks a digest at the end of its stream, and a file
writer that hashes what it writes and is kept only when committed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import DigestMismatchError, WriteError
from .streams import Readable, Wrapper

__all__ = ["HashingFile", "HashingReader", "VerifiedStream"]


class HashingReader(Wrapper):
    """Pass a stream through while hashing it; check or record its digest at the end.

    The end is the end of the stream, or, when the length is known (a descriptor's size),
    the read that delivers the last byte: a consumer that copies exactly ``length`` bytes
    (``tarfile.addfile``) never asks for more, and must not get tampered bytes without an
    error. :meth:`close` checks a fully read stream that was not checked yet.

    Args:
        raw: the stream to read.
        expected: ``sha256:<hex>`` the content must have, or ``None`` to only record it.
        source: what to name in a mismatch error (already redacted).
        on_complete: called with the digest and size once the stream was read to its end and
            matched; never called for a stream that was not read to the end.
        length: the size the content must have, when known: it is checked on delivering the
            last byte (the wrapped stream refuses more bytes than that).
    """

    def __init__(
        self,
        raw: Readable,
        *,
        expected: str | None = None,
        source: str = "stream",
        on_complete: Callable[[str, int], None] | None = None,
        length: int | None = None,
    ) -> None:
        super().__init__(raw)
        self._hash = hashlib.sha256()
        self._expected = expected
        self._source = source
        self._on_complete = on_complete
        self._length = length
        self.size = 0
        self.digest: str | None = None
        self._checked = False  # the end was reached and checked (whatever the verdict)
        self._trusted: Callable[[], tuple[str, int]] | None = None

    def trust(self, result: Callable[[], tuple[str, int]]) -> None:
        """Take the digest and size from ``result()`` at the end instead of hashing."""
        self._trusted = result

    @property
    def producer_hashed(self) -> bool:
        """Whether the producer hashes (and verifies) the bytes, on its own thread: then a
        read-ahead thread over this stream would only add a hand-over per chunk."""
        return self._trusted is not None

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes; at the end (or the last byte), verify and record the digest.
        ``read(0)`` is ``b""`` and says nothing about the end (it is not the end of the stream)."""
        if size == 0:
            return b""
        data = self._raw.read(size)
        if data:
            if self._trusted is None:
                self._hash.update(data)
            self.size += len(data)
            if self.size == self._length and not self._checked:
                self._verify()  # the last byte: the consumer may never ask for more
        elif not self._checked:
            self._verify()
        return data

    def _verify(self) -> None:
        self._checked = True
        if self._trusted is not None:
            if self.size == self._length and self._raw.read(1):
                # Not reached in practice: the producer refuses bytes beyond the length. Reading
                # its end waits for its verdict (it verifies after the last chunk it hands over).
                raise DigestMismatchError(f"{self._source}: content is longer than {self._length} bytes")
            self.digest, self.size = self._trusted()
        else:
            self.digest = f"sha256:{self._hash.hexdigest()}"
        if self._expected is not None and self.digest != self._expected:
            raise DigestMismatchError(
                f"{self._source}: content has digest {self.digest}, expected {self._expected}"
            )
        if self._on_complete is not None:
            self._on_complete(self.digest, self.size)

    def close(self) -> None:
        """Close the stream; one read to its length but not checked yet is checked first."""
        try:
            if not self._checked and self._length is not None and self.size == self._length:
                self._verify()
        finally:
            super().close()


class VerifiedStream(Wrapper):
    """A stream whose producer hashes and verifies every byte before it reports the end.

    A download into the cache already hashes the body (on its own thread) and checks it before
    committing; wrapping its stream in this class tells :meth:`cnbkit.Blob.open` not to hash
    the same bytes a second time on the reading thread.

    Args:
        raw: the stream.
        result: called once at the end of the stream; returns the digest and size that the
            producer verified.
    """

    def __init__(self, raw: Readable, result: Callable[[], tuple[str, int]]) -> None:
        super().__init__(raw)
        self._result = result

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes (the producer raises at the end if they were wrong)."""
        return self._raw.read(size)

    def checked(
        self,
        *,
        expected: str | None,
        source: str,
        on_complete: Callable[[str, int], None],
        length: int | None = None,
    ) -> HashingReader:
        """A reader that, at the end (or its ``length``), compares the producer's digest with
        ``expected``."""
        reader = HashingReader(
            self._raw, expected=expected, source=source, on_complete=on_complete, length=length
        )
        reader.trust(self._result)
        return reader


_QUEUE_CHUNKS = 64  # at most 8 MiB queued for the writer thread
_ABORT_WAIT = 1.0  # seconds abort() waits for the writer thread (it needs milliseconds)


class HashingFile:
    """A new file, hashed as it is written; it is kept only by :meth:`commit`.

    The one way cnbkit writes a verified file (a cache blob, a lifecycle layer): write, then
    :meth:`commit` renames it into place, or :meth:`abort` (also on leaving a ``with`` block
    without a commit) deletes it. With ``background``, hashing and writing run on a thread so
    that they overlap with whatever produces the bytes (inflating an archive).

    Args:
        path: the file to create; it must not exist (normally a temp path beside the target).
        background: hash and write on a thread.
        expected: the ``sha256:`` digest the content must have to be committed.
        destination: where :meth:`commit` puts the file by default, from its digest (a
            content-addressed store).

    Raises:
        WriteError: the file cannot be created (the message names it and the OS error).
    """

    def __init__(
        self,
        path: Path,
        *,
        background: bool = False,
        expected: str | None = None,
        destination: Callable[[str], Path] | None = None,
    ) -> None:
        self.path = path
        self._expected = expected
        self._destination = destination
        try:
            self._file: BinaryIO = open(path, "xb")  # noqa: SIM115 - closed by finish/abort
        except OSError as exc:
            raise WriteError.from_os(path, exc) from None
        self._hash = hashlib.sha256()
        self.size = 0
        self._error: OSError | None = None
        self._aborted = False
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=_QUEUE_CHUNKS)
            self._thread = threading.Thread(target=self._run, name="cnbkit-writer", daemon=True)
            self._thread.start()

    def _put(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self._file.write(data)

    def _run(self) -> None:
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            if self._error is not None or self._aborted:
                continue  # nothing more is kept: just drain to the end marker
            try:
                self._put(data)
            except OSError as exc:  # re-raised in the caller's thread
                self._error = exc
            except ValueError:  # abort() closed the file under this write: nothing to keep
                if not self._aborted:
                    raise

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` (hashed and written in order).

        A ``memoryview`` (of a reused buffer) only for a foreground file: a background one
        queues what it is given.

        Raises:
            WriteError: the disk is full, the file too large, the filesystem read-only ...
        """
        if self._error is not None:
            raise WriteError.from_os(self.path, self._error)
        if self._queue is not None:
            assert isinstance(data, bytes), "a background file queues bytes, never a view"
            self._queue.put(data)
        else:
            try:
                self._put(data)
            except OSError as exc:
                raise WriteError.from_os(self.path, exc) from None
        self.size += len(data)

    def truncate(self) -> None:
        """Start over, empty (a server ignored a range request and sends the whole body)."""
        assert self._queue is None, "only a foreground file can start over"
        self._file.seek(0)
        self._file.truncate()
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of what was written so far (complete after :meth:`finish`)."""
        return f"sha256:{self._hash.hexdigest()}"

    def _stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            assert self._queue is not None
            self._queue.put(None)
            self._thread.join()
        try:
            self._file.close()  # flushes the last buffered bytes: a full disk can show here
        except OSError as exc:
            self._error = self._error or exc

    def finish(self) -> tuple[str, int]:
        """Write out everything; return the ``sha256:`` digest and size of the file."""
        self._stop()
        if self._error is not None:
            raise WriteError.from_os(self.path, self._error)
        return self.digest, self.size

    def commit(self, target: Path | None = None) -> Path:
        """Finish, check the expected digest (when given), and rename the file into place.

        Args:
            target: where the file goes; by default the ``destination`` for its digest.

        Raises:
            DigestMismatchError: the content is not what was expected; nothing is kept.
            WriteError: the rename failed.
        """
        try:
            digest, _ = self.finish()
            if self._expected is not None and digest != self._expected:
                raise DigestMismatchError(f"content has digest {digest}, expected {self._expected}")
            if target is None:
                assert self._destination is not None, "commit() needs a target or a destination"
                target = self._destination(digest)
            try:
                os.replace(self.path, target)
            except OSError as exc:
                raise WriteError.from_os(target, exc) from None
        except BaseException:
            self.abort()
            raise
        return target

    def abort(self) -> None:
        """Stop and delete the file, without writing out what is still queued.

        Every wait is bounded: an abort runs on the way out of Ctrl-C or SIGTERM, which may
        have struck inside the queue's own locking, and it must not hang or wait for megabytes
        of writes to a file about to be deleted.
        """
        self._aborted = True
        if self._thread is not None and self._thread.is_alive():
            assert self._queue is not None
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=_ABORT_WAIT)  # the writer drains without writing
            self._thread.join(_ABORT_WAIT)
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path.exists():
            self.abort()
