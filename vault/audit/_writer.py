"""One writer's turn under the exclusive lock (docs/AUDIT.md §8, §9).

:class:`Turn` catches up from the writer's trusted tip (checking first that
the log still starts with the lines it describes), sets aside what an
interrupted write left (a torn tail, an unrecovered run), appends, and keeps
the derived data in step -- rebuilding it from the log, with a note, when it
disagrees (§6). The tree's right edge always comes from the tip and the
lines, never from stored hashes.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from collections.abc import Callable, Collection, Mapping
from types import EllipsisType
from typing import NamedTuple

from vault.audit._chain import ZERO_LEAF
from vault.audit._fields import Checked, RecordBuilder
from vault.audit._hashing import LEAF_PREFIX, _sha256, leaf_hash
from vault.audit._incidents import all_sealed_off
from vault.audit._members import caller_members
from vault.audit._proof import consistency_proof, verify_consistency
from vault.audit._record import TORN_ACTION, AuditRecord, Fragment
from vault.audit._storage import DerivedStore, LogEnd, LogStorage
from vault.audit._tip import EMPTY_TIP, TrustedTip
from vault.audit._tree import CompactRange, extend_range, stored_order
from vault.audit._walk import MAX_FRAGMENTS, MOVED_HINT, Walker, parse, settles
from vault.errors import AuditIntegrityError, MerkleError

__all__ = ["Turn", "check_tip", "moved_tip"]

TORN_REASON = "an interrupted write left these lines; they are set aside, not records"
_HINT = "run 'vault audit verify' and treat this as an incident"
_PUT_BACK = ("the officer puts the lines back as written (docs/DEPLOYMENT.md §14); 'vault "
             "audit verify' names them")
_BACK = 256  # lines read at a time looking back for where a run starts (§8)


class _Line(NamedTuple):
    seq: int
    line: bytes  # b"" for a large line, known by ``fragment`` and ``settle``
    leaf: bytes
    end: int  # offset just past it
    length: int
    fragment: Fragment | None = None
    settle: bool = False  # a large line: is it a settle point (§5)?
    signer: str | None = None  # a large unsigned record: its actor key
    number: int | None = None  # a large line holding a record: its seq


# A line at least this long is remembered by what the writer needs of it --
# is it a settle point, what would a torn record name, whose unsigned record
# is it -- not by its bytes: the last MAX_FRAGMENTS lines a writer looks back
# over then hold little memory whatever an insider appended (§5, §8).
_COMPACT = 4 * 1024


def _line(seq: int, line: bytes, leaf: bytes, end: int) -> _Line:
    if len(line) < _COMPACT:
        return _Line(seq, line, leaf, end, len(line))
    record = parse(line, seq)
    if record is None:
        return _Line(seq, b"", leaf, end, len(line), Fragment.of(seq, line))
    # A record out of place is no record there (§8): its actor's chain skips it.
    unsigned = record.signature is None and record.seq == seq
    return _Line(seq, b"", leaf, end, len(line), Fragment.of(seq, line), settles(record, seq),
                 record.actor_key if unsigned else None, record.seq)


def _settles(item: _Line) -> bool:
    return item.settle if item.fragment is not None else settles(parse(item.line, item.seq),
                                                                   item.seq)


def check_tip(storage: LogStorage, tip: TrustedTip, end: LogEnd,
              read: list[bytes] | EllipsisType | None = ...) -> bytes | None:
    """Does the log still start with the lines ``tip`` describes? (§9)
    Returns the tip's last line (None for the empty tip). ``read``: what
    ``lines_before(tip.size, tip.end_offset, 1)`` gave with ``end``, if the
    storage read them together."""
    if tip.size == 0:
        return None
    shorter = (end.lines is not None and end.lines < tip.size) or (
        end.offset is not None and end.offset < tip.end_offset)
    last = None if shorter else (
        storage.lines_before(tip.size, tip.end_offset, 1) if read is ... else read)
    if not last:
        raise AuditIntegrityError(
            f"the audit log is shorter than the {tip.size} lines this process trusts",
            kind="truncated", seq=tip.size, hint=_HINT)
    if leaf_hash(last[-1]) != tip.last_leaf:
        raise AuditIntegrityError(
            f"line {tip.size - 1} of the audit log is not the one this process trusts",
            kind="modified", seq=tip.size - 1, hint=_HINT)
    return last[-1]


def moved_tip(storage: LogStorage, tip: TrustedTip,
              leaves: Mapping[int, bytes]) -> TrustedTip | None:
    """Where the lines of ``tip`` lie now, when :func:`check_tip` no longer
    finds them at its offset: a line an incident sealed off below it was
    rewritten at another length (§11.3: anyone may, it never counts). Only
    if the first ``tip.size`` lines, with ``leaves`` -- the original leaves
    of sealed-off lines, and of those only -- at their lines, reproduce the
    tip's root: then they differ from the lines the tip describes at
    sealed-off lines only. The tip keeps its tree and takes the offset the
    lines end at now, and its last line's leaf as it is now. None otherwise
    (a log cut back, a line not sealed off changed, an original leaf not
    known): the alarm stays."""
    if tip.size == 0 or not any(i < tip.size for i in leaves):
        return None  # no line below it may differ: it is no longer there
    rng, offset, last = CompactRange(), 0, ZERO_LEAF
    source = storage.read(0, 0, LogEnd(tip.size, None))
    try:
        for block in source:
            for line in block[: tip.size - rng.size]:
                last = leaf_hash(line)
                rng.append(leaves.get(rng.size, last))
                offset += len(line) + 1
            if rng.size == tip.size:
                break
    finally:
        source.close()
    if rng.size != tip.size or not hmac.compare_digest(rng.root(), tip.root):
        return None
    return TrustedTip(tip.size, offset, tip.frontier, last)


class Turn:
    """A writer's turn: call inside ``storage.exclusive()``."""

    def __init__(self, storage: LogStorage, tip: TrustedTip | None, every: int, *,
                 rebuild: bool = False, settled: bool = False,
                 originals: Callable[[], Mapping[int, bytes]] | None = None,
                 sealed: Callable[[], Collection[int]] | None = None) -> None:
        self.storage = storage
        # The lines incidents sealed off, as known without catching up: a
        # walk passes over what they hold (anyone may rewrite them, §11.3).
        self._sealed = sealed
        # The leaves the tip's tree holds at sealed-off lines: those incidents
        # carry, or those the tip was made with (§11.3; see moved_tip, rebuild).
        self._originals = originals
        self._settled = settled  # does the tip end at a settle point (§5)?
        self.every = every
        self.notes: list[str] = []
        self.due: list[tuple[int, bytes]] = []  # checkpoints due: (size, root)
        self._derived: DerivedStore | None = None
        self._force = rebuild
        self._catch_up(tip)

    def _catch_up(self, tip: TrustedTip | None) -> None:
        storage = self.storage
        start = tip if tip is not None else EMPTY_TIP
        end, read = storage.end_and_last(start.size, start.end_offset)
        try:
            self._start_line = check_tip(storage, start, end, read)
        except AuditIntegrityError:
            moved = moved_tip(storage, start, self._originals()) if self._originals else None
            if moved is None:
                raise
            # A sealed-off line below the tip was rewritten at another length
            # since the tip was made: its lines still hold it (§11.3).
            start = moved
            end, read = storage.end_and_last(start.size, start.end_offset)
            self._start_line = check_tip(storage, start, end, read)
            self.notes.append(f"the lines before line {start.size} moved: a line an incident "
                              "sealed off was rewritten at another length; the trusted tip "
                              "was moved to where they end now")
        self._start = start
        self._recent: deque[_Line] = deque(maxlen=MAX_FRAGMENTS + 1)
        if end.lines == start.size or end.offset == start.end_offset:
            self.tail, self.tip = b"", start  # nobody wrote since: nothing to read
            self._open_derived()
            return
        rng, offset, last = start.range(), start.end_offset, start.last_leaf
        recent = self._recent
        seq = start.size
        source = storage.read(start.size, start.end_offset, end)
        sha, prefix = _sha256, LEAF_PREFIX
        suspect = False
        for block in source:
            leaves = [sha(prefix + line).digest() for line in block]
            suspect = suspect or not _numbered(block, seq)
            extend_range(rng, leaves)
            n = len(block)
            keep = min(n, MAX_FRAGMENTS + 1)  # only the last lines can be pending
            offset += sum(map(len, block[: n - keep])) + n - keep
            for k in range(n - keep, n):
                offset += len(block[k]) + 1
                recent.append(_line(seq + k, block[k], leaves[k], offset))
            seq += n
            last = leaves[-1]
        self.tail = source.tail
        self.tip = TrustedTip.of(rng, offset, last)
        if suspect:
            # A line read holds another number, or is no record: walk them
            # by the reading rules; records out of place stop the turn before
            # anything is written (§8). Junk alone never does.
            self.walk_in_place(start.size, start.end_offset, start.last_leaf)
        self._open_derived()

    # -- derived data (§6) -------------------------------------------------------

    def _open_derived(self) -> None:
        derived = self.storage.derived()
        if derived is None:
            return
        if not derived.writable:
            derived.close()
            return
        self._derived = derived
        tip = self.tip
        if self._force or not derived.in_step(tip.size, tip.end_offset, tip.last_leaf):
            self.notes.append(rebuild(self.storage, derived, tip, self._originals))

    def _extend_derived(self, size: int, ends: list[int], stored: bytes) -> None:
        if self._derived is not None:
            self._derived.extend(size, ends, stored)

    def close(self) -> None:
        if self._derived is not None:
            self._derived.close()
            self._derived = None

    # -- recovery (§8) -------------------------------------------------------------

    def _add(self, lines: list[bytes], leaves: list[bytes], *, remember: bool = False) -> None:
        """Lines just appended: extend the tip, the derived data, the due
        list and the recent lines."""
        tip = self.tip
        rng = tip.range()
        stored: list[bytes] = []
        ends: list[int] = []
        pos = tip.end_offset
        for line, leaf in zip(lines, leaves, strict=True):
            stored += rng.append(leaf)
            pos += len(line) + 1
            ends.append(pos)
            if self.every and rng.size % self.every == 0:
                self.due.append((rng.size, rng.root()))
        self._extend_derived(tip.size, ends, b"".join(stored))
        if remember:  # recovery looks back over these (§8)
            self._recent.extend(_line(tip.size + i, line, leaf, end) for i, (line, leaf, end)
                                in enumerate(zip(lines, leaves, ends, strict=True)))
        self.tip = TrustedTip.of(rng, pos, leaves[-1] if leaves else tip.last_leaf)

    def recover(self, builder: RecordBuilder, first: Checked) -> None:
        """Set aside a torn tail and any unrecovered run with a torn record
        signed by ``first``'s signer, before the turn's own records (§8).
        A run of any length: a long one is named by its last lines and
        covered whole by the torn record's chain."""
        if self.tail:
            self.storage.terminate_tail(self.tip.end_offset + len(self.tail))
            self._add([self.tail], [leaf_hash(self.tail)], remember=True)
            self.tail = b""
        walker = self.trailing_run()
        if not walker.count:
            return
        chain, _ = walker.torn_chain(first.fingerprint)
        torn = Checked(caller_members({
            "actor": {"key": first.fingerprint, "name": first.members["actor"]},
            "action": TORN_ACTION, "outcome": "error", "reason": TORN_REASON,
            "request": secrets.token_hex(16)}, strict=False), first.signer, first.fingerprint)
        fragments = tuple(p.fragment for p in walker.pending)
        record = builder.signed(torn, self.tip.size, chain, fragments)
        self.append([record], [leaf_hash(record.line)])

    def trailing_run(self) -> Walker:
        """The lines after the last settle point (§5, §8), held by a walker.
        Records out of place among them -- lines inserted, split, joined or
        removed before them -- are never set aside nor appended after
        (AuditIntegrityError, nothing written): a torn record would drop
        what they moved (a revocation's records), and anything appended now
        would itself be out of place once the lines are put back as written
        (docs/DEPLOYMENT.md §14)."""
        walker = self._held_run()
        if walker.moved is not None:
            raise _out_of_place(walker.moved)
        return walker

    def checkpoint_start(self, size: int, root: bytes) -> tuple[int, int, bytes] | None:
        """Where a walk (:meth:`walk_in_place`) may start after a checkpoint
        of ``size`` lines and ``root`` the log signed: ``(size, offset, leaf
        before)`` when the first ``size`` lines are still those it covers --
        a consistency proof from the derived hashes to the turn's tip, whose
        root comes from the lines; hashes planted there only fail it -- else
        None. The offset, from the derived index, is held to a line's end
        here and to the count of lines after it by the walk."""
        tip, derived = self.tip, self._derived
        if derived is None or not 0 < size <= tip.size:
            return None
        try:
            if size < tip.size:
                proof = derived.hashes().prefetched(
                    lambda sub: consistency_proof(size, tip.size, sub))
                verify_consistency(size, tip.size, proof, root, tip.root)
            elif not hmac.compare_digest(root, tip.root):
                return None
            offset = derived.end_of(size)
            last = None if offset is None else self.storage.lines_before(size, offset, 1)
        except (MerkleError, EOFError, OSError, ValueError):
            return None
        if offset is None or not last or last == [b"\n"]:
            return None
        return size, offset, leaf_hash(last[-1])

    def walk_in_place(self, size: int, offset: int, before: bytes) -> None:
        """Walk every line from line ``size`` (at byte ``offset``; ``before``
        the leaf hash of the line before it) to the turn's tip by the reading
        rules, and raise on the first record out of place (§8). A checkpoint
        is signed only after it: the lines after the last settle point are
        not enough, for a line that merely looks like a settle point -- a
        copy renumbered to its new line, a record of one's own, two lines
        joined -- may follow records out of place, and a checkpoint over
        them disagrees with the log once they are put back as written
        (docs/DEPLOYMENT.md §14). Lines before ``size`` must be known in
        place: a machine's trusted tip, or a checkpoint the log signed."""
        tip = self.tip
        walker = Walker(before, size)
        seq = size
        sealed: Collection[int] | None = None
        source = self.storage.read(size, offset, LogEnd(tip.size, tip.end_offset))
        try:
            for block in source:
                for line in block:
                    if seq >= tip.size:
                        raise _changed(seq)
                    for item in walker.feed(seq, line, leaf_hash(line)):
                        if item.problem is None or item.problem.kind not in _MOVED:
                            continue
                        if sealed is None:
                            sealed = frozenset(self._sealed() if self._sealed else ())
                        # A line an incident sealed off never counts, whatever
                        # it holds now (§11.3): as the replay, pass over it.
                        if not all_sealed_off(sealed, range(item.seq, item.seq + item.count)):
                            raise _out_of_place(item.problem)
                    seq += 1
        finally:
            source.close()
        if seq != tip.size:
            raise _changed(seq)

    def _held_run(self) -> Walker:
        items = list(self._recent)
        i = len(items)
        while i and not _settles(items[i - 1]):
            i -= 1
        if i:
            return _held(items[i:], items[i - 1].leaf)
        first_seq = items[0].seq if items else self.tip.size
        if first_seq == 0:
            return _held(items, ZERO_LEAF)
        if first_seq == self._start.size and (self._settled or settles(
                parse(self._start_line or b"", first_seq - 1), first_seq - 1)):
            return _held(items, self._start.last_leaf)  # the tip ends at a settle point
        # Every line read is pending: the run starts earlier. Find where, then
        # read it forwards; the walker holds its last lines and digests (§8).
        first_end = items[0].end - items[0].length - 1 if items else self.tip.end_offset
        start, offset, before = self._run_start(first_seq, first_end)
        walker = Walker(before, start)
        tip = self.tip
        source = self.storage.read(start, offset, LogEnd(tip.size, tip.end_offset))
        seq = start
        try:
            for block in source:
                for line in block[: tip.size - seq]:
                    walker.hold(seq, line, leaf_hash(line))
                    seq += 1
        finally:
            source.close()
        if seq != tip.size:
            raise _changed(seq)
        return walker

    def _run_start(self, seq: int, end: int) -> tuple[int, int, bytes]:
        """Where the run pending before line ``seq`` (which starts ``end``
        bytes in) starts: its first line, that line's offset and the leaf
        hash of the line before it. Reads backwards, a block at a time."""
        while seq > 0:
            older = self.storage.lines_before(seq, end, _BACK)
            if not older or older == [b"\n"]:
                raise _changed(seq)
            for k in range(len(older) - 1, -1, -1):
                at = seq - len(older) + k
                if settles(parse(older[k], at), at):
                    rest = older[k + 1 :]
                    return at + 1, end - sum(map(len, rest)) - len(rest), leaf_hash(older[k])
            seq -= len(older)
            end -= sum(map(len, older)) + len(older)
        return 0, 0, ZERO_LEAF

    # -- appending ---------------------------------------------------------------------

    def append(self, records: list[AuditRecord], leaves: list[bytes]) -> None:
        """Write ``records`` right after the tip, or raise (AuditWriteError)
        before they extend it: lines landing elsewhere are numbered, hashed
        and signed as lines they are not."""
        lines = [r.line for r in records]
        self.storage.append(lines, self.tip.end_offset)
        self._add(lines, leaves)


_MOVED = ("inserted", "deleted")  # what the reading rules call records out of place
_SEQ = b'],"seq":'  # a canonical record's own number follows its rules (§3: sorted keys)


def _numbered(block: list[bytes], seq: int) -> bool:
    """Does every line of ``block`` (the first numbered ``seq``) hold a
    record numbered by its line, as far as a bytes search tells? In a
    canonical line the first ``],"seq":`` is the record's own number (no
    member before it holds one there, and a string escapes its quotes); a
    line that is not canonical is no record, and a line failing this is
    only suspect: the reading rules then judge it (:meth:`Turn.walk_in_place`).
    About a tenth of a microsecond a line, against some 40 for a parse."""
    for k, line in enumerate(block, seq):
        i = line.find(_SEQ)
        if i < 0:
            return False
        number = b"%d," % k
        if not line.startswith(number, i + 8):
            return False
    return True


def _out_of_place(found: AuditIntegrityError) -> AuditIntegrityError:
    return AuditIntegrityError(
        f"the audit log has records out of place ({found.message}): nothing is appended "
        "or signed until they are put back", kind=found.kind, seq=found.seq, hint=_PUT_BACK)


def _held(items: list[_Line], before: bytes) -> Walker:
    walker = Walker(before, items[0].seq if items else 0)
    for item in items:
        walker.hold(item.seq, item.line, item.leaf, item.fragment, item.signer, item.number)
    return walker


def _changed(seq: int) -> AuditIntegrityError:
    return AuditIntegrityError("the audit log changed under the writer's lock",
                               kind="truncated", seq=seq, hint=_HINT)


def rebuild(storage: LogStorage, derived: DerivedStore, tip: TrustedTip,
            originals: Callable[[], Mapping[int, bytes]] | None = None) -> str:
    """Recompute the derived data of the first ``tip.size`` lines from the
    log. A tip built before some of them were damaged holds the leaves they
    had when written: those an incident record carries (``originals``,
    asked only then) stand for them, and the derived data is written as
    the tip sees the log (§6, §11.3)."""
    written = _rebuilt(storage, derived, tip, {})
    if written != (tip.size, tip.end_offset, tip.frontier) and originals is not None:
        leaves = {i: h for i, h in originals().items() if i < tip.size}
        if leaves:
            written = _rebuilt(storage, derived, tip, leaves)
    if written != (tip.size, tip.end_offset, tip.frontier):
        moved = _recounted(storage, tip, written[:2])
        if moved is not None:
            raise moved
        raise AuditIntegrityError("the audit log changed while its derived files were rebuilt",
                                  kind="modified", hint=_HINT)
    return f"the derived hash and index data did not match the log; rebuilt ({tip.size} lines)"


def _recounted(storage: LogStorage, tip: TrustedTip,
               read: tuple[int, int]) -> AuditIntegrityError | None:
    """The bytes of ``tip``'s lines hold another number of lines (``read``:
    lines and end offset found): lines were inserted, split or joined below
    it (§11.3: a sealed-off line may be rewritten, but only within itself).
    Named by the first record out of place, for the office to put the lines
    back (DEPLOYMENT.md §14); None when the count is not what changed."""
    size, end = read
    if (size == tip.size) == (end == tip.end_offset):
        return None
    how = "more" if size == tip.size else "fewer"
    what = f"the {tip.size} lines this machine verified are now {how} lines"
    seq = 0
    walker = Walker()  # the reading rules name the first record out of place (§8)
    source = storage.read(0, 0, LogEnd(None, tip.end_offset))
    try:
        for block in source:
            for line in block:
                for item in walker.feed(seq, line, leaf_hash(line)):
                    problem = item.problem
                    if problem is not None and problem.kind in ("inserted", "deleted"):
                        return AuditIntegrityError(
                            f"the audit log no longer numbers its lines as this machine "
                            f"verified them: {problem.message}",
                            kind="inserted" if how == "more" else "deleted",
                            seq=problem.seq, hint=_MOVED_HINT)
                seq += 1
    finally:
        source.close()
    return AuditIntegrityError(f"the audit log no longer numbers its lines as this machine "
                               f"verified them: {what}",
                               kind="inserted" if how == "more" else "deleted",
                               seq=tip.size - 1, hint=_MOVED_HINT)


_MOVED_HINT = f"a line was inserted, split in two or joined with another: {MOVED_HINT}"


def _rebuilt(storage: LogStorage, derived: DerivedStore, tip: TrustedTip,
             leaves: Mapping[int, bytes]) -> tuple[int, int, tuple[bytes, ...]]:
    derived.reset()
    rng = CompactRange()
    pos = 0
    for block in storage.read(0, 0, LogEnd(tip.size, tip.end_offset)):
        block = block[: tip.size - rng.size]
        if not block:
            break
        at = rng.size
        stored = stored_order((leaves.get(at + k) or leaf_hash(line)
                               for k, line in enumerate(block)), rng)
        ends = []
        for line in block:
            pos += len(line) + 1
            ends.append(pos)
        derived.extend(at, ends, stored)
    return rng.size, pos, tuple(rng.hashes)
