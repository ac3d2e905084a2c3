"""Text an application shows that intake once left unread (docs/POLICY.md
§11.1): each file below holds board minutes with a card number where Word,
Excel, PowerPoint or a PDF viewer shows it, and was inspected "complete"
with no match -- sealed at the default label, opened by someone cleared
for INTERNAL. Now each is found, or (a document importing another) is not
inspected at all."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import make_files as mf
import pytest
from intake_support import raw_pdf, rewrite

from vault.intake import classify_for_seal, inspect
from vault.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
SECRET = "BOARD MINUTES - venue paid with card 4111 1111 1111 1111"
Parts = dict[str, bytes]


def strict(parts: Parts) -> Parts:
    # ISO 29500 Strict: the same elements in another namespace.
    return {n: p.replace(b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
                         b"http://purl.oclc.org/ooxml/wordprocessingml/main") for n, p in
            parts.items()}


def master(parts: Parts) -> Parts:
    # A text box on the slide master: shown on every slide.
    name = "ppt/slideMasters/slideMaster1.xml"
    box = ('<p:sp><p:nvSpPr><p:cNvPr id="99" name="Banner"/><p:cNvSpPr txBox="1"/><p:nvPr/>'
           '</p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/><a:lstStyle/><a:p><a:r><a:rPr lang="en-US"/>'
           f'<a:t>{SECRET}</a:t></a:r></a:p></p:txBody></p:sp>').encode()
    parts[name] = re.sub(rb"(<p:spTree>.*?</p:grpSpPr>)", lambda m: m.group(1) + box,
                         parts[name], count=1, flags=re.S)
    assert SECRET.encode() in parts[name]
    return parts


def tab_name(parts: Parts) -> Parts:
    parts["xl/workbook.xml"] = re.sub(rb'<sheet ([^>]*)name="[^"]*"',
                                      rb'<sheet \1name="Board minutes 4111111111111111"',
                                      parts["xl/workbook.xml"])
    return parts


def page_header(parts: Parts) -> Parts:
    name = "xl/worksheets/sheet1.xml"
    parts[name] = parts[name].replace(
        b"</worksheet>", f"<headerFooter><oddHeader>{SECRET}</oddHeader></headerFooter>"
                         "</worksheet>".encode())
    return parts


def text_box(parts: Parts) -> Parts:
    # A drawing's text box (Excel), read whatever refers to it.
    parts["xl/drawings/drawing1.xml"] = (
        '<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/'
        'spreadsheetDrawing" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
        f'<xdr:twoCellAnchor><xdr:sp><xdr:txBody><a:p><a:r><a:t>{SECRET}</a:t></a:r></a:p>'
        '</xdr:txBody></xdr:sp></xdr:twoCellAnchor></xdr:wsDr>').encode()
    return parts


def quote_field(parts: Parts) -> Parts:
    name = "word/document.xml"
    parts[name] = parts[name].replace(
        b"<w:sectPr", f'<w:p><w:r><w:instrText> QUOTE "{SECRET}" </w:instrText></w:r></w:p>'
                      "<w:sectPr".encode(), 1)
    return parts


def alt_chunk(parts: Parts) -> Parts:
    # An HTML part Word imports into the body when it opens the file.
    parts["word/chunk1.html"] = f"<html><body><p>{SECRET}</p></body></html>".encode()
    parts["word/document.xml"] = parts["word/document.xml"].replace(
        b"<w:sectPr", b'<w:altChunk r:id="rIdAlt1"/><w:sectPr', 1)
    return parts


def pdf_annotation() -> bytes:
    from pypdf import PdfReader, PdfWriter
    from pypdf.annotations import FreeText

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(mf.pdf(["Canteen hours."]))))
    writer.add_annotation(0, FreeText(text=SECRET, rect=(50, 550, 550, 600)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


CASES: dict[str, Callable[[], bytes]] = {
    "strict.docx": lambda: rewrite(mf.docx([SECRET]), strict),
    "quote-field.docx": lambda: rewrite(mf.docx(["Canteen hours."]), quote_field),
    "slide-master.pptx": lambda: rewrite(mf.pptx("Project update", "Notes."), master),
    "tab-name.xlsx": lambda: rewrite(mf.xlsx([["Budget", 2025]]), tab_name),
    "page-header.xlsx": lambda: rewrite(mf.xlsx([["Budget", 2025]]), page_header),
    "text-box.xlsx": lambda: rewrite(mf.xlsx([["Budget", 2025]]), text_box),
    "annotation.pdf": pdf_annotation,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_text_an_application_shows_is_inspected(name: str) -> None:
    policy = load_policy(ROOT / "policies" / "office.yaml", template=True)
    result = inspect(io.BytesIO(CASES[name]()), rules=policy.intake.content_rules())
    assert result.status == "complete" and "card-numbers" in result.matched_rules, result
    outcome = classify_for_seal(policy, result, None, actor="clerk")
    assert outcome.floor is not None and "PERSONAL-DATA" in outcome.floor.caveats


def test_a_document_importing_another_is_not_inspected() -> None:
    policy = load_policy(ROOT / "policies" / "office.yaml", template=True)
    data = rewrite(mf.docx(["Canteen hours."]), alt_chunk)
    result = inspect(io.BytesIO(data), rules=policy.intake.content_rules())
    assert (result.status, result.cause) == ("uninspectable", "unsupported"), result
    outcome = classify_for_seal(policy, result, None, actor="clerk")
    assert (outcome.label, outcome.allowed) == (None, False)  # require-label


def test_annotations_past_the_cap_make_the_inspection_not_whole() -> None:
    # 10,000 references to one empty annotation, then the one that shows
    # the card: the rest of the list was skipped without a word, and the
    # inspection said "complete" -- sealed at the default label.
    objs = {5: b"<< /Type /Annot /Subtype /Text /Rect [0 0 1 1] /Contents () >>",
            9: b"<< /Type /Annot /Subtype /FreeText /Rect [0 0 200 20] /Contents ("
               + SECRET.encode() + b") >>",
            7: b"[" + b"5 0 R " * 10_000 + b"9 0 R]",
            100: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Annots 7 0 R >>",
            2: b"<< /Type /Pages /Kids [100 0 R] /Count 1 >>",
            1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    policy = load_policy(ROOT / "policies" / "office.yaml", template=True)
    result = inspect(io.BytesIO(raw_pdf(objs)), rules=policy.intake.content_rules())
    assert result.status == "truncated" and "annotations past" in (result.reason or "")
    outcome = classify_for_seal(policy, result, None, actor="clerk")
    assert (outcome.label, outcome.allowed) == (None, False)  # require-label


def _stream(data: bytes, kind: bytes = b"") -> bytes:
    return b"<< %s/Length %d >>\nstream\n" % (kind, len(data)) + data + b"\nendstream"


_FORM = b"/Type /XObject /Subtype /Form /BBox [0 0 400 20] "
_DRAWN = b"BT /F1 10 Tf 2 5 Td (" + SECRET.encode() + b") Tj ET"
_ANNOTATED = {
    # what a viewer draws of a box whose /Contents is empty: its appearance
    "appearance": {10: b"<< /Type /Annot /Subtype /FreeText /Rect [0 0 400 20] /Contents () "
                       b"/AP << /N 11 0 R >> >>", 11: _stream(_DRAWN, _FORM)},
    # rich text given as a stream, as the format allows
    "rich-text-stream": {10: b"<< /Type /Annot /Subtype /FreeText /Rect [0 0 400 20] "
                             b"/Contents () /RC 11 0 R >>",
                         11: _stream(b"<body><p>" + SECRET.encode() + b"</p></body>")},
    # a field's widget that no /AcroForm lists, drawn by its appearance
    "unlisted-widget": {10: b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (f) /Rect [0 0 400 20] "
                            b"/V (" + SECRET.encode() + b") >>"},
    # a field's value given as a stream
    "value-stream": {10: b"<< /Type /Annot /Subtype /Widget /FT /Tx /T (f) /Rect [0 0 400 20] "
                         b"/V 11 0 R >>", 11: _stream(SECRET.encode()),
                     20: b"<< /Fields [10 0 R] /NeedAppearances true >>"},
}


@pytest.mark.parametrize("name", sorted(_ANNOTATED))
def test_what_a_viewer_draws_of_an_annotation_is_inspected(name: str) -> None:
    # Each came out "complete" with nothing found: /AP and stream values
    # were not read, and str() of a stream gave its dictionary.
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R /AcroForm 20 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 100] /Annots [10 0 R] >>",
            20: b"<< /Fields [] >>", **_ANNOTATED[name]}
    policy = load_policy(ROOT / "policies" / "office.yaml", template=True)
    result = inspect(io.BytesIO(raw_pdf(objs)), rules=policy.intake.content_rules())
    assert result.status == "complete" and "card-numbers" in result.matched_rules, result


_FONTED = _FORM + b"/Resources << /Font << /F1 30 0 R >> >> "
_HEX = b"<" + SECRET.encode().hex().encode() + b">"
_OCTAL = b"(" + b"".join(b"\\%03o" % c for c in SECRET.encode()) + b")"
_SPLIT = b"[(" + SECRET.encode()[:30] + b") -120 <" + SECRET.encode()[30:].hex().encode() + b">]"
_DRAWN_AS = {
    "hex-string": {11: _stream(b"BT /F1 10 Tf 2 5 Td " + _HEX + b" Tj ET", _FONTED)},
    "octal-escapes": {11: _stream(b"BT /F1 10 Tf 2 5 Td " + _OCTAL + b" Tj ET", _FONTED)},
    "TJ-array": {11: _stream(b"BT /F1 10 Tf 2 5 Td " + _SPLIT + b" TJ ET", _FONTED)},
    "nested-form": {11: _stream(b"/Fm0 Do", _FORM + b"/Resources << /XObject << /Fm0 12 0 R "
                                                    b">> >> "),
                    12: _stream(_DRAWN, _FONTED)},
    "form-in-form": {11: _stream(b"/Fm0 Do", _FORM + b"/Resources << /XObject << /Fm0 12 0 R "
                                                     b">> >> "),
                     12: _stream(b"q /Fm1 Do Q", _FORM + b"/Resources << /XObject << /Fm1 13 "
                                                         b"0 R >> >> "),
                     13: _stream(b"BT /F1 10 Tf 2 5 Td " + _HEX + b" Tj ET", _FONTED)},
}


@pytest.mark.parametrize("name", sorted(_DRAWN_AS))
def test_an_appearance_is_read_as_the_strings_it_draws(name: str) -> None:
    # A FreeText box's appearance was read as its raw bytes: the same text
    # drawn as a hex string, with octal escapes, or by a Form XObject it
    # draws (Do, as Acrobat writes appearances) was sealed "complete" with
    # no floor.
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 100] /Annots [10 0 R] >>",
            10: b"<< /Type /Annot /Subtype /FreeText /Rect [0 0 400 20] /Contents () "
                b"/DA (/F1 10 Tf 0 g) /AP << /N 11 0 R >> >>",
            30: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", **_DRAWN_AS[name]}
    policy = load_policy(ROOT / "policies" / "office.yaml", template=True)
    result = inspect(io.BytesIO(raw_pdf(objs)), rules=policy.intake.content_rules())
    assert result.status == "complete" and "card-numbers" in result.matched_rules, result


def test_an_appearance_drawing_itself_ends() -> None:
    # A form drawing itself (and another drawing it back) is followed once.
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 100] /Annots [10 0 R] >>",
            10: b"<< /Type /Annot /Subtype /FreeText /Rect [0 0 400 20] /Contents () "
                b"/AP << /N 11 0 R >> >>",
            11: _stream(b"/A Do /B Do " + _DRAWN, _FORM + b"/Resources << /XObject << /A 11 0 R "
                                                         b"/B 12 0 R >> >> "),
            12: _stream(b"/A Do /B Do", _FORM + b"/Resources << /XObject << /A 11 0 R "
                                                b"/B 12 0 R >> >> ")}
    policy = load_policy(ROOT / "policies" / "office.yaml", template=True)
    result = inspect(io.BytesIO(raw_pdf(objs)), rules=policy.intake.content_rules())
    assert result.status == "complete" and "card-numbers" in result.matched_rules, result
