"""The Merkle tree: compact ranges, stored hashes and a streaming builder.

docs/AUDIT.md §6. The tree is the RFC 9162 §2.1.1 Merkle Tree Hash
over every line of the log. Three views of it live here:

* :class:`CompactRange` -- the roots of the perfect subtrees along the right
  edge of a tree. It is all a writer keeps in memory: appending a leaf costs
  amortised one node hash, and the root costs ``O(log n)`` hashes.
* :class:`StoredHashes` -- every perfect-subtree hash, persisted in the
  "stored hash" order (docs/AUDIT.md §6): the hashes a leaf completes are
  appended right after it. Any subtree hash is one read away, so proofs read
  ``O(log n)`` hashes and never re-hash the log (:class:`HashFile`: in a file).
* :class:`TreeBuilder` -- recomputes the tree from a stream of leaf hashes,
  level by level in blocks (list comprehensions over ``hashlib``), and reports
  the root at chosen sizes. The verifier uses it to check every checkpoint in
  one pass over the log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from vault.audit._hashing import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX, _sha256

__all__ = [
    "CompactRange",
    "HashFile",
    "HashReader",
    "StoredHashes",
    "TreeBuilder",
    "extend_range",
    "fold",
    "split_range",
    "stored_hash_count",
    "stored_hash_index",
    "stored_order",
    "tree_root",
]

T = TypeVar("T")


def stored_hash_count(n: int) -> int:
    """Number of stored hashes for a tree of ``n`` leaves (docs/AUDIT.md §6).

    Leaf ``i`` contributes itself plus one hash per trailing one bit of ``i``
    (the perfect subtrees it completes), which sums to ``2n - popcount(n)``.
    """
    return 2 * n - n.bit_count()


def stored_hash_index(level: int, index: int) -> int:
    """Position in the hash file of the perfect subtree ``(level, index)``.

    That subtree is completed by leaf ``((index + 1) << level) - 1``, which
    writes its own hash and then the ``level`` parents above it.
    """
    last_leaf = ((index + 1) << level) - 1
    return stored_hash_count(last_leaf) + level


def split_range(lo: int, hi: int) -> list[tuple[int, int]]:
    """Decompose ``[lo, hi)`` into aligned perfect subtrees, left to right.

    Returns ``(level, index)`` pairs: subtree ``(l, i)`` covers leaves
    ``[i << l, (i + 1) << l)``. For the ranges RFC 9162 proofs use (``lo`` a
    multiple of a power of two at least ``hi - lo``), the sizes decrease
    strictly and :func:`fold` of their hashes is ``MTH(D[lo:hi])``.
    """
    out: list[tuple[int, int]] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length()
        while lo + (1 << level) > hi:
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect-subtree hashes, left to right, into their root."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for h in reversed(hashes[:-1]):
        root = _sha256(NODE_PREFIX + h + root).digest()
    return root


class CompactRange:
    """The right edge of a tree of ``size`` leaves: one hash per set bit of
    ``size``, largest subtree first."""

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError("a compact range holds one hash per set bit of its size")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> list[bytes]:
        """Add one leaf hash; return the hashes to store (docs/AUDIT.md §6):
        the leaf hash, then each perfect subtree it completes, bottom up."""
        stored = [leaf]
        h = leaf
        n = self.size
        while n & 1:
            h = _sha256(NODE_PREFIX + self.hashes.pop() + h).digest()
            stored.append(h)
            n >>= 1
        self.hashes.append(h)
        self.size += 1
        return stored

    def append_subtree(self, level: int, h: bytes) -> None:
        """Add a whole perfect subtree of ``2**level`` leaves (aligned)."""
        if self.size & ((1 << level) - 1):
            raise ValueError("subtree is not aligned with the range's size")
        n = self.size >> level
        while n & 1:
            h = _sha256(NODE_PREFIX + self.hashes.pop() + h).digest()
            n >>= 1
        self.hashes.append(h)
        self.size += 1 << level

    def root(self) -> bytes:
        return fold(self.hashes)

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.hashes)


HashReader = Callable[[Sequence[int]], list[bytes]]


class StoredHashes:
    """Subtree hashes served from stored hashes (docs/AUDIT.md §6), read
    through ``read(indexes)`` in batches (one round trip for a database).
    ``count`` is the number of stored hashes available. What is read is
    derived data: callers check what they build from it (a proof against a
    trusted root) before relying on it."""

    def __init__(self, read: HashReader, count: int) -> None:
        self._read = read
        self.count = count
        self._cache: dict[int, bytes] = {}

    def leaf_count(self) -> int:
        """The largest tree size whose hashes are all available."""
        # stored_hash_count is increasing: search for the last n that fits.
        n = self.count // 2  # stored_hash_count(n) <= 2n, so this is a lower bound
        while stored_hash_count(n + 1) <= self.count:
            n += 1
        return n

    def fetch(self, indexes: Iterable[int]) -> None:
        want = sorted(set(indexes) - set(self._cache))
        if any(i >= self.count for i in want):
            raise EOFError("the stored hashes are shorter than the tree they serve")
        if want:
            hashes = self._read(want)
            if len(hashes) != len(want) or any(len(h) != HASH_SIZE for h in hashes):
                raise EOFError("the stored hashes are incomplete")
            self._cache.update(zip(want, hashes, strict=True))

    def read(self, level: int, index: int) -> bytes:
        n = stored_hash_index(level, index)
        self.fetch([n])
        return self._cache[n]

    def subtree(self, lo: int, hi: int) -> bytes:
        """``MTH(D[lo:hi])`` from stored hashes: ``O(log n)`` reads."""
        parts = split_range(lo, hi)
        self.fetch(stored_hash_index(lv, i) for lv, i in parts)
        return fold([self._cache[stored_hash_index(lv, i)] for lv, i in parts])

    def prefetched(self, make: Callable[[Callable[[int, int], bytes]], T]) -> T:
        """Run ``make(subtree)`` twice: once to learn which subtrees it reads,
        then for real with all of them fetched in one batch."""
        wanted: list[tuple[int, int]] = []

        def note(lo: int, hi: int) -> bytes:
            wanted.append((lo, hi))
            return bytes(HASH_SIZE)

        make(note)
        self.fetch(stored_hash_index(lv, i) for lo, hi in wanted for lv, i in split_range(lo, hi))
        return make(self.subtree)

    def compact_range(self, size: int) -> CompactRange:
        parts = split_range(0, size)
        self.fetch(stored_hash_index(lv, i) for lv, i in parts)
        return CompactRange(size, [self._cache[stored_hash_index(lv, i)] for lv, i in parts])

    def root(self, size: int) -> bytes:
        return self.subtree(0, size)

    def leaf(self, i: int) -> bytes:
        return self.read(0, i)

    def leaf_hashes(self, count: int) -> list[bytes]:
        """The first ``count`` leaf hashes."""
        indexes = [stored_hash_count(i) for i in range(count)]
        self.fetch(indexes)
        return [self._cache[i] for i in indexes]


class HashFile(StoredHashes):
    """Stored hashes in a file (the folder layout's ``hashes``), by fd."""

    def __init__(self, fd: int) -> None:
        super().__init__(self._pread, os.fstat(fd).st_size // HASH_SIZE)
        self.fd = fd

    def _pread(self, indexes: Sequence[int]) -> list[bytes]:
        return [os.pread(self.fd, HASH_SIZE, i * HASH_SIZE) for i in indexes]

    def leaf_hashes(self, count: int) -> list[bytes]:
        """The first ``count`` leaf hashes (reads the whole file once)."""
        need = stored_hash_count(count) * HASH_SIZE
        data = os.pread(self.fd, need, 0)
        if len(data) != need:
            raise EOFError("hash file is shorter than the tree it serves")
        offsets = (stored_hash_count(i) * HASH_SIZE for i in range(count))
        return [data[off : off + HASH_SIZE] for off in offsets]


def stored_order(leaves: Iterable[bytes], rng: CompactRange | None = None) -> bytes:
    """The stored hashes (§6) that ``leaves`` add to ``rng`` (default: an
    empty tree), concatenated in stored order; ``rng`` is extended."""
    rng = rng if rng is not None else CompactRange()
    return b"".join(h for leaf in leaves for h in rng.append(leaf))


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """All perfect-subtree hashes over ``leaves``, level by level."""
    levels = [leaves]
    sha, prefix = _sha256, NODE_PREFIX
    cur = leaves
    while len(cur) > 1:
        cur = [sha(prefix + a + b).digest() for a, b in zip(cur[0::2], cur[1::2], strict=False)]
        levels.append(cur)
    return levels


class TreeBuilder:
    """Recompute a tree from leaf hashes fed in order, noting the root at each
    size in ``want`` as it goes by."""

    def __init__(self, want: Iterable[int] = (), *, block_level: int = 14) -> None:
        # Blocks of 2**14 leaves: big enough to amortise, small in memory.
        self.block_level = block_level
        self._want = sorted(set(want), reverse=True)  # popped from the end
        self._range = CompactRange()
        self._pending: list[bytes] = []
        self.roots: dict[int, bytes] = {}
        self.last_leaf = bytes(HASH_SIZE)  # the last leaf added (zeros before any)
        while self._want and self._want[-1] == 0:
            self.roots[self._want.pop()] = EMPTY_ROOT

    def add(self, leaf_hashes: Sequence[bytes]) -> None:
        if leaf_hashes:
            self.last_leaf = leaf_hashes[-1]
        block = 1 << self.block_level
        self._pending.extend(leaf_hashes)
        if len(self._pending) < block:
            return
        full = len(self._pending) - len(self._pending) % block
        pending, self._pending = self._pending, self._pending[full:]
        for start in range(0, full, block):
            self._block(pending[start : start + block], complete=True)

    def finish(self) -> tuple[int, bytes]:
        """Return ``(size, root)`` of the whole tree."""
        if self._pending:
            self._block(self._pending, complete=False)
            self._pending = []
        return self._range.size, self._range.root()

    def range(self) -> CompactRange:
        """The right edge of the whole tree (after :meth:`finish`)."""
        return self._range.copy()

    def _block(self, leaves: list[bytes], *, complete: bool) -> None:
        levels = _levels(leaves)
        base = self._range.size
        want = self._want
        while want and want[-1] <= base + len(leaves):
            size = want.pop()
            parts = [levels[lv][i] for lv, i in split_range(0, size - base)]
            self.roots[size] = fold(self._range.hashes + parts)
        if complete:
            self._range.append_subtree(self.block_level, levels[self.block_level][0])
        else:
            for lv, i in split_range(0, len(leaves)):
                self._range.append_subtree(lv, levels[lv][i])


def extend_range(rng: CompactRange, leaves: Sequence[bytes], block_level: int = 14) -> None:
    """Add many leaf hashes to ``rng``: whole aligned blocks level by level
    (list comprehensions over hashlib), one by one only at the edges."""
    block = 1 << block_level
    i, n = 0, len(leaves)
    while i < n and (rng.size & (block - 1)):
        rng.append(leaves[i])
        i += 1
    while n - i >= block:
        rng.append_subtree(block_level, _levels(list(leaves[i : i + block]))[block_level][0])
        i += block
    for leaf in leaves[i:]:
        rng.append(leaf)


def tree_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH`` over a list of leaf hashes."""
    builder = TreeBuilder()
    builder.add(leaf_hashes)
    return builder.finish()[1]
