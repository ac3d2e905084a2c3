"""Naming the damage once verification failed (docs/AUDIT.md §10.2).

Detection never depends on this module: a checkpoint whose root does not
match, a structural error or a log shorter than it was is already enough to
fail. Here we only find out *what* happened, from the best evidence there is:

1. The leaf hashes in ``hashes`` were written when each record was
   appended. Once their tree reproduces a signed checkpoint root they are the
   authentic original sequence, and comparing it with the leaves of the log as
   it is now says exactly what changed: a leaf that is new and an original
   that is gone is a *modified* record; only an original gone, a *deleted*
   one; only a new leaf (or a second copy), an *inserted* one; the same leaves
   in another order, *reordered*; the log a strict prefix of what was written,
   *truncated*.
2. Without trustworthy hashes (lost or rewritten), the ``seq`` numbers the
   records carry (signed by their actors) tell the same story, less precisely.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence

from vault.audit._checkpoint import Checkpoint
from vault.audit._files import LogPaths, Snapshot
from vault.audit._hashing import leaf_hash
from vault.audit._reader import iter_lines
from vault.audit._record import TORN_ACTION, AuditRecord
from vault.audit._tree import HashFile, tree_root
from vault.errors import AuditIntegrityError

__all__ = ["classify"]

_HINT = "treat this as a security incident; keep a copy of the log directory as evidence"


def _damage(kind: str, seq: int, message: str) -> AuditIntegrityError:
    return AuditIntegrityError(message, kind=kind, seq=seq, hint=_HINT)


def classify(
    paths: LogPaths,
    snap: Snapshot,
    targets: Sequence[Checkpoint],
    roots: Mapping[int, bytes],
    structure: AuditIntegrityError | None,
) -> AuditIntegrityError:
    """The error that best names what happened to the log."""
    lines = list(iter_lines(paths.log, snap.log_size))
    leaves = [leaf_hash(line) for line in lines]
    required = max([c.size for c in targets] + [snap.index_count])
    original = _original_leaves(paths, targets)
    start = 0
    if original is not None:
        found = _diff(leaves, original, required)
        if found is not None:
            return found
        start = len(original)
    found = _by_seq(lines, start, required)
    if found is not None:
        return found
    if len(lines) < required:
        return _truncated(len(lines), required)
    return (
        _modified_between(targets, roots, len(lines))
        or structure
        or _damage("modified", 0, "the audit log does not match its checkpoints")
    )


def _original_leaves(paths: LogPaths, targets: Sequence[Checkpoint]) -> list[bytes] | None:
    """The leaf hashes recorded at append time, if a checkpoint vouches for them."""
    try:
        fd = os.open(paths.hashes, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        hashes = HashFile(fd)
        leaves = hashes.leaf_hashes(hashes.leaf_count())
    except (OSError, EOFError):
        return None
    finally:
        os.close(fd)
    anchors = [c for c in targets if 0 < c.size <= len(leaves)]
    if anchors and not hmac.compare_digest(tree_root(leaves[: anchors[-1].size]), anchors[-1].root):
        return None
    return leaves


def _truncated(size: int, expected: int) -> AuditIntegrityError:
    return _damage(
        "truncated",
        size,
        f"the audit log was truncated: it ends after {size} lines, {expected} were written",
    )


def _diff(now: list[bytes], original: list[bytes], required: int) -> AuditIntegrityError | None:
    common = min(len(now), len(original))
    i = next((j for j in range(common) if now[j] != original[j]), None)
    if i is None:
        expected = max(len(original), required)
        return _truncated(len(now), expected) if len(now) < expected else None
    was, new = set(original), set(now)
    added = now[i] not in was
    gone = original[i] not in new
    if added and gone:
        return _damage("modified", i, f"record {i} was modified")
    if gone:
        return _damage("deleted", i, f"record {i} was deleted")
    if added or collections.Counter(now)[now[i]] > 1:
        return _damage("inserted", i, f"a line was inserted at position {i}")
    return _damage("reordered", i, f"records were reordered, starting at position {i}")


def _seqs(lines: list[bytes], start: int) -> list[int | None]:
    """The seq each line claims (fragments set aside claim their position)."""
    seqs: list[int | None] = []
    last_record = start - 1
    for i in range(start, len(lines)):
        try:
            record = AuditRecord.from_line(lines[i])
        except AuditIntegrityError:
            seqs.append(None)
            continue
        seqs.append(record.seq)
        last_record = i
        if record.action == TORN_ACTION:
            for f in record.fragments:
                j = f.seq
                if start <= j < i and seqs[j - start] is None and _matches(lines[j], f.sha256):
                    seqs[j - start] = j
    # Lines after the last record are an interrupted write not yet set aside.
    for i in range(last_record + 1, len(lines)):
        seqs[i - start] = i
    return seqs


def _matches(line: bytes, digest: str) -> bool:
    return hmac.compare_digest(hashlib.sha256(line).hexdigest(), digest)


def _by_seq(lines: list[bytes], start: int, required: int) -> AuditIntegrityError | None:
    seqs = _seqs(lines, start)
    counts = collections.Counter(seqs)
    for i, seq in enumerate(seqs, start):
        if seq == i:
            continue
        later = seqs[i - start + 1 :]
        # After the last line, "in step" depends on whether lines are missing.
        following = later[0] if later else (i + 2 if len(lines) < required else i + 1)
        if seq is None:
            if following == i:
                return _damage("inserted", i, f"a line was inserted at position {i}")
            return _damage("modified", i, f"line {i} is not a valid record")
        if seq < i or counts[seq] > 1:  # lines before i are in step: a second copy
            return _damage("inserted", i, f"a copy of record {seq} was inserted at position {i}")
        if i in later:
            return _damage("reordered", i, f"record {seq} was moved to position {i}")
        if following == i + 1:  # only this line is out of step
            return _damage("modified", i, f"record {i} was modified (it claims seq {seq})")
        return _damage("deleted", i, f"record {i} was deleted")
    return None


def _modified_between(
    targets: Sequence[Checkpoint], roots: Mapping[int, bytes], size: int
) -> AuditIntegrityError | None:
    lower = 0
    for cp in targets:
        if cp.size > size:
            break
        if not hmac.compare_digest(roots.get(cp.size, b""), cp.root):
            return _damage(
                "modified",
                lower,
                f"a record between {lower} and {cp.size - 1} was modified",
            )
        lower = cp.size
    return None
