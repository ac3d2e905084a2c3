"""The log directory on disk (docs/AUDIT.md §1): names and block reads.

<dir>/log           records, one per line; opened O_APPEND, never rewritten
<dir>/hashes        stored Merkle hashes (derived from log, rebuilt if lost)
<dir>/index         big-endian uint64 end offset of each line (derived)
<dir>/checkpoints/  one signed checkpoint per file, named by tree size
<dir>/lock          flock(2) target serialising writers
<dir>/log.key       checkpoint signing key (standalone logs only, 0600)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vault._atomic import NotRegularFile, real_directory
from vault.audit._storage import LineSource

_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)  # a checkpoint's name

__all__ = ["BLOCK_SIZE", "LineBlocks", "LogPaths"]

BLOCK_SIZE = 1 << 22  # 4 MiB reads: few syscalls, cache-friendly splits


@dataclass(frozen=True)
class LogPaths:
    directory: Path

    @property
    def log(self) -> Path:
        return self.directory / "log"

    @property
    def hashes(self) -> Path:
        return self.directory / "hashes"

    @property
    def index(self) -> Path:
        return self.directory / "index"

    @property
    def lock(self) -> Path:
        return self.directory / "lock"

    @property
    def checkpoints(self) -> Path:
        return self.directory / "checkpoints"

    @property
    def key(self) -> Path:
        return self.directory / "log.key"

    def checkpoint(self, size: int) -> Path:
        return self.checkpoints / str(size)

    def checkpoint_sizes(self) -> list[int]:
        """Sizes of the stored checkpoints, ascending (temporary files skipped)."""
        try:
            if not real_directory(self.checkpoints):
                return []
        except NotRegularFile:  # a planted link: never read through (doctor names it)
            return []
        # A name is a size written in decimal with no leading zero; matched
        # in C, a name at a time: a log of a million records keeps a
        # thousand checkpoints, listed by every proof.
        return sorted(map(int, filter(_SIZE.fullmatch, os.listdir(self.checkpoints))))


class LineBlocks(LineSource):
    """Complete lines of ``fd[start:stop]`` in lists, one list per block read.

    After iteration, ``tail`` holds bytes after the last newline (a torn line
    or nothing) and ``end`` the offset just past the last complete line.
    Lines are split on 0x0A only: U+2028 and friends are ordinary bytes here.
    """

    def __init__(self, fd: int, start: int, stop: int) -> None:
        self.fd, self.start, self.stop = fd, start, stop
        self.tail = b""
        self.end = start

    def __iter__(self) -> Iterator[list[bytes]]:
        carry = b""
        pos = self.start
        while pos < self.stop:
            chunk = os.pread(self.fd, min(BLOCK_SIZE, self.stop - pos), pos)
            if not chunk:
                break
            pos += len(chunk)
            parts = (carry + chunk).split(b"\n") if carry else chunk.split(b"\n")
            carry = parts.pop()
            if parts:
                self.end = pos - len(carry)
                yield parts
        self.tail = carry
