"""The replay of requests, approvals and their use (docs/AUDIT.md §17).

Three state members concern the two-person rule:

* ``request`` (a ``request`` record): a signed request, kept so that
  approvers find it (``vault approvals``) and auditors read what was asked;
* ``approval`` (an ``approve`` or ``refuse`` record): an approval file,
  signed by the record's own signer, who must be eligible to answer that
  request under the policy in force; a refusal on the record ends the
  request;
* ``use`` (on an allowed decision record): the approvals that decision
  relied on. Each is checked again here, under the policy in force at that
  record, against the state the log recorded for its document, and marked
  used: a second use of the same approval is a finding and counts for
  nothing. The verified approver names are kept for the decision's request
  id, bound to its document and to the header digest the request names,
  until its completion, whose state is then decided again with them
  (``inputs["approvers"]``) -- and only if it is that decision's, on that
  document in that state, and produced what was approved. They serve one
  completion: a modified client's completion of another document under
  the same request id is a finding (docs/AUDIT.md §17).

Every approver name a completion is decided with comes from here, never
from the record: a ``use`` that does not verify leaves its completion
without approvers, and a rule that requires approval refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vault._primitives import canonical_json, loads_json
from vault._text import character_problem
from vault._trust._statement import CLOCK_SKEW
from vault._trust.approvals import (
    Approval,
    ApprovalError,
    Party,
    Request,
    StatementError,
    check_dated,
    check_outcome,
    check_request,
    policy_action,
)

if TYPE_CHECKING:  # pragma: no cover
    from vault._trust.manifest import Manifest
    from vault._trust.state import StateStore
    from vault.audit import AuditRecord
    from vault.policy import Policy

__all__ = ["CLOCK_SKEW", "ApprovalReplay", "clock"]

_COMPLETED = frozenset(("seal", "reclassify", "declassify", "shred", "policy-apply",
                        "incident"))
_MAX_USE = 16
# CLOCK_SKEW: how much earlier than the latest state run before it a use
# may be dated and still have its expiry checked at its own time, and how
# much later than its record a statement may be dated: the clocks of the
# machines writing one log differ a little (docs/AUDIT.md §17).


class Invalid(Exception):
    """A state member that must not count (the message says why)."""


def _statement(obj: Any, read: Any) -> Any:
    if len(canonical_json(obj)) > 64 * 1024:
        raise Invalid("an oversized statement")
    try:
        return read(obj)
    except (StatementError, ApprovalError) as e:
        raise Invalid(e.message) from None


class ApprovalReplay:
    """The ``request``, ``approval`` and ``use`` members, for :class:`Journal`."""

    store: StateStore
    manifest: Manifest
    policy: Policy | None
    _latest: str | None = None  # the time expiries are never checked much before
    _latest_by: dict[str, str] | None = None  # person -> their latest counted state run

    def seen(self, actor: str, time: str) -> None:
        """A signed run of ``actor``'s with state that counted, dated
        ``time``, was replayed. Expiry is never checked earlier than
        ``CLOCK_SKEW`` before the *second* latest of the times at which each
        person last wrote one (docs/AUDIT.md §17): a writer chooses its
        records' times, so one insider's record dated years ahead must not
        make every approval look expired, while a use dated back is still
        caught once two people have written since. Kept in the store for
        later replays."""
        try:  # a time that matches its pattern but is no date (second 60, 30 February)
            datetime.fromisoformat(time[:-1])
        except ValueError:
            return  # places no one: it would make every later expiry check fail
        by = self._times_by()
        if time > by.get(actor, ""):  # RFC 3339 at a fixed width: ordered as text
            by[actor] = time
            latest = sorted(by.values(), reverse=True)[1] if len(by) > 1 else ""
            self.store.set_meta("latest_by", json.dumps(by, sort_keys=True))
            if latest != self._latest:
                self._latest = latest
                self.store.set_meta("latest", latest)

    def _times_by(self) -> dict[str, str]:
        if self._latest_by is None:
            kept = self.store.meta("latest_by")
            self._latest_by = loads_json(kept) if kept is not None else {}
        return self._latest_by

    def _clock(self, rec: AuditRecord) -> datetime:
        """When a use's expiries are checked: its record's time, or, for a
        record dated back, ``CLOCK_SKEW`` before the latest time (``seen``)."""
        if self._latest is None:
            self._latest = self.store.meta("latest") or ""
        return clock(self._latest, rec.datetime)

    def _check_free_text(self, rec: AuditRecord, signer: str,
                         texts: Iterable[tuple[str, Any]]) -> None:
        """Report, as ``signer``'s finding, free text of a statement that
        breaks its rule (vault/_text.py): ``signer`` signed the statement,
        and is the record's actor as the replay has checked -- never the one
        who carries another's statement over (a rewrap, whoever runs it).
        Every client refuses such text before signing, so only a modified
        one writes it; the record counts all the same -- one insider's
        record must not stop the office -- and every output shows the text
        escaped."""
        for what, value in texts:
            problem = character_problem(value, free=True) if isinstance(value, str) else None
            if problem is not None:
                self.store.add_finding(rec.seq, "text", f"{signer} signed {what} that "
                                       f"{problem}, which no client of vault writes; it is "
                                       "shown escaped")

    def _requester(self, rec: AuditRecord) -> Party:
        assert self.policy is not None and rec.actor is not None
        return Party(rec.actor, self.policy.users[rec.actor].signing_key)

    def _request(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        r: Request = _statement(st["statement"], Request.read)
        if st["id"] != r.id or st["digest"] != r.digest:
            raise Invalid("the request's id or digest is not the statement's")
        if r.statement["vault"] != self.manifest.vault_id:
            raise Invalid("a request for another vault")
        if r.requester != self._requester(rec):
            raise Invalid("a request recorded by someone else than its requester")
        # The justification sits in the signed statement (state.request is
        # {sig, statement}), its requester's, whose signature Request.read
        # verified and who recorded it.
        self._check_free_text(rec, r.requester.name, [("a request justification",
                                                       r.justification)])
        # Dated ahead of its record, its 90 days would run from a time its
        # requester chose: one approval could serve for years.
        _not_ahead(r.created, rec, "request")
        assert self.policy is not None
        if (why := r.unknown_to(self.policy)) is not None:  # nobody could answer it
            raise Invalid(f"a request whose {why.removeprefix('the ')}")
        self.store.add_request(r.digest, r.id, r.requester.name, r.statement["expires"],
                               rec.seq, r.signed())

    def _approval(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        from vault.policy import Label

        assert self.policy is not None
        a: Approval = _statement(st["statement"], Approval.read)
        r = a.request
        if st["id"] != a.id:
            raise Invalid("the approval's id is not its statement's")
        if r.statement["vault"] != self.manifest.vault_id:
            raise Invalid("an approval for another vault")
        if a.approver != self._requester(rec):
            raise Invalid("an approval recorded by someone else than its approver")
        # The reason is its approver's (state.approval is {approval: {sig,
        # statement}, request}); the request it carries was its requester's
        # to record, and is not looked into again here.
        self._check_free_text(rec, a.approver.name, [("an approval reason", a.reason)])
        if rec.action != a.decision:  # an approve record approves, a refuse record refuses
            raise Invalid(f"a {rec.action} record carrying a decision to {a.decision}")
        _not_ahead(a.created, rec, "approval")
        # Eligible: the approval would count for the request, under the
        # policy in force now (docs/POLICY.md §4.5).
        label = None if r.label is None else Label.from_dict(r.label)
        inputs = r.inputs()  # a seal's floor too: its below-floor rules ask for approval
        if r.requester.name not in self.policy.users:
            why: str | None = f"{r.requester.name} is not a user of the policy in force"
        else:
            why = self.policy.approver_problem(r.requester.name, policy_action(r.action), label,
                                               a.approver.name, at=rec.datetime, inputs=inputs)
        if why is not None:
            raise Invalid(f"{a.approver.name} may not answer this request ({why})")
        self.store.add_answer(a.id, r.digest, a.approver.name, a.decision, a.reason, rec.seq)

    def _refusal(self, digest: str) -> str | None:
        for approver, decision, reason, seq in self.store.answers(digest):
            if decision == "refuse":
                return f"{approver} refused it (audit record {seq})" + (
                    f": {reason}" if reason else "")
        return None

    def _use(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        assert self.policy is not None and rec.actor is not None
        files = st["approvals"]
        if rec.outcome != "allowed" or not isinstance(files, list) \
                or not 0 < len(files) <= _MAX_USE or set(st) != {"approvals"}:
            raise Invalid("approvals are used by one allowed decision (1 to 16 of them)")
        approvals = [_statement(f, Approval.read) for f in files]
        doc = self.store.doc(rec.doc) if rec.doc is not None else None
        on_doc = rec.action in ("open", "export", "reclassify", "declassify", "shred")
        try:
            verified = check_request(
                approvals, vault=self.manifest.vault_id, action=rec.action,
                doc=rec.doc if on_doc else None,
                state=doc.header if on_doc and doc is not None and not doc.shredded else None,
                requester=self._requester(rec), policy=self.policy, now=self._clock(rec),
                used=self.store.used, refused=self._refusal,
                recorded=self.store.request_seq, installed=self.store.policy_seq(),
                label=doc.statement["label"] if on_doc and doc is not None else None)
        except ApprovalError as e:
            raise Invalid(e.message) from None
        try:  # an approval (or the request) dated ahead, or the record dated back
            check_dated(verified.request, approvals, rec.datetime,
                        against="the record that uses it")
        except ApprovalError as e:
            raise Invalid(f"{e.message} (or the record is dated back)") from None
        for item in (*verified.ids, verified.request.digest):
            self.store.use(item, rec.seq)
        if rec.action in _COMPLETED:
            # Bound to this decision's document (the record's, which the
            # request names for an action on a document; a seal's new one)
            # and to the header the request names for it.
            r = verified.request
            # And to the policy version in force: a completion held back
            # until another version was installed gets no approvers.
            expect = {"action": r.action, "label": r.label, "new_label": r.new_label,
                      "details": r.details, "doc": rec.doc, "state": r.state,
                      "under": self.store.policy_seq()}
            if not self.store.put_approved(rec.request, rec.actor, rec.seq,
                                           list(verified.names), expect):
                raise Invalid(f"request id {rec.request} already carries approvals")

    def approvers_for(self, rec: AuditRecord, made: Mapping[str, Any]) -> list[str]:
        """The verified approvers of the decision this completion record
        completes -- if the same person completes it, as its completion
        (``done``, same action), on the document the decision was for, in
        the state the request names, and it produced what was approved
        (``made``: label, new_label or details); else none. They serve
        this one completion: the next record naming the request id finds
        none (raises :class:`Invalid` for a completion of that request id
        on another document or state of it)."""
        row = self.store.approved(rec.request)
        if row is None or row[0] != rec.actor:
            return []
        _, names, expect = row
        if (rec.outcome != "done" or rec.action != expect["action"]
                or expect.get("under") != self.store.policy_seq()):
            return []
        doc, header = self._target(rec)
        if doc != expect.get("doc") or rec.doc != doc:
            raise Invalid(f"the approvals of request id {rec.request} are for document "
                          f"{expect.get('doc')}, not {doc}")
        if header != expect.get("state"):
            raise Invalid(f"the approvals of request id {rec.request} are for another state "
                          f"of document {doc}")
        r = _Expected(expect)
        try:
            check_outcome(r, **made)  # type: ignore[arg-type]
        except ApprovalError:
            return []
        self.store.end_approved(rec.request)
        return list(names)

    def _target(self, rec: AuditRecord) -> tuple[str | None, str | None]:
        """The document a completion changes, and its header digest before
        the change (None: a new document, or no document)."""
        state = rec.state or {}
        docs = {str(state[k].get("doc")) for k in ("document", "shred")
                if isinstance(state.get(k), dict)}
        if len(docs) > 1:
            raise Invalid("one completion changes one document")
        if not docs:
            return None, None
        doc = docs.pop()
        row = self.store.doc(doc)
        return doc, None if row is None else row.header


def _not_ahead(made: datetime, rec: AuditRecord, what: str) -> None:
    """A statement recorded at ``rec`` was made by then, give or take the
    clock skew; its signer chose both times (docs/AUDIT.md §17)."""
    try:
        at = rec.datetime
    except ValueError:  # a time that matches its pattern but is no date
        raise Invalid(f"a {what} recorded at a time that is no date") from None
    if made - at > CLOCK_SKEW:  # no sum: year 9999
        raise Invalid(f"the {what} is dated after the record that carries it (dated ahead)")


class _Expected:
    """What :func:`check_outcome` reads of a request, from a stored row."""

    def __init__(self, expect: Mapping[str, Any]) -> None:
        self.action = str(expect["action"])
        self.label = expect["label"]
        self.new_label = expect["new_label"]
        self.details = dict(expect["details"])


def clock(latest: str | None, at: datetime) -> datetime:
    """``at``, or ``CLOCK_SKEW`` before ``latest`` (the store's ``latest``
    meta value) if that is later: the time expiries are checked at."""
    if not latest:
        return at
    try:  # kept by an earlier version's replay, which took any time that matched
        return max(at, datetime.fromisoformat(latest[:-1]).replace(tzinfo=UTC) - CLOCK_SKEW)
    except (ValueError, OverflowError):  # no date, or year 1
        return at
