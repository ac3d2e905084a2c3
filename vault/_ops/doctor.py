"""``doctor``: do documents, index, class keys, keyrings and audit log agree?
(docs/DESIGN.md §6.7)

Read-only checks need no identity (and then leave no audit record: records
are signed by their actor). ``repair`` needs an administrator; it rebuilds
the index from the document headers alone, deletes keyring entries that
belong to no class key, writes the pending grants of class keys the
repairer holds, and removes or finishes what killed writers left behind. It
never touches documents: a document that fails verification is reported,
for people to investigate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vault._ops.seal import grant_missing
from vault._results import DoctorReport
from vault._sealed.reading import Sealed, read_sealed, unlock
from vault._trust.keys import cleared_users
from vault.errors import IntegrityError, UsageError, VaultError
from vault.store.base import IndexRow

if TYPE_CHECKING:  # pragma: no cover
    from vault._vault import Vault

__all__ = ["doctor"]


def doctor(v: Vault, repair: bool) -> DoctorReport:
    if repair and v.identity is None:
        raise UsageError("repairing needs your identity (an administrator's)",
                         hint="pass --identity FILE or set VAULT_IDENTITY")
    report = DoctorReport()
    if v.identity is None:
        _check(v, report, repair=False)
        return report
    with v.attempt("doctor") as att:
        if repair:
            v.authorise(att, "administer", None, note="doctor --repair")
        else:
            v.record([att], "allowed", [], "read-only check")
        if repair:
            with v.lock():
                report.repaired += [f"removed leftover {p}" for p in v.backend.tidy()]
                _check(v, report, repair=True)
        else:
            _check(v, report, repair=False)
    return report


def _check(v: Vault, report: DoctorReport, *, repair: bool) -> None:
    try:
        v.class_keys.refresh()
        classes = v.class_keys.classes()
    except IntegrityError as e:
        report.problems.append(f"class keys: {e.message}")
        classes = []
    for gens in classes:
        ck = gens[-1]
        if ck.provisional:
            report.problems.append(
                f"class {ck.cls}: its key was made by {ck.created_by}, who is not cleared for "
                "it; run 'vault rotate'")
    rows = _documents(v, report)
    _index(v, report, rows, repair)
    _keyrings(v, report, classes, repair)
    _audit(v, report)


def _documents(v: Vault, report: DoctorReport) -> list[IndexRow]:
    for doc_id in v.backend.interrupted_shreds():
        report.problems.append(
            f"document {doc_id}: its shredding was interrupted and its wrapped keys may "
            f"remain; run 'vault doctor --repair' or 'vault shred {doc_id}' to finish it")
    rows = []
    for doc_id in v.backend.document_ids():
        try:
            sealed, f = read_sealed(v.backend, v.chain, doc_id)
            f.close()
        except (VaultError, OSError) as e:
            report.problems.append(f"document {doc_id}: {getattr(e, 'message', e)}")
            continue
        problem = _recipients_problem(v, sealed)
        if problem:
            report.problems.append(f"document {doc_id}: {problem}")
        rows.append(sealed.index_row())
    report.documents = len(rows)
    return rows


def _recipients_problem(v: Vault, sealed: Sealed) -> str | None:
    """With a key of the document's class, check what only the file key
    shows: that every recipient stanza belongs to the class or the recovery
    set (an insider holding the file key could add one)."""
    if v.identity is None:
        return None
    from vault._ops.read import identities_for

    ids = identities_for(v, sealed)
    if not ids:
        return None
    try:
        unlock(sealed, ids, v.class_keys, v.chain)
    except IntegrityError as e:
        return e.message
    except VaultError:
        return None  # no key after all: nothing more to check here
    return None


def _index(v: Vault, report: DoctorReport, rows: list[IndexRow], repair: bool) -> None:
    """Rows of documents rewritten since (a newer stamp), missing or left
    over are what an interrupted write leaves: refreshed, and noted. A row
    that differs from its document although the stamp matches was edited."""
    want = {r.doc_id: r for r in rows}
    try:
        have = {r.doc_id: r for r in v.backend.index.rows()}
    except VaultError as e:
        report.problems.append(f"index: {e.message}")
        if repair:
            _rebuild(v, report, rows)
        return
    stale = sorted(d for d in set(want) | set(have)
                   if d not in want or d not in have or want[d].stamp != have[d].stamp)
    edited = sorted(d for d in set(want) & set(have)
                    if want[d].stamp == have[d].stamp and want[d] != have[d])
    if repair and (stale or edited):
        _rebuild(v, report, rows)
        return
    for d in stale:
        if d in want:
            v.backend.index.put(want[d])
        else:
            v.backend.index.remove(d)
    if stale:
        report.notes.append(f"index: refreshed {len(stale)} out-of-date entries "
                            f"({_ids(stale)}), left by interrupted writes")
    if edited:
        report.problems.append(f"index: {len(edited)} entries were changed behind the "
                               f"vault's back ({_ids(edited)}); run 'vault doctor --repair'")


def _rebuild(v: Vault, report: DoctorReport, rows: list[IndexRow]) -> None:
    v.backend.index.rebuild(rows)
    report.repaired.append(f"index rebuilt from {len(rows)} document headers")


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:5]) + (", …" if len(ids) > 5 else "")


def _keyrings(v: Vault, report: DoctorReport, classes: list[Any], repair: bool) -> None:
    policy = v.policy
    by_key = {ck.key_id: ck for gens in classes for ck in gens}
    users = {u.recipient: u for u in policy.users.values()}
    for owner in v.backend.keyring_owners():
        for key_id in v.backend.keyring_entries(owner):
            ck = by_key.get(key_id)
            user = users.get(owner)
            who = user.name if user else f"recipient {owner}"
            if ck is None:
                if repair:
                    v.backend.delete_keyring_entry(owner, key_id)
                    report.repaired.append(f"removed keyring entry {key_id} of {who}: "
                                           "it belongs to no class key")
                else:
                    report.notes.append(f"keyring entry {key_id} of {who} belongs to no "
                                        "class key")
            elif user is None or not policy.dominates(user.clearance, ck.cls.label()):
                report.problems.append(f"{who} holds the key of {ck.cls} (generation "
                                       f"{ck.generation}) but is not cleared for it; "
                                       "run 'vault rotate'")
    for gens in classes:
        ck = gens[-1]
        if repair:  # e.g. a policy apply killed before it granted: finish what we can
            report.repaired += [f"granted {g}" for g in grant_missing(v, ck)]
        for user in cleared_users(policy, ck.cls):
            if v.backend.read_keyring_entry(user.recipient, ck.key_id) is None:
                report.problems.append(f"{user.name} is cleared for {ck.cls} but holds no "
                                       "key for it yet (a pending grant: 'vault rotate' or "
                                       "'vault doctor --repair' by someone who holds that "
                                       "key writes it)")


def _audit(v: Vault, report: DoctorReport) -> None:
    try:
        v.verify_audit()
    except VaultError as e:
        report.problems.append(f"audit log: {e.message}")
