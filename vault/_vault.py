"""The :class:`Vault`: policy, keys, labels and the audit log around age
files (docs/DESIGN.md).

Every operation follows the same order (docs/DESIGN.md §6):

1. read and verify what needs no key (the document's label, its shape);
2. ask the policy;
3. append the audit record -- allowed, denied, or error -- and make it
   durable; if that fails, stop (fail closed);
4. only then unwrap keys, decrypt or change anything.

Each attempt gets exactly one record. A failure before step 3 (no such
document, a forged label) is recorded as ``error``; a failure after it is
raised to the caller, and the record of the decision stands.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from vault import _ops
from vault._info import ApplyReport, DoctorReport, DocumentInfo, RotateReport
from vault._keyring import ClassKeys, Keyring
from vault._trust import Manifest, PolicyChain
from vault.errors import AuditWriteError, DeniedError, UsageError, VaultError
from vault.store import Backend, open_backend
from vault.store.base import DOC_ID

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from vault.audit import AuditLog, VerifyReport
    from vault.identity import UserIdentity
    from vault.policy import Decision, Label, Policy

__all__ = ["Vault"]

Source = str | os.PathLike[str] | BinaryIO
Destination = str | os.PathLike[str] | BinaryIO
MAX_REASON = 2000


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Attempt:
    """One attempt at one operation: what its audit record will say."""

    action: str
    doc: str | None = None
    label: Label | None = None
    recorded: bool = False


def _outcome_of(e: VaultError | OSError) -> tuple[str, list[str], str]:
    """Outcome, rule ids and reason recording a failure before the decision."""
    if isinstance(e, DeniedError):  # refused by the policy engine itself
        return "denied", list(getattr(e.decision, "rule_ids", [])), e.message
    if isinstance(e, VaultError):
        return "error", [], f"{type(e).__name__}: {e.message}"
    return "error", [], f"{type(e).__name__}: {e.strerror or 'I/O error'}"


class Vault:
    """An open vault. ``identity`` is needed for everything but read-only
    checks (``doctor`` without repair)."""

    def __init__(self, path: str | os.PathLike[str] | Backend,
                 identity: UserIdentity | None = None) -> None:
        self._backend = open_backend(path)
        if not self._backend.exists():
            raise UsageError(f"no vault at {self._backend.location}",
                             hint="create one with 'vault init DIR --policy FILE'")
        self.manifest = Manifest.load(self._backend.read_manifest())
        self.chain = PolicyChain.load(self._backend, self.manifest)
        self.identity = identity
        self.class_keys = ClassKeys(self._backend, self.chain)
        self._keyring = Keyring(self._backend, identity) if identity is not None else None
        self._audit: AuditLog | None = None
        self._lock_depth = 0
        self._registered = False

    # -- creating ------------------------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike[str] | Backend, policy_path: str | os.PathLike[str],
             officer: UserIdentity, *, recovery_out: str | os.PathLike[str] | None = None
             ) -> Vault:
        """Create a vault under the policy file ``policy_path``, signed by
        ``officer`` (an administrator under it). ``recovery_out`` writes a
        new recovery identity file (0600)."""
        from vault._ops.init import init_vault

        return init_vault(cls, path, policy_path, officer, recovery_out)

    # -- properties ----------------------------------------------------------

    @property
    def id(self) -> str:
        return self.manifest.vault_id

    @property
    def location(self) -> str:
        return self._backend.location

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def policy(self) -> Policy:
        """The active (latest verified) policy version."""
        return self.chain.current

    @property
    def policy_version(self) -> int:
        return self.chain.head.version

    @property
    def audit(self) -> AuditLog:
        """The vault's audit log (``vault.audit.AuditLog``)."""
        if self._audit is None:
            log = self._backend.audit_log(_ops.log_signer(self), self.manifest.origin)
            _require_history(log)
            self._audit = log
        return self._audit

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The vault's write lock; re-entrant within this object."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        with self._backend.lock():
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0

    @contextlib.contextmanager
    def shared_lock(self) -> Iterator[None]:
        """Shared with other sealers, excluding the write lock (no rotation
        meanwhile); nothing to take if this object holds the write lock."""
        if self._lock_depth:
            yield
            return
        with self._backend.shared_lock():
            yield

    def reload(self) -> None:
        """Re-read the policy chain and class keys (after installing a version)."""
        self.chain = PolicyChain.load(self._backend, self.manifest)
        self.class_keys = ClassKeys(self._backend, self.chain)

    def audit_key_lookup(self) -> Callable[[str | None, str, int], Ed25519PublicKey | None]:
        """``key_lookup`` for ``AuditLog.verify``: checks every record's
        signature against the key the vault knows for its actor."""
        return _ops.audit_key_lookup(self)

    def verify_audit(self, *, trusted_checkpoint: bytes | None = None) -> VerifyReport:
        """Verify the audit log: Merkle tree, checkpoints (against the log key
        pinned in ``vault.json``) and every record's signature."""
        from vault.audit import NoteVerifier

        return self.audit.verify(trusted_checkpoint=trusted_checkpoint,
                                 key_lookup=self.audit_key_lookup(),
                                 verifier=NoteVerifier.from_key(self.manifest.log_key),
                                 expect_signer=True)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Vault({self.location!r}, id={self.id!r})"

    # -- the audit discipline ------------------------------------------------

    def me(self) -> UserIdentity:
        if self.identity is None:
            raise UsageError("this needs your identity",
                             hint="pass --identity FILE or set VAULT_IDENTITY")
        return self.identity

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self.me()
        assert self._keyring is not None
        return self._keyring

    def _fields(self, att: Attempt, outcome: str, rules: Sequence[str],
                reason: str) -> dict[str, Any]:
        me = self.me()
        label = att.label
        return {
            "actor": {"name": me.name, "key": me.fingerprint},
            "action": att.action,
            # Only a well-formed id: a hostile one ('', '../x', megabytes)
            # is named in the reason (truncated), never as the record's doc.
            "doc": att.doc if att.doc is not None and DOC_ID.match(att.doc) else None,
            "label": None if label is None else {"level": label.level,
                                                 "compartments": sorted(label.compartments),
                                                 "caveats": sorted(label.caveats)},
            "outcome": outcome,
            "rules": list(rules),
            "reason": reason[:MAX_REASON],
            "policy": self.chain.head.sha256,
        }

    def record(self, attempts: Sequence[Attempt], outcome: str, rules: Sequence[str],
               reason: str) -> None:
        """Append one record per attempt, durably and in one batch (raises
        AuditWriteError, and then nothing may happen)."""
        me = self.me()
        if not self._registered:
            _ops.register_actor(self)
            self._registered = True
        items = [(self._fields(a, outcome, rules, reason), me.signing_key) for a in attempts]
        for a in attempts:
            a.recorded = True  # even if the append fails: never a second record
        if len(items) == 1:
            self.audit.append(*items[0])
        else:
            self.audit.append_many(items)

    @contextlib.contextmanager
    def attempt(self, action: str, doc: str | None = None) -> Iterator[Attempt]:
        """Run one attempt; a VaultError raised before its record is written
        is recorded as an ``error`` outcome, then re-raised."""
        with self.attempts(action, [doc]) as (att,):
            yield att

    @contextlib.contextmanager
    def attempts(self, action: str, docs: Sequence[str | None]) -> Iterator[list[Attempt]]:
        """Several attempts decided together (sealing many files)."""
        self.me()
        atts = [Attempt(action, d) for d in docs]
        try:
            # Decide under the policy version in force now, not the one this
            # object read when it was opened (docs/DESIGN.md §7).
            self.chain.catch_up()
            yield atts
        except (VaultError, OSError) as e:
            pending = [a for a in atts if not a.recorded]
            if pending and not isinstance(e, AuditWriteError):
                self.record(pending, *_outcome_of(e))
            raise

    def authorise(self, atts: Attempt | Sequence[Attempt], action: str, label: Label | None,
                  *, inputs: Mapping[str, Any] | None = None, note: str = "") -> Decision:
        """Decide, record, and raise DeniedError if the policy said no."""
        atts = [atts] if isinstance(atts, Attempt) else list(atts)
        decision = self.policy.decide(self.me().name, action, label, inputs=inputs)
        reason = "; ".join(decision.reasons) + (f" | {note}" if note else "")
        for a in atts:
            a.label = label
        self.record(atts, "allowed" if decision.allowed else "denied", decision.rule_ids, reason)
        if not decision.allowed:
            raise DeniedError(
                f"{atts[0].action} denied: {'; '.join(decision.reasons)}", decision=decision,
                hint="run 'vault policy explain' to see which rules apply, or ask the officer",
            )
        return decision

    # -- reading ---------------------------------------------------------------

    def ls(self) -> list[DocumentInfo]:
        """The documents the policy lets you see (``list`` action)."""
        return _ops.read.ls(self)

    def ls_json(self) -> str:
        """:meth:`ls` as JSON text (``[d.to_dict() for d in ls()]``, keys
        sorted, compact), made without an object per document: for large
        vaults and ``vault ls --json``."""
        return _ops.read.ls_json(self)

    def info(self, doc_id: str) -> DocumentInfo:
        """Label and, if you may open it, the document's metadata."""
        return _ops.read.info(self, doc_id)

    def open(self, doc_id: str, dst: Destination, *, overwrite: bool = False) -> DocumentInfo:
        """Decrypt a document into ``dst`` (a path, written atomically and
        never over an existing file unless ``overwrite``, or a binary stream)."""
        return _ops.read.open_document(self, doc_id, dst, overwrite=overwrite)

    def export(self, doc_id: str, dst: Destination, *, overwrite: bool = False) -> DocumentInfo:
        """Write the sealed document, a standard age file, to ``dst``."""
        return _ops.read.export(self, doc_id, dst, overwrite=overwrite)

    # -- writing ---------------------------------------------------------------

    def seal(self, src: Source, *, level: str | None = None, compartments: Sequence[str] = (),
             caveats: Sequence[str] = (), title: str | None = None, filename: str | None = None,
             declassify_on: Any = None, embargo_until: Any = None,
             justification: str | None = None, reason: str | None = None,
             content_type: str | None = None) -> DocumentInfo:
        """Seal one file or stream; returns the new document."""
        (info,) = self.seal_many([src], level=level, compartments=compartments,
                                 caveats=caveats, title=title, filename=filename,
                                 declassify_on=declassify_on, embargo_until=embargo_until,
                                 justification=justification, reason=reason,
                                 content_type=content_type)
        return info

    def seal_many(self, srcs: Sequence[Source], **label: Any) -> list[DocumentInfo]:
        """Seal several sources under one label (one decision, one audit
        record per document, written together)."""
        return _ops.seal.seal_many(self, list(srcs), **label)

    def reclassify(self, doc_id: str, *, level: str | None = None,
                   compartments: Sequence[str] | None = None,
                   caveats: Sequence[str] | None = None, justification: str,
                   approver: UserIdentity | None = None,
                   declassify_on: Any = None, embargo_until: Any = None) -> DocumentInfo:
        """Give a document a new label, signed by you (and ``approver``)."""
        return _ops.change.reclassify(
            self, doc_id, level=level, compartments=compartments, caveats=caveats,
            justification=justification, approver=approver, declassify_on=declassify_on,
            embargo_until=embargo_until)

    def declassify(self, doc_ids: Sequence[str] | None = None, *, due: bool = False,
                   justification: str) -> list[DocumentInfo]:
        """Declassify ``doc_ids``, or (``due=True``) every document whose
        declassify-on date has passed."""
        return _ops.change.declassify(self, doc_ids, due=due, justification=justification)

    def shred(self, doc_id: str, *, justification: str) -> None:
        """Destroy a document: its wrapped file keys first, then the rest."""
        _ops.change.shred(self, doc_id, justification=justification)

    # -- administration ----------------------------------------------------------

    def apply_policy(self, policy_path: str | os.PathLike[str]) -> ApplyReport:
        """Install a new policy version signed by you, then reconcile keyrings."""
        return _ops.admin.apply_policy(self, policy_path)

    def rotate(self, classes: Sequence[str] | None = None) -> RotateReport:
        """Give label classes new keys and rewrap their documents."""
        return _ops.admin.rotate(self, classes)

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Check that documents, index, keyrings and audit log agree."""
        return _ops.doctor.doctor(self, repair)


def _require_history(log: AuditLog) -> None:
    """Refuse a vault whose audit log has vanished or been emptied.

    ``init`` writes the first record before the vault exists, so an
    initialised vault always has one; starting a fresh log instead would
    silently drop the history (docs/DESIGN.md, "Audit")."""
    from vault.errors import AuditIntegrityError

    try:
        first = next(iter(log.records()), None)
    except UsageError:
        first = None
    except OSError as e:  # unreadable: it cannot be appended to either
        raise AuditWriteError(
            f"cannot read the vault's audit log: {e.strerror}", hint="nothing was done"
        ) from e
    if first is None:
        raise AuditIntegrityError(
            "the vault's audit log is missing or empty",
            kind="truncated",
            seq=0,
            hint="restore the audit folder from a backup; treat this as an incident",
        )
