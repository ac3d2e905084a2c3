"""The clock approvals are judged by (docs/AUDIT.md §17): a writer chooses
its records' times, so expiry is judged against the second latest of the
times at which each person last wrote a state run that counted. One
insider's record dated years ahead -- from anyone the policy names, even
the outsider -- must not make every approval in the vault look expired for
good; a use dated back is still caught (test_approvals_insiders.py). Both
backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from approval_support import ask, grant, office_for, seal
from backends import Kind
from test_approvals_insiders import SHRED_APPROVED, append_run, shredded

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
