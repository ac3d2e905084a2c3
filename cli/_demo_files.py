"""Small but valid office documents for ``vault demo``.

The demo seals real office files, so it writes them itself: a Word document
(.docx) and an Excel workbook (.xlsx), each a minimal Office Open XML
package (ECMA-376 Part 2, Open Packaging Conventions): a ZIP archive holding
``[Content_Types].xml``, the package relationships ``_rels/.rels`` and the
parts they point to. Office, LibreOffice and the usual libraries open them.

Entries carry a fixed timestamp, so the same content always gives the same
bytes (and the same SHA-256).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape

__all__ = ["DOCX_TYPE", "XLSX_TYPE", "docx", "xlsx"]

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_OFFICE_DOC = _DOC_RELS + "/officeDocument"
_CORE_PROPS = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
_FIXED_TIME = (2024, 1, 2, 9, 0, 0)


def _zip(parts: Sequence[tuple[str, str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        # [Content_Types].xml first, as Office itself writes it.
        for name, text in parts:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text.encode("utf-8"))
    return buf.getvalue()


def _content_types(overrides: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<Override PartName="{name}" ContentType="{ctype}"/>' for name, ctype in overrides
    )
    return (
        _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>' + items + "</Types>"
    )


def _package_rels(main_part: str) -> str:
    return (
        _XML + f'<Relationships xmlns="{_PKG_RELS}">'
        f'<Relationship Id="rId1" Type="{_OFFICE_DOC}" Target="{main_part}"/>'
        f'<Relationship Id="rId2" Type="{_CORE_PROPS}" Target="docProps/core.xml"/>'
        "</Relationships>"
    )


def _core_props(title: str, creator: str) -> str:
    return (
        _XML + "<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{escape(title)}</dc:title><dc:creator>{escape(creator)}</dc:creator>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-01-02T09:00:00Z</dcterms:created>'
        "</cp:coreProperties>"
    )


_CORE_TYPE = "application/vnd.openxmlformats-package.core-properties+xml"


def docx(title: str, paragraphs: Sequence[str], *, creator: str = "vault demo") -> bytes:
    """A Word document: a title paragraph followed by ``paragraphs``."""
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'
        for text in [title, *paragraphs]
    )
    document = (
        _XML + '<w:document xmlns:w="http://schemas.openxmlformats.org/'
        'wordprocessingml/2006/main">'
        f"<w:body>{body}<w:sectPr/></w:body></w:document>"
    )
    main_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    return _zip(
        [
            (
                "[Content_Types].xml",
                _content_types(
                    [("/word/document.xml", main_type), ("/docProps/core.xml", _CORE_TYPE)]
                ),
            ),
            ("_rels/.rels", _package_rels("word/document.xml")),
            ("docProps/core.xml", _core_props(title, creator)),
            ("word/document.xml", document),
        ]
    )


def _column(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def _cell(ref: str, value: str | float) -> str:
    if isinstance(value, str) and value.startswith("="):
        return f'<c r="{ref}"><f>{escape(value[1:])}</f></c>'
    if isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
    return f'<c r="{ref}"><v>{value!r}</v></c>'


def xlsx(
    title: str,
    sheet: str,
    rows: Sequence[Sequence[str | float]],
    *,
    creator: str = "vault demo",
) -> bytes:
    """An Excel workbook with one sheet; strings starting with ``=`` are formulas."""
    sheet_rows = "".join(
        f'<row r="{r + 1}">'
        + "".join(_cell(f"{_column(c)}{r + 1}", v) for c, v in enumerate(row))
        + "</row>"
        for r, row in enumerate(rows)
    )
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    worksheet = _XML + f"<worksheet {ns}><sheetData>{sheet_rows}</sheetData></worksheet>"
    workbook = (
        _XML + f'<workbook {ns} xmlns:r="{_DOC_RELS}"><sheets>'
        f'<sheet name="{escape(sheet)}" sheetId="1" r:id="rId1"/></sheets>'
        # Formulas carry no cached value: ask the reader to compute them.
        '<calcPr fullCalcOnLoad="1"/></workbook>'
    )
    workbook_rels = (
        _XML + f'<Relationships xmlns="{_PKG_RELS}">'
        f'<Relationship Id="rId1" Type="{_DOC_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    )
    sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return _zip(
        [
            (
                "[Content_Types].xml",
                _content_types(
                    [
                        ("/xl/workbook.xml", f"{sml}.sheet.main+xml"),
                        ("/xl/worksheets/sheet1.xml", f"{sml}.worksheet+xml"),
                        ("/docProps/core.xml", _CORE_TYPE),
                    ]
                ),
            ),
            ("_rels/.rels", _package_rels("xl/workbook.xml")),
            ("docProps/core.xml", _core_props(title, creator)),
            ("xl/workbook.xml", workbook),
            ("xl/_rels/workbook.xml.rels", workbook_rels),
            ("xl/worksheets/sheet1.xml", worksheet),
        ]
    )
