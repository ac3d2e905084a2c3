"""``vault declassify --due`` releases a document at its declassify-on
instant, never before (docs/POLICY.md §5.3, DESIGN.md §6.4): the trusted
state keeps when each document falls due to the microsecond, not its day,
and the label decided on must be due as well. The leader's machine's clock
is set as the project's other clock tests set it (the module's
``datetime``); everything else is real. Both backends, through the
command line.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from office import Office

import vault
import vault._ops.change as change
from vault._trust.state import due_text

RELEASE = ("declassify", "--due", "--justification", "routine release of what is due")


def _clock(m: pytest.MonkeyPatch, when: datetime) -> None:
    """The clock ``declassify`` reads says ``when``."""

    class _Clock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return when

    m.setattr(change, "datetime", _Clock)


def _release_at(office: Office, when: datetime, **env: str) -> list[str]:
    """The leader's routine ``declassify --due``, run at ``when``: the ids
    it printed."""
    with pytest.MonkeyPatch.context() as m:
        _clock(m, when)
        r = office.cli("leader", *RELEASE, env=env or None)
    assert r.exit_code == 0, r.stderr
    return r.stdout.split()


def _seal(office: Office, declassify_on: str) -> tuple[str, datetime]:
    """A clerk's CONFIDENTIAL//BOARD minutes, and when the label falls due."""
    src = office.file("minutes.txt", b"quarterly figures, public only at the stated instant\n")
    r = office.cli("clerk", "seal", str(src), "--level", "CONFIDENTIAL", "--compartment",
                   "BOARD", "--declassify-on", declassify_on)
    assert r.exit_code == 0, r.stderr
    doc = r.stdout.strip()
    with office.as_("leader") as v:
        due = v.info(doc).label.declassify_at()
    assert due is not None
    return doc, due


def _outsider_opens(office: Office, doc: str) -> bool:
    r = office.cli("outsider", "open", doc, "-o", "-")
    assert r.exit_code in (0, 3), r.stderr
    return r.exit_code == 0


def _utc(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _midnight(when: datetime) -> datetime:
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


# Later today, in a whole second not at midnight (a cron job at 00:00 UTC of
# its day comes first).
LATER = (datetime.now(UTC) + timedelta(hours=2)).replace(second=59, microsecond=0)
FORMS = {
    "a time in UTC": _utc(LATER),
    "a time written east of UTC": LATER.astimezone(timezone(timedelta(hours=14))).isoformat(),
    "a time written west of UTC": LATER.astimezone(timezone(timedelta(hours=-11))).isoformat(),
    "a duration after creation": "P1D",
    "a date, due at 00:00 UTC": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
}


@pytest.mark.parametrize("form", FORMS)
def test_a_document_due_later_today_is_released_at_its_instant_and_not_before(
        office: Office, form: str) -> None:
    # The clerk's minutes are public from their declassify-on instant. The
    # leader's routine release ran at midnight and took them then, up to a
    # day early: the state kept only the day a document fell due.
    doc, due = _seal(office, FORMS[form])
    if form.startswith("a time"):
        assert due == LATER  # the instant, whatever offset it was written with
    later, _ = _seal(office, _utc(due + timedelta(seconds=1)))  # a second after it
    for early in sorted({_midnight(due), due - timedelta(microseconds=1)} - {due}):
        assert _release_at(office, early) == [], early
        assert not _outsider_opens(office, doc)
    assert _release_at(office, due) == [doc]
    assert _outsider_opens(office, doc)
    assert not _outsider_opens(office, later)


def test_a_due_document_put_later_meanwhile_is_not_released(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # The deputy puts one due document's release off while the leader's
    # 'declassify --due' runs (after it chose the due documents, before
    # that one's turn): it was released all the same, on the state's word.
    # The label it is decided on now decides; the others are released.
    order = [_seal(office, "2001-01-01")[0] for _ in range(3)]
    kept = order[1]
    real = change._declassify_one

    def meanwhile(s: object, doc_id: str, *rest: object) -> object:
        if doc_id == kept:
            with office.as_("deputy") as deputy:
                deputy.reclassify(doc_id, level="CONFIDENTIAL", compartments=["BOARD"],
                                  declassify_on="2999-01-01",
                                  justification="the board asks to keep it")
        return real(s, doc_id, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(change, "_declassify_one", meanwhile)
    r = office.cli("leader", *RELEASE)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == [order[0], order[2]]
    assert [_outsider_opens(office, d) for d in order] == [True, False, True]
    tried = [json.loads(line) for line in office.raw.audit_lines()]
    assert any(rec["action"] == "declassify" and rec["doc"] == kept
               and rec["outcome"] == "error" for rec in tried)  # the attempt, recorded
    with office.as_("leader") as v:
        assert v.info(kept).label.declassify_on == "2999-01-01"


@pytest.mark.parametrize("kept", ["the day each document fell due",
                                  "a label it cannot read any more"])
def test_a_record_kept_by_the_version_before_is_upgraded_and_releases_nothing_early(
        office: Office, tmp_path: Path, kept: str) -> None:
    # This machine's record of the vault, as the version before left it
    # (schema 10): the due column held days. It is upgraded in place, the
    # pin and trusted tip kept, each document's instant made from its
    # verified label -- or, where a label cannot be read, from a replay of
    # the log -- and the routine release at midnight takes nothing.
    doc, due = _seal(office, _utc(LATER))
    state = tmp_path / "state"
    with vault.Vault(office.location, office.ids["leader"], state_dir=state) as v:
        path = v._s.trusted.store.path
    assert path is not None
    db = sqlite3.connect(path)
    db.execute("UPDATE docs SET due = substr(due, 1, 10)")
    if kept.startswith("a label"):
        db.execute("UPDATE docs SET statement = json_set(statement, '$.label.level', 7)")
    db.execute("PRAGMA user_version=10")
    db.commit()
    db.close()
    with vault.Vault(office.location, office.ids["leader"], state_dir=state) as v:
        row = v._s.trusted.doc(doc)
        assert row is not None and row.due == due_text(due)
        assert row.statement["label"]["level"] == "CONFIDENTIAL"
        assert [d.id for d in v.ls()] == [doc]
    assert _release_at(office, _midnight(due), VAULT_STATE_DIR=str(state)) == []
    assert not _outsider_opens(office, doc)
    assert _release_at(office, due, VAULT_STATE_DIR=str(state)) == [doc]
    assert _outsider_opens(office, doc)


def test_the_state_orders_due_instants_as_time_orders_them() -> None:
    # Text order is time order: whole seconds and fractions, any offset.
    times = [datetime(2026, 12, 8, 23, 59, 59, tzinfo=UTC),
             datetime(2026, 12, 8, 23, 59, 59, 1, tzinfo=UTC),
             datetime(2026, 12, 9, 13, 0, tzinfo=timezone(timedelta(hours=14))),
             datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)]
    assert sorted(times, key=due_text) == sorted(times)
    assert due_text(times[0]) == "2026-12-08T23:59:59.000000Z"
