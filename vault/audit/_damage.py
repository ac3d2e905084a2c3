"""Naming the damage once verification failed (docs/AUDIT.md §11.2).

Detection never depends on this module: a checkpoint whose root does not
match, a structural error or a log shorter than it was is already enough to
fail. Here we only find out *what* happened, from the best evidence there is:

1. The leaf hashes in the derived data (``hashes``) were written when each record was
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
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from vault.audit._hashing import leaf_hash
from vault.audit._record import TORN_ACTION, AuditRecord
from vault.audit._storage import LogEnd, LogStorage
from vault.audit._tree import tree_root
from vault.audit._walk import MAX_FRAGMENTS
from vault.errors import AuditIntegrityError

__all__ = ["Target", "classify"]

_HINT = "treat this as a security incident; keep a copy of the log as evidence"


class Target(NamedTuple):
    """A size and root the log must reproduce (a checkpoint, a trusted tip)."""

    size: int
    root: bytes


def _damage(kind: str, seq: int, message: str) -> AuditIntegrityError:
    return AuditIntegrityError(message, kind=kind, seq=seq, hint=_HINT)


def classify(
    storage: LogStorage,
    end: LogEnd,
    targets: Sequence[Target],
    roots: Mapping[int, bytes],
    structure: AuditIntegrityError | None,
) -> AuditIntegrityError:
    """The error that best names what happened to the log."""
    lines = [line for block in storage.read(0, 0, end) for line in block]
    leaves = [leaf_hash(line) for line in lines]
    required = max([t.size for t in targets], default=0)
    original = _original_leaves(storage, targets)
    start = 0
    if original is not None:
        found = _diff(leaves, original, required)
        # A line the hashes written at append time have and the log lost
        # stays a deleted record; lines added or changed are named as moved.
        if found is not None:
            return _moved(found, structure, ("modified", "inserted"))
        start = len(original)
    found = _by_seq(lines, start, required)
    if found is not None:
        return _moved(found, structure, ("modified", "inserted", "deleted"))
    if len(lines) < required:
        return _truncated(len(lines), required)
    return (
        _modified_between(targets, roots, len(lines))
        or structure
        or _damage("modified", 0, "the audit log does not match its checkpoints")
    )


def _moved(found: AuditIntegrityError, structure: AuditIntegrityError | None,
           kinds: tuple[str, ...]) -> AuditIntegrityError:
    """``found``, unless it is of ``kinds`` and the reading rules found
    records out of place: a line inserted, split or joined (changed
    leaves, a line "inserted", or by the numbers alone a record "deleted")
    is then named as they name it, with their repair -- put the lines back
    as written -- as every other command names it: no incident (§11.3)."""
    if structure is not None and found.kind in kinds and _misplaced(structure):
        return structure
    return found


def _misplaced(error: AuditIntegrityError | None) -> bool:
    """Is ``error`` the reading rules' record out of place (AUDIT.md §8)?"""
    return error is not None and error.kind in ("inserted", "deleted") \
        and " holds record " in error.message


def _original_leaves(storage: LogStorage, targets: Sequence[Target]) -> list[bytes] | None:
    """The leaf hashes recorded at append time, if a target vouches for them.
    (Derived data: only used to *name* damage already detected.)"""
    derived = storage.derived()
    if derived is None:
        return None
    try:
        with derived:
            hashes = derived.hashes()
            leaves = hashes.leaf_hashes(hashes.leaf_count())
    except (OSError, EOFError):
        return None
    if not leaves:
        return None
    anchors = [t for t in sorted(targets) if 0 < t.size <= len(leaves)]
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
    last_record = last_signed = start - 1
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
            if len(record.fragments) == MAX_FRAGMENTS:  # a long run: its chain covers the rest
                j = record.fragments[0].seq - 1
                while j > last_signed and seqs[j - start] in (None, j):
                    seqs[j - start] = j
                    j -= 1
        if record.signature is not None:
            last_signed = i
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
    targets: Sequence[Target], roots: Mapping[int, bytes], size: int
) -> AuditIntegrityError | None:
    lower = 0
    for cp in sorted(targets):
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
