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

    public = "87ba5c36-b7cf-4793-bbc2-bd5b3a9f95ca"
    fields = {f"/MSIP_Label_{public}_{k}": v
              for k, v in (("Enabled", "true"), ("Name", "Public"), ("Method", "Privileged"))}
    w = PdfWriter()
    w.add_blank_page(200, 200)
    w.add_metadata(fields)
    _set_xmp(w, '<rdf:Description rdf:about="" xmlns:pdfx="http://ns.adobe.com/pdfx/1.3/" '
             + " ".join(f'pdfx:{k[1:]}="{v}"' for k, v in fields.items()) + "/>")
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


# -- the deputy's marked copy -------------------------------------------------------
#
# The leader seals a document at SECRET//BOARD; the deputy opens it with
# --mark and changes only the marked copy's metadata, so that Office still
# shows its label; the clerk seals the copy with a plain `vault seal`. The
# copy must still be floored at SECRET//BOARD, or be uninspectable, so that
# the clerk must give a label and the floor rules apply: never sealed at
# INTERNAL//STAFF for the registrar (cleared INTERNAL only) to read.

BOARD = "2f3e4d5c-6b7a-4899-aabb-ccddeeff0011"  # Highly Confidential\Specified People
TEXT = "Acme merger approved at 4.2bn; announce 1 June."
PDFX = "http://ns.adobe.com/pdfx/1.3/"


def _deputys_copy(tmp_path: Path, name: str, source: bytes) -> tuple[Any, bytes]:
    """The office, and the copy the deputy's `open --mark` wrote of the
    document the leader sealed at SECRET//BOARD."""
    office = make_office(tmp_path)
    src = office.file(name, source)
    doc = office.as_("leader").seal(src, level="SECRET", compartments=["BOARD"],
                                    justification="board").id
    out = tmp_path / f"marked-{name}"
    r = office.cli("deputy", "open", doc, "--mark", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    return office, out.read_bytes()


def _clerk_cannot_lower(office: Any, tmp_path: Path, name: str, copy: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(copy)
    r = office.cli("clerk", "classify", str(path))
    assert "floor      SECRET//BOARD" in r.stdout or "could not be inspected" in r.stdout, \
        r.stdout
    sealed = office.cli("clerk", "seal", str(path))
    if sealed.exit_code == 0:  # sealed at the floor: the registrar cannot open it
        doc = sealed.stdout.split()[0]
        assert office.cli("registrar", "open", doc, "-o", "-").exit_code != 0


def _set_xmp(w: Any, rdf: str) -> None:
    """Give the PDF ``w`` (a pypdf writer) an XMP packet whose RDF holds ``rdf``."""
    from pypdf.generic import NameObject, StreamObject

    packet = StreamObject()
    packet.set_data(('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
                     '1999/02/22-rdf-syntax-ns#">' + rdf + "</rdf:RDF></x:xmpmeta>").encode())
    packet.update({NameObject("/Type"): NameObject("/Metadata"),
                   NameObject("/Subtype"): NameObject("/XML")})
    w.root_object[NameObject("/Metadata")] = w._add_object(packet)


def _pdf_with(data: bytes, xmp: str | None, keep_info: bool = False) -> bytes:
    """``data`` with the label fields of its information dictionary moved
    into the XMP packet ``xmp`` (``{fields}``: them as pdfx attributes)."""
    from pypdf import PdfReader, PdfWriter

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    info = w._info.get_object()
    fields = {str(k)[1:]: str(info[k]) for k in list(info) if str(k).startswith("/MSIP_Label_")}
    if not keep_info:
        for k in list(info):
            if str(k).startswith("/MSIP_Label_"):
                del info[k]
    if xmp is not None:
        _set_xmp(w, xmp.format(fields=" ".join(f'pdfx:{k}="{v}"' for k, v in fields.items())))
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _labels(data: bytes) -> tuple[str, list[tuple[str, bool]]]:
    found = inspect(io.BytesIO(data))
    return found.status, [(lab.id, lab.enabled) for lab in found.office_labels]


def test_a_pdf_label_moved_into_an_xmp_packet_padded_past_the_bound_is_refused(
        tmp_path: Path) -> None:
    # The XMP packet past max_metadata_bytes was skipped: the copy read
    # complete, no label, and the clerk's seal gave INTERNAL//STAFF.
    import make_files as mf

    office, marked = _deputys_copy(tmp_path, "board.pdf", mf.pdf([TEXT]))
    copy = _pdf_with(marked, f'<rdf:Description rdf:about="" xmlns:pdfx="{PDFX}" {{fields}}/>'
                     + " " * (4 << 20))
    found = inspect(io.BytesIO(copy))
    assert (found.status, found.cause) == ("uninspectable", "too-large"), found
    _clerk_cannot_lower(office, tmp_path, "copy.pdf", copy)


def test_an_xmp_decoy_cannot_switch_the_pdfx_label_off(tmp_path: Path) -> None:
    # A second rdf:Description in another namespace saying the label's
    # _Enabled is false was the last reading of it, and it won.
    import make_files as mf

    office, marked = _deputys_copy(tmp_path, "board.pdf", mf.pdf([TEXT]))
    pdfx = f'<rdf:Description rdf:about="" xmlns:pdfx="{PDFX}" {{fields}}/>'
    decoy = (f'<rdf:Description rdf:about="" xmlns:z="urn:x-notes:1" '
             f'z:MSIP_Label_{BOARD}_Enabled="false"/>')
    copy = _pdf_with(marked, pdfx + decoy)
    assert _labels(copy) == ("complete", [(BOARD, True)])
    _clerk_cannot_lower(office, tmp_path, "copy.pdf", copy)
    # Before it too, and as an element; a decoy saying true adds a reading.
    assert _labels(_pdf_with(marked, decoy + pdfx)) == ("complete", [(BOARD, True)])
    element = (f'<rdf:Description rdf:about="" xmlns:z="urn:x-notes:1"><z:MSIP_Label_{BOARD}_'
               f'Enabled>false</z:MSIP_Label_{BOARD}_Enabled></rdf:Description>')
    assert _labels(_pdf_with(marked, pdfx + element)) == ("complete", [(BOARD, True)])


@pytest.mark.parametrize("value", [
    '<rdf:Alt><rdf:li xml:lang="x-default">true</rdf:li></rdf:Alt>',
    '<rdf:Bag><rdf:li>true</rdf:li></rdf:Bag>',
    '<rdf:Description><rdf:value>true</rdf:value></rdf:Description>',
])
def test_an_xmp_label_property_holding_its_value_in_rdf_is_read(value: str) -> None:
    # A language alternative or an rdf:value was read as the property's own
    # (empty) text: the label switched off.
    import make_files as mf

    enabled = f"pdfx:MSIP_Label_{BOARD}_Enabled"
    xmp = (f'<rdf:Description rdf:about="" xmlns:pdfx="{PDFX}"><{enabled}>{value}</{enabled}>'
           "</rdf:Description>")
    assert _labels(_pdf_with(mf.pdf([TEXT]), xmp)) == ("complete", [(BOARD, True)])
    resource = (f'<rdf:Description rdf:about="" xmlns:pdfx="{PDFX}"><{enabled} '
                'rdf:parseType="Resource"><rdf:value>true</rdf:value></'
                f'{enabled}></rdf:Description>')
    assert _labels(_pdf_with(mf.pdf([TEXT]), resource)) == ("complete", [(BOARD, True)])


def test_an_xmp_label_property_with_two_values_is_ambiguous() -> None:
    import make_files as mf

    enabled = f"pdfx:MSIP_Label_{BOARD}_Enabled"
    cases = (
        f'<rdf:Description rdf:about="" xmlns:pdfx="{PDFX}" {enabled}="true"/>'
        f'<rdf:Description rdf:about="" xmlns:pdfx="{PDFX}" {enabled}="false"/>',
        f'<rdf:Description rdf:about="" xmlns:pdfx="{PDFX}"><{enabled}><rdf:Alt>'
        f'<rdf:li xml:lang="x-default">true</rdf:li><rdf:li xml:lang="fr">false</rdf:li>'
        f"</rdf:Alt></{enabled}></rdf:Description>",
    )
    for xmp in cases:
        found = inspect(io.BytesIO(_pdf_with(mf.pdf([TEXT]), xmp)))
        assert (found.status, found.cause) == ("uninspectable", "ambiguous"), xmp


def test_a_pdf_information_dictionary_defining_a_key_twice_is_ambiguous(
        tmp_path: Path) -> None:
    # An incremental update's new information dictionary repeats each field
    # --mark wrote, `_Enabled (false)` first: pypdf kept the first, a viewer
    # may keep the last; the copy read complete with the label switched off.
    import re

    import make_files as mf
    from pypdf import PdfReader

    office, marked = _deputys_copy(tmp_path, "board.pdf", mf.pdf([TEXT]))
    reader = PdfReader(io.BytesIO(marked))
    info = {str(k): str(v) for k, v in (reader.metadata or {}).items()}
    enabled = next(k for k in info if k.endswith("_Enabled"))

    def literal(text: str) -> str:
        return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"

    body = f"{enabled} (false) " + " ".join(f"{k} {literal(v)}" for k, v in info.items())
    size, root = int(reader.trailer["/Size"]), reader.trailer.raw_get("/Root").idnum
    prev = int(re.findall(rb"startxref\s+(\d+)", marked)[-1])
    update = bytearray(b"\n")
    at = len(marked) + len(update)
    update += f"{size} 0 obj\n<< {body} >>\nendobj\n".encode()
    xref = len(marked) + len(update)
    update += (f"xref\n{size} 1\n{at:010d} 00000 n \ntrailer\n<< /Size {size + 1} /Root {root} "
               f"0 R /Info {size} 0 R /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n").encode()
    copy = marked + bytes(update)
    found = inspect(io.BytesIO(copy))
    assert (found.status, found.cause) == ("uninspectable", "ambiguous"), found
    _clerk_cannot_lower(office, tmp_path, "copy.pdf", copy)
    assert _labels(marked) == ("complete", [(BOARD, True)])  # the copy as marked


def test_reads_that_overlap_keep_the_duplicate_keys_noted_until_the_last_ends() -> None:
    # Two PDFs read at once (library callers in threads): the first to end
    # put pypdf's loggers back as it found them, so the second read noted
    # no key defined twice -- an information dictionary saying _Enabled
    # false, then true, read as a label switched off -- and the last left
    # pypdf silenced for good.
    import logging

    from pypdf.generic import DictionaryObject

    from vault.intake import Budget
    from vault.intake._model import Meter
    from vault.intake._pdf import _DUPLICATE_HANDLER, _counted

    loggers = [logging.getLogger("pypdf"), logging.getLogger(DictionaryObject.__module__)]
    before = [(one.level, one.propagate, list(one.handlers)) for one in loggers]
    first, second = _counted(Meter(Budget())), _counted(Meter(Budget()))
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert loggers[1].handlers == [_DUPLICATE_HANDLER] and not loggers[1].propagate
    second.__exit__(None, None, None)
    assert [(one.level, one.propagate, list(one.handlers)) for one in loggers] == before


def test_a_pdf_whose_metadata_names_no_stream_reads_as_without_xmp() -> None:
    # /Metadata pointing at an object that does not exist is null: an
    # honest file read uninspectable (AttributeError) before.
    from intake_support import raw_pdf

    objs = {1: b"<< /Type /Catalog /Pages 2 0 R /Metadata 9 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"}
    assert _labels(raw_pdf(objs)) == ("complete", [])
    objs[1], objs[4] = objs[1].replace(b"9 0 R", b"4 0 R"), b"<< /A 1 >>"
    assert _labels(raw_pdf(objs)) == ("complete", [])


def test_a_label_field_padded_with_spaces_is_read() -> None:
    # `true` padded past the field bound was skipped: the label read off.
    import make_files as mf

    info = {**mf.msip_info(BOARD, "Highly Confidential"),
            f"MSIP_Label_{BOARD}_Enabled": "true" + " " * 300}
    assert _labels(mf.pdf([TEXT], info)) == ("complete", [(BOARD, True)])


def test_mark_rewrites_custom_properties_stored_under_another_case(tmp_path: Path) -> None:
    # docProps/Custom.xml (a name Office and intake both read): --mark added
    # docProps/custom.xml beside it, and the copy, two parts of one name,
    # was uninspectable -- the clerk gave INTERNAL//STAFF, below its source.
    import make_files as mf

    source = mf.add_parts(mf.docx([TEXT]), {"docProps/Custom.xml": mf.custom_xml(
        BOARD, "Highly Confidential\\Specified People")},
        {"docProps/Custom.xml": mf.CUSTOM_TYPE}, {"docProps/Custom.xml": mf.CUSTOM_REL})
    office, marked = _deputys_copy(tmp_path, "board.docx", source)
    names = [n for n in zipfile.ZipFile(io.BytesIO(marked)).namelist()
             if n.lower().startswith("docprops/custom")]
    assert names == ["docProps/Custom.xml"]
    assert _labels(marked) == ("complete", [(BOARD, True)])
    path = tmp_path / "copy.docx"
    path.write_bytes(marked)
    r = office.cli("clerk", "seal", str(path), "--level", "INTERNAL//STAFF")
    assert r.exit_code != 0 and "below the floor SECRET//BOARD" in r.stderr, r.stderr
    _clerk_cannot_lower(office, tmp_path, "copy.docx", marked)


@pytest.mark.parametrize("name,part,make", [
    ("lowercase", "docMetadata/labelinfo.xml", "label_info"),
    ("other-name", "docMetadata/Label2.xml", "label_info"),
    ("custom-other-name", "docProps/props2.xml", "custom_xml"),
])
def test_mark_rewrites_every_label_part_intake_reads(name: str, part: str, make: str) -> None:
    # A LabelInfo or custom properties part reached through _rels/.rels
    # under another name kept its older, lower label in the marked copy.
    import make_files as mf

    general = mf.GENERAL
    body = mf.label_info(general) if make == "label_info" else mf.custom_xml(general, "General")
    kind = "application/vnd.ms-office.classificationlabels+xml" if make == "label_info" \
        else mf.CUSTOM_TYPE
    rel = mf.LABEL_REL if make == "label_info" else mf.CUSTOM_REL
    source = mf.add_parts(mf.docx([TEXT]), {part: body}, {part: kind}, {part: rel})
    assert _labels(source) == ("complete", [(general, True)])
    mapping = office_label_for(POLICY, POLICY.make_label(level="SECRET", compartments=["BOARD"]))
    assert mapping is not None and mapping.id == BOARD
    out = io.BytesIO()
    mark_office(io.BytesIO(source), out, mapping)
    assert _labels(out.getvalue()) == ("complete", [(BOARD, True)])


def test_mark_removes_a_label_named_in_lowercase() -> None:
    # Intake reads `msip_label_` in any case; marking removed only
    # `MSIP_Label_`, so a PDF's lowercase label stayed in the copy.
    import make_files as mf

    mapping = office_label_for(POLICY, POLICY.make_label(level="SECRET", compartments=["BOARD"]))
    assert mapping is not None
    lower = {k.replace("MSIP_Label_", "msip_label_"): v
             for k, v in mf.msip_info(mf.GENERAL, "General").items()}
    source = mf.pdf([TEXT], lower)
    assert _labels(source) == ("complete", [(mf.GENERAL, True)])
    xmp = _pdf_with(source, f'<rdf:Description rdf:about="" xmlns:pdfx="{PDFX}" '
                    + " ".join(f'pdfx:{k}="{v}"' for k, v in lower.items()) + "/>",
                    keep_info=True)
    docx_lower = mf.add_parts(mf.docx([TEXT]), {"docProps/custom.xml": mf.custom_xml(
        mf.GENERAL, "General").replace(b"MSIP_Label_", b"msip_label_")},
        {"docProps/custom.xml": mf.CUSTOM_TYPE}, {"docProps/custom.xml": mf.CUSTOM_REL})
    for data, mark in ((source, mark_pdf), (xmp, mark_pdf), (docx_lower, mark_office)):
        out = io.BytesIO()
        mark(io.BytesIO(data), out, mapping)
        assert _labels(out.getvalue()) == ("complete", [(BOARD, True)])


def test_a_marked_copy_intake_would_not_read_as_the_vaults_alone_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever else is missed in the marking itself, the copy is inspected
    # before it is handed out: one carrying another label, or one intake
    # cannot read, is refused with a clear error and nothing is written.
    import make_files as mf

    from vault.intake import _mark

    mapping = office_label_for(POLICY, POLICY.make_label(level="SECRET", compartments=["BOARD"]))
    assert mapping is not None
    source = mf.with_label_info(mf.docx([TEXT]), mf.GENERAL)
    stale = mf.label_info(mf.GENERAL)
    monkeypatch.setattr(_mark, "_label_info", lambda *a: stale)
    out = io.BytesIO()
    with pytest.raises(BadDataError, match="would carry a label besides the vault's"):
        mark_office(io.BytesIO(source), out, mapping)
    assert out.getvalue() == b""
    monkeypatch.setattr(_mark, "_label_info", lambda *a: b"<not xml")
    with pytest.raises(BadDataError, match="intake could not read the marked copy"):
        mark_office(io.BytesIO(source), out, mapping)
    assert out.getvalue() == b""


@pytest.mark.parametrize("name", ["plain.docx", "labelinfo.xlsx", "confidential.pptx",
                                  "highly-confidential.docx", "labelled.pdf"])
def test_a_marked_copy_reads_back_complete_with_the_written_label_alone(name: str) -> None:
    mapping = office_label_for(POLICY, POLICY.make_label(level="SECRET", compartments=["BOARD"]))
    assert mapping is not None
    out = io.BytesIO()
    mark = mark_pdf if name.endswith(".pdf") else mark_office
    mark(io.BytesIO((FILES / name).read_bytes()), out, mapping)
    assert _labels(out.getvalue()) == ("complete", [(BOARD, True)])


_PROPS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
_VT = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
_HONEST = [  # (attributes after fmtid and pid, value) as Office and SharePoint write them
    ('name="Keywords"', '<vt:vector size="2" baseType="lpwstr"><vt:lpwstr>budget</vt:lpwstr>'
                        "<vt:lpwstr>2026 &amp; after</vt:lpwstr></vt:vector>"),
    ('name="Reviewed"', "<vt:filetime>2026-03-02T09:30:00Z</vt:filetime>"),
    ('name="Final"', "<vt:bool>true</vt:bool>"),
    ('name="Pages"', "<vt:i4>12</vt:i4>"),
    ('name="Client" linkTarget="_Client"', "<vt:lpwstr>Acme</vt:lpwstr>"),
    ('name="Notes"', "<vt:lpwstr></vt:lpwstr>"),
    ('name="Blank"', "<vt:lpwstr/>"),
    ('name="Spaced"', '<vt:lpwstr xml:space="preserve">  two&#13;\nlines </vt:lpwstr>'),
]


def _custom_part(props: list[tuple[str, str]], vt: str = "vt") -> bytes:
    rows = "".join(f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{pid}" '
                   f"{attrs}>{value.replace('vt:', vt + ':')}</property>"
                   for pid, (attrs, value) in enumerate(props, 2))
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties '
            f'xmlns="{_PROPS}" xmlns:{vt}="{_VT}">{rows}</Properties>').encode()


def _tree(elem: Any) -> tuple[Any, ...]:
    """An element as its meaning: name, attributes, text, children, tail."""
    return (elem.tag, sorted(elem.attrib.items()), elem.text or "",
            [_tree(child) for child in elem], elem.tail or "")


def _properties(part: bytes) -> tuple[dict[str, tuple[Any, ...]], list[int]]:
    """Each property of a custom.xml by name, its pid left out, and the pids."""
    from xml.etree import ElementTree

    root = ElementTree.fromstring(part)
    pids = [int(p.attrib.pop("pid")) for p in root]
    return {p.get("name", ""): _tree(p) for p in root}, pids


@pytest.mark.parametrize("vt", ["vt", "t"])
def test_marking_keeps_every_other_custom_property_as_it_was(vt: str) -> None:
    # A vt:vector (a keyword list) was written back as an empty
    # <vt:vector></vt:vector>, its size, base type and values lost, the
    # part invalid against its schema; linkTarget was dropped. Every
    # property that is not a label is kept, whatever its type, and the
    # old label's go.
    import make_files as mf

    old_label = [(f'name="MSIP_Label_{mf.GENERAL}_{k}"', f"<vt:lpwstr>{v}</vt:lpwstr>")
                 for k, v in (("Enabled", "true"), ("Name", "General"))]
    part = _custom_part(old_label[:1] + _HONEST + old_label[1:], vt)
    source = mf.add_parts(mf.docx([TEXT]), {"docProps/custom.xml": part},
                          {"docProps/custom.xml": mf.CUSTOM_TYPE},
                          {"docProps/custom.xml": mf.CUSTOM_REL})
    mapping = office_label_for(POLICY, POLICY.make_label(level="SECRET", compartments=["BOARD"]))
    assert mapping is not None
    out = io.BytesIO()
    mark_office(io.BytesIO(source), out, mapping)
    assert _labels(out.getvalue()) == ("complete", [(BOARD, True)])
    before, _ = _properties(part)
    after, pids = _properties(zipfile.ZipFile(out).read("docProps/custom.xml"))
    kept = {name: tree for name, tree in after.items() if not name.startswith("MSIP_Label_")}
    assert kept == {name: tree for name, tree in before.items()
                    if not name.startswith("MSIP_Label_")}
    assert len(kept) == len(_HONEST)
    assert sorted(pids) == list(range(2, len(after) + 2))
    assert kept["Keywords"][3][0][1] == [("baseType", "lpwstr"), ("size", "2")]
    assert kept["Spaced"][3][0][2] == "  two\r\nlines "


def _big_xmp_pdf(padding: int) -> bytes:
    """An honest PDF whose XMP packet, no label in it, is padded to
    ``padding`` bytes and more (as a Photoshop or InDesign file's packet
    grows with its DocumentAncestors)."""
    import make_files as mf
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject, StreamObject

    ancestors = "".join(f"<rdf:li>xmp.did:{i:032x}</rdf:li>" for i in range(1000))
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(mf.pdf(["Annual brochure."]))))
    s = StreamObject()
    s.set_data(('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:'
                'ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                '<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/'
                f'1.0/"><photoshop:DocumentAncestors><rdf:Bag>{ancestors}</rdf:Bag>'
                "</photoshop:DocumentAncestors></rdf:Description></rdf:RDF></x:xmpmeta>"
                + " " * padding + '<?xpacket end="w"?>').encode())
    s.update({NameObject("/Type"): NameObject("/Metadata"),
              NameObject("/Subtype"): NameObject("/XML")})
    w.root_object[NameObject("/Metadata")] = w._add_object(s)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_marking_a_pdf_drops_an_xmp_packet_too_large_to_read() -> None:
    # A packet past max_metadata_bytes holding no label was kept, and the
    # copy refused: "intake could not read the marked copy (the XMP
    # metadata is larger than 4194304 bytes)". One intake reads stays.
    from pypdf import PdfReader

    mapping = office_label_for(POLICY, POLICY.make_label(level="SECRET", compartments=["BOARD"]))
    assert mapping is not None
    for padding, kept in ((4 << 20, False), (1000, True)):
        out = io.BytesIO()
        mark_pdf(io.BytesIO(_big_xmp_pdf(padding)), out, mapping)
        assert _labels(out.getvalue()) == ("complete", [(BOARD, True)])
        root = PdfReader(io.BytesIO(out.getvalue())).trailer["/Root"]
        assert ("/Metadata" in root) is kept
