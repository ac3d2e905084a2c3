"""Where a log's bytes live: the storage interface (docs/AUDIT.md §9).

:class:`~vault.audit.AuditLog` is written once, over this interface; a
storage only stores. It never parses a record, never decides what a line
means, never signs. Two implementations: a folder
(:mod:`vault.audit._folder`) and PostgreSQL (``vault.store._pg_log``).

Contract:

* :meth:`LogStorage.exclusive` serialises writers across processes (and
  threads); everything appended inside is durable once the block exits
  without an exception (a folder may ``fdatasync`` after releasing its lock,
  §9 group commit; a database commits). Checkpoints stored inside are never
  durable before the lines they cover.
* :meth:`LogStorage.shared` gives readers one consistent state: the end
  read inside it and every read started inside it see the same lines.
* Lines are bytes without their newline; a storage never holds a newline
  inside a line. A folder may be left with a *torn tail* (bytes after the
  last newline) by a crash; a database cannot tear.
* Derived data (:class:`DerivedStore`) is a cache the log logic checks
  before it relies on it, and rebuilds when it disagrees (§6).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import EllipsisType
from typing import NamedTuple

from vault.audit._tree import StoredHashes

__all__ = ["LINES_BYTES", "MAX_CHECKPOINT", "DerivedStore", "LineSource", "LogEnd", "LogStorage"]

#: The most bytes of a stored checkpoint note a reader takes (docs/AUDIT.md
#: §7). A checkpoint is a few hundred bytes, and a hundred signatures
#: (note.MAX_SIGNATURES) about 10 KB: a larger note is no checkpoint, and
#: whoever can store notes (a folder writer, the PostgreSQL application
#: role) must not make every verification hold them whole.
MAX_CHECKPOINT = 64 * 1024
#: the bytes one :meth:`LogStorage.lines` returns: the lines that begin
#: within them (at least one), as a reader's block of a database (§9.1)
LINES_BYTES = 4 * 1024 * 1024


class LogEnd(NamedTuple):
    """Where a log ends: ``lines`` when the storage counts its lines
    (PostgreSQL), ``offset`` in bytes, a torn tail included, when it is a
    file (folder). A storage gives at least one of them."""

    lines: int | None
    offset: int | None


class LineSource(abc.ABC):
    """Complete lines in blocks of many lines (one list per block), in order.
    After the iteration, ``tail`` holds bytes after the last newline."""

    tail: bytes = b""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[list[bytes]]: ...

    def close(self) -> None:
        """Give back what an unfinished iteration holds (a database snapshot)."""
        return None


class DerivedStore(abc.ABC):
    """Derived data a storage keeps (docs/AUDIT.md §6): the stored hashes of
    the Merkle tree, and for a file, the end offset of every line. Never
    trusted: whatever is read from it is checked against data the log logic
    computed from the lines."""

    #: whether the log logic may rewrite it (a database computes its own)
    writable: bool = False

    @abc.abstractmethod
    def hashes(self) -> StoredHashes:
        """The stored hashes, as they are now."""

    @abc.abstractmethod
    def covered(self) -> int:
        """How many lines the derived data claims to describe."""

    def in_step(self, size: int, end: int, last_leaf: bytes) -> bool:
        """Does it describe exactly ``size`` lines, ending at ``end``, the
        last with leaf hash ``last_leaf``? (The writer's check on every turn.)"""
        if self.covered() != size or self.end_of(size) not in (end, None):
            return False
        try:
            return size == 0 or self.hashes().leaf(size - 1) == last_leaf
        except EOFError:
            return False

    def end_of(self, size: int) -> int | None:
        """The offset just past the first ``size`` lines, if recorded."""
        return None

    def extend(self, size: int, ends: Sequence[int], stored: bytes) -> None:
        """Record lines ``size, size + 1, ...`` (their end offsets and the
        stored hashes they add) after exactly ``size`` lines (checked with
        :meth:`in_step`, or after :meth:`reset`)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget everything (a rebuild starts from here)."""
        raise NotImplementedError

    def holds(self, at_hash: int, stored: bytes, at_line: int, ends: Sequence[int]) -> bool:
        """Does it hold these stored hashes from hash number ``at_hash`` on,
        and these end offsets from line ``at_line`` on? (A full check, for a
        deep verification; a storage that computes its own may say True.)"""
        return True

    def close(self) -> None:
        """Give back descriptors or connections."""
        return None

    def __enter__(self) -> DerivedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LogStorage(abc.ABC):
    """The storage operations of one audit log (see module doc)."""

    #: a name for messages (a folder, a database without its password)
    location: str = ""
    #: True if a crash can leave a torn tail or a write can half-happen, so
    #: that a handle whose write failed must not append again (§9)
    can_tear: bool = False

    # -- locking ---------------------------------------------------------------

    @abc.abstractmethod
    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """The writers' lock; appends inside are durable when it exits."""

    @abc.abstractmethod
    def shared(self) -> contextlib.AbstractContextManager[None]:
        """A consistent view for readers (writers may go on meanwhile)."""

    # -- lines -----------------------------------------------------------------

    @abc.abstractmethod
    def end(self) -> LogEnd:
        """Where the log ends now."""

    @abc.abstractmethod
    def read(self, start: int, offset: int, stop: LogEnd | None = None) -> LineSource:
        """Lines from line ``start`` (at byte ``offset`` in the folder layout,
        a hint for storages with offsets) up to ``stop`` (default: the end)."""

    @abc.abstractmethod
    def lines_before(self, size: int, end_offset: int, count: int) -> list[bytes] | None:
        """Up to ``count`` lines ending with line ``size - 1`` (which ends
        ``end_offset`` bytes into the folder layout), oldest first; None when
        the storage holds fewer lines (or bytes). A storage with offsets
        returns ``[b"\\n"]`` -- never a line -- when no line ends there."""

    def end_and_last(self, size: int,
                     end_offset: int) -> tuple[LogEnd, list[bytes] | EllipsisType | None]:
        """:meth:`end`, and the line ending with line ``size - 1`` as
        ``lines_before(size, end_offset, 1)`` gives it -- or ``...`` when it
        was not read (a database answers both in one round trip; a writer
        checks its tip with it on every turn)."""
        return self.end(), ...

    def line(self, seq: int) -> bytes | None:
        """Line ``seq`` found cheaply (a file: through its derived index,
        unchecked), or None when the storage cannot tell."""
        return None

    def lines(self, start: int, stop: int) -> list[bytes] | None:
        """Lines from ``start``, before ``stop``, found cheaply, as :meth:`line`
        finds each (one read for them all where the storage can): as many as
        begin within the first :data:`LINES_BYTES` bytes -- at least line
        ``start``, and a caller asks again for the rest -- or None when line
        ``start`` is not found."""
        found: list[bytes] = []
        held = 0
        for seq in range(start, stop):
            line = self.line(seq)
            if line is None:
                return found or None
            found.append(line)
            held += len(line) + 1
            if held >= LINES_BYTES:
                break
        return found if found or start >= stop else None

    @abc.abstractmethod
    def append(self, lines: Sequence[bytes], at: int) -> None:
        """Append lines (inside :meth:`exclusive`) right after what the
        turn read, which ends ``at`` bytes into the folder layout. May fail
        part-way in a folder (a torn tail), never in a database. Lines that
        land anywhere else -- someone appended without the lock meanwhile --
        are a failed append (AuditWriteError): a file checks where each
        write landed; a database numbers its lines, and refuses another
        number under the lock."""

    def terminate_tail(self, at: int) -> None:
        """Make a torn tail, ending ``at`` bytes in, a line of its own (one
        newline, checked as :meth:`append`; folder only)."""
        raise NotImplementedError

    # -- checkpoints -----------------------------------------------------------

    @abc.abstractmethod
    def checkpoint_sizes(self) -> list[int]:
        """Sizes of the stored checkpoints, ascending."""

    @abc.abstractmethod
    def read_checkpoint(self, size: int) -> bytes | None:
        """The note stored for ``size`` (None: none), of which at most
        ``MAX_CHECKPOINT + 1`` bytes: a longer one then fails to verify."""

    @abc.abstractmethod
    def store_checkpoint(self, size: int, note: bytes) -> bool:
        """Store a signed checkpoint (inside :meth:`exclusive`: made durable
        with, or after, the lines it covers). False when another note holds
        that size and cannot be replaced (an append-only store)."""

    # -- derived data and moves ------------------------------------------------

    def derived(self) -> DerivedStore | None:
        return None

    @abc.abstractmethod
    def import_log(self, lines: Iterable[bytes], checkpoints: Mapping[int, bytes]) -> None:
        """Fill an empty storage with another log's lines and checkpoints,
        byte for byte (a move between backends). All or nothing where the
        storage can; a folder is refused afterwards if incomplete."""

    def close(self) -> None:
        """Close files or connections (a handle may be reopened by using it)."""
        return None
