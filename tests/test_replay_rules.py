"""A machine whose trusted state was replayed under older rules replays the
log again under the current ones (docs/DESIGN.md §8.3): otherwise it would
keep what the old rules accepted while a new machine refuses it, and the
two would disagree about one log. Starting over must not make it forget
what it verified: a cut or rewritten log, or a replaced manifest, stays an
alarm. Both backends.
"""

from __future__ import annotations

import io

import pytest
from office import Office
from vault_helpers import forge_manifest, rewrite_audit_line

import vault._trust.trusted as trusted_module
from vault._trust.classes import ClassKey
from vault._trust.journal import Journal
from vault.errors import AuditIntegrityError, IntegrityError

DEPUTY_SECRET = "clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}\n  outsider:"
DEPUTY_LOWER = "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}\n  outsider:"


def _minutes(office: Office, data: bytes) -> str:
    return office.as_("leader").seal(io.BytesIO(data), filename="m.txt", level="SECRET",
                                     compartments=["BOARD"], justification="minutes").id


def _listed(office: Office) -> set[str]:
    with office.as_("leader") as v:
        return {d.id for d in v.ls()}


def test_what_older_rules_accepted_is_replayed_again_under_the_new_ones(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _minutes(office, b"before")
    office.apply({DEPUTY_SECRET: DEPUTY_LOWER})
    with monkeypatch.context() as m:
        # This machine's older library: its replay had no clean-key rule, and
        # the leader's client sealed to the generation the deputy kept.
        m.setattr(trusted_module, "RULES", "1")
        m.setattr(Journal, "_key_clean", lambda self, kid, cls: True)
        m.setattr(ClassKey, "usable", lambda self, policy, pq: True)
        planted = _minutes(office, b"sealed to the revoked generation")
        assert _listed(office) == {before, planted}
    # The current library replays again: the same answer as a new machine.
    assert _listed(office) == {before}
    problems = office.as_("officer").doctor().problems
    assert any("someone not cleared for it could know" in p for p in problems), problems


def _replayed_under_older_rules(office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine verified every line so far, under older rules."""
    with monkeypatch.context() as m:
        m.setattr(trusted_module, "RULES", "1")
        office.as_("leader").ls()


def test_a_cut_log_is_still_an_alarm_when_replaying_again(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    _minutes(office, b"one")
    size = len(office.raw.audit_lines())
    _minutes(office, b"two")
    _replayed_under_older_rules(office, monkeypatch)
    office.raw.truncate_audit(size)
    with pytest.raises(AuditIntegrityError, match=r"rolled back or rewritten|truncated|shorter"):
        office.as_("leader").ls()


def test_a_rewritten_line_is_still_an_alarm_when_replaying_again(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    _minutes(office, b"one")
    _replayed_under_older_rules(office, monkeypatch)
    rewrite_audit_line(office, 2)
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"):
        office.as_("leader").ls()


def test_the_manifest_pin_survives_replaying_again(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    _minutes(office, b"one")
    _replayed_under_older_rules(office, monkeypatch)
    office.as_("leader").ls()  # replayed again under the current rules
    forge_manifest(office, "outsider")  # same vault id, the outsider as officer
    with pytest.raises(IntegrityError, match=r"vault\.json changed"):
        office.as_("leader").ls()
