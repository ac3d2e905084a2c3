"""The audit log decides what approvals were used for (docs/AUDIT.md §17):
attacks by insiders who append records signed with their own key (a
modified library), on both backends. An approval counts once; a
completion counts only with the approvers its own decision verified, for
what was approved; a record never supplies approver names itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from approval_support import EVERY_ACTION, ask, findings, grant, office_for, records, seal
from backends import Kind
from office import Office

from vault._trust.approvals import read_approval, sign_approval


@pytest.fixture
def office(tmp_path: Path, backend: Kind) -> Office:
    return office_for(tmp_path, backend, EVERY_ACTION)


def append(office: Office, who: str, action: str, doc: str | None, request: str,
           state: dict[str, Any] | None, outcome: str = "allowed") -> None:
    """A record ``who`` appends with a modified library, signed with their key."""
    me = office.ids[who]
    with office.as_("officer") as v:
        v.audit.append({"actor": {"name": who, "key": me.fingerprint}, "action": action,
                        "doc": doc, "label": None, "outcome": outcome, "rules": [],
                        "reason": "", "policy": None, "request": request, "state": state},
                       me.signing_key)


def use(approvals: list[bytes]) -> dict[str, Any]:
    return {"use": {"approvals": [read_approval(a).to_dict() for a in approvals]}}


def shredded(office: Office, doc: str) -> bool:
    with office.as_("officer") as v:
        v._s.trusted.catch_up()
        row = v._s.trusted.doc(doc)
        return row is not None and row.shredded


def gone(doc: str) -> dict[str, Any]:
    return {"shred": {"doc": doc, "inputs": {"justification": "the merger closed"}}}


def secret_doc(office: Office) -> str:
    approval = grant(office, "deputy", ask(office, "leader", "seal", level="SECRET",
                                           compartments=["BOARD"]))
    return seal(office, "leader", approvals=[approval])


def test_a_use_replayed_into_a_second_record_does_not_count_twice(office: Office) -> None:
    doc = secret_doc(office)
    approval = grant(office, "deputy", ask(office, "leader", "shred", doc))
    append(office, "leader", "shred", doc, "first", use([approval]))
    append(office, "leader", "shred", doc, "second", use([approval]))  # the same approval
    append(office, "leader", "shred", doc, "second", gone(doc), outcome="done")
    assert not shredded(office, doc)  # the second decision had no approvals that counted
    kinds = [(k, m) for _, k, m in findings(office)]
    assert ("use", "request " + read_approval(approval).request.id + " was already performed "
            f"(audit record {len(records(office)) - 3}); an approval counts once; ignored") \
        in kinds
    assert any(k == "shred" and "approval is required" in m for k, m in kinds)
    # The first decision's approvals still count, for its own completion only.
    append(office, "leader", "shred", doc, "first", gone(doc), outcome="done")
    assert shredded(office, doc)


def test_a_completion_counts_once_per_decision(office: Office) -> None:
    doc, other = secret_doc(office), secret_doc(office)
    approval = grant(office, "deputy", ask(office, "leader", "shred", doc))
    append(office, "leader", "shred", doc, "r1", use([approval]))
    append(office, "leader", "shred", doc, "r1", gone(doc), outcome="done")
    append(office, "leader", "shred", other, "r1", gone(other), outcome="done")
    assert shredded(office, doc) and not shredded(office, other)


def test_a_completion_whose_decision_used_invalid_approvals_does_not_count(
        office: Office) -> None:
    doc = secret_doc(office)
    r = ask(office, "leader", "shred", doc)
    mine = sign_approval(office.ids["leader"], r, name="leader").to_bytes()  # self-approval
    append(office, "leader", "shred", doc, "self", use([mine]))
    append(office, "leader", "shred", doc, "self", gone(doc), outcome="done")
    clerks = sign_approval(office.ids["clerk"], r, name="clerk").to_bytes()  # not a leader
    append(office, "leader", "shred", doc, "clerk", use([clerks]))
    append(office, "leader", "shred", doc, "clerk", gone(doc), outcome="done")
    assert not shredded(office, doc)
    found = findings(office)
    assert any(k == "use" and "leader approved their own request" in m for _, k, m in found)
    assert any(k == "shred" and "clerk does not count: not among group leaders" in m
               for _, k, m in found)


def test_recorded_inputs_never_name_approvers(office: Office) -> None:
    doc = secret_doc(office)
    append(office, "leader", "shred", doc, "claim", {"shred": {"doc": doc, "inputs": {
        "justification": "x", "approvers": ["deputy"]}}}, outcome="done")
    assert not shredded(office, doc)


def test_approvals_count_only_for_their_requester_and_what_was_approved(
        office: Office) -> None:
    doc = secret_doc(office)
    approval = grant(office, "deputy", ask(office, "leader", "shred", doc))
    # The deputy replays the leader's approval as their own use: refused.
    append(office, "deputy", "shred", doc, "theirs", use([approval]))
    append(office, "deputy", "shred", doc, "theirs", gone(doc), outcome="done")
    assert not shredded(office, doc)
    assert any(k == "use" and "counts only for leader" in m for _, k, m in findings(office))


def test_answers_on_the_record_come_from_eligible_approvers_only(office: Office) -> None:
    doc = secret_doc(office)
    r = ask(office, "leader", "declassify", doc, justification="published")
    clerks = read_approval(sign_approval(office.ids["clerk"], r, name="clerk", refuse=True,
                                         reason="no").to_bytes())
    append(office, "clerk", "refuse", doc, "veto",
           {"approval": {"id": clerks.id, "statement": clerks.to_dict()}})
    assert any(k == "approval" and "clerk may not answer this request" in m
               for _, k, m in findings(office))
    with office.as_("leader") as v:  # an ineligible refusal vetoes nothing
        v.declassify([doc], approvals=[grant(office, "deputy", r)])
    # A request recorded by someone else than its requester is ignored too.
    other = secret_doc(office)
    forged = ask(office, "leader", "shred", other)
    append(office, "deputy", "request", other, "theirs", {"request": {
        "id": forged.id, "digest": forged.digest, "statement": forged.signed()}})
    assert any(k == "request" and "recorded by someone else" in m
               for _, k, m in findings(office))


def test_the_log_alone_shows_who_asked_who_approved_and_for_what(office: Office) -> None:
    doc = secret_doc(office)
    r = ask(office, "leader", "shred", doc)
    with office.as_("leader") as v:
        v.shred(doc, approvals=[grant(office, "deputy", r)])
    recs = records(office)
    asked = next(x for x in recs if (x["state"] or {}).get("request", {}).get("id") == r.id)
    approved = next(x for x in recs if x["action"] == "approve"
                    and x["state"]["approval"]["statement"]["request"]["statement"]["id"] == r.id)
    used = next(x for x in recs if x["action"] == "shred" and x["outcome"] == "allowed")
    assert asked["actor"]["name"] == "leader" and approved["actor"]["name"] == "deputy"
    (file,) = used["state"]["use"]["approvals"]
    a = read_approval(json.dumps(file, sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=False).encode())  # verifies from the log alone
    assert a.approver.name == "deputy" and a.request.doc == doc and a.request.action == "shred"
    assert findings(office) == []
