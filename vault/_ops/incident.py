"""Containing damage to the audit log: an officer's incident record
(docs/FORMAT.md §14.8, docs/AUDIT.md §11.3, docs/DESIGN.md §9.3).

Someone with write access to the log's storage can damage lines (an
inserted or altered line in a folder log; the database refuses such rows).
The evidence stays where it is -- nothing is ever rewritten or removed --
and an administrator declares, in a signed record of their own, which lines
are damaged and why. From then on the vault's verification reports those
lines as a known incident instead of failing, the replay ignores what they
say, and every later record still commits to them. Only lines that show
damage on the declaring machine may be declared (:func:`_damaged`): what
an honest line records is nobody's to undo by calling it damaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from vault._ops.discipline import attempt, authorise, check_free_text, complete
from vault._text import says_something
from vault._trust._statement import MAX_INCIDENT, MAX_INCIDENT_LEAVES
from vault.errors import AuditIntegrityError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.approved import Approved
    from vault._ops.session import Session
    from vault.audit import TrustedTip
    from vault.audit._checkpoint import Checkpoint

__all__ = ["check_range", "declare_incident"]

_HINT = ("declare every damaged line, or compare the log with a checkpoint kept outside "
         "(docs/DEPLOYMENT.md §14); a log rolled back is restored from a backup")
_UNDAMAGED_HINT = (
    "declare only the lines 'vault audit verify' and 'vault doctor' name, with the rest of a "
    "run whose signature fails; a line that differs only from what a machine verified is "
    "declared from that machine, or with the checkpoint kept outside (--checkpoint; "
    "docs/DEPLOYMENT.md §14)")
# Replay findings that are no damage of their line: a record refused because
# an incident sealed off what it depends on, a history an incident explained.
_NO_DAMAGE = frozenset({"sealed off", "history"})


def check_range(first: int, last: int) -> None:
    if type(first) is not int or type(last) is not int or not 0 <= first <= last:
        raise UsageError("an incident names lines FIRST to LAST, with 0 <= FIRST <= LAST")
    if last - first >= MAX_INCIDENT:
        raise UsageError(f"an incident seals off at most {MAX_INCIDENT:,} lines at once")


def declare_incident(s: Session, first: int, last: int, reason: str,
                     approved: Approved | None = None,
                     verified: TrustedTip | None = None,
                     known: TrustedTip | None = None,
                     checkpoint: bytes | None = None,
                     held: Mapping[int, bytes] | None = None) -> int:
    """Seal off lines ``first`` to ``last`` (inclusive); returns the
    incident record's number. ``approved``: where a two-person rule covers
    ``administer``, approvals of an ``incident`` request for those lines.
    ``verified``: what the declaring machine verified (its trusted tip,
    whether or not the log stopped extending it) when that covers a
    declared line; the lines must explain the whole change below it.
    ``checkpoint``: a signed checkpoint the officer kept outside the vault
    (verified with the pinned log key); the log must be consistent with it
    once the lines are sealed off, as 'verify' holds it. The record carries
    the leaf hashes the lines had when written when this machine can
    establish them (:func:`_original_leaves`) from a root it trusts by
    itself: ``known``, the tip its own state folder trusts (``verified``,
    else the machine's trusted tip -- never the tip of ``s``, a fresh
    replay of the log as it is now), or ``checkpoint``. ``held``: the
    leaves ``known``'s tree holds at the lines sealed off on that machine
    (its own: ``TrustedState.tip_leaves``), which it is held to there --
    never what those lines say now, which anyone may rewrite, nor the
    fresh replay's. A declared line that shows no damage here refuses the
    declaration (:class:`UsageError`, :func:`_damaged`), the attempt
    recorded as failed."""
    check_range(first, last)
    check_free_text(reason, "reason")
    if not says_something(reason) or len(reason) > 2000:
        raise UsageError("give the reason for the record (1 to 2000 characters)")
    known = verified or known
    kept = _kept(s, checkpoint) if checkpoint is not None else None
    size = s.log.tip().size
    if last >= size:
        raise UsageError(f"the audit log has {size} lines; line {last} does not exist")
    if kept is not None and kept.size > size:
        raise AuditIntegrityError(
            f"the audit log was cut back to {size} lines below the {kept.size} of the "
            "checkpoint given: an incident does not explain a rollback",
            kind="truncated", seq=size, hint=_HINT)
    # Before anything is appended: an append may rebuild the derived data.
    trusted = [(t, tree) for t, tree in ((kept, None), (known, held)) if t is not None]
    leaves = _original_leaves(s, first, last, trusted)
    state: dict[str, object] = {"from": first, "to": last, "reason": reason}
    if leaves is not None:
        state["leaves"] = leaves
    with attempt(s, "incident") as att:
        if approved:
            approved.bind("incident", details={"from": first, "to": last})
        authorise(s, att, "administer", None, approved=approved,
                  note=f"declare lines {first} to {last} damaged: {reason}")
        if verified is not None or checkpoint is not None:
            # After the first append: it brought the derived data in step
            # with the lines, as the machine will find it (vault/audit/_writer.py).
            _explains(s, verified, size, range(first, last + 1), leaves, checkpoint, held)
        _damaged(s, range(first, last + 1), leaves, known, checkpoint, held)
        complete(s, [att], [{"incident": state}], reason=reason)
    sealed = s.trusted.store.sealed_off()
    if any(seq not in sealed for seq in range(first, last + 1)):
        from vault.errors import IntegrityError

        raise IntegrityError("the incident was recorded but does not count",
                             hint="'vault doctor' names the reason")
    return s.log.tip().size - 1


def _kept(s: Session, note: bytes) -> Checkpoint:
    """The checkpoint the officer kept outside, verified with the key
    vault.json pins."""
    from vault.audit import NoteVerifier
    from vault.audit._checkpoint import open_checkpoint
    from vault.errors import CheckpointError

    verifier = NoteVerifier.from_key(s.manifest.log_key)
    try:
        return open_checkpoint(note, [verifier], origin=s.log.origin or verifier.name)
    except CheckpointError as e:
        raise AuditIntegrityError(f"the checkpoint given does not verify: {e}",
                                  kind="checkpoint") from e


def _original_leaves(s: Session, first: int, last: int,
                     trusted: list[tuple[TrustedTip | Checkpoint, Mapping[int, bytes] | None]],
                     ) -> list[str] | None:
    """The leaf hashes lines ``first`` to ``last`` had when written (hex),
    or None when this machine cannot establish them. Taken from the derived
    data, anyone's to write, and believed only if -- with the lines' own
    leaves elsewhere, and those earlier incidents carry for other lines --
    they reproduce a root this machine trusts by itself (``trusted``: its
    own trusted tip, a checkpoint the officer kept outside -- each with
    the leaves its tree holds at lines sealed off before, when they may
    differ from those incidents carry: the machine's own tip leaves).
    Never a stored checkpoint: any folder writer can read the log key and
    sign one over leaves of their choosing (docs/AUDIT.md §11.3). Leaves an
    earlier incident carries for the declared lines are not used: this
    declaration may be correcting them."""
    import hmac

    from vault.audit._tree import tree_root
    from vault.audit._verify_end import originals

    if last - first + 1 > MAX_INCIDENT_LEAVES:
        return None
    declared = range(first, last + 1)
    sealed = frozenset(s.trusted.store.sealed_off()).union(declared)
    roots = {t.size: (t.root, tree) for t, tree in trusted if t.size > last}
    if not roots:
        return None
    originals_now = s.trusted.store.original_leaves()
    for size in sorted(roots, reverse=True):  # derived data may cover the smaller only
        root, tree = roots[size]
        recorded = {i: h for i, h in {**originals_now, **(tree or {})}.items()
                    if i not in declared}
        with s.log._reading():
            found = originals(s.log, size, sealed, recorded)
            now = _leaves_now(s, first, last) if found is not None else None
        if found is not None and hmac.compare_digest(tree_root(found), root):
            # A root made after the damage (a machine that first read the
            # log since) reproduces the lines as they are: it tells no
            # original, and the lines' current leaves are none (FORMAT.md
            # §14.8) -- recorded, they would stand against every root signed
            # before the damage.
            if now == found[first:last + 1]:
                return None
            return [h.hex() for h in found[first:last + 1]]
    return None


def _leaves_now(s: Session, first: int, last: int) -> list[bytes]:
    """The leaf hashes lines ``first`` to ``last`` have now."""
    from vault.audit._hashing import leaf_hash
    from vault.audit._storage import LogEnd

    source = s.log.storage.read(0, 0, LogEnd(last + 1, None))
    try:
        return [leaf_hash(line) for block in source for line in block][first:last + 1]
    finally:
        source.close()


def _explains(s: Session, verified: TrustedTip | None, size: int, lines: range,
              leaves: list[str] | None, checkpoint: bytes | None = None,
              held: Mapping[int, bytes] | None = None) -> None:
    """Would the machine that verified ``verified`` accept the log (of
    ``size`` lines before this declaration) once ``lines`` are sealed off
    -- and 'verify' with the ``checkpoint`` kept outside? It does
    (vault/_trust/trusted.py) when a new incident seals off a line it had
    seen and the original leaves (the lines' own, those incident records
    carry at sealed-off lines) reproduce the root it verified: the same
    check, made before the incident is recorded. A log cut back below what
    it verified, or changed at lines not declared, is refused: an incident
    must never carry a rollback or another change past this machine.
    ``leaves``: those the declared lines had when written (hex), if the
    record is to carry them. ``held``: the leaves ``verified``'s tree holds
    at lines sealed off on that machine (held to as
    :func:`~vault._ops.verify.confirm_history` says)."""
    from vault._ops.verify import confirm_history

    seen = verified.size if verified is not None else 0
    if verified is not None and size < seen:
        raise AuditIntegrityError(
            f"the audit log was cut back to {size} lines below the {seen} this machine "
            "verified before: an incident does not explain a rollback",
            kind="truncated", seq=size, hint=_HINT)
    what = f"the {seen} lines this machine verified before" if verified is not None \
        else "the checkpoint given"
    try:
        if verified is not None and lines.start >= seen:
            raise AuditIntegrityError("no line this machine verified is declared",
                                      kind="modified", seq=seen - 1)
        # Held to this machine's tip and the checkpoint given, never to the
        # stored checkpoints: any holder of the log key signs those, and one
        # signed before damage no original leaf can be told for (the derived
        # data rebuilt since) would refuse every declaration, on every
        # machine (DEPLOYMENT.md §14 sets them aside).
        confirm_history(s, verified, lines, dict(zip(
            lines, (bytes.fromhex(h) for h in leaves or ()), strict=False)), checkpoint,
            stored=False, held=held)
    except AuditIntegrityError as e:
        raise AuditIntegrityError(
            f"the audit log differs from {what} at lines the incident does not cover "
            f"({e.message}): it was not declared", kind=e.kind, seq=e.seq, hint=_HINT) from e


def _damaged(s: Session, lines: range, leaves: list[str] | None,
             known: TrustedTip | None, checkpoint: bytes | None,
             held: Mapping[int, bytes] | None) -> None:
    """Does every declared line show damage on this machine? Sealing off a
    line makes what it says count for nothing, on every machine: a line
    that verifies would let one administrator undo anyone's decision (a
    reclassification, a shred, a rotation, grants) without the right to
    make it (docs/AUDIT.md §11.3). A line shows damage when the vault's
    own verification, with the lines counted as sealed off, finds it: the
    reading rules break on it (no record, torn, out of place), it is in the
    run of a signature that does not verify as the lines stand (a bad
    signature, a signer the policy does not give that name), or it differs
    from a root this machine trusts by itself (its trusted tip, with the
    leaves its tree holds, and the ``checkpoint`` kept outside; never a
    stored one, which any holder of the log key may sign) -- or the
    replay refused its record (a signer not entitled to it). Raises
    :class:`UsageError` naming the lines that show none."""
    import contextlib

    from vault._ops.verify import confirm_history

    found: list[range] = []
    # Raised for other damage, or a change past this machine: what each
    # line showed stands all the same.
    with contextlib.suppress(AuditIntegrityError):
        confirm_history(s, known, lines, _by_line(lines, leaves), checkpoint, stored=False,
                        held=held, damage=found)
    clean = set(lines)
    for seq, kind, _ in s.trusted.store.findings():
        if kind not in _NO_DAMAGE:
            clean.discard(seq)
    for stretch in found:
        clean.difference_update(range(max(stretch.start, lines.start),
                                      min(stretch.stop, lines.stop)))
    if clean:
        spans = _spans(sorted(clean))
        one = len(clean) == 1
        raise UsageError(
            f"{spans} {'verifies' if one else 'verify'} in place and "
            f"{'differs' if one else 'differ'} from nothing this machine verified: an "
            "incident seals off only damaged lines", hint=_UNDAMAGED_HINT)


def _by_line(lines: range, leaves: list[str] | None) -> dict[int, bytes]:
    """The declaration's leaves by line; none where they are malformed (the
    record then does not count, FORMAT.md §14.8)."""
    try:
        return dict(zip(lines, (bytes.fromhex(h) for h in leaves or ()), strict=False))
    except (TypeError, ValueError):
        return {}


def _spans(seqs: list[int]) -> str:
    """Sorted line numbers as "line 4", "lines 4 to 6", "lines 2, 4 to 6"."""
    spans: list[tuple[int, int]] = []
    for seq in seqs:
        if spans and spans[-1][1] == seq - 1:
            spans[-1] = (spans[-1][0], seq)
        else:
            spans.append((seq, seq))
    shown = [str(a) if a == b else f"{a} to {b}" for a, b in spans[:5]]
    more = f" and {len(spans) - 5} more" if len(spans) > 5 else ""
    return ("line " if len(seqs) == 1 else "lines ") + ", ".join(shown) + more
