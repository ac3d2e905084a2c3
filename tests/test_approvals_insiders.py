"""One approval serves one completion, of the very document and state it
was given for (docs/AUDIT.md §17, THREAT-MODEL.md §12): attacks by an
insider whose modified library writes its own records, signed with its own
key, on both backends. A completion that does not follow an allowed
decision of its own request id, action and document counts for nothing
and is named by ``doctor``.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from approval_support import ask, findings, grant, office_for, records, seal
from backends import Kind
from office import Office

import vault._ops.change as change
from vault._ops.discipline import Attempt, check_counted, record
from vault._ops.keys import usable_key
from vault._ops.read import class_identities
from vault._ops.seal import doc_state, new_version, wrap_recipients
from vault._ops.session import Session
from vault._sealed.label import LabelStanza
from vault._sealed.reading import read_sealed, unlock
from vault._sealed.writing import write_rewrapped
from vault._trust.approvals import Request, new_request, read_approval, sign_approval
from vault._trust.classes import LabelClass
from vault._trust.journal_approvals import CLOCK_SKEW
from vault.age import Header
from vault.errors import DeniedError, IntegrityError
from vault.policy import Label

# Shredding takes a second leader's approval (the office's own SECRET rule
# already asks one for changing a SECRET label).
SHRED_APPROVED = {
    "    actions: [shred]\n    who: {groups: [leaders]}\n    require: [justification]":
    "    actions: [shred]\n    who: {groups: [leaders]}\n    require: [justification, approver]\n"
    "    approvers: {groups: [leaders]}"}


def gone(doc: str) -> dict[str, Any]:
    return {"shred": {"doc": doc, "inputs": {"justification": "retention"}}}


def fields(office: Office, who: str, action: str, doc: str | None, request: str,
           state: dict[str, Any] | None, outcome: str) -> dict[str, Any]:
    return {"actor": {"name": who, "key": office.ids[who].fingerprint}, "action": action,
            "doc": doc, "label": None, "outcome": outcome, "rules": [], "reason": "",
            "policy": None, "request": request, "state": state}


def append_run(office: Office, who: str, *items: tuple[str, str | None, str,
                                                        dict[str, Any] | None, str]) -> None:
    """Records ``who`` appends with a modified library, in one signed run:
    ``(action, doc, request, state, outcome)`` each."""
    key = office.ids[who].signing_key
    with office.as_("officer") as v:
        v.audit.append_many([(fields(office, who, *item), key) for item in items])


def shredded(office: Office, doc: str) -> bool:
    with office.as_("officer") as v:
        v._s.trusted.catch_up()
        row = v._s.trusted.doc(doc)
        return row is not None and row.shredded


def problems(office: Office) -> list[str]:
    with office.as_("officer") as v:
        report = v.doctor()
    assert not report.ok
    return list(report.problems)


def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """From here on, a machine that replays the log from its start."""
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path / "fresh-state"))


def use(approval: bytes) -> dict[str, Any]:
    return {"use": {"approvals": [read_approval(approval).to_dict()]}}


# -- one approval, one document --------------------------------------------------------


def _as_written(complete: Any) -> Any:
    """A modified client's ``complete_wrapped``: its own completion, no
    check of its key first and nothing removed after."""
    def complete_wrapped(s: Session, atts: list[Attempt], states: list[dict[str, Any]],
                         ck: Any, reason: str = "") -> None:
        complete(s, atts, states, reason)
    return complete_wrapped


def _relabel_another(s: Session, att: Attempt, states: list[dict[str, Any]],
                     other: str) -> None:
    """What a modified client writes instead of the approved completion:
    ``other`` rewrapped under the approved new label, signed by the caller,
    its completion in the same signed run as the approved one's and under
    its request id."""
    approved = states[0]["document"]
    new = Label.from_dict(approved["statement"]["label"])
    sealed, f = read_sealed(s.backend, s.trusted, other)
    with f:
        file_key, _ = unlock(sealed, class_identities(s, sealed), s.trusted)
        old = sealed.label.statement
        statement = {**approved["statement"], "doc": other, "sealed_at": old["sealed_at"],
                     "sealed_by": old["sealed_by"], "content": old["content"]}
        ck = usable_key(s, LabelClass.of(new))
        stanzas = [st for r in wrap_recipients(s, ck) for st in r.wrap(file_key)]
        header = Header.seal([*stanzas, *LabelStanza(statement, s.me()).wrap(file_key),
                              sealed.meta], file_key)
        version = new_version()
        f.seek(sealed.header_size)
        with s.backend.write_document(other, version) as out:
            write_rewrapped(f, out, header)
    theirs = doc_state(other, version, header, ck, statement, approved.get("inputs") or {})
    extra = Attempt("reclassify", other, request=att.request, recorded=True, allowed=True)
    record(s, [att, extra], "done", [], "", [states[0], theirs], completion=True)
    check_counted(s, [states[0], theirs])


def test_one_approval_to_downgrade_a_document_relabels_no_other(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    office = office_for(tmp_path, backend)
    a = seal(office, "deputy", data=b"to be published")
    b = seal(office, "deputy", data=b"the real secret")
    with pytest.raises(DeniedError, match="approval is required"):  # the leader alone
        office.as_("leader").reclassify(b, level="CONFIDENTIAL", justification="x")
    approval = grant(office, "deputy", ask(office, "leader", "reclassify", a,
                                           level="CONFIDENTIAL"))

    def complete(s: Session, atts: list[Attempt], states: list[dict[str, Any]],
                 reason: str = "") -> None:
        _relabel_another(s, atts[0], states, b)

    with monkeypatch.context() as m:
        m.setattr(change, "complete_wrapped", _as_written(complete))
        with pytest.raises(IntegrityError, match=f"document {b}: the change was recorded but "
                                                 "does not count"):
            office.as_("leader").reclassify(a, level="CONFIDENTIAL", approvals=[approval])
    recs = records(office)[-2:]
    assert [r["doc"] for r in recs] == [a, b] and recs[0]["request"] == recs[1]["request"]
    fresh(monkeypatch, tmp_path)
    with office.as_("clerk") as v:  # cleared CONFIDENTIAL//BOARD only
        v.open(a, io.BytesIO())
        with pytest.raises(DeniedError, match="no read up"):
            v.open(b, io.BytesIO())
    assert office.as_("deputy").info(b).label.level == "SECRET"
    assert any(p.startswith(f"audit record {recs[1]['seq']} (document)")
               for p in problems(office))


def _relabel_first(office: Office, a: str, b: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The modified client's completion for ``b`` comes before the approved
    one in their run."""
    approval = grant(office, "deputy", ask(office, "leader", "reclassify", a,
                                           level="CONFIDENTIAL"))
    def complete(s: Session, atts: list[Attempt], states: list[dict[str, Any]],
                 reason: str = "") -> None:
        att = atts[0]
        row = s.trusted.doc(b)
        assert row is not None
        statement = {**states[0]["document"]["statement"], "doc": b,
                     "sealed_at": row.statement["sealed_at"],
                     "sealed_by": row.statement["sealed_by"],
                     "content": row.statement["content"]}
        theirs = {"document": {**states[0]["document"], "doc": b, "statement": statement}}
        extra = Attempt("reclassify", b, request=att.request, recorded=True, allowed=True)
        record(s, [extra, att], "done", [], "", [theirs, states[0]], completion=True)
        check_counted(s, [theirs, states[0]])

    with monkeypatch.context() as m:
        m.setattr(change, "complete_wrapped", _as_written(complete))
        with pytest.raises(IntegrityError, match=f"document {b}: the change was recorded"):
            office.as_("leader").reclassify(a, level="CONFIDENTIAL", approvals=[approval])


def test_a_completion_of_another_document_never_takes_the_approvals(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    office = office_for(tmp_path, backend)
    a = seal(office, "deputy", data=b"to be published")
    b = seal(office, "deputy", data=b"the real secret")
    _relabel_first(office, a, b, monkeypatch)
    theirs, approved = records(office)[-2:]
    fresh(monkeypatch, tmp_path)
    with office.as_("deputy") as v:  # the first completion of the request id ended it
        assert v.info(a).label.level == "SECRET"
        assert v.info(b).label.level == "SECRET"
    found = findings(office)
    assert (theirs["seq"], "document", f"the approvals of request id {theirs['request']} are "
            f"for document {a}, not {b}; ignored") in found
    assert (approved["seq"], "document", f"no allowed reclassify decision of document {a} "
            f"under request id {approved['request']} precedes this record (a completion "
            "follows its own decision); ignored") in found


def test_one_approval_to_shred_a_document_shreds_no_other(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    a, b, c = (seal(office, "deputy", "CONFIDENTIAL", data=f"doc {x}".encode())
               for x in "abc")
    with pytest.raises(DeniedError, match="approval is required"):
        office.as_("leader").shred(b, justification="x")
    approval = grant(office, "deputy", ask(office, "leader", "shred", a))
    append_run(office, "leader", ("shred", a, "r1", use(approval), "allowed"))
    append_run(office, "leader", ("shred", a, "r1", gone(a), "done"),
               ("shred", b, "r1", gone(b), "done"), ("shred", c, "r1", gone(c), "done"))
    last = records(office)[-1]["seq"]
    fresh(monkeypatch, tmp_path)
    assert shredded(office, a) and not shredded(office, b) and not shredded(office, c)
    with office.as_("deputy") as v:
        v.open(b, io.BytesIO())
        v.open(c, io.BytesIO())
    found = {p.split(":")[0] for p in problems(office)}
    assert {f"audit record {last - 1} (shred)", f"audit record {last} (shred)"} <= found
    assert f"audit record {last - 2} (shred)" not in found


def test_a_completion_counts_only_after_its_own_decision(office: Office) -> None:
    # The leader may shred alone: still, a completion whose request id is
    # another document's decision, or no decision's, changes nothing.
    a, b, c = (seal(office, "deputy", "CONFIDENTIAL", data=f"doc {x}".encode())
               for x in "abc")
    append_run(office, "leader", ("shred", a, "r1", None, "allowed"))
    append_run(office, "leader", ("shred", b, "r1", gone(b), "done"),
               ("shred", c, "nothing", gone(c), "done"))
    append_run(office, "leader", ("shred", a, "r1", gone(a), "done"))  # ended by b's
    assert not any(shredded(office, d) for d in (a, b, c))
    first = len(records(office)) - 3
    assert [(s, k) for s, k, _ in findings(office)] == [
        (first, "shred"), (first + 1, "shred"), (first + 2, "shred")]
    assert (first, "shred", f"no allowed shred decision of document {b} under request id r1 "
            "precedes this record (a completion follows its own decision); ignored"
            ) in findings(office)
    append_run(office, "leader", ("shred", a, "r2", None, "allowed"))
    append_run(office, "leader", ("shred", a, "r2", gone(a), "done"))
    assert shredded(office, a)  # its own decision, then its completion


def test_a_decision_that_reuses_an_approved_request_id_gets_no_approvals(
        tmp_path: Path, backend: Kind) -> None:
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    a, b = (seal(office, "deputy", "CONFIDENTIAL", data=f"doc {x}".encode()) for x in "ab")
    approval = grant(office, "deputy", ask(office, "leader", "shred", a))
    append_run(office, "leader", ("shred", a, "r1", use(approval), "allowed"))
    append_run(office, "leader", ("shred", b, "r1", None, "allowed"))  # b's own, unapproved
    append_run(office, "leader", ("shred", b, "r1", gone(b), "done"))
    assert not shredded(office, b)
    assert (records(office)[-1]["seq"], "shred", f"the approvals of request id r1 are for "
            f"document {a}, not {b}; ignored") in findings(office)


def test_an_approval_serves_no_later_state_of_its_document(tmp_path: Path,
                                                           backend: Kind) -> None:
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    a = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes")
    approval = grant(office, "deputy", ask(office, "leader", "shred", a))
    append_run(office, "leader", ("shred", a, "r1", use(approval), "allowed"))
    # The document changes between the approved decision and its completion.
    office.as_("leader").reclassify(a, add_compartments=["FINANCE"], justification="x")
    append_run(office, "leader", ("shred", a, "r1", gone(a), "done"))
    assert not shredded(office, a)
    assert (records(office)[-1]["seq"], "shred", "the approvals of request id r1 are for "
            f"another state of document {a}; ignored") in findings(office)


# -- expiry: a record's time is its writer's claim ---------------------------------------


def _dated(office: Office, r: Request, made: datetime) -> Request:
    """``r`` as the requester's modified client signs it, dated ``made``."""
    st = r.statement
    return new_request(office.ids["leader"], vault=st["vault"], action=st["action"],
                       doc=st["doc"], state=st["state"], label=st["label"],
                       new_label=st["new_label"], details=st["details"],
                       justification=st["justification"], requester="leader",
                       policy=st["policy"], lifetime=timedelta(hours=1), now=made)


def test_an_expired_approval_is_not_used_by_dating_records_back(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    import vault.audit._log as log
    from vault.audit._record import format_time

    office = office_for(tmp_path, backend, SHRED_APPROVED)
    a, b = (seal(office, "deputy", "CONFIDENTIAL", data=f"doc {x}".encode()) for x in "ab")
    now = datetime.now(UTC)  # after the seals, state runs of the log
    # Within the clock skew allowed, records dated back count at their time.
    approval = grant(office, "deputy", ask(office, "leader", "shred", b))
    monkeypatch.setattr(log, "now", lambda: format_time(now - CLOCK_SKEW / 2))
    append_run(office, "leader", ("shred", b, "r2", use(approval), "allowed"))
    append_run(office, "leader", ("shred", b, "r2", gone(b), "done"))
    assert shredded(office, b)
    # An approval that expired five minutes ago, of a request the modified
    # client dated back too; its records are dated before the expiry.
    r = _dated(office, ask(office, "leader", "shred", a), now - timedelta(minutes=9))
    expired = sign_approval(office.ids["deputy"], r, name="deputy",
                            lifetime=timedelta(minutes=4),
                            now=now - timedelta(minutes=9)).to_bytes()
    monkeypatch.setattr(log, "now", lambda: format_time(now - timedelta(minutes=8)))
    append_run(office, "leader", ("shred", a, "r1", use(expired), "allowed"))
    append_run(office, "leader", ("shred", a, "r1", gone(a), "done"))
    monkeypatch.undo()
    assert not shredded(office, a)
    used = records(office)[-2]["seq"]
    assert any(seq == used and kind == "use" and "deputy's approval expired at" in message
               for seq, kind, message in findings(office))


def test_a_use_dated_before_its_approval_was_made_does_not_count(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    import vault.audit._log as log
    from vault.audit._record import format_time

    office = office_for(tmp_path, backend, SHRED_APPROVED)
    a = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes")
    approval = grant(office, "deputy", ask(office, "leader", "shred", a))
    when = datetime.now(UTC) - CLOCK_SKEW - timedelta(seconds=10)
    monkeypatch.setattr(log, "now", lambda: format_time(when))
    append_run(office, "leader", ("shred", a, "r1", use(approval), "allowed"))
    append_run(office, "leader", ("shred", a, "r1", gone(a), "done"))
    monkeypatch.undo()
    assert not shredded(office, a)
    made = read_approval(approval).statement["created"]
    assert (records(office)[-2]["seq"], "use", f"deputy's approval is dated ahead of the record "
            f"that uses it: valid from {made} (or the record is dated back); ignored") \
        in findings(office)


@pytest.mark.parametrize("who", ["registrar", "a forged line", "registrar deciding"])
def test_another_persons_record_of_the_request_id_ends_nothing(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch, who: str) -> None:
    # While the leader's approved declassification is under way (decided,
    # not yet completed, no lock held), someone else appends a `failed`
    # record naming its request id: the registrar with their own key, or a
    # raw line claiming to be the leader's under no valid signature; or the
    # registrar records an `allowed` decision of their own under it, to
    # take the decision over. Only the decision's maker, signing, ends it,
    # and the first decision under an id is the one: the completion still
    # counts and the deputy's approval is used by it, not spent.
    import base64
    import json

    office = office_for(tmp_path, backend)
    doc = seal(office, "leader")
    approval = grant(office, "deputy", ask(office, "leader", "declassify", doc))
    real = change.unlock

    def interloper(*args: Any, **kwargs: Any) -> Any:
        lines = office.raw.audit_lines()
        last = json.loads(lines[-1])
        assert last["actor"]["name"] == "leader" and last["outcome"] == "allowed", last
        if who.startswith("registrar"):
            append_run(office, "registrar", ("declassify", doc, last["request"], None,
                                             "allowed" if "deciding" in who else "failed"))
        else:
            forged = {**last, "seq": len(lines), "outcome": "failed", "state": None,
                      "sig": base64.b64encode(bytes(64)).decode()}
            office.raw.append_audit_line(json.dumps(
                forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
        return real(*args, **kwargs)

    monkeypatch.setattr(change, "unlock", interloper)
    with office.as_("leader") as v:
        v.declassify([doc], approvals=[approval])
    monkeypatch.undo()
    with office.as_("deputy") as v:
        assert [d.label.level for d in v.ls() if d.id == doc] == ["PUBLIC"]
        assert not [p for p in v.doctor().problems if "not entitled" in p]


def test_another_persons_decision_under_a_seals_request_id_takes_nothing(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The leader's seal is decided and its payload being written when the
    # registrar (cleared for INTERNAL only) records an allowed seal decision
    # of their own under the leader's request id, read from the log. Before,
    # it took the leader's place: the leader's completion did not count, the
    # document never came into force, and doctor blamed the leader's record.
    import json

    import vault._ops.seal as sealing

    office = office_for(tmp_path, backend)
    real = sealing.complete_wrapped

    def interloper(*args: Any, **kwargs: Any) -> Any:
        lines = [json.loads(x) for x in office.raw.audit_lines()]
        last = next(r for r in reversed(lines) if r["action"] == "seal")
        assert last["actor"]["name"] == "leader" and last["outcome"] == "allowed", last
        append_run(office, "registrar", ("seal", last["doc"], last["request"], None, "allowed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sealing, "complete_wrapped", interloper)
    with office.as_("leader") as v:
        doc = v.seal(io.BytesIO(b"board minutes"), level="SECRET", compartments=["BOARD"],
                     justification="minutes").id
    monkeypatch.undo()
    with office.as_("leader") as v:
        assert [d.id for d in v.ls()] == [doc]
        report = v.doctor()
    assert not [p for p in report.problems if "precedes this record" in p or doc in p]


def _copy_of(r: Request, signer: Any, name: str, **change: Any) -> Request:
    """Request ``r``'s statement with ``change``, under the same id, naming
    ``name`` as requester and signed by ``signer`` (an identity with its
    signing key): anyone can leave one in the vault."""
    from vault._primitives import b64, canonical_json, sign

    statement = {**r.statement, **change,
                 "requester": {"name": name, "signing_key": signer.signing_public}}
    sig = sign(signer.signing_key, "request", canonical_json(statement))
    return Request.read({"sig": b64(sig), "statement": statement})


_LEFT = ["an impostor's refusal", "an impostor's approval of a copy", "the registrar's refusal",
         "the registrar's approval of their own copy", "17 approvals by the registrar"]


@pytest.mark.parametrize("left", _LEFT)
def test_answers_left_by_others_are_not_heard(tmp_path: Path, backend: Kind,
                                              left: str) -> None:
    # Left in the vault by the registrar: under the deputy's name with a key
    # of their own (an impostor), or as themselves -- a user of the policy,
    # but no approver of a SECRET declassification. None speaks for anyone
    # or stands in the way: the deputy's approval, left in the vault, is the
    # one `--request` hears, and it counts.
    from vault.identity import new_identity

    office = office_for(tmp_path, backend)
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc)
    grant(office, "deputy", r)
    impostor, me = new_identity("deputy", post_quantum=False), office.ids["registrar"]
    planted = {
        _LEFT[0]: lambda: [sign_approval(impostor, r, name="deputy", refuse=True, reason="no")],
        _LEFT[1]: lambda: [sign_approval(impostor, _copy_of(r, impostor, "leader",
                                                            justification="other"),
                                         name="deputy")],
        _LEFT[2]: lambda: [sign_approval(me, r, name="registrar", refuse=True, reason="veto")],
        _LEFT[3]: lambda: [sign_approval(me, _copy_of(r, me, "registrar"), name="registrar")],
        _LEFT[4]: lambda: [sign_approval(me, r, name="registrar", reason=f"yes {i}")
                           for i in range(17)],
    }[left]()
    with office.as_("registrar") as v:
        for a in planted:
            v._s.backend.put_statement("approval", a.to_bytes())
    result = office.cli("leader", "declassify", doc, "--request", r.id)
    assert result.exit_code == 0, result.stderr
    with office.as_("deputy") as v:
        assert [d.label.level for d in v.ls() if d.id == doc] == ["PUBLIC"]


@pytest.mark.parametrize("signer", ["a stranger's key", "the registrar's own"])
def test_a_request_id_names_the_first_request_recorded_under_it(
        tmp_path: Path, backend: Kind, signer: str) -> None:
    # A newer copy of the leader's request under the same id, signed with a
    # stranger's key under the leader's name, or by the registrar as
    # themselves: `vault approve ID` answers the leader's, and the leader
    # acts on the answer.
    from vault.identity import new_identity

    office = office_for(tmp_path, backend)
    doc = seal(office, "leader")
    r = ask(office, "leader", "declassify", doc)
    later = (r.created + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    copy = (_copy_of(r, new_identity("leader", post_quantum=False), "leader", created=later)
            if signer == "a stranger's key" else
            _copy_of(r, office.ids["registrar"], "registrar", created=later))
    with office.as_("registrar") as v:
        v._s.backend.put_statement("request", copy.to_bytes())
    result = office.cli("deputy", "approve", r.id, "--yes")
    assert result.exit_code == 0, result.stderr
    result = office.cli("leader", "declassify", doc, "--request", r.id)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("what", ["a policy version", "a use of approvals"])
def test_a_run_signed_by_one_user_speaks_for_nobody_else(
        tmp_path: Path, backend: Kind, what: str) -> None:
    # A run is one signature over several records, grouped by the signer's
    # key. The clerk's modified client puts an unsigned record under another
    # name -- but the clerk's key -- before one signed record of their own.
    # Before, the replay applied it as that person's: a policy version
    # "by the officer" that made the clerk an officer came into force, or a
    # decision "by the leader" spent the leader's approval before the
    # leader could use it.
    import secrets

    office = office_for(tmp_path, backend)
    doc = seal(office, "deputy", data=b"to be published")
    approval = grant(office, "deputy", ask(office, "leader", "reclassify", doc,
                                           level="CONFIDENTIAL"))
    if what == "a policy version":
        text = office.policy_text({"version: 1\n": "version: 1\npost_quantum: off\n",
                                   "    members: [officer]\n": "    members: [officer, clerk]\n"})
        name, action, state, outcome = "officer", "policy-apply", {"policy": {
            "version": 2, "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "text": text}}, "done"
    else:
        name, action, state, outcome = "leader", "reclassify", use(approval), "allowed"

    def record_of(who: str, action: str, state: Any, outcome: str) -> dict[str, Any]:
        return {"actor": {"name": who, "key": office.ids["clerk"].fingerprint},
                "action": action, "doc": None if action == "policy-apply" else doc,
                "label": None, "outcome": outcome, "rules": [], "reason": "", "policy": None,
                "request": secrets.token_hex(16), "state": state}

    with office.as_("officer") as v:
        v.audit.append_many([(record_of(name, action, state, outcome),
                              office.ids["clerk"].signing_key),
                             (record_of("clerk", "open", None, "denied"),
                              office.ids["clerk"].signing_key)])
    fresh_machine = tmp_path / "fresh-state"
    for state_dir in (None, fresh_machine):  # this machine, and one replaying from the start
        env = {"VAULT_STATE_DIR": str(state_dir)} if state_dir else {}
        with pytest.MonkeyPatch.context() as m:
            for k, val in env.items():
                m.setenv(k, val)
            with office.as_("leader") as v:
                assert v.policy_version == 1
            assert any(kind == "signature" and "another name" in message
                       for _, kind, message in findings(office))
    if what == "a use of approvals":
        with office.as_("leader") as v:
            v.reclassify(doc, level="CONFIDENTIAL", approvals=[approval])
            assert [d.label.level for d in v.ls() if d.id == doc] == ["CONFIDENTIAL"]


def test_an_approver_refuses_a_request_its_approval_could_never_serve(
        tmp_path: Path, backend: Kind) -> None:
    # A request signed by its requester but never recorded (a modified
    # client's, or one made and kept back) cannot be used: the use needs a
    # request on the record since the policy in force was installed. The
    # approver is told so before signing anything.
    from vault._trust.approvals import ApprovalError

    office = office_for(tmp_path, backend, SHRED_APPROVED)
    doc = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes")
    unrecorded = _dated(office, ask(office, "leader", "shred", doc), datetime.now(UTC))
    with pytest.raises(ApprovalError) as e:
        grant(office, "deputy", unrecorded)
    assert e.value.kind == "unrecorded"
    assert not [r for r in records(office) if r["action"] == "approve"
                and r["outcome"] == "allowed" and r.get("state")]


def _completions_dated(m: pytest.MonkeyPatch, when: Any) -> None:
    """Completion records (those change.complete writes) dated ``when(now)``;
    every other record on time."""
    import vault.audit._log as log_module

    real_now, completing = log_module.now, [False]

    def dated(real: Any) -> Any:
        def complete(*a: Any, **k: Any) -> Any:
            completing[0] = True
            try:
                return real(*a, **k)
            finally:
                completing[0] = False
        return complete

    m.setattr(log_module, "now", lambda: when(real_now()) if completing[0] else real_now())
    m.setattr(change, "complete", dated(change.complete))
    m.setattr(change, "complete_wrapped", dated(change.complete_wrapped))


@pytest.mark.parametrize("completion", ["on time", "dated back too"])
def test_an_approved_label_dated_back_is_not_counted(tmp_path: Path, backend: Kind,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     completion: str) -> None:
    # An approval binds a new label's level, compartments, caveats, embargo
    # and declassify-on, not its 'created' -- and a declassify-on duration
    # counts from 'created'. The leader's modified client recorded the
    # approved "CONFIDENTIAL, declassify P25Y" with 'created' in 1990: the
    # document was due at once, and any rule for due documents (a release
    # by one person) applied, on every machine; doctor was clean.
    from vault.policy import Policy

    office = office_for(tmp_path, backend)
    doc = seal(office, "leader", declassify_on="P25Y")
    approval = grant(office, "deputy", ask(office, "leader", "reclassify", doc,
                                           level="CONFIDENTIAL"))
    made = Policy.make_label

    def dated_back(self: Policy, **fields: Any) -> Any:
        return made(self, **{**fields, "created": datetime(1990, 1, 1, tzinfo=UTC)})

    with monkeypatch.context() as m:
        m.setattr(Policy, "make_label", dated_back)
        if completion == "dated back too":
            # The completion record, which carries the label, dated back with
            # it; the decision, which carries the approval, left on time.
            _completions_dated(m, lambda now: "1990-01-01T00:00:30.000000Z")
        with office.as_("leader") as v, pytest.raises(IntegrityError, match="does not count"):
            v.reclassify(doc, level="CONFIDENTIAL", approvals=[approval])
    for state_dir in (None, tmp_path / "fresh-state"):  # this machine, and a new one
        if state_dir is not None:
            monkeypatch.setenv("VAULT_STATE_DIR", str(state_dir))
        with office.as_("leader") as v:
            (row,) = [d for d in v.ls() if d.id == doc]
            assert row.label.level == "SECRET"  # the relabel did not count
            assert not v._s.trusted.docs(due_by=datetime.now(UTC))
        assert any(kind == "document" and ("'created' time is not the time" in message
                                           or "precedes this record" in message)
                   for _, kind, message in findings(office))


def test_a_clock_stepped_back_mid_operation_loses_nothing(tmp_path: Path, backend: Kind,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # An honest client whose clock steps back two minutes (a time sync)
    # between its decision and its completion: the completion is dated
    # before the decision and the label's 'created' after its record. It
    # counts; a day is what the replay allows either way.
    from vault.audit._record import format_time

    office = office_for(tmp_path, backend)
    doc = seal(office, "leader", declassify_on="P25Y")
    approval = grant(office, "deputy", ask(office, "leader", "reclassify", doc,
                                           level="CONFIDENTIAL"))
    with monkeypatch.context() as m:
        _completions_dated(m, lambda now: format_time(datetime.now(UTC) - timedelta(minutes=2)))
        with office.as_("leader") as v:
            v.reclassify(doc, level="CONFIDENTIAL", approvals=[approval])
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path / "fresh-state"))
    with office.as_("officer") as v:
        assert [d.label.level for d in v.ls() if d.id == doc] == ["CONFIDENTIAL"]
        assert v.doctor().ok


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00.000000Z", "2025-13-01T00:00:00.000000Z"])
def test_a_decision_dated_in_year_one_stops_nobody(tmp_path: Path, backend: Kind,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    when: str) -> None:
    # The clerk's modified client records a seal decision dated 0001-01-01
    # (a valid record time) and its completion: holding the completion to a
    # day of its decision subtracted a day from year 1, and every command of
    # every user ended in "internal error (OverflowError)", for good.
    import secrets

    import vault.audit._log as log_module

    office = office_for(tmp_path, backend)
    clerk = office.ids["clerk"]
    request = secrets.token_hex(16)

    def record_of(outcome: str) -> dict[str, Any]:
        return {"actor": {"name": "clerk", "key": clerk.fingerprint}, "action": "seal",
                "doc": "a" * 16, "label": None, "outcome": outcome, "rules": [],
                "reason": "", "policy": None, "request": request, "state": None}

    with office.as_("clerk") as v:
        with monkeypatch.context() as m:
            m.setattr(log_module, "now", lambda: when)  # month 13 matches the pattern too
            v.audit.append(record_of("allowed"), clerk.signing_key)
        v.audit.append(record_of("done"), clerk.signing_key)
    for state_dir in (None, tmp_path / "fresh-state"):
        if state_dir is not None:
            monkeypatch.setenv("VAULT_STATE_DIR", str(state_dir))
        for who in ("officer", "leader"):
            r = office.cli(who, "ls")
            assert r.exit_code == 0, r.stderr
        assert office.as_("officer").verify_audit().size > 0
        r = office.cli("officer", "audit", "log", "--since", "2000-01-01")
        assert r.exit_code == 0 and "allowed" in r.stdout, r.stderr


def test_a_request_dated_in_year_9999_stops_no_approver(tmp_path: Path,
                                                         backend: Kind) -> None:
    # A request file left in the vault dated 9999-12-31: reading it added
    # 90 days to its time, and every approver's listing ended in
    # "internal error (OverflowError)".
    from vault._primitives import b64, canonical_json, sign
    from vault._trust._statement import encode

    office = office_for(tmp_path, backend)
    doc = seal(office, "leader")
    honest = ask(office, "leader", "reclassify", doc, level="CONFIDENTIAL")
    planted = {**honest.statement, "created": "9999-12-31T23:59:58Z",
               "expires": "9999-12-31T23:59:59Z"}
    sig = sign(office.ids["clerk"].signing_key, "request", canonical_json(planted))
    with office.as_("clerk") as v:  # anyone who can write the vault
        v._s.backend.put_statement("request", encode({"sig": b64(sig), "statement": planted}))
    with office.as_("deputy") as v:
        assert honest.id in {r.id for r in v.approvals()}


def test_a_sealed_at_that_is_no_time_stops_no_listing(tmp_path: Path, backend: Kind,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A modified client seals with "sealed_at": "not-a-time" in its signed
    # statement: 'vault ls --since' ended in a usage error for everyone.
    import vault._ops.seal as sealing

    office = office_for(tmp_path, backend)
    real = sealing._seal_into

    def junk_time(out: Any, stream: Any, size: Any, doc_id: str, me: Any, common: Any,
                  *rest: Any) -> Any:
        return real(out, stream, size, doc_id, me, {**common, "sealed_at": "not-a-time"},
                    *rest)

    with monkeypatch.context() as m:
        m.setattr(sealing, "_seal_into", junk_time)
        seal(office, "clerk", "INTERNAL", ("STAFF",), data=b"dated nowhere")
    honest = seal(office, "clerk", "INTERNAL", ("STAFF",), data=b"dated")
    r = office.cli("leader", "ls", "--since", "2000-01-01", "--json")
    assert r.exit_code == 0, r.stderr
    assert honest in r.stdout


def test_a_record_time_of_no_date_is_no_clock(tmp_path: Path, backend: Kind,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The clerk records a request dated 2026-02-30 (it matches the pattern
    # of record times) while only the officer has written: it counted, and
    # became the time every expiry was checked from, which no date parser
    # takes -- each approved action ended in "internal error".
    import vault.audit._log as log_module
    from vault._trust.approvals import new_request
    from vault._trust.journal_approvals import clock

    office = office_for(tmp_path, backend)
    clerk, no_date = office.ids["clerk"], "2026-02-30T00:00:00.000000Z"
    with office.as_("clerk") as v, monkeypatch.context() as m:
        s = v._s
        r = new_request(s.me(), vault=s.manifest.vault_id, action="seal", doc=None,
                        state=None, label={"level": "SECRET", "compartments": ["BOARD"],
                                           "caveats": []}, new_label=None, details={},
                        justification="x", requester="clerk", policy=s.trusted.policy.hash,
                        lifetime=None)
        m.setattr(log_module, "now", lambda: no_date)
        v.audit.append({"actor": {"name": "clerk", "key": clerk.fingerprint},
                        "action": "request", "doc": None, "label": None,
                        "outcome": "allowed", "rules": [], "reason": "", "policy": None,
                        "state": {"request": {"id": r.id, "digest": r.digest,
                                              "statement": r.signed()}}},
                       clerk.signing_key)
    with office.as_("officer") as v:
        v._s.trusted.catch_up()
        assert v._s.trusted.store.meta("latest") != no_date
    # A time kept by an earlier version's replay is no clock either.
    now = datetime.now(UTC)
    assert clock(no_date, now) == now and clock("0001-01-01T00:00:00.000000Z", now) == now


def test_a_line_break_in_a_justification_prints_no_line_of_another_request(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # A modified client's justification held line breaks and then a whole
    # fake description ("reclassify ... typo in the title"): 'vault approve'
    # printed it as lines of its own, below which the real request scrolled
    # away. It is one line, its breaks shown as \n.
    import vault._ops.approve as approve_module

    doc = seal(office, "leader")
    monkeypatch.setattr(approve_module, "check_free_text", lambda *a: None)
    r = ask(office, "leader", "declassify", doc,
            justification="routine\n\n\nleader asks to reclassify document x")
    shown = r.describe()
    assert "routine\\n\\n\\nleader asks" in shown
    assert not [line for line in shown.splitlines() if line.startswith("leader asks to recl")]


def test_a_request_naming_another_label_than_the_documents_is_refused(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # The leader's modified client asked to lower a SECRET//BOARD document,
    # naming its label SECRET//STAFF: the deputy was shown "SECRET//STAFF
    # -> CONFIDENTIAL//STAFF, a routine staff memo", approved, and the board
    # document was lowered, on every machine, doctor clean.
    import vault._ops.approve as approve_module
    from vault._trust.approvals import ApprovalError

    doc = seal(office, "leader", comps=("BOARD",))
    real = approve_module._doc_label

    def claimed(s: Any, doc_id: str | None) -> tuple[str, Any]:
        header, label = real(s, doc_id)
        return header, s.trusted.policy.make_label(level=label.level, compartments=["STAFF"])

    with monkeypatch.context() as m:
        m.setattr(approve_module, "_doc_label", claimed)
        r = ask(office, "leader", "reclassify", doc, level="CONFIDENTIAL",
                compartments=["STAFF"])
    assert r.label is not None and r.label["compartments"] == ["STAFF"]
    with pytest.raises(ApprovalError, match="names another label than document") as e:
        grant(office, "deputy", r)
    assert e.value.kind == "label"
    # Signed all the same (a modified approver's client, or one fooled before
    # this check): the use is refused, and the document keeps its label.
    with monkeypatch.context() as m:
        m.setattr(approve_module, "_check_asked", lambda *a: None)
        approval = grant(office, "deputy", r)
    with pytest.raises(ApprovalError, match="names another label"), office.as_("leader") as v:
        v.reclassify(doc, level="CONFIDENTIAL", compartments=["STAFF"],
                     approvals=[approval])
    with office.as_("leader") as v:
        assert v.info(doc).label.compartments == frozenset({"BOARD"})
    # A client modified further skips that check too and writes the
    # reclassification with the lying request's approval. Every replay --
    # the leader's own and a machine's that starts afresh -- holds the use
    # to the label it records for that document state (replay rules 9).
    import vault._ops.approved as approved_module
    real_check = approved_module.check_request

    def no_label(*args: Any, **kwargs: Any) -> Any:
        return real_check(*args, **{**kwargs, "label": None})

    with monkeypatch.context() as m:
        m.setattr(approved_module, "check_request", no_label)
        with pytest.raises(IntegrityError, match="does not count"), office.as_("leader") as v:
            v.reclassify(doc, level="CONFIDENTIAL", compartments=["STAFF"],
                         approvals=[approval])
    for state in (None, "fresh-state"):
        with monkeypatch.context() as m:
            if state is not None:
                m.setenv("VAULT_STATE_DIR", str(office.root / state))
            with office.as_("deputy") as v:
                assert v.info(doc).label.compartments == frozenset({"BOARD"})
            assert any("names another label" in message
                       for _, _, message in findings(office))


_SEAL_WITH_A_SECOND_LEADER = {
    "    below_floor: true\n    require: [justification]":
        "    below_floor: true\n    require: [justification, approver]\n"
        "    approvers: {groups: [leaders]}",
    "    description: Leaders seal documents at any level they are cleared for.\n"
    "    effect: allow\n    actions: [seal]\n    who: {groups: [leaders]}\n":
        "    description: Leaders seal documents at any level they are cleared for.\n"
        "    effect: allow\n    actions: [seal]\n    who: {groups: [leaders]}\n"
        "    require: [approver]\n    approvers: {groups: [leaders]}\n"}


def test_an_approval_to_seal_serves_below_a_floor_only_if_it_was_asked_for(
        tmp_path: Path, backend: Kind) -> None:
    # Every leader's seal takes a second leader, and so does sealing below
    # the floor intake finds. The deputy approved "seal at INTERNAL//STAFF,
    # weekly staff newsletter", shown no file; the leader used it to seal a
    # file holding a card number (floor CONFIDENTIAL//FINANCE//PERSONAL-DATA)
    # at INTERNAL//STAFF. And asking for the below-floor seal itself was
    # impossible: a request was decided without the file's floor.
    from vault._trust.approvals import ApprovalError

    office = office_for(tmp_path, backend, _SEAL_WITH_A_SECOND_LEADER)
    card = office.file("refund.txt", b"Refund to card 4111 1111 1111 1111, thanks.\n")
    staff = {"level": "INTERNAL", "compartments": ["STAFF"]}
    newsletter = ask(office, "leader", "seal", justification="weekly staff newsletter", **staff)
    assert "floor" not in newsletter.details
    approval = grant(office, "deputy", newsletter)
    with pytest.raises(ApprovalError, match="below the floor intake found") as e, \
            office.as_("leader") as v:
        v.seal(card, justification="weekly staff newsletter", approvals=[approval], **staff)
    assert e.value.kind == "floor"
    # Asked for with the file: the approver is shown its floor, and it serves.
    below = ask(office, "leader", "seal", file=card, justification="refund notice", **staff)
    assert below.details["floor"] == {"level": "CONFIDENTIAL", "compartments": ["FINANCE"],
                                      "caveats": ["PERSONAL-DATA"]}
    assert set(below.details) == {"file", "floor"}  # and of this file alone
    with office.as_("deputy") as v:
        assert "  below floor    CONFIDENTIAL//FINANCE//PERSONAL-DATA: intake found this in " \
            "the file" in below.describe(v.policy)
    # A client modified to skip the check records the seal all the same: the
    # replay gives it no approvers, and it does not count.
    import vault._ops.approved as approved_module

    with pytest.MonkeyPatch.context() as m:
        m.setattr(approved_module, "check_outcome", lambda *a, **k: None)
        with pytest.raises(IntegrityError, match="does not count"), office.as_("leader") as v:
            v.seal(card, justification="weekly staff newsletter",
                   approvals=[grant(office, "deputy", ask(
                       office, "leader", "seal", justification="weekly staff newsletter",
                       **staff))], **staff)
    approval = grant(office, "deputy", below)
    with office.as_("leader") as v:
        doc = v.seal(card, justification="refund notice", approvals=[approval], **staff).id
    for state in (None, "fresh-state"):
        with pytest.MonkeyPatch.context() as m:
            if state is not None:
                m.setenv("VAULT_STATE_DIR", str(tmp_path / state))
            with office.as_("deputy") as v:
                assert v.info(doc).label.level == "INTERNAL"


def test_a_seal_below_its_floor_under_a_two_person_rule_can_be_asked_for(
        tmp_path: Path, backend: Kind) -> None:
    # The hint said "vault request seal ...", and the request answered
    # "seal needs no approval here": it was decided without the file's floor.
    office = office_for(tmp_path, backend, {
        "    below_floor: true\n    require: [justification]":
            "    below_floor: true\n    require: [justification, approver]\n"
            "    approvers: {groups: [leaders]}"})
    card = str(office.file("refund.txt", b"Refund to card 4111 1111 1111 1111.\n"))
    args = ("--level", "INTERNAL//STAFF", "--justification", "refund notice")
    r = office.cli("leader", "seal", card, *args)
    assert r.exit_code == 3 and "vault request seal FILE --level" in r.stderr, r.stderr
    r = office.cli("leader", "request", "seal", card, *args)
    assert r.exit_code == 0, r.stderr
    request_id = r.stdout.strip()
    r = office.cli("deputy", "approve", request_id, "--yes")
    assert r.exit_code == 0, r.stderr
    assert "below floor    CONFIDENTIAL//FINANCE//PERSONAL-DATA" in r.stderr + r.stdout
    r = office.cli("leader", "seal", card, *args, "--request", request_id)
    assert r.exit_code == 0, r.stderr
    # The replay judged the approval without the request's floor: no rule
    # asked for it, and doctor called the honest approval a problem for good.
    for state in (None, "fresh-state"):
        with pytest.MonkeyPatch.context() as m:
            if state is not None:
                m.setenv("VAULT_STATE_DIR", str(tmp_path / state))
            with office.as_("officer") as v:
                assert v.doctor().problems == []


def _plant_request(office: Office, who: str, action: str, doc: str | None,
                   label: dict[str, Any], new_label: dict[str, Any] | None,
                   details: dict[str, Any] | None = None) -> Request:
    """A request ``who``'s modified client signs and records as they are:
    genuine, on the record, left in the vault -- whatever its labels name."""
    from vault._ops.discipline import attempt

    with office.as_(who) as v:
        s = v._s
        s.trusted.catch_up()
        row = s.trusted.doc(doc) if doc is not None else None
        r = new_request(s.me(), vault=s.manifest.vault_id, action=action, doc=doc,
                        state=row.header if row is not None else None, label=label,
                        new_label=new_label, details=details or {}, justification="routine",
                        requester=who, policy=s.trusted.policy.hash)
        with attempt(s, "request", doc) as att:
            record(s, [att], "allowed", [], f"request {r.id}",
                   [{"request": {"id": r.id, "digest": r.digest, "statement": r.signed()}}])
        s.backend.put_statement("request", r.to_bytes())
    return r


@pytest.mark.parametrize("what", ["a level", "a compartment", "a caveat", "a new level",
                                  "a floor"])
def test_a_request_naming_what_the_policy_does_not_know_stops_no_approver(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    # The leader's modified client recorded a genuine request whose label
    # (or a reclassification's new label) named a level, compartment or
    # caveat the policy does not define: every approver's 'vault approvals'
    # ended in "internal error (KeyError)", and 'vault approve ID --refuse'
    # too, until it expired (up to 90 days); doctor said ok. Now the replay
    # does not count it and doctor names it; approvers list the others, and
    # answering it is refused with a clear error (a refusal would not count
    # either: no rule asks anyone to answer it, and it can never be done).
    from vault._trust._statement import bound_label

    office = office_for(tmp_path, backend)
    doc = seal(office, "leader")
    honest = ask(office, "leader", "reclassify", doc, level="CONFIDENTIAL")
    unknown = {"a level": {"level": "NOPE", "compartments": [], "caveats": []},
               "a compartment": {"level": "SECRET", "compartments": ["ZZZ"], "caveats": []},
               "a caveat": {"level": "SECRET", "compartments": [], "caveats": ["ZZZ"]},
               "a new level": {"level": "NOPE", "compartments": ["BOARD"], "caveats": []},
               "a floor": {"level": "NOPE", "compartments": [], "caveats": []}}[what]
    if what == "a floor":  # a seal below a floor the policy does not know
        r = _plant_request(office, "leader", "seal", None,
                           {"level": "INTERNAL", "compartments": ["STAFF"], "caveats": []},
                           None, {"floor": unknown})
    elif what == "a new level":
        with office.as_("leader") as v:
            label = bound_label(v.info(doc).label)
        r = _plant_request(office, "leader", "reclassify", doc, label, unknown)
    else:
        r = _plant_request(office, "leader", "seal", None, unknown, None)
    with office.as_("deputy") as v:
        assert [p.id for p in v.approvals()] == [honest.id]
    res = office.cli("deputy", "approvals")
    assert res.exit_code == 0 and honest.id in res.stdout and r.id not in res.stdout, res.stderr
    res = office.cli("deputy", "approve", r.id, "--refuse", "--yes", "--reason", "bogus")
    assert res.exit_code == 3, res.stderr
    assert f"vault: request {r.id} cannot be answered: the " in res.stderr
    assert "unknown to this policy" in res.stderr and "internal error" not in res.stderr
    res = office.cli("deputy", "approve", r.id, "--yes")
    assert res.exit_code == 3 and "unknown to this policy" in res.stderr, res.stderr
    for _ in ("this machine", "a fresh one"):
        whose = {"a new level": "new label", "a floor": "floor"}.get(what, "label")
        assert any(f"a request whose {whose} names" in message
                   for _, _, message in findings(office))
        fresh(monkeypatch, tmp_path)
    assert any("unknown to this policy" in p for p in problems(office))
    # The honest request is still answered, and performed.
    approval = grant(office, "deputy", honest)
    with office.as_("leader") as v:
        assert v.reclassify(doc, level="CONFIDENTIAL", approvals=[approval],
                            justification="the merger closed").label.level == "CONFIDENTIAL"
