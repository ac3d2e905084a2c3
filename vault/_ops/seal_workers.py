"""Sealing many small documents on every core (docs/DESIGN.md §6.2).

``cryptography`` holds the GIL while it wraps a file key (an ML-KEM-768 +
X25519 encapsulation is about 125 µs), seals a chunk or signs a label, so
threads cannot share that work; processes forked from this one can. Each
worker is forked when a batch starts, before the batch's commit threads
exist, and inherits what every document of the batch shares: the
recipients, the sealer's signing identity, the common label statement and
the list of tasks. Nothing of it crosses a pipe: the parent sends a task's
number. A task names an already open source by its descriptor, offset and
size (the worker reads it with ``pread``, which leaves the parent's offset
alone). The worker seals it in memory and, where the batch lets a child
commit (the folder backend), puts it in place itself; the answer is the
document's header and signed statement, with the sealed bytes only when
the parent must write them (PostgreSQL). Answers are pickled -- the pipe is
anonymous, between this process and its own child, and nothing else can
write into it.

A worker holds nothing of the vault but the sources: right after the fork it
closes every other descriptor (the vault's lock, the trusted state, the
log), so a worker left behind never keeps the vault locked, and it exits
once the parent's end of its task pipe closes -- when the batch ends, or
when the parent dies -- after finishing the documents it is writing (a
worker killed half way would leave a temporary file in the vault). Ctrl-C
is the parent's to handle: workers ignore it and are stopped by the
parent.

Low-level: used by :mod:`vault._ops.seal` only.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import pickle
import select
import signal
import stat
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from vault.errors import StorageError

__all__ = ["Task", "Workers", "cores", "source_task", "workers_for"]

# A document is sealed by a worker only if it is at most this large: the
# sealed bytes travel back through a pipe and are held in memory.
MAX_SIZE = 256 * 1024
MIN_TASKS = 16  # fewer documents are sealed faster than workers are forked
MAX_WORKERS = 8  # past that, the parent's share of each document is the limit
_AHEAD = 8  # tasks given to one worker before its first answer is read
_COMMIT_THREADS = 8  # a worker's concurrent fsyncs, grouped by the file system
_FRAME = struct.Struct("!Q")
_STOP_WAIT = 30.0  # seconds a stopped worker may take to finish its writes
_PIPE_SIZE = 1 << 20  # the default most a user may ask (/proc/sys/fs/pipe-max-size)

# (index, doc_id, version, template, fd, offset, size)
Task = tuple[int, str, str, Any, int, int, int]
Seal = Callable[[int], Any]  # a task's number -> its answer


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def workers_for(tasks: int) -> int:
    """One worker per core, each with at least :data:`MIN_TASKS` / 2
    tasks, at most :data:`MAX_WORKERS`."""
    return max(1, min(cores(), MAX_WORKERS, tasks // (MIN_TASKS // 2)))


def source_task(stream: BinaryIO, size: int | None) -> tuple[int, int, int] | None:
    """(fd, offset, size) when a worker can read ``stream`` itself: a
    regular file of known, small size. None: the parent seals it."""
    if size is None or size > MAX_SIZE:
        return None
    try:
        fd = stream.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return fd, stream.tell(), size
    except (AttributeError, OSError, ValueError):
        return None


class Workers:
    """Forked sealing workers; answers come back in the order of the tasks.

    ``seal(k)`` prepares task ``k``; ``commit(prepared)``, when given, runs
    on one of the worker's own threads (a worker is single-threaded when
    forked, and starts them after) and returns the answer: a worker seals
    the next document while the disk makes the previous ones durable.
    Without it, what ``seal`` returns is the answer."""

    def __init__(self, count: int, seal: Seal, keep: Sequence[int],
                 commit: Callable[[Any], Any] | None = None) -> None:
        self._seal, self._commit = seal, commit
        self._keep = sorted({0, 1, 2, *keep})
        self._pipes: list[tuple[int, int, int]] = []  # (pid, task_w, answer_r)
        try:
            for _ in range(count):
                self._pipes.append(self._fork())
        except BaseException:
            self.stop()
            raise

    def _fork(self) -> tuple[int, int, int]:
        task_r, task_w = os.pipe()
        answer_r, answer_w = os.pipe()
        # Room for a few answers: a worker whose answer does not fit waits
        # for the parent to read it, and sealing would go at the pace of
        # committing. Where the pipe cannot grow, it still works, slower.
        with contextlib.suppress(AttributeError, OSError):
            fcntl.fcntl(answer_w, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child (measured by its answers)
            code = 1
            try:
                # No collection in the child: a finalizer of the parent's
                # garbage could close a descriptor number reused here.
                gc.disable()
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _close_all_but(sorted({*self._keep, task_r, answer_w}))
                _Child(self._seal, self._commit, task_r, answer_w).serve()
                code = 0
            finally:
                os._exit(code)  # never back into the parent's code
        os.close(task_r)
        os.close(answer_w)
        return pid, task_w, answer_r

    def run(self, count: int) -> Iterator[Any]:
        """The answers to tasks 0 to ``count`` - 1, in order (a worker's
        error raised here)."""
        queued: deque[int] = deque()  # the worker each outstanding task went to
        n = len(self._pipes)
        following = 0
        for k in range(min(count, _AHEAD * n)):
            self._send(k % n, k)
            queued.append(k % n)
            following = k + 1
        while queued:
            w = queued.popleft()
            answer = self._receive(w)
            if following < count:  # the worker that answered gets the next task
                self._send(w, following)
                queued.append(w)
                following += 1
            yield answer

    def _send(self, w: int, number: int) -> None:
        try:
            _write_all(self._pipes[w][1], _FRAME.pack(number))
        except BrokenPipeError:
            raise _stopped() from None

    def _receive(self, w: int) -> Any:
        head = _read_exactly(self._pipes[w][2], _FRAME.size)
        body = _read_exactly(self._pipes[w][2], _FRAME.unpack(head)[0]) if head else b""
        if not head or not body:
            raise _stopped()
        try:
            ok, value = pickle.loads(body)  # noqa: S301 - our own child's answer
        except Exception:  # an error whose class cannot be rebuilt from its arguments
            raise StorageError("a sealing process failed in a way it could not report",
                               hint="run the command again; nothing was counted") from None
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        """Close the pipes and reap the workers. A worker finishes the
        documents it is writing before it exits (one killed half way would
        leave a temporary file in the vault); one that takes longer than
        :data:`_STOP_WAIT` seconds, or a second Ctrl-C, is killed."""
        pids = [pid for pid, _, _ in self._pipes]
        for _, task_w, answer_r in self._pipes:
            for fd in (task_w, answer_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._pipes = []
        deadline = time.monotonic() + _STOP_WAIT
        try:
            while pids and time.monotonic() < deadline:
                pids = [pid for pid in pids if not _reaped(pid)]
                if pids:
                    time.sleep(0.002)
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


def _stopped() -> StorageError:
    return StorageError("a sealing process stopped before it answered",
                        hint="run the command again; nothing was counted")


class _Child:  # pragma: no cover - runs in the child (measured by its answers)
    """A worker's loop: tasks in, answers out in the same order."""

    def __init__(self, seal: Seal, commit: Callable[[Any], Any] | None, task_r: int,
                 answer_w: int) -> None:
        self._seal, self._commit = seal, commit
        self._task_r, self._answer_w = task_r, answer_w
        self._pending: deque[Future[Any]] = deque()
        self._pool: ThreadPoolExecutor | None = None
        # poll, not select: select refuses descriptors past 1024, which a
        # batch of that many open sources (or a busy host program) reaches.
        self._tasks = select.poll()
        self._tasks.register(task_r, select.POLLIN)
        self._gone = False  # the parent stopped reading answers

    def serve(self) -> None:
        pending = self._pending
        try:
            while not self._gone:
                while pending and pending[0].done():
                    self._answer(pending.popleft())
                if pending and not self._tasks.poll(0):
                    self._answer(pending.popleft())  # no task waiting: finish the oldest
                    continue
                head = _read_exactly(self._task_r, _FRAME.size)
                if not head:  # the parent closed its end: the batch is over
                    break
                pending.append(self._start(_FRAME.unpack(head)[0]))
        finally:
            # Whatever ended the loop, the documents being written are
            # finished (their answers sent while someone reads them).
            while pending:
                self._answer(pending.popleft())

    def _start(self, k: int) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            prepared = self._seal(k)
        except Exception as e:  # sent to the parent, which raises it
            done.set_exception(e)
            return done
        if self._commit is None:
            done.set_result(prepared)
            return done
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_COMMIT_THREADS)
        return self._pool.submit(self._commit, prepared)

    def _answer(self, future: Future[Any]) -> None:
        error = future.exception()  # waits for the document to be written
        if self._gone:
            return
        answer: tuple[bool, Any] = (True, future.result()) if error is None else (False, error)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            data = pickle.dumps((False, StorageError("a sealing process could not answer")))
        try:
            _write_all(self._answer_w, _FRAME.pack(len(data)) + data)
        except BrokenPipeError:
            self._gone = True


def _close_all_but(keep: list[int]) -> None:  # pragma: no cover - runs in the child
    low = 0
    for fd in keep:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(low, os.sysconf("SC_OPEN_MAX")))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return b""
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
