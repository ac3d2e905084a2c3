"""What a reclassification shows the one who makes it, and what it keeps
of the label before (docs/DESIGN.md §6.3, §6.4, POLICY.md §6.4).

A reclassification decrypts the metadata stanza to carry it into the new
header, an export to verify what leaves; either shows it only to whom the
policy lets open the document, as ``info`` does. A reclassification that
changes nothing is refused: it would only put the caller's name and reason
on someone else's classification. And a declassify-on duration, counted
from the label's ``created``, is carried as the instant it falls due: a
relabelling made later never puts a release off unless its new label says
so.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from approval_support import ask, grant, seal
from cli_support import assert_error, parse_json_records
from office import Office

import vault
from vault.errors import UsageError
from vault.policy import Label

DECISION = b"The board decided to acquire ACME\n"
HIDDEN = "the policy does not let you open it"


def _embargoed_decision(office: Office) -> str:
    """The leader seals a board decision under embargo: the clerk, cleared
    for CONFIDENTIAL//BOARD, may not open it before its release."""
    r = office.cli("leader", "seal", str(office.file("decision.txt", DECISION)),
                   "--filename", "acme-takeover.txt", "--level", "CONFIDENTIAL",
                   "--compartment", "BOARD", "--embargo-until", "2030-01-01",
                   "--title", "Takeover of ACME Corp")
    assert r.exit_code == 0, r.stderr
    return r.stdout.strip()


def _label(office: Office, doc: str) -> dict[str, object]:
    r = office.cli("leader", "info", doc, "--json")
    assert r.exit_code == 0, r.stderr
    label: dict[str, object] = json.loads(r.stdout)["label"]
    return label


def test_a_reclassify_shows_no_title_to_whom_the_policy_denies_opening(
        office: Office) -> None:
    doc = _embargoed_decision(office)
    assert_error(office.cli("clerk", "open", doc, "-o", "-"), 3, "denied")
    r = office.cli("clerk", "info", doc, "--json")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["title"] is None and shown["hidden"] == HIDDEN
    # A raise the policy lets her make shows what info shows: no metadata.
    r = office.cli("clerk", "reclassify", doc, "--add-compartment", "STAFF",
                   "--justification", "filing", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["label"]["compartments"] == ["BOARD", "STAFF"]
    assert {k: out[k] for k in ("title", "filename", "content_type", "plaintext_size",
                                "hidden")} == {"title": None, "filename": None,
                                               "content_type": None, "plaintext_size": None,
                                               "hidden": HIDDEN}
    assert "ACME" not in r.stdout + r.stderr and "acme" not in r.stdout + r.stderr
    # Nor does the library's result hold it.
    with office.as_("clerk") as v:
        got = v.reclassify(doc, add_caveats=["PERSONAL-DATA"], justification="filing")
    assert (got.title, got.filename, got.content_type, got.plaintext_size, got.hidden) == (
        None, None, None, None, HIDDEN)
    # The metadata is carried into the new header as it was: whoever may
    # open the document sees it, in info and in their own reclassify.
    r = office.cli("leader", "info", doc, "--json")
    assert json.loads(r.stdout)["title"] == "Takeover of ACME Corp"
    r = office.cli("leader", "reclassify", doc, "--add-compartment", "FINANCE",
                   "--justification", "the price", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["title"], out["filename"], out["hidden"]) == (
        "Takeover of ACME Corp", "acme-takeover.txt", None)
    r = office.cli("leader", "open", doc, "-o", "-")
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == DECISION


def test_an_export_shows_no_title_to_whom_the_policy_denies_opening(office: Office) -> None:
    """The clerk conveys the embargoed decision (the stored file, as the
    policy lets her): the library's result holds no more than info's."""
    doc = _embargoed_decision(office)
    out = io.BytesIO()
    with office.as_("clerk") as v:
        got = v.export(doc, out)
    assert out.getvalue() == office.raw.doc_bytes(doc)
    assert (got.title, got.filename, got.content_type, got.plaintext_size, got.hidden) == (
        None, None, None, None, HIDDEN)
    with office.as_("leader") as v:
        assert v.export(doc, io.BytesIO()).title == "Takeover of ACME Corp"


def _finance_paper(office: Office) -> str:
    """The leader's own classification, due for release a day after it."""
    with office.as_("leader") as v:
        return v.seal(io.BytesIO(b"Q3 budget"), filename="q3.txt", level="CONFIDENTIAL",
                      compartments=["FINANCE"], declassify_on="P1D",
                      justification="1.4(e) economic matters").id


def test_a_reclassify_to_the_label_the_document_has_is_refused_and_changes_nothing(
        office: Office) -> None:
    doc = _finance_paper(office)
    before = _label(office, doc)
    versions = office.raw.versions(doc)
    for change in (["--level", "CONFIDENTIAL"], ["--level", "C//FINANCE"],
                   ["--add-compartment", "FINANCE"]):
        records = len(office.raw.audit_lines())
        r = office.cli("clerk", "reclassify", doc, *change, "--justification",
                       "clerk was here")
        assert_error(r, 2, f"document {doc} already has this label")
        # The attempt is on the record, as an error: nothing was decided.
        log = office.cli(None, "audit", "log", "--json")
        (attempt,) = parse_json_records(log.stdout)[records:]
        assert (attempt["action"], attempt["outcome"], attempt["actor"]["name"]) == (
            "reclassify", "error", "clerk")
        assert attempt["state"] is None and attempt["rules"] == []
    assert _label(office, doc) == before
    assert before["classified_by"] == "leader" and before["reason"] == "1.4(e) economic matters"
    assert office.raw.versions(doc) == versions
    # Through the library too, whoever asks.
    with office.as_("leader") as v, pytest.raises(UsageError, match="already has this label"):
        v.reclassify(doc, level="CONFIDENTIAL", justification="again")
    assert _label(office, doc) == before


def test_a_reclassify_keeps_the_instant_a_duration_declassify_on_falls_due(
        office: Office, tmp_path: Path) -> None:
    doc = _finance_paper(office)
    with office.as_("leader") as v:
        old = v.info(doc).label
    due = old.declassify_at()
    assert old.created is not None and due == old.created + timedelta(days=1)
    r = office.cli("clerk", "reclassify", doc, "--add-compartment", "STAFF",
                   "--justification", "staff paper too", "--json")
    assert r.exit_code == 0, r.stderr
    new = Label.from_dict(json.loads(r.stdout)["label"])
    assert new.classified_by == "clerk" and new.created is not None and new.created > old.created
    # The new label says the instant, which its own 'created' does not move.
    assert new.declassify_on == due.isoformat().replace("+00:00", "Z")
    assert new.declassify_at() == due
    # Every machine's replay counts it so: one that never saw the vault before.
    with vault.Vault(office.location, office.ids["leader"],
                     state_dir=tmp_path / "new-machine") as v:
        assert v.info(doc).label == new
        assert v.declassify(due=True, justification="scheduled release") == []
    assert Label.from_dict(_label(office, doc)).declassify_at() == due


def test_an_approved_reclassify_carries_the_instant_its_request_binds(office: Office) -> None:
    """The request binds the new label the reclassify will make: the
    approvers are shown the instant, and the approval serves."""
    doc = seal(office, "leader", declassify_on="P10Y")  # SECRET//BOARD: two leaders
    with office.as_("leader") as v:
        due = v.info(doc).label.declassify_at()
    assert due is not None
    r = ask(office, "leader", "reclassify", doc, compartments=["BOARD", "FINANCE"])
    assert r.new_label is not None
    assert r.new_label["declassify_on"] == due.isoformat().replace("+00:00", "Z")
    approval = grant(office, "deputy", r)
    with office.as_("leader") as v:
        done = v.reclassify(doc, compartments=["BOARD", "FINANCE"], approvals=[approval])
    assert done.label.compartments == {"BOARD", "FINANCE"}
    assert done.label.declassify_at() == due
