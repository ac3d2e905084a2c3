"""One pass over the log: every leaf hashed, the tree recomputed
(docs/AUDIT.md §11.1 step 3).

The pass notes the root at every size asked for (the checkpoints') and
hands the blocks a caller wants to look at (from ``keep_from`` on) to it.
For a large folder log the leaves of the second half are hashed by a helper
process at the same time (:mod:`vault.audit._parallel`); the result is the
same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from vault.audit._chain import ZERO_LEAF
from vault.audit._hashing import LEAF_PREFIX, _sha256
from vault.audit._storage import LogEnd, LogStorage
from vault.audit._tip import TrustedTip
from vault.audit._tree import CompactRange, TreeBuilder

__all__ = ["Consumer", "TreeResult", "hash_tree"]

#: ``consumer(first_seq, lines, leaves)`` for each block from ``keep_from`` on
Consumer = Callable[[int, list[bytes], list[bytes]], None]


@dataclass
class TreeResult:
    size: int
    root: bytes
    range: CompactRange
    last_leaf: bytes
    end: int  # offset just past the last complete line
    tail: bytes  # bytes after the last newline
    roots: dict[int, bytes] = field(default_factory=dict)  # at the sizes asked for

    def tip(self) -> TrustedTip:
        return TrustedTip.of(self.range, self.end, self.last_leaf)


def hash_tree(storage: LogStorage, end: LogEnd, wanted: Iterable[int],
              consumer: Consumer | None = None, keep_from: int = 0) -> TreeResult:
    """Hash every complete line up to ``end``; roots at the ``wanted`` sizes."""
    wanted = sorted(set(wanted))
    if consumer is None or keep_from > 0:
        from vault.audit._parallel import parallel_tree

        result = parallel_tree(storage, end, wanted, consumer, keep_from)
        if result is not None:
            return result
    builder = TreeBuilder(wanted)
    sha, prefix = _sha256, LEAF_PREFIX
    seq = offset = 0
    last = ZERO_LEAF
    source = storage.read(0, 0, end)
    for block in source:
        leaves = [sha(prefix + line).digest() for line in block]
        builder.add(leaves)
        if consumer is not None and seq + len(block) > keep_from:
            consumer(seq, block, leaves)
        offset += sum(map(len, block)) + len(block)
        seq += len(block)
        last = leaves[-1]
    size, root = builder.finish()
    return TreeResult(size, root, builder.range(), last, offset, source.tail, builder.roots)
