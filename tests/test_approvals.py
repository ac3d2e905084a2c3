"""The two-person rule through the library (docs/POLICY.md §4.5,
docs/FORMAT.md §16): every action can carry approvals, each person signs
with their own identity, an approval counts once and only for exactly what
was asked -- and every way it can fail is a distinct, clear error. Both
backends.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from approval_support import EVERY_ACTION, ask, grant, office_for, policy_file, records, seal
from backends import Kind
from office import Office

from vault._trust.approvals import ApprovalError, sign_approval
from vault.errors import DeniedError, UsageError


@pytest.fixture
def office(tmp_path: Path, backend: Kind) -> Office:
    return office_for(tmp_path, backend)


@pytest.fixture
def strict(tmp_path: Path, backend: Kind) -> Office:
    """Every action on a SECRET document takes a second leader; administering
    takes the leader's approval."""
    return office_for(tmp_path, backend, EVERY_ACTION)


def use_of(office: Office, action: str) -> dict[str, Any]:
    rec = [r for r in records(office) if r["action"] == action and r["outcome"] == "allowed"][-1]
    assert rec["state"] is not None and set(rec["state"]) == {"use"}
    return rec


# -- every action carries approvals ------------------------------------------------


def test_reclassify_with_a_second_leaders_approval(office: Office) -> None:
    doc = seal(office, "leader")
    with office.as_("leader") as v, pytest.raises(DeniedError, match="approval") as e:
        v.reclassify(doc, level="CONFIDENTIAL", justification="the merger closed")
    assert "vault request reclassify" in (e.value.hint or "")
    r = ask(office, "leader", "reclassify", doc, level="CONFIDENTIAL")
    with office.as_("deputy") as v:
        assert [p.id for p in v.approvals()] == [r.id]
    approval = grant(office, "deputy", r)
    with office.as_("deputy") as v:
        assert v.approvals() == []  # answered
    with office.as_("leader") as v:
        info = v.reclassify(doc, level="CONFIDENTIAL", approvals=[approval])
    assert info.label.level == "CONFIDENTIAL" and info.label.reason == "the merger closed"
    rec = use_of(office, "reclassify")
    assert "approved by deputy" in rec["reason"] and r.id in rec["reason"]
    actions = [(x["action"], x["outcome"], x["actor"]["name"]) for x in records(office)[-6:]]
    assert ("request", "allowed", "leader") in actions and ("approve", "allowed", "deputy") in \
        actions and actions[-1] == ("reclassify", "done", "leader")


def test_the_approvals_left_in_the_vault_are_picked_up_by_request_id(office: Office) -> None:
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    grant(office, "deputy", r)  # left in the vault, not handed over
    with office.as_("leader") as v:
        (info,) = v.declassify([doc], request=r.id)
    assert info.label.level == "PUBLIC"
    with office.as_("leader") as v, pytest.raises(UsageError, match="no answer to request"):
        v.shred(doc, justification="x", request="0" * 32)


@pytest.mark.parametrize("action", ["open", "export", "shred"])
def test_open_export_and_shred_carry_approvals(strict: Office, action: str) -> None:
    doc = seal(strict, "leader", approvals=[grant(strict, "deputy", ask(
        strict, "leader", "seal", level="SECRET", compartments=["BOARD"]))])
    with strict.as_("leader") as v, pytest.raises(DeniedError, match="approval"):
        getattr(v, action)(doc, io.BytesIO()) if action != "shred" else v.shred(
            doc, justification="the merger closed")
    approval = grant(strict, "deputy", ask(strict, "leader", action, doc))
    with strict.as_("leader") as v:
        if action == "shred":
            v.shred(doc, approvals=[approval])
        else:
            out = io.BytesIO()
            getattr(v, action)(doc, out, approvals=[approval])
            assert out.getvalue()
    use_of(strict, action)
    if action == "shred":
        assert not strict.raw.has_doc(doc)


def test_seal_carries_approvals_for_one_document_at_the_label_approved(strict: Office) -> None:
    r = ask(strict, "leader", "seal", level="SECRET", compartments=["BOARD"])
    approval = grant(strict, "deputy", r)
    with strict.as_("leader") as v:
        with pytest.raises(UsageError, match="one document"):
            v.seal_many([io.BytesIO(b"a"), io.BytesIO(b"b")], level="SECRET",
                        compartments=["BOARD"], approvals=[approval])
        with pytest.raises(ApprovalError, match="another label") as e:
            v.seal(io.BytesIO(b"a"), level="SECRET", compartments=["FINANCE"],
                   approvals=[approval])
        assert e.value.kind == "label"
        info = v.seal(io.BytesIO(b"a"), level="SECRET", compartments=["BOARD"],
                      approvals=[approval])
    assert info.label.reason == "the merger closed"  # the approved justification


def test_policy_apply_and_rotate_carry_approvals(strict: Office) -> None:
    new = policy_file(strict, "v3.yaml", {**EVERY_ACTION, "description: ": "description: v3 "})
    with strict.as_("officer") as v, pytest.raises(DeniedError, match="approval"):
        v.apply_policy(new)
    other = policy_file(strict, "v3b.yaml", {**EVERY_ACTION, "description: ": "description: 3b "})
    r = ask(strict, "officer", "policy-apply", policy_path=other)
    with strict.as_("officer") as v, pytest.raises(ApprovalError, match="another policy file"):
        v.apply_policy(new, approvals=[grant(strict, "leader", r, policy=other)])
    r = ask(strict, "officer", "policy-apply", policy_path=new)
    with strict.as_("officer") as v:
        assert v.apply_policy(new, approvals=[grant(strict, "leader", r, policy=new)]
                              ).version == 3
    r = ask(strict, "officer", "rotate")
    with strict.as_("officer") as v:
        v.rotate(approvals=[grant(strict, "leader", r)])
    use_of(strict, "rotate")


def test_two_approvals_from_distinct_people(tmp_path: Path, backend: Kind) -> None:
    office = office_for(tmp_path, backend, {"  - id: leaders-export\n": (
        "  - id: confidential-export-two\n    effect: allow\n    actions: [export]\n"
        "    who: {groups: [clerks]}\n    label: {min: CONFIDENTIAL}\n"
        "    require: [approver]\n    approvers: {groups: [leaders]}\n    approvals: 2\n\n"
        "  - id: leaders-export\n")})
    doc = seal(office, "clerk", "CONFIDENTIAL")
    r = ask(office, "clerk", "export", doc)
    first = grant(office, "leader", r)
    with office.as_("clerk") as v, pytest.raises(DeniedError, match="2 approvals") as e:
        v.export(doc, io.BytesIO(), approvals=[first, grant(office, "leader", r)])
    assert "1 counted (leader)" in str(e.value)  # one person counts once
    with office.as_("clerk") as v:
        v.export(doc, io.BytesIO(), approvals=[grant(office, "deputy", r)], request=r.id)


# -- every refusal is a distinct, clear error -------------------------------------


def refused(office: Office, who: str, kind: str, fn: Any) -> ApprovalError:
    with office.as_(who) as v, pytest.raises(ApprovalError) as e:
        fn(v)
    assert e.value.kind == kind, (e.value.kind, e.value.message)
    assert e.value.exit_code == 3
    last = records(office)[-1]
    assert last["outcome"] == "denied" and last["reason"] == e.value.message
    return e.value


def test_a_replayed_approval_is_refused(office: Office) -> None:
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    approval = grant(office, "deputy", r)
    doc2 = seal(office, "leader")
    with office.as_("leader") as v:
        v.declassify([doc], approvals=[approval])
    e = refused(office, "leader", "document", lambda v: v.declassify([doc2],
                                                                  approvals=[approval]))
    assert f"for document {doc}, not {doc2}" in e.message


def test_an_approval_counts_once(strict: Office) -> None:
    doc = seal(strict, "leader", approvals=[grant(strict, "deputy", ask(
        strict, "leader", "seal", level="SECRET", compartments=["BOARD"]))])
    approval = grant(strict, "deputy", ask(strict, "leader", "export", doc))
    with strict.as_("leader") as v:
        v.export(doc, io.BytesIO(), approvals=[approval])
    e = refused(strict, "leader", "used", lambda v: v.export(doc, io.BytesIO(),
                                                            approvals=[approval]))
    assert "was already performed" in e.message


def test_an_approval_for_an_earlier_state_of_the_document_is_refused(office: Office) -> None:
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    approval = grant(office, "deputy", r)
    upgrade = grant(office, "deputy", ask(office, "leader", "reclassify", doc, level="SECRET",
                                          compartments=["BOARD", "FINANCE"]))
    with office.as_("leader") as v:  # raised meanwhile: the document changed
        v.reclassify(doc, level="SECRET", compartments=["BOARD", "FINANCE"],
                     approvals=[upgrade])
    e = refused(office, "leader", "state", lambda v: v.declassify([doc], approvals=[approval]))
    assert "changed since the request was made" in e.message


def test_an_approval_for_another_label_is_refused(office: Office) -> None:
    doc = seal(office, "leader")
    approval = grant(office, "deputy", ask(office, "leader", "reclassify", doc,
                                           level="CONFIDENTIAL"))
    e = refused(office, "leader", "label", lambda v: v.reclassify(doc, level="INTERNAL",
                                                                  approvals=[approval]))
    assert "another label (CONFIDENTIAL/BOARD, not INTERNAL/BOARD)" in e.message


def test_an_expired_approval_is_refused(office: Office) -> None:
    from datetime import timedelta

    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    approval = grant(office, "deputy", r, expires=timedelta(seconds=1))
    time.sleep(2.1)
    e = refused(office, "leader", "expired", lambda v: v.declassify([doc],
                                                                 approvals=[approval]))
    assert "deputy's approval expired at" in e.message


def test_self_approval_is_refused(office: Office) -> None:
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    refused(office, "leader", "self", lambda v: v.approve(r.to_bytes()))
    mine = sign_approval(office.ids["leader"], r, name="leader").to_bytes()  # a modified client
    e = refused(office, "leader", "self", lambda v: v.declassify([doc], approvals=[mine]))
    assert "leader approved their own request" in e.message


def test_an_approval_from_outside_the_approvers_is_refused(office: Office) -> None:
    doc = seal(office, "leader", "CONFIDENTIAL")
    with office.as_("leader") as v:  # a SECRET document the clerk may read
        v.reclassify(doc, level="SECRET", justification="sensitive")
    r = ask(office, "leader", "declassify", doc, justification="published")
    refused(office, "clerk", "approver", lambda v: v.approve(r.to_bytes()))
    clerks = sign_approval(office.ids["clerk"], r, name="clerk").to_bytes()
    with office.as_("leader") as v, pytest.raises(DeniedError) as e:
        v.declassify([doc], approvals=[clerks])
    assert not isinstance(e.value, ApprovalError)  # the policy's own verdict
    assert "clerk does not count: not among group leaders (rule secret-two-leaders)" in str(e.value)


def test_an_approval_under_a_since_replaced_policy_is_refused(office: Office) -> None:
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    approval = grant(office, "deputy", r)
    with office.as_("officer") as v:
        v.apply_policy(policy_file(office, "v3.yaml", {"description: ": "description: v3 "}))
    e = refused(office, "leader", "policy", lambda v: v.declassify([doc],
                                                                approvals=[approval]))
    assert "another policy version" in e.message
    refused(office, "deputy", "policy", lambda v: v.approve(r.to_bytes()))


def test_a_refusal_ends_the_request(office: Office) -> None:
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    with office.as_("deputy") as v:
        v.approve(r.to_bytes(), refuse=True, reason="not before the board meets")
    e = refused(office, "leader", "refused", lambda v: v.declassify([doc], request=r.id))
    assert "deputy refused it" in e.message and "not before the board meets" in e.message


def test_a_forged_approval_is_refused(office: Office) -> None:
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    good = grant(office, "deputy", r)
    forged = good.replace(b'"reason":null', b'"reason":"ok"')
    assert forged != good
    e = refused(office, "leader", "forged", lambda v: v.declassify([doc], approvals=[forged]))
    assert "signature does not verify" in e.message


def test_an_approval_signed_with_a_key_the_policy_does_not_give_its_approver(
        office: Office) -> None:
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc, justification="published")
    # The outsider signs, with their own key, an approval naming the deputy.
    posed = sign_approval(office.ids["outsider"], r, name="deputy").to_bytes()
    e = refused(office, "leader", "key", lambda v: v.declassify([doc], approvals=[posed]))
    assert "a key the policy does not give deputy" in e.message


def test_an_approval_answers_only_its_requester(office: Office) -> None:
    doc = seal(office, "leader")
    approval = grant(office, "leader", ask(office, "deputy", "declassify", doc,
                                           justification="published"))
    e = refused(office, "leader", "requester", lambda v: v.declassify([doc],
                                                                   approvals=[approval]))
    assert "deputy's request" in e.message


def test_the_justification_is_the_approved_one(office: Office) -> None:
    doc = seal(office, "leader")
    approval = grant(office, "deputy", ask(office, "leader", "declassify", doc,
                                           justification="published"))
    with office.as_("leader") as v, pytest.raises(UsageError, match="justification differs"):
        v.declassify([doc], justification="something else", approvals=[approval])


def test_requests_that_need_no_approval_or_would_be_refused_anyway(office: Office) -> None:
    doc = seal(office, "clerk", "CONFIDENTIAL")
    with office.as_("clerk") as v, pytest.raises(UsageError, match="needs no approval"):
        v.request("export", doc)
    with office.as_("registrar") as v, pytest.raises(DeniedError, match="even approved"):
        v.request("open", doc)
    assert records(office)[-1]["outcome"] == "denied"


def test_approval_to_open_is_enforced_by_the_policy_not_by_keys(strict: Office,
                                                               tmp_path: Path) -> None:
    """docs/THREAT-MODEL.md §4.7: a cleared leader holds the class key; the
    two-person rule keeps the vault from opening it for them alone -- but
    the key itself, with stock age and a modified client, opens it."""
    from vault_helpers import doc_file, held_secret_keys, opens_with

    doc = seal(strict, "deputy", approvals=[grant(strict, "leader", ask(
        strict, "deputy", "seal", level="SECRET", compartments=["BOARD"]))])
    with strict.as_("leader") as v, pytest.raises(DeniedError, match="approval"):
        v.open(doc, io.BytesIO())
    assert opens_with(held_secret_keys(strict, "leader"), doc_file(strict, doc), tmp_path)
