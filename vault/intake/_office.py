"""Office Open XML documents: which parts hold text, and how to read them
(docs/POLICY.md §11.1).

Word (.docx, .docm): the body, headers and footers, comments, footnotes
and endnotes, deleted text of tracked changes and field instructions
included; a document importing another (altChunk) is not inspected. Excel
(.xlsx, .xlsm): shared strings, each sheet's inline strings, cell values and
printed headers and footers, sheet names, and comments. PowerPoint (.pptx,
.pptm): slides, their masters and layouts, notes and comments. In all
three: text boxes, shapes, charts and SmartArt (DrawingML text). Parts are
found by name, and by the content type [Content_Types].xml declares for
them; Strict (ISO 29500) namespaces are read as the transitional ones.
Embedded objects, images, macros and formulas' results not stored in the
file are not inspected.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from vault.intake._labels import (
    CUSTOM_PROPS,
    LABEL_INFO,
    from_properties,
    merge,
    read_custom,
    read_label_info,
)
from vault.intake._model import Meter, OfficeLabel, Refused
from vault.intake._scan import Scanner
from vault.intake._xml import TextTarget, iter_text
from vault.intake._zip import SafeZip

__all__ = ["office_kind", "read_office"]

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
# ISO 29500 Strict names the same elements in other namespaces; Word, Excel
# and PowerPoint open and save such files.
_STRICT = {W: "{http://purl.oclc.org/ooxml/wordprocessingml/main}",
           S: "{http://purl.oclc.org/ooxml/spreadsheetml/main}",
           A: "{http://purl.oclc.org/ooxml/drawingml/main}",
           P: "{http://purl.oclc.org/ooxml/presentationml/main}"}


def _tags(ns: str, *names: str) -> frozenset[str]:
    """Each element name in the transitional and the Strict namespace."""
    return frozenset(f"{n}{name}" for n in (ns, _STRICT[ns]) for name in names)


class _WordTarget(TextTarget):
    """A Word part's text; field instructions too (a QUOTE field shows its
    text). A part that imports another document into itself (altChunk:
    HTML, RTF or a second .docx that Word merges when it opens the file) is
    not inspected: its text is not in this part."""

    def __init__(self, depth: int) -> None:
        super().__init__(_tags(W, "t", "delText", "instrText"), _tags(W, "p", "br", "cr"),
                         _tags(W, "tab"), depth)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag in _ALT_CHUNK:
            raise Refused("unsupported", "a Word document that imports another document "
                          "(altChunk) is not inspected")
        super().start(tag, attrib)


_ALT_CHUNK = _tags(W, "altChunk")

_WORD = (re.compile(r"word/(document|header\d*|footer\d*|comments|footnotes|endnotes)\.xml"),
         lambda depth: _WordTarget(depth))
_SHARED = (re.compile(r"xl/sharedStrings\.xml"),
           lambda depth: TextTarget(_tags(S, "t"), _tags(S, "si"), max_depth=depth))
_SHEET = (re.compile(r"xl/worksheets/sheet\d+\.xml"),
          lambda depth: _SheetTarget(depth))
_WORKBOOK = (re.compile(r"xl/workbook\.xml"), lambda depth: _NamesTarget(depth))
_XL_COMMENTS = (re.compile(r"xl/comments\d*\.xml"),
                lambda depth: TextTarget(_tags(S, "t"), _tags(S, "comment"), max_depth=depth))
_SLIDES = (re.compile(r"ppt/(slides/slide|notesSlides/notesSlide|slideMasters/slideMaster"
                      r"|slideLayouts/slideLayout)\d+\.xml"),
           lambda depth: TextTarget(_tags(A, "t"), _tags(A, "p", "br"), max_depth=depth))
_PPT_COMMENTS = (re.compile(r"ppt/comments/[^/]+\.xml"),
                 lambda depth: TextTarget(_tags(P, "text"), _tags(P, "cm"), max_depth=depth))
# Text boxes, shapes, charts and SmartArt: DrawingML text, in any of the
# three kinds of document.
_DRAWING = (re.compile(r"(word|xl|ppt)/(drawings|charts|diagrams)/[^/]+\.xml"),
            lambda depth: TextTarget(_tags(A, "t"), _tags(A, "p", "br"), max_depth=depth))

_KINDS: dict[str, tuple[str, tuple[tuple[re.Pattern[str], Callable[[int], TextTarget]], ...]]] = {
    "word/document.xml": ("word", (_WORD, _DRAWING)),
    "xl/workbook.xml": ("excel", (_SHARED, _SHEET, _WORKBOOK, _XL_COMMENTS, _DRAWING)),
    "ppt/presentation.xml": ("powerpoint", (_SLIDES, _PPT_COMMENTS, _DRAWING)),
}


class _NamesTarget(TextTarget):
    """A workbook's sheet names, shown on their tabs."""

    def __init__(self, depth: int) -> None:
        super().__init__(frozenset(), max_depth=depth)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in _SHEET_TAGS:
            self._add(attrib.get("name", "") + "\n")


_SHEET_TAGS = _tags(S, "sheet")


class _SheetTarget(TextTarget):
    """Inline strings and cell values, but not shared-string indexes; the
    page headers and footers printed with the sheet."""

    def __init__(self, depth: int) -> None:
        super().__init__(_tags(S, "t", "v", "oddHeader", "oddFooter", "evenHeader",
                               "evenFooter", "firstHeader", "firstFooter"),
                         _tags(S, "c", "row", "headerFooter"), max_depth=depth,
                         skip=self._index)
        self.cell_type: str | None = None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag in _CELL:
            self.cell_type = attrib.get("t")
        super().start(tag, attrib)

    def _index(self, tag: str, attrib: dict[str, str]) -> bool:
        return tag in _VALUE and self.cell_type == "s"


_CELL, _VALUE = _tags(S, "c"), _tags(S, "v")


# Text parts found by their declared content type, whatever their names: an
# application opens a package's parts through its relationships and checks
# their content types, so a body, a sheet or a slide may live under any
# name ("word/body.xml"), where the patterns above would not look.
CONTENT_TYPES = "[Content_Types].xml"
_OOXML = "application/vnd.openxmlformats-officedocument."
_TYPED: dict[str, dict[str, tuple[re.Pattern[str], Callable[[int], TextTarget]]]] = {
    "word": {f"{_OOXML}wordprocessingml.{t}+xml": _WORD
             for t in ("document.main", "template.main", "header", "footer", "comments",
                       "footnotes", "endnotes")}
    | {f"application/vnd.ms-word.{t}.main+xml": _WORD
       for t in ("document.macroEnabled", "template.macroEnabledTemplate")},
    "excel": {f"{_OOXML}spreadsheetml.worksheet+xml": _SHEET,
              f"{_OOXML}spreadsheetml.sharedStrings+xml": _SHARED,
              f"{_OOXML}spreadsheetml.comments+xml": _XL_COMMENTS},
    "powerpoint": {f"{_OOXML}presentationml.{t}+xml": _SLIDES
                   for t in ("slide", "notesSlide", "slideMaster", "slideLayout")}
    | {f"{_OOXML}presentationml.comments+xml": _PPT_COMMENTS},
}
for _typed in _TYPED.values():  # drawings, charts and SmartArt, in every kind
    _typed |= {f"{_OOXML}{t}+xml": _DRAWING
               for t in ("drawing", "drawingml.chart", "drawingml.diagramData")}


def _typed_parts(zf: SafeZip, kind: str, meter: Meter
                 ) -> dict[str, tuple[re.Pattern[str], Callable[[int], TextTarget]]]:
    """The parts ``[Content_Types].xml`` declares as text parts of ``kind``."""
    if CONTENT_TYPES not in zf:
        return {}
    from vault.intake._xml import parse_small

    budget = meter.budget
    with zf.open(CONTENT_TYPES, budget.max_metadata_bytes) as f:
        events = parse_small(f, CONTENT_TYPES, budget.max_metadata_bytes, budget.max_xml_depth)
    wanted = {t.lower(): reader for t, reader in _TYPED[kind].items()}
    names = {n.lower(): n for n in zf.names()}  # part names are case-insensitive (OPC)
    overrides: dict[str, str] = {}
    defaults: dict[str, str] = {}
    for tag, attrib, _, _ in events:
        local = tag.rsplit("}", 1)[-1]
        content_type = attrib.get("ContentType", "").lower()
        if local == "Override":
            overrides[attrib.get("PartName", "").lstrip("/").lower()] = content_type
        elif local == "Default":  # a part without an Override has its extension's type
            defaults[attrib.get("Extension", "").lower()] = content_type
    out = {}
    for low, name in names.items():
        declared = overrides.get(low)
        if declared is None and "." in low.rsplit("/", 1)[-1]:
            declared = defaults.get(low.rsplit(".", 1)[-1])
        reader = wanted.get(declared or "")
        if reader is not None:
            out[name] = reader
    return out


def _order(name: str) -> tuple[str, int, str]:
    """document.xml first; slide2 before slide10."""
    m = re.search(r"(\d+)\.xml$", name)
    stem = name[: m.start()] if m else name.removesuffix(".xml")
    first = "" if name in _KINDS or name.endswith("/document.xml") else stem
    return first, int(m.group(1)) if m else 0, name


def office_kind(zf: SafeZip) -> str | None:
    return next((kind for main, (kind, _) in _KINDS.items() if main in zf), None)


def read_labels(zf: SafeZip, meter: Meter) -> tuple[OfficeLabel, ...]:
    budget = meter.budget
    info: list[OfficeLabel] = []
    props: list[OfficeLabel] = []
    if LABEL_INFO in zf:
        with zf.open(LABEL_INFO, budget.max_metadata_bytes) as f:
            info = read_label_info(f, budget.max_metadata_bytes, budget.max_xml_depth)
    if CUSTOM_PROPS in zf:
        with zf.open(CUSTOM_PROPS, budget.max_metadata_bytes) as f:
            props = from_properties(read_custom(f, budget.max_metadata_bytes,
                                                budget.max_xml_depth), CUSTOM_PROPS)
    return merge(info, props)


def read_office(zf: SafeZip, scanner: Scanner, meter: Meter) -> tuple[str, tuple[OfficeLabel, ...]]:
    """Scan the text parts of an OOXML package; (kind, labels found)."""
    kind = office_kind(zf)
    if kind is None:
        raise Refused("unsupported", "a zip container that is not a Word, Excel or PowerPoint "
                      "document")
    labels = read_labels(zf, meter)
    readers = _KINDS[next(m for m, (k, _) in _KINDS.items() if k == kind)][1]
    # Parts under their usual names are read as those names say, whatever
    # type a file declares for them; the declared types add the others.
    chosen = {name: make for name, (_, make) in _typed_parts(zf, kind, meter).items()}
    chosen |= {name: make for name in zf.names() for rx, make in readers if rx.fullmatch(name)}
    for name in sorted(chosen, key=_order):
        make = chosen[name]
        scanner.start(name)
        with zf.open(name) as stream:
            for text in iter_text(stream, make(meter.budget.max_xml_depth), name, meter):
                if not scanner.feed(text):
                    break
        scanner.end()
        if meter.truncated and (meter.chars >= meter.budget.max_chars or meter.out_of_time()):
            break
    return kind, labels
