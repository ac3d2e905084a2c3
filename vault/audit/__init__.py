"""vault.audit: the tamper-evident, fail-closed audit log (docs/AUDIT.md).

Every attempt to act on a document is appended as one JSON line to an
append-only log, durably, before the action happens; each signed record
commits to the lines before it. The lines are the leaves of an RFC 6962
Merkle tree whose roots are published as C2SP signed checkpoints; any
record can be proven with a C2SP tlog-proof, and any change to the log is
detected and named by :meth:`AuditLog.verify`. One :class:`AuditLog` runs
over a :class:`LogStorage`: a folder (:class:`FolderStorage`) or a database.

Names are imported lazily: appending needs none of the verifier's modules,
and every command of the vault appends.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "MAX_LINE",
    "OUTCOMES",
    "VAULT_ACTIONS",
    "AuditLog",
    "AuditRecord",
    "Checkpoint",
    "DerivedStore",
    "FolderStorage",
    "Fragment",
    "KeyLookup",
    "LastAppend",
    "LineSource",
    "LogEnd",
    "LogStorage",
    "NoteSigner",
    "NoteVerifier",
    "Scan",
    "ScannedLine",
    "StoredHashes",
    "TrustedTip",
    "VerifyReport",
    "fingerprint",
    "leaf_hash",
    "open_checkpoint",
    "stored_hash_count",
    "stored_hash_index",
    "verify_consistency",
    "verify_inclusion",
    "verify_record",
    "verify_tlog_proof",
]

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit._actions import VAULT_ACTIONS
    from vault.audit._chain import KeyLookup, verify_record
    from vault.audit._checkpoint import Checkpoint, open_checkpoint
    from vault.audit._folder import FolderStorage
    from vault.audit._hashing import leaf_hash
    from vault.audit._log import AuditLog, LastAppend
    from vault.audit._proof import verify_consistency, verify_inclusion
    from vault.audit._record import MAX_LINE, OUTCOMES, AuditRecord, Fragment, fingerprint
    from vault.audit._scan import Scan
    from vault.audit._storage import DerivedStore, LineSource, LogEnd, LogStorage
    from vault.audit._tip import TrustedTip
    from vault.audit._tlogproof import verify_tlog_proof
    from vault.audit._tree import StoredHashes, stored_hash_count, stored_hash_index
    from vault.audit._verify import VerifyReport
    from vault.audit._walk import ScannedLine
    from vault.audit.note import NoteSigner, NoteVerifier

# name -> module that defines it
_LAZY = {
    "VAULT_ACTIONS": "_actions", "KeyLookup": "_chain", "verify_record": "_chain",
    "Checkpoint": "_checkpoint", "open_checkpoint": "_checkpoint",
    "FolderStorage": "_folder", "leaf_hash": "_hashing", "AuditLog": "_log",
    "LastAppend": "_log",
    "verify_consistency": "_proof", "verify_inclusion": "_proof", "MAX_LINE": "_record",
    "OUTCOMES": "_record", "AuditRecord": "_record", "Fragment": "_record",
    "fingerprint": "_record", "Scan": "_scan", "DerivedStore": "_storage",
    "LineSource": "_storage", "LogEnd": "_storage", "LogStorage": "_storage",
    "TrustedTip": "_tip", "verify_tlog_proof": "_tlogproof", "StoredHashes": "_tree",
    "stored_hash_count": "_tree", "stored_hash_index": "_tree", "VerifyReport": "_verify",
    "ScannedLine": "_walk", "NoteSigner": "note", "NoteVerifier": "note",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vault.audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vault.audit.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
