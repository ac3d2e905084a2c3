"""Block I/O for the payload: rings of buffers, a shared reader, background consumers.

The payload streams through two rings of fixed-size slots (:class:`Ring`):
the input ring, filled by reading the source, and the output ring, filled
by the caller's thread, which seals or opens one block at a time. The other
work runs in threads of their own (:class:`Consumer`): writing the output,
and hashing whatever a sink wants hashed. A slot is filled again only once
every consumer of its ring is done with it, so memory is fixed, whatever
the size of the payload.

Why this shape, on two cores: ``cryptography`` holds the GIL while it seals
or opens a chunk, while ``write``/``readinto`` and ``hashlib`` release it.
So the AEAD stays in one thread, and everything that can run beside it
does. Reading a file costs about half as much as writing one, and the AEAD
about as much as writing, so the reading can be shared (:class:`Source`):
the caller's thread reads when it needs a block or waits for a free output
slot, and the writer, if asked to, reads every other block ahead when it
has nothing to write. On two cores that beat leaving all reads to either
thread (docs/PERFORMANCE.md §4.1).

The rings live in anonymous memory that the kernel zero-fills when a page
is first touched, and a ring starts again at its first slot whenever no
slot is in use: a small payload touches only the pages it needs. The first
``INLINE_BYTES`` are processed without starting a thread (for small inputs
a thread costs more than it hides).
"""

from __future__ import annotations

import io
import mmap
import os
import queue
import stat
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed import WriteableBuffer

__all__ = ["INLINE_BYTES", "Consumer", "Prefixed", "Ring", "Sink", "Source", "Writable", "fill",
           "write_all"]

Sink = Callable[[memoryview], object]
Item = tuple[int, int, bool]  # slot, bytes in it, last block of the input
INLINE_BYTES = 1 << 20


class Writable(Protocol):
    def write(self, data: memoryview, /) -> int | None: ...


def write_all(dst: Writable, view: memoryview) -> None:
    # Raw (unbuffered) files may write less than asked; buffered ones never do.
    while view:
        written = dst.write(view)
        if written is None or written >= len(view):
            return
        view = view[written:]


class Prefixed(io.RawIOBase):
    """``src`` with bytes already read from it put back in front (a reader
    that looked ahead: armor detection, intake, a file that grew)."""

    def __init__(self, prefix: bytes, src: BinaryIO) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        readinto = getattr(self._src, "readinto", None)
        if readinto is not None:
            return int(readinto(view) or 0)
        data = self._src.read(len(view))
        view[: len(data)] = data
        return len(data)


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


class Lane:
    """One reader of a ring: the blocks published to it, and the slots it gave back."""

    def __init__(self, slots: int) -> None:
        self.items: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self.tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(slots):
            self.tokens.put(None)
        self.consumer: Consumer | None = None  # None: the caller takes the items itself

    def deliver(self, item: Item) -> None:
        if self.consumer is not None and self.consumer.inline:
            self.consumer.apply(item)
        else:
            self.items.put(item)


class Ring:
    """``slots`` buffers of ``size`` bytes, filled in turn.

    A slot is claimed (:meth:`claim`) only after every lane gave back its
    token for the block that was in it before; lanes take blocks in the
    order they are published, so counting tokens is enough.
    """

    def __init__(self, slots: int, size: int, memory: bytearray | None = None) -> None:
        # ``memory``: one slot over a caller's buffer (a payload opened in
        # memory, vault/age/_small.py), never published to lanes.
        self.slots, self.size = slots, size
        self.memory = memoryview(mmap.mmap(-1, slots * size) if memory is None else memory)
        self.lanes: list[Lane] = []
        self._next = 0

    def lane(self) -> Lane:
        lane = Lane(self.slots)
        self.lanes.append(lane)
        return lane

    def view(self, slot: int, n: int, at: int = 0) -> memoryview:
        start = slot * self.size + at
        return self.memory[start : start + n]

    def ready(self) -> bool:
        """Whether :meth:`claim` would not wait (for its single producer)."""
        return all(not lane.tokens.empty() for lane in self.lanes)

    def claim(self) -> int:
        for lane in self.lanes:
            lane.tokens.get()
        if all(lane.tokens.qsize() == self.slots - 1 for lane in self.lanes):
            self._next = 0  # no other slot in use: keep touching the same pages
        slot = self._next
        self._next = (slot + 1) % self.slots
        return slot

    def publish(self, slot: int, n: int, last: bool) -> None:
        for lane in self.lanes:
            lane.deliver((slot, n, last))


class Consumer:
    """Applies ``fn`` to every block published to its ring, in order.

    Inline, in the publishing thread, until :meth:`start`; then in a thread
    of its own. After ``fn`` failed there, later blocks are skipped (their
    slots still given back, so that the producer never waits forever) and
    :attr:`error` keeps the exception for the caller. ``idle`` is called
    while there is nothing to consume; it returns whether it did some work
    (then the queue is looked at again).
    """

    def __init__(self, ring: Ring, fn: Sink, idle: Callable[[], bool] | None = None) -> None:
        self.ring, self.fn, self.idle = ring, fn, idle
        self.lane = ring.lane()
        self.lane.consumer = self
        self.inline = True
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def apply(self, item: Item) -> None:
        slot, n, _ = item
        try:
            self.fn(self.ring.view(slot, n))
        finally:
            self.lane.tokens.put(None)

    def start(self) -> None:
        self.inline = False
        thread = threading.Thread(target=self._run, name="age-block", daemon=True)
        thread.start()
        # Only once started: a Ctrl-C or SIGTERM in between must not leave
        # close() a thread to join that never ran (a RuntimeError that
        # would hide the interruption).
        self._thread = thread

    def close(self) -> None:
        """Wait until every block published so far is consumed."""
        if self._thread is not None:
            self.lane.items.put(None)
            self._thread.join()
            self._thread = None

    def _next(self) -> Item | None:
        items = self.lane.items
        if self.idle is not None:
            while True:
                try:
                    return items.get_nowait()
                except queue.Empty:
                    pass
                if not self.idle():
                    break
        return items.get()

    def _run(self) -> None:
        view, fn, tokens = self.ring.view, self.fn, self.lane.tokens
        while (item := self._next()) is not None:
            if self.error is None:
                try:
                    fn(view(item[0], item[1]))
                except BaseException as e:  # handed to the caller's thread
                    self.error = e
            tokens.put(None)


def _never_waits(src: BinaryIO) -> bool:
    """Whether reading ``src`` never waits for another program: a file, or memory."""
    if isinstance(src, io.BytesIO):
        return True
    try:
        mode = os.fstat(src.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False  # a pipe's decoder, for instance
    return stat.S_ISREG(mode) or stat.S_ISBLK(mode)


class Source:
    """``src`` read block by block into ``ring``, by whichever thread asks.

    The caller takes blocks with :meth:`next`: one read ahead (by
    :meth:`read_ahead`), or else one it reads itself. Reads happen under a
    lock, one block at a time, and each block is published to every lane of
    the ring before the next is read. With ``lookahead`` each read asks for
    one byte more than a block, kept as the first byte of the next block,
    so that the last block is known as soon as it is read. Reading ahead is
    only done from files and memory: from a pipe or a terminal a read waits
    for the other end, and output already sealed would wait with it.
    """

    def __init__(self, src: BinaryIO, ring: Ring, block: int, *, lookahead: bool) -> None:
        self.src, self.ring, self.block, self.lookahead = src, ring, block, lookahead
        self.lane = ring.lane()
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self._ahead = _never_waits(src)
        self._done = not self._ahead  # nothing (more) to read ahead
        self._carry = -1
        self._shared = False  # the last block was read ahead by a background thread

    def _read(self) -> None:
        self._done = True  # until this read succeeds: never read again after an error
        slot = self.ring.claim()
        view = self.ring.view(slot, self.block + 1 if self.lookahead else self.block)
        n = 0
        if self._carry >= 0:
            view[0], n = self._carry, 1
        n = fill(self.src, view, n)
        last = n <= self.block if self.lookahead else n < self.block
        if self.lookahead and not last:
            self._carry = view[self.block]
            n = self.block
        self._done = last or not self._ahead
        self.ring.publish(slot, n, last)

    def next(self) -> Item:
        """The next block: (slot, size, whether it is the last)."""
        items = self.lane.items
        try:
            item = items.get_nowait()
        except queue.Empty:
            with self.lock:  # waits for a read in progress elsewhere
                try:
                    item = items.get_nowait()
                except queue.Empty:
                    if self.error is not None:
                        raise self.error from None
                    self._read()
                    self._shared = False
                    item = items.get_nowait()
        assert item is not None
        return item

    def release(self) -> None:
        """The caller is done with the block :meth:`next` gave it."""
        self.lane.tokens.put(None)

    def read_ahead(self, *, share: bool = False) -> bool:
        """Read the next block now, if no one else is reading and a slot is
        free; with ``share``, only if the block before was not read so."""
        if self._done or not self.lock.acquire(blocking=False):
            return False
        try:
            if self._done or not self.ring.ready():
                return False
            if share and self._shared:
                self._shared = False  # this one is the caller's thread's to read
                return False
            try:
                self._read()
            except Exception as e:  # the caller's next() raises it
                # Not BaseException: this may run on the caller's own thread,
                # where Ctrl-C or SIGTERM must end the read now -- kept for a
                # next() that may never come, it was lost, and what was read
                # so far looked like a short, damaged file.
                self.error = e
                return False
            self._shared = share
            return True
        finally:
            self.lock.release()

    def stop(self) -> None:
        """No more reading ahead, once the read in progress (if any) is over."""
        with self.lock:
            self._done = True
