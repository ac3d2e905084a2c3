"""The audit log: :class:`AuditLog`, written once over a storage (docs/AUDIT.md).

Fail-closed contract (docs/AUDIT.md §9). :meth:`AuditLog.append` returns only
once its record is on stable storage. If anything fails -- the lock, the
write, the fdatasync, a checkpoint that is due -- it raises
:class:`AuditWriteError` and the caller MUST NOT perform the operation the
record was about. A failed append may still leave its record in the log; it
never leaves a performed operation without a record. After a failed write to
a storage that can tear (a folder) the object refuses further appends: the
kernel may already have dropped the unwritten pages, so only a fresh
:class:`AuditLog`, which re-reads the log, can be trusted.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.audit._chain import ZERO_LEAF, KeyLookup
from vault.audit._checkpoint import Checkpoint
from vault.audit._fields import FieldChecker, RecordBuilder
from vault.audit._files import LogPaths
from vault.audit._folder import FolderStorage
from vault.audit._hashing import leaf_hash
from vault.audit._keyfile import load_key_file, write_key_file
from vault.audit._logread import LogReading
from vault.audit._record import AuditRecord, now
from vault.audit._record import fingerprint as _fingerprint_of
from vault.audit._storage import LogStorage
from vault.audit._tip import EMPTY_TIP, TrustedTip
from vault.audit._tree import CompactRange, extend_range
from vault.audit._writer import Turn, check_tip, rebuild
from vault.audit.note import NoteSigner
from vault.errors import AuditWriteError, UsageError, VaultError

__all__ = ["AuditLog", "KeyLookup", "LastAppend"]


class LastAppend(NamedTuple):
    """What one append wrote: ``records``, the lines right after ``before``
    (the tip the writer's turn reached: every line of the log up to them),
    ending at ``after``. A reader that trusts ``before`` and finds the log
    ending at ``after`` knows these are the lines in between."""

    before: TrustedTip
    records: tuple[AuditRecord, ...]
    after: TrustedTip


def _write_failed(e: BaseException, what: str) -> AuditWriteError:
    text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    reason = (text.strip().splitlines() or [type(e).__name__])[0]
    return AuditWriteError(
        f"audit record not durable: {what}: {reason}",
        hint="the operation was not performed; fix the audit log's storage and retry",
    )


class AuditLog(LogReading):
    """An append-only, tamper-evident audit log over a :class:`LogStorage`
    (a directory path means :class:`FolderStorage`).

    ``checkpoint_signer`` signs checkpoints (every ``checkpoint_every``
    records, 0 for on demand only, and on :meth:`checkpoint`); its name is
    the default ``origin``. Without it the log can still be appended to and
    read, but not checkpointed.
    """

    def __init__(
        self,
        storage: LogStorage | str | os.PathLike[str],
        *,
        checkpoint_signer: NoteSigner | None = None,
        checkpoint_every: int = 1000,
        origin: str | None = None,
    ) -> None:
        if not isinstance(checkpoint_every, int) or checkpoint_every < 0:
            raise ValueError("checkpoint_every must be an integer >= 0 (0: only on demand)")
        if checkpoint_signer is not None and not isinstance(checkpoint_signer, NoteSigner):
            raise TypeError("checkpoint_signer must be a NoteSigner")
        self.storage = storage if isinstance(storage, LogStorage) else FolderStorage(storage)
        self.checkpoint_signer = checkpoint_signer
        self.checkpoint_every = checkpoint_every
        self.origin = origin if origin is not None else (
            checkpoint_signer.name if checkpoint_signer else None)
        if self.origin is not None:
            Checkpoint(self.origin, 0, bytes(32))  # validates the origin's syntax
        #: what this handle noticed and repaired on its own (derived data rebuilt)
        self.notes: list[str] = []
        #: why the checkpoint :meth:`checkpoint` made last was not stored, if it was not
        self.unstored: str | None = None
        self._host = os.uname().nodename  # gethostname(2), without loading socket
        self._tip: TrustedTip | None = None
        self._settled = False  # whether the tip ends at a settle point (docs/AUDIT.md §5)
        self._failed = False
        self._checkpointed = 0  # newest checkpoint size this handle knows of
        # A tip before which no record is out of place: the caller's trusted
        # tip, or where this handle's last walk ended (see _walk_in_place).
        self._in_place: TrustedTip | None = None
        self._fingerprints: dict[int, tuple[Ed25519PrivateKey, str]] = {}
        #: this handle's latest append: the lines it wrote, between two tips
        self.last_append: LastAppend | None = None

    @property
    def paths(self) -> LogPaths:
        """The files of a folder log (docs/AUDIT.md §1)."""
        if not isinstance(self.storage, FolderStorage):
            raise AttributeError("only a folder log has paths")
        return self.storage.paths

    # -- creating and opening a standalone log (docs/AUDIT.md §1) -----------

    @classmethod
    def create(
        cls, directory: str | os.PathLike[str], *, origin: str, checkpoint_every: int = 1000
    ) -> AuditLog:
        """Create a new log directory with its own checkpoint key (``log.key``)."""
        paths = FolderStorage(directory).paths
        if paths.log.exists() or paths.key.exists():
            raise UsageError(f"{paths.directory} already holds an audit log")
        signer = NoteSigner.generate(origin)
        paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_key_file(paths.key, signer)
        log = cls(directory, checkpoint_signer=signer, checkpoint_every=checkpoint_every)
        with log.storage.exclusive():  # creates the files
            pass
        return log

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, checkpoint_every: int = 1000) -> AuditLog:
        """Open an existing log directory, with its ``log.key`` if present."""
        paths = FolderStorage(directory).paths
        if not paths.log.is_file():
            raise UsageError(f"no audit log in {paths.directory}", hint="check the --log directory")
        signer = None
        with contextlib.suppress(FileNotFoundError):
            signer = load_key_file(paths.key)
        return cls(directory, checkpoint_signer=signer, checkpoint_every=checkpoint_every)

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- trusted tips (docs/AUDIT.md §9) ------------------------------------------

    def set_trusted_tip(self, tip: TrustedTip) -> None:
        """Trust ``tip`` (kept by the caller, computed from this log's lines):
        appends go on from it after checking that the log still starts with
        the lines it describes (AuditIntegrityError ``truncated`` or
        ``modified`` otherwise), and :meth:`verify` checks the log against it."""
        if not isinstance(tip, TrustedTip):
            raise TypeError("tip must be a TrustedTip")
        # The same tip again (a reader caught up with our own append): it
        # still ends where our last append left it, at a settle point.
        same = tip == self._tip
        self._tip, self._settled = tip, same and self._settled
        # A machine's trusted tip never passes a record out of place (§8):
        # a checkpoint's walk may start there.
        self._in_place = tip

    def tip(self) -> TrustedTip:
        """The trusted tip of every complete line now in the log (to persist)."""
        with self._reading():
            end = self.storage.end()
            start = self._tip or EMPTY_TIP
            check_tip(self.storage, start, end)
            rng, offset, last = start.range(), start.end_offset, start.last_leaf
            for block in self.storage.read(start.size, start.end_offset, end):
                leaves = [leaf_hash(line) for line in block]
                extend_range(rng, leaves)
                offset += sum(map(len, block)) + len(block)
                last = leaves[-1]
        self._tip, self._settled = TrustedTip.of(rng, offset, last), False
        return self._tip

    # -- appending -------------------------------------------------------------

    def append(self, fields: Mapping[str, Any], signer: Ed25519PrivateKey) -> AuditRecord:
        """Record one event, durably, before the caller acts on it.

        ``fields``: ``actor`` {name (None for a key the policy does not
        know), key}, ``action``, ``outcome``, and optionally ``doc``,
        ``label`` {level, compartments, caveats}, ``rules``, ``reason``,
        ``policy``, ``request``, ``state``. The log fills in seq, time, host,
        pid and a request id, and ``signer`` (the actor's key) signs.
        Raises ValueError/TypeError for bad fields (nothing written) and
        :class:`AuditWriteError` when the record is not durable: then the
        guarded operation must not happen.
        """
        return self.append_many([(fields, signer)])[0]

    def append_many(
        self, items: Iterable[tuple[Mapping[str, Any], Ed25519PrivateKey]]
    ) -> list[AuditRecord]:
        """Record several events with one durability point, all or none
        acknowledged; one signature per run of a signer (docs/AUDIT.md §5)."""
        batch = list(items)
        if not batch:
            return []
        if self._failed:
            raise AuditWriteError(
                "an earlier write to the audit log failed; this handle no longer appends",
                hint="open the audit log again once its storage is fixed",
            )
        ids = os.urandom(16 * len(batch)).hex()  # request ids for fields that give none
        check = FieldChecker()
        checked = [check(f, s, self._fingerprint(s), ids[32 * i : 32 * i + 32])
                   for i, (f, s) in enumerate(batch)]
        with self._writing("cannot append") as stack:
            turn = stack.enter_context(contextlib.closing(
                Turn(self.storage, self._tip, self.checkpoint_every, settled=self._settled,
                     originals=self.held_leaves or self.original_leaves,
                     sealed=self.sealed_known)))
            builder = RecordBuilder(time=now(), host=self._host,
                                    pid=os.getpid())  # one moment for the whole batch
            turn.recover(builder, checked[0])
            before = turn.tip
            records, leaves = builder.run(checked, turn.tip.size, turn.tip.last_leaf)
            # A checkpoint falling due walks the lines before ours first, so
            # that a refusal comes before anything is written (§8).
            walked = self._due(turn, len(records))
            if walked:
                self._walk_in_place(turn)
            turn.append(records, leaves)
            if self._in_place is not None and self._in_place == before:
                # Our own records, numbered by their lines, right after lines
                # known in place: so are they, and a checkpoint falling due
                # need not walk them again (a walk costs some 40 µs a line,
                # four times what a batched append does).
                self._in_place = turn.tip
            self._store_due(turn, walked=walked)
        self._after(turn)
        self._settled = True  # the tip ends with a signed record of ours
        self.last_append = LastAppend(before, tuple(records), turn.tip)
        return records

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[contextlib.ExitStack]:
        """The exclusive lock, with failures turned into AuditWriteError."""
        failure: Exception | None = None
        misplaced = False
        try:
            with contextlib.ExitStack() as outer:
                try:
                    outer.enter_context(self.storage.exclusive())
                except VaultError:
                    raise
                except Exception as e:
                    raise _write_failed(e, f"cannot open {self.storage.location}") from e
                try:
                    with contextlib.ExitStack() as stack:
                        yield stack
                    outer.close()  # releases the lock; the lines become durable here
                except AuditWriteError:
                    # A write the storage found out of place (another writer
                    # ignored the lock): a failed write like any other.
                    misplaced = True
                    raise
                except (VaultError, ValueError, TypeError):
                    raise
                except Exception as e:
                    failure = e
        except (VaultError, ValueError, TypeError):
            if misplaced:
                self._give_up()
            raise
        except Exception as e:  # letting go of the storage failed after a failure inside
            failure = failure or e
        if failure is not None:
            self._give_up()
            raise _write_failed(failure, what) from failure

    def _give_up(self) -> None:
        """After a failed write: no tip from it is ever adopted, and a
        storage that can tear is never appended to through this handle
        again (its lines may be anywhere, or dropped by the kernel)."""
        if self.storage.can_tear:
            self._failed = True
            self.storage.close()

    def _after(self, turn: Turn) -> None:
        self._tip = turn.tip
        self._settled = False
        self.notes += turn.notes

    def _fingerprint(self, signer: Ed25519PrivateKey) -> str:
        # Keyed by id() but holding the key itself, so an id is never reused
        # while cached. Small: a process signs for a handful of people.
        hit = self._fingerprints.get(id(signer))
        if hit is not None and hit[0] is signer:
            return hit[1]
        if not isinstance(signer, Ed25519PrivateKey):
            return ""  # check_fields reports the misuse (an empty fingerprint)
        if len(self._fingerprints) >= 64:
            self._fingerprints.clear()
        fp = _fingerprint_of(signer.public_key())
        self._fingerprints[id(signer)] = (signer, fp)
        return fp

    # -- checkpoints (docs/AUDIT.md §7) ----------------------------------------------

    def _due(self, turn: Turn, count: int) -> bool:
        """Will a checkpoint fall due once ``count`` more lines are appended
        in ``turn`` (as :meth:`_store_due` then finds)?"""
        signer, every = self.checkpoint_signer, self.checkpoint_every
        if signer is None or not every:
            return False
        now, size = turn.tip.size, turn.tip.size + count
        if turn.due or size // every > now // every:
            return True
        if size - self._checkpointed >= every:  # one may have been missed
            self._checkpointed = self._newest_counting(size, above=size - every)
        return size - self._checkpointed >= every

    def _store_due(self, turn: Turn, *, walked: bool = False) -> None:
        signer, every = self.checkpoint_signer, self.checkpoint_every
        if signer is None or not every:
            return
        due = turn.due
        size = turn.tip.size
        if not due and size - self._checkpointed >= every:  # one may have been missed
            # Only a checkpoint that verifies counts: a planted one must not
            # stand in for the real one due here (AUDIT.md §7).
            self._checkpointed = self._newest_counting(size, above=size - every)
            if size - self._checkpointed >= every:
                due = [(size, turn.tip.root)]
        if due and not walked:
            self._walk_in_place(turn)
        for n, root in due:
            self.storage.store_checkpoint(n, self._sign(signer, n, root))
            self._checkpointed = max(self._checkpointed, n)

    def _walk_in_place(self, turn: Turn) -> None:
        """Raise (nothing signed) if any record after the last point known
        in place is out of place (§8): the trailing run is not enough, for a
        line looking like a settle point may follow moved records. Walked
        from the later of this handle's tip in place and the newest
        checkpoint that verifies and is still the lines' own; ordinary
        appends never walk, only a turn that signs."""
        start: tuple[int, int, bytes] = (0, 0, ZERO_LEAF)
        known = self._in_place
        if known is not None and 0 < known.size <= turn.tip.size:
            last = self.storage.lines_before(known.size, known.end_offset, 1)
            if last and last != [b"\n"] and leaf_hash(last[-1]) == known.last_leaf:
                start = (known.size, known.end_offset, known.last_leaf)
        cp = self._newest_checkpoint(turn.tip.size, above=start[0])
        found = turn.checkpoint_start(cp.size, cp.root) if cp is not None else None
        turn.walk_in_place(*(found or start))
        self._in_place = turn.tip

    def _sign(self, signer: NoteSigner, size: int, root: bytes) -> bytes:
        assert self.origin is not None
        return Checkpoint(self.origin, size, root).sign([signer])

    def checkpoint(self) -> bytes:
        """Sign and store a checkpoint of the log as it is now; return it.
        The root is recomputed from the lines, never read from stored hashes."""
        signer = self._require_signer()
        self.unstored = None
        with self._writing("cannot write a checkpoint") as stack:
            turn = stack.enter_context(contextlib.closing(
                Turn(self.storage, self._tip, 0,
                     originals=self.held_leaves or self.original_leaves,
                     sealed=self.sealed_known)))
            # Never over records out of place: once the lines are put back
            # as written, the checkpoint would disagree with the log (§8).
            turn.trailing_run()
            self._walk_in_place(turn)
            note = self._sign(signer, turn.tip.size, turn.tip.root)
            if not self.storage.store_checkpoint(turn.tip.size, note):
                # Someone stored a note of that size first (a PostgreSQL
                # role can; it is bogus, and ignored): this one is not kept.
                self.unstored = (f"checkpoint {turn.tip.size} was not stored: another note of "
                                 "that size is in its place; keep this one outside")
        self._after(turn)
        return note

    def import_log(self, lines: Iterable[bytes],
                   checkpoints: Mapping[int, bytes]) -> tuple[int, bytes]:
        """Fill this (empty) log with another's lines and checkpoints, byte
        for byte; returns ``(size, root)`` of the tree imported."""
        rng, offset, last = CompactRange(), 0, EMPTY_TIP.last_leaf

        def hashed() -> Iterator[bytes]:
            nonlocal offset, last
            for line in lines:
                last = leaf_hash(line)
                rng.append(last)
                offset += len(line) + 1
                yield line

        self.storage.import_log(hashed(), checkpoints)
        tip = TrustedTip.of(rng, offset, last)
        with self.storage.exclusive():
            derived = self.storage.derived()
            if derived is not None:
                with derived:
                    if derived.writable:
                        rebuild(self.storage, derived, tip)
        self._tip = tip
        return tip.size, tip.root

