"""Which parts of a Word, Excel or PowerPoint package hold text an
application shows, and what of each part is read (docs/POLICY.md §11.1).

Each reader is a :class:`Reader`: a part-name pattern and a factory of the
:class:`TextTarget` that collects the part's text. ``TYPED`` gives the
same readers by content type, for parts under other names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from vault.intake._model import Refused
from vault.intake._numfmt import CellFormats, StylesTarget, render
from vault.intake._xml import TextTarget

__all__ = ["KINDS", "STYLES", "TYPED", "Context", "Reader"]

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
C = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
# ISO 29500 Strict names the same elements in other namespaces; Word, Excel
# and PowerPoint open and save such files.
_STRICT = {W: "{http://purl.oclc.org/ooxml/wordprocessingml/main}",
           S: "{http://purl.oclc.org/ooxml/spreadsheetml/main}",
           A: "{http://purl.oclc.org/ooxml/drawingml/main}",
           P: "{http://purl.oclc.org/ooxml/presentationml/main}",
           C: "{http://purl.oclc.org/ooxml/drawingml/chart}"}
CX = "{http://schemas.microsoft.com/office/drawing/2014/chartex}"  # newer chart types
P188 = "{http://schemas.microsoft.com/office/powerpoint/2018/8/main}"  # modern comments
TC = "{http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments}"


def _tags(ns: str, *names: str) -> frozenset[str]:
    """Each element name in the transitional and the Strict namespace."""
    spaces = (ns, _STRICT[ns]) if ns in _STRICT else (ns,)
    return frozenset(f"{n}{name}" for n in spaces for name in names)


@dataclass
class Context:
    """What a part's reader may need besides the part: the XML depth bound,
    and (Excel) the number formats of the cell styles, read first."""

    depth: int
    formats: CellFormats = field(default_factory=CellFormats)


Reader = tuple[re.Pattern[str], Callable[[Context], TextTarget]]


def _names(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)  # part names ignore ASCII case (OPC)


class _WordTarget(TextTarget):
    """A Word part's text; field instructions too (a QUOTE field shows its
    text), and symbols (``w:sym``: a character given by its code, in a
    symbol font offset by F000). A part that imports another document into
    itself (altChunk: HTML, RTF or a second .docx that Word merges when it
    opens the file) is not inspected: its text is not in this part."""

    def __init__(self, depth: int) -> None:
        super().__init__(_tags(W, "t", "delText", "instrText"), _tags(W, "p", "br", "cr"),
                         _tags(W, "tab"), depth)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag in _ALT_CHUNK:
            raise Refused("unsupported", "a Word document that imports another document "
                          "(altChunk) is not inspected")
        super().start(tag, attrib)
        if tag in _SYM:
            code = next((v for k, v in attrib.items() if k.endswith("}char")), "")
            if re.fullmatch(r"[0-9A-Fa-f]{1,6}", code):
                n = int(code, 16)
                n = n - 0xF000 if 0xF000 <= n <= 0xF0FF else n
                if 0 < n <= 0x10FFFF and not 0xD800 <= n <= 0xDFFF:
                    self._add(chr(n))


_ALT_CHUNK, _SYM = _tags(W, "altChunk"), _tags(W, "sym")


class _AllText(TextTarget):
    """Every element's text, a line each (an XML data part)."""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        self.inside = 1

    def end(self, tag: str) -> None:
        super().end(tag)
        self.inside = 1
        self._add("\n")


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
    page headers and footers printed with the sheet. A value whose cell
    style has a number format with literal text is read again as the
    format shows it (vault/intake/_numfmt.py)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(_tags(S, "t", "v", "oddHeader", "oddFooter", "evenHeader",
                               "evenFooter", "firstHeader", "firstFooter"),
                         _tags(S, "c", "row", "headerFooter"), max_depth=ctx.depth,
                         skip=self._index)
        self.formats = ctx.formats
        self.cell_type: str | None = None
        self.codes: list[str] = []
        self.value: list[str] | None = None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag in _CELL:
            self.cell_type = attrib.get("t")
            self.codes = self.formats.codes(attrib.get("s")) if self.formats.tables else []
        super().start(tag, attrib)
        if self.codes and tag in _CELL_TEXT and self.inside == self.depth:
            self.value = []

    def data(self, text: str) -> None:
        super().data(text)
        if self.value is not None:
            self.value.append(text)

    def end(self, tag: str) -> None:
        if self.value is not None and self.inside == self.depth:
            value, numeric = "".join(self.value), self.cell_type in (None, "n")
            self.value = None
            for code in self.codes:
                if (shown := render(code, value, numeric)) is not None:
                    self._add("\n" + shown + "\n")
        super().end(tag)

    def _index(self, tag: str, attrib: dict[str, str]) -> bool:
        return tag in _VALUE and self.cell_type == "s"


_CELL, _VALUE, _CELL_TEXT = _tags(S, "c"), _tags(S, "v"), _tags(S, "v", "t")


def _drawing(ctx: Context) -> TextTarget:
    # DrawingML text, and a chart's values and names (categories, series,
    # titles from cells: c:v in c:strCache, c:tx, c:cat), drawn on its axes,
    # legend and data labels.
    return TextTarget(_tags(A, "t") | _tags(C, "v") | frozenset((f"{CX}v",)),
                      _tags(A, "p", "br") | _tags(C, "pt") | frozenset((f"{CX}pt",)),
                      max_depth=ctx.depth)


_WORD = (_names(r"word/(document|header\d*|footer\d*|comments|footnotes|endnotes)\.xml"),
         lambda ctx: _WordTarget(ctx.depth))
# Word content controls bound to a custom XML part show its values: Word
# refreshes them from the part when it opens the document.
_CUSTOM_XML = (_names(r"customXml/item\d+\.xml"), lambda ctx: _AllText(frozenset(),
                                                                       max_depth=ctx.depth))
_SHARED = (_names(r"xl/sharedStrings\.xml"),
           lambda ctx: TextTarget(_tags(S, "t"), _tags(S, "si"), max_depth=ctx.depth))
_SHEET = (_names(r"xl/worksheets/sheet\d+\.xml"), lambda ctx: _SheetTarget(ctx))
_WORKBOOK = (_names(r"xl/workbook\.xml"), lambda ctx: _NamesTarget(ctx.depth))
_XL_COMMENTS = (_names(r"xl/comments\d*\.xml"),
                lambda ctx: TextTarget(_tags(S, "t"), _tags(S, "comment"), max_depth=ctx.depth))
_XL_THREADED = (_names(r"xl/threadedComments/[^/]+\.xml"),
                lambda ctx: TextTarget(frozenset((f"{TC}text",)),
                                       frozenset((f"{TC}threadedComment",)),
                                       max_depth=ctx.depth))
STYLES = (_names(r"xl/styles\.xml"),
          lambda ctx: StylesTarget(frozenset(), _tags(S, "numFmt"), _tags(S, "cellXfs"),
                                   _tags(S, "xf"), ctx.formats, ctx.depth))
_SLIDES = (_names(r"ppt/(slides/slide|notesSlides/notesSlide|slideMasters/slideMaster"
                  r"|slideLayouts/slideLayout)\d+\.xml"),
           lambda ctx: TextTarget(_tags(A, "t"), _tags(A, "p", "br"), max_depth=ctx.depth))
# Comments, and modern comments (their text is DrawingML, in p188:txBody).
_PPT_COMMENTS = (_names(r"ppt/comments/[^/]+\.xml"),
                 lambda ctx: TextTarget(_tags(P, "text") | _tags(A, "t"),
                                        _tags(P, "cm") | _tags(A, "p", "br")
                                        | frozenset((f"{P188}cm", f"{P188}reply")),
                                        max_depth=ctx.depth))
# Text boxes, shapes, charts and SmartArt, in any of the three kinds.
_DRAWING = (_names(r"(word|xl|ppt)/(drawings|charts|diagrams)/[^/]+\.xml"), _drawing)

# kind -> the readers of its parts, by their usual names
KINDS: dict[str, tuple[Reader, ...]] = {
    "word": (_WORD, _DRAWING, _CUSTOM_XML),
    "excel": (STYLES, _SHARED, _SHEET, _WORKBOOK, _XL_COMMENTS, _XL_THREADED, _DRAWING),
    "powerpoint": (_SLIDES, _PPT_COMMENTS, _DRAWING),
}

# Text parts found by their declared content type, whatever their names: an
# application opens a package's parts through its relationships and checks
# their content types, so a body, a sheet or a slide may live under any
# name ("word/body.xml"), where the patterns above would not look.
_OOXML = "application/vnd.openxmlformats-officedocument."
TYPED: dict[str, dict[str, Reader]] = {
    "word": {f"{_OOXML}wordprocessingml.{t}+xml": _WORD
             for t in ("document.main", "template.main", "header", "footer", "comments",
                       "footnotes", "endnotes")}
    | {f"application/vnd.ms-word.{t}.main+xml": _WORD
       for t in ("document.macroEnabled", "template.macroEnabledTemplate")},
    "excel": {f"{_OOXML}spreadsheetml.worksheet+xml": _SHEET,
              f"{_OOXML}spreadsheetml.sharedStrings+xml": _SHARED,
              f"{_OOXML}spreadsheetml.comments+xml": _XL_COMMENTS,
              f"{_OOXML}spreadsheetml.styles+xml": STYLES,
              "application/vnd.ms-excel.threadedcomments+xml": _XL_THREADED},
    "powerpoint": {f"{_OOXML}presentationml.{t}+xml": _SLIDES
                   for t in ("slide", "notesSlide", "slideMaster", "slideLayout")}
    | {f"{_OOXML}presentationml.comments+xml": _PPT_COMMENTS,
       "application/vnd.ms-powerpoint.comments+xml": _PPT_COMMENTS},
}
for _typed in TYPED.values():  # drawings, charts and SmartArt, in every kind
    _typed |= {f"{_OOXML}{t}+xml": _DRAWING
               for t in ("drawing", "drawingml.chart", "drawingml.diagramData")}
    _typed["application/vnd.ms-office.chartex+xml"] = _DRAWING
