"""The reading rules, applied to numbered lines in order (docs/AUDIT.md §5, §8).

Every line is a leaf, but not every line counts on its own:

* a signed record (valid, ``seq`` = its line number) settles the lines
  pending before it: the run of unsigned records of its actor that its
  signature covers (§4, §5), or -- for a ``torn`` record -- the lines its
  fragments name: every pending line, or, for a run longer than
  :data:`MAX_FRAGMENTS`, the last ones while its signature covers the
  whole run (§8);
* a torn record naming lines when none are pending settles nothing and
  damages no line: it is said of its signer (:attr:`ScannedLine.finding`);
* an unsigned record waits for the signed record that covers it;
* any other line (a *fragment*) waits for a torn record that names it.

Lines still waiting at the end of the log are an *unrecovered* tail: not
damage, but not yet readable either; the next writer sets them aside.
Lines that can never be settled (a fragment followed by an ordinary
record, an unsigned record followed by someone else's, a record whose
``seq`` is not its line number) are damage: they are settled with a
``problem`` so that a reader can raise and a replay can go on.

Memory is bounded whatever the length of a run: only its last
:data:`MAX_FRAGMENTS` lines are held; of the others, running digests and
counts. Lines no longer held are yielded as one item standing for them all.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vault.audit._chain import ZERO_LEAF
from vault.audit._record import TORN_ACTION, AuditRecord, Fragment
from vault.errors import AuditIntegrityError

__all__ = ["MAX_FRAGMENTS", "MAX_RUN_BYTES", "MOVED_HINT", "ScannedLine", "Walker",
           "misplaced_message", "settles"]

# The most lines one torn record names (about 110 bytes each, within
# MAX_LINE); a longer run is named by its last MAX_FRAGMENTS lines and
# covered whole by the torn record's chain (docs/AUDIT.md §8).
MAX_FRAGMENTS = 4096
# The most bytes (lines and their newlines) of a run of unsigned records one
# signature covers (§5): a batch's run is a few MB; a larger one is damage,
# so that a reader never holds more of records waiting for their signature.
MAX_RUN_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ScannedLine:
    """One line of the log as the reading rules see it (docs/AUDIT.md §12);
    with ``count`` > 1, the ``count`` lines from ``seq`` of a long run (§8),
    set aside or damaged alike, whose bytes were not kept (``line`` is
    empty, ``leaf`` the last one's). A line that is not a record is not
    kept either: ``line`` is empty, ``leaf`` its hash."""

    seq: int
    line: bytes
    leaf: bytes  # RFC 6962 leaf hash of the line
    record: AuditRecord | None  # None: a fragment set aside, or a damaged line
    chain: bytes | None = None  # signed records: chain(k), what the signature covers
    covers: range = range(0)  # signed records: the lines their signature covers
    problem: AuditIntegrityError | None = None  # the reading rules are broken here
    count: int = 1  # lines this item stands for
    #: signed records whose chain covers a sealed-off line: chain(k) over the
    #: leaf hashes those lines had when written (a replay given them, §11.3)
    original_chain: bytes | None = None
    #: a signed record the reading rules refuse what it says of other lines
    #: -- a torn record naming lines when none are pending (§8) -- said so:
    #: it settles nothing, and is no damage of any line
    finding: str | None = None

    @property
    def fragment(self) -> bool:
        """A line set aside by a torn record (no record, and no damage)."""
        return self.record is None and self.problem is None


@dataclass
class _Pending:
    """A line waiting to be settled. Of a line that is not a record only
    what a torn record names is kept -- its position, length and SHA-256 --
    so that a run of large junk lines costs a reader no more memory than a
    run of small ones (§8)."""

    seq: int
    line: bytes  # an unsigned record's; b"" for a line that is no record
    leaf: bytes
    record: AuditRecord | None  # parsed (an unsigned record), else None
    length: int
    named: Fragment | None = None  # a line held by its digests only: what names it
    signer: str | None = None  # such a line that is an unsigned record: its actor key

    @property
    def actor(self) -> str | None:
        """The actor key of an unsigned record, held whole or not."""
        return self.record.actor_key if self.record is not None else self.signer

    @classmethod
    def of(cls, seq: int, line: bytes, leaf: bytes, record: AuditRecord | None) -> _Pending:
        if record is not None:  # most pending lines: a batch's unsigned records
            return cls(seq, line, leaf, record, len(line))
        return cls(seq, b"", leaf, None, len(line), Fragment.of(seq, line))

    @property
    def fragment(self) -> Fragment:
        """What a torn record setting this line aside names of it."""
        return self.named if self.named is not None else Fragment.of(self.seq, self.line)


def settles(record: AuditRecord | None, seq: int) -> bool:
    """Is this a settle point: a valid signed record in its own place?"""
    return record is not None and record.signature is not None and record.seq == seq


def parse(line: bytes, seq: int) -> AuditRecord | None:
    try:
        return AuditRecord.from_line(line, seq=seq)
    except AuditIntegrityError:
        return None


def misplaced_message(last: int, seq: int, number: int) -> str:
    """Line ``seq`` holds record ``number``, and line ``last`` is the last
    one before it that settled in its place: lines were inserted, or one
    split in two, between them (a number below the line's), or removed or
    joined (above it). A line an incident sealed off is rewritten only
    within itself: one split or joined with another moves every record
    after it, which then never counts (AUDIT.md §11.3)."""
    if number < seq:
        how = (f"{seq - number} line{'s' if seq - number > 1 else ''} inserted after line "
               f"{last}, or a line after it split in two")
    else:
        how = (f"{number - seq} line{'s' if number - seq > 1 else ''} after line {last} "
               "removed, or lines after it joined")
    return (f"line {seq} holds record {number}: {how}; the records so moved do not count "
            "until the lines are put back as written")


def _damage(kind: str, seq: int, message: str) -> AuditIntegrityError:
    return AuditIntegrityError(message, kind=kind, seq=seq)


# Records out of place are no incident: no declaration covers every record
# they move, and once the lines are back as written every machine goes on.
MOVED_HINT = ("put the lines back as written, keeping the changed log as evidence "
              "(docs/DEPLOYMENT.md §14)")


def _moved(kind: str, seq: int, message: str) -> AuditIntegrityError:
    return AuditIntegrityError(message, kind=kind, seq=seq, hint=MOVED_HINT)


class Walker:
    """Settles lines fed in order; ``before`` is the leaf hash of the line
    before the first one fed (32 zero bytes at the start of a log)."""

    def __init__(self, before: bytes = ZERO_LEAF, start: int = 0) -> None:
        self._reset(before)
        # Records out of place: by how many lines, and the first line so.
        self._shift: tuple[int, int] | None = None
        # A record out of place not yet followed by another at its offset:
        # (offset, line, what it says if one follows). Held as any other line
        # until then -- alone it is a stray line, no lines moved (§8).
        self._stray: tuple[int, int, str] | None = None
        # The last line holding a record in its place; the lines before
        # ``start`` count as such (a reader held them to what it verified).
        self._in_place = start - 1
        #: lines only held (:meth:`hold`): the first records found out of
        #: place among them, which no torn record may set aside (§8)
        self.moved: AuditIntegrityError | None = None

    def _reset(self, before: bytes) -> None:
        self.before = before
        #: the last pending lines (at most MAX_FRAGMENTS); ``count`` says how many pend
        self.pending: deque[_Pending] = deque()
        self.count = 0
        self.bytes = 0  # pending bytes, a newline each
        self.first = -1  # the first pending line
        self._first_unsigned = False  # is it an unsigned record?
        self._dropped_leaf = before  # leaf of the last pending line no longer held
        self._last = before  # leaf of the last pending line (or before)
        # Running digests, made when a line pends (most records settle at once):
        # leaf(s-1) || every pending leaf (§8), and the trailing run of
        # unsigned records of one actor (§4).
        self._run: Any = None
        self._tail: Any = None
        self._tail_key: str | None = None
        self._tail_len = 0
        self._tail_bytes = 0

    def feed(self, seq: int, line: bytes, leaf: bytes) -> list[ScannedLine]:
        """Add line ``seq``; return the lines it settles, in order."""
        record = parse(line, seq)
        if record is not None and record.seq != seq:
            return self._out_of_place(_Pending.of(seq, line, leaf, None), record.seq)
        if record is not None:
            self._in_place, self._stray = seq, None  # the one before was a stray line
        if record is None or record.signature is None:
            self._hold(_Pending.of(seq, line, leaf, record))
            return []
        return self._settle(record, seq, line, leaf)

    def _out_of_place(self, p: _Pending, number: int, *,
                      settle: bool = True) -> list[ScannedLine]:
        """Line ``p.seq`` holds record ``number``. Records were moved -- lines
        inserted, split, joined or removed before them -- only when the next
        record is out of place by as much, or the records from here on
        already were, and nothing with that number came before in its
        place: then each such line is damage (``inserted`` or ``deleted``).
        A record alone at another offset is a stray line -- a copy, say --
        and waits like any other line that is no record (§8). Without
        ``settle`` (a writer holding lines to set them aside) nothing is
        settled: the first damage so found is kept in :attr:`moved`."""
        seq = p.seq
        shift = seq - number
        kind = "deleted" if number > seq else "inserted"
        said: list[AuditIntegrityError] = []
        if self._shift is not None and self._shift[0] == shift:
            said.append(_moved(kind, min(seq, number), (
                f"line {seq} holds record {number} (records out of place since line "
                f"{self._shift[1]})")))
        elif self._stray is not None and self._stray[0] == shift:
            self._shift = (shift, self._stray[1])
            first, message = self._stray[1], self._stray[2]
            self._stray = None
            said.append(_moved(kind, min(first, first - shift), message))
            said.append(_moved(kind, min(seq, number), (
                f"line {seq} holds record {number} (records out of place since line {first})")))
        elif number > self._in_place:  # a number not yet seen in its place
            self._stray = (shift, seq, misplaced_message(
                self.first - 1 if self.count else seq - 1, seq, number))
        else:
            self._stray = None
        if not settle or not said:
            if said and self.moved is None:
                self.moved = said[0]
            self._hold(p)
            return []
        out = self._flush(said[0]) if len(said) == 2 else []
        self._hold(p)
        return out + self._flush(said[-1])

    def hold(self, seq: int, line: bytes, leaf: bytes, fragment: Fragment | None = None,
             actor_key: str | None = None, number: int | None = None) -> None:
        """Add a line to the pending ones without settling anything (a writer
        about to set them aside, §8), judging as :meth:`feed` does whether
        records among them are out of place (:attr:`moved`). ``fragment``: a
        line known only by what a torn record names of it (``line`` unused)
        -- with ``actor_key``, an unsigned record of that actor, which its
        chain still follows; with ``number``, the ``seq`` of the record it
        holds, if any."""
        if fragment is not None:
            p = _Pending(seq, b"", leaf, None, fragment.length, fragment, actor_key)
        else:
            record = parse(line, seq)
            number = record.seq if record is not None else None
            unsigned = record if record is not None and record.signature is None else None
            p = _Pending.of(seq, line, leaf, unsigned if number == seq else None)
        if number is not None and number != seq:
            self._out_of_place(p, number, settle=False)
            return
        if number is not None:
            self._in_place, self._stray = seq, None
        self._hold(p)

    def _hold(self, p: _Pending) -> None:
        if not self.count:
            self.first, self._first_unsigned = p.seq, p.actor is not None
            self._run = hashlib.sha256(self.before)
        if len(self.pending) == MAX_FRAGMENTS:
            self._dropped_leaf = self.pending.popleft().leaf  # counted, no longer held
        actor = p.actor
        if actor is not None and actor == self._tail_key:
            self._tail.update(p.leaf)
            self._tail_len += 1
            self._tail_bytes += p.length + 1
        else:
            # Only the trailing run of one actor's unsigned records can still
            # be covered by a signature: the records held before it are
            # damage or set aside whatever follows, and need no bytes.
            self._compact()
            if actor is not None:
                self._tail = hashlib.sha256(self._last + p.leaf)
                self._tail_key, self._tail_len = actor, 1
                self._tail_bytes = p.length + 1
            else:
                self._tail_key, self._tail_len, self._tail_bytes = None, 0, 0
        self.pending.append(p)
        if self._tail_bytes > MAX_RUN_BYTES:
            self._compact()  # too large for a signature to cover (§5): it never will
        self.count += 1
        self.bytes += p.length + 1
        self._run.update(p.leaf)
        self._last = p.leaf

    def _compact(self) -> None:
        """Keep of the held records only what a torn record names of them.
        Records are held only at the end of ``pending``."""
        held = self.pending
        i = len(held) - 1
        while i >= 0 and held[i].record is not None:
            q = held[i]
            held[i] = _Pending(q.seq, b"", q.leaf, None, q.length, q.fragment, q.actor)
            i -= 1

    def chain_for(self, actor_key: str) -> tuple[bytes, int]:
        """``chain(k)`` for a signed record of ``actor_key`` fed next, and how
        many pending lines its signature covers (§4)."""
        if self._tail_key == actor_key and self._tail_len:
            return self._tail.copy().digest(), self._tail_len
        return hashlib.sha256(self._last).digest(), 0

    @property
    def long(self) -> bool:
        """Are more lines pending than one torn record names one by one (§8)?"""
        return self.count > MAX_FRAGMENTS

    def torn_chain(self, actor_key: str) -> tuple[bytes, int]:
        """``chain(k)`` for a torn record of ``actor_key`` setting the pending
        lines aside, and how many lines its signature covers (§8)."""
        if self.long:
            return self._run.copy().digest(), self.count
        return self.chain_for(actor_key)

    def _settle(self, record: AuditRecord, seq: int, line: bytes,
                leaf: bytes) -> list[ScannedLine]:
        held = list(self.pending)
        out: list[ScannedLine]
        if record.action == TORN_ACTION:
            chain, run = self.torn_chain(record.actor_key)
            n = len(record.fragments)
            named = n <= len(held) and n == min(self.count, MAX_FRAGMENTS) and all(
                f == p.fragment for f, p in zip(record.fragments, held[-n:], strict=True))
            if named:
                out = self._gone(None)
                out += [ScannedLine(p.seq, p.line, p.leaf, None) for p in held]
            elif not self.count:
                # Nothing pending: no line to call damage, and the record is
                # a settle point like any signed one. What it names is no
                # interrupted write (a writer sets aside only pending lines):
                # said of its signer, never of the lines it names (§8).
                return self._refused(record, seq, line, leaf, chain, run)
            else:
                at = self.first if self.count else seq
                out = self._problems(_damage("modified", at, f"torn record {seq} does not "
                                             "match the lines it sets aside"), len(held))
        else:
            chain, run = self.chain_for(record.actor_key)
            # A run longer or larger than any batch's (§5) is not read as records.
            large = run > 0 and self._tail_bytes > MAX_RUN_BYTES
            covered = run if run <= len(held) and not large else 0
            out = []
            if self.count > covered:
                why = ("is an unsigned record that no record of its actor covers"
                       if self._first_unsigned else "is not a valid record")
                if large and self.count == run:
                    why = (f"starts a run of unsigned records larger than one signature "
                           f"covers ({MAX_RUN_BYTES // 2**20} MiB)")
                out = self._problems(_damage("modified", self.first, f"line {self.first} {why}"),
                                     len(held) - covered)
            out += [ScannedLine(p.seq, p.line, p.leaf, p.record)
                    for p in held[len(held) - covered:]]
        out.append(ScannedLine(seq, line, leaf, record, chain, range(seq - run, seq + 1)))
        self._reset(leaf)
        self._shift = None  # a record in its place: the lines match their numbers again
        return out

    def _refused(self, record: AuditRecord, seq: int, line: bytes, leaf: bytes,
                 chain: bytes, run: int) -> list[ScannedLine]:
        """A torn record naming lines when none are pending (§8)."""
        n = len(record.fragments)
        said = (f"torn record {seq} ({record.actor or record.actor_key}) names "
                f"{n} line{'s' if n > 1 else ''} from line {seq - n} that no interrupted write "
                "left pending: it sets nothing aside")
        self._reset(leaf)
        self._shift = None
        return [ScannedLine(seq, line, leaf, record, chain, range(seq - run, seq + 1),
                            finding=said)]

    def _gone(self, problem: AuditIntegrityError | None) -> list[ScannedLine]:
        """One item for the pending lines no longer held, if any."""
        dropped = self.count - len(self.pending)
        if not dropped:
            return []
        if problem is not None and dropped > 1:
            # One item stands for them all: each is damage, and an incident
            # must name each (vault/audit/_incidents.py), so the message
            # gives the whole stretch.
            last = self.first + dropped - 1
            problem = AuditIntegrityError(
                f"{problem.message} (with lines {self.first}-{last}, {dropped} lines)",
                kind=problem.kind, seq=problem.seq, hint=problem.hint)
        return [ScannedLine(self.first, b"", self._dropped_leaf, None, problem=problem,
                            count=dropped)]

    def _problems(self, problem: AuditIntegrityError, held: int) -> list[ScannedLine]:
        """The lines no longer held, and the first ``held`` held ones, as damage."""
        lines: Sequence[_Pending] = list(self.pending)[:held]
        return self._gone(problem) + [
            ScannedLine(p.seq, p.line, p.leaf, None, problem=problem) for p in lines]

    def _flush(self, problem: AuditIntegrityError) -> list[ScannedLine]:
        out = self._problems(problem, len(self.pending))
        self._reset(self._last)
        return out
