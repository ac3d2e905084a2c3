"""Marking on the way out: the policy label written back as the mapped
Office sensitivity label; every other part copied byte for byte."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import docx
import pytest
from intake_support import CONF_ALL, FILES, HC_ALL, POLICIES
from office import make_office

from vault.errors import BadDataError
from vault.intake import inspect, mark_office, mark_pdf, office_label_for
from vault.policy import load_policy

POLICY = load_policy(POLICIES / "office.yaml", template=True)


def raw_parts(data: bytes) -> dict[str, bytes]:
    """Each part's compressed bytes as stored."""
    out = {}
    z = zipfile.ZipFile(io.BytesIO(data))
    for info in z.infolist():
        at = info.header_offset
        n, m = int.from_bytes(data[at + 26: at + 28], "little"), \
            int.from_bytes(data[at + 28: at + 30], "little")
        start = at + 30 + n + m
        out[info.filename] = data[start: start + info.compress_size]
    return out


def test_office_label_for_picks_the_least_mapping_that_covers_the_label() -> None:
    label = POLICY.make_label
    mapping = office_label_for(POLICY, label(level="SECRET", compartments=["STAFF"]))
    assert mapping is not None and mapping.id == HC_ALL
    higher = office_label_for(POLICY, label(level="CONFIDENTIAL", compartments=["STAFF"]))
    assert higher is not None and higher.id == CONF_ALL
    covering = office_label_for(POLICY, label(level="INTERNAL", compartments=["BOARD"]))
    assert covering is not None and covering.label.compartments == {"BOARD"}
    assert office_label_for(POLICY, label(level="PUBLIC")) is not None
    # Marked lower, the copy would be floored lower when sealed again: a
    # compartment or caveat dropped, or a lower level, never. The office
    # policy's Restricted labels cover what no narrower one does.
    rank = POLICY.level_rank
    for level, compartments, caveats in (("CONFIDENTIAL", ["STAFF", "HR"], []),
                                         ("CONFIDENTIAL", ["FINANCE"], ["PERSONAL-DATA"]),
                                         ("CONFIDENTIAL", ["BOARD", "FINANCE"], []),
                                         ("SECRET", ["BOARD", "FINANCE"], []),
                                         ("INTERNAL", ["HR"], [])):
        wanted = label(level=level, compartments=compartments, caveats=caveats)
        got = office_label_for(POLICY, wanted)
        assert got is not None and got.name is not None and "Restricted" in got.name
        assert rank(got.label.level) >= rank(level)
        assert got.label.compartments >= wanted.compartments
        assert got.label.caveats >= wanted.caveats


@pytest.mark.parametrize("name", ["plain.docx", "labelinfo.xlsx", "confidential.pptx",
                                  "highly-confidential.docx"])
def test_marked_documents_carry_the_label_and_nothing_else_changes(name: str) -> None:
    source = (FILES / name).read_bytes()
    mapping = office_label_for(POLICY, POLICY.make_label(level="SECRET", compartments=["STAFF"]))
    assert mapping is not None
    out = io.BytesIO()
    mark_office(io.BytesIO(source), out, mapping)
    marked = out.getvalue()
    found = inspect(io.BytesIO(marked))
    assert found.status == "complete"
    assert found.office_label is not None and found.office_label.id == HC_ALL
    assert found.office_label.site_id == "3b1e6a2c-7d4f-4c9a-9b8e-5f2d1a0c6e47"
    before, after = raw_parts(source), raw_parts(marked)
    changed = {"docProps/custom.xml", "docMetadata/LabelInfo.xml", "[Content_Types].xml",
               "_rels/.rels"}
    for part, data in before.items():
        if part not in changed:
            assert after[part] == data, part
    assert zipfile.ZipFile(io.BytesIO(marked)).testzip() is None
    if name.endswith(".docx"):
        assert [p.text for p in docx.Document(io.BytesIO(marked)).paragraphs] == \
            [p.text for p in docx.Document(io.BytesIO(source)).paragraphs]


def test_marking_keeps_other_custom_properties() -> None:
    source = (FILES / "highly-confidential.docx").read_bytes()
    mapping = office_label_for(POLICY, POLICY.make_label(level="CONFIDENTIAL",
                                                         compartments=["STAFF"]))
    assert mapping is not None
    out = io.BytesIO()
    mark_office(io.BytesIO(source), out, mapping)
    found = inspect(io.BytesIO(out.getvalue()))
    assert [lab.id for lab in found.office_labels] == [CONF_ALL]  # the old label is gone


def test_marking_a_pdf() -> None:
    mapping = office_label_for(POLICY, POLICY.make_label(level="CONFIDENTIAL",
                                                         compartments=["STAFF"]))
    assert mapping is not None
    out = io.BytesIO()
    with open(FILES / "board-minutes.txt", "rb") as f, pytest.raises(BadDataError):
        mark_pdf(f, io.BytesIO(), mapping)
    with open(FILES / "labelled.pdf", "rb") as f:
        mark_pdf(f, out, mapping)
    ids = {lab.id for lab in inspect(io.BytesIO(out.getvalue())).office_labels}
    assert CONF_ALL in ids


def test_a_marked_pdf_carries_the_vaults_label_alone() -> None:
    # A PDF that comes with a "Public" label of its own, in its information
    # dictionary and in its XMP metadata: the marked copy carries the
    # vault's label and nothing else, so that no reader picks the old one.
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject, StreamObject

    public = "87ba5c36-b7cf-4793-bbc2-bd5b3a9f95ca"
    fields = {f"/MSIP_Label_{public}_{k}": v
              for k, v in (("Enabled", "true"), ("Name", "Public"), ("Method", "Privileged"))}
    w = PdfWriter()
    w.add_blank_page(200, 200)
    w.add_metadata(fields)
    xmp = StreamObject()
    xmp.set_data(('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
                  '1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:pdfx="http://'
                  'ns.adobe.com/pdfx/1.3/" ' + " ".join(
                      f'pdfx:{k[1:]}="{v}"' for k, v in fields.items())
                  + '/></rdf:RDF></x:xmpmeta>').encode())
    xmp.update({NameObject("/Type"): NameObject("/Metadata"),
                NameObject("/Subtype"): NameObject("/XML")})
    w.root_object[NameObject("/Metadata")] = w._add_object(xmp)
    src = io.BytesIO()
    w.write(src)
    assert {lab.id for lab in inspect(io.BytesIO(src.getvalue())).office_labels} == {public}
    mapping = office_label_for(POLICY, POLICY.make_label(level="CONFIDENTIAL",
                                                         compartments=["STAFF"]))
    assert mapping is not None
    out = io.BytesIO()
    mark_pdf(io.BytesIO(src.getvalue()), out, mapping)
    assert {lab.id for lab in inspect(io.BytesIO(out.getvalue())).office_labels} == {CONF_ALL}
    assert not [k for k in PdfReader(io.BytesIO(out.getvalue())).metadata or {}
                if public in str(k)]


def test_an_office_file_marking_cannot_read_rightly_is_refused() -> None:
    # Two parts of one name (which one a reader takes is its own choice),
    # or no [Content_Types].xml: refused, clearly, never marked half.
    mapping = office_label_for(POLICY, POLICY.make_label(level="PUBLIC"))
    assert mapping is not None
    plain = (FILES / "plain.docx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(plain)) as z:
        parts = [(i.filename, z.read(i)) for i in z.infolist()]
    twice, missing = io.BytesIO(), io.BytesIO()
    import warnings

    with zipfile.ZipFile(twice, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the name written twice
        for name, data in parts:
            z.writestr(name, data)
        z.writestr("word/document.xml", b"<w:document/>")  # a second one
    with zipfile.ZipFile(missing, "w") as z:
        for name, data in parts:
            if name != "[Content_Types].xml":
                z.writestr(name, data)
    cases = ((twice, "two parts of the same name"), (missing, r"no \[Content_Types\]\.xml"))
    for data, why in cases:
        with pytest.raises(BadDataError, match=why):
            mark_office(io.BytesIO(data.getvalue()), io.BytesIO(), mapping)
    assert inspect(io.BytesIO(twice.getvalue())).status == "uninspectable"


def test_what_cannot_be_marked_is_a_clear_error() -> None:
    mapping = office_label_for(POLICY, POLICY.make_label(level="PUBLIC"))
    assert mapping is not None
    for data in (b"plain text", (FILES / "labelled.pdf").read_bytes()):
        with pytest.raises(BadDataError, match="cannot mark"):
            mark_office(io.BytesIO(data), io.BytesIO(), mapping)


# -- vault open --mark ------------------------------------------------------------


POLICY_TEXT = (POLICIES / "office.yaml").read_text(encoding="utf-8")


def _sealed(tmp_path: Path, name: str, level: str, compartments: list[str],
            edit: dict[str, str] | None = None) -> tuple[Any, str]:
    office = make_office(tmp_path, edit=edit)
    src = office.file(name, (FILES / name).read_bytes())
    doc = office.as_("leader").seal(src, level=level, compartments=compartments,
                                    justification="marking").id
    return office, doc


def test_open_mark_writes_the_current_label_and_leaves_the_sealed_bytes(tmp_path: Path) -> None:
    office, doc = _sealed(tmp_path, "plain.docx", "SECRET", ["STAFF"])
    sealed = office.raw.doc_bytes(doc)
    out = tmp_path / "out.docx"
    r = office.cli("leader", "open", doc, "-o", str(out), "--mark")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    found = inspect(io.BytesIO(out.read_bytes()))
    assert found.office_label is not None and found.office_label.id == HC_ALL
    assert office.raw.doc_bytes(doc) == sealed
    # Without --mark the bytes are those sealed.
    plain = tmp_path / "plain.docx"
    assert office.cli("leader", "open", doc, "-o", str(plain)).exit_code == 0
    assert plain.read_bytes() == (FILES / "plain.docx").read_bytes()
    # To stdout as well.
    r = office.cli("leader", "open", doc, "-o", "-", "--mark")
    assert r.exit_code == 0, r.stderr
    piped = inspect(io.BytesIO(r.stdout_bytes)).office_label
    assert piped is not None and piped.id == HC_ALL


def test_open_mark_of_a_file_that_is_not_office_or_pdf_leaves_nothing(tmp_path: Path) -> None:
    office = make_office(tmp_path)
    doc = office.as_("leader").seal(io.BytesIO(b"just text"), filename="a.txt",
                                    level="CONFIDENTIAL", compartments=["STAFF"]).id
    out = tmp_path / "out.txt"
    r = office.cli("leader", "open", doc, "-o", str(out), "--mark")
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith("vault: only Word, Excel, PowerPoint and PDF documents")
    assert "hint: open it without --mark" in r.stderr
    assert not out.exists() and r.stdout == ""
    # The attempt is on the record, as failed.
    last = [json.loads(line) for line in office.raw.audit_lines()][-1]
    assert last["action"] == "open" and last["outcome"] == "failed"


def test_a_marked_copy_sealed_again_is_never_lower_than_its_document(tmp_path: Path) -> None:
    # The officer (cleared CONFIDENTIAL//HR) opened an HR document with
    # --mark: the copy carried "Confidential\\All Employees", mapped to
    # CONFIDENTIAL//STAFF -- HR dropped. The clerk, not cleared for HR,
    # sealed the copy without a label: intake floored it at CONFIDENTIAL//
    # STAFF, no lowering rule, no approval, and she read the HR file.
    office, doc = _sealed(tmp_path, "plain.docx", "CONFIDENTIAL", ["STAFF", "HR"])
    out = tmp_path / "copy.docx"
    r = office.cli("officer", "open", doc, "-o", str(out), "--mark")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    r = office.cli("clerk", "classify", str(out))  # Confidential\Restricted: every compartment
    assert "floor      CONFIDENTIAL//BOARD/FINANCE/HR/STAFF" in r.stdout, r.stdout
    sealed = office.cli("clerk", "seal", str(out))
    if sealed.exit_code == 0:
        assert office.cli("clerk", "open", sealed.stdout.split()[0], "-o", "-").exit_code == 3
    # A policy with no label that covers it: refused before anything is decrypted.
    restricted = POLICY_TEXT[POLICY_TEXT.index("    # Restricted: every compartment"):
                             POLICY_TEXT.index("    # Files labelled by another tenant")]
    out.unlink()
    office, doc = _sealed(tmp_path / "narrow", "plain.docx", "CONFIDENTIAL", ["STAFF", "HR"],
                          edit={restricted: ""})
    r = office.cli("officer", "open", doc, "-o", str(out), "--mark")
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert "maps no Office label that covers CONFIDENTIAL//HR/STAFF" in r.stderr
    assert not out.exists() and r.stdout == ""
    # Marked as the policy can cover it, the copy comes back at least as high.
    office2, doc2 = _sealed(tmp_path / "b", "plain.docx", "CONFIDENTIAL", ["STAFF"])
    r = office2.cli("leader", "open", doc2, "-o", str(out), "--mark")
    assert r.exit_code == 0, r.stderr
    r = office2.cli("clerk", "classify", str(out))
    assert r.exit_code == 0 and "CONFIDENTIAL//STAFF (proposed)" in r.stdout, r.stdout
