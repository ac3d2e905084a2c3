"""Approvals an action carries (docs/DESIGN.md §6, docs/FORMAT.md §16.4).

Every operation a rule can require approval for takes approval files
(``--approval FILE``) and a request id whose approvals were left in the
vault (``--request ID``). :class:`Approved` gathers them; the operation
binds it to exactly what it is about to do (the document and the header
digest it verified, the label it will sign, the policy file it installs)
and :func:`vault._ops.discipline.authorise` checks it under the vault's
exclusive lock, decides with the verified approver names, and appends the
decision record carrying them (``state.use``), so two processes can never
both use one approval: the second finds it used in the trusted state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vault._trust.approvals import (
    Approval,
    ApprovalError,
    Party,
    StatementError,
    Verified,
    check_dated,
    check_outcome,
    check_request,
    read_approval,
)
from vault._trust.journal_approvals import clock
from vault.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.session import Session

__all__ = ["Approved", "gather", "refusal"]

_REQUEST_ID = re.compile(r"\A[0-9a-f]{32}\Z")
# An approval about to expire counts as expired: the replay checks expiry at
# the time of the record that uses it, appended a moment after this check.
_MARGIN = timedelta(seconds=60)


def refusal(s: Session) -> Any:
    """``refused(digest)``: why a request was refused on the record, if it was."""
    def refused(digest: str) -> str | None:
        for approver, decision, reason, seq in s.trusted.store.answers(digest):
            if decision == "refuse":
                return f"{approver} refused it (audit record {seq})" + (
                    f": {reason}" if reason else "")
        return None
    return refused


def gather(s: Session, files: Sequence[bytes], request: str | None) -> list[Approval]:
    """The approval files given, and those left in the vault for ``request``
    (a request id) -- refusals included, so that they are heard."""
    found = []
    for data in files:
        try:
            found.append(read_approval(bytes(data)))
        except StatementError as e:
            raise StatementError(f"an approval file: {e.message}", hint=e.hint) from None
    if request is not None:
        if not _REQUEST_ID.match(request):
            raise UsageError(f"'{request}' is not a request id (32 hex digits)",
                             hint="'vault request' printed it; 'vault approvals' lists them")
        left = _left_for(s, request)
        if not left and not found:
            raise UsageError(f"no answer to request {request} was left in the vault",
                             hint="wait for an approver ('vault approve'), or give the "
                                  "approval file with --approval FILE")
        found += left
    return found


def _left_for(s: Session, request: str) -> list[Approval]:
    """The answers left in the vault to the request the id names (the first
    the log recorded under it, vault/_ops/approve.find), by people who may
    answer it, signed with the keys the policy gives them. Anyone can leave
    a statement: one by somebody else, or to another request under the
    same id, must neither speak for the people named (a refusal) nor stand
    in the way of the genuine answers."""
    from vault._ops.approve import find, standing

    try:
        genuine = find(s, request)
    except UsageError:
        return []  # no request: then no answer either
    left = []
    for _, data in s.backend.statements("approval"):
        try:
            a = read_approval(data)
        except (StatementError, ApprovalError):
            continue  # the vault holds whatever anyone left: only signed answers count
        if a.request.digest == genuine.digest and _by_policy_key(s, a.approver) \
                and standing(s, genuine, a.approver.name) is None:
            left.append(a)
    return left


def _by_policy_key(s: Session, party: Party) -> bool:
    """Does the policy in force give ``party.name`` the key it signed with?"""
    user = s.trusted.policy.users.get(party.name)
    return user is not None and user.signing_key == party.signing_key


@dataclass
class Approved:
    """The approvals of one attempt, and what they must be bound to. The
    files are read inside the attempt (:attr:`approvals`), so that even a
    malformed or forged one is on the record as the attempt's outcome."""

    session: Session
    files: Sequence[bytes]
    request: str | None
    action: str = ""
    doc: str | None = None
    state: str | None = None
    made: dict[str, Any] = field(default_factory=dict)  # label, new_label, details, file
    _read: list[Approval] | None = None

    def __bool__(self) -> bool:
        return bool(self.files) or self.request is not None

    @property
    def approvals(self) -> list[Approval]:
        if self._read is None:
            self._read = gather(self.session, self.files, self.request)
        return self._read

    def bind(self, action: str, doc: str | None = None, state: str | None = None,
             **made: Any) -> Approved:
        self.action, self.doc, self.state, self.made = action, doc, state, dict(made)
        return self

    def justification(self, given: str | None) -> str | None:
        """The justification to act with: the one given, which must be the
        approved request's, or else the request's own."""
        if not self.approvals:
            return given
        asked = self.approvals[0].request.justification
        if given is None or given == "":
            return asked
        if asked is not None and given != asked:
            raise UsageError("the justification differs from the one in the approved request",
                             hint="leave the justification out: the request's is used")
        return given

    def verify(self, s: Session) -> Verified:
        """docs/FORMAT.md §16.4, against the trusted state as it is now
        (call it under the vault's exclusive lock)."""
        me, actor = s.me(), s.actor()
        row = s.trusted.doc(self.doc) if self.doc is not None else None
        verified = check_request(
            self.approvals, vault=s.manifest.vault_id, action=self.action, doc=self.doc,
            state=self.state, requester=Party(actor.decides_as, me.signing_public),
            # The label of the state bound (a document changed meanwhile is
            # "used" or "changed since", said by the checks before this one).
            label=row.statement["label"] if row is not None and row.header == self.state
            else None,
            policy=s.trusted.policy, used=s.trusted.store.used, refused=refusal(s),
            recorded=s.trusted.store.request_seq, installed=s.trusted.store.policy_seq(),
            # as the replay will: never earlier than the log's latest changes allow
            now=clock(s.trusted.store.meta("latest"), datetime.now(UTC)) + _MARGIN)
        # The use is recorded now: dated before an approval was made, the
        # replay would not count it (an approver's clock running fast).
        check_dated(verified.request, self.approvals, datetime.now(UTC))
        # A seal below its floor only with a request naming the file: the
        # replay still counts those an earlier version's requests served.
        check_outcome(verified.request, **self.made, named=True)
        return verified

    def use_state(self) -> dict[str, Any]:
        """The decision record's ``state`` (docs/AUDIT.md §17)."""
        return {"use": {"approvals": [a.to_dict() for a in
                                      {a.id: a for a in self.approvals}.values()]}}
