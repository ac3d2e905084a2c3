"""The append path: lock, catch up, write, fsync, extend the tree.

docs/AUDIT.md §1, §5 and §7. One :class:`LogWriter` per process holds the
open files and a cache of the tree's right edge. Every change to the log
happens under an exclusive ``flock`` on ``lock``. The log file is opened
``O_WRONLY | O_APPEND``; nothing here seeks in it, truncates it or rewrites
it. ``hashes`` and ``index`` are derived from the log: they are written after
the log is durable, never fsynced on their own, checked and extended (or
rebuilt) from the log whenever they lag behind it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import weakref
from collections.abc import Iterator
from pathlib import Path

from vault._atomic import fsync_dir, write_atomic
from vault.audit._files import LineBlocks, LogPaths
from vault.audit._hashing import HASH_SIZE, LEAF_PREFIX, _sha256
from vault.audit._record import AuditRecord
from vault.audit._tree import CompactRange, HashFile, stored_hash_count
from vault.errors import AuditIntegrityError

__all__ = ["LogWriter"]

_OFFSET = struct.Struct(">Q")
MAX_FRAGMENTS = 64
_SYNC = getattr(os, "fdatasync", os.fsync)  # appends: fdatasync also flushes the new size


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


class LogWriter:
    """Open files and tree state of one writing process."""

    def __init__(self, paths: LogPaths) -> None:
        self.paths = paths
        self.pid = os.getpid()
        self.size = 0  # leaves (lines) in the tree
        self.end = 0  # offset just past the last line in the tree
        self.range = CompactRange()
        self.last_checkpoint = 0  # size of the newest stored checkpoint
        self.loaded = False
        self._fds: list[int] = []
        new_dir = not paths.directory.exists()
        paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.checkpoints.mkdir(mode=0o700, exist_ok=True)
        new_log = not paths.log.exists()
        # Closed when the writer is closed or collected, or if opening fails.
        self._closer = weakref.finalize(self, _close_all, self._fds)
        flags = os.O_CLOEXEC | os.O_CREAT
        try:
            self.lock_fd = self._open(paths.lock, os.O_RDWR | flags)
            self.log_fd = self._open(paths.log, os.O_WRONLY | os.O_APPEND | flags)
            self.read_fd = self._open(paths.log, os.O_RDONLY | os.O_CLOEXEC)
            self.hash_fd = self._open(paths.hashes, os.O_RDWR | flags)
            self.index_fd = self._open(paths.index, os.O_RDWR | flags)
            if new_log:  # make the new names durable before the first record counts
                fsync_dir(paths.directory)
                if new_dir:
                    fsync_dir(paths.directory.parent)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path, flags: int) -> int:
        fd = os.open(path, flags | os.O_NOFOLLOW, 0o600)  # never append through a planted link
        self._fds.append(fd)
        return fd

    def close(self) -> None:
        self._closer()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    # -- catching up -------------------------------------------------------

    def sync(self) -> tuple[bytes, bool]:
        """Bring the tree up to the log's end (call under the lock).

        Returns the torn tail (bytes after the last newline, normally empty)
        and whether anyone else touched the log since our last write.
        """
        log_size = os.fstat(self.log_fd).st_size
        if self.loaded and log_size == self.end:
            return b"", False
        self._load(log_size)
        blocks = LineBlocks(self.read_fd, self.end, log_size)
        for lines in blocks:
            self.add_lines(lines)
        return blocks.tail, True

    def _load(self, log_size: int) -> None:
        """Restore size, end and right edge from the derived files."""
        hashes = HashFile(self.hash_fd)
        n = min(os.fstat(self.index_fd).st_size // _OFFSET.size, hashes.leaf_count())
        end = _OFFSET.unpack(os.pread(self.index_fd, 8, (n - 1) * 8))[0] if n else 0
        if end > log_size:
            raise AuditIntegrityError(
                f"the audit log is shorter than its index ({log_size} < {end} bytes)",
                kind="truncated",
                hint="run 'vault audit verify' and treat this as an incident",
            )
        if n and os.pread(self.read_fd, 1, end - 1) != b"\n":
            n, end = 0, 0  # the derived files do not match the log: rebuild them
        os.ftruncate(self.index_fd, n * _OFFSET.size)
        os.ftruncate(self.hash_fd, stored_hash_count(n) * HASH_SIZE)
        self.range = hashes.compact_range(n)
        self.size, self.end, self.loaded = n, end, True
        sizes = self.paths.checkpoint_sizes()
        self.last_checkpoint = sizes[-1] if sizes else 0

    # -- writing -----------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Append ``data`` to the log in one write(2). Any failure propagates
        as OSError and may leave a torn tail, which the next writer sets aside.
        A short write is a failure too: retrying could interleave with the
        torn bytes of a crash, so the next writer's recovery handles it."""
        n = os.write(self.log_fd, data)
        if n != len(data):
            raise OSError(f"short write to the audit log ({n} of {len(data)} bytes)")

    def flush(self) -> None:
        _SYNC(self.log_fd)

    def write_durable(self, data: bytes) -> None:
        self.write(data)
        self.flush()

    def add_lines(self, lines: list[bytes], every: int = 0) -> list[tuple[int, bytes]]:
        """Add durable lines to the tree and the derived files.

        Returns ``(size, root)`` for each size that is a multiple of ``every``
        on the way (the checkpoints due).
        """
        sha, prefix = _sha256, LEAF_PREFIX
        rng, size, pos = self.range, self.size, self.end
        stored: list[bytes] = []
        ends: list[int] = []
        due: list[tuple[int, bytes]] = []
        for line in lines:
            stored += rng.append(sha(prefix + line).digest())
            pos += len(line) + 1
            ends.append(pos)
            size += 1
            if every and size % every == 0:
                due.append((size, rng.root()))
        _pwrite_all(self.hash_fd, b"".join(stored), stored_hash_count(self.size) * HASH_SIZE)
        _pwrite_all(self.index_fd, struct.pack(f">{len(ends)}Q", *ends), self.size * _OFFSET.size)
        self.size, self.end = size, pos
        return due

    def store_checkpoint(self, note: bytes, size: int) -> bytes:
        """Store a signed checkpoint as ``checkpoints/<size>``, atomically."""
        path = self.paths.checkpoint(size)
        with contextlib.suppress(FileNotFoundError):
            if path.read_bytes() == note:  # Ed25519 is deterministic: same tree, same note
                return note
        write_atomic(path, note, mode=0o600, replace=True)
        self.last_checkpoint = max(self.last_checkpoint, size)
        return note

    # -- reading back ------------------------------------------------------

    def line(self, seq: int) -> bytes:
        """The exact bytes of line ``seq`` (without its newline)."""
        if not 0 <= seq < self.size:
            raise IndexError(seq)
        return read_line(self.index_fd, self.read_fd, seq)

    def trailing_fragments(self) -> list[tuple[int, bytes]]:
        """Lines at the end of the log that are not records and not yet set
        aside (left by a crash during an earlier recovery), oldest first."""
        run: list[tuple[int, bytes]] = []
        seq = self.size - 1
        while seq >= 0:
            line = self.line(seq)
            try:
                AuditRecord.from_line(line)
            except AuditIntegrityError:
                run.append((seq, line))
                seq -= 1
            else:
                break
            if len(run) > MAX_FRAGMENTS:  # crashes leave one or two, not this
                raise AuditIntegrityError(
                    f"lines {run[-1][0]} to {self.size - 1} of the audit log are not records",
                    kind="inserted",
                    seq=run[-1][0],
                    hint="run 'vault audit verify' and treat this as an incident",
                )
        return run[::-1]


def read_line(index_fd: int, log_fd: int, seq: int) -> bytes:
    """Line ``seq`` of the log, located through the index."""
    if seq:
        start, end = struct.unpack(">2Q", os.pread(index_fd, 16, (seq - 1) * 8))
    else:
        start, end = 0, _OFFSET.unpack(os.pread(index_fd, 8, 0))[0]
    data = os.pread(log_fd, end - start, start)
    if len(data) != end - start or not data.endswith(b"\n"):
        raise AuditIntegrityError(
            f"record {seq} is not where the index says", kind="truncated", seq=seq
        )
    return data[:-1]
