"""Verifying a log directory (docs/AUDIT.md §10).

One streaming pass over the log recomputes the tree (:class:`TreeBuilder`)
and notes the root at every checkpoint's size. Lines covered by a verified
checkpoint need nothing more: the signed root fixes every byte of them.
Lines above the newest checkpoint are parsed and their structure checked
(``seq`` = line number, fragments set aside). With ``key_lookup`` every
record is parsed and its actor's signature checked. Any failure is handed
to :mod:`vault.audit._damage`, which names it.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._damage import classify
from vault.audit._files import LineBlocks, LogPaths, Snapshot
from vault.audit._hashing import LEAF_PREFIX, _sha256
from vault.audit._proof import verify_consistency
from vault.audit._prover import make_consistency_proof
from vault.audit._reader import RecordStream
from vault.audit._record import AuditRecord
from vault.audit._tree import HashFile, TreeBuilder
from vault.audit.note import NoteVerifier
from vault.errors import AuditIntegrityError, CheckpointError, MerkleError

__all__ = ["VerifyReport", "verify_log"]

KeyLookup = Callable[[str, str], Ed25519PublicKey | None]
_SEED_LINES = 16  # lines kept from before the unsigned tail, to see a fragment run whole


@dataclass(frozen=True)
class VerifyReport:
    """What a successful verification established."""

    size: int  # lines in the tree
    root: bytes
    checkpoints: int  # stored checkpoints verified
    newest_checkpoint: int | None
    trusted_checkpoint: int | None  # size of the external checkpoint, if given
    consistency_proved: bool  # external -> newest checked with a consistency proof
    records_parsed: int
    signatures: int  # record signatures verified (only with key_lookup)
    unrecovered: int  # bytes at the end not yet set aside (interrupted write)
    hashes_ok: bool  # the derived hash and index files match the log

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["root"] = self.root.hex()
        return d


class _Checker:
    """Parses lines from ``start`` on; remembers the first problem of each kind."""

    def __init__(self, start: int, key_lookup: KeyLookup | None) -> None:
        self.start = start
        self.key_lookup = key_lookup
        self.stream = RecordStream()
        self.before: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=_SEED_LINES)
        self.seeded = start == 0
        self.parsed = 0
        self.signatures = 0
        self.structure: AuditIntegrityError | None = None
        self.signature: AuditIntegrityError | None = None

    def add(self, first: int, lines: list[bytes]) -> None:
        if self.structure is not None:
            return
        if first + len(lines) <= self.start:
            keep = min(len(lines), _SEED_LINES)
            last = first + len(lines)
            self.before.extend(zip(range(last - keep, last), lines[-keep:], strict=True))
            return
        for seq in range(first, first + len(lines)):
            if seq < self.start:
                self.before.append((seq, lines[seq - first]))
            elif self._feed(seq, lines[seq - first]):
                return

    def _seed(self) -> None:
        # Start right after the last record before the tail, so that a run of
        # fragments straddling the boundary is seen whole.
        seed = list(self.before)
        for i in range(len(seed) - 1, -1, -1):
            try:
                AuditRecord.from_line(seed[i][1])
            except AuditIntegrityError:
                continue
            seed = seed[i + 1 :]
            break
        self.stream.pending = seed
        self.seeded = True

    def _feed(self, seq: int, line: bytes) -> bool:
        if not self.seeded:
            self._seed()
        try:
            record = self.stream.feed(seq, line)
        except AuditIntegrityError as e:
            self.structure = e
            return True
        self.parsed += 1
        if record is not None and self.key_lookup is not None and self.signature is None:
            key = self.key_lookup(record.actor, record.actor_key)
            if key is not None and record.verify_signature(key):
                self.signatures += 1
            else:
                why = "has a bad signature" if key else "is signed by an unknown key"
                self.signature = AuditIntegrityError(
                    f"record {seq} ({record.actor}) {why}", kind="signature", seq=seq
                )
        return False


def _load_checkpoints(
    paths: LogPaths, sizes: list[int], verifier: NoteVerifier, origin: str
) -> list[Checkpoint]:
    out = []
    for size in sizes:
        try:
            cp = open_checkpoint(paths.checkpoint(size).read_bytes(), [verifier], origin=origin)
        except (CheckpointError, OSError) as e:
            raise AuditIntegrityError(
                f"checkpoint {size} does not verify: {e}", kind="checkpoint", seq=size
            ) from e
        if cp.size != size:
            raise AuditIntegrityError(
                f"checkpoint file {size} holds a checkpoint of size {cp.size}",
                kind="checkpoint",
                seq=size,
            )
        out.append(cp)
    return out


def _open_trusted(data: bytes, verifier: NoteVerifier, origin: str) -> Checkpoint:
    try:
        return open_checkpoint(data, [verifier], origin=origin)
    except CheckpointError as e:
        raise AuditIntegrityError(
            f"the trusted checkpoint does not verify: {e}", kind="checkpoint"
        ) from e


def verify_log(
    paths: LogPaths,
    snap: Snapshot,
    *,
    verifier: NoteVerifier,
    origin: str,
    trusted_checkpoint: bytes | None,
    key_lookup: KeyLookup | None,
) -> VerifyReport:
    checkpoints = _load_checkpoints(paths, snap.checkpoint_sizes, verifier, origin)
    trusted = _open_trusted(trusted_checkpoint, verifier, origin) if trusted_checkpoint else None
    targets = sorted([*checkpoints, *([trusted] if trusted else [])], key=lambda c: c.size)
    covered = targets[-1].size if targets else 0
    builder = TreeBuilder(c.size for c in targets)
    checker = _Checker(0 if key_lookup else covered, key_lookup)
    sha, prefix = _sha256, LEAF_PREFIX
    fd = os.open(paths.log, os.O_RDONLY | os.O_CLOEXEC)
    try:
        blocks = LineBlocks(fd, 0, snap.log_size)
        n = 0
        for lines in blocks:
            builder.add([sha(prefix + line).digest() for line in lines])
            checker.add(n, lines)
            n += len(lines)
    finally:
        os.close(fd)
    size, root = builder.finish()
    bad_root = any(
        c.size > size or not hmac.compare_digest(builder.roots[c.size], c.root) for c in targets
    )
    if bad_root or checker.structure is not None or snap.index_count > size:
        raise classify(paths, snap, targets, builder.roots, checker.structure)
    if checker.signature is not None:
        raise checker.signature
    unrecovered = len(blocks.tail) + sum(len(line) + 1 for _, line in checker.stream.pending)
    hashes_ok = _hashes_match(paths, size, root, blocks.end)
    proved = hashes_ok and _prove_consistency(paths, trusted, checkpoints)
    return VerifyReport(
        size=size,
        root=root,
        checkpoints=len(checkpoints),
        newest_checkpoint=checkpoints[-1].size if checkpoints else None,
        trusted_checkpoint=trusted.size if trusted else None,
        consistency_proved=proved,
        records_parsed=checker.parsed,
        signatures=checker.signatures,
        unrecovered=unrecovered,
        hashes_ok=hashes_ok,
    )


def _prove_consistency(
    paths: LogPaths, trusted: Checkpoint | None, checkpoints: list[Checkpoint]
) -> bool:
    """Check the external checkpoint against the newest stored one with a
    consistency proof, as an auditor without the log would."""
    if trusted is None or not checkpoints or not 0 < trusted.size <= checkpoints[-1].size:
        return False
    newest = checkpoints[-1]
    proof = make_consistency_proof(paths, trusted.size, newest.size)
    try:
        verify_consistency(trusted.size, newest.size, proof, trusted.root, newest.root)
    except MerkleError as e:
        raise AuditIntegrityError(
            f"the trusted checkpoint is not consistent with the log: {e}", kind="checkpoint"
        ) from e
    return True


def _hashes_match(paths: LogPaths, size: int, root: bytes, end: int) -> bool:
    """Do the derived files serve this tree (so proofs from them are right)?"""
    with contextlib.ExitStack() as stack:
        try:
            hfd = os.open(paths.hashes, os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, hfd)
            ifd = os.open(paths.index, os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, ifd)
        except FileNotFoundError:
            return False
        hashes = HashFile(hfd)
        if hashes.leaf_count() < size or os.fstat(ifd).st_size < size * 8:
            return False
        if size and struct.unpack(">Q", os.pread(ifd, 8, (size - 1) * 8))[0] != end:
            return False
        return hmac.compare_digest(hashes.root(size), root)
