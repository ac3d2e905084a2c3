"""Verifying a log (docs/AUDIT.md §11).

One streaming pass recomputes the tree (:mod:`vault.audit._treepass`) and
notes the root at every checkpoint's size. Lines covered by a verified
checkpoint need nothing more: the signed root fixes every byte of them.
Lines above the newest one are read by the reading rules (§5, §8); with
``key_lookup`` every line is, and every signature is checked over its chain
(§4). Checkpoints that do not open are findings, never damage (§7). What
the derived data says is compared with what was recomputed, and rebuilt
when it disagrees (§6) -- detection never depends on it.
"""

from __future__ import annotations

import base64
import collections
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vault.audit._chain import ZERO_LEAF, KeyLookup, chain_digest, verify_record
from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._hashing import leaf_hash
from vault.audit._incidents import Incidents
from vault.audit._record import fingerprint
from vault.audit._storage import LogEnd, LogStorage
from vault.audit._tree import CompactRange, stored_hash_count, stored_order
from vault.audit._treepass import hash_tree
from vault.audit._walk import MAX_FRAGMENTS, ScannedLine, Walker, parse, settles
from vault.audit.note import NoteVerifier
from vault.errors import AuditIntegrityError, CheckpointError

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from vault.audit._logread import LogReading
    from vault.audit._record import AuditRecord
    from vault.audit._tip import TrustedTip

__all__ = ["KeyLookup", "VerifyReport", "verify_log"]



@dataclass(frozen=True)
class VerifyReport:
    """What a successful verification established."""

    size: int  # lines in the tree
    root: bytes
    checkpoints: int  # stored checkpoints verified
    newest_checkpoint: int | None
    trusted_checkpoint: int | None  # size of the external checkpoint, if given
    consistency_proved: bool  # external -> newest checked with a consistency proof
    records_parsed: int
    signatures: int  # record signatures verified (only with key_lookup)
    unrecovered: int  # bytes at the end not yet set aside (interrupted write)
    hashes_ok: bool  # the derived data gave this tree (before any rebuild)
    findings: tuple[str, ...] = ()  # notes: ignored checkpoints, rebuilt data, ...
    incidents: tuple[str, ...] = ()  # damage confined to sealed-off lines
    unsigned_covered: int = 0  # unsigned records covered by a later signature
    unrecovered_lines: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["root"] = base64.b64encode(self.root).decode()  # as the text output shows it
        d["findings"], d["incidents"] = list(self.findings), list(self.incidents)
        return d


#: Bogus checkpoints named one by one; the rest are counted (whoever can
#: store notes can store one at every size of the log).
_NAMED_BOGUS = 100
#: Refused records named one by one (whoever can append can append many).
_NAMED_REFUSED = 100


@dataclass
class _Checker:
    """Reads lines by the rules from ``start`` on; checks signatures with
    ``key_lookup``. Kept lines before ``start`` seed the reading (§11.1)."""

    start: int
    key_lookup: KeyLookup | None
    incidents: Incidents
    parsed: int = 0
    signatures: int = 0
    unsigned_covered: int = 0
    problem: AuditIntegrityError | None = None
    bad_signature: AuditIntegrityError | None = None
    walker: Walker | None = None
    storage: LogStorage | None = None  # to read a long run straddling the start
    buffer: collections.deque[tuple[int, bytes, bytes]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_FRAGMENTS + 2))
    # The leaves of the lines just read: a chain to recompute (§11.3).
    recent: collections.deque[tuple[int, bytes]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_FRAGMENTS + 2))
    _run: tuple[int, str] | None = None  # first line and key of the unsigned run being read
    #: records whose word on other lines the reading rules refuse (§8): the
    #: first _NAMED_REFUSED said, and how many in all
    refused: list[str] = field(default_factory=list)
    refused_count: int = 0

    def __call__(self, first: int, lines: list[bytes], leaves: list[bytes]) -> None:
        n = len(lines)
        at = min(n, max(0, self.start - first)) if self.walker is None else 0
        if at:
            keep = min(at, MAX_FRAGMENTS + 2)
            self.buffer.extend(zip(range(first + at - keep, first + at), lines[at - keep : at],
                                   leaves[at - keep : at], strict=True))
        if at >= n:
            return
        if self.walker is None:
            self._seed()
        for i in range(at, n):
            self._feed(first + i, lines[i], leaves[i])

    def _seed(self) -> None:
        """Start at the last settle point before ``start``: a run of pending
        lines straddling it is then read whole."""
        seed = list(self.buffer)
        before, start = ZERO_LEAF, 0
        for i in range(len(seed) - 1, -1, -1):
            if settles(parse(seed[i][1], seed[i][0]), seed[i][0]):
                before, start, seed = seed[i][2], seed[i][0] + 1, seed[i + 1 :]
                break
        else:
            if seed and seed[0][0] > 0:  # a long run straddles it: read from the start
                self.walker = Walker()
                self._replay(seed[0][0])
                for seq, line, leaf in seed:
                    self._feed(seq, line, leaf)
                return
        self.walker = Walker(before, start)
        for seq, line, leaf in seed:
            self._feed(seq, line, leaf)

    def _replay(self, stop: int) -> None:
        """Walk lines 0 to ``stop`` - 1 (covered by a checkpoint: no finding of
        theirs counts) to know what is pending at ``stop``; bounded memory."""
        assert self.walker is not None and self.storage is not None
        source = self.storage.read(0, 0, LogEnd(stop, None))
        seq = 0
        try:
            for block in source:
                for line in block[: stop - seq]:
                    self.walker.feed(seq, line, leaf_hash(line))
                    seq += 1
                if seq >= stop:
                    break
        finally:
            source.close()

    def _feed(self, seq: int, line: bytes, leaf: bytes) -> None:
        assert self.walker is not None
        self.parsed += 1
        self.recent.append((seq, leaf))
        for item in self.walker.feed(seq, line, leaf):
            self._check(item)

    def _check(self, item: ScannedLine) -> None:
        if item.problem is not None or item.record is None:
            self._run = None
            # No record: junk a torn record set aside, or damage.
            self.incidents.damaged(range(item.seq, item.seq + item.count))
        if item.problem is not None:
            lines = range(item.seq, item.seq + item.count)
            if not self.incidents.excuse(item.problem, lines, every=True) \
                    and self.problem is None:
                self.problem = item.problem
            return
        record = item.record
        if record is None:
            return
        if item.finding is not None and item.seq not in self.incidents.lines:
            self.refused_count += 1
            if len(self.refused) < _NAMED_REFUSED:
                self.refused.append(item.finding)
        if record.signature is None:
            self.unsigned_covered += 1
        if self.key_lookup is None:
            return
        # A run is judged under the policy in force before its first line, as
        # the replay judges it (DESIGN.md §8.2): a policy version inside the
        # run does not change whose key signs the rest of it.
        if record.signature is not None:
            at, self._run = item.covers.start, None
        elif self._run is None or self._run[1] != record.actor_key:
            at, self._run = item.seq, (item.seq, record.actor_key)
        else:
            at = self._run[0]
        key = self.key_lookup(record.actor, record.actor_key, at)
        if record.signature is None:
            ok = key is not None and fingerprint(key) == record.actor_key
            why = "is not the record of a known actor"
            lines = range(item.seq, item.seq + 1)
            if not ok:
                self.incidents.damaged(lines)
        else:
            assert item.chain is not None
            ok = key is not None and verify_record(record, item.chain, key)
            why = "has a bad signature" if key else "is signed by an unknown key"
            lines = range(item.covers.start - 1, item.seq + 1)
            if not ok:
                # Damage somewhere in the run the signature covers, the line
                # before it aside: that line is judged by its own checks
                # (a record appended after an honest one is no damage of it).
                self.incidents.damaged(range(item.covers.start, item.seq + 1))
            if not ok and item.seq not in self.incidents.lines \
                    and self._original(item, record, key, derived=False):
                # Signed over the lines as written, by the leaves the incidents
                # carry: as the replay counts it (AUDIT.md §11.3, §12).
                ok = True
                who = record.actor if record.actor is not None else record.actor_key
                self.incidents.note(f"record {item.seq} ({who}) is signed over lines an "
                                    "incident sealed off, as they were written (their "
                                    "original leaves)", item.seq)
            self.signatures += ok
        if not ok:
            who = record.actor if record.actor is not None else record.actor_key
            error = AuditIntegrityError(f"record {item.seq} ({who}) {why}", kind="signature",
                                        seq=item.seq)
            excused = (record.signature is None or self._excusable(item, record, key)) \
                and self.incidents.excuse(error, lines)
            if not excused and self.bad_signature is None:
                self.bad_signature = error

    def said(self) -> list[str]:
        """The findings of the records refused, the first ones named."""
        more = self.refused_count - len(self.refused)
        return self.refused + ([f"{more} more torn records name lines none pending, and set "
                                "nothing aside"] if more else [])

    def _excusable(self, item: ScannedLine, record: AuditRecord,
                   key: Ed25519PublicKey | None) -> bool:
        """May an incident excuse this signed record's bad signature (AUDIT.md
        §11.3)? If the record itself is sealed off, yes (its run's other
        lines are then vouched for by nothing but a root that covers them).
        If a sealed-off line is only in its chain, only when the signature verifies with the leaves
        those lines had when they were written (those their incident records
        carry, else those the derived data holds): else a line that is not
        sealed off changed too -- the record after a sealed-off line would
        otherwise be anyone's to rewrite, with the unsigned lines of its run."""
        if item.seq in self.incidents.lines:
            return True
        return self._original(item, record, key, derived=True)

    def _original(self, item: ScannedLine, record: AuditRecord,
                  key: Ed25519PublicKey | None, *, derived: bool) -> bool:
        """Does this signed record's signature verify over its chain with the
        original leaves of the sealed-off lines in it -- those incident
        records carry (the replay's, ``derived`` false), or, for a line whose
        incident carries none, with ``derived`` those the derived data holds?"""
        sealed = self.incidents.lines
        if not sealed or key is None:
            return False
        start = item.covers.start - 1
        if not any(start <= i < item.seq for i in sealed):
            return False
        have = {seq: leaf for seq, leaf in self.recent if start <= seq < item.seq}
        if len(have) != item.seq - max(start, 0):
            return False  # a run longer than what is kept: the incident must cover it
        recorded = self.incidents.leaves
        have.update((i, leaf) for i, leaf in recorded.items() if start <= i < item.seq)
        if any(start <= i < item.seq and i not in recorded for i in sealed):
            if not derived:
                return False
            found = self.storage.derived() if self.storage is not None else None
            if found is None:
                return False
            try:
                with found:
                    hashes = found.hashes()
                    for i in sealed:
                        if start <= i < item.seq and i not in recorded \
                                and 0 <= i < found.covered():
                            have[i] = hashes.leaf(i)
            except (OSError, EOFError):
                return False
        before = have[start] if start >= 0 else ZERO_LEAF
        chain = chain_digest(before, [have[i] for i in range(start + 1, item.seq)])
        return verify_record(record, chain, key)


class _DerivedCheck:
    """Deep mode: every stored hash and end offset the derived data holds is
    compared with the ones computed from the lines (§6)."""

    def __init__(self, log: LogReading) -> None:
        derived = log.storage.derived()
        self.derived = derived if derived is not None and derived.writable else None
        if derived is not None and self.derived is None:
            derived.close()
        self.range = CompactRange()
        self.offset = 0
        self.ok = True

    def __call__(self, first: int, lines: list[bytes], leaves: list[bytes]) -> None:
        if self.derived is None or not self.ok:
            return
        at_hash = stored_hash_count(self.range.size)
        stored = stored_order(leaves, self.range)
        ends = []
        for line in lines:
            self.offset += len(line) + 1
            ends.append(self.offset)
        self.ok = self.derived.holds(at_hash, stored, first, ends)

    def close(self) -> None:
        if self.derived is not None:
            self.derived.close()




def _open_all(storage: LogStorage, verifier: NoteVerifier, origin: str,
              findings: list[str]) -> list[Checkpoint]:
    """The stored checkpoints that verify, read and opened one at a time;
    the others are findings (§7)."""
    valid, bogus = [], 0
    for size in storage.checkpoint_sizes():
        note = storage.read_checkpoint(size)
        if note is None:
            continue
        try:
            cp = open_checkpoint(note, [verifier], origin=origin)
            why = "" if cp.size == size else (f"checkpoint file {size} holds a checkpoint of "
                                              f"size {cp.size} and is ignored")
        except CheckpointError as e:
            why = f"checkpoint {size} does not verify and is ignored: {e.message}"
        if not why:
            valid.append(cp)
            continue
        bogus += 1
        if bogus <= _NAMED_BOGUS:
            findings.append(why)
    if bogus > _NAMED_BOGUS:
        findings.append(f"{bogus - _NAMED_BOGUS} more stored checkpoints are bogus, and "
                        "are ignored")
    return valid


def _open_trusted(data: bytes, verifier: NoteVerifier, origin: str) -> Checkpoint:
    try:
        return open_checkpoint(data, [verifier], origin=origin)
    except CheckpointError as e:
        raise AuditIntegrityError(
            f"the trusted checkpoint does not verify: {e}", kind="checkpoint") from e


def verify_log(log: LogReading, *, verifier: NoteVerifier, origin: str,
               trusted_checkpoint: bytes | None, key_lookup: KeyLookup | None,
               sealed_off: frozenset[int], expect_signer: bool,
               known: TrustedTip | None = None,
               recorded: Mapping[int, bytes] | None = None,
               stored: bool = True,
               known_leaves: Mapping[int, bytes] | None = None,
               damage: list[range] | None = None) -> VerifyReport:
    from vault.audit._verify_end import finish

    storage = log.storage
    findings: list[str] = []
    tip = log._tip  # before the snapshot: another thread's append may move it on
    with log._reading():
        end = storage.end()
        checkpoints = _open_all(storage, verifier, origin, findings) if stored else []
    # b"" is a checkpoint given, and malformed (a kept file emptied), never none.
    trusted = (_open_trusted(trusted_checkpoint, verifier, origin)
               if trusted_checkpoint is not None else None)
    wanted = [c.size for c in checkpoints] + ([trusted.size] if trusted else [])
    covered = max(wanted, default=0)
    incidents = Incidents(sealed_off, recorded, damage)
    checker = _Checker(0 if key_lookup else covered, key_lookup, incidents, storage=storage)
    sizes = [*wanted, *([tip.size] if tip else []), *([known.size] if known else [])]
    if key_lookup is None:
        tree = hash_tree(storage, end, sizes, checker, max(0, checker.start - MAX_FRAGMENTS - 2))
        derived_ok = True
    else:
        deep = _DerivedCheck(log)

        def both(first: int, lines: list[bytes], leaves: list[bytes]) -> None:
            checker(first, lines, leaves)
            deep(first, lines, leaves)

        try:
            tree = hash_tree(storage, end, sizes, both, 0)
        finally:
            deep.close()
        derived_ok = deep.ok
    if checker.walker is None:  # nothing at or after the start: still seed the reading
        checker._seed()
    findings += checker.said()
    return finish(log, tree, checker, checkpoints, trusted, tip, end, findings, incidents,
                  expect_signer=expect_signer,
                  derived_ok=derived_ok, known=known, known_leaves=known_leaves)
