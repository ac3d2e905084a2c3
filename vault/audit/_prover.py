"""Proofs served from the derived hashes, checked before they are handed
out (docs/AUDIT.md §6, §10).

A proof reads ``O(log n)`` stored hashes, its line and the lines of its
record's run, which it carries with their range proof for the run's
signature (§10). The stored hashes are derived data, so every inclusion
and range proof is verified against its signed checkpoint first; when that fails the derived data is
rebuilt from the log (with a note) and the proof made again -- or, where the
log logic may not rewrite it (a database computes its own), the proof is
made from the lines themselves.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable
from itertools import repeat
from operator import and_
from typing import TYPE_CHECKING, TypeVar

from vault.audit._chain import ZERO_LEAF
from vault.audit._checkpoint import Checkpoint
from vault.audit._fields import RUN_LIMIT
from vault.audit._hashing import HASH_SIZE, leaf_hash
from vault.audit._proof import (
    SubtreeReader,
    consistency_proof,
    inclusion_proof,
    range_proof,
    root_from_range,
    verify_inclusion,
)
from vault.audit._record import TORN_ACTION
from vault.audit._storage import LINES_BYTES, LogEnd
from vault.audit._tlogproof import TlogProof, attested_extra
from vault.audit._tree import StoredHashes, stored_order
from vault.audit._walk import MAX_FRAGMENTS, MAX_RUN_BYTES, Walker, parse, settles
from vault.errors import AuditIntegrityError, MerkleError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit._logread import LogReading

__all__ = ["consistency", "not_its_checkpoint", "prove", "short_of_checkpoint"]

T = TypeVar("T")
_FAILED = (MerkleError, EOFError, OSError, ValueError)
# The most lines read on either side of a proven line for what its run's
# signature covers: a run a reader takes (MAX_FRAGMENTS unsigned records,
# §5), or the pending lines a torn record names.
_REACH = 2 * MAX_FRAGMENTS + 1
#: a proof's run: its first line s, its signed record k', lines s-1..k'
Run = tuple[int, int, dict[int, bytes]]


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
    note is ``note``), carrying the line and its run as extra data, verified
    first."""
    if seq >= cp.size:
        raise UsageError(f"there is no record {seq}: the log holds {cp.size} lines")
    if any(i < cp.size for i in log._sealed_off):
        return _under_incident(log, seq, note, cp)
    for attempt in range(2):
        try:
            with log._reading():
                line = log.storage.line(seq)
                run = _covering(log, seq, cp.size) if line is not None else None
                proof, ranged = _from_derived(log, cp.size, _derived_proofs(seq, run, cp.size))
            if line is None:
                raise EOFError("line not found through the derived index")
            verify_inclusion(seq, cp.size, leaf_hash(line), proof, cp.root)
            extra = _extra(line, run, ranged, cp)
            return TlogProof(seq, tuple(proof), note, extra=extra).to_text()
        except _FAILED:
            if attempt or not _rebuild(log):
                break
    with log._reading():
        hashes, lines = _in_memory(log, cp.size)
        run = _covering(log, seq, cp.size) if seq < len(lines) else None
    if len(lines) < cp.size:
        raise short_of_checkpoint(cp.size, len(lines))
    proof, ranged = _proofs(seq, run, cp.size, hashes.subtree)
    try:
        verify_inclusion(seq, cp.size, leaf_hash(lines[seq]), proof, cp.root)
        extra = _extra(lines[seq], run, ranged, cp)
    except MerkleError as e:
        raise not_its_checkpoint(cp.size) from e
    return TlogProof(seq, tuple(proof), note, extra=extra).to_text()


def _derived_proofs(seq: int, run: Run | None, size: int
                    ) -> Callable[[StoredHashes], tuple[list[bytes], list[bytes]]]:
    """:func:`_proofs` from the stored hashes, read in one batch."""
    return lambda h: h.prefetched(lambda sub: _proofs(seq, run, size, sub))


def _proofs(seq: int, run: Run | None, size: int,
            subtree: SubtreeReader) -> tuple[list[bytes], list[bytes]]:
    """The inclusion proof of line ``seq``, and the range proof of its run's
    lines s-1..k' (none without a run)."""
    ranged = [] if run is None else range_proof(max(run[0] - 1, 0), run[1] + 1, size, subtree)
    return inclusion_proof(seq, size, subtree), ranged


def _extra(line: bytes, run: Run | None, ranged: list[bytes], cp: Checkpoint) -> bytes:
    """The proof's extra data (§10): the line and its run, whose lines the
    range proof shows are the checkpoint's (or MerkleError) -- or the line
    alone when it is no record its actor's signature covers within the
    checkpoint (junk, a record set aside, a run still open)."""
    if run is None:
        return line
    start, end, lines = run
    carried = [lines[i] for i in range(max(start - 1, 0), end + 1)]
    root = root_from_range(max(start - 1, 0), cp.size, [leaf_hash(x) for x in carried], ranged)
    if not hmac.compare_digest(root, cp.root):
        raise MerkleError(f"the lines {max(start - 1, 0)}-{end} are not those of the "
                          f"checkpoint of size {cp.size}")
    return attested_extra(line, start, end, carried, ranged)


def _under_incident(log: LogReading, seq: int, note: bytes, cp: Checkpoint) -> str:
    """The proof against a checkpoint over lines an incident sealed off
    (§11.3): made from the leaves those lines had when written -- those
    their incident records carry, else those the derived data keeps (which
    verification does not rebuild over them) -- and the lines' own
    elsewhere; or, for a checkpoint signed over the lines as they are now,
    from the lines alone. The derived data is never rebuilt here, or no
    proof could be made again. Its other hashes may be older than the
    damage: all are recomputed from the leaves. A run holding a sealed-off
    line (or next to one) is not carried: its line as written is gone, so
    nobody could show the run its signature covers is the tree's."""
    from vault.audit._tree import tree_root
    from vault.audit._verify_end import originals

    with log._reading():
        leaves = originals(log, cp.size, log._sealed_off, log._recorded)
        line = log.storage.line(seq)
        if leaves is None or tree_root(leaves) != cp.root:
            leaves = [leaf_hash(x) for block in log.storage.read(0, 0, LogEnd(cp.size, None))
                      for x in block][:cp.size]
        run = _covering(log, seq, cp.size) if line is not None else None
    if len(leaves) != cp.size or tree_root(leaves) != cp.root or line is None \
            or leaf_hash(line) != leaves[seq]:
        raise not_its_checkpoint(cp.size)
    if run is not None and any(i in log._sealed_off for i in range(run[0] - 1, run[1] + 1)):
        run = None
    data = stored_order(leaves)

    def read(indexes: object) -> list[bytes]:
        return [data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in indexes]  # type: ignore[attr-defined]

    proof, ranged = _proofs(seq, run, cp.size, StoredHashes(read, len(data) // HASH_SIZE).subtree)
    try:
        verify_inclusion(seq, cp.size, leaf_hash(line), proof, cp.root)
        extra = _extra(line, run, ranged, cp)
    except MerkleError as e:
        raise not_its_checkpoint(cp.size) from e
    return TlogProof(seq, tuple(proof), note, extra=extra).to_text()


def _covering(log: LogReading, seq: int, size: int) -> Run | None:
    """Line ``seq``'s run (§4): its first line s, the signed record k'
    whose signature covers the line (k' = seq for a signed record), and the
    lines s-1..k' -- or None when no signature of its actor's covers it
    within the checkpoint, or covers more than a reader takes (§5). Of the
    lines read on the way -- a torn record's may be 4,096 lines set aside,
    of 512 KiB each -- only those s-1..k' are kept."""
    read = _Reader(log, seq, size)
    line = read(seq)
    record = parse(line, seq) if line is not None else None
    if record is None:
        return None
    if record.action == TORN_ACTION:
        found = _walked(read, seq)
    else:
        if record.signature is None:  # a line of a batch: its run in a read or two
            read.widen(RUN_LIMIT + 1)
        found = _signed_run(read, record.actor_key, seq, record.signature is not None, size)
    if found is None:
        return None
    start, end = found
    if end - start > MAX_FRAGMENTS:
        return None
    lines = read.span(max(start - 1, 0), end + 1)
    return None if lines is None else (start, end, lines)


class _Reader:
    """Lines near line ``seq``, a storage block (:meth:`LogStorage.lines`,
    at most 4 MiB and a line) at a time.
    The blocks read are kept while they hold no more than a block's 4 MiB
    in all (a batch's run of a thousand records is then read once); past
    that only the last block is held -- the lines set aside before a torn
    record may be 4,096 of 512 KiB."""

    def __init__(self, log: LogReading, seq: int, size: int) -> None:
        self._storage, self._seq, self._size = log.storage, seq, size
        self._blocks: list[tuple[int, list[bytes]]] = []  # (first index, lines)
        self._bytes = 0
        # Lines fetched at once in each direction, doubled up to a whole
        # run: a record signed on its own needs one or two lines, a line of
        # a batch the batch's run.
        self._spans = {True: 8, False: 8}
        self._last = seq

    def __call__(self, i: int) -> bytes | None:
        found = self._held(i)
        if found is None:
            found = self._fetch(i)
        if found is None:
            return None
        lo, lines = found
        self._last = i
        return lines[i - lo]

    def after(self, i: int, stop: int) -> list[bytes] | None:
        """Lines ``i``, ``i + 1``, ... before ``stop`` as far as one block
        holds them (at least line ``i``), or None if line ``i`` is missing."""
        if self(i) is None:
            return None
        lo, lines = self._held(i) or (i, [])
        return lines[i - lo : stop - lo] or None

    def before(self, i: int) -> list[bytes] | None:
        """Lines ..., ``i - 1``, ``i`` ending at ``i``, as far back as one
        block holds them (at least line ``i``), or None if it is missing."""
        if self(i) is None:
            return None
        lo, lines = self._held(i) or (i, [])
        return lines[: i - lo + 1] or None

    def span(self, lo: int, hi: int) -> dict[int, bytes] | None:
        """Lines ``lo..hi-1`` (None if one is missing)."""
        lines: dict[int, bytes] = {}
        i = lo
        while i < hi:
            block = self.after(i, hi)
            if block is None:
                return None
            lines.update(enumerate(block, i))
            i += len(block)
        return lines

    def size(self, lo: int, hi: int) -> int:
        """The bytes of lines ``lo..hi-1`` with their line ends (read again
        where they are no longer held; a missing line counts nothing)."""
        total, i = 0, lo
        while i < hi:
            block = self.after(i, hi) or [b""]
            total += sum(map(len, block)) + len(block)
            i += len(block)
        return total

    def widen(self, span: int) -> None:
        """Fetch at least ``span`` lines at once from now on."""
        self._spans = {k: max(v, span) for k, v in self._spans.items()}

    def _held(self, i: int) -> tuple[int, list[bytes]] | None:
        for lo, lines in reversed(self._blocks):
            if lo <= i < lo + len(lines):
                return lo, lines
        return None

    def _fetch(self, i: int) -> tuple[int, list[bytes]] | None:
        got: list[bytes] | None = None
        lo = i
        if i != self._seq:
            # Forwards from a line read before it, else backwards.
            forward = i > self._last
            span = self._spans[forward]
            self._spans[forward] = min(2 * span, MAX_FRAGMENTS + 1)
            lo = i if forward else max(0, i - span + 1)
            got = self._storage.lines(lo, min(self._size, i + span) if forward else i + 1)
            if got and not forward and lo + len(got) <= i:  # what fits stops short of i
                lo = i - len(got) + 1
                self._spans[False] = len(got)
                got = self._storage.lines(lo, i + 1)
        if not got or not lo <= i < lo + len(got):
            text = self._storage.line(i)
            if text is None:
                return None
            lo, got = i, [text]
        size = sum(map(len, got))
        if self._bytes + size > LINES_BYTES:
            self._blocks, self._bytes = [], 0
        self._blocks.append((lo, got))
        self._bytes += size
        return lo, got


def _signed_run(read: _Reader, actor_key: str, seq: int, signed: bool,
                size: int) -> tuple[int, int] | None:
    """The run s..k' of an ordinary record at ``seq`` of ``actor_key``: the
    unsigned records of its actor before it and after it up to the signed
    one, tested a block of lines at a time."""
    unsigned_of = _unsigned_test(actor_key)
    end = seq if signed else -1
    i, stop = seq + 1, min(size, seq + MAX_FRAGMENTS + 1)
    while end < 0 and i < stop:
        block = read.after(i, stop)
        if block is None:
            return None
        flags = unsigned_of(block, i)
        if False in flags:
            k = flags.index(False)
            found = parse(block[k], i + k)
            if found is None or not settles(found, i + k) or found.actor_key != actor_key \
                    or found.action == TORN_ACTION:
                return None  # never covered: set aside, or damage
            end = i + k
        i += len(block)
    if end < 0:
        return None
    start = min(seq, end)
    while start > 0:
        block = read.before(start - 1)
        if block is None:
            return None
        flags = unsigned_of(block, start - len(block))
        kept = flags[::-1].index(False) if False in flags else len(flags)
        start -= kept
        if end - start > MAX_FRAGMENTS:
            return None  # longer than a reader takes (§5): damage
        if kept < len(flags):
            break
    if read.size(start, end) > MAX_RUN_BYTES:
        return None  # larger than a reader takes (§5): damage
    return start, end


def _unsigned_test(actor_key: str) -> Callable[[list[bytes], int], list[bool]]:
    """For lines from index ``first`` on: is each written as an unsigned
    record of ``actor_key`` at its seq? A byte test, not a parse: a run of
    a batch is read without parsing each of its (up to RUN_LIMIT) records,
    and tested in C, a block at a time. Canonical JSON sorts the members,
    so ``actor`` follows ``action`` and ``state`` follows ``seq`` -- ``sig``
    between them on a signed record; a string escapes its quotes, so these
    bytes cannot stand inside one. A line this takes wrongly costs only its
    proof, whose signature then does not verify for the third party. (The
    verifier's _unsigned_of, vault/audit/_tlogproof.py, parses each line.)"""
    actor = b'","actor":{"key":"' + actor_key.encode() + b'","name":'
    seq_of = b',"seq":%d,"state":'.__mod__

    def unsigned_of(lines: list[bytes], first: int) -> list[bool]:
        n = len(lines)
        # ``seq`` stands near a record's end: looked for from there.
        return list(map(and_, map(and_,
            map(bytes.startswith, lines, repeat(b'{"action":"', n)),
            map(bytes.__contains__, lines, repeat(actor, n))),
            map((-1).__ne__, map(bytes.rfind, lines, map(seq_of, range(first, first + n))))))
    return unsigned_of


def _walked(read: _Reader, seq: int) -> tuple[int, int] | None:
    """The run s..k a torn record's chain covers -- every pending line, junk
    too, for a long run (§8) -- by the reading rules, run from the nearest
    settle point before it."""
    start = seq
    while start > 0 and seq - start < _REACH:  # back to a signed record in its place
        before = read(start - 1)
        if before is None:
            return None
        if settles(parse(before, start - 1), start - 1):
            break
        start -= 1
    if start > 0 and seq - start >= _REACH:
        return None
    last = ZERO_LEAF
    if start > 0:
        text = read(start - 1)
        if text is None:
            return None
        last = leaf_hash(text)
    walker = Walker(last, start)
    for i in range(start, seq + 1):
        text = read(i)
        if text is None:
            return None
        for item in walker.feed(i, text, leaf_hash(text)):
            if item.seq == seq and item.problem is None and item.chain is not None:
                return item.covers.start, seq
    return None


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
