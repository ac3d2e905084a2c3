"""Filtering records for people (docs/AUDIT.md §14)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from vault.audit._record import AuditRecord

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from vault.audit._scan import Scan

__all__ = ["attributed", "in_window", "select"]

KeyLookup = Callable[[str | None, str, int], "Ed25519PublicKey | None"]
#: (fingerprint, seq) -> the name and key of the user the policy in force at
#: ``seq`` gave that signing key, if any
SignerLookup = Callable[[str, int], "tuple[str, Ed25519PublicKey] | None"]


def select(
    records: Iterable[AuditRecord],
    *,
    actor: str | None = None,
    doc: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[AuditRecord]:
    """Records matching every filter given (``since`` inclusive, ``until`` not)."""
    for record in records:
        if actor is not None and record.actor != actor:
            continue
        if doc is not None and record.doc != doc:
            continue
        if action is not None and record.action != action:
            continue
        if outcome is not None and record.outcome != outcome:
            continue
        if (since is not None or until is not None) and not in_window(record, since, until):
            continue
        yield record


def in_window(record: AuditRecord, since: datetime | None, until: datetime | None) -> bool:
    """Is the record's time in [since, until)? A time that matches the
    pattern but is no date (month 13, written by a modified client) is in
    no window: it must not stop the listing of everyone else's."""
    try:
        when = record.datetime
    except ValueError:
        return False
    return (since is None or when >= since) and (until is None or when < until)


def attributed(scan: Scan, key_lookup: KeyLookup, shown: Callable[[AuditRecord], bool],
               signer_lookup: SignerLookup | None = None,
               sealed_off: Collection[int] = frozenset(),
               ) -> Iterator[tuple[AuditRecord, bool, str | None]]:
    """The records ``shown`` picks, each with whether it is its actor's
    (§14): its run's signature verifies with the key ``key_lookup`` gives
    the signer's name before the run's first line, and the record carries
    that signer's name and key (as the replay judges a run, DESIGN.md §8.2).
    A name in a record is a claim until then: anyone who can append can
    write another's. Third, who signed it: its name when it is its actor's;
    else, with ``signer_lookup``, the user whose key the record names, if
    that key verifies its run (someone who signed under another's name);
    else None. Only runs holding a record shown are verified; damage is
    raised as :meth:`AuditLog.records` raises it, but on lines an incident
    sealed off (``sealed_off``, every line of the damage): those are passed
    over, as verification passes over them (§11.3)."""
    from vault.audit._chain import verify_record
    from vault.audit._incidents import all_sealed_off

    run: list[AuditRecord] = []
    with scan:
        for item in scan:
            if item.problem is not None:
                if all_sealed_off(sealed_off, range(item.seq, item.seq + item.count)):
                    run = []  # a run broken by the damage is no longer one
                    continue
                raise item.problem
            record = item.record
            if record is None:
                continue
            if record.signature is None:
                run.append(record)  # yielded with the record that signs it
                continue
            whole, run = [*run, record], []
            picked = [r for r in whole if shown(r)]
            if not picked:
                continue
            key = key_lookup(record.actor, record.actor_key, item.covers.start)
            signed = (key is not None and item.chain is not None
                      and verify_record(record, item.chain, key))
            signer = record.actor if signed else None
            if not signed and signer_lookup is not None and item.chain is not None:
                found = signer_lookup(record.actor_key, item.covers.start)
                if found is not None and verify_record(record, item.chain, found[1]):
                    signer = found[0]
            for r in picked:
                own = r.actor_key == record.actor_key
                yield (r, signed and own and r.actor == record.actor,
                       signer if own else None)
