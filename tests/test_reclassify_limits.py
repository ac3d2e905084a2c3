"""What a reclassification shows the one who makes it (docs/DESIGN.md
§6.3, §6.4).

A reclassification decrypts the metadata stanza to carry it into the new
header, an export to verify what leaves; either shows it only to whom the
policy lets open the document, as ``info`` does.
"""

from __future__ import annotations

import io
import json

from cli_support import assert_error
from office import Office

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
