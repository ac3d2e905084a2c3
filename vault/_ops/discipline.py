"""The audit discipline, written once (docs/DESIGN.md §6).

Every operation follows the same order:

1. read and verify what needs no key (the document's recorded version and
   label, its shape);
2. ask the policy, for the actor the caller's keys make them;
3. append the decision's record -- allowed, denied, or error -- and make it
   durable; if that fails, stop (fail closed);
4. only then unwrap keys, decrypt or change anything;
5. for an operation that changes the vault, append its completion record
   (``done``, with the state it changed) and only then make the change
   visible; one that fails after an allowed decision is completed as
   ``failed``.

Each attempt gets exactly one decision record, whatever is raised before it
(an unexpected exception is an ``error``, named by its type only: no path,
title or key material ever reaches a record).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vault._text import character_problem, free_character, is_text, printable, says_something
from vault._trust.trusted import OutOfPlace
from vault.errors import (
    AuditWriteError,
    DeniedError,
    IntegrityError,
    UsageError,
    VaultError,
)

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.approved import Approved
    from vault._ops.session import Session
    from vault._trust.classes import ClassKey
    from vault.policy import Decision, Label

__all__ = ["Attempt", "OutOfPlace", "approvers", "attempt", "attempts", "authorise",
           "check_free_text", "complete", "complete_wrapped", "record", "refuse_out_of_place"]

MAX_REASON = 2000
# Errors whose messages name no path, title or secret, by design of their
# raisers; anything else is recorded by its type alone.
_SPEAKING = ("IntegrityError", "LabelError", "HeaderError", "HMACError", "PayloadError",
             "ArmorError", "AuditIntegrityError", "NoKeyError", "NoIdentityMatchError",
             "DeniedError", "StorageError")


@dataclass
class Attempt:
    """One attempt at one operation: what its records will say."""

    action: str
    doc: str | None = None
    label: Label | None = None
    request: str = field(default_factory=lambda: secrets.token_hex(16))
    recorded: bool = False
    allowed: bool = False
    completed: bool = False
    #: a report made while records of the log are out of place: nothing is
    #: appended for it (see :func:`attempts`)
    unrecorded: bool = False


def check_free_text(text: str | None, what: str) -> None:
    """UsageError for a ``what`` (justification, reason) that is not one
    line of free text (vault/_text.py: records are read on terminals, and a
    control or bidi character would redraw them or reorder their text; a
    no-break space or a joiner is how people write), before anything is
    recorded. A text that is given says something: spaces and joiners alone
    are shown blank in the audit log and on the approve screen, and no rule
    takes them for a justification given (vault/_text.py)."""
    if not isinstance(text, str) or not text:
        return  # none given: the policy decides whether one is needed
    if not says_something(text) and all(map(free_character, text)):
        raise UsageError(f"the {what} says nothing: it holds only spaces or joiners",
                         hint=f"write the {what} in words, or leave it out")
    if is_text(text, free=True):
        return
    if any("\ud800" <= c <= "\udfff" for c in text):
        # Bytes that were not UTF-8 on the command line (Python keeps them
        # as lone surrogates): no record could hold them.
        raise UsageError(f"the {what} is not valid UTF-8 text",
                         hint=f"give the {what} as plain text on one line")
    raise UsageError(f"the {what} {character_problem(text, free=True)}",
                     hint=f"give the {what} as plain text on one line")


def _summary(label: Label | None) -> dict[str, Any] | None:
    if label is None:
        return None
    return {"level": label.level, "compartments": sorted(label.compartments),
            "caveats": sorted(label.caveats)}


def _reason_of(e: BaseException) -> str:
    name = type(e).__name__
    if isinstance(e, VaultError) and any(c.__name__ in _SPEAKING for c in type(e).__mro__):
        return f"{name}: {e.message}"
    if isinstance(e, OSError):
        return f"{name}: {e.strerror or 'I/O error'}"
    return name


def _outcome_of(e: BaseException) -> tuple[str, list[str], str]:
    """Outcome, rule ids and reason recording a failure before the decision."""
    if isinstance(e, DeniedError):  # refused by the policy engine itself
        return "denied", list(getattr(e.decision, "rule_ids", [])), e.message
    return "error", [], _reason_of(e)


def record(s: Session, atts: Sequence[Attempt], outcome: str, rules: Sequence[str],
           reason: str, states: Sequence[Mapping[str, Any] | None] | None = None,
           *, completion: bool = False) -> None:
    """Append one record per attempt, durably and in one batch (raises
    AuditWriteError, and then nothing may happen). Records that change the
    vault's state take effect here: the trusted state replays them before
    this returns."""
    if not completion and all(a.action in _REPORTS for a in atts) \
            and s.trusted.out_of_place() is not None:
        for a in atts:  # met during the report: unrecorded, as when met at its start
            a.unrecorded = True
    if all(a.unrecorded for a in atts):
        for a in atts:  # as if recorded: never a record later for it
            if completion:
                a.completed = True
            else:
                a.recorded, a.allowed = True, outcome == "allowed"
        return
    if not completion and any(a.action not in _REPORTS for a in atts):
        # Checked at the attempt's start, but any catch-up since -- a read
        # following a document rewrapped meanwhile, taking the lock -- may
        # have met records out of place: nothing is decided or appended
        # under the state they left behind (completions count or not, as
        # the replay says: check_counted).
        refuse_out_of_place(s)
    me = s.me()
    s.register_me()
    actor = s.actor()
    policy = s.trusted.policy.hash
    items = []
    for i, a in enumerate(atts):
        items.append(({
            "actor": actor.record(), "action": a.action,
            "doc": a.doc if a.doc is not None and _doc_ok(a.doc) else None,
            "label": _summary(a.label), "outcome": outcome, "rules": list(rules),
            "reason": reason[:MAX_REASON], "policy": policy, "request": a.request,
            "state": None if states is None else states[i],
        }, me.signing_key))
        if completion:
            a.completed = True
        else:
            a.recorded = True  # even if the append fails: never a second record
            a.allowed = outcome == "allowed"
    if len(items) == 1:
        s.log.append(*items[0])
    else:
        s.log.append_many(items)
    if states is not None and any(st is not None for st in states):
        s.trusted.catch_up(own=True)  # these records at least (check_counted relies on it)


def _doc_ok(doc: str) -> bool:
    from vault.store.base import DOC_ID

    # Only a well-formed id: a hostile one ('', '../x', megabytes, or no
    # string at all: the attempt is still recorded) never becomes the
    # record's doc.
    return isinstance(doc, str) and bool(DOC_ID.match(doc))


# What is done while records of the log are out of place: reports of what
# the replay holds, which decide nothing the hidden records may have changed
# and decrypt nothing ('ls' shows no title meanwhile; 'doctor --repair'
# refuses). They are the one exception to "every attempt is recorded":
# appended meanwhile, their records would be out of place themselves once
# the lines are put back as written (docs/DESIGN.md §8.4).
_REPORTS = frozenset({"ls", "doctor"})


def refuse_out_of_place(s: Session) -> None:
    """Raise :class:`OutOfPlace` while this machine's replay found records
    out of place (TrustedState.refuse_out_of_place)."""
    s.trusted.refuse_out_of_place()


@contextlib.contextmanager
def attempts(s: Session, action: str, docs: Sequence[str | None]) -> Iterator[list[Attempt]]:
    """Several attempts decided together (sealing many files). Whatever is
    raised before an attempt's decision is recorded as its outcome; a
    failure after an allowed decision completes it as ``failed``. While
    records are out of place nothing but a report is attempted, and nothing
    is appended, neither the refusal nor the report: a record appended now
    would be out of place itself once the lines are put back."""
    s.me()
    atts = [Attempt(action, d) for d in docs]
    try:
        s.trusted.catch_up()  # decide under the policy version in force now
        if s.trusted.out_of_place() is not None:
            if action not in _REPORTS:
                refuse_out_of_place(s)
            for a in atts:
                a.unrecorded = True
        yield atts
    except BaseException as e:
        if isinstance(e, (AuditWriteError, OutOfPlace)):
            raise
        pending = [a for a in atts if not a.recorded]
        unfinished = [a for a in atts if a.recorded and a.allowed and not a.completed]
        with contextlib.suppress(VaultError, OSError):
            if pending:
                record(s, pending, *_outcome_of(e))
            if unfinished:
                record(s, unfinished, "failed", [], _reason_of(e), completion=True)
        raise


@contextlib.contextmanager
def attempt(s: Session, action: str, doc: str | None = None) -> Iterator[Attempt]:
    with attempts(s, action, [doc]) as (att,):
        yield att


def authorise(s: Session, atts: Attempt | Sequence[Attempt], action: str,
              label: Label | None, *, inputs: Mapping[str, Any] | None = None,
              note: str = "", approved: Approved | None = None) -> Decision:
    """Decide for the actor the caller's keys make them, record, and raise
    DeniedError if the policy said no. With approvals (``approved``, bound
    to this attempt), they are verified, decided with and recorded as used
    under the vault's exclusive lock (docs/AUDIT.md §17)."""
    atts = [atts] if isinstance(atts, Attempt) else list(atts)
    if not approved:
        return _decide(s, atts, action, label, dict(inputs or {}), note, None)
    if len(atts) != 1:
        raise UsageError("approvals cover one document: act on one at a time")
    with s.lock():
        refuse_out_of_place(s)  # taking the lock caught up: approvals are verified after
        verified = approved.verify(s)  # an ApprovalError is recorded as the denial
        given = {**(inputs or {}), "approvers": list(verified.names)}
        note = (f"{note} | " if note else "") + (
            f"request {verified.request.id} of {verified.request.requester.name}, approved "
            f"by {', '.join(verified.names)}")
        return _decide(s, atts, action, label, given, note, approved.use_state())


def _decide(s: Session, atts: list[Attempt], action: str, label: Label | None,
            inputs: dict[str, Any], note: str, state: Mapping[str, Any] | None) -> Decision:
    from vault.policy._checks import APPROVER

    actor = s.actor()
    decision = s.trusted.policy.decide(actor.decides_as, action, label, inputs=inputs)
    reasons = list(decision.reasons)
    if actor.name is None:
        reasons = [f"these keys belong to no user of the policy (the identity file calls "
                   f"itself {actor.claimed!r})"]
    reason = "; ".join(reasons) + (f" | {note}" if note else "")
    for a in atts:
        a.label = label
    allowed = decision.allowed
    record(s, atts, "allowed" if allowed else "denied", decision.rule_ids, reason,
           [state] if allowed and state is not None else None)
    if not allowed:
        hint = (f"see why, rule by rule: {_explain_command(s, atts[0], action, label, inputs)}; "
                "or ask the officer" if actor.name is not None else
                "ask the officer to add your keys to the policy ('vault identity show')")
        if APPROVER in decision.rule_ids and "approvers" not in inputs:
            act = atts[0].action
            what = {"seal": "seal FILE --level L ...", "policy-apply": "policy-apply FILE",
                    "migrate": "migrate DEST", "incident": "incident FIRST-LAST"}.get(
                act, f"{act} {atts[0].doc}" + (" --level L ..." if act == "reclassify" else "")
                if atts[0].doc else act)
            hint = (f"ask for approval with 'vault request {what}', then act again with "
                    "--request ID once approved (or --approval FILE)")
        # The reasons quote the policy's descriptions: escaped where they are
        # put into the message (vault/_text.py), as the marking in the hint.
        raise DeniedError(f"{atts[0].action} denied: {printable('; '.join(reasons))}",
                          decision=decision, hint=hint)
    return decision


def approvers(decision: Decision) -> list[str]:
    """The verified approvers a decision was made with, for deciding again."""
    return list(decision.inputs.get("approvers") or [])


def _explain_command(s: Session, att: Attempt, action: str, label: Label | None,
                     inputs: Mapping[str, Any] | None) -> str:
    """The command that explains this very denial against the policy in force."""
    if action == "seal" and inputs and inputs.get("floor") is not None and label is not None:
        # What the file said of itself is part of the decision: classify knows it.
        command = (f"vault classify FILE --explain --user {s.actor().decides_as} --level "
                   f"{printable(s.trusted.policy.format_label(label))}")
        if label.declassify_on is not None:
            # Without it classify would show the floor met (§6.6).
            command += f" --declassify-on {label.declassify_on}"
        return command
    command = f"vault policy explain --action {action}"
    if att.doc is not None and att.action != "seal":
        return f"{command} --doc {att.doc}"
    if label is not None:
        return f"{command} --level {printable(s.trusted.policy.format_label(label))}"
    return command


def complete(s: Session, atts: Sequence[Attempt], states: Sequence[Mapping[str, Any] | None],
             reason: str = "") -> None:
    """The completion records (``done``) of allowed attempts, with the state
    each changed: after this they count (docs/DESIGN.md §8)."""
    if any(not (a.recorded and a.allowed) for a in atts):
        raise UsageError("internal: completing an attempt that was not allowed")
    record(s, atts, "done", [], reason, states, completion=True)
    check_counted(s, states)


def complete_wrapped(s: Session, atts: Sequence[Attempt],
                     states: Sequence[Mapping[str, Any] | None], ck: ClassKey,
                     reason: str = "") -> None:
    """:func:`complete`, for new versions wrapped to ``ck`` under a lock.
    A lock is advisory and anyone can break it (a folder's 'lock' renamed
    over, a PostgreSQL session ended): a revocation that ran meanwhile must
    not find them counted under the key it replaced, nor left readable with
    it (docs/DESIGN.md §7.2). So the key is checked against the log first,
    and versions the log does not count (a rotation in between) removed."""
    from vault._ops.keys import still_current
    from vault.errors import StorageError

    s.trusted.catch_up()
    if not still_current(s, ck):
        raise StorageError("the class key was rotated or revoked meanwhile, though the vault's "
                           "lock was held: nothing was changed",
                           hint="run the command again; if it happens again, someone is "
                                "breaking the vault's lock (treat it as an incident)")
    try:
        complete(s, atts, states, reason)
    except NotCounted:
        for state in states:
            doc = (state or {}).get("document")
            row = s.trusted.doc(doc["doc"]) if doc is not None else None
            if doc is not None and (row is None or row.version != doc["version"]):
                with contextlib.suppress(VaultError, OSError):
                    s.backend.delete_document(doc["doc"], doc["version"])
        raise


class NotCounted(IntegrityError):
    """A state just recorded is not the one the trusted state holds: the
    replay did not count it (``doctor`` names the reason)."""


def check_counted(s: Session, states: Sequence[Mapping[str, Any] | None]) -> None:
    """Each document state just recorded is the one the trusted state now
    holds: the replay accepted it. Nothing that relied on it (removing the
    old version) may happen otherwise; raises :class:`NotCounted`."""
    for state in states:
        gone = (state or {}).get("shred")
        if gone is not None:
            row = s.trusted.doc(gone["doc"])
            if row is None or not row.shredded:
                raise NotCounted(f"document {gone['doc']}: the shred was recorded but does "
                                     "not count", hint="'vault doctor' names the reason")
        doc = (state or {}).get("document")
        if doc is None:
            continue
        row = s.trusted.doc(doc["doc"])
        if row is None or row.version != doc["version"]:
            raise NotCounted(f"document {doc['doc']}: the change was recorded but does "
                                 "not count", hint="'vault doctor' names the reason")
