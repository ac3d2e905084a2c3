"""The audit log in PostgreSQL (docs/DEPLOYMENT.md §4; docs/AUDIT.md).

The same log as a folder vault's, stored in three append-only tables:

* ``vault.audit_log (seq, line)`` -- line ``seq`` of docs/AUDIT.md §2-3,
  byte for byte (the Merkle leaf);
* ``vault.audit_hashes (n, hash)`` -- the stored hashes of docs/AUDIT.md
  §5: row ``n`` is hash number ``n`` of the hash file;
* ``vault.audit_checkpoints (size, note)`` -- the signed checkpoints of
  docs/AUDIT.md §6, one per tree size.

So the Merkle tree, the checkpoints and the proofs are exactly those of a
folder log with the same lines; moving a vault between backends copies the
lines and checkpoints verbatim.

Appending (docs/AUDIT.md §8, in a database): one transaction takes the
advisory lock :data:`AUDIT_LOCK`, reads the log's size and the tree's right
edge (``O(log n)`` stored hashes), signs the records with ``seq`` = the
next line numbers, inserts the lines, their stored hashes and any
checkpoint due, and commits. The lock gives the records of every machine
one total order; triggers check that each row is the next one and refuse
UPDATE, DELETE and TRUNCATE. A transaction commits entirely or not at all,
so there are no torn lines here (docs/AUDIT.md §7 only matters for logs
moved in from a folder, which must have none pending). Fail-closed: any
failure raises :class:`~vault.errors.AuditWriteError` and the caller does
not act; a commit whose acknowledgement was lost may have stored the
record -- a record without its action, never the reverse.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault.audit import AuditLog, AuditRecord, Checkpoint, NoteSigner, NoteVerifier
from vault.audit._checkpoint import open_checkpoint
from vault.audit._hashing import leaf_hash
from vault.audit._proof import consistency_proof, inclusion_proof, verify_inclusion
from vault.audit._reader import parse_lines
from vault.audit._record import build_record, format_time
from vault.audit._tlogproof import TlogProof
from vault.audit._tree import (
    CompactRange,
    fold,
    split_range,
    stored_hash_count,
    stored_hash_index,
)
from vault.audit._verify import VerifyReport
from vault.audit.note import parse_note
from vault.errors import (
    AuditIntegrityError,
    AuditWriteError,
    MerkleError,
    UsageError,
    VaultError,
)
from vault.store._pg_conn import Connection, Database, describe, storage_errors
from vault.store._pg_schema import AUDIT_LOCK

__all__ = ["AUDIT_LOCK", "PostgresAuditLog", "StoredHashes"]

KeyLookup = Callable[[str, str], Ed25519PublicKey | None]
_FETCH = 5000  # lines per round trip when streaming the log


def _write_failed(e: BaseException) -> AuditWriteError:
    return AuditWriteError(
        f"audit record not durable: {describe(e)}",
        hint="the operation was not performed; check the database server and retry",
    )


_APPEND = ("SELECT vault.audit_append(%s, %s::bytea[], %s, %s::bytea[], %s::bigint[],"
           " %s::bytea[])")
_LOCKED_AFTER_MISS = 8  # appends that take the lock first after a wrong guess


@dataclass
class _Plan:
    """Signed records ready to insert after line ``first``."""

    records: list[AuditRecord]
    first: int
    edge: CompactRange  # the tree's right edge once they are in
    stored: list[bytes]  # their stored hashes, in order
    notes: list[tuple[int, bytes]]  # checkpoints due: (size, signed note)


def _extend(edge: CompactRange, lines: list[bytes],
            every: int) -> tuple[list[bytes], list[tuple[int, bytes]]]:
    """Add ``lines`` to ``edge``: their stored hashes, and ``(size, root)``
    at each multiple of ``every`` on the way."""
    stored: list[bytes] = []
    due: list[tuple[int, bytes]] = []
    for line in lines:
        stored += edge.append(leaf_hash(line))
        if every and edge.size % every == 0:
            due.append((edge.size, edge.root()))
    return stored, due


class StoredHashes:
    """Subtree hashes read from ``vault.audit_hashes`` (docs/AUDIT.md §5),
    fetched in one query per batch of ranges."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._cache: dict[int, bytes] = {}

    def fetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        want = sorted({stored_hash_index(lv, i) for lo, hi in ranges
                       for lv, i in split_range(lo, hi)} - set(self._cache))
        if want:
            rows = self._conn.execute("SELECT n, hash FROM vault.audit_hashes"
                                      " WHERE n = ANY(%s)", (want,)).fetchall()
            self._cache.update((int(n), bytes(h)) for n, h in rows)

    def subtree(self, lo: int, hi: int) -> bytes:
        """``MTH(D[lo:hi])`` (call :meth:`fetch` first for speed)."""
        self.fetch([(lo, hi)])
        try:
            return fold([self._cache[stored_hash_index(lv, i)] for lv, i in split_range(lo, hi)])
        except KeyError:
            raise AuditIntegrityError("the audit log's stored hashes are incomplete",
                                      kind="truncated") from None

    def compact_range(self, size: int) -> CompactRange:
        self.fetch([(0, size)])
        return CompactRange(size, [self.subtree(i << lv, (i + 1) << lv)
                                   for lv, i in split_range(0, size)])

    def prefetched(self, make: Callable[[Callable[[int, int], bytes]], Any]) -> Any:
        """Run ``make(subtree)`` twice: once to learn which subtrees it
        reads, then for real with all of them fetched in one query."""
        wanted: list[tuple[int, int]] = []

        def record(lo: int, hi: int) -> bytes:
            wanted.append((lo, hi))
            return bytes(32)

        make(record)
        self.fetch(wanted)
        return make(self.subtree)


class PostgresAuditLog(AuditLog):
    """:class:`vault.audit.AuditLog` on the vault's database.

    The interface is the folder log's; only the storage differs. (The
    constructor takes the database instead of a directory.)
    """

    def __init__(self, db: Database, *, checkpoint_signer: NoteSigner | None = None,
                 checkpoint_every: int = 1000, origin: str | None = None) -> None:
        # Not AuditLog.__init__: that one opens a directory.
        if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
            raise ValueError("checkpoint_every must be an integer >= 0 (0: only on demand)")
        if checkpoint_signer is not None and not isinstance(checkpoint_signer, NoteSigner):
            raise TypeError("checkpoint_signer must be a NoteSigner")
        self.db = db
        self.checkpoint_signer = checkpoint_signer
        self.checkpoint_every = checkpoint_every
        self.origin = origin if origin is not None else (
            checkpoint_signer.name if checkpoint_signer else None)
        if self.origin is not None:
            Checkpoint(self.origin, 0, bytes(32))  # validates the origin's syntax
        self._host = socket.gethostname()
        self._edge: CompactRange | None = None  # right edge after our last append
        self._checkpointed = 0  # size of the newest checkpoint we know of
        self._guess = _LOCKED_AFTER_MISS  # appends since a wrong guess (see append_many)

    def close(self) -> None:
        self._edge = None

    # -- appending ---------------------------------------------------------

    def append_many(
        self, items: Iterable[tuple[Mapping[str, Any], Ed25519PrivateKey]]
    ) -> list[AuditRecord]:
        batch = list(items)
        if not batch:
            return []
        try:
            with self.db.connection() as conn:
                records = self._append_guessing(conn, batch) \
                    if self._guess >= _LOCKED_AFTER_MISS else None
                if records is None:
                    records = self._append_under_lock(conn, batch)
        except (VaultError, ValueError, TypeError):
            raise
        except Exception as e:
            self._edge = None
            raise _write_failed(e) from e
        return records

    def _append_guessing(self, conn: Connection,
                         batch: list[tuple[Mapping[str, Any], Ed25519PrivateKey]]
                         ) -> list[AuditRecord] | None:
        """One statement, one round trip: records signed for the length the
        log had after our last append. None when someone appended since
        (nothing written); then later appends take the lock first for a
        while (:data:`_LOCKED_AFTER_MISS`)."""
        if self._edge is None:
            return None
        plan = self._plan(batch, self._edge, self._checkpointed)
        if self._send(conn, plan):
            self._committed(plan)
            return plan.records
        self._edge, self._guess = None, 0
        return None

    def _append_under_lock(self, conn: Connection,
                       batch: list[tuple[Mapping[str, Any], Ed25519PrivateKey]]
                       ) -> list[AuditRecord]:
        """Take the append lock, learn the log's head, sign, insert, commit."""
        cur = conn.execute("BEGIN; SELECT head, checkpointed, edge FROM vault.audit_head()")
        try:
            cur.nextset()
            row = cur.fetchone()
            assert row is not None
            head, checkpointed, hashes = int(row[0]), int(row[1]), list(row[2])
            if any(h is None for h in hashes):
                raise AuditIntegrityError("the audit log's stored hashes are incomplete",
                                          kind="truncated", seq=head)
            plan = self._plan(batch, CompactRange(head, [bytes(h) for h in hashes]),
                              checkpointed)
            with conn.pipeline():  # the insert and the commit in one round trip
                sent = self._send(conn, plan)
                conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            raise
        assert sent  # we held the lock
        self._committed(plan)
        self._guess = min(self._guess + 1, _LOCKED_AFTER_MISS)
        return plan.records

    def _plan(self, batch: list[tuple[Mapping[str, Any], Ed25519PrivateKey]],
              edge: CompactRange, checkpointed: int) -> _Plan:
        """Sign the records for the lines after ``edge``; work out their stored
        hashes and the checkpoints due (docs/AUDIT.md §5-6)."""
        size = edge.size
        now = format_time(datetime.now(UTC))  # one moment for the whole batch
        records = [build_record(fields, signer, seq=size + i, time=now, host=self._host,
                                pid=os.getpid(), request=secrets.token_hex(16))
                   for i, (fields, signer) in enumerate(batch)]
        edge = edge.copy()
        stored, due = _extend(edge, [r.line for r in records], self.checkpoint_every)
        every = self.checkpoint_every
        if not due and every and edge.size - checkpointed >= every:
            due = [(edge.size, edge.root())]  # catch up after a writer without the key
        notes: list[tuple[int, bytes]] = []
        if self.checkpoint_signer is not None and every:
            assert self.origin is not None
            notes = [(n, Checkpoint(self.origin, n, root).sign([self.checkpoint_signer]))
                     for n, root in due]
        return _Plan(records, size, edge, stored, notes)

    def _send(self, conn: Connection, plan: _Plan) -> bool:
        """Insert the plan's rows if the log still ends where it expects."""
        cur = conn.execute(_APPEND, (plan.first, [r.line for r in plan.records],
                                     stored_hash_count(plan.first), plan.stored,
                                     [n for n, _ in plan.notes], [t for _, t in plan.notes]))
        row = cur.fetchone()
        return row is not None and int(row[0]) == -1

    def _committed(self, plan: _Plan) -> None:
        self._edge = plan.edge
        if plan.notes:
            self._checkpointed = max(self._checkpointed, plan.notes[-1][0])

    def import_lines(self, lines: Iterable[bytes],
                     checkpoints: Mapping[int, bytes]) -> tuple[int, bytes]:
        """Fill an empty log with another log's lines and checkpoints, byte
        for byte (moving a vault, docs/DEPLOYMENT.md §7); ``(size, root)``.
        One transaction: all of it, or nothing."""
        edge = CompactRange()
        try:
            with self.db.transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
                if self._head(conn)[0]:
                    raise UsageError("the destination's audit log is not empty")
                batch: list[bytes] = []
                for line in itertools.chain(lines, [None]):  # None: flush the last batch
                    if line is not None:
                        batch.append(line)
                    if batch and (line is None or len(batch) >= _FETCH):
                        first = edge.size
                        stored, _ = _extend(edge, batch, 0)
                        conn.execute(_APPEND, (first, batch, stored_hash_count(first), stored,
                                               [], []))
                        batch = []
                notes = sorted(checkpoints.items())
                conn.execute(_APPEND, (edge.size, [], stored_hash_count(edge.size), [],
                                       [n for n, _ in notes], [t for _, t in notes]))
        except VaultError:
            raise
        except psycopg.Error as e:
            raise _write_failed(e) from e
        return edge.size, edge.root()

    def _head(self, conn: Connection) -> tuple[int, int]:
        row = conn.execute("SELECT (SELECT coalesce(max(seq) + 1, 0) FROM vault.audit_log),"
                           " (SELECT coalesce(max(size), 0) FROM vault.audit_checkpoints)"
                           ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    # -- checkpoints -------------------------------------------------------

    def _store_checkpoint(self, conn: Connection, size: int, root: bytes) -> bytes:
        signer = self._require_signer()
        assert self.origin is not None
        note = Checkpoint(self.origin, size, root).sign([signer])
        conn.execute("INSERT INTO vault.audit_checkpoints (size, note) VALUES (%s, %s)"
                     " ON CONFLICT (size) DO NOTHING", (size, note))
        return note

    def checkpoint(self) -> bytes:
        """Sign and store a checkpoint of the log as it is now; return it."""
        self._require_signer()
        try:
            with self.db.transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
                size, _ = self._head(conn)
                root = StoredHashes(conn).compact_range(size).root()
                return self._store_checkpoint(conn, size, root)
        except VaultError:
            raise
        except psycopg.Error as e:
            raise AuditWriteError(f"cannot write a checkpoint: {describe(e)}") from e

    def latest_checkpoint(self) -> bytes | None:
        with storage_errors("cannot read the audit log"), self.db.connection() as conn:
            row = conn.execute("SELECT note FROM vault.audit_checkpoints"
                               " ORDER BY size DESC LIMIT 1").fetchone()
        return bytes(row[0]) if row else None

    def _require_signer(self) -> NoteSigner:
        if self.checkpoint_signer is None:
            raise UsageError(
                "this audit log has no checkpoint key",
                hint="use a database role that may read the checkpoint key "
                     "(docs/DEPLOYMENT.md §6)",
            )
        return self.checkpoint_signer

    def verifier(self) -> NoteVerifier:
        return self._require_signer().verifier

    # -- reading -----------------------------------------------------------

    def lines(self) -> Iterator[bytes]:
        """Every line of the log, in order, from one consistent snapshot."""
        with storage_errors("cannot read the audit log"), self.db.snapshot() as conn, \
                conn.cursor(name="vault_audit_lines") as cur:
            cur.itersize = _FETCH
            cur.execute("SELECT line FROM vault.audit_log ORDER BY seq")
            for (line,) in cur:
                yield bytes(line)

    def _records(self) -> Iterator[AuditRecord]:
        return parse_lines(enumerate(self.lines()))

    def verify(
        self,
        *,
        trusted_checkpoint: bytes | None = None,
        key_lookup: KeyLookup | None = None,
        verifier: NoteVerifier | None = None,
    ) -> VerifyReport:
        from vault.store._pg_verify import verify_database

        verifier = verifier or self.verifier()
        return verify_database(self.db, verifier=verifier, origin=self.origin or verifier.name,
                               trusted_checkpoint=trusted_checkpoint, key_lookup=key_lookup)

    # -- proofs ------------------------------------------------------------

    def prove(self, seq: int) -> str:
        if not isinstance(seq, int) or seq < 0:
            raise ValueError("seq must be a non-negative integer")
        note = self.latest_checkpoint()
        if note is None or self._checkpoint_from(note).size <= seq:
            if self.checkpoint_signer is None:
                raise UsageError(f"no checkpoint covers record {seq} yet",
                                 hint="create one with 'vault audit checkpoint'")
            note = self.checkpoint()
        checkpoint = self._checkpoint_from(note)
        if seq >= checkpoint.size:
            raise UsageError(f"there is no record {seq}: the log holds {checkpoint.size} lines")
        with storage_errors("cannot read the audit log"), self.db.snapshot() as conn:
            row = conn.execute("SELECT line FROM vault.audit_log WHERE seq = %s",
                               (seq,)).fetchone()
            proof = StoredHashes(conn).prefetched(
                lambda sub: inclusion_proof(seq, checkpoint.size, sub))
        line = bytes(row[0]) if row else b""
        try:
            verify_inclusion(seq, checkpoint.size, leaf_hash(line), proof, checkpoint.root)
        except MerkleError as e:
            e.hint = "the stored hashes do not match the checkpoint: run 'vault doctor'"
            raise
        return TlogProof(seq, tuple(proof), note, extra=line).to_text()

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        with storage_errors("cannot read the audit log"), self.db.snapshot() as conn:
            size, _ = self._head(conn)
            if not 0 < old_size <= new_size <= size:
                raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
            result: list[bytes] = StoredHashes(conn).prefetched(
                lambda sub: consistency_proof(old_size, new_size, sub))
        return result

    def _checkpoint_from(self, note: bytes) -> Checkpoint:
        if self.checkpoint_signer is not None:
            return open_checkpoint(note, [self.checkpoint_signer.verifier], origin=self.origin)
        unverified_text, _ = parse_note(note)  # the proof's reader verifies it
        return Checkpoint.from_text(unverified_text)
