"""The clock approvals are judged by (docs/AUDIT.md §17): a writer chooses
its records' times, so expiry is judged against the second latest of the
times at which each person last wrote a state run that counted. One
insider's record dated years ahead -- from anyone the policy names, even
the outsider -- must not make every approval in the vault look expired for
good; a use dated back is still caught (test_approvals_insiders.py). Both
backends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from approval_support import ask, findings, grant, office_for, records, seal
from backends import Kind
from office import Office
from test_approvals_insiders import SHRED_APPROVED, append_run, fresh, gone, shredded, use

from vault._primitives import b64, canonical_json, sign
from vault._trust._statement import MAX_LIFETIME, utc_text
from vault._trust.approvals import Approval, ApprovalError, Request, read_approval
from vault.errors import DeniedError

FAR_AHEAD = datetime(2099, 1, 1, tzinfo=UTC)


class _Ahead(datetime):
    @classmethod
    def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
        return FAR_AHEAD


def _dated_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client whose clock says 2099: its records, and the labels it seals
    (a label's 'created' is held to its record's time)."""
    import vault._ops.seal as sealing
    import vault.audit._log as log
    from vault.audit._record import format_time

    monkeypatch.setattr(log, "now", lambda: format_time(FAR_AHEAD))
    monkeypatch.setattr(sealing, "datetime", _Ahead)


@pytest.mark.parametrize("how", ["the outsider's record that changes nothing",
                                 "the deputy's seal that counts"])
def test_one_record_dated_years_ahead_expires_no_approval(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    doc = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes")
    with monkeypatch.context() as m:
        _dated_ahead(m)
        if how.startswith("the outsider"):
            append_run(office, "outsider", ("ls", None, "r9", {"bogus": 1}, "allowed"))
        else:
            seal(office, "deputy", "CONFIDENTIAL", data=b"a seal dated 2099")
    # The leader asks, the deputy approves, the leader shreds: as any day.
    approval = grant(office, "deputy", ask(office, "leader", "shred", doc))
    office.as_("leader").shred(doc, approvals=[approval])
    assert shredded(office, doc)


def test_two_people_dating_ahead_is_what_it_takes(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The limit, stated in THREAT-MODEL.md §12: two named insiders who both
    # date a counted record ahead do move the clock.
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    doc = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes")
    with monkeypatch.context() as m:
        _dated_ahead(m)
        seal(office, "deputy", "CONFIDENTIAL", data=b"dated 2099")
        seal(office, "leader", "CONFIDENTIAL", data=b"dated 2099 too")
    approval = grant(office, "deputy", ask(office, "leader", "shred", doc))
    with pytest.raises(DeniedError, match="expired"):
        office.as_("leader").shred(doc, approvals=[approval])
    assert not shredded(office, doc)


# -- statements dated ahead --------------------------------------------------------------

T0 = datetime.now(UTC).replace(microsecond=0)


def _at(when: datetime) -> type[datetime]:
    class _Clock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return when
    return _Clock


def _clock(m: pytest.MonkeyPatch, when: datetime) -> None:
    """A machine whose clock says ``when``: its records, the statements it
    signs and the checks it makes of them."""
    import vault._ops.approve as approve
    import vault._ops.approved as approved
    import vault._ops.seal as sealing
    import vault._trust.approvals as approvals
    import vault._trust.requests as requests
    import vault.audit._log as log
    from vault.audit._record import format_time

    m.setattr(log, "now", lambda: format_time(when))
    for module in (approve, approved, sealing, approvals, requests):
        m.setattr(module, "datetime", _at(when))


def _request_dated(m: pytest.MonkeyPatch, when: datetime) -> None:
    """The requester's modified client: it signs its request's 'created' as
    ``when``; its records keep the machine's time."""
    import vault._trust.requests as requests

    m.setattr(requests, "datetime", _at(when))


def _approved_as_before(office: Office, r: Request) -> bytes:
    """The deputy's approval of ``r`` as the approver's client signed it
    before: today, expiring with the request, whenever it was dated."""
    st = {"vault": r.statement["vault"], "request": r.digest, "decision": "approve",
          "reason": None, "approver": {"name": "deputy",
                                       "signing_key": office.ids["deputy"].signing_public},
          "created": utc_text(T0), "expires": r.statement["expires"]}
    sig = sign(office.ids["deputy"].signing_key, "approval", canonical_json(st))
    return Approval.read({"approval": {"sig": b64(sig), "statement": st},
                          "request": r.signed()}).to_bytes()


@pytest.mark.parametrize("record", ["dated today", "dated ahead with it"])
def test_an_approver_refuses_a_request_dated_ahead(tmp_path: Path, backend: Kind,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  record: str) -> None:
    # The leader's modified client dates a shred request 400 days ahead,
    # with a 7-day lifetime -- and the request record today, or then too.
    # The deputy's client approved it: an approval expiring in 407 days,
    # past the 90 days any request may live.
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    doc = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes to keep")
    with monkeypatch.context() as m:
        if record == "dated today":
            _request_dated(m, T0 + timedelta(days=400))
        else:
            _clock(m, T0 + timedelta(days=400))
        r = ask(office, "leader", "shred", doc)
    with pytest.raises(ApprovalError, match="request is dated ahead of this machine's clock") \
            as caught:
        grant(office, "deputy", r)
    assert caught.value.kind == "ahead"
    with office.as_("deputy") as v:  # nothing signed, nothing left for the requester
        assert not list(v._s.backend.statements("approval"))
        assert r.id not in {x.id for x in v.approvals()}
    assert not [x for x in records(office) if x["action"] == "approve"
                and x["outcome"] == "allowed"]


def test_a_request_dated_ahead_of_its_record_serves_no_approval(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same request, approved by the approver's client as it was: on
    # day 200 the leader shredded with it (records dated day 400), while an
    # ordinary approval of day 0 was long expired, and a new machine's
    # replay counted the shred, doctor clean. The replay does not count a
    # request dated after its record: no approval of it is ever used.
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    doc = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes to keep")
    with monkeypatch.context() as m:
        _request_dated(m, T0 + timedelta(days=400))
        r = ask(office, "leader", "shred", doc)
    approval = _approved_as_before(office, r)
    for who in ("clerk", "deputy"):  # the log's clock moves on to day 200
        with monkeypatch.context() as m:
            _clock(m, T0 + timedelta(days=200))
            seal(office, who, "CONFIDENTIAL", data=f"day 200 by {who}".encode())
    with monkeypatch.context() as m:
        _clock(m, T0 + timedelta(days=400))
        # Its request is on no record the replay counts, and the approval
        # lasts 90 days from when it was given, whatever the request says.
        with pytest.raises(ApprovalError, match=r"expired|not on the audit record"):
            office.as_("leader").shred(doc, approvals=[approval])
        # The modified client records the use and the shred anyway.
        append_run(office, "leader", ("shred", doc, "r1", use(approval), "allowed"))
        append_run(office, "leader", ("shred", doc, "r1", gone(doc), "done"))
    fresh(monkeypatch, tmp_path)
    assert not shredded(office, doc)
    request_seq = next(x["seq"] for x in records(office) if x["action"] == "request")
    assert (request_seq, "request", "the request is dated after the record that carries it "
            "(dated ahead); ignored") in findings(office)


def test_an_approval_lasts_at_most_90_days_from_when_it_was_given(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # A request dated ahead within the clock skew is answered; whatever a
    # request says, its approval expires at most 90 days after it is
    # given, and one signed to last longer counts no longer.
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    doc = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes to keep")
    with monkeypatch.context() as m:
        _request_dated(m, datetime.now(UTC) + timedelta(seconds=30))
        r = ask(office, "leader", "shred", doc, expires=MAX_LIFETIME)
    given = read_approval(grant(office, "deputy", r))
    assert given.expires == given.created + MAX_LIFETIME < r.expires
    as_before = read_approval(_approved_as_before(office, _a_day_ahead(office, r)))
    assert as_before.ends == as_before.created + MAX_LIFETIME < as_before.expires


def _a_day_ahead(office: Office, r: Request) -> Request:
    """``r`` as the requester's modified client signs it, a day ahead with
    90 days to live: an approval of it today would expire in 91."""
    st = {**r.statement, "created": utc_text(T0 + timedelta(days=1)),
          "expires": utc_text(T0 + timedelta(days=91))}
    sig = sign(office.ids["leader"].signing_key, "request", canonical_json(st))
    return Request.read({"sig": b64(sig), "statement": st})


def _approved_ahead(tmp_path: Path, backend: Kind,
                    monkeypatch: pytest.MonkeyPatch) -> tuple[Office, str, bytes]:
    """The leader asks to shred the deputy's minutes; the deputy, whose
    clock runs ten minutes fast, approves."""
    office = office_for(tmp_path, backend, SHRED_APPROVED)
    doc = seal(office, "deputy", "CONFIDENTIAL", data=b"minutes")
    r = ask(office, "leader", "shred", doc)
    with monkeypatch.context() as m:
        _clock(m, datetime.now(UTC) + timedelta(minutes=10))
        return office, doc, grant(office, "deputy", r)


def test_an_approval_dated_ahead_is_refused_before_anything_is_recorded(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The deputy's clock runs ten minutes fast. The leader's client took
    # the approval, recorded its use and shredded: the replay did not count
    # the use (dated before the approval was made), so the shred did not
    # count, each retry recorded another refused pair, and every machine's
    # doctor said "leader was not entitled to shred this".
    office, doc, approval = _approved_ahead(tmp_path, backend, monkeypatch)
    before = len(records(office))
    with pytest.raises(ApprovalError, match="deputy's approval is dated ahead of this "
                       "machine's clock: valid from") as caught:
        office.as_("leader").shred(doc, approvals=[approval])
    assert caught.value.kind == "ahead" and "check their clock" in (caught.value.hint or "")
    assert not [x for x in records(office)[before:] if x["outcome"] == "allowed"]
    assert not shredded(office, doc)
    # Not spent: once the leader's clock has passed its time, it serves.
    with monkeypatch.context() as m:
        _clock(m, datetime.now(UTC) + timedelta(minutes=11))
        office.as_("leader").shred(doc, approvals=[approval])
    fresh(monkeypatch, tmp_path)
    assert shredded(office, doc)
    with office.as_("officer") as v:
        report = v.doctor()
    assert report.ok, report.problems


def test_a_use_recorded_before_its_approval_was_made_names_the_approval(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # A modified requester's client that records the use all the same: the
    # replay does not count it, and says the approval was dated ahead.
    office, doc, approval = _approved_ahead(tmp_path, backend, monkeypatch)
    append_run(office, "leader", ("shred", doc, "r1", use(approval), "allowed"))
    append_run(office, "leader", ("shred", doc, "r1", gone(doc), "done"))
    fresh(monkeypatch, tmp_path)
    assert not shredded(office, doc)
    made = utc_text(read_approval(approval).created)
    assert (records(office)[-2]["seq"], "use", f"deputy's approval is dated ahead of the "
            f"record that uses it: valid from {made} (or the record is dated back); "
            "ignored") in findings(office)
