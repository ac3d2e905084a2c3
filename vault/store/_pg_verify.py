"""Verifying the audit log stored in PostgreSQL (docs/AUDIT.md §10).

The procedure of the folder log, on one REPEATABLE READ snapshot of the
three audit tables instead of a snapshot taken under a shared lock:

1. open every stored checkpoint (and the trusted one) with the verifier key;
2. stream the lines in ``seq`` order, hash them into the tree
   (:class:`~vault.audit._tree.TreeBuilder`) and check the records with the
   folder verifier's own checker (structure, ``seq`` = line number,
   fragments set aside; signatures with ``key_lookup``);
3. compare the roots with the checkpoints.

The rows' ``seq`` column only orders them: what is checked is the lines,
exactly as in a file. The stored hashes play the role of the hash and
index files: they are written in the same transaction as the lines, so
when they cover more lines than there are, lines were removed (kind
``truncated``) -- detected even above the newest checkpoint.

When something is wrong, the evidence is copied into a temporary log
directory -- lines, stored hashes, checkpoints -- and named by the folder
log's own :func:`vault.audit._damage.classify`, so the kinds of damage mean
the same for both backends.
"""

from __future__ import annotations

import hmac
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault.audit import Checkpoint, NoteVerifier, VerifyReport
from vault.audit._checkpoint import open_checkpoint
from vault.audit._damage import classify
from vault.audit._files import LogPaths, Snapshot
from vault.audit._hashing import LEAF_PREFIX, _sha256
from vault.audit._proof import consistency_proof, verify_consistency
from vault.audit._tree import TreeBuilder, stored_hash_count
from vault.audit._verify import _Checker
from vault.errors import AuditIntegrityError, CheckpointError, MerkleError
from vault.store._pg_audit import StoredHashes
from vault.store._pg_conn import Connection, Database, storage_errors

__all__ = ["verify_database"]

KeyLookup = Callable[[str, str], Ed25519PublicKey | None]
_FETCH = 5000


def _open(note: bytes, verifier: NoteVerifier, origin: str, size: int | None) -> Checkpoint:
    what = "the trusted checkpoint" if size is None else f"checkpoint {size}"
    try:
        cp = open_checkpoint(note, [verifier], origin=origin)
    except CheckpointError as e:
        raise AuditIntegrityError(f"{what} does not verify: {e}", kind="checkpoint",
                                  seq=size) from e
    if size is not None and cp.size != size:
        raise AuditIntegrityError(f"checkpoint row {size} holds a checkpoint of size {cp.size}",
                                  kind="checkpoint", seq=size)
    return cp


def _leaves_covered(conn: Connection) -> int:
    """Lines the stored hashes cover (the largest x with N(x) <= rows)."""
    row = conn.execute("SELECT coalesce(max(n) + 1, 0) FROM vault.audit_hashes").fetchone()
    count = int(row[0]) if row else 0
    n = count // 2
    while stored_hash_count(n + 1) <= count:
        n += 1
    return n


def verify_database(db: Database, *, verifier: NoteVerifier, origin: str,
                    trusted_checkpoint: bytes | None, key_lookup: KeyLookup | None
                    ) -> VerifyReport:
    with storage_errors("cannot read the audit log"), db.snapshot() as conn:
        rows = conn.execute("SELECT size, note FROM vault.audit_checkpoints ORDER BY size")
        checkpoints = [_open(bytes(note), verifier, origin, int(size)) for size, note in rows]
        trusted = _open(trusted_checkpoint, verifier, origin, None) if trusted_checkpoint \
            else None
        targets = sorted([*checkpoints, *([trusted] if trusted else [])], key=lambda c: c.size)
        covered = targets[-1].size if targets else 0
        builder = TreeBuilder(c.size for c in targets)
        checker = _Checker(0 if key_lookup else covered, key_lookup)
        size = 0
        sha, prefix = _sha256, LEAF_PREFIX
        with conn.cursor(name="vault_audit_verify") as cur:
            cur.execute("SELECT line FROM vault.audit_log ORDER BY seq")
            while batch := cur.fetchmany(_FETCH):
                lines = [bytes(r[0]) for r in batch]
                builder.add([sha(prefix + line).digest() for line in lines])
                checker.add(size, lines)
                size += len(lines)
        size, root = builder.finish()
        hashed = _leaves_covered(conn)
        bad_root = any(c.size > size or not hmac.compare_digest(builder.roots[c.size], c.root)
                       for c in targets)
        if bad_root or checker.structure is not None or hashed > size:
            raise _name_damage(conn, targets, builder.roots, checker.structure, hashed)
        if checker.signature is not None:
            raise checker.signature
        stored = StoredHashes(conn)
        hashes_ok = hashed >= size and (
            size == 0 or hmac.compare_digest(stored.subtree(0, size), root))
        proved = False
        if trusted is not None and checkpoints and hashes_ok:
            newest = checkpoints[-1]
            if 0 < trusted.size <= newest.size:
                proof = stored.prefetched(
                    lambda sub: consistency_proof(trusted.size, newest.size, sub))
                try:
                    verify_consistency(trusted.size, newest.size, proof, trusted.root,
                                       newest.root)
                except MerkleError as e:
                    raise AuditIntegrityError(
                        f"the trusted checkpoint is not consistent with the log: {e}",
                        kind="checkpoint") from e
                proved = True
    return VerifyReport(
        size=size, root=root, checkpoints=len(checkpoints),
        newest_checkpoint=checkpoints[-1].size if checkpoints else None,
        trusted_checkpoint=trusted.size if trusted else None, consistency_proved=proved,
        records_parsed=checker.parsed, signatures=checker.signatures,
        unrecovered=sum(len(line) + 1 for _, line in checker.stream.pending),
        hashes_ok=hashes_ok,
    )


def _name_damage(conn: Connection, targets: list[Checkpoint], roots: dict[int, bytes],
                 structure: AuditIntegrityError | None, hashed: int) -> AuditIntegrityError:
    """Copy the evidence into a log directory and let the folder log's
    classifier name the damage (docs/AUDIT.md §10.2)."""
    with tempfile.TemporaryDirectory(prefix="vault-audit-") as tmp:
        paths = LogPaths(Path(tmp))
        log_size = _write_rows(conn, "SELECT line FROM vault.audit_log ORDER BY seq",
                               paths.log, newline=True)
        _write_rows(conn, "SELECT hash FROM vault.audit_hashes ORDER BY n", paths.hashes,
                    newline=False)
        snap = Snapshot(log_size, [c.size for c in targets], hashed)
        return classify(paths, snap, targets, roots, structure)


def _write_rows(conn: Connection, query: str, path: Path, *, newline: bool) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    written = 0
    with os.fdopen(fd, "wb") as f, conn.cursor(name="vault_audit_evidence") as cur:
        cur.execute(query)
        while batch := cur.fetchmany(_FETCH):
            for (value,) in batch:
                data = bytes(value) + (b"\n" if newline else b"")
                f.write(data)
                written += len(data)
    return written
