"""A machine whose trusted state was replayed under older rules replays the
log again under the current ones (docs/DESIGN.md §8.3): otherwise it would
keep what the old rules accepted while a new machine refuses it, and the
two would disagree about one log. Starting over must not make it forget
what it verified: a cut or rewritten log, or a replaced manifest, stays an
alarm. Both backends.
"""

from __future__ import annotations

import io
from pathlib import Path

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


def test_a_record_kept_by_the_version_before_is_upgraded_in_place(
        office: Office, tmp_path: Path) -> None:
    # The version before kept no stanza digests (schema 6) and replayed
    # under rules 3: the column is added in place, the log replayed again,
    # and every document gets its digests -- so that a swapped recovery
    # stanza recorded later is held to them.
    import sqlite3

    import vault

    doc = _minutes(office, b"minutes")
    state = tmp_path / "state"
    with vault.Vault(office.location, office.ids["leader"], state_dir=state) as v:
        path = v._s.trusted.store.path
    assert path is not None
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE docs DROP COLUMN pins")
    db.execute("ALTER TABLE pending DROP COLUMN time")  # schema 8's
    db.execute("DROP TABLE original_leaves")  # schema 9's
    db.execute("DROP TABLE tip_leaves")  # schema 10's
    db.execute("UPDATE meta SET value = '3' WHERE key = 'rules'")
    db.execute("PRAGMA user_version=6")
    db.commit()
    db.close()
    with vault.Vault(office.location, office.ids["leader"], state_dir=state) as v:
        assert {d.id for d in v.ls()} == {doc}
        row = v._s.trusted.doc(doc)
        assert row is not None and row.pins is not None and len(row.pins["recovery"]) == 1
