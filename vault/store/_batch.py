"""Writing several new documents together (``Vault.seal_many``,
docs/DESIGN.md §7).

A :class:`DocumentBatch` is used as a context manager around the writing of
several documents; ``write(doc_id, version)`` yields a stream, like
:meth:`Backend.write_document`. The promise is the same as writing them one
by one: when the ``with`` block ends without error, every document written
in it is complete, durable and in place; a document never appears partly
written. What may differ is *when* each becomes durable within the block.

:class:`DocumentBatch` itself writes one document after the other, so any
backend supports batches. :class:`FolderBatch` is the folder backend's
faster form: a small document is encrypted into memory and then committed
-- temporary file, fsync, exclusive link, exactly as
:func:`vault.store._atomic.atomic_writer` does -- by a pool of threads,
while the caller encrypts the next one. ``fsync`` releases the GIL, and the
file system commits concurrent fsyncs in one journal transaction, so the
disk's latency is paid a few times per batch rather than once per document.
The directory is fsynced once, when the block ends. :meth:`FolderBatch.committer`
lets forked sealing workers (:mod:`vault._ops.seal_workers`) commit the
documents they sealed the same way, each in its own process.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from vault import _atomic

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import Future, ThreadPoolExecutor

    from vault.store.base import Backend

__all__ = ["DocumentBatch", "FolderBatch"]

_IN_MEMORY = 1 << 20  # larger documents stream straight to their file
_IN_FLIGHT = 32  # documents written to memory but not yet committed
_THREADS = 16  # concurrent fsyncs: enough for the journal to group them


class DocumentBatch:
    """New documents written one after the other (any backend)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def write(
        self, doc_id: str, version: str, size_hint: int | None = None
    ) -> contextlib.AbstractContextManager[BinaryIO]:
        """A stream for the new document ``doc_id`` (about ``size_hint``
        bytes when known); it is in place by the end of the batch."""
        return self.backend.write_document(doc_id, version)

    def committer(self) -> Callable[[str, str, bytes], None] | None:
        """A function that a process forked from this one may call to put
        a new document (``doc_id``, ``version``, its bytes) in place,
        complete and durable but for the directory entry, which the batch
        makes durable when it ends. None: only this process can write (a
        database connection is not shared with a child)."""
        return None

    def __enter__(self) -> DocumentBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class FolderBatch(DocumentBatch):
    """Documents at ``path_of(doc_id)`` (one directory, which checks the
    id): small ones committed by a thread pool, one directory fsync at the
    end. A batch of ``count`` 1 writes its document straight to its file: it
    has nothing to group its fsync with, and holding it in memory would
    only cost memory."""

    def __init__(self, backend: Backend, path_of: Callable[[str, str], str], mode: int,
                 count: int) -> None:
        super().__init__(backend)
        self._alone = count == 1
        self._path_of = path_of
        self._directory = os.path.dirname(path_of("a" * 16, "0" * 8))
        self._mode = mode
        self._slots = threading.BoundedSemaphore(_IN_FLIGHT)
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []
        self._waiting: tuple[str, io.BytesIO] | None = None  # the first one, until a second
        self._committed = False

    @contextlib.contextmanager
    def write(self, doc_id: str, version: str,
              size_hint: int | None = None) -> Iterator[BinaryIO]:
        path = self._path_of(doc_id, version)
        if size_hint is None or size_hint > _IN_MEMORY or self._alone:
            with self.backend.write_document(doc_id, version) as out:
                yield out
            return
        buf = io.BytesIO()
        yield buf
        if self._pool is None and self._waiting is None:
            self._waiting = (path, buf)  # a batch of one needs no thread
            return
        if self._pool is None:
            # imported here: a command sealing one document never loads it
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="vault-commit")
            assert self._waiting is not None
            self._submit(*self._waiting)
            self._waiting = None
        self._submit(path, buf)

    def committer(self) -> Callable[[str, str, bytes], None]:
        self._committed = True  # their directory entries are synced at the end
        path_of, mode = self._path_of, self._mode

        def put(doc_id: str, version: str, data: bytes) -> None:
            _atomic.write_atomic(path_of(doc_id, version), data, mode=mode, replace=False,
                                 sync_dir=False)
        return put

    def _submit(self, path: str, buf: io.BytesIO) -> None:
        self._slots.acquire()  # bounds the memory held by documents in flight
        assert self._pool is not None
        future = self._pool.submit(self._commit, path, buf)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _commit(self, path: str, buf: io.BytesIO) -> None:
        _atomic.write_atomic(path, buf.getvalue(), mode=self._mode, replace=False,
                             sync_dir=False)
        self._committed = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Documents already handed over are finished (they cannot be taken
        # back) and made durable even when the block failed.
        error: BaseException | None = None
        try:
            if self._waiting is not None:
                self._commit(*self._waiting)
        except BaseException as e:
            error = e
        finally:
            self._waiting = None
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            for f in self._futures:
                if error is None and f.exception() is not None:
                    error = f.exception()
            if self._committed:
                _atomic.fsync_dir(self._directory)
        if error is not None and exc_type is None:
            raise error
