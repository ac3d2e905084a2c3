"""vault.audit: the tamper-evident, fail-closed audit log (docs/AUDIT.md).

Every attempt to act on a document is appended as one JSON line to an
append-only log, durably, before the action happens; each signed record
commits to the lines before it. The lines are the leaves of an RFC 6962
Merkle tree whose roots are published as C2SP signed checkpoints; any
record can be proven with a C2SP tlog-proof, and any change to the log is
detected and named by :meth:`AuditLog.verify`. One :class:`AuditLog` runs
over a :class:`LogStorage`: a folder (:class:`FolderStorage`) or a database.
"""

from __future__ import annotations

from vault.audit._actions import VAULT_ACTIONS
from vault.audit._chain import verify_record
from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._folder import FolderStorage
from vault.audit._hashing import leaf_hash
from vault.audit._log import AuditLog, KeyLookup
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
