"""Changing documents: reclassify, declassify, shred (docs/DESIGN.md §6.4).

Relabelling writes a new stored version of the document: a new label
statement signed by the caller (carrying the old content commitment), the
file key wrapped to the current clean key of the new class, the metadata
stanza and the payload copied byte for byte -- nothing is re-encrypted. The
new version counts once its completion record names it; then the old one
is removed. A crash in between leaves the old version current, and a file
the log never recorded, which ``doctor --repair`` removes; an old version
that cannot be removed is left over, said, for the same repair
(vault/_ops/replaced.py).

Shredding is decided and recorded first; from that record on the document
is gone for the vault, and its file -- every wrapped copy of its file key
-- is then destroyed (docs/DESIGN.md §6.5).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from vault._ops.discipline import (
    Attempt,
    approvers,
    attempt,
    authorise,
    check_free_text,
    complete,
    complete_wrapped,
    record,
)
from vault._ops.keys import usable_key
from vault._ops.read import class_identities, hidden_by_policy
from vault._ops.replaced import remove_version
from vault._ops.seal import doc_state, new_version, rewrap_stanzas
from vault._results import DocumentInfo
from vault._sealed.label import LabelStanza
from vault._sealed.reading import Sealed, read_sealed, unlock
from vault._sealed.writing import write_rewrapped
from vault._trust.classes import LabelClass
from vault.age import Header, Stanza
from vault.errors import (
    AuditWriteError,
    DeniedError,
    IntegrityError,
    NoKeyError,
    PartialError,
    StorageError,
    UsageError,
    VaultError,
)
from vault.policy._labels import carried_declassify_on

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.approved import Approved
    from vault._ops.session import Session
    from vault.policy import Label

__all__ = ["Changes", "declassify", "reclassify", "relabel", "rewrap_document", "shred"]


def check_unchanged(s: Session, sealed: Sealed) -> None:
    """Under the vault lock: the document is still the version read before
    the decision (another process may have shredded or relabelled it)."""
    row = s.trusted.doc(sealed.doc_id)
    if row is None or row.shredded:
        raise UsageError(f"document {sealed.doc_id} was shredded while this operation ran",
                         hint="'vault ls' lists the documents you may see")
    if row.header != sealed.row.header:
        raise StorageError(f"document {sealed.doc_id} changed while this operation ran",
                           hint="run the command again")


def rewrap_document(s: Session, att: Attempt, sealed: Sealed, f: BinaryIO, file_key: bytes,
                    statement: dict[str, Any], inputs: dict[str, Any],
                    cls: LabelClass) -> Sealed:
    """Under the write lock: write the document again, wrapped to the
    current clean key of ``cls`` with the label ``statement`` (signed now
    unless it is the current one), complete ``att`` with it, then remove the
    old version."""
    me = s.me()
    with s.lock():
        check_unchanged(s, sealed)
        ck = usable_key(s, cls)
        keep = statement == sealed.label.statement
        label = LabelStanza.carry(sealed.label) if keep else LabelStanza(statement, me)
        stanzas = rewrap_stanzas(s, ck, file_key, sealed)
        header = Header.seal([*stanzas, *label.wrap(file_key), sealed.meta], file_key)
        version = new_version()
        f.seek(sealed.header_size)
        with s.backend.write_document(sealed.doc_id, version) as out:
            write_rewrapped(f, out, header, sealed.label.content)
        try:
            complete_wrapped(s, [att], [doc_state(sealed.doc_id, version, header, ck,
                                                  statement, inputs)], ck)
        except BaseException:
            if not att.completed:  # once its record was tried, it may count: it stays
                with contextlib.suppress(VaultError, OSError):
                    s.backend.delete_document(sealed.doc_id, version)
            raise
        remove_version(s, sealed.doc_id, sealed.row.version)  # it counts: best effort
        new, g = read_sealed(s.backend, s.trusted, sealed.doc_id)
        g.close()
    return new


def relabel(s: Session, att: Attempt, sealed: Sealed, f: BinaryIO, file_key: bytes, new: Label,
            action: str, inputs: dict[str, Any], approved_by: list[str]) -> Sealed:
    """Sign ``new`` over the document's content and write it, all under the
    write lock: the label names the policy version in force when it is
    recorded, and a version installed since the decision decides again
    (with the approvers the decision verified)."""
    old = sealed.label.statement
    me = s.me()
    with s.lock():
        decision = s.trusted.policy.decide(s.actor().decides_as, action, sealed.label.label,
                                           inputs={**inputs, "new_label": new,
                                                   "approvers": approved_by})
        if not decision.allowed:
            raise DeniedError(f"{action} denied by the policy installed meanwhile: "
                              f"{'; '.join(decision.reasons)}", decision=decision)
        statement = {"vault": s.manifest.vault_id, "doc": sealed.doc_id,
                     "label": new.to_dict(), "sealed_at": old["sealed_at"],
                     "sealed_by": old["sealed_by"],
                     "signer": {"name": s.actor().name, "signing_key": me.signing_public},
                     "policy": s.trusted.policy.hash, "action": action,
                     "content": old["content"]}
        return rewrap_document(s, att, sealed, f, file_key, statement, inputs,
                               LabelClass.of(new))


@dataclasses.dataclass(frozen=True)
class Changes:
    """How a reclassification changes the compartments and caveats: a
    whole new set (``compartments``/``caveats``), or names added to and
    removed from the current one."""

    compartments: Sequence[str] | None = None
    caveats: Sequence[str] | None = None
    add_compartments: Sequence[str] = ()
    remove_compartments: Sequence[str] = ()
    add_caveats: Sequence[str] = ()
    remove_caveats: Sequence[str] = ()

    def check(self) -> None:
        for what, whole, add, remove in (
                ("compartments", self.compartments, self.add_compartments,
                 self.remove_compartments),
                ("caveats", self.caveats, self.add_caveats, self.remove_caveats)):
            if whole is not None and (add or remove):
                raise UsageError(f"give the new {what} as a whole set, or what to add and "
                                 "remove, not both")
            if set(add) & set(remove):
                raise UsageError(f"the same {what[:-1]} is both added and removed: "
                                 f"{sorted(set(add) & set(remove))[0]}")

    def apply(self, old: Label) -> tuple[set[str], set[str]]:
        def one(current: frozenset[str], whole: Sequence[str] | None, add: Sequence[str],
                remove: Sequence[str], what: str) -> set[str]:
            if whole is not None:
                return set(whole)
            missing = sorted(set(remove) - current)
            if missing:
                raise UsageError(f"the document has no {what} {missing[0]} to remove",
                                 hint=f"its {what}s: {', '.join(sorted(current)) or 'none'}")
            return (set(current) | set(add)) - set(remove)

        return (one(old.compartments, self.compartments, self.add_compartments,
                    self.remove_compartments, "compartment"),
                one(old.caveats, self.caveats, self.add_caveats, self.remove_caveats,
                    "caveat"))


def reclassify(s: Session, doc_id: str, *, level: str | None, changes: Changes,
               justification: str | None, declassify_on: Any, embargo_until: Any,
               approved: Approved | None = None) -> DocumentInfo:
    changes.check()
    check_free_text(justification, "justification")
    with attempt(s, "reclassify", doc_id) as att:
        if approved:
            justification = approved.justification(justification)
        sealed, f = read_sealed(s.backend, s.trusted, doc_id, current=True)
        with f:
            actor = s.actor()  # under the policy the read may have caught up with
            old = att.label = sealed.label.label
            compartments, caveats = changes.apply(old)
            new = s.trusted.policy.make_label(
                actor=actor.decides_as, level=level or old.level,
                compartments=compartments, caveats=caveats,
                classified_by=actor.name, reason=justification or None,
                created=datetime.now(UTC),
                declassify_on=declassify_on if declassify_on is not None
                else carried_declassify_on(old),
                embargo_until=embargo_until if embargo_until is not None else old.embargo_until)
            if _same_reading(old, new):
                # It would only put the caller's name and reason on another's
                # classification (a clerk may raise, and this lowers nothing).
                raise UsageError(f"document {doc_id} already has this label",
                                 hint="give the level, compartments, caveats or dates to "
                                      f"change; 'vault info {doc_id}' shows its label")
            return _change_label(s, att, sealed, f, "reclassify", new, justification,
                                 approved)


def _same_reading(old: Label, new: Label) -> bool:
    """Does ``new`` say what ``old`` says of who may read the document and
    when: the same level, compartments, caveats and embargo, and a
    declassify-on due at the same instant (or, never due, written the same)?"""
    if (old.level, old.compartments, old.caveats, old.embargo_until) != (
            new.level, new.compartments, new.caveats, new.embargo_until):
        return False
    due = old.declassify_at()
    if due is not None or new.declassify_at() is not None:
        return due == new.declassify_at()
    return old.declassify_on == new.declassify_on


def declassify(s: Session, doc_ids: Sequence[str] | None, *, due: bool,
               justification: str | None,
               approved: Approved | None = None) -> list[DocumentInfo]:
    """Declassify the given documents, or with ``due`` every document whose
    declassify-on instant is now or before (POLICY.md §5.3): chosen by the
    verified log, and each released only if the label it is decided on is
    due too (it may have been relabelled meanwhile). Then the
    documents the caller may not or cannot declassify are skipped, and one
    that fails otherwise (spoiled, shredded or changed meanwhile) stops only
    itself: each attempt is recorded, and :class:`PartialError` names the
    failures after the others were declassified. Of several documents
    named, likewise each failure (a denial too) stops only itself; one
    document named raises its own error."""
    if due == (doc_ids is not None):
        raise UsageError("name documents to declassify, or ask for those that are due")
    check_free_text(justification, "justification")
    if approved and (due or len(doc_ids or ()) != 1):
        raise UsageError("approvals cover one document", hint="declassify it on its own")
    now: datetime | None = None
    if due:
        now = datetime.now(UTC)  # one instant for the whole run: chosen and decided by it
        with s.lock(shared=True):  # the documents the log says are due now
            doc_ids = [r.doc_id for r in s.trusted.docs(due_by=now)]
    assert doc_ids is not None
    several = due or len(doc_ids) > 1
    done: list[DocumentInfo] = []
    failed: list[tuple[str, VaultError]] = []
    for doc_id in doc_ids:
        try:
            done.append(_declassify_one(s, doc_id, justification, approved, now))
        except AuditWriteError:
            raise  # nothing more can be recorded, so nothing more is done
        except _NotDue:
            continue  # relabelled since it was chosen: not among the due ones any more
        except (DeniedError, NoKeyError) as e:
            if not several:
                raise
            if not due:  # named: the caller meant it, so it is said
                failed.append((doc_id, e))
        except VaultError as e:
            # Anyone who can write the folder can spoil one due document (or
            # shred one meanwhile): it must not keep every later one from
            # its release, run after run.
            if not several:
                raise
            failed.append((doc_id, e))
    if failed:
        what = "due document" if due else "document"
        raise PartialError(f"{len(failed)} of {len(doc_ids)} {what}"
                           f"{'s' * (len(doc_ids) != 1)} not declassified", done, failed,
                           hint="the others were declassified; 'vault doctor' names a spoiled "
                                "document: restore it from a backup or shred it, then run "
                                "this again")
    return done


class _NotDue(UsageError):
    """A document chosen as due whose label, read to decide on, is not."""


def _declassify_one(s: Session, doc_id: str, justification: str | None,
                    approved: Approved | None, due_by: datetime | None = None) -> DocumentInfo:
    """Declassify one document; with ``due_by`` (``declassify --due``) only
    if the label read now falls due by then: the state chose it, but the
    label is what is decided on, and another writer may have put its
    declassify-on later since."""
    with attempt(s, "declassify", doc_id) as att:
        if approved:
            justification = approved.justification(justification)
        sealed, f = read_sealed(s.backend, s.trusted, doc_id, current=True)
        with f:
            actor = s.actor()  # under the policy the read may have caught up with
            old = att.label = sealed.label.label
            if due_by is not None and not _due(old, due_by):
                raise _NotDue(f"document {doc_id} is not due for declassification: its "
                              "label was changed since it was chosen")
            # The old label's derived-from is carried as it is, even text that
            # breaks the free-text rule: refusing would let whoever planted it
            # hold the document back, and the replay keeps carried text the
            # finding of the one who brought it in (DESIGN.md §13).
            new = s.trusted.policy.declassified_label(old).replace(
                classified_by=actor.name, reason=justification or None,
                created=datetime.now(UTC))
            return _change_label(s, att, sealed, f, "declassify", new, justification,
                                 approved)


def _due(label: Label, at: datetime) -> bool:
    """Is ``label`` due for declassification at ``at`` (POLICY.md §5.3)?"""
    when = label.declassify_at()
    return when is not None and when <= at


def _change_label(s: Session, att: Attempt, sealed: Sealed, f: BinaryIO, action: str,
                  new: Label, justification: str | None,
                  approved: Approved | None) -> DocumentInfo:
    """What reclassify and declassify share once the new label is built:
    the decision (with its approvals), then the new header."""
    old = sealed.label.label
    inputs: dict[str, Any] = {"justification": justification}
    note = f"new label {s.trusted.policy.format_label(new)}; justification: {justification}"
    if approved:
        approved.bind(action, att.doc, sealed.row.header, new_label=new)
    decision = authorise(s, att, action, old, inputs={**inputs, "new_label": new},
                         note=note, approved=approved)
    file_key, meta = unlock(sealed, class_identities(s, sealed), s.trusted)
    done = relabel(s, att, sealed, f, file_key, new, action, inputs, approvers(decision))
    # The metadata was decrypted to be carried into the new header, not to
    # be shown: whoever may not open the document as it now stands sees
    # none of it, as info shows it (a clerk may raise an embargoed
    # decision she may not read).
    hidden = hidden_by_policy(s, done.label.label)
    return DocumentInfo.of(done.label.statement, None if hidden else meta,
                           header_size=done.header_size, hidden=hidden, previous=old)


def shred(s: Session, doc_id: str, *, justification: str | None,
          approved: Approved | None = None) -> None:
    """Crypto-shredding (docs/DESIGN.md §6.5)."""
    check_free_text(justification, "justification")
    with attempt(s, "shred", doc_id) as att:
        if approved:
            justification = approved.justification(justification)
        sealed, f = read_sealed(s.backend, s.trusted, doc_id, current=True)
        f.close()
        att.label = sealed.label.label
        inputs = {"justification": justification}
        if approved:
            approved.bind("shred", doc_id, sealed.row.header)
        decided = authorise(s, att, "shred", sealed.label.label, inputs=inputs,
                            note=f"justification: {justification}; header sha256 "
                                 f"{sealed.row.header}", approved=approved)
        with s.lock():
            check_unchanged(s, sealed)
            decision = s.trusted.policy.decide(
                s.actor().decides_as, "shred", sealed.label.label,
                inputs={**inputs, "approvers": approvers(decided)})
            if not decision.allowed:  # a version installed since the decision says no
                raise DeniedError(f"shred denied by the policy installed meanwhile: "
                                  f"{'; '.join(decision.reasons)}", decision=decision)
            _destroy(s, att, sealed, inputs)


def _destroy(s: Session, att: Attempt, sealed: Sealed, inputs: dict[str, Any]) -> None:
    """Record the shred once every check that can show its file will not be
    destroyed has passed (the store runs them first: a planted link, its
    file gone), then destroy it. The record says the document was
    destroyed: a destruction that fails after it is an incident."""
    doc_id, version = sealed.doc_id, sealed.row.version
    recorded = False

    def decided() -> None:
        nonlocal recorded
        complete(s, [att], [{"shred": {"doc": doc_id, "inputs": inputs}}])
        recorded = True

    try:
        s.backend.shred_document(doc_id, version, sealed.header_size, decided=decided)
    except (OSError, VaultError) as e:
        if isinstance(e, VaultError) and not recorded:
            raise  # refused (a planted link), or the record itself failed
        why = e.message if isinstance(e, VaultError) else e.strerror or type(e).__name__
        if not recorded:  # its file gone (renamed away?) or not to be opened
            raise StorageError(f"document {doc_id}: its stored file cannot be destroyed "
                               f"({why}); it was not shredded",
                               hint="'vault doctor' says what is wrong with it") from None
        raise IntegrityError(f"document {doc_id}: its shred is recorded, but its stored "
                             f"version {version} was not destroyed ({why})",
                             hint="an administrator's 'vault doctor --repair' destroys it, or "
                                  "names what keeps it from doing so; treat it as an "
                                  "incident") from None


_ = (record, Stanza)
