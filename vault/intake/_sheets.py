"""What of an Excel sheet or workbook part is read (docs/POLICY.md §11.1).

A worksheet's cells (inline strings and values, not shared-string indexes),
each value also as its number formats show it (vault/intake/_numfmt.py);
the string literals of its formulas (Excel computes a formula whose result
the file does not store, and shows the formula in the formula bar: those
joined by ``&`` are read run together, as the result shows them); the
input and error messages and list items of its data validation (also
as Excel 2010 writes it, x14:dataValidation in the sheet's extLst); its
hyperlinks' shown text and tooltips; the page headers and footers printed
with it, as Excel prints them (:func:`header_text`). Macro sheets, chart
sheets and dialog sheets have the same parts.
A workbook part: its sheet names (on their tabs) and its defined names'
formulas (their string literals).
"""

from __future__ import annotations

import re
from datetime import datetime

from vault.intake._model import Refused
from vault.intake._numfmt import (
    MAX_CODE,
    MAX_CONDITIONAL,
    CellFormats,
    Format,
    Places,
    add_places,
    conditional_places,
    literal_text,
    number_text,
    parse,
    render,
    style_index,
)
from vault.intake._xml import TextTarget

__all__ = ["DateSystemTarget", "NamesTarget", "SheetTarget", "formula_text", "header_text"]

S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
S_STRICT = "{http://purl.oclc.org/ooxml/spreadsheetml/main}"
# Excel 2010's extensions, in a worksheet's extLst: a data validation whose
# list or formula refers to another sheet is written there (x14:dataValidation)
X14 = "{http://schemas.microsoft.com/office/spreadsheetml/2009/9/main}"
MAX_FORMULA = 16 * 1024  # characters kept of one formula (Excel allows 8,192)
_LITERAL = re.compile(r'"((?:[^"]|"")*)"')


def _tags(*names: str) -> frozenset[str]:
    return frozenset(f"{ns}{name}" for ns in (S, S_STRICT) for name in names)


def _x14(*names: str) -> frozenset[str]:
    return frozenset(f"{X14}{name}" for name in names)


def formula_text(formula: str) -> str:
    """The string literals of a formula, a line each; literals joined by
    ``&`` (nothing else between them) run together."""
    out: list[str] = []
    end = -1
    for m in _LITERAL.finditer(formula):
        text = m.group(1).replace('""', '"')
        if out and formula[end:m.start()].strip() == "&":
            out[-1] += text
        else:
            out.append(text)
        end = m.end()
    return "\n".join(out)


# A header's or footer's codes (ISO/IEC 29500-1 §18.3.1.39; [MS-OI29500]
# 2.1.619 gives their grammar), each ``&`` and what follows: a section (&L
# &C &R), a page number or count with what is added to it (&P+1, &N-2), a
# font ("&"Arial,Bold"), a colour (&K and RRGGBB, or a theme's TTSNN: 01+25),
# a font size (1 to 3 digits: how many Excel takes before text that is
# digits too is not relied on, so each width is read, ``_SIZE``), a code of
# one letter, and an ampersand (&&).
_HEADER_CODE = (r'&(?:([LCR])|([PN])(?:([+-])([0-9]*))?|"[^"]*"|K(?:[0-9]{2}[+-][0-9]{2}'
                r'|[0-9A-Fa-f]{6})|[0-9]{1,%d}|([BIUESXYOHDTZFAG&]))')
_SIZE = tuple(re.compile(_HEADER_CODE % width) for width in (2, 3))
_MOST_ADDED = 15  # digits added to a page number read as a sum; more are read as written


def _drawn(code: str, now: datetime) -> str:
    """What a header's one-letter code prints: the date and time of the
    inspection (another day prints other digits: a known limit), an
    ampersand; a toggle (bold, underline, ...), the picture, the file's
    path and name and the sheet's name (read elsewhere) nothing here."""
    if code == "D":
        return f"{now.month}/{now.day}/{now.year}"
    if code == "T":
        return f"{now.hour % 12 or 12}:{now.minute:02} {'AM' if now.hour < 12 else 'PM'}"
    return "&" if code == "&" else ""


def header_text(text: str, now: datetime | None = None) -> str:
    """A header's or footer's text as Excel prints it, a line per section
    and one of the sections side by side (left, centre, right, as they
    are printed on one line): its codes dropped, each printing what it
    draws -- a page number and the count of pages as the first page's, 1
    (a later page prints another number, not worked out: a known limit, as
    Word's page number is read), plus or minus what the code adds. Read as
    written, ``4111&K000000 1111...`` or ``111&P`` held a card number Excel
    prints. Text before any section is the centre's."""
    now = now or datetime.now()
    lines: list[str] = []
    for code in _SIZE:
        sections: dict[str, list[str]] = {"L": [], "C": [], "R": []}
        into, at = sections["C"], 0
        while (amp := text.find("&", at)) >= 0:
            into.append(text[at:amp])
            m = code.match(text, amp)
            if m is None:  # an ampersand before nothing it codes: printed as it is
                into.append("&")
                at = amp + 1
                continue
            at = m.end()
            if m.group(1):
                into = sections[m.group(1)]
            elif m.group(2):
                into.append(_page(m.group(3), m.group(4)))
            elif m.group(5):
                into.append(_drawn(m.group(5), now))
        into.append(text[at:])
        shown = ["".join(parts) for parts in sections.values() if "".join(parts).strip()]
        lines += shown + ([" ".join(shown)] if len(shown) > 1 else [])
    return "\n".join(dict.fromkeys(lines))


def _page(sign: str | None, added: str | None) -> str:
    """A page number or count as the first page prints it, 1, and what is
    added to it (&P+10: 11); more digits than any page count are read after
    it as written."""
    if not sign:
        return "1"
    if not added or len(added) > _MOST_ADDED:
        return "1" + sign + (added or "")
    return str(1 + int(added) * (-1 if sign == "-" else 1))


class _Formulas(TextTarget):
    """A target that also reads the string literals of ``formulas`` elements."""

    def __init__(self, collect: frozenset[str], breaks: frozenset[str], depth: int,
                 formulas: frozenset[str]) -> None:
        super().__init__(collect, breaks, max_depth=depth, skip=self._skip)
        self.formulas = formulas
        self.formula: list[str] | None = None
        self.formula_size = 0

    def _skip(self, tag: str, attrib: dict[str, str]) -> bool:
        return False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in self.formulas and self.formula is None:
            self.formula, self.formula_size = [], 0

    def data(self, text: str) -> None:
        super().data(text)
        if self.formula is not None and self.formula_size < MAX_FORMULA:
            self.formula.append(text)
            self.formula_size += len(text)

    def end(self, tag: str) -> None:
        if tag in self.formulas and self.formula is not None:
            if text := formula_text("".join(self.formula)[:MAX_FORMULA]):
                self._add("\n" + text + "\n")
            self.formula = None
        super().end(tag)


class SheetTarget(_Formulas):
    """A worksheet (or macro, chart or dialog sheet); ``formats`` are the
    workbook's number formats (vault/intake/_numfmt.py)."""

    def __init__(self, depth: int, formats: CellFormats) -> None:
        super().__init__(_tags("t", "v", "formula1", "formula2")
                         | _x14("formula1", "formula2"),
                         _tags("c", "row", "headerFooter", "dataValidation")
                         | _x14("dataValidation"), depth, _FORMULA)
        self.formats = formats
        self.cell_type: str | None = None
        self.codes: list[Format] = []  # the formats with text a value is shown with
        self.shown: tuple[Format | None, ...] = (None,)  # the formats a number is shown with
        self.value: list[str] | None = None  # a cell's value, to render with its formats
        self.value_depth = 0
        self.phonetic = 0  # depth of the phonetic run (rPh) we are in, 0 if none
        self.number: list[str] | None = None  # a number's value, to read as shown
        self.number_depth = 0
        self.x14_dxf = 0  # depth of the x14:dxf we are in, 0 if none
        self.late: list[Format] = []  # its formats with text, met after the cells
        self.late_places: Places = {}
        self.parents: list[str] = []  # the tags of the open elements
        self.cell = 0  # depth of the cell we are in (a c of a row), 0 if none
        self.header: list[str] | None = None  # a header's or footer's text, as written

    def _in_cell(self) -> bool:
        """Whether the element just opened is a child of a cell."""
        return bool(self.cell) and self.depth == self.cell + 1

    def _skip(self, tag: str, attrib: dict[str, str]) -> bool:
        # a shared-string index; a number, read as shown (number_text). A
        # value anywhere but in a cell is read as it is written.
        return tag in _VALUE and self._in_cell() and self.cell_type in ("s", None, "n")

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        # A cell is a c of a row, never one of an extension (extLst) or
        # elsewhere: such a c was taken for the next value's cell, its
        # t="s" or style in its stead.
        if tag in _CELL and self.parents and self.parents[-1] in _ROW:
            self.cell_type = attrib.get("t")
            style = style_index(attrib.get("s"))
            self.codes = self.formats.codes(style)
            self.shown = self.formats.numbers(style)
            self.cell = self.depth + 1
        self.parents.append(tag)
        super().start(tag, attrib)
        if tag in _HEADERS and self.header is None:
            self.header = []
        if tag in _VALUE and self._in_cell() and self.cell_type in (None, "n") \
                and not self.inside and self.number is None:
            self.number, self.number_depth = [], self.depth
        if self.codes and self.value is None and (
                (tag in _INLINE and self._in_cell()) or (
                    tag in _CELL_TEXT and (self.inside == self.depth or self.number is not None))):
            # an inline string is one value, however many runs hold its text
            self.value, self.value_depth = [], self.depth
        elif tag in _PHONETIC and self.value is not None and not self.phonetic:
            self.phonetic = self.depth
        elif tag in _X14_DXF and not self.x14_dxf:
            self.x14_dxf = self.depth
        elif tag in _NUMFMT and self.x14_dxf:
            self._late(attrib.get("formatCode", ""))
        elif tag in _SHOWN_ATTRS:
            shown = [attrib.get(a, "") for a in _SHOWN_ATTRS[tag]]
            if text := "\n".join(s for s in shown if s):
                self._add("\n" + text + "\n")

    def data(self, text: str) -> None:
        super().data(text)
        if self.header is not None:
            self.header.append(text)
        if self.value is not None and (self.inside or self.number is not None) \
                and not self.phonetic:
            self.value.append(text)
        if self.number is not None:
            self.number.append(text)

    def end(self, tag: str) -> None:
        if self.value is not None and self.value_depth == self.depth:
            value, numeric = "".join(self.value), self.cell_type in (None, "n")
            self.value = None
            for fmt in self.codes:
                if (shown := render(fmt, value, numeric, self.formats.systems)) is not None:
                    self._add("\n" + shown + "\n")
        if self.number is not None and self.number_depth == self.depth:
            number = "".join(self.number)
            self._add(number_text(number, self.shown,
                                  conditional_places(number, self.formats.dxf_places)))
            self.number = None
        if self.header is not None and tag in _HEADERS:
            self._add("\n" + header_text("".join(self.header)) + "\n")
            self.header = None
        if self.phonetic == self.depth:
            self.phonetic = 0
        if self.x14_dxf == self.depth:
            self.x14_dxf = 0
        if self.cell == self.depth:
            self.cell = 0
        self.parents.pop()
        super().end(tag)

    def _late(self, code: str) -> None:
        """A conditional format's number format written in the sheet (an
        x14:dxf of the extLst, for a rule referring to another sheet): read
        as the styles' are, its literal text, and again with every cell."""
        if len(code) > MAX_CODE:
            raise Refused("malformed", f"a number format longer than the {MAX_CODE} "
                          "characters Excel allows")
        if text := literal_text(code).strip():
            self._add("\n" + text + "\n")
        fmt = parse(code)
        add_places(self.late_places, fmt.most_places)
        if fmt.renders and fmt not in self.late:
            if len(self.late) >= MAX_CONDITIONAL:  # each is rendered with every cell
                raise Refused("too-large", f"a sheet with more than {MAX_CONDITIONAL} "
                              "conditional number formats with text")
            self.late.append(fmt)

    def next_pass(self) -> TextTarget | None:
        # The extLst comes after the cells: they are read again, with its formats.
        if self.late or add_places(dict(self.formats.dxf_places), self.late_places):
            return _LateCells(self.max_depth, self.late, self.late_places, self.formats.systems)
        return None


class _LateCells(TextTarget):
    """A sheet read again for its cells only, each shown with ``codes``
    (rendered) and its number with ``places`` digits of its fraction."""

    def __init__(self, depth: int, codes: list[Format], places: Places,
                 systems: tuple[int, ...]) -> None:
        super().__init__(frozenset(), max_depth=depth)
        self.codes, self.places, self.systems = codes, places, systems
        self.cell_type: str | None = None
        self.value: list[str] | None = None
        self.value_depth = 0
        self.text = 0  # depth of the v or t (not of a phonetic run) we are in, 0 if none
        self.phonetic = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in _CELL:
            self.cell_type = attrib.get("t")
        elif tag in (_INLINE | _CELL_TEXT) and self.value is None and self.cell_type != "s":
            self.value, self.value_depth = [], self.depth
        if tag in _PHONETIC and not self.phonetic:
            self.phonetic = self.depth
        if tag in _CELL_TEXT and self.value is not None and not (self.text or self.phonetic):
            self.text = self.depth

    def data(self, text: str) -> None:
        if self.value is not None and self.text:
            self.value.append(text)

    def end(self, tag: str) -> None:
        if self.value is not None and self.value_depth == self.depth:
            value, numeric = "".join(self.value), self.cell_type in (None, "n")
            self.value = None
            shown = [render(fmt, value, numeric, self.systems) for fmt in self.codes]
            if numeric and self.places:
                shown.append(number_text(value, (), conditional_places(value, self.places)))
            if text := "\n".join(s for s in shown if s is not None):
                self._add("\n" + text + "\n")
        if self.text == self.depth:
            self.text = 0
        if self.phonetic == self.depth:
            self.phonetic = 0
        super().end(tag)


_CELL, _VALUE, _CELL_TEXT, _FORMULA = _tags("c"), _tags("v"), _tags("v", "t"), _tags("f")
# a cell's inline string, and the phonetic runs in it Excel shows only as a guide above it
_INLINE, _PHONETIC = _tags("is"), _tags("rPh")
# the headers and footers printed with the sheet (ISO/IEC 29500-1 §18.3.1.46)
_HEADERS = _tags("oddHeader", "oddFooter", "evenHeader", "evenFooter", "firstHeader",
                 "firstFooter")
_X14_DXF, _NUMFMT, _ROW = _x14("dxf"), _tags("numFmt"), _tags("row")
# elements whose attributes an application shows: a data validation's input
# and error messages, a hyperlink's shown text and tooltip
_SHOWN_ATTRS = {tag: ("promptTitle", "prompt", "errorTitle", "error")
                for tag in _tags("dataValidation") | _x14("dataValidation")} | {
                tag: ("display", "tooltip") for tag in _tags("hyperlink")}


class NamesTarget(_Formulas):
    """A workbook part: sheet names, and the string literals of defined names."""

    def __init__(self, depth: int) -> None:
        super().__init__(frozenset(), frozenset(), depth, _tags("definedName"))

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in _SHEET_TAGS:
            self._add(attrib.get("name", "") + "\n")


_SHEET_TAGS = _tags("sheet")


class DateSystemTarget(TextTarget):
    """A workbook part read for its date system alone, before its sheets:
    the ``date1904`` of its ``workbookPr`` (a child of the root, an
    xsd:boolean), under which every date Excel shows is 1,462 days later
    than in the 1900 system. Both systems where the part says neither
    clearly (a value no schema reads as a boolean, two that differ). One
    in a branch of Markup Compatibility (vault/intake/_xml.py) is refused,
    ``ambiguous``: whether Excel takes that branch (a Choice it does not
    understand, with no Fallback, it drops) is its own choice, and Excel
    writes none there."""

    def __init__(self, depth: int) -> None:
        super().__init__(frozenset(), max_depth=depth)
        self.found: set[int] = set()

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if self.depth == 2 and tag in _WORKBOOK_PR:
            if self.branches:
                raise Refused("ambiguous", "the workbook's date system in a branch of its "
                              "alternate content")
            flag = attrib.get("date1904", "false").strip(" \t\r\n")
            self.found |= {1904} if flag in ("true", "1") else {1900} if flag in (
                "false", "0") else {1900, 1904}

    @property
    def systems(self) -> tuple[int, ...]:
        return tuple(sorted(self.found)) or (1900,)


_WORKBOOK_PR = _tags("workbookPr")
