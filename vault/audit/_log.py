"""The audit log: :class:`AuditLog` (docs/AUDIT.md).

Fail-closed contract (docs/AUDIT.md §8). :meth:`AuditLog.append` returns only
once its record is on stable storage (written with ``O_APPEND`` and
fsynced). If anything fails -- the lock, the write, the fsync, the tree
files, a checkpoint that is due -- it raises :class:`AuditWriteError` and the
caller MUST NOT perform the operation the record was about. A failed append
may still leave its record in the log (the write reached the file but the
fsync failed); it never leaves a performed operation without a record.
After a failed write the object refuses further appends: the kernel may
already have dropped the unwritten pages, so only a fresh :class:`AuditLog`
that re-reads the file from disk can be trusted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._files import LogPaths, Snapshot
from vault.audit._keyfile import load_key_file, write_key_file
from vault.audit._prover import make_consistency_proof, make_proof
from vault.audit._reader import iter_records, select
from vault.audit._record import (
    TORN_ACTION,
    AuditRecord,
    Fragment,
    build_record,
    fingerprint,
    format_time,
)
from vault.audit._verify import VerifyReport, verify_log
from vault.audit._writer import LogWriter
from vault.audit.note import NoteSigner, NoteVerifier, parse_note
from vault.errors import AuditWriteError, UsageError, VaultError

__all__ = ["AuditLog"]

KeyLookup = Callable[[str, str], Ed25519PublicKey | None]
_WRITE_CHUNK = 1 << 22  # batched appends: one write per 4 MiB, one fsync per batch
_TORN_REASON = "an interrupted write left these lines; they are set aside, not records"


def _write_failed(e: BaseException, what: str) -> AuditWriteError:
    reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
    return AuditWriteError(
        f"audit record not durable: {what}: {reason}",
        hint="the operation was not performed; fix the audit log's storage and retry",
    )


class AuditLog:
    """An append-only, tamper-evident audit log in one directory.

    ``checkpoint_signer`` signs checkpoints (every ``checkpoint_every``
    records, 0 for on demand only, and on :meth:`checkpoint`); its name is
    the default ``origin``. Without it the log can still be appended to and
    read, but not checkpointed.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        checkpoint_signer: NoteSigner | None = None,
        checkpoint_every: int = 1000,
        origin: str | None = None,
    ) -> None:
        if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
            raise ValueError("checkpoint_every must be an integer >= 0 (0: only on demand)")
        if checkpoint_signer is not None and not isinstance(checkpoint_signer, NoteSigner):
            raise TypeError("checkpoint_signer must be a NoteSigner")
        self.paths = LogPaths(Path(directory))
        self.checkpoint_signer = checkpoint_signer
        self.checkpoint_every = checkpoint_every
        self.origin = (
            origin
            if origin is not None
            else (checkpoint_signer.name if checkpoint_signer else None)
        )
        if self.origin is not None:
            Checkpoint(self.origin, 0, bytes(32))  # validates the origin's syntax
        self._host = socket.gethostname()
        self._mutex = threading.Lock()  # flock does not exclude threads sharing the fd
        self._writer: LogWriter | None = None
        self._failed = False
        self._fingerprints: dict[int, tuple[Ed25519PrivateKey, str]] = {}

    # -- creating and opening a standalone log (docs/AUDIT.md §1) -----------

    @classmethod
    def create(
        cls, directory: str | os.PathLike[str], *, origin: str, checkpoint_every: int = 1000
    ) -> AuditLog:
        """Create a new log directory with its own checkpoint key (``log.key``)."""
        paths = LogPaths(Path(directory))
        if paths.log.exists() or paths.key.exists():
            raise UsageError(f"{paths.directory} already holds an audit log")
        signer = NoteSigner.generate(origin)
        paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_key_file(paths.key, signer)
        log = cls(directory, checkpoint_signer=signer, checkpoint_every=checkpoint_every)
        with log._mutex:
            log._open_writer()
        return log

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, checkpoint_every: int = 1000) -> AuditLog:
        """Open an existing log directory, with its ``log.key`` if present."""
        paths = LogPaths(Path(directory))
        if not paths.log.is_file():
            raise UsageError(f"no audit log in {paths.directory}", hint="check the --log directory")
        signer = None
        with contextlib.suppress(FileNotFoundError):
            signer = load_key_file(paths.key)
        return cls(directory, checkpoint_signer=signer, checkpoint_every=checkpoint_every)

    def close(self) -> None:
        with self._mutex:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- appending ---------------------------------------------------------

    def append(self, fields: Mapping[str, Any], signer: Ed25519PrivateKey) -> AuditRecord:
        """Record one event, durably, before the caller acts on it.

        ``fields``: ``actor`` {name, key}, ``action``, ``outcome``, and
        optionally ``doc``, ``label`` {level, compartments}, ``rules``,
        ``reason``, ``policy``, ``request``. The log fills in seq, time, host,
        pid and a request id, and ``signer`` (the actor's key) signs.
        Raises ValueError/TypeError for bad fields (nothing written) and
        :class:`AuditWriteError` when the record is not durable: then the
        guarded operation must not happen.
        """
        return self.append_many([(fields, signer)])[0]

    def append_many(
        self, items: Iterable[tuple[Mapping[str, Any], Ed25519PrivateKey]]
    ) -> list[AuditRecord]:
        """Record several events with one fsync; all or none are durable."""
        batch = list(items)
        if not batch:
            return []
        with self._mutex:
            writer = self._open_writer()
            try:
                with writer.locked():
                    return self._append_locked(writer, batch)
            except (VaultError, ValueError, TypeError):
                raise
            except Exception as e:
                self._failed = True
                raise _write_failed(e, "cannot append") from e

    def _open_writer(self) -> LogWriter:
        if self._failed:
            raise AuditWriteError(
                "an earlier write to the audit log failed; this handle no longer appends",
                hint="open the audit log again once its storage is fixed",
            )
        if self._writer is not None and self._writer.pid != os.getpid():
            self._writer = None  # forked: never share locks or caches with the parent
        if self._writer is None:
            try:
                self._writer = LogWriter(self.paths)
            except OSError as e:
                raise _write_failed(e, f"cannot open {self.paths.directory}") from e
        return self._writer

    def _append_locked(
        self, writer: LogWriter, batch: list[tuple[Mapping[str, Any], Ed25519PrivateKey]]
    ) -> list[AuditRecord]:
        tail, changed = writer.sync()
        due: list[tuple[int, bytes]] = []
        if batch and (tail or changed):
            due += self._recover(writer, tail, batch[0])
        now = format_time(datetime.now(UTC))  # one moment for the whole batch
        records: list[AuditRecord] = []
        for fields, signer in batch:
            records.append(self._build(fields, signer, writer.size + len(records), now))
        data = b"".join(r.line + b"\n" for r in records)
        for start in range(0, len(data), _WRITE_CHUNK):
            writer.write(data[start : start + _WRITE_CHUNK])
        writer.flush()
        due += writer.add_lines([r.line for r in records], self.checkpoint_every)
        self._checkpoints_due(writer, due)
        return records

    def _fingerprint(self, signer: Ed25519PrivateKey) -> str | None:
        # Keyed by id() but holding the key itself, so an id is never reused
        # while cached. Small: a process signs for a handful of people.
        hit = self._fingerprints.get(id(signer))
        if hit is not None and hit[0] is signer:
            return hit[1]
        if not isinstance(signer, Ed25519PrivateKey):
            return None  # build_record reports the misuse
        if len(self._fingerprints) >= 64:
            self._fingerprints.clear()
        fp = fingerprint(signer.public_key())
        self._fingerprints[id(signer)] = (signer, fp)
        return fp

    def _build(
        self,
        fields: Mapping[str, Any],
        signer: Ed25519PrivateKey,
        seq: int,
        time: str | None = None,
        **extra: Any,
    ) -> AuditRecord:
        return build_record(
            fields,
            signer,
            seq=seq,
            time=time or format_time(datetime.now(UTC)),
            host=self._host,
            pid=os.getpid(),
            request=secrets.token_hex(16),
            signer_fingerprint=self._fingerprint(signer),
            **extra,
        )

    def _recover(
        self,
        writer: LogWriter,
        tail: bytes,
        first: tuple[Mapping[str, Any], Ed25519PrivateKey],
    ) -> list[tuple[int, bytes]]:
        """Set aside what an interrupted write left (docs/AUDIT.md §7).

        The torn tail is terminated with a newline, so it becomes an inert
        line (a leaf like any other); then a ``torn`` record, signed by the
        actor whose append found it, names every such line by position,
        SHA-256 and length. A crash in between leaves complete non-record
        lines at the end, which the next writer picks up the same way.
        """
        due: list[tuple[int, bytes]] = []
        if tail:
            writer.write_durable(b"\n")
            due += writer.add_lines([tail], self.checkpoint_every)
        run = writer.trailing_fragments()
        if not run:
            return due
        fields, signer = first
        actor = fields.get("actor") if isinstance(fields, Mapping) else None
        torn_fields = {
            "actor": actor,
            "action": TORN_ACTION,
            "outcome": "error",
            "reason": _TORN_REASON,
        }
        fragments = tuple(Fragment.of(seq, line) for seq, line in run)
        record = self._build(torn_fields, signer, writer.size, fragments=fragments)
        writer.write_durable(record.line + b"\n")
        return due + writer.add_lines([record.line], self.checkpoint_every)

    # -- checkpoints -------------------------------------------------------

    def _checkpoints_due(self, writer: LogWriter, due: list[tuple[int, bytes]]) -> None:
        signer = self.checkpoint_signer
        if signer is None or not self.checkpoint_every:
            return
        if not due:
            if writer.size - writer.last_checkpoint < self.checkpoint_every:
                return
            due = [(writer.size, writer.range.root())]  # catch up after a missed one
        for size, root in due:
            self._write_checkpoint(writer, signer, size, root)

    def _write_checkpoint(
        self, writer: LogWriter, signer: NoteSigner, size: int, root: bytes
    ) -> bytes:
        assert self.origin is not None
        return writer.store_checkpoint(Checkpoint(self.origin, size, root).sign([signer]), size)

    def checkpoint(self) -> bytes:
        """Sign and store a checkpoint of the log as it is now; return it."""
        signer = self._require_signer()
        with self._mutex:
            writer = self._open_writer()
            try:
                with writer.locked():
                    writer.sync()
                    return self._write_checkpoint(writer, signer, writer.size, writer.range.root())
            except VaultError:
                raise
            except Exception as e:
                raise _write_failed(e, "cannot write a checkpoint") from e

    def latest_checkpoint(self) -> bytes | None:
        """The newest stored checkpoint (a signed note), if any."""
        sizes = self.paths.checkpoint_sizes()
        return self.paths.checkpoint(sizes[-1]).read_bytes() if sizes else None

    def _require_signer(self) -> NoteSigner:
        if self.checkpoint_signer is None:
            raise UsageError(
                "this audit log has no checkpoint key",
                hint="open the log with its checkpoint signer (or its log.key file)",
            )
        return self.checkpoint_signer

    def verifier(self) -> NoteVerifier:
        return self._require_signer().verifier

    # -- reading -----------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        try:
            return Snapshot.take(self.paths)
        except FileNotFoundError:
            raise UsageError(
                f"no audit log in {self.paths.directory}", hint="check the --log directory"
            ) from None

    def records(
        self,
        *,
        actor: str | None = None,
        doc: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRecord]:
        """The records in order, filtered; set-aside fragments are skipped.

        ``since`` is inclusive, ``until`` exclusive. Signatures are not
        checked here (see :meth:`verify`).
        """
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (for example tzinfo=UTC)")
        return select(
            self._records(),
            actor=actor,
            doc=doc,
            action=action,
            outcome=outcome,
            since=since,
            until=until,
        )

    def _records(self) -> Iterator[AuditRecord]:
        """Every record in order, set-aside fragments skipped (what a
        storage of the log provides to :meth:`records`)."""
        return iter_records(self.paths.log, self._snapshot().log_size)

    def verify(
        self,
        *,
        trusted_checkpoint: bytes | None = None,
        key_lookup: KeyLookup | None = None,
        verifier: NoteVerifier | None = None,
    ) -> VerifyReport:
        """Recompute the tree from the log and check it (docs/AUDIT.md §10).

        Checkpoints are checked with ``verifier`` (default: this log's own
        key -- an auditor should pass the key they trust). Raises
        :class:`AuditIntegrityError` naming the damage.
        """
        verifier = verifier or self.verifier()
        origin = self.origin or verifier.name
        return verify_log(
            self.paths,
            self._snapshot(),
            verifier=verifier,
            origin=origin,
            trusted_checkpoint=trusted_checkpoint,
            key_lookup=key_lookup,
        )

    # -- proofs ------------------------------------------------------------

    def prove(self, seq: int) -> str:
        """A c2sp.org/tlog-proof@v1 that record ``seq`` is in the log,
        against the newest checkpoint (a new one is made if none covers it)."""
        if not isinstance(seq, int) or seq < 0:
            raise ValueError("seq must be a non-negative integer")
        sizes = self._snapshot().checkpoint_sizes
        if not sizes or sizes[-1] <= seq:
            if self.checkpoint_signer is None:
                raise UsageError(
                    f"no checkpoint covers record {seq} yet",
                    hint="create one with 'vault audit checkpoint'",
                )
            self.checkpoint()
            sizes = self.paths.checkpoint_sizes()
        note = self.paths.checkpoint(sizes[-1]).read_bytes()
        return make_proof(self.paths, seq, note, self._checkpoint_from(note))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes of this log."""
        return make_consistency_proof(self.paths, old_size, new_size)

    def _checkpoint_from(self, note: bytes) -> Checkpoint:
        if self.checkpoint_signer is not None:
            return open_checkpoint(note, [self.checkpoint_signer.verifier], origin=self.origin)
        unverified_text, _ = parse_note(note)  # the proof's reader verifies it
        return Checkpoint.from_text(unverified_text)
