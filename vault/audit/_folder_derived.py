"""The folder's derived files, ``hashes`` and ``index`` (docs/AUDIT.md §1, §6).

Extended by the writer after each append, never fsynced, checked before use
and rebuilt from the log when they disagree with it (:mod:`._writer`).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Sequence
from pathlib import Path

from vault._atomic import NotRegularFile, open_regular
from vault.audit._files import LogPaths
from vault.audit._hashing import HASH_SIZE
from vault.audit._storage import DerivedStore
from vault.audit._tree import HashFile, StoredHashes, stored_hash_count

__all__ = ["FolderDerived"]

_OFFSET = struct.Struct(">Q")


class FolderDerived(DerivedStore):
    """``hashes`` and ``index`` (docs/AUDIT.md §6): written through the
    writer's descriptors inside the exclusive lock, else read-only."""

    writable = True

    def __init__(self, paths: LogPaths, hash_fd: int | None = None,
                 index_fd: int | None = None) -> None:
        self._stack = contextlib.ExitStack()
        self.hash_fd = hash_fd if hash_fd is not None else self._open(paths.hashes)
        self.index_fd = index_fd if index_fd is not None else self._open(paths.index)

    def _open(self, path: Path) -> int:
        try:
            fd = open_regular(path, alone=True)
        except (FileNotFoundError, NotRegularFile):  # a pipe, a hard link: rebuilt by the writer
            fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # reads as empty
        self._stack.callback(os.close, fd)
        return fd

    def close(self) -> None:
        self._stack.close()

    def hashes(self) -> StoredHashes:
        return HashFile(self.hash_fd)

    def covered(self) -> int:
        lines = os.fstat(self.index_fd).st_size // _OFFSET.size
        return min(lines, HashFile(self.hash_fd).leaf_count())

    def in_step(self, size: int, end: int, last_leaf: bytes) -> bool:
        # Two fstat and two pread calls: this runs on every append.
        if os.fstat(self.index_fd).st_size != size * _OFFSET.size:
            return False
        if os.fstat(self.hash_fd).st_size != stored_hash_count(size) * HASH_SIZE:
            return False
        if size == 0:
            return True
        return (os.pread(self.index_fd, 8, (size - 1) * 8) == _OFFSET.pack(end)
                and os.pread(self.hash_fd, HASH_SIZE,
                             stored_hash_count(size - 1) * HASH_SIZE) == last_leaf)

    def end_of(self, size: int) -> int | None:
        if size == 0:
            return 0
        raw = os.pread(self.index_fd, 8, (size - 1) * 8)
        return _OFFSET.unpack(raw)[0] if len(raw) == 8 else None

    def extend(self, size: int, ends: Sequence[int], stored: bytes) -> None:
        # Written at the place of line ``size``: the files hold exactly that
        # many lines (the writer checked them, or rebuilt them, this turn).
        hash_at = stored_hash_count(size) * HASH_SIZE
        _pwrite_all(self.hash_fd, stored, hash_at)
        _pwrite_all(self.index_fd, struct.pack(f">{len(ends)}Q", *ends), size * _OFFSET.size)

    def reset(self) -> None:
        os.ftruncate(self.hash_fd, 0)
        os.ftruncate(self.index_fd, 0)

    def holds(self, at_hash: int, stored: bytes, at_line: int, ends: Sequence[int]) -> bool:
        packed = struct.pack(f">{len(ends)}Q", *ends)
        return (os.pread(self.hash_fd, len(stored), at_hash * HASH_SIZE) == stored
                and os.pread(self.index_fd, len(packed), at_line * _OFFSET.size) == packed)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
