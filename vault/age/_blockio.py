"""Block I/O for the payload: filling buffers, and background consumers.

``fill`` reads until a buffer is full or the input ends (pipes return short
reads). A :class:`Pipeline` hands filled blocks to background threads (the
writer of the output, and optionally a hash of the plaintext) while the
caller seals or opens the next block. ``cryptography`` holds the GIL while
it seals a chunk, so a second thread cannot encrypt in parallel, but a
``write`` system call and ``hashlib`` on large buffers release it: on two
or more cores, writing and hashing block ``i`` while block ``i + 1`` is
being sealed hides most of their cost. Buffers come from a small pool, so
memory stays bounded whatever the input size. The first MiB is consumed
inline, without starting a thread: for small inputs a thread would cost
more than it hides.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import BinaryIO, Protocol

__all__ = ["Pipeline", "Sink", "Writable", "fill", "write_all"]

Sink = Callable[[memoryview], object]
_INLINE_BYTES = 1 << 20


class Writable(Protocol):
    def write(self, data: memoryview, /) -> int | None: ...


def write_all(dst: Writable, view: memoryview) -> None:
    # Raw (unbuffered) files may write less than asked; buffered ones never do.
    while view:
        written = dst.write(view)
        if written is None or written >= len(view):
            return
        view = view[written:]


class _Release:
    """Returns a buffer to its pool once every consumer is done with it."""

    __slots__ = ("_buf", "_count", "_free", "_lock")

    def __init__(self, count: int, buf: memoryview, free: queue.SimpleQueue[memoryview]) -> None:
        self._count = count
        self._buf = buf
        self._free = free
        self._lock = threading.Lock() if count > 1 else None

    def __call__(self) -> None:
        if self._lock is None:
            self._free.put(self._buf)
            return
        with self._lock:
            self._count -= 1
            last = self._count == 0
        if last:
            self._free.put(self._buf)


class _Worker:
    """One thread applying a sink to each queued block, in order."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.error: BaseException | None = None
        self._todo: queue.SimpleQueue[tuple[memoryview, _Release] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def put(self, view: memoryview, release: _Release) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="age-block", daemon=True)
            self._thread.start()
        self._todo.put((view, release))

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            view, release = item
            if self.error is None:
                try:
                    self.sink(view)
                except BaseException as e:  # handed to the caller's thread
                    self.error = e
            release()  # even after an error, so the caller never waits forever

    def close(self) -> None:
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None


class Pipeline:
    """Blocks handed to background ``sinks``; use as a context manager.

    ``buffer(size)`` returns a free buffer of at least ``size`` bytes
    (waiting while ``depth`` buffers are in flight); ``submit(buffer, n)``
    gives its first ``n`` bytes to every sink, each in its own thread and in
    submission order. Leaving the ``with`` block waits until every sink is
    done, and re-raises a sink's error if the block itself succeeded. With
    no sinks, ``submit`` just frees the buffer.
    """

    def __init__(self, sinks: Sequence[Sink], depth: int = 2) -> None:
        self._workers = [_Worker(s) for s in sinks]
        self._spare = depth  # buffers that may still be allocated
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        self._started = False
        self._inline = _INLINE_BYTES

    def __enter__(self) -> Pipeline:
        return self

    def buffer(self, size: int) -> memoryview:
        while True:
            if self._spare and self._free.empty():
                self._spare -= 1
                return memoryview(bytearray(size))
            buf = self._free.get()
            self._raise_error()
            if len(buf) >= size:
                return buf
            self._spare += 1  # too small for the blocks now in use: let it go

    def submit(self, buf: memoryview, n: int, *, final: bool = False) -> None:
        view = buf[:n]
        if not self._started and (final or self._inline > n):  # small so far: no thread
            self._inline -= n
            for w in self._workers:
                w.sink(view)
            self._free.put(buf)
            return
        if not self._workers:
            self._free.put(buf)
            return
        self._started = True
        release = _Release(len(self._workers), buf, self._free)
        for w in self._workers:
            w.put(view, release)

    def _raise_error(self) -> None:
        for w in self._workers:
            if w.error is not None:
                raise w.error

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for w in self._workers:
            w.close()
        if exc_type is None:
            self._raise_error()


def fill(src: BinaryIO, view: memoryview, n: int = 0) -> int:
    """Read into ``view[n:]`` until it is full or ``src`` is at end of file."""
    readinto = getattr(src, "readinto", None)
    while n < len(view):
        if readinto is not None:
            got = readinto(view[n:])
        else:
            data = src.read(len(view) - n)
            got = len(data)
            view[n : n + got] = data
        if got is None:
            raise BlockingIOError("non-blocking source streams are not supported")
        if not got:
            break
        n += got
    return n
