"""Writes the small sample files of tests/intake/files (committed).

    python tests/intake/make_files.py

Real documents made by python-docx, openpyxl, python-pptx and fpdf2; the
sensitivity-label metadata is added afterwards the way Microsoft 365
writes it (docProps/custom.xml MSIP_Label_* properties, or
docMetadata/LabelInfo.xml; a PDF's document information dictionary).
Deterministic: rerunning it rewrites the same content.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent / "files"
SITE = "3b1e6a2c-7d4f-4c9a-9b8e-5f2d1a0c6e47"
HC_ALL = "9fbde396-1a24-4c79-8edf-9254a0f35055"  # Highly Confidential\All Employees
CONF_ALL = "e0b4c6a8-2f1d-4e3b-a5c7-8d9f0b1c2d3e"  # Confidential\All Employees
GENERAL = "d2e1f0a9-b8c7-4d6e-9f5a-4b3c2d1e0f9a"  # General
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
WHEN = (2025, 5, 12, 8, 15, 0)


def custom_xml(guid: str, name: str) -> bytes:
    fields = {"Enabled": "true", "SetDate": "2025-05-12T08:15:00Z", "Method": "Privileged",
              "Name": name, "SiteId": SITE, "ActionId": "5cc46055-305d-4bc1-8f5f-5edf82231378",
              "ContentBits": "0"}
    props = "".join(
        f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{i}" '
        f'name="MSIP_Label_{guid}_{k}"><vt:lpwstr>{v}</vt:lpwstr></property>'
        for i, (k, v) in enumerate(fields.items(), 2))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties xmlns='
            '"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" '
            'xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
            f"{props}</Properties>").encode()


def label_info(guid: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n<clbl:labelList '
            'xmlns:clbl="http://schemas.microsoft.com/office/2020/mipLabelMetadata">'
            f'<clbl:label id="{{{guid}}}" enabled="1" method="Standard" siteId="{{{SITE}}}" '
            'removed="0" /></clbl:labelList>').encode()


def add_parts(data: bytes, parts: dict[str, bytes], overrides: dict[str, str],
              rels: dict[str, str], main_type: tuple[str, str] | None = None) -> bytes:
    """Rewrite an OOXML zip with extra parts, content-type overrides and
    package relationships (and optionally another main content type)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "[Content_Types].xml":
                text = body.decode()
                if main_type:
                    text = text.replace(*main_type)
                extra = "".join(f'<Override PartName="/{p}" ContentType="{t}"/>'
                                for p, t in overrides.items())
                body = text.replace("</Types>", extra + "</Types>").encode()
            elif info.filename == "_rels/.rels":
                extra = "".join(f'<Relationship Id="rIdT{i}" Type="{t}" Target="{p}"/>'
                                for i, (p, t) in enumerate(rels.items()))
                body = body.decode().replace("</Relationships>",
                                             extra + "</Relationships>").encode()
            z.writestr(zipfile.ZipInfo(info.filename, WHEN), body, zipfile.ZIP_DEFLATED)
        for name, body in parts.items():
            z.writestr(zipfile.ZipInfo(name, WHEN), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


CUSTOM_TYPE = "application/vnd.openxmlformats-officedocument.custom-properties+xml"
CUSTOM_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties"
LABEL_REL = "http://schemas.microsoft.com/office/2020/02/relationships/classificationlabels"


def with_custom(data: bytes, guid: str, name: str, **kw: tuple[str, str]) -> bytes:
    return add_parts(data, {"docProps/custom.xml": custom_xml(guid, name)},
                     {"docProps/custom.xml": CUSTOM_TYPE}, {"docProps/custom.xml": CUSTOM_REL},
                     **kw)


def with_label_info(data: bytes, guid: str) -> bytes:
    return add_parts(data, {"docMetadata/LabelInfo.xml": label_info(guid)},
                     {"docMetadata/LabelInfo.xml": "application/xml"},
                     {"docMetadata/LabelInfo.xml": LABEL_REL})


def docx(paragraphs: list[str], header: str | None = None) -> bytes:
    import docx as python_docx

    doc = python_docx.Document()
    doc.core_properties.created = doc.core_properties.modified = datetime(2025, 5, 12)
    for p in paragraphs:
        doc.add_paragraph(p)
    if header:
        doc.sections[0].header.paragraphs[0].text = header
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def xlsx(rows: list[list[object]]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def pptx(title: str, notes: str) -> bytes:
    import pptx as python_pptx

    prs = python_pptx.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[1])
    slide.shapes.title.text = title
    slide.notes_slide.notes_text_frame.text = notes
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def pdf(lines: list[str], info: dict[str, str] | None = None) -> bytes:
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    doc = FPDF()
    doc.set_creation_date(datetime(2025, 5, 12))
    doc.add_page()
    doc.set_font("helvetica", size=12)
    for line in lines:
        doc.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    data = bytes(doc.output())
    if not info:
        return data
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.add_metadata({f"/{k}": v for k, v in info.items()})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def msip_info(guid: str, name: str) -> dict[str, str]:
    return {f"MSIP_Label_{guid}_{k}": v for k, v in
            {"Enabled": "true", "Method": "Privileged", "Name": name, "SiteId": SITE}.items()}


def files() -> dict[str, bytes]:
    plain = docx(["Quarterly staff newsletter.", "Canteen opening hours change in June."])
    return {
        # The two files.
        "highly-confidential.docx": with_custom(
            docx(["Merger negotiation notes.", "Nothing sensitive in the text itself."]),
            HC_ALL, "Highly Confidential\\All Employees"),
        "board-minutes.txt": (f"BOARD MINUTES\n\nPayment for the venue: card {CARD}, "
                              "expiry 12/27.\n").encode(),
        # Labels in the other places and formats.
        "labelinfo.xlsx": with_label_info(xlsx([["Budget", 2025], ["Payroll", 1200]]),
                                          CONF_ALL),
        "confidential.pptx": with_custom(pptx("Project update", "Speaker notes."), CONF_ALL,
                                         "Confidential\\All Employees"),
        "macro.docm": with_custom(plain, GENERAL, "General", main_type=(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            "application/vnd.ms-word.document.macroEnabled.main+xml")),
        "labelled.pdf": pdf(["Supplier payment instructions", f"IBAN {IBAN}"],
                            msip_info(HC_ALL, "Highly Confidential\\All Employees")),
        # Content in the places an extractor may miss.
        "card-in-header.docx": docx(["Expense claim."], header=f"Card {CARD}"),
        "iban-cell.xlsx": xlsx([["Supplier", "IBAN"], ["Acme GmbH", IBAN]]),
        "notes.pptx": pptx("Board update", "BOARD MINUTES follow; not for circulation."),
        "plain.docx": plain,
        # Markings of the shipped policies.
        "tlp-amber-strict.md": b"# Incident 2025-041\n\nTLP:AMBER+STRICT\n\nIndicators follow.\n",
        "tlp-red.txt": "TLP:RED \u2014 for the named recipients only.\n".encode(),
        "us-banner.txt": (b"TOP SECRET//SI//NOFORN\n\n(TS//SI//NF) Collection summary.\n\n"
                          b"TOP SECRET//SI//NOFORN\n"),
        "us-secret.txt": b"SECRET//NOFORN\n\nSite survey.\n\nSECRET//NOFORN\n",
        "uk-official-sensitive.csv": b"marking,subject\nOFFICIAL-SENSITIVE,Estates review\n",
        "uk-secret.txt": b"SECRET\n\nOperation planning notes.\n\nSECRET\n",
        "utf16.txt": "\ufeffBOARD MINUTES in UTF-16.\n".encode("utf-16-le"),
        "latin1.txt": "Procès-verbal: BOARD MINUTES, réunion du comité.\n".encode("latin-1"),
    }


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name, data in files().items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
