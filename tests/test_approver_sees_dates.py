"""The approver of a request is shown every field of its labels that decides
who may read a document and when (docs/FORMAT.md §16.2): the banner (level,
compartments, caveats) and the embargo and declassify-on beside it, and a
change of either in words -- on ``vault approve``'s screen, text and
``--json``, and in ``vault approvals``. Both backends.

The requester is the leader, whose modified client signs, through the
library's own request maker, a new label whose dates are not the ones the
honest client would have kept.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from approval_support import ask, office_for
from backends import Kind
from cli_support import Result, assert_error
from office import Office

import vault._ops.approve as approve_module
from vault import Request
from vault.errors import DeniedError

DECISION = b"Board decision: close the Lyon office (embargoed until 2090)\n"
JUSTIFICATION = "clerks file it; it stays embargoed until the 2090 release"


@pytest.fixture
def office(tmp_path: Path, backend: Kind) -> Office:
    return office_for(tmp_path, backend)


@contextmanager
def new_label_dated(**dates: Any) -> Iterator[None]:
    """The leader's modified client: the new label it signs carries
    ``dates`` (embargo_until, declassify_on), nothing else changed."""
    real = approve_module.target

    def target(*args: Any, **kwargs: Any) -> dict[str, Any]:
        out = real(*args, **kwargs)
        if out["new_label"] is not None:
            out["new_label"] = out["new_label"].replace(**dates)
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(approve_module, "target", target)
        yield


def decision(office: Office, **dates: Any) -> str:
    with office.as_("leader") as v:
        return v.seal(io.BytesIO(DECISION), filename="decision.txt", level="SECRET",
                      compartments=["BOARD"], title="decision", **dates).id


def lower(office: Office, doc: str) -> Request:
    return ask(office, "leader", "reclassify", doc, level="CONFIDENTIAL",
               compartments=["BOARD"], justification=JUSTIFICATION)


def screen(office: Office, request: Request) -> str:
    """What ``vault approve ID`` shows the deputy before they decide
    (no terminal: nothing is signed)."""
    r = office.cli("deputy", "approve", request.id)
    assert_error(r, 2, "will not approve without confirmation")
    return r.stderr


def listed(office: Office, request: Request) -> str:
    """The LABEL column of the request's row in the deputy's ``vault approvals``."""
    r = office.cli("deputy", "approvals")
    assert r.exit_code == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    (line,) = [line for line in rows if line.startswith(request.id)]
    return line[header.index("LABEL"):header.index("EXPIRES")].rstrip()


def refuse(office: Office, request: Request) -> Result:
    r = office.cli("deputy", "approve", request.id, "--refuse", "--yes", "--json",
                   "--reason", "the embargo stays")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["decision"] == "refuse"
    return r


def test_a_new_label_that_lifts_an_embargo_is_shown_lifted_to_the_approver(
        office: Office) -> None:
    # The deputy was shown "SECRET//BOARD -> CONFIDENTIAL//BOARD" and a
    # justification promising the embargo stays; the new label's embargo
    # was over, the approval counted, and the clerk opened the 2090 decision.
    doc = decision(office, embargo_until="2090-01-01")
    with new_label_dated(embargo_until=datetime(2000, 1, 1, tzinfo=UTC)):
        r = lower(office, doc)
    assert r.new_label is not None and r.new_label["embargo_until"] == "2000-01-01T00:00:00Z"
    lifted = ("  embargo        until 2090-01-01T00:00:00Z -> until 2000-01-01T00:00:00Z "
              "(lifted early, which lowers the label; the new date has passed)")
    shown = screen(office, r)
    assert lifted in shown.splitlines(), shown
    assert "  declassify on  none" in shown.splitlines(), shown
    assert listed(office, r) == "SECRET//BOARD -> CONFIDENTIAL//BOARD (embargo lifted early)"
    # The screen beside --json is the same; told, the deputy refuses, and
    # the clerk stays out until 2090.
    assert lifted in refuse(office, r).stderr.splitlines()
    with pytest.raises(DeniedError), office.as_("leader") as v:
        v.reclassify(doc, level="CONFIDENTIAL", compartments=["BOARD"],
                     embargo_until="2000-01-01", request=r.id)
    with pytest.raises(DeniedError, match="embargo"), office.as_("clerk") as v:
        v.open(doc, io.BytesIO())


def test_a_new_label_that_brings_declassification_forward_is_shown_to_the_approver(
        office: Office) -> None:
    doc = decision(office, declassify_on="2095-01-01")
    with new_label_dated(declassify_on="2000-01-01"):
        r = lower(office, doc)
    shown = screen(office, r).splitlines()
    assert ("  declassify on  2095-01-01 -> 2000-01-01 (brought forward, which lowers the "
            "label; due already)") in shown, shown
    assert "  embargo        none" in shown, shown
    assert listed(office, r) == ("SECRET//BOARD -> CONFIDENTIAL//BOARD (declassify-on brought "
                                 "forward)")


def test_an_honest_change_shows_the_dates_it_keeps_and_no_marker(office: Office) -> None:
    doc = decision(office, embargo_until="2090-01-01", declassify_on="2095-01-01")
    r = lower(office, doc)
    shown = screen(office, r).splitlines()
    assert "  embargo        until 2090-01-01T00:00:00Z, unchanged" in shown, shown
    assert "  declassify on  2095-01-01, unchanged" in shown, shown
    assert listed(office, r) == "SECRET//BOARD -> CONFIDENTIAL//BOARD"


def test_a_declassification_says_it_lifts_the_embargo(office: Office) -> None:
    doc = decision(office, embargo_until="2090-01-01", declassify_on="P10Y")
    r = ask(office, "leader", "declassify", doc)
    shown = screen(office, r).splitlines()
    assert ("  embargo        until 2090-01-01T00:00:00Z -> none (lifted early, which lowers "
            "the label)") in shown, shown
    assert "  declassify on  P10Y after the label's date -> none (removed)" in shown, shown
    assert listed(office, r) == ("SECRET//BOARD -> PUBLIC (embargo lifted early, "
                                 "declassify-on removed)")


@pytest.mark.parametrize("action", ["export", "shred"])
def test_a_request_on_a_document_shows_its_dates(office: Office, action: str) -> None:
    edit = {"    actions: [reclassify, declassify]\n    who: {groups: [leaders]}\n"
            "    label: {min: SECRET}":
            "    actions: [reclassify, declassify, export, shred]\n"
            "    who: {groups: [leaders]}\n    label: {min: SECRET}"}
    with office.as_("officer") as v:
        v.apply_policy(office.write_policy({"version: 1\n": "version: 1\npost_quantum: off\n",
                                            **edit}))
    doc = decision(office, embargo_until="2090-01-01", declassify_on="2000-01-01")
    r = ask(office, "leader", action, doc)
    shown = screen(office, r).splitlines()
    assert "  embargo        until 2090-01-01T00:00:00Z" in shown, shown
    assert "  declassify on  2000-01-01 (due already)" in shown, shown


def test_a_seal_request_shows_the_dates_of_the_label_it_seals_at(office: Office) -> None:
    # A modified client's seal request, dated as the honest one never is.
    edit = {"    actions: [reclassify, declassify]\n    who: {groups: [leaders]}\n"
            "    label: {min: SECRET}":
            "    actions: [reclassify, declassify, seal]\n"
            "    who: {groups: [leaders]}\n    label: {min: SECRET}"}
    with office.as_("officer") as v:
        v.apply_policy(office.write_policy({"version: 1\n": "version: 1\npost_quantum: off\n",
                                            **edit}))
    real = approve_module.target

    def target(*args: Any, **kwargs: Any) -> dict[str, Any]:
        out = real(*args, **kwargs)
        out["label"] = out["label"].replace(embargo_until=datetime(2091, 5, 1, tzinfo=UTC),
                                            declassify_on="P1D")
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(approve_module, "target", target)
        r = ask(office, "leader", "seal", level="SECRET", compartments=["BOARD"])
    shown = screen(office, r).splitlines()
    assert "  label          SECRET//BOARD" in shown, shown
    assert "  embargo        until 2091-05-01T00:00:00Z" in shown, shown
    assert "  declassify on  P1D after the seal" in shown, shown


def test_a_request_described_without_a_policy_shows_caveats_and_dates(
        office: Office) -> None:
    # Request.describe() with no policy wrote labels as LEVEL/COMPARTMENT:
    # a caveat added or dropped did not show.
    doc = decision(office, embargo_until="2090-01-01")
    with new_label_dated(embargo_until=datetime(2000, 1, 1, tzinfo=UTC)):
        r = ask(office, "leader", "reclassify", doc, level="CONFIDENTIAL",
                compartments=["BOARD"], caveats=["PERSONAL-DATA"])
    shown = r.describe().splitlines()
    assert "  new label      CONFIDENTIAL//BOARD//PERSONAL-DATA" in shown, shown
    assert any(line.startswith("  embargo        until 2090-01-01T00:00:00Z -> until "
                               "2000-01-01T00:00:00Z (lifted early") for line in shown), shown
