"""The reading rules, applied to numbered lines in order (docs/AUDIT.md §5, §8).

Every line is a leaf, but not every line counts on its own:

* a signed record (valid, ``seq`` = its line number) settles the lines
  pending before it: the run of unsigned records of its actor that its
  signature covers (§4, §5), or -- for a ``torn`` record -- exactly the
  lines its fragments name (§8);
* an unsigned record waits for the signed record that covers it;
* any other line (a *fragment*) waits for a torn record that names it.

Lines still waiting at the end of the log are an *unrecovered* tail: not
damage, but not yet readable either; the next writer sets them aside.
Lines that can never be settled (a fragment followed by an ordinary
record, an unsigned record followed by someone else's, a record whose
``seq`` is not its line number) are damage: they are settled with a
``problem`` so that a reader can raise and a replay can go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vault.audit._chain import ZERO_LEAF, chain_digest
from vault.audit._record import TORN_ACTION, AuditRecord
from vault.errors import AuditIntegrityError

__all__ = ["MAX_FRAGMENTS", "ScannedLine", "Walker", "settles"]

# The most lines one torn record may set aside (about 90 bytes each, well
# within MAX_LINE); a crash leaves at most a batch's run of RUN_LIMIT lines.
MAX_FRAGMENTS = 4096


@dataclass(frozen=True)
class ScannedLine:
    """One line of the log as the reading rules see it (docs/AUDIT.md §12)."""

    seq: int
    line: bytes
    leaf: bytes  # RFC 6962 leaf hash of the line
    record: AuditRecord | None  # None: a fragment set aside, or a damaged line
    chain: bytes | None = None  # signed records: chain(k), what the signature covers
    covers: range = range(0)  # signed records: the lines their signature covers
    problem: AuditIntegrityError | None = None  # the reading rules are broken here

    @property
    def fragment(self) -> bool:
        """A line set aside by a torn record (no record, and no damage)."""
        return self.record is None and self.problem is None


@dataclass
class _Pending:
    seq: int
    line: bytes
    leaf: bytes
    record: AuditRecord | None  # parsed (an unsigned record), else None


def settles(record: AuditRecord | None, seq: int) -> bool:
    """Is this a settle point: a valid signed record in its own place?"""
    return record is not None and record.signature is not None and record.seq == seq


def parse(line: bytes, seq: int) -> AuditRecord | None:
    try:
        return AuditRecord.from_line(line, seq=seq)
    except AuditIntegrityError:
        return None


def _damage(kind: str, seq: int, message: str) -> AuditIntegrityError:
    return AuditIntegrityError(message, kind=kind, seq=seq)


class Walker:
    """Settles lines fed in order; ``before`` is the leaf hash of the line
    before the first one fed (32 zero bytes at the start of a log)."""

    def __init__(self, before: bytes = ZERO_LEAF) -> None:
        self.before = before
        self.pending: list[_Pending] = []

    def feed(self, seq: int, line: bytes, leaf: bytes) -> list[ScannedLine]:
        """Add line ``seq``; return the lines it settles, in order."""
        record = parse(line, seq)
        if record is not None and record.seq != seq:
            # A whole record out of place is never an interrupted write (§8).
            kind = "deleted" if record.seq > seq else "inserted"
            problem = _damage(kind, min(seq, record.seq), f"line {seq} holds record {record.seq}")
            return self._flush(problem, _Pending(seq, line, leaf, None))
        if record is None or record.signature is None:
            self.pending.append(_Pending(seq, line, leaf, record))
            if len(self.pending) > MAX_FRAGMENTS:
                first = self.pending[0].seq
                return self._flush(_damage("inserted", first, f"lines from {first} on are not "
                                           "records and nothing sets them aside"), None)
            return []
        return self._settle(record, seq, line, leaf)

    def hold(self, seq: int, line: bytes, leaf: bytes) -> None:
        """Add a line to the pending ones without settling anything (a writer
        about to set them aside, §8)."""
        record = parse(line, seq)
        unsigned = record if record is not None and record.signature is None else None
        self.pending.append(_Pending(seq, line, leaf, unsigned))

    def chain_for(self, actor_key: str) -> tuple[bytes, int]:
        """``chain(k)`` for a signed record of ``actor_key`` fed next, and how
        many pending lines its signature covers (§4)."""
        pending = self.pending
        start = len(pending)
        while start and _covered_by(pending[start - 1], actor_key):
            start -= 1
        before = pending[start - 1].leaf if start else self.before
        return chain_digest(before, [p.leaf for p in pending[start:]]), len(pending) - start

    def _settle(self, record: AuditRecord, seq: int, line: bytes,
                leaf: bytes) -> list[ScannedLine]:
        pending = self.pending
        chain, run = self.chain_for(record.actor_key)
        start = len(pending) - run
        covers = range(seq - run, seq + 1)
        out: list[ScannedLine] = []
        if record.action == TORN_ACTION:
            named = len(record.fragments) == len(pending) and all(
                f.names(p.seq, p.line) for f, p in zip(record.fragments, pending, strict=False))
            if named:
                out = [ScannedLine(p.seq, p.line, p.leaf, None) for p in pending]
            else:
                at = pending[0].seq if pending else seq
                problem = _damage("modified", at, f"torn record {seq} does not match the lines "
                                  "it sets aside")
                out = self._problems(pending, problem)
        else:
            extra, covered = pending[:start], pending[start:]
            if extra:
                first = extra[0]
                why = ("is an unsigned record that no record of its actor covers"
                       if first.record is not None else "is not a valid record")
                out = self._problems(extra, _damage("modified", first.seq,
                                                    f"line {first.seq} {why}"))
            out += [ScannedLine(p.seq, p.line, p.leaf, p.record) for p in covered]
        out.append(ScannedLine(seq, line, leaf, record, chain, covers))
        self.pending, self.before = [], leaf
        return out

    def _problems(self, lines: Sequence[_Pending],
                  problem: AuditIntegrityError) -> list[ScannedLine]:
        return [ScannedLine(p.seq, p.line, p.leaf, None, problem=problem) for p in lines]

    def _flush(self, problem: AuditIntegrityError, last: _Pending | None) -> list[ScannedLine]:
        lines = [*self.pending, *([last] if last else [])]
        self.pending = []
        if lines:
            self.before = lines[-1].leaf
        return self._problems(lines, problem)


def _covered_by(p: _Pending, actor_key: str) -> bool:
    """Is ``p`` an unsigned record of this actor (§4: part of its run)?"""
    return p.record is not None and p.record.actor_key == actor_key
