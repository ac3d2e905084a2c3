"""Reading a log after a trusted tip, for a replay (docs/AUDIT.md §12).

:class:`Scan` yields every *settled* line after the tip, in order (§5, §8:
a record once it is signed or covered, a fragment once a torn record sets
it aside, a line breaking the rules with its ``problem``), and keeps the
running tip: after the iteration, :attr:`Scan.tip` is a trusted tip of
every line yielded, which the caller can keep and start from next time.
Lines still waiting at the end (an unrecovered tail) are not yielded; the
next scan from :attr:`Scan.tip` sees them again, settled by then.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

from vault.audit._hashing import LEAF_PREFIX, _sha256
from vault.audit._storage import LineSource
from vault.audit._tip import TrustedTip
from vault.audit._walk import ScannedLine, Walker

__all__ = ["Scan"]


class Scan(Iterator[ScannedLine]):
    """Settled lines after ``start`` read from ``source`` (see module doc)."""

    def __init__(self, source: LineSource, start: TrustedTip) -> None:
        self._source = source
        self._blocks: Iterator[list[bytes]] | None = iter(source)
        self._walker = Walker(start.last_leaf)
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
        return item

    def close(self) -> None:
        """Stop early (gives back a database snapshot)."""
        self._blocks = None
        self._source.close()

    def __enter__(self) -> Scan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
