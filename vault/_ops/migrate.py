"""Moving a vault between backends: a folder and PostgreSQL, both ways
(docs/DEPLOYMENT.md §7).

Everything the vault relies on is copied byte for byte -- manifest,
checkpoint key, the audit log's lines and signed checkpoints (through the
log's own storage interface), the keyring entries and document versions the
log counts, the registered actors its records name, the requests and
approvals -- so every signature, content commitment, Merkle root and
checkpoint stays valid: the destination *is* the same vault (same id, same
log, same pinned keys), and an auditor's old checkpoints verify against it.
What the log does not count (a leftover version, a planted entry, a key no
record names) is not copied -- except the versions ``doctor`` keeps as
evidence after an incident, which may be a document's only copy.

The move is an administrative act and is on the record: the caller must be
an administrator, and the ``migrate`` record is appended to the source
before anything is copied (so it travels with the log). Writers must be
stopped: the copy is made under the source's write lock, and refused if
the log grew meanwhile. The manifest is written last, once the destination
checks as a new machine reads it -- the commit point, as in ``init``: a move
that fails leaves no vault (and no folder it made). A source whose log such
a machine would not accept is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vault._ops.approved import Approved
from vault._ops.discipline import attempt, authorise
from vault._ops.doctor import evidence_versions
from vault._ops.session import Session
from vault.audit import LineSource, LogEnd, LogStorage
from vault.errors import IntegrityError, StorageError, UsageError
from vault.store import open_backend

if TYPE_CHECKING:  # pragma: no cover
    from vault.identity import UserIdentity
    from vault.store.base import Backend

__all__ = ["MoveReport", "move_vault"]


@dataclass
class MoveReport:
    """What a move copied."""

    source: str
    destination: str
    documents: int = 0
    keyring_entries: int = 0
    actors: int = 0
    statements: int = 0
    records: int = 0  # lines of the audit log
    checkpoints: int = 0
    root: str = ""  # the audit log's Merkle root (hex), the same on both sides
    missing: list[str] = field(default_factory=list)  # documents not stored: not moved
    # Stored versions kept as evidence after an incident (docs/DEPLOYMENT.md
    # §14), moved too: "docs/ID.VERSION.age", as doctor names them.
    evidence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def destination_digest(destination: str | os.PathLike[str]) -> str:
    """What a ``migrate`` request binds of where the vault goes: the SHA-256
    of the backend's kind, a NUL and its location (a folder's real path,
    links resolved; a PostgreSQL location without its password) -- not the
    place itself, which the audit log does not keep (FORMAT.md §16.1)."""
    import hashlib

    dst = open_backend(destination)
    where = dst.location
    if "://" not in os.fspath(destination):
        # Where the folder really is: a link made at the approved name
        # later leads elsewhere, and the move would follow it.
        where = os.path.realpath(where)
    return hashlib.sha256(f"{type(dst).__name__}\0{where}".encode()).hexdigest()


def move_vault(source: str | os.PathLike[str], destination: str | os.PathLike[str],
               identity: UserIdentity, *, missing_ok: bool = False,
               approvals: Sequence[bytes] = (), request: str | None = None,
               vault_id: str | None = None) -> MoveReport:
    """Copy the vault at ``source`` to ``destination`` (a new folder or an
    empty PostgreSQL database), as ``identity`` (an administrator).

    A document whose current version is not stored at the source (deleted,
    or renamed) stops the move, naming it -- unless ``missing_ok``: then the
    rest moves and ``MoveReport.missing`` names it, to be restored from a
    backup into the destination (it is on the record there as here).
    ``approvals``/``request``: where the policy asks approval to
    ``administer`` (a ``vault request migrate DEST``, for this destination).
    ``vault_id``: the id the caller knows the source by (as for
    :class:`vault.Vault`)."""
    from vault._trust.places import confirmed_id

    if "://" not in os.fspath(destination):
        # The folder the approval names, resolved once: a link made at its
        # name after the check must not lead the move elsewhere.
        destination = os.path.realpath(destination)
    backend = open_backend(source)
    if not backend.exists():  # a mistyped place, as every command says it: no tampering
        raise UsageError(f"no vault at {backend.location}",
                         hint="check the vault to move: --from, --vault or VAULT_DSN")
    src = Session(backend, identity, vault_id=confirmed_id(vault_id))
    dst = open_backend(destination)
    from vault._ops.verify import verify_audit

    if verify_audit(src).unrecovered:  # refused unrecorded: 'doctor' writes that record
        raise UsageError("the source's audit log ends with an interrupted write",
                         hint="run 'vault doctor' on it first: its record sets the "
                              "interrupted write aside")
    with attempt(src, "migrate") as att:  # a refusal from here on is on the record
        if type(dst) is type(src.backend) and dst.location == src.backend.location:
            raise UsageError("the source and the destination are the same vault")
        approved = Approved(src, list(approvals), request) if approvals or request else None
        if approved:
            approved.bind("migrate", details={"to": destination_digest(destination)})
        authorise(src, att, "administer", None, approved=approved,
                  note="move the vault to another store")
    _verifies_anew(source, identity)
    dst.create()
    report = MoveReport(src.backend.location, dst.location)
    manifest = src.backend.read_manifest()
    try:
        with src.lock():
            _copy(src, dst, report, missing_ok)
            if src.log.tip().size != report.records:
                raise StorageError("records were appended to the source's audit log during "
                                   "the move; the destination is incomplete (it has no "
                                   "manifest)",
                                   hint="stop every writer, remove the destination, move again")
        _check(src, dst, report, manifest)
        # The commit point, once the destination checks: a vault there
        # that failed the check would be used by whoever is pointed at it.
        dst.write_manifest(manifest)
    except BaseException as e:
        with contextlib.suppress(Exception):  # the first error is the one to tell
            if not dst.exists():
                dst.abandon()  # a folder the move made goes; a database keeps its rows
        if isinstance(e, OSError):  # a full disk, a read-only folder
            why = e.strerror or str(e) or type(e).__name__
            raise StorageError(f"the move failed: {why[:1].lower()}{why[1:]}",
                               hint=f"fix the cause (a full disk?), then move again; "
                                    f"{_NO_VAULT_THERE}") from e
        raise
    return report


# Hints of a move refused once something was written to the destination.
_NO_VAULT_THERE = ("no vault was made there (it has no manifest): a folder the move made is "
                   "removed, a database keeps the rows it took -- use a new database "
                   "(createdb)")
_DECLARE_AGAIN = ("every machine at the destination would refuse it so, reading the log for "
                  "the first time: declare the damaged lines again from a machine that had "
                  "verified them before the damage, or with --checkpoint FILE, a checkpoint a "
                  "witness kept from before it (docs/DEPLOYMENT.md §14), then move again")


def _verifies_anew(source: str | os.PathLike[str], identity: UserIdentity) -> None:
    """Refuse, before anything is written, a source whose log a machine that
    never read it would not accept: every machine at the destination is
    one, and this one may hold what no other does (the original leaves of
    lines an incident sealed off, docs/AUDIT.md §11.3)."""
    from vault._ops.verify import verify_audit

    backend = open_backend(source)
    try:
        with tempfile.TemporaryDirectory() as state:
            fresh = Session(backend, identity, state_dir=state)
            try:
                # As the destination will hold the log: derived data of its
                # own, made from the lines -- never the source's, which may
                # hold leaves no incident carries (the replay uses none).
                fresh.log.storage = _LinesOnly(fresh.log.storage)
                verify_audit(fresh)
            finally:
                fresh.trusted.close()
    except IntegrityError as e:
        raise IntegrityError("the source's audit log does not verify on a machine that never "
                             f"read it: {e.message}", hint=_DECLARE_AGAIN) from e
    finally:
        backend.close()


class _LinesOnly(LogStorage):
    """A log's lines and checkpoints without its derived data: what a move
    takes of it (reading only)."""

    def __init__(self, storage: LogStorage) -> None:
        self._s = storage
        self.location, self.can_tear = storage.location, storage.can_tear

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        return self._s.exclusive()

    def shared(self) -> contextlib.AbstractContextManager[None]:
        return self._s.shared()

    def end(self) -> LogEnd:
        return self._s.end()

    def read(self, start: int, offset: int, stop: LogEnd | None = None) -> LineSource:
        return self._s.read(start, offset, stop)

    def lines_before(self, size: int, end_offset: int, count: int) -> list[bytes] | None:
        return self._s.lines_before(size, end_offset, count)

    def append(self, lines: Sequence[bytes], at: int) -> None:
        raise NotImplementedError("a view for reading")

    def checkpoint_sizes(self) -> list[int]:
        return self._s.checkpoint_sizes()

    def read_checkpoint(self, size: int) -> bytes | None:
        return self._s.read_checkpoint(size)

    def store_checkpoint(self, size: int, note: bytes) -> bool:
        raise NotImplementedError("a view for reading")

    def import_log(self, lines: Iterable[bytes], checkpoints: Mapping[int, bytes]) -> None:
        raise NotImplementedError("a view for reading")

    def close(self) -> None:
        self._s.close()


def _key_there() -> UsageError:
    # Its table takes rows from the application role, which cannot read or
    # remove them: a key put there before the move would stop it for good.
    return UsageError("the destination already holds a checkpoint key, put there before the "
                      "vault was moved (an interrupted move, or someone who may write it)",
                      hint="use a new database (createdb) or folder, then move again")


def _pinned_log_key(src: Session) -> bytes | str:
    """The checkpoint key to copy -- only the one vault.json pins -- or a
    note saying why it stays behind. Another key in its place is no part of
    the vault (whoever may write the folder can put one there), and in a
    database the application role could never take it out again."""
    from vault.audit import NoteSigner

    try:
        data = src.backend.read_log_key()
    except OSError:
        return ("the checkpoint key was not readable here and was not copied: checkpoints "
                "need it (docs/DEPLOYMENT.md §6)")
    try:
        signer = NoteSigner.from_private_key(data.decode("ascii").strip())
        ours = signer.verifier_key() == src.manifest.log_key
    except (UnicodeDecodeError, ValueError):
        ours = False
    if ours:
        return data
    why = src.log_key_problem or "the checkpoint key is not the one vault.json pins"
    return (f"{why}: it was not copied -- put the pinned one there from a backup, or no "
            "checkpoints are made there (docs/DEPLOYMENT.md §6, §7)")


def _copy(src: Session, dst: Backend, report: MoveReport, missing_ok: bool) -> None:
    from vault._ops.verify import named_actor_keys

    b = src.backend
    # The log first: its import is all or nothing (one transaction in a
    # database), so a log the destination refuses leaves nothing there.
    checkpoints = src.log.stored_checkpoints()
    dst_log = dst.audit_log(None, src.manifest.origin)
    report.records, _ = dst_log.import_log(src.log.lines(), checkpoints)
    report.checkpoints = len(checkpoints)
    log_key = _pinned_log_key(src)
    if isinstance(log_key, str):
        report.notes.append(log_key)
    else:
        try:
            dst.write_log_key(log_key)
        except FileExistsError:
            raise _key_there() from None
    for (kid, owner), _ in sorted(src.trusted.store.entries().items()):
        data = b.read_keyring_entry(owner, kid)
        if data is not None:
            dst.write_keyring_entry(owner, kid, data)
            report.keyring_entries += 1
    # The registered keys the log's records give, no other: a key no record
    # names checks nothing, and anyone who may write the store can register
    # any number (a stranger's next attempt registers theirs again).
    for key_hash, key in named_actor_keys(src):
        dst.register_actor(key_hash, key)
        report.actors += 1
    for kind in ("request", "approval"):
        for _, data in b.statements(kind):
            dst.put_statement(kind, data)
            report.statements += 1
    for row in src.trusted.docs():
        try:
            source = b.open_document(row.doc_id, row.version)
        except FileNotFoundError:
            if missing_ok:
                report.missing.append(row.doc_id)
                continue
            raise IntegrityError(
                f"document {row.doc_id}: its current version is not stored (missing, or "
                "stored under another name); nothing was moved",
                hint="'vault doctor' names what it finds; put it back or restore it from a "
                     "backup, then move again (or move the rest: --missing-ok)") from None
        with contextlib.closing(source) as f, dst.write_document(row.doc_id, row.version) as out:
            shutil.copyfileobj(f, out, 1 << 20)  # streamed: never a whole document
        report.documents += 1
    # What the log does not count but doctor keeps: a document an incident
    # took the record of, whose only copy this may be, to be sealed again.
    for doc_id, version in evidence_versions(src):
        where = f"docs/{doc_id}.{version}.age"
        try:
            source = b.open_document(doc_id, version)
        except FileNotFoundError:
            raise IntegrityError(f"{where}, kept as evidence, is no longer stored; the vault "
                                 "was not moved", hint="put it back, then move again") from None
        with contextlib.closing(source) as f, dst.write_document(doc_id, version) as out:
            shutil.copyfileobj(f, out, 1 << 20)
        report.evidence.append(where)


def _check(src: Session, dst: Backend, report: MoveReport, manifest: bytes) -> None:
    """The destination's log must verify end to end (against the source's
    newest checkpoint) and have the source's tree; its state must replay --
    read as a new machine reads it, with ``manifest``, before it is there."""
    from vault._ops.verify import verify_audit

    theirs = verify_audit(src)
    try:
        with tempfile.TemporaryDirectory() as state:
            moved = Session(dst, src.identity, state_dir=state, manifest=manifest)
            try:
                ours = verify_audit(moved, trusted_checkpoint=src.log.latest_checkpoint())
                if (ours.size, ours.root) != (theirs.size, theirs.root):
                    raise IntegrityError("the moved audit log does not reproduce the source's "
                                         "tree")
                if len(moved.trusted.docs()) != len(src.trusted.docs()):
                    raise IntegrityError("the moved vault does not hold the source's documents")
                if evidence_versions(moved) != evidence_versions(src):
                    raise IntegrityError("the moved vault does not keep the source's evidence")
            finally:
                moved.trusted.close()
    except IntegrityError as e:
        raise IntegrityError(f"the moved vault does not verify: {e.message}",
                             hint=_NO_VAULT_THERE) from e
    report.root = theirs.root.hex()
