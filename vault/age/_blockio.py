"""Block I/O for the payload: filling buffers, and a background writer.

``fill`` reads until a buffer is full or the input ends (pipes return short
reads). ``BackgroundWriter`` overlaps output with encryption:
``cryptography`` holds the GIL while it seals a chunk, so a second thread
cannot encrypt in parallel, but a ``write`` system call releases the GIL: on
two or more cores, writing block ``i`` while block ``i + 1`` is being sealed
hides most of the cost of the output (which on tmpfs is as large as the
encryption itself). Buffers come from a small fixed pool, so memory stays
bounded; a block that fits in one buffer is written directly, without
starting a thread.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import BinaryIO, Protocol

__all__ = ["BackgroundWriter", "Writable", "fill", "write_all"]


class Writable(Protocol):
    def write(self, data: memoryview, /) -> int | None: ...


def write_all(dst: Writable, view: memoryview) -> None:
    # Raw (unbuffered) files may write less than asked; buffered ones never do.
    while view:
        written = dst.write(view)
        if written is None or written >= len(view):
            return
        view = view[written:]


class BackgroundWriter:
    """Hands filled buffers to a writer thread; use as a context manager.

    ``buffer()`` returns a free buffer of ``size`` bytes (waiting for the
    writer if all are in flight); ``submit(buffer, n)`` queues its first
    ``n`` bytes. Leaving the ``with`` block waits until everything queued is
    written, and re-raises a write error if the block itself succeeded.
    """

    def __init__(self, dst: Writable, size: int, depth: int = 2) -> None:
        self._dst = dst
        self._size = size
        self._spare = depth  # buffers not allocated yet: small outputs need one
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        self._todo: queue.SimpleQueue[tuple[memoryview, int] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundWriter:
        return self

    def buffer(self) -> memoryview:
        if self._spare and self._free.empty():
            self._spare -= 1
            return memoryview(bytearray(self._size))
        buf = self._free.get()
        self._raise_error()
        return buf

    def submit(self, buf: memoryview, n: int, *, final: bool = False) -> None:
        if self._thread is None:
            if final:  # the only block: no thread needed
                write_all(self._dst, buf[:n])
                self._free.put(buf)
                return
            self._thread = threading.Thread(target=self._run, name="age-writer", daemon=True)
            self._thread.start()
        self._todo.put((buf, n))

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            buf, n = item
            if self._error is None:
                try:
                    write_all(self._dst, buf[:n])
                except BaseException as e:  # handed to the main thread
                    self._error = e
            self._free.put(buf)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None
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
