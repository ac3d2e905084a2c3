"""Verification, second half: judging what the pass found (docs/AUDIT.md §11).

Damage raises (named by :mod:`vault.audit._damage`) unless an incident
explains it; everything else -- ignored checkpoints, an unrecovered tail,
derived data rebuilt, a missing checkpoint key -- is a finding.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

from vault.audit._checkpoint import Checkpoint
from vault.audit._damage import Target, classify
from vault.audit._hashing import leaf_hash
from vault.audit._incidents import Incidents
from vault.audit._proof import verify_consistency
from vault.audit._storage import DerivedStore, LogEnd
from vault.audit._tip import TrustedTip
from vault.audit._treepass import TreeResult
from vault.audit._writer import Turn
from vault.errors import AuditIntegrityError, VaultError

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit._logread import LogReading
    from vault.audit._tree import CompactRange
    from vault.audit._verify import VerifyReport, _Checker

__all__ = ["finish"]

_HINT = "treat this as a security incident; keep a copy of the log as evidence"


def finish(log: LogReading, tree: TreeResult, checker: _Checker, checkpoints: list[Checkpoint],
           trusted: Checkpoint | None, tip: TrustedTip | None, end: LogEnd, findings: list[str],
           incidents: Incidents, *, expect_signer: bool,
           derived_ok: bool = True, known: TrustedTip | None = None,
           known_leaves: Mapping[int, bytes] | None = None) -> VerifyReport:
    from vault.audit._verify import VerifyReport

    # The leaves each trusted tip's tree holds at sealed-off lines: this
    # log's own tip's (a vault's state), and ``known``'s, given with it.
    trees: list[tuple[TrustedTip, Callable[[], Mapping[int, bytes]]]] = []
    if tip is not None and log.held_leaves is not None:
        trees.append((tip, log.held_leaves))
    if known is not None and known_leaves is not None:
        trees.append((known, lambda: known_leaves))

    targets = [Target(c.size, c.root) for c in checkpoints]
    targets += [Target(trusted.size, trusted.root)] if trusted else []
    targets += [Target(tip.size, tip.root)] if tip else []
    targets += [Target(known.size, known.root)] if known else []
    damage = None
    against: set[int] = set()  # the targets the log contradicts
    for t in targets:
        if t.size > tree.size:
            damage = AuditIntegrityError(
                f"the audit log was truncated: it ends after {tree.size} lines, {t.size} "
                "were written", kind="truncated", seq=tree.size, hint=_HINT)
            against.add(id(t))
        elif not hmac.compare_digest(tree.roots[t.size], t.root) and not _excused(
                log, t, incidents) and not any(
                    t.size == own.size and t.root == own.root and _held(log, t, incidents, held)
                    for own, held in trees):
            damage = damage or AuditIntegrityError(
                f"the audit log does not match its checkpoint of size {t.size}",
                kind="modified", hint=_HINT)
            against.add(id(t))
    if damage is not None or checker.problem is not None:
        error = classify(log.storage, end, targets, tree.roots, checker.problem or damage)
        stored = targets[:len(checkpoints)]
        if checker.problem is None and against and all(
                any(id(t) == a for t in stored) for a in against):
            # Only stored checkpoints disagree (not this machine's trusted
            # tip, nor a checkpoint the caller kept): whoever holds the log
            # key -- any folder writer, where it is kept -- could have signed
            # a bogus one. The auditor must not take the log's word alone.
            sizes = ", ".join(str(t.size) for t in stored if id(t) in against)
            error = AuditIntegrityError(
                error.message, kind=error.kind, seq=error.seq,
                hint=f"{_HINT}; only stored checkpoints disagree ({sizes}): if every machine's "
                     "trusted tip and the checkpoints kept outside agree with the log, suspect "
                     "those checkpoints, signed by someone who holds the log key")
        raise error
    if checker.bad_signature is not None:
        raise checker.bad_signature
    assert checker.walker is not None
    pending = checker.walker.count
    unrecovered = len(tree.tail) + checker.walker.bytes
    if unrecovered:
        findings.append(f"{pending} lines and {len(tree.tail)} bytes at the end were left "
                        "by an interrupted write; the next append sets them aside")
    hashes_ok = derived_ok and _derived_ok(log, tree, checkpoints)
    original = None if hashes_ok else originals(log, tree.size, incidents.lines,
                                                incidents.leaves)
    if original is not None and _derived_holds(log, original, tree.end):
        # They differ only at sealed-off lines: they keep the leaves those
        # lines had, which every checkpoint signed since holds and proofs
        # against them need (§10). Where an incident record carries none,
        # rebuilt from the lines, no proof could be made again.
        findings.append("the derived hashes keep the original leaves of the lines an "
                        "incident sealed off, and are not rebuilt")
    elif original is not None:
        # Anything else in them (a folder writer's junk at another line, the
        # offsets of lines after a sealed-off line rewritten at another
        # length) is rebuilt -- with the original leaves, which other
        # machines confirm their tips with.
        findings.append(_repair(log, tree, original, incidents.lines))
    elif not hashes_ok:
        findings.append(_repair(log, tree))
    proved = _prove_consistency(log, trusted, checkpoints)
    if expect_signer:
        findings += _missing_signer(log, tree.size, checkpoints)
    newest = checkpoints[-1].size if checkpoints else None
    return VerifyReport(
        size=tree.size, root=tree.root, checkpoints=len(checkpoints), newest_checkpoint=newest,
        trusted_checkpoint=trusted.size if trusted else None, consistency_proved=proved,
        records_parsed=checker.parsed, signatures=checker.signatures, unrecovered=unrecovered,
        hashes_ok=hashes_ok, findings=tuple(findings), incidents=tuple(incidents.notes),
        unsigned_covered=checker.unsigned_covered, unrecovered_lines=pending)


def _excused(log: LogReading, target: Target, incidents: Incidents) -> bool:
    """A root that differs only because of sealed-off lines (§11.3): the
    original leaves -- the lines' own, and at sealed-off lines those the
    incident records carry (else, for an incident carrying none, those the
    derived data holds, differing from the lines' own only there) --
    reproduce it exactly. Signatures never stand in for that: a user can
    re-sign a rewritten record of their own, and nothing later covers the
    newest records; only a root fixes every line below it."""
    if not incidents.before(target.size):
        return False
    ok = _originals_confirm(log, target, incidents)
    if ok:
        incidents.note(f"checkpoint {target.size} differs from the log only at lines an "
                       "incident sealed off")
    return ok


def _held(log: LogReading, target: Target, incidents: Incidents,
          leaves: Callable[[], Mapping[int, bytes]]) -> bool:
    """A machine's trusted tip, made from a sealed-off line as it read it
    (damaged, or rewritten since): reproduced by the lines with the
    ``leaves`` the tip's tree holds at the lines sealed off on that machine
    (§11.3) -- and at other sealed-off lines (an incident it did not know
    yet), the lines' own, as it read them after the damage, or else the
    original ones. What such a line says never counts; the lines around it
    are still held."""
    from vault.audit._tree import tree_root

    if not incidents.before(target.size):
        return False
    held = {i: h for i, h in leaves().items() if i in incidents.lines and i < target.size}
    now = _leaves_now(log, target.size)
    tree = [held.get(i, leaf) for i, leaf in enumerate(now)]
    ok = len(tree) == target.size and hmac.compare_digest(tree_root(tree), target.root)
    if not ok:
        tree = originals(log, target.size, incidents.lines, {**incidents.leaves, **held}) or []
        ok = len(tree) == target.size and hmac.compare_digest(tree_root(tree), target.root)
    if ok:
        incidents.differ(now, tree)
        incidents.note(f"this machine's trusted tip ({target.size} lines) differs from the "
                       "log only at lines an incident sealed off")
    return ok


def _originals_confirm(log: LogReading, target: Target, incidents: Incidents) -> bool:
    from vault.audit._tree import tree_root

    original = originals(log, target.size, incidents.lines, incidents.leaves)
    ok = original is not None and hmac.compare_digest(tree_root(original), target.root)
    if ok and incidents.found is not None:
        assert original is not None
        incidents.differ(_leaves_now(log, target.size), original)
    return ok


def _leaves_now(log: LogReading, size: int) -> list[bytes]:
    """The leaf hashes the first ``size`` lines have now."""
    return [leaf_hash(line) for block in log.storage.read(0, 0, LogEnd(size, None))
            for line in block][:size]


def originals(log: LogReading, size: int, sealed_off: Collection[int],
              recorded: Mapping[int, bytes] | None = None) -> list[bytes] | None:
    """The leaf hashes the first ``size`` lines had when written, as far as
    they can be told: the lines' own, but at a sealed-off line the leaf its
    incident record carries (``recorded``) or, for one whose incident
    carries none, the one the derived data holds -- which then must differ
    from the lines' own only at ``sealed_off`` lines (§11.3). None when no
    sealed-off line is among them or a leaf cannot be told. Not trusted:
    only a signed root they reproduce makes them the originals."""
    if not any(i < size for i in sealed_off):
        return None
    recorded = recorded or {}
    now = _leaves_now(log, size)
    if len(now) != size:
        return None
    original = now
    if any(i < size and i not in recorded for i in sealed_off):
        original = _derived_leaves(log, size) or []
        if len(original) != size or not all(i in sealed_off for i, (a, b)
                                            in enumerate(zip(now, original, strict=True))
                                            if a != b):
            return None
    original = list(original)
    for i, leaf in recorded.items():
        if i < size and i in sealed_off:
            original[i] = leaf
    return original


def needs_derived(incidents: Incidents, size: int) -> bool:
    """Does telling the original leaves of the first ``size`` lines need
    the derived data (an incident below ``size`` carries no leaves)?"""
    return any(i < size and i not in incidents.leaves for i in incidents.lines)


def _derived_leaves(log: LogReading, size: int) -> list[bytes] | None:
    derived = log.storage.derived()
    if derived is None:
        return None
    try:
        with derived:
            if derived.covered() < size:
                return None
            return derived.hashes().leaf_hashes(size)
    except (OSError, EOFError):
        return None


def _derived_holds(log: LogReading, leaves: list[bytes], end: int) -> bool:
    """Does the derived data hold the tree of ``leaves`` -- every stored
    hash, and the end offset of every line, over lines ending at ``end`` --
    and nothing else? (A database computes its own: its root is compared.)"""
    from vault.audit._tree import CompactRange, tree_root

    derived = log.storage.derived()
    if derived is None:
        return False
    size = len(leaves)
    try:
        with derived:
            covered = derived.covered()
            if covered < size or derived.end_of(size) not in (end, None):
                return False
            if not derived.writable:
                return hmac.compare_digest(derived.hashes().root(size), tree_root(leaves)) \
                    and _grown(log, derived, _range_of(leaves), end, covered)
            rng, offset = CompactRange(), 0
            source = log.storage.read(0, 0, LogEnd(size, None))
            try:
                for block in source:
                    block = block[: size - rng.size]
                    if not block:
                        break
                    at = rng.size
                    held = _holds(derived, rng, leaves[at: at + len(block)], block, offset)
                    if held is None:
                        return False
                    offset = held
            finally:
                source.close()
            return rng.size == size and _grown(log, derived, rng, end, covered)
    except (OSError, EOFError):
        return False


def _derived_ok(log: LogReading, tree: TreeResult, checkpoints: list[Checkpoint]) -> bool:
    """Does the derived data serve this tree (roots at every checkpoint and
    at the end, the end offset)? O(log n) reads per root."""
    derived = log.storage.derived()
    if derived is None:
        return True  # nothing derived: nothing to disagree
    try:
        with derived:
            # Read before the hashes: what it covers, they hold (a writer
            # adds hashes before the offsets that count them).
            covered = derived.covered()
            if covered < tree.size:
                return False
            hashes = derived.hashes()
            end = derived.end_of(tree.size)
            if end is not None and end != tree.end and log.storage.can_tear:
                return False
            # The newest checkpoint and the end: what proofs are made against.
            newest = [(c.size, c.root) for c in checkpoints[-1:]]
            for size, root in [*newest, (tree.size, tree.root)]:
                if 0 < size <= tree.size and not hmac.compare_digest(hashes.root(size), root):
                    return False
            return _grown(log, derived, tree.range, tree.end, covered)
    except (OSError, EOFError):
        return False


def _grown(log: LogReading, derived: DerivedStore, rng: CompactRange, end: int,
           covered: int) -> bool:
    """Derived data covering ``covered`` lines, more than the ``rng.size``
    (ending at ``end``) this verification read: lines appended since, by
    anyone working meanwhile -- an append adds its lines before the derived
    data that describes them, so the log read now holds them. Held to those
    lines: the root and end offset over them agree, else it describes lines
    the log does not hold (§6) -- and so does every stored hash and end
    offset it holds for them: a leaf hash changed there under an intact
    subtree node passes the root alone, and the next writer keeps what it
    finds. Without a lock: verification stops nobody."""
    if covered == rng.size:
        return True
    rng, offset = rng.copy(), end
    source = log.storage.read(rng.size, end, LogEnd(covered, None))
    try:
        for block in source:
            block = block[: covered - rng.size]
            if not block:
                break
            held = _holds(derived, rng, [leaf_hash(line) for line in block], block, offset)
            if held is None:
                return False
            offset = held
            if rng.size == covered:
                break
    finally:
        source.close()
    return (rng.size == covered and derived.end_of(covered) in (offset, None)
            and hmac.compare_digest(derived.hashes().root(covered), rng.root()))


def _holds(derived: DerivedStore, rng: CompactRange, leaves: list[bytes], block: list[bytes],
           offset: int) -> int | None:
    """Does the derived data hold, after ``rng``'s lines (ending at
    ``offset``), the stored hashes ``leaves`` add and the end offsets of the
    lines of ``block``? ``rng`` is extended with them; the end offset after
    them, or None."""
    from vault.audit._tree import stored_hash_count, stored_order

    at, at_hash = rng.size, stored_hash_count(rng.size)
    stored = stored_order(leaves, rng)
    ends = []
    for line in block:
        offset += len(line) + 1
        ends.append(offset)
    return offset if derived.holds(at_hash, stored, at, ends) else None


def _range_of(leaves: list[bytes]) -> CompactRange:
    from vault.audit._tree import CompactRange

    rng = CompactRange()
    for leaf in leaves:
        rng.append(leaf)
    return rng


def _repair(log: LogReading, tree: TreeResult | None, original: list[bytes] | None = None,
            sealed_off: Collection[int] = ()) -> str:
    """Rebuild the derived data from the log, as a writer would (§6);
    with the ``original`` leaves of ``tree``'s lines (§11.3) where they
    differ from the lines' own, as a writer whose tip was built before the
    damage does (``sealed_off``: their lines)."""
    derived = log.storage.derived()
    writable = derived is not None and derived.writable
    if derived is not None:
        derived.close()
    if not writable:
        return "the derived hash data does not match the log (the database computes it)"
    try:
        with log.storage.exclusive():
            tip = tree.tip() if tree else log._tip
            leaves: dict[int, bytes] = {}
            if tree is not None and original is not None:
                tip = _original_tip(tree, original)
                leaves = {i: original[i] for i in sealed_off if i < len(original)}
            turn = Turn(log.storage, tip, 0, rebuild=True, originals=lambda: leaves)
            turn.close()
    except (VaultError, OSError) as e:
        what = e.message if isinstance(e, VaultError) else (e.strerror or type(e).__name__)
        return f"the derived hash and index data do not match the log; not rebuilt: {what}"
    return turn.notes[0] if turn.notes else "the derived hash and index data were rebuilt"


def _original_tip(tree: TreeResult, original: list[bytes]) -> TrustedTip:
    """The tip of ``tree``'s lines with their ``original`` leaves."""
    from vault.audit._tree import CompactRange

    rng = CompactRange()
    for leaf in original:
        rng.append(leaf)
    return TrustedTip.of(rng, tree.end, tree.last_leaf)


def _prove_consistency(log: LogReading, trusted: Checkpoint | None,
                       checkpoints: list[Checkpoint]) -> bool:
    """Check the external checkpoint against the newest stored one with a
    consistency proof from the derived hashes, as an auditor without the log
    would. Both roots were recomputed from the lines already, so a proof that
    fails only says the derived data is damaged: rebuilt once, else no proof."""
    if trusted is None or not checkpoints or not 0 < trusted.size <= checkpoints[-1].size:
        return False
    from vault.audit._prover import consistency

    newest = checkpoints[-1]
    for attempt in range(2):
        try:
            proof = consistency(log, trusted.size, newest.size)
            verify_consistency(trusted.size, newest.size, proof, trusted.root, newest.root)
        except (VaultError, ValueError, EOFError, OSError):
            if attempt == 0 and trusted.size < newest.size:
                log.notes.append(_repair(log, None))
                continue
            return False
        return True
    return False


def _missing_signer(log: LogReading, size: int, checkpoints: list[Checkpoint]) -> list[str]:
    out = []
    if log.checkpoint_signer is None:
        out.append("this process has no checkpoint key: it cannot sign checkpoints")
    newest = checkpoints[-1].size if checkpoints else 0
    every = log.checkpoint_every
    if every and size - newest >= every:
        out.append(f"{size - newest} lines follow the newest checkpoint ({newest}): "
                   f"checkpoints are missing (one is due every {every} lines)")
    return out
