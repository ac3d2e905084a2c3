"""Inclusion and consistency proofs, RFC 9162 §2.1.3 and §2.1.4, and range
proofs of consecutive leaves (docs/AUDIT.md §10).

Generation reads subtree hashes through a ``subtree(lo, hi)`` callable
(``MTH(D[lo:hi])``; :meth:`vault.audit._tree.HashFile.subtree` in the log),
so a proof costs ``O(log n)`` hash reads. Verification follows the RFC's
algorithms step by step. A proof that is malformed (bad sizes or indices,
wrong length, hashes that are not 32 bytes) raises :class:`ProofError`; a
well-formed proof that leads to another root raises
:class:`RootMismatchError` with both roots.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from vault.audit._hashing import HASH_SIZE, NODE_PREFIX, _sha256
from vault.errors import ProofError, RootMismatchError

__all__ = [
    "SubtreeReader",
    "consistency_proof",
    "inclusion_proof",
    "range_proof",
    "root_from_inclusion",
    "root_from_range",
    "verify_consistency",
    "verify_inclusion",
]

#: ``subtree(lo, hi)`` returns ``MTH(D[lo:hi])``.
SubtreeReader = Callable[[int, int], bytes]


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size >= 2``)."""
    return 1 << ((size - 1).bit_length() - 1)


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(NODE_PREFIX + left + right).digest()


def _root_of(hashes: Sequence[bytes]) -> bytes:
    """``MTH`` of one or more leaf hashes, a level at a time: pairing
    neighbours and carrying an odd last node up builds the same tree as
    RFC 9162's split at the largest power of two, without a call per node
    (a proof's run holds up to a thousand lines)."""
    level = list(hashes)
    while len(level) > 1:
        paired = [_sha256(NODE_PREFIX + level[i] + level[i + 1]).digest()
                  for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _check_hashes(proof: Sequence[bytes]) -> None:
    for h in proof:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"leaf and proof hashes must be {HASH_SIZE} bytes")


def inclusion_proof(index: int, size: int, subtree: SubtreeReader) -> list[bytes]:
    """``PATH(index, D[0:size])`` of RFC 9162 §2.1.3.1, leaf's sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    outer_first: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            outer_first.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            outer_first.append(subtree(lo, lo + k))
            lo += k
    return outer_first[::-1]


def consistency_proof(size1: int, size2: int, subtree: SubtreeReader) -> list[bytes]:
    """``PROOF(size1, D[0:size2])`` of RFC 9162 §2.1.4.1."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    outer_first: list[bytes] = []
    lo, hi, m, whole = 0, size2, size1, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            outer_first.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            outer_first.append(subtree(lo, lo + k))
            lo += k
            m -= k
            whole = False
    if not whole:
        outer_first.append(subtree(lo, hi))
    return outer_first[::-1]


def range_proof(start: int, end: int, size: int, subtree: SubtreeReader) -> list[bytes]:
    """The range proof of leaves ``[start, end)`` in ``D[0:size]`` (AUDIT.md
    §10): ``MTH`` of each maximal subtree outside the range, in the order
    RFC 9162's recursive ``MTH`` visits them (left to right). At most two a
    level: ``O(log size)`` hashes, whatever the range's length."""
    if not 0 <= start < end <= size:
        raise ValueError(f"no range [{start}, {end}) in a tree of size {size}")
    out: list[bytes] = []

    def visit(lo: int, hi: int) -> None:
        if hi <= start or end <= lo:
            out.append(subtree(lo, hi))
        elif not (start <= lo and hi <= end):  # a subtree inside is the leaves' own
            k = _split(hi - lo)
            visit(lo, lo + k)
            visit(lo + k, hi)

    visit(0, size)
    return out


def root_from_range(start: int, size: int, leaves: Sequence[bytes],
                    proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` (:func:`range_proof`) leads to with ``leaves``
    at ``start``, ``start + 1``, ...: ``MTH`` computed as RFC 9162 defines
    it, taking each subtree outside the range from the proof, in order."""
    end = start + len(leaves)
    if not 0 <= start < end <= size:
        raise ProofError(f"no range [{start}, {end}) in a tree of size {size}")
    _check_hashes([*leaves, *proof])
    given = iter(proof)

    def mth(lo: int, hi: int) -> bytes:
        if hi <= start or end <= lo:
            h = next(given, None)
            if h is None:
                raise ProofError("range proof is too short")
            return h
        if start <= lo and hi <= end:  # inside the range: from the leaves alone
            return _root_of(leaves[lo - start : hi - start])
        k = _split(hi - lo)
        return _node(mth(lo, lo + k), mth(lo + k, hi))

    root = mth(0, size)
    if next(given, None) is not None:
        raise ProofError("range proof is too long")
    return root


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    _check_hashes([leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` with ``root``."""
    computed = root_from_inclusion(index, size, leaf, proof)
    if not hmac.compare_digest(computed, root):
        raise RootMismatchError(root, computed)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree ``(size1, root1)`` is a prefix of ``(size2, root2)``
    (RFC 9162 §2.1.4.2)."""
    if size1 < 0 or size1 > size2:
        raise ProofError(f"size {size1} cannot be a prefix of size {size2}")
    if size1 == 0:
        # Every tree extends the empty one: such a "proof" would prove nothing.
        raise ProofError("no consistency proof from the empty tree")
    if size1 == size2:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if not hmac.compare_digest(root1, root2):
            raise RootMismatchError(root1, root2)
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    _check_hashes(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if not hmac.compare_digest(fr, root1):
        raise RootMismatchError(root1, fr, what="old root")
    if not hmac.compare_digest(sr, root2):
        raise RootMismatchError(root2, sr, what="new root")
