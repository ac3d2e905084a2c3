"""An approval to seal a file serves a seal of that file alone (FORMAT.md
§16.2, §16.4; THREAT-MODEL.md §12): a seal request names its file by a
digest keyed by its requester, compared where the seal is made and where
the log is replayed, on both backends. The office's below-floor rule asks
for a second leader.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from approval_support import ask, findings, grant, office_for, records
from backends import Kind
from cli_support import assert_error
from office import Office

import vault._ops.approve as approve_module
import vault._ops.approved as approved_module
import vault._ops.seal as seal_module
from vault._trust.approvals import ApprovalError, Request, new_request
from vault.errors import IntegrityError, UsageError

SECOND_LEADER_BELOW_FLOOR = {
    "    below_floor: true\n    require: [justification]":
        "    below_floor: true\n    require: [justification, approver]\n"
        "    approvers: {groups: [leaders]}"}
REFUND = b"Refund to card 4111 1111 1111 1111, thanks.\n"
CARDS = b"".join(b"customer%d,4111 1111 1111 1111,12/29\n" % i for i in range(2000))
STAFF = {"level": "INTERNAL", "compartments": ["STAFF"]}
FLOOR = {"level": "CONFIDENTIAL", "compartments": ["FINANCE"], "caveats": ["PERSONAL-DATA"]}


def _machines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """This machine's replay, then a machine's that replays from the start."""
    yield
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path / "fresh-state"))
    yield


def _listed(office: Office, who: str) -> list[str]:
    with office.as_(who) as v:
        return [d.id for d in v.ls()]


def test_an_approval_to_seal_one_file_below_its_floor_seals_no_other(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The deputy approved sealing a one-line refund notice at INTERNAL//STAFF,
    # below the floor intake found in it; the leader sealed 2,000 card
    # numbers with that approval, the registrar opened them, doctor clean.
    office = office_for(tmp_path, backend, SECOND_LEADER_BELOW_FLOOR)
    refund, cards = str(office.file("refund.txt", REFUND)), str(office.file("cards.csv", CARDS))
    staff = ("--level", "INTERNAL//STAFF")
    r = office.cli("leader", "request", "seal", refund, *staff, "--justification",
                   "refund notice for one customer (one card number)")
    assert r.exit_code == 0, r.stderr
    request_id = r.stdout.strip()
    approved = office.cli("deputy", "approve", request_id, "--yes")
    assert approved.exit_code == 0, approved.stderr
    assert "  below floor    CONFIDENTIAL//FINANCE//PERSONAL-DATA: intake found this in the " \
        "file" in approved.stderr
    r = office.cli("leader", "seal", cards, *staff, "--request", request_id)
    assert_error(r, 3, "the approval is for sealing another file")
    assert "hint: seal the file the request was made with, or ask again with this one" \
        in r.stderr
    assert _listed(office, "registrar") == []
    # The approver was shown which file, by its digest.
    with office.as_("deputy") as v:
        digest = v.find_request(request_id).details["file"]
    assert f"  file           digest {digest[:16]} (keyed by the requester): the approval " \
        "serves a seal of that file alone" in approved.stderr
    # The approval is not spent: it serves the file it was given for.
    r = office.cli("leader", "seal", refund, *staff, "--request", request_id)
    assert r.exit_code == 0, r.stderr
    doc = r.stdout.strip()
    for _ in _machines(monkeypatch, tmp_path):
        assert _listed(office, "registrar") == [doc]
        with office.as_("deputy") as v:
            assert v.doctor().problems == []


def test_an_approval_to_seal_a_file_at_its_label_serves_that_file_alone(
        tmp_path: Path, backend: Kind) -> None:
    # Every seal at SECRET//BOARD takes a second leader (the office's rule
    # made to cover seal): asked with the file, the approval is for it.
    from approval_support import EVERY_ACTION

    office = office_for(tmp_path, backend, EVERY_ACTION)
    minutes, other = office.file("minutes.txt", b"minutes"), office.file("other.txt", b"other")
    board = {"level": "SECRET", "compartments": ["BOARD"]}
    r = ask(office, "leader", "seal", file=minutes, justification="board business", **board)
    assert set(r.details) == {"file"}  # no floor: only the file is bound
    approval = grant(office, "deputy", r)
    with pytest.raises(ApprovalError, match="for sealing another file") as e, \
            office.as_("leader") as v:
        v.seal(other, approvals=[approval], **board)
    assert e.value.kind == "file"
    with office.as_("leader") as v:
        assert v.seal(minutes, approvals=[approval], **board).label.level == "SECRET"


@pytest.mark.parametrize("recorded", ["the digest of what it sealed", "no digest"])
def test_a_seal_recorded_under_a_request_for_another_file_does_not_count(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch, recorded: str) -> None:
    # The leader's client, modified to skip the comparison, seals the card
    # numbers with the approval of the refund notice and records it: the
    # replay holds the seal to the file its request names, gives it no
    # approvers, and it does not count -- on the leader's machine and on one
    # that replays the log from its start.
    office = office_for(tmp_path, backend, SECOND_LEADER_BELOW_FLOOR)
    refund, cards = office.file("refund.txt", REFUND), office.file("cards.csv", CARDS)
    r = ask(office, "leader", "seal", file=refund, justification="refund notice", **STAFF)
    approval = grant(office, "deputy", r)
    with monkeypatch.context() as m:
        m.setattr(approved_module, "check_outcome", lambda *a, **k: None)
        if recorded == "no digest":
            m.setattr(seal_module, "_bound_file", lambda *a: None)
        with pytest.raises(IntegrityError, match="does not count"), office.as_("leader") as v:
            v.seal(cards, approvals=[approval], **STAFF)
    sealed = [rec for rec in records(office) if rec["action"] == "seal"
              and rec["outcome"] == "done"]
    assert len(sealed) == 1
    inputs = sealed[0]["state"]["document"]["inputs"]
    assert inputs.get("file") == (None if recorded == "no digest" else
                                  _digest(office, "leader", CARDS))
    for _ in _machines(monkeypatch, tmp_path):
        assert _listed(office, "registrar") == []
        assert any("leader was not entitled to seal this" in message
                   for _, _, message in findings(office))


def _digest(office: Office, who: str, data: bytes) -> str:
    from vault._trust.requests import file_digest

    with office.as_(who) as v:
        return file_digest(office.ids[who], v.id, io.BytesIO(data))


def test_no_record_or_statement_holds_a_plain_digest_of_the_file(
        tmp_path: Path, backend: Kind) -> None:
    # The log and the statements left in the vault are read by everyone with
    # the folder: a plain SHA-256 of a one-line notice would confirm a guess
    # of the card number in it.
    office = office_for(tmp_path, backend, SECOND_LEADER_BELOW_FLOOR)
    refund = office.file("refund.txt", REFUND)
    r = ask(office, "leader", "seal", file=refund, justification="refund notice", **STAFF)
    with office.as_("leader") as v:
        v.seal(refund, approvals=[grant(office, "deputy", r)], **STAFF)
    plain = hashlib.sha256(REFUND).hexdigest()
    assert r.details["file"] == _digest(office, "leader", REFUND) != plain
    assert r.details["file"] != _digest(office, "deputy", REFUND)  # the requester's key
    assert plain.encode() not in b"".join(office.raw.audit_lines())
    with office.as_("officer") as v:
        left = [data for kind in ("request", "approval")
                for _, data in v._s.backend.statements(kind)]
    assert left and not any(plain.encode() in data for data in left)


def test_a_file_changed_after_its_check_is_sealed_for_nothing(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The file is compared before the approval is used, and sealed after:
    # what it holds by then is held to the digest its request names.
    office = office_for(tmp_path, backend, SECOND_LEADER_BELOW_FLOOR)
    refund = office.file("refund.txt", REFUND)
    r = ask(office, "leader", "seal", file=refund, justification="refund notice", **STAFF)
    approval = grant(office, "deputy", r)
    real = seal_module._bound_file

    def then_rewritten(*args: Any) -> str | None:
        digest = real(*args)
        with open(refund, "r+b") as f:  # as long, other card numbers
            f.write(CARDS[:len(REFUND)])
        return digest

    monkeypatch.setattr(seal_module, "_bound_file", then_rewritten)
    with pytest.raises(IntegrityError, match="changed while it was being sealed"), \
            office.as_("leader") as v:
        v.seal(refund, approvals=[approval], **STAFF)
    assert _listed(office, "registrar") == []


class _Once(io.RawIOBase):
    """A stream that can be read once (a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._data.readinto(b)


def test_a_stream_read_once_is_not_sealed_under_a_request_naming_its_file(
        tmp_path: Path, backend: Kind) -> None:
    office = office_for(tmp_path, backend, SECOND_LEADER_BELOW_FLOOR)
    refund = office.file("refund.txt", REFUND)
    r = ask(office, "leader", "seal", file=refund, justification="refund notice", **STAFF)
    approval = grant(office, "deputy", r)
    with pytest.raises(UsageError, match="can be read once"), office.as_("leader") as v:
        v.seal(_Once(REFUND), filename="refund.txt", approvals=[approval], **STAFF)
    with office.as_("leader") as v:  # nothing used
        assert v.seal(refund, approvals=[approval], **STAFF).label.level == "INTERNAL"


def _plant_floor_request(office: Office) -> Request:
    """A request to seal below a floor naming no file, as an earlier version
    of vault made them: genuine, recorded, left in the vault."""
    from vault._ops.discipline import attempt, record

    with office.as_("leader") as v:
        s = v._s
        s.trusted.catch_up()
        r = new_request(s.me(), vault=s.manifest.vault_id, action="seal", doc=None, state=None,
                        label=s.trusted.policy.make_label(**STAFF), new_label=None,
                        details={"floor": FLOOR}, justification="refund notice",
                        requester="leader", policy=s.trusted.policy.hash)
        with attempt(s, "request") as att:
            record(s, [att], "allowed", [], f"request {r.id}",
                   [{"request": {"id": r.id, "digest": r.digest, "statement": r.signed()}}])
        s.backend.put_statement("request", r.to_bytes())
    return r


def test_a_request_to_seal_below_a_floor_naming_no_file_serves_no_new_seal(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # Requests made before they named their file are still read: an
    # approver's client will not answer one, a seal with an approval of one
    # is refused, and the seals such approvals served are still counted.
    office = office_for(tmp_path, backend, SECOND_LEADER_BELOW_FLOOR)
    cards = office.file("cards.csv", CARDS)
    r = _plant_floor_request(office)
    res = office.cli("deputy", "approve", r.id, "--yes")
    assert_error(res, 3, f"request {r.id} asks to seal below a floor without naming the file")
    with office.as_("deputy") as v:
        assert v.approvals() == []
    with monkeypatch.context() as m:  # an earlier version's approval of it
        m.setattr(approve_module, "_check_asked", lambda *a: None)
        approval = grant(office, "deputy", r)
    with pytest.raises(ApprovalError, match="does not name the file") as e, \
            office.as_("leader") as v:
        v.seal(cards, approvals=[approval], **STAFF)
    assert e.value.kind == "file"
    real = approved_module.check_outcome
    with monkeypatch.context() as m:  # an earlier version's seal with it
        m.setattr(approved_module, "check_outcome",
                  lambda *a, **k: real(*a, **{**k, "named": False}))
        with office.as_("leader") as v:
            doc = v.seal(cards, approvals=[approval], **STAFF).id
    for _ in _machines(monkeypatch, tmp_path):
        assert _listed(office, "registrar") == [doc]
        with office.as_("deputy") as v:
            assert v.doctor().problems == []
