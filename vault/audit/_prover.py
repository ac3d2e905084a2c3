"""Proofs served from the hash file (docs/AUDIT.md §5 and §9).

A proof reads ``O(log n)`` stored hashes and one line of the log (found
through the index); nothing is re-hashed. The hash file is derived data, so
every inclusion proof is verified against its signed checkpoint before it
is handed out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from vault.audit._checkpoint import Checkpoint
from vault.audit._files import LogPaths
from vault.audit._hashing import leaf_hash
from vault.audit._proof import consistency_proof, inclusion_proof, verify_inclusion
from vault.audit._tlogproof import TlogProof
from vault.audit._tree import HashFile
from vault.audit._writer import read_line
from vault.errors import MerkleError, UsageError

__all__ = ["make_consistency_proof", "make_proof", "open_derived"]

_REPAIR_HINT = (
    "the hash files do not match the checkpoint: run 'vault audit verify'; if the log "
    "verifies, remove the hashes and index files (the next append rebuilds them)"
)


@contextlib.contextmanager
def open_derived(paths: LogPaths) -> Iterator[tuple[HashFile, int, int]]:
    """The hash file, and read fds on the index and the log."""
    with contextlib.ExitStack() as stack:
        fds = []
        for path in (paths.hashes, paths.index, paths.log):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise UsageError(f"no audit log in {paths.directory}") from None
            stack.callback(os.close, fd)
            fds.append(fd)
        yield HashFile(fds[0]), fds[1], fds[2]


def make_proof(paths: LogPaths, seq: int, note: bytes, checkpoint: Checkpoint) -> str:
    """A c2sp.org/tlog-proof@v1 for line ``seq`` against ``checkpoint``
    (whose signed note is ``note``), carrying the line as extra data."""
    if seq >= checkpoint.size:
        raise UsageError(f"there is no record {seq}: the log holds {checkpoint.size} lines")
    with open_derived(paths) as (hashes, index_fd, log_fd):
        if hashes.leaf_count() < checkpoint.size:
            raise UsageError(
                "the log's hash files lag behind its newest checkpoint",
                hint="append a record or run 'vault audit checkpoint' to update them",
            )
        line = read_line(index_fd, log_fd, seq)
        proof = inclusion_proof(seq, checkpoint.size, hashes.subtree)
    try:
        verify_inclusion(seq, checkpoint.size, leaf_hash(line), proof, checkpoint.root)
    except MerkleError as e:
        e.hint = _REPAIR_HINT
        raise
    return TlogProof(seq, tuple(proof), note, extra=line).to_text()


def make_consistency_proof(paths: LogPaths, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 consistency proof from the stored hashes."""
    with open_derived(paths) as (hashes, _, _):
        if not 0 < old_size <= new_size <= hashes.leaf_count():
            raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
        return consistency_proof(old_size, new_size, hashes.subtree)
