"""Proofs served from the derived hashes, checked before they are handed
out (docs/AUDIT.md §6, §10).

A proof reads ``O(log n)`` stored hashes and one line; nothing is re-hashed.
The stored hashes are derived data, so every inclusion proof is verified
against its signed checkpoint first; when that fails the derived data is
rebuilt from the log (with a note) and the proof made again -- or, where the
log logic may not rewrite it (a database computes its own), the proof is
made from the lines themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from vault.audit._checkpoint import Checkpoint
from vault.audit._hashing import HASH_SIZE, leaf_hash
from vault.audit._proof import consistency_proof, inclusion_proof, verify_inclusion
from vault.audit._storage import LogEnd
from vault.audit._tlogproof import TlogProof
from vault.audit._tree import StoredHashes, stored_order
from vault.errors import AuditIntegrityError, MerkleError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit._logread import LogReading

__all__ = ["consistency", "not_its_checkpoint", "prove", "short_of_checkpoint"]

T = TypeVar("T")
_FAILED = (MerkleError, EOFError, OSError, ValueError)


def short_of_checkpoint(size: int, have: int) -> AuditIntegrityError:
    """The log holds ``have`` lines, fewer than its checkpoint's ``size``."""
    return AuditIntegrityError(f"the audit log holds fewer than the {size} lines of its "
                               "checkpoint", kind="truncated", seq=have,
                               hint="run 'vault audit verify'")


def not_its_checkpoint(size: int) -> AuditIntegrityError:
    """The log's first ``size`` lines are not those its checkpoint signs."""
    return AuditIntegrityError(f"the audit log does not match its checkpoint of size {size}",
                               kind="modified", hint="run 'vault audit verify'")


def _from_derived(log: LogReading, size: int, make: Callable[[StoredHashes], T]) -> T:
    derived = log.storage.derived()
    if derived is None:
        raise EOFError("no derived hashes")
    with derived:
        hashes = derived.hashes()
        if hashes.leaf_count() < size:
            raise EOFError("the derived hashes lag behind")
        return make(hashes)


def _in_memory(log: LogReading, size: int) -> tuple[StoredHashes, list[bytes]]:
    """Stored hashes of the first ``size`` lines, computed from the lines."""
    lines = [line for block in log.storage.read(0, 0, LogEnd(size, None)) for line in block]
    lines = lines[:size]
    data = stored_order(leaf_hash(line) for line in lines)

    def read(indexes: object) -> list[bytes]:
        return [data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in indexes]  # type: ignore[attr-defined]

    return StoredHashes(read, len(data) // HASH_SIZE), lines


def _rebuild(log: LogReading) -> bool:
    """Rebuild writable derived data; False when it is not ours to rewrite."""
    from vault.audit._verify_end import _repair

    derived = log.storage.derived()
    writable = derived is not None and derived.writable
    if derived is not None:
        derived.close()
    if writable:
        log.notes.append(_repair(log, None))
    return writable


def prove(log: LogReading, seq: int, note: bytes, cp: Checkpoint) -> str:
    """A c2sp.org/tlog-proof@v1 for line ``seq`` against ``cp`` (whose signed
    note is ``note``), carrying the line as extra data, verified first."""
    if seq >= cp.size:
        raise UsageError(f"there is no record {seq}: the log holds {cp.size} lines")
    if any(i < cp.size for i in log._sealed_off):
        return _under_incident(log, seq, note, cp)
    for attempt in range(2):
        try:
            with log._reading():
                proof = _from_derived(log, cp.size, lambda h: h.prefetched(
                    lambda sub: inclusion_proof(seq, cp.size, sub)))
                line = log.storage.line(seq)
            if line is None:
                raise EOFError("line not found through the derived index")
            verify_inclusion(seq, cp.size, leaf_hash(line), proof, cp.root)
            return TlogProof(seq, tuple(proof), note, extra=line).to_text()
        except _FAILED:
            if attempt or not _rebuild(log):
                break
    with log._reading():
        hashes, lines = _in_memory(log, cp.size)
    if len(lines) < cp.size:
        raise short_of_checkpoint(cp.size, len(lines))
    proof = inclusion_proof(seq, cp.size, hashes.subtree)
    try:
        verify_inclusion(seq, cp.size, leaf_hash(lines[seq]), proof, cp.root)
    except MerkleError as e:
        raise not_its_checkpoint(cp.size) from e
    return TlogProof(seq, tuple(proof), note, extra=lines[seq]).to_text()


def _under_incident(log: LogReading, seq: int, note: bytes, cp: Checkpoint) -> str:
    """The proof against a checkpoint over lines an incident sealed off
    (§11.3): made from the leaves those lines had when written -- those
    their incident records carry, else those the derived data keeps (which
    verification does not rebuild over them) -- and the lines' own
    elsewhere; or, for a checkpoint signed over the lines as they are now,
    from the lines alone. The derived data is never rebuilt here, or no
    proof could be made again. Its other hashes may be older than the
    damage: all are recomputed from the leaves."""
    from vault.audit._tree import tree_root
    from vault.audit._verify_end import originals

    with log._reading():
        leaves = originals(log, cp.size, log._sealed_off, log._recorded)
        line = log.storage.line(seq)
        if leaves is None or tree_root(leaves) != cp.root:
            leaves = [leaf_hash(x) for block in log.storage.read(0, 0, LogEnd(cp.size, None))
                      for x in block][:cp.size]
    if len(leaves) != cp.size or tree_root(leaves) != cp.root or line is None \
            or leaf_hash(line) != leaves[seq]:
        raise not_its_checkpoint(cp.size)
    data = stored_order(leaves)

    def read(indexes: object) -> list[bytes]:
        return [data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in indexes]  # type: ignore[attr-defined]

    proof = inclusion_proof(seq, cp.size, StoredHashes(read, len(data) // HASH_SIZE).subtree)
    try:
        verify_inclusion(seq, cp.size, leaf_hash(line), proof, cp.root)
    except MerkleError as e:
        raise not_its_checkpoint(cp.size) from e
    return TlogProof(seq, tuple(proof), note, extra=line).to_text()


def consistency(log: LogReading, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 consistency proof between two sizes, from the derived hashes
    (from the lines when there are none): check it against roots you trust."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    with contextlib.suppress(EOFError, OSError), log._reading():
        return _from_derived(log, new_size, lambda h: h.prefetched(
            lambda sub: consistency_proof(old_size, new_size, sub)))
    with log._reading():
        hashes, lines = _in_memory(log, new_size)
    if len(lines) < new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    return consistency_proof(old_size, new_size, hashes.subtree)
