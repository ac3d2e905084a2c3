"""Moving a vault between backends: a folder and PostgreSQL, both ways
(docs/DEPLOYMENT.md §7).

Everything is copied byte for byte -- manifest, checkpoint key, policy
versions, class key records, keyring entries, documents, the audit log's
lines and signed checkpoints (through the log's storage interface) -- so
every signature, label binding, Merkle root and checkpoint stays valid: the
destination *is* the same vault (same id, same log origin, same pinned
keys), and an auditor's old checkpoints verify against it. Only derived
data is recomputed (the index, the stored Merkle hashes).

The move is an administrative act and is on the record: the caller must
be an administrator, and the ``migrate`` record is appended to the source
before anything is copied (so it travels with the log). Order:

1. open the source (its policy chain verifies) and verify its audit log;
   refuse one with an interrupted write still pending (docs/AUDIT.md §7);
2. decide and record (fail closed);
3. create the destination (an empty folder, or an empty vault schema);
4. under the source's write lock: copy the checkpoint key, the audit log,
   policy versions, class keys, keyrings, actors, documents, index rows,
   and last the manifest -- the commit point, as in ``init``: an
   interrupted move leaves a destination that is visibly not a vault;
5. refuse the result if the source's log grew meanwhile (writers must be
   stopped during a move), then verify the destination's log end to end
   and check that its tree is the source's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vault.errors import IntegrityError, StorageError, UsageError
from vault.store import Backend, open_backend

if TYPE_CHECKING:  # pragma: no cover
    from vault._vault import Vault
    from vault.identity import UserIdentity

__all__ = ["MoveReport", "move_vault"]


@dataclass
class MoveReport:
    """What a move copied."""

    source: str
    destination: str
    documents: int = 0
    policy_versions: int = 0
    class_keys: int = 0
    keyring_entries: int = 0
    actors: int = 0
    records: int = 0  # lines of the audit log
    checkpoints: int = 0
    root: str = ""  # the audit log's Merkle root (hex), the same on both sides
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def move_vault(source: str | os.PathLike[str], destination: str | os.PathLike[str],
               identity: UserIdentity) -> MoveReport:
    """Copy the vault at ``source`` to ``destination`` (a new folder or an
    empty PostgreSQL database), as ``identity`` (an administrator)."""
    from vault._vault import Vault

    src = Vault(source, identity)
    dst = open_backend(destination)
    if src.verify_audit().unrecovered:  # refused unrecorded: 'doctor' writes that record
        raise UsageError("the source's audit log ends with an interrupted write",
                         hint="run 'vault doctor' on it first: its record sets the "
                              "interrupted write aside")
    with src.attempt("migrate") as att:  # a refusal from here on is on the record
        if type(dst) is type(src.backend) and dst.location == src.location:
            raise UsageError("the source and the destination are the same vault")
        src.authorise(att, "administer", None, note=f"move the vault to {dst.location}")
    dst.create()
    report = MoveReport(src.location, dst.location)
    with src.lock():
        _copy(src, dst, report)
        if _line_count(src) != report.records:
            raise StorageError("records were appended to the source's audit log during the "
                               "move; the destination is incomplete (it has no manifest)",
                               hint="stop every writer, remove the destination, move again")
    _check(src, dst, report)
    return report


def _copy(src: Vault, dst: Backend, report: MoveReport) -> None:
    b = src.backend
    try:
        dst.write_log_key(b.read_log_key())
    except (FileNotFoundError, PermissionError):
        report.notes.append("the checkpoint key was not readable here and was not copied: "
                            "checkpoints need it (docs/DEPLOYMENT.md §6)")
    fingerprints: set[str] = set()
    report.records, report.checkpoints, root = _copy_audit(src, dst, fingerprints, report)
    report.root = root.hex()
    for version in b.policy_versions():
        dst.add_policy(version, *b.read_policy(version))
        report.policy_versions += 1
    for class_id, generation in b.class_keys():
        if not dst.add_class_key(class_id, generation, b.read_class_key(class_id, generation)):
            raise StorageError(f"class key {class_id}.{generation} exists at the destination")
        report.class_keys += 1
    for owner in b.keyring_owners():
        for key_id in b.keyring_entries(owner):
            entry = b.read_keyring_entry(owner, key_id)
            if entry is not None:
                dst.write_keyring_entry(owner, key_id, entry)
                report.keyring_entries += 1
    report.actors = _copy_actors(b, dst, fingerprints)
    for doc_id in b.document_ids():
        with contextlib.closing(b.open_document(doc_id)) as f, \
                dst.write_document(doc_id) as out:
            shutil.copyfileobj(f, out, 1 << 20)  # streamed: never a whole document
        report.documents += 1
    _copy_index(src, dst)
    dst.write_manifest(b.read_manifest())


def _copy_actors(b: Backend, dst: Backend, fingerprints: set[str]) -> int:
    """Registered keys of actors the policy does not know, found through
    the fingerprints in the audit records (docs/DESIGN.md §9)."""
    import base64

    copied = 0
    for fp in sorted(fingerprints):
        digest = base64.b64decode(fp.removeprefix("SHA256:") + "=").hex()
        key = b.actor_key(digest)
        if key is not None and hashlib.sha256(key).hexdigest() == digest:
            dst.register_actor(digest, key)
            copied += 1
    return copied


def _copy_index(src: Vault, dst: Backend) -> None:
    from vault._ops.read import sync_index

    stamps = dst.document_stamps()
    rows = [dataclasses.replace(r, stamp=stamps[r.doc_id]) for r in sync_index(src)
            if r.doc_id in stamps]
    dst.index.rebuild(rows)


def _check(src: Vault, dst: Backend, report: MoveReport) -> None:
    from vault._vault import Vault

    moved = Vault(dst, src.identity)
    theirs, ours = src.verify_audit(), moved.verify_audit(
        trusted_checkpoint=src.audit.latest_checkpoint())
    if (ours.size, ours.root) != (theirs.size, theirs.root) or ours.root.hex() != report.root:
        raise IntegrityError("the moved audit log does not reproduce the source's tree")


# --------------------------------------------------------------------------
# The audit log, line for line, through vault.audit's storage interface.


def _line_count(src: Vault) -> int:
    return sum(1 for _ in src.audit.lines())


def _noting(lines: Iterable[bytes], fingerprints: set[str]) -> Iterator[bytes]:
    """Pass the lines through, noting the actors' key fingerprints."""
    from vault.audit import AuditRecord
    from vault.errors import AuditIntegrityError

    for line in lines:
        with contextlib.suppress(AuditIntegrityError):
            fingerprints.add(AuditRecord.from_line(line).actor_key)
        yield line


def _copy_audit(src: Vault, dst: Backend, fingerprints: set[str],
                report: MoveReport) -> tuple[int, int, bytes]:
    """Copy lines and checkpoints; ``(lines, checkpoints, root)``. Only the
    checkpoints signed with the vault's pinned log key travel (docs/AUDIT.md §7)."""
    from vault.audit import NoteVerifier, open_checkpoint
    from vault.errors import CheckpointError

    verifier = NoteVerifier.from_key(src.manifest.log_key)
    checkpoints = {}
    for size, note in src.audit.stored_checkpoints().items():
        try:
            if open_checkpoint(note, [verifier], origin=src.manifest.origin).size == size:
                checkpoints[size] = note
                continue
        except CheckpointError:
            pass
        report.notes.append(f"checkpoint {size} does not verify and was not copied")
    log = dst.audit_log(None, src.manifest.origin)
    size, root = log.import_log(_noting(src.audit.lines(), fingerprints), checkpoints)
    return size, len(checkpoints), root
