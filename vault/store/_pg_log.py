"""The audit log's storage in PostgreSQL (docs/AUDIT.md §13; docs/DEPLOYMENT.md §4).

A :class:`vault.audit.LogStorage` over three tables of the vault schema:

* ``vault.audit_log (seq, line)`` -- line ``seq`` of the log, byte for byte;
* ``vault.audit_checkpoints (size, note)`` -- the signed checkpoints;
* ``vault.audit_tree (seq, hashes)`` -- derived: the stored hashes line
  ``seq`` adds to the Merkle tree (docs/AUDIT.md §6), computed by the
  database itself as each line is inserted; no application role may write it.

So the tree, the checkpoints and the proofs are exactly a folder log's with
the same lines. All the log logic is :class:`vault.audit.AuditLog`'s; here
are only storage operations. A writer's turn is one transaction holding the
advisory lock :data:`AUDIT_LOCK`: its lines and checkpoints commit together
or not at all, so nothing tears. Readers use REPEATABLE READ snapshots.
The schema refuses rows the log logic would reject (:mod:`._pg_schema`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import EllipsisType
from typing import Any

import psycopg

from vault.audit import DerivedStore, LineSource, LogEnd, LogStorage, StoredHashes
from vault.audit import stored_hash_count as _count
from vault.audit._storage import LINES_BYTES, MAX_CHECKPOINT
from vault.errors import AuditWriteError, IntegrityError, UsageError
from vault.store._pg_conn import Connection, Database, describe, lock_wait_error, storage_errors
from vault.store._pg_schema import AUDIT_LOCK

__all__ = ["AUDIT_LOCK", "PostgresLogStorage"]

_FETCH = 5000  # lines per round trip when streaming the log
# ... and bytes: the role can insert lines of 512 KiB that the schema takes
# for records, and 5,000 of them in one answer cost every reader 2.5 GiB.
# A block stops at the line that takes it past this (at least one line):
# the bound every storage's lines() keeps.
_FETCH_BYTES = LINES_BYTES
# The lines of seq >= %s, at most %s of them and as many as fit in %s bytes
# (the first always), each with how many the first two bounds allowed.
_BOUNDED = ("SELECT seq, line, n FROM (SELECT seq, line, count(*) OVER () AS n,"
            " sum(octet_length(line)) OVER (ORDER BY seq) - octet_length(line) AS before"
            " FROM (SELECT seq, line FROM vault.audit_log WHERE seq >= %s AND seq < %s"
            " ORDER BY seq LIMIT %s) AS t) AS w WHERE before < %s ORDER BY seq")
_NO_END = 2**62  # no upper bound on seq
_INSERT = ("INSERT INTO vault.audit_log (seq, line) SELECT %s + u.i - 1, u.line"
           " FROM unnest(%s::bytea[]) WITH ORDINALITY AS u(line, i) ORDER BY u.i")
_HEAD = "SELECT coalesce(max(seq) + 1, 0) FROM vault.audit_log"
#: The longest line a log moved into a database may hold: the schema's bound
#: on every line (a record is at most 512 KiB: only junk is longer, and a
#: line of 300 MB took three minutes to insert).
MAX_IMPORTED_LINE = 64 * 1024 * 1024


def _leaf_of(x: int) -> tuple[int, int]:
    """Stored hash number ``x`` as (leaf, level): leaf ``i`` writes hashes
    N(i) .. N(i + 1) - 1 (docs/AUDIT.md §6), N(i) = 2i - popcount(i)."""
    i = x // 2
    while _count(i) > x:
        i -= 1
    while _count(i + 1) <= x:
        i += 1
    return i, x - _count(i)


class _Rows(LineSource):
    """Lines ``start <= seq < stop``, in blocks: on the session of the
    exclusive() or shared() block the iterating thread is in, else on a
    snapshot of their own (rows are only ever added: any snapshot sees the
    same ones)."""

    def __init__(self, storage: PostgresLogStorage, start: int, stop: int) -> None:
        self._storage, self._start, self._stop = storage, start, stop
        self._stack = contextlib.ExitStack()

    def __iter__(self) -> Iterator[list[bytes]]:
        with self._stack, storage_errors("cannot read the audit log"):
            conn = self._storage._conn or self._stack.enter_context(self._storage.db.snapshot())
            # A page of seq numbers at a time (rows are numbered without gaps):
            # no server-side cursor, which a writer's session cannot open while
            # its transaction is pipelined -- a writer far behind reads many.
            start = self._start
            while start < self._stop:
                block = [bytes(r[1]) for r in conn.execute(
                    _BOUNDED, (start, self._stop, _FETCH, _FETCH_BYTES))]
                if not block:
                    return
                yield block
                start += len(block)

    def close(self) -> None:
        self._stack.close()


class _Fetched(LineSource):
    """Lines a writer's turn fetched already (see end_and_last)."""

    def __init__(self, lines: list[bytes]) -> None:
        self._lines = lines

    def __iter__(self) -> Iterator[list[bytes]]:
        if self._lines:
            yield self._lines


class PostgresLogStorage(LogStorage):
    """The audit log of the vault in database ``db`` (see module doc)."""

    can_tear = False

    def __init__(self, db: Database) -> None:
        self.db = db
        self.location = db.location
        # Per thread: the session of the exclusive() or shared() block the
        # thread is in (a connection is never shared between threads).
        self._local = threading.local()

    @property
    def _conn(self) -> Connection | None:
        return getattr(self._local, "conn", None)

    @_conn.setter
    def _conn(self, conn: Connection | None) -> None:
        self._local.conn = conn

    @property
    def _writing(self) -> bool:
        return bool(getattr(self._local, "writing", False))

    @_writing.setter
    def _writing(self, value: bool) -> None:
        self._local.writing = value

    @property
    def _head(self) -> int:
        return int(getattr(self._local, "head", -1))

    @_head.setter
    def _head(self, value: int) -> None:
        self._local.head = value

    @contextlib.contextmanager
    def _session(self) -> Iterator[Connection]:
        if self._conn is not None:
            try:
                yield self._conn
            except psycopg.errors.LockNotAvailable as e:  # lock_timeout ran out
                raise self._lock_wait(writing=self._writing) from e
        else:
            with storage_errors("cannot read the audit log"), self.db.connection() as conn:
                yield conn

    def _lock_wait(self, *, writing: bool) -> Exception:
        """Another session kept a lock this one needs (see _pg_conn)."""
        if not writing:
            return lock_wait_error(self.db, "cannot read the audit log")
        return lock_wait_error(self.db, "audit record not durable: cannot append",
                               AuditWriteError, "the operation was not performed")

    # -- locking ---------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        # Errors stay psycopg's here: AuditLog reports them as AuditWriteError.
        # Round trips: BEGIN and the lock are queued in pipeline mode and go
        # with the writer's first query (which runs after the lock is held:
        # statements run in order, each on a snapshot of its own); the lines
        # appended are queued again and go with the COMMIT, whose outcome --
        # an error raised by a trigger included -- is known before this
        # block ends. So a turn is two round trips.
        with self.db.connection() as conn:
            self._pipelined(conn)
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
                    self._conn, self._writing, self._head = conn, True, -1
                    try:
                        yield
                    finally:
                        self._conn, self._writing, self._local.ahead = None, False, None
            except BaseException as e:
                with contextlib.suppress(psycopg.Error):  # the first error is the one to tell
                    self._unpipelined()
                if isinstance(e, psycopg.errors.LockNotAvailable):  # at the COMMIT
                    raise self._lock_wait(writing=True) from e
                raise
            self._unpipelined()

    def _pipelined(self, conn: Connection) -> None:
        """Queue what follows until a result is needed (pipeline mode)."""
        if getattr(self._local, "pipeline", None) is None:
            self._local.pipeline = conn.pipeline()
            self._local.pipeline.__enter__()

    def _unpipelined(self) -> None:
        """Leave pipeline mode (sending what is queued): before a statement
        that pipeline mode does not take, such as a server-side cursor."""
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is not None:
            self._local.pipeline = None
            pipeline.__exit__(None, None, None)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        if self._conn is not None:
            yield
            return
        with storage_errors("cannot read the audit log"), self.db.snapshot() as conn:
            self._conn = conn
            try:
                yield
            finally:
                self._conn = None

    # -- lines -----------------------------------------------------------------

    def end(self) -> LogEnd:
        with self._session() as conn:
            row = conn.execute(_HEAD).fetchone()
        head = int(row[0]) if row else 0
        if self._writing:
            self._head = head
        return LogEnd(head, None)

    def end_and_last(self, size: int,
                     end_offset: int) -> tuple[LogEnd, list[bytes] | EllipsisType | None]:
        # One statement (one snapshot): line size - 1 and the lines after it,
        # which a writer's turn reads next -- kept for read() to hand over.
        with self._session() as conn:
            rows = conn.execute(_BOUNDED, (size - 1, _NO_END, _FETCH + 1,
                                           _FETCH_BYTES)).fetchall()
            found = bool(rows) and int(rows[0][0]) == size - 1
            # Every line since: fewer than the count bound, none cut by bytes.
            whole = found and len(rows) == int(rows[0][2]) and len(rows) <= _FETCH
            if whole:
                head = int(rows[-1][0]) + 1
            else:  # many lines since, or not the line expected: the head on its own
                row = conn.execute(_HEAD).fetchone()
                head = int(row[0]) if row else 0
        self._unpipelined()  # the turn's first round trip is done
        if self._writing:
            self._head = head
            self._local.ahead = (size, head, [bytes(r[1]) for r in rows[1:]]) if whole \
                else None
        if size == 0:
            return LogEnd(head, None), []
        return LogEnd(head, None), [bytes(rows[0][1])] if found else None

    def read(self, start: int, offset: int, stop: LogEnd | None = None) -> LineSource:
        if stop is None or stop.lines is None:
            stop = self.end()
        assert stop.lines is not None
        ahead = getattr(self._local, "ahead", None) if self._writing else None
        if ahead is not None and ahead[0] == start and ahead[1] == stop.lines:
            self._local.ahead = None
            return _Fetched(ahead[2])  # read with the turn's first query
        return _Rows(self, start, stop.lines)

    def lines_before(self, size: int, end_offset: int, count: int) -> list[bytes] | None:
        if size == 0 or count <= 0:
            return []
        with self._session() as conn:
            # At most _FETCH_BYTES (and one line) at a time, as _BOUNDED.
            rows = conn.execute(
                "SELECT seq, line FROM (SELECT seq, line, sum(octet_length(line)) OVER"
                " (ORDER BY seq DESC) - octet_length(line) AS after FROM (SELECT seq, line"
                " FROM vault.audit_log WHERE seq < %s ORDER BY seq DESC LIMIT %s) AS t) AS w"
                " WHERE after < %s ORDER BY seq DESC", (size, count, _FETCH_BYTES)).fetchall()
        if not rows or int(rows[0][0]) != size - 1:
            return None
        return [bytes(r[1]) for r in reversed(rows)]

    def line(self, seq: int) -> bytes | None:
        with self._session() as conn:
            row = conn.execute("SELECT line FROM vault.audit_log WHERE seq = %s",
                               (seq,)).fetchone()
        return bytes(row[0]) if row else None

    def lines(self, start: int, stop: int) -> list[bytes] | None:
        if not 0 <= start < stop:
            return [] if start == stop else None
        # What fits in _FETCH_BYTES, as _BOUNDED: the caller asks again.
        with self._session() as conn:
            rows = conn.execute(_BOUNDED, (start, stop, stop - start, _FETCH_BYTES)).fetchall()
        if not rows or [int(r[0]) for r in rows] != list(range(start, start + len(rows))):
            return None
        return [bytes(r[1]) for r in rows]

    def append(self, lines: Sequence[bytes], at: int) -> None:
        # ``at`` is the folder layout's: here every line is inserted under
        # its number, and audit_check_line, under the append lock any insert
        # takes, refuses a number that is not the next one -- no line can
        # land between the turn's catch-up and its own.
        assert self._writing and self._conn is not None
        if self._head < 0:
            self.end()
        self._pipelined(self._conn)  # sent with the COMMIT (see exclusive)
        self._conn.execute(_INSERT, (self._head, list(lines)))
        self._head += len(lines)

    # -- checkpoints -----------------------------------------------------------

    def checkpoint_sizes(self) -> list[int]:
        with self._session() as conn:
            rows = conn.execute("SELECT size FROM vault.audit_checkpoints ORDER BY size")
            return [int(r[0]) for r in rows]

    def read_checkpoint(self, size: int) -> bytes | None:
        with self._session() as conn:
            row = conn.execute("SELECT substring(note FROM 1 FOR %s)"
                               " FROM vault.audit_checkpoints WHERE size = %s",
                               (MAX_CHECKPOINT + 1, size)).fetchone()
        return bytes(row[0]) if row else None

    def store_checkpoint(self, size: int, note: bytes) -> bool:
        # Append-only: a row someone else stored for this size stays (and,
        # if it is bogus, is ignored by the log, docs/AUDIT.md §7); the
        # caller is told when it is not this note (Ed25519 is deterministic:
        # the same tree signed again is the same note).
        sql = ("INSERT INTO vault.audit_checkpoints (size, note) VALUES (%s, %s)"
               " ON CONFLICT (size) DO NOTHING RETURNING size")
        held = ("SELECT substring(note FROM 1 FOR %s) FROM vault.audit_checkpoints"
                " WHERE size = %s")
        with contextlib.ExitStack() as stack:
            conn = self._conn if self._writing and self._conn is not None else \
                stack.enter_context(self.db.connection())
            if conn.execute(sql, (size, note)).fetchone() is not None:
                return True
            row = conn.execute(held, (len(note) + 1, size)).fetchone()
        return row is not None and bytes(row[0]) == note

    # -- derived data and moves ------------------------------------------------

    def derived(self) -> DerivedStore | None:
        return _Tree(self)

    def import_log(self, lines: Iterable[bytes], checkpoints: Mapping[int, bytes]) -> None:
        # One transaction, which writes line 0: the schema takes from it
        # every line a folder log's readers set aside (schema version 22).
        try:
            with self.db.transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
                row = conn.execute(_HEAD).fetchone()
                if row and int(row[0]):
                    raise UsageError("the destination's audit log is not empty")
                head, held = 0, 0
                batch: list[bytes] = []
                for line in lines:
                    if len(line) > MAX_IMPORTED_LINE:
                        raise _too_long(head + len(batch), len(line))
                    # Bounded in bytes too: 5,000 junk lines of 300 KB were
                    # one statement of 1.5 GB, which the server refuses.
                    if batch and (len(batch) >= _FETCH or held + len(line) > _FETCH_BYTES):
                        conn.execute(_INSERT, (head, batch))
                        head, batch, held = head + len(batch), [], 0
                    batch.append(line)
                    held += len(line)
                if batch:
                    conn.execute(_INSERT, (head, batch))
                for size, note in sorted(checkpoints.items()):
                    conn.execute("INSERT INTO vault.audit_checkpoints (size, note)"
                                 " VALUES (%s, %s)", (size, note))
        except psycopg.errors.IntegrityError as e:
            # The schema's own checks, not the server or the connection.
            raise IntegrityError(
                f"the destination refused the audit log: {describe(e)}",
                hint="its schema's checks refused a line or checkpoint that the vault's "
                     "migrations take from a log that verifies (has its owner changed the "
                     "schema?); nothing of the log was written there") from e
        except psycopg.Error as e:
            with storage_errors("cannot import the audit log"):
                raise e


def _too_long(seq: int, size: int) -> IntegrityError:
    return IntegrityError(
        f"audit line {seq} is {size:,} bytes, more than a database's audit log holds in a line "
        f"({MAX_IMPORTED_LINE:,}): this vault cannot move to PostgreSQL; nothing of the log was "
        "written there",
        hint="only junk is that long (a record is at most 512 KiB), and lines are never "
             "removed: keep the vault in a folder (a move to another folder takes it)")


class _Tree(DerivedStore):
    """``vault.audit_tree``: stored hashes the database computes (read-only)."""

    writable = False

    def __init__(self, storage: PostgresLogStorage) -> None:
        self._s = storage

    def covered(self) -> int:
        with self._s._session() as conn:
            row = conn.execute("SELECT coalesce(max(seq) + 1, 0) FROM vault.audit_tree")
            first = row.fetchone()
        return int(first[0]) if first else 0

    def hashes(self) -> StoredHashes:
        return StoredHashes(self._read, _count(self.covered()))

    def _read(self, indexes: Sequence[int]) -> list[bytes]:
        where = [_leaf_of(x) for x in indexes]
        with self._s._session() as conn:
            rows = conn.execute("SELECT seq, hashes FROM vault.audit_tree WHERE seq = ANY(%s)",
                                (sorted({leaf for leaf, _ in where}),)).fetchall()
        found: dict[int, Any] = {int(s): bytes(h) for s, h in rows}
        out = []
        for leaf, level in where:
            data = found.get(leaf, b"")
            h = data[level * 32 : (level + 1) * 32]
            if len(h) != 32:
                raise EOFError("the audit tree table lacks a hash")
            out.append(h)
        return out
