"""vault.audit: the tamper-evident, fail-closed audit log (docs/AUDIT.md).

Every attempt to act on a document is appended as one signed JSON line to
an append-only file, durably, before the action happens. The lines are the
leaves of an RFC 6962 Merkle tree whose roots are published as C2SP signed
checkpoints; any record can be proven with a C2SP tlog-proof, and any
change to the file is detected and named by :meth:`AuditLog.verify`.
"""

from __future__ import annotations

from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._log import AuditLog
from vault.audit._proof import verify_consistency, verify_inclusion
from vault.audit._record import AuditRecord, fingerprint
from vault.audit._tlogproof import verify_tlog_proof
from vault.audit._verify import VerifyReport
from vault.audit.note import NoteSigner, NoteVerifier

__all__ = [
    "AuditLog",
    "AuditRecord",
    "Checkpoint",
    "NoteSigner",
    "NoteVerifier",
    "VerifyReport",
    "fingerprint",
    "open_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_tlog_proof",
]
