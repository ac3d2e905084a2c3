"""Folder storage: the log directory of docs/AUDIT.md §1 (docs/AUDIT.md §9).

Every change to the log happens under an exclusive ``flock`` on ``lock``
(and a thread lock: ``flock`` does not separate threads sharing a
descriptor; a forked child reopens everything). The log file is opened
``O_WRONLY | O_APPEND``; nothing here seeks in it, truncates it or rewrites
it, and every write must land right after the lines the turn read (someone
may append without the lock). Lines are written under the lock and made durable with one
``fdatasync`` *after* the lock is released (§9, group commit): the next
writer writes meanwhile, and concurrent ``fdatasync`` calls on one file
share the file system's journal commit. A record is acknowledged only after
an ``fdatasync`` its own process started after writing it. A turn that stores
checkpoints syncs and stores them before it lets go of the lock (one turn in
``checkpoint_every``): no checkpoint is ever durable before its lines, and
the next writer always sees it.
``hashes`` and ``index`` are derived (§6) and never fsynced; anything but a
regular file of one name in their place is set aside and they are rebuilt. Every file
is opened without following a link or waiting on a planted named pipe
(:func:`vault._atomic.open_regular`).
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import itertools
import operator
import os
import secrets
import stat
import struct
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from vault._atomic import NotRegularFile, fsync_dir, open_regular, real_directory, write_atomic
from vault.audit._files import LineBlocks, LogPaths
from vault.audit._record import MAX_LINE
from vault.audit._storage import (
    LINES_BYTES,
    MAX_CHECKPOINT,
    DerivedStore,
    LineSource,
    LogEnd,
    LogStorage,
)
from vault.errors import AuditWriteError

__all__ = ["FolderStorage"]

_SYNC = getattr(os, "fdatasync", os.fsync)  # appends: fdatasync also flushes the new size
_WRITE_CHUNK = 1 << 22  # one write(2) per 4 MiB
_OFFSET = struct.Struct(">Q")
_MISPLACED = ("audit record not durable: another writer wrote to the audit log during this "
              "append, ignoring its lock; the record landed out of place and does not count")
_REPLACED = ("audit record not durable: the audit log was replaced during this append (renamed "
             "over by another file); the record went to the file replaced, which nobody reads")
_MISPLACED_HINT = ("the operation was not performed; retry. Only someone writing to audit/log "
                   "without its lock does this: keep a copy of the vault and run 'vault audit "
                   "verify' (docs/DEPLOYMENT.md §14)")


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


class _Files:
    """The open files of one writing process."""

    def __init__(self, paths: LogPaths) -> None:
        self.pid = os.getpid()
        self._fds: list[int] = []
        # Closed when collected, or at once if opening fails.
        self._closer = weakref.finalize(self, _close_all, self._fds)
        new_dir = not paths.directory.exists()
        paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(NotRegularFile):  # a planted link: never used (see below)
            if not real_directory(paths.checkpoints):
                paths.checkpoints.mkdir(mode=0o700, exist_ok=True)
        new_log = not paths.log.exists()
        flags = os.O_CLOEXEC | os.O_CREAT
        self._lock_path = str(paths.lock)
        self._log_path = str(paths.log)
        try:
            self.lock_fd = self._open(paths.lock, os.O_RDWR | flags)
            self.log_fd = self._open(paths.log, os.O_WRONLY | os.O_APPEND | flags)
            self.read_fd = self._open(paths.log, os.O_RDONLY | os.O_CLOEXEC)
            self.hash_fd = self._derived(paths.hashes, os.O_RDWR | flags)
            self.index_fd = self._derived(paths.index, os.O_RDWR | flags)
            if new_log:  # make the new names durable before the first record counts
                fsync_dir(paths.directory)
                if new_dir:
                    fsync_dir(paths.directory.parent)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path, flags: int, *, alone: bool = False) -> int:
        # never through a link, never a pipe
        fd = open_regular(path, flags, 0o600, alone=alone)
        self._fds.append(fd)
        return fd

    def _derived(self, path: Path, flags: int) -> int:
        # Written in place and truncated when rebuilt: a file with another
        # name (a hard link to the log, a document) would be destroyed.
        try:
            return self._open(path, flags, alone=True)
        except NotRegularFile:
            # Derived data (§6): whatever took its place (a folder, a pipe,
            # a link) is set aside, never used, and the file is rebuilt.
            with contextlib.suppress(FileNotFoundError):  # another writer was first
                os.rename(path, path.with_name(f".{path.name}.set-aside-{secrets.token_hex(4)}"))
            return self._open(path, flags, alone=True)

    def stale(self) -> bool:
        """Was a file removed or replaced since we opened it? (A writer
        must not lock one lock file while others lock its replacement, nor
        append to a log nobody reads.) Each must still be the file at its
        name: one renamed over keeps a link where a folder writer made one
        (`link(log, .hidden)`, then a copy renamed over the log)."""
        # The derived files need only be linked somewhere: what is read
        # from them is checked against the log (§6).
        if any(os.fstat(fd).st_nlink == 0 for fd in (self.hash_fd, self.index_fd)):
            return True
        log, read = os.fstat(self.log_fd), os.fstat(self.read_fd)
        return (log.st_dev, log.st_ino) != (read.st_dev, read.st_ino) \
            or not self.at_name(self.log_fd, self._log_path, log) \
            or not self.at_name(self.lock_fd, self._lock_path)

    @staticmethod
    def at_name(fd: int, path: str | Path, mine: os.stat_result | None = None) -> bool:
        """Is ``fd`` (whose ``fstat`` is ``mine``, if known) the file at
        ``path`` now?"""
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        mine = mine or os.fstat(fd)
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def close(self) -> None:
        self._closer()


class _OwnedLines(LineBlocks):
    """Block reads through a descriptor this reader closes when done."""

    def __init__(self, fd: int, start: int, stop: int, *, owned: bool) -> None:
        super().__init__(fd, start, stop)
        self._owned = owned

    def __iter__(self) -> Iterator[list[bytes]]:
        try:
            yield from super().__iter__()
        finally:
            self.close()

    def close(self) -> None:
        if self._owned:
            self._owned = False
            os.close(self.fd)


class FolderStorage(LogStorage):
    """A log in a directory (docs/AUDIT.md §1)."""

    can_tear = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.paths = LogPaths(Path(directory))
        self.location = str(self.paths.directory)
        self._pid = os.getpid()
        self._mutex = threading.Lock()
        self._files: _Files | None = None
        self._owner: int | None = None  # the thread inside exclusive()
        self._wrote = False
        self._due: list[tuple[int, bytes]] = []

    def __repr__(self) -> str:
        return f"FolderStorage({self.location!r})"

    @property
    def _inside(self) -> bool:
        """Is this thread the one holding the exclusive lock? (Other threads
        reading meanwhile use their own descriptors and locks.)"""
        return self._owner is not None and self._owner == threading.get_ident()

    def _writer(self) -> _Files:
        if self._files is None:
            self._files = _Files(self.paths)
        return self._files

    def close(self) -> None:
        if self._files is not None:
            self._files.close()
            self._files = None

    # -- locking ---------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        if self._pid != os.getpid():  # forked: never share locks or files with the parent
            self._pid, self._mutex, self._files = os.getpid(), threading.Lock(), None
        with self._mutex:
            files = self._writer()
            fcntl.flock(files.lock_fd, fcntl.LOCK_EX)
            if files.stale():  # reopen what was replaced, then lock again
                fcntl.flock(files.lock_fd, fcntl.LOCK_UN)
                self.close()
                files = self._writer()
                fcntl.flock(files.lock_fd, fcntl.LOCK_EX)
            self._owner, self._wrote, self._due = threading.get_ident(), False, []
            try:
                yield
                due, self._due = self._due, []
                if due:  # rare: sync and store under the lock, so the next writer sees them
                    _SYNC(files.log_fd)
                    for size, note in due:
                        # The records are durable now: a checkpoint that cannot
                        # be stored (a full disk) fails none of them; the next
                        # one due is tried again.
                        with contextlib.suppress(OSError):
                            self._write_checkpoint(size, note)
                    self._wrote = False
            finally:
                self._owner = None
                fcntl.flock(files.lock_fd, fcntl.LOCK_UN)
            if self._wrote:
                _SYNC(files.log_fd)  # outside the lock: group commit (§9)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        if self._inside:
            yield
            return
        try:
            fd = open_regular(self.paths.lock)
        except FileNotFoundError:
            yield  # a copied log without a lock file: nobody writes to it
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- lines -----------------------------------------------------------------

    def end(self) -> LogEnd:
        if self._inside:
            assert self._files is not None
            return LogEnd(None, os.fstat(self._files.log_fd).st_size)
        st = os.stat(self.paths.log)
        if not stat.S_ISREG(st.st_mode):  # a log that cannot be read is not a short one
            raise OSError(errno.EINVAL, "the audit log is not a regular file")
        return LogEnd(None, st.st_size)

    def _read_fd(self) -> tuple[int, bool]:
        if self._inside:
            assert self._files is not None
            return self._files.read_fd, False
        return open_regular(self.paths.log), True

    def read(self, start: int, offset: int, stop: LogEnd | None = None) -> LineSource:
        fd, owned = self._read_fd()
        limit = stop.offset if stop is not None and stop.offset is not None else None
        if limit is None:
            limit = os.fstat(fd).st_size
        return _OwnedLines(fd, offset, limit, owned=owned)

    def lines_before(self, size: int, end_offset: int, count: int) -> list[bytes] | None:
        if size == 0 or count <= 0:
            return []
        fd, owned = self._read_fd()
        try:
            if os.fstat(fd).st_size < end_offset:
                return None
            window = 4096 * count
            while True:
                start = max(0, end_offset - window)
                data = os.pread(fd, end_offset - start, start)
                if not data.endswith(b"\n"):
                    return [b"\n"]  # no line ends there: the tip does not match
                lines = data[:-1].split(b"\n")
                if start == 0 or len(lines) > min(count, size):
                    return lines[-min(count, size):]
                window *= 4
        finally:
            if owned:
                os.close(fd)

    def line(self, seq: int) -> bytes | None:
        try:
            with contextlib.ExitStack() as stack:
                index_fd = self._fd(stack, self.paths.index, "index_fd")
                log_fd = self._fd(stack, self.paths.log, "read_fd")
                raw = os.pread(index_fd, 16, (seq - 1) * 8) if seq else (
                    b"\0" * 8 + os.pread(index_fd, 8, 0))
                if len(raw) != 16:
                    return None
                start, end = struct.unpack(">2Q", raw)
                # The index is anyone's to write: an end past the log's own
                # (2**44, say) asked for that much memory, and prove failed
                # for everyone with an internal error instead of rebuilding.
                if not start < end <= os.fstat(log_fd).st_size:
                    return None
                data = os.pread(log_fd, end - start, start)
        except (OSError, OverflowError):
            return None
        return data[:-1] if data.endswith(b"\n") and len(data) == end - start else None

    def lines(self, start: int, stop: int) -> list[bytes] | None:
        if not 0 <= start < stop:
            return [] if start == stop else None
        try:
            with contextlib.ExitStack() as stack:
                index_fd = self._fd(stack, self.paths.index, "index_fd")
                log_fd = self._fd(stack, self.paths.log, "read_fd")
                count = stop - start
                raw = os.pread(index_fd, 8 * (count + 1), (start - 1) * 8) if start else (
                    b"\0" * 8 + os.pread(index_fd, 8 * count, 0))
                if len(raw) != 8 * (count + 1):
                    return None
                ends = struct.unpack(f">{count + 1}Q", raw)
                # Unchecked, as for one line: bounded by the log's size and
                # the longest lines, never trusted further.
                if not ends[-1] <= os.fstat(log_fd).st_size \
                        or ends[-1] - ends[0] > count * (MAX_LINE + 1) \
                        or not all(map(operator.lt, ends, ends[1:])):
                    return None
                # The lines that begin within LINES_BYTES (at least one).
                count = bisect.bisect_left(ends, ends[0] + LINES_BYTES, 0, count)
                ends = ends[:count + 1]
                data = os.pread(log_fd, ends[-1] - ends[0], ends[0])
        except (OSError, OverflowError, struct.error):
            return None
        # Each line ends where the index says the next begins: the offsets
        # the lines' own lengths give are the index's (a map, not a loop
        # per line: a batch's run is a thousand lines).
        lines = data.split(b"\n")
        if lines.pop() or len(lines) != count or list(itertools.accumulate(
                map((1).__add__, map(len, lines)), initial=ends[0])) != list(ends):
            return None
        return lines

    def _fd(self, stack: contextlib.ExitStack, path: Path, name: str) -> int:
        if self._inside and self._files is not None:
            return int(getattr(self._files, name))
        fd = open_regular(path)
        stack.callback(os.close, fd)
        return fd

    def append(self, lines: Sequence[bytes], at: int) -> None:
        assert self._inside and self._files is not None
        data = b"".join(line + b"\n" for line in lines)
        for start in range(0, len(data), _WRITE_CHUNK):
            self._write(data[start : start + _WRITE_CHUNK], at + start)

    def terminate_tail(self, at: int) -> None:
        self._write(b"\n", at)

    def _write(self, data: bytes, at: int) -> None:
        """One write(2), which must land at byte ``at``. A short write is a
        failure too: retrying could interleave with the torn bytes of a
        crash, so the next writer's recovery (§8) handles it."""
        assert self._files is not None
        self._wrote = True
        fd = self._files.log_fd
        n = os.write(fd, data)
        if n != len(data):
            raise OSError(f"short write to the audit log ({n} of {len(data)} bytes)")
        # O_APPEND wrote at the end of the file as it was then, and left this
        # descriptor's offset just past the bytes (others' writes move only
        # theirs). Anyone who can write the folder can append without the
        # lock: bytes she slipped in after the turn's catch-up put these a
        # line late, record N on line N + 1, and their tip, derived data and
        # checkpoints would be computed from the wrong lines (AUDIT.md §9.3).
        if os.lseek(fd, 0, os.SEEK_CUR) - n != at:
            raise AuditWriteError(_MISPLACED, hint=_MISPLACED_HINT)
        # And into the log everyone reads: a log renamed over during the turn
        # (a copy, the one written to kept by another link) took these
        # lines away with it, where nobody reads them.
        if not self._files.at_name(fd, self._files._log_path):
            raise AuditWriteError(_REPLACED, hint=_MISPLACED_HINT)

    # -- checkpoints -----------------------------------------------------------

    def checkpoint_sizes(self) -> list[int]:
        return self.paths.checkpoint_sizes()

    def read_checkpoint(self, size: int) -> bytes | None:
        try:
            if not real_directory(self.paths.checkpoints):
                return None
            fd = open_regular(self.paths.checkpoint(size))
        except (FileNotFoundError, NotRegularFile):  # a pipe, a link: no checkpoint
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read(MAX_CHECKPOINT + 1)

    def store_checkpoint(self, size: int, note: bytes) -> bool:
        if self._inside:
            self._due.append((size, note))  # after the fdatasync (see exclusive)
            return True
        return self._write_checkpoint(size, note)  # a bogus file in its place is replaced

    def _write_checkpoint(self, size: int, note: bytes) -> bool:
        path = self.paths.checkpoint(size)
        with contextlib.suppress(OSError):
            if self.read_checkpoint(size) == note:  # Ed25519 is deterministic: same tree, note
                return True
        try:
            real_directory(self.paths.checkpoints)
        except NotRegularFile:
            # Never written through a planted link, nor made its target:
            # no checkpoint is stored (the records are), and doctor names it.
            return False
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return False  # a folder planted at its name: as above, never removed
        except FileNotFoundError:
            pass
        write_atomic(path, note, mode=0o600, replace=True)  # a bogus file is replaced
        return True

    # -- derived data and moves ------------------------------------------------

    def derived(self) -> DerivedStore | None:
        from vault.audit._folder_derived import FolderDerived

        files = self._files if self._inside else None
        if files is not None:
            return FolderDerived(self.paths, files.hash_fd, files.index_fd)
        return FolderDerived(self.paths)

    def import_log(self, lines: Iterable[bytes], checkpoints: Mapping[int, bytes]) -> None:
        paths = self.paths
        paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(paths.log, flags, 0o600), "wb") as log:
            for line in lines:
                log.write(line + b"\n")
            log.flush()
            os.fsync(log.fileno())
        paths.checkpoints.mkdir(mode=0o700, exist_ok=True)
        for size, note in sorted(checkpoints.items()):
            write_atomic(paths.checkpoint(size), note, mode=0o600)
        fsync_dir(paths.directory)
