"""Reading a log after a trusted tip, for a replay (docs/AUDIT.md §12).

:class:`Scan` yields every *settled* line after the tip, in order (§5, §8:
a record once it is signed or covered, a fragment once a torn record sets
it aside, a line breaking the rules with its ``problem``), and keeps the
running tip: after the iteration, :attr:`Scan.tip` is a trusted tip of
every line yielded, which the caller can keep and start from next time.
Lines still waiting at the end (an unrecovered tail) are not yielded; the
next scan from :attr:`Scan.tip` sees them again, settled by then.

Given the leaves incident records carry for lines they seal off (the
leaves those lines had when written, docs/AUDIT.md §11.3), a signed
record whose chain covers such a line also gets the chain over those
leaves (:attr:`ScannedLine.original_chain`): the record after a damaged
line was signed over the line as written, and a replay must still judge
it by that signature, as verification does.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Collection, Iterator, Mapping

from vault.audit._chain import ZERO_LEAF, chain_digest
from vault.audit._hashing import LEAF_PREFIX, _sha256
from vault.audit._storage import LineSource
from vault.audit._tip import TrustedTip
from vault.audit._tree import fold
from vault.audit._walk import MAX_FRAGMENTS, ScannedLine, Walker

__all__ = ["Scan"]


class Scan(Iterator[ScannedLine]):
    """Settled lines after ``start`` read from ``source`` (see module doc)."""

    def __init__(self, source: LineSource, start: TrustedTip,
                 recorded: Mapping[int, bytes] | None = None,
                 tree: Mapping[int, bytes] | None = None,
                 keep: Collection[int] = ()) -> None:
        self._source = source
        self._blocks: Iterator[list[bytes]] | None = iter(source)
        self._walker = Walker(start.last_leaf, start.size)
        # Each item, with the tip after it when it ends what one line settled.
        self._queue: collections.deque[tuple[ScannedLine, TrustedTip | None]] = (
            collections.deque())
        self._next_seq = start.size
        # Every line fed so far: what one line settles always ends with that
        # line, so the tip of the lines yielded is this one at such a line --
        # also after a long run, whose lines are not yielded one by one (§8).
        self._range = start.range()
        self._offset = start.end_offset
        self._tip = start
        # With original leaves: the leaves of the lines just read (a chain to
        # recompute), and the tree with the original leaves at their lines.
        self._recorded = dict(recorded or {})
        # The leaves :attr:`original_root` puts at their lines (default: the
        # recorded ones): a trusted tip's own, which may differ (§11.3).
        self._tree = dict(self._recorded if tree is None else tree)
        # The lines whose leaves are kept as read (:attr:`kept`).
        self._keep = frozenset(keep)
        #: at each line of ``keep`` read: its own leaf as this scan read it,
        #: and the one :attr:`original_root` put there -- what a tree held
        #: to this scan holds at the line, with nothing read again (§11.3)
        self.kept: dict[int, tuple[bytes, bytes]] = {}
        self._full = bool(self._tree or self._recorded or self._keep)
        self._recent: collections.deque[tuple[int, bytes]] = collections.deque(
            [(start.size - 1, start.last_leaf)] if start.size else (), maxlen=MAX_FRAGMENTS + 2)
        self._original = start.range()
        self._original_edge: tuple[int, tuple[bytes, ...]] = (start.size, start.frontier)

    @property
    def original_root(self) -> bytes:
        """The root of the lines yielded so far (as :attr:`tip`), with the
        original leaves given at their lines (the lines' own without any),
        or the ``tree`` leaves, when given."""
        return fold(list(self._original_edge[1])) if self._tree else self._tip.root

    @property
    def tip(self) -> TrustedTip:
        """The trusted tip of the lines yielded so far (up to the last one
        that ended what a line settled: every line, after the iteration)."""
        return self._tip

    @property
    def unrecovered(self) -> int:
        """Lines at the end still waiting to be settled (after the iteration)."""
        return self._walker.count

    @property
    def torn_tail(self) -> bytes:
        """Bytes after the last newline (after the iteration; a folder only)."""
        return self._source.tail

    def __next__(self) -> ScannedLine:
        while not self._queue:
            if self._blocks is None:
                raise StopIteration
            block = next(self._blocks, None)
            if block is None:
                self._blocks = None
                continue
            sha, prefix, feed = _sha256, LEAF_PREFIX, self._walker.feed
            queue, rng, offset = self._queue, self._range, self._offset
            seq = self._next_seq
            if self._full:
                seq, offset = self._feed_recorded(block, seq, offset)
            else:
                for line in block:
                    leaf = sha(prefix + line).digest()
                    rng.append(leaf)
                    offset += len(line) + 1
                    settled = feed(seq, line, leaf)
                    if settled:
                        queue.extend((item, None) for item in settled[:-1])
                        queue.append((settled[-1], TrustedTip.of(rng, offset, leaf)))
                    seq += 1
            self._next_seq, self._offset = seq, offset
        item, tip = self._queue.popleft()
        if tip is not None:
            self._tip = tip
            if self._full:
                self._original_edge = self._edges.popleft()
        return item

    def _feed_recorded(self, block: list[bytes], seq: int, offset: int) -> tuple[int, int]:
        """The loop above, also keeping what original chains are made of."""
        if not hasattr(self, "_edges"):
            self._edges: collections.deque[tuple[int, tuple[bytes, ...]]] = (
                collections.deque())
        tree, recent, original = self._tree, self._recent, self._original
        keep, kept = self._keep, self.kept
        for line in block:
            leaf = _sha256(LEAF_PREFIX + line).digest()
            self._range.append(leaf)
            original.append(tree.get(seq, leaf))
            if seq in keep:
                kept[seq] = (leaf, tree.get(seq, leaf))
            recent.append((seq, leaf))
            offset += len(line) + 1
            settled = [self._with_original(item) for item in self._walker.feed(seq, line, leaf)]
            if settled:
                self._queue.extend((item, None) for item in settled[:-1])
                self._queue.append((settled[-1], TrustedTip.of(self._range, offset, leaf)))
                self._edges.append((original.size, tuple(original.hashes)))
            seq += 1
        return seq, offset

    def _with_original(self, item: ScannedLine) -> ScannedLine:
        """A signed record whose chain covers a line with an original leaf
        other than its own: with the chain over the original leaves too."""
        if item.chain is None or item.record is None:
            return item
        start, end = item.covers.start - 1, item.seq
        if not any(start <= i < end for i in self._recorded):
            return item
        have = {s: leaf for s, leaf in self._recent if start <= s < end}
        if len(have) != end - max(start, 0):
            return item  # a run longer than what is kept
        changed = False
        for i, leaf in self._recorded.items():
            if start <= i < end and have[i] != leaf:
                have[i], changed = leaf, True
        if not changed:
            return item
        before = have[start] if start >= 0 else ZERO_LEAF
        chain = chain_digest(before, [have[i] for i in range(start + 1, end)])
        return dataclasses.replace(item, original_chain=chain)

    def close(self) -> None:
        """Stop early (gives back a database snapshot)."""
        self._blocks = None
        self._source.close()

    def __enter__(self) -> Scan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
