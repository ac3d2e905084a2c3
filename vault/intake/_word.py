"""What of a Word part is read (docs/POLICY.md §11.1).

The text of runs and field instructions (a QUOTE field shows its text;
``w:fldSimple`` carries its instruction as an attribute); tracked changes
as Word shows them by default -- inserted text shown, deleted and
moved-from text, a deleted line break and a deleted paragraph mark (which
joins two paragraphs) not -- and, after the line, as the text stood
before them and with every change marked (TextTarget's readings);
symbols (``w:sym``: a character given by its code, in a symbol font
offset by F000); a hyperlink's tooltip; a watermark (WordArt in a header:
the ``string`` of a VML ``v:textpath``); what Word shows from attributes
(``_SHOWN``): the author and initials of a comment and the author of a
tracked change (on the comment card and the revision balloon), a content
control's title (``w:alias``) and its drop-down or combo-box items
(``w:listItem``: shown text and value), and a legacy form field's
drop-down entries (``w:listEntry``: each, whichever ``w:result`` picks),
default text, status-bar and help text. What Word shows apart from the
line it is written in -- those attributes, field instructions, a phonetic
guide (``w:rt``) -- is read aside, after the paragraph (TextTarget._aside),
never inside the text around it; each instruction or guide as a line of
its own (``_ASIDE_ENDS``), in each reading the paragraph is read in, a
change's author after it. A drawing, a VML picture and a text box's
content are stories of their own (``_STORIES``), read after the line they
are anchored in, one drawn inline also in place in a reading of the line
(WordTarget._placed), its shown text alone, every inline one together; of
an mc:AlternateContent in a line the first branch Office may take is read
in it (a Choice requiring a namespace no Office understands is never
read, nor is an element of an mc:Ignorable one but in a reading of its
own), each other and none in readings of the line of their own, every
Fallback in one more (TextTarget.alternate).
A legacy drop-down's entry picked is
read where the field is. Run content Word draws as characters is read as
drawn (``_DRAWN``, a date block, a note's number): a page number as 1;
a note's number, drawn raised, as a group of its own, and after the line
glued to the text around it (TextTarget._mark).
The numbering part: each list
level's label (``w:lvlText``), drawn before every paragraph of the list,
read with its level numbers (``%1`` ...) as the level's start and as each
single digit. A part that imports another document into itself (altChunk:
HTML, RTF or a second .docx that Word merges when it opens the file) is
not inspected: its text is not in this part.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from vault.intake._model import Refused
from vault.intake._xml import EVERY, MAIN, MARKUP, ORIGINAL, TextTarget

__all__ = ["MATH_TEXT", "NumberingTarget", "WordTarget"]

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
W_STRICT = "{http://purl.oclc.org/ooxml/wordprocessingml/main}"
VML = "{urn:schemas-microsoft-com:vml}"
# An equation's text (Office Math, ISO/IEC 29500-1 §22.1.2.116, m:t), drawn
# where the equation stands: in a paragraph, a slide, a text box.
MATH_TEXT = frozenset(f"{ns}t" for ns in ("{http://schemas.openxmlformats.org/officeDocument/"
                                          "2006/math}", "{http://purl.oclc.org/ooxml/"
                                          "officeDocument/math}"))


def _tags(*names: str) -> frozenset[str]:
    return frozenset(f"{ns}{name}" for ns in (W, W_STRICT) for name in names)


def _attr(attrib: dict[str, str], name: str) -> str:
    """A Word attribute's value: in WordprocessingML's namespace (either
    form), else unqualified (VML's). One of that name in another namespace
    is not Word's: one declared ignorable that Word skips (ISO/IEC 29500-3
    §10.1.1) stood before the real one and was read for it."""
    for key in (W + name, W_STRICT + name, name):
        if (value := attrib.get(key)) is not None:
            return value
    return ""


class WordTarget(TextTarget):
    """A Word document, header, footer, comments, footnotes or endnotes part."""

    # Word takes one branch of an mc:AlternateContent (a shape as DrawingML
    # or VML, an equation as Office Math or a picture): each is read in a
    # reading of the line of its own.
    branch_readings = draws_math = True

    def __init__(self, depth: int) -> None:
        super().__init__(_tags("t", "delText", "instrText", "delInstrText") | MATH_TEXT,
                         _tags("p", "br", "cr"),
                         _tags("tab", "ptab"), depth,
                         asides=_tags("instrText", "delInstrText", "rt"),
                         inserted=_tags(*_INSERTED), deleted=_tags(*_DELETED),
                         stories=_STORIES)
        self.marks: dict[str, int] = {}  # notes and note references met, by kind
        self.drop_down: _DropDown | None = None  # the legacy drop-down we are in
        # per paragraph open: its depth, whether its mark is inserted, deleted
        self.paragraphs: list[list[int]] = []
        self.paragraph_props = 0  # depth of the open paragraph's w:pPr, 0 if none
        self.mark_props = 0  # depth of its mark's properties (w:pPr/w:rPr), 0 if none

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        special = _SPECIAL.get(tag)  # one look-up for most elements: none
        if special == "altChunk":
            raise Refused("unsupported", "a Word document that imports another document "
                          "(altChunk) is not inspected")
        super().start(tag, attrib)
        if special is None:
            return
        if special in ("inline", "anchor", "shape"):
            self._placed(special, attrib)
            return
        if special == "fldChar":
            if _attr(attrib, "fldCharType").strip() in ("separate", "end"):
                self._end_aside()  # the field's instruction ends
            return
        if special in _MARK_PARTS or (self.mark_props and tag in _MARK_CHANGES):
            self._paragraph_mark(special, tag)
            if special != "author":
                return
        if special == "sym":
            code = _attr(attrib, "char")
            if re.fullmatch(r"[0-9A-Fa-f]{1,6}", code):
                n = int(code, 16)
                n = n - 0xF000 if 0xF000 <= n <= 0xF0FF else n
                if 0 < n <= 0x10FFFF and not 0xD800 <= n <= 0xDFFF:
                    self._add(chr(n))
        elif special in _DRAWN:
            self._add(_DRAWN[special])
        elif special in _DATE_BLOCKS:
            self._add(_DATE_BLOCKS[special](date.today()))
        elif special in ("note", "noteRef", "noteReference"):
            self._note(special, tag.rsplit("}", 1)[-1], attrib)
        elif special in ("ddList", "result", "listEntry") or (
                tag in _DEFAULT and self.drop_down is not None):
            self._drop_down(special, tag, attrib)
        else:
            for name in _SHOWN.get(special, (special,)):  # attributes shown as text
                if text := _attr(attrib, name):
                    self._aside(text)

    def end(self, tag: str) -> None:
        if self.drop_down is not None and self.drop_down.depth == self.depth:
            # the entry picked, shown where the field is, among the line's text
            entries, picked = self.drop_down.entries, self.drop_down.picked()
            self._add(entries[picked] if picked < len(entries) else "")
            self.drop_down = None
        if self.mark_props == self.depth:
            self.mark_props = 0
        elif self.paragraph_props == self.depth:
            self.paragraph_props = 0
        super().end(tag)
        if tag in _ASIDE_ENDS:
            self._end_aside()

    def _placed(self, special: str, attrib: dict[str, str]) -> None:
        """Where a drawing or VML picture (a story) is drawn, said by its
        first element: inline (wp:inline, ISO/IEC 29500-1 §20.4.2.8,
        "treated like a character glyph"; a VML shape not positioned
        absolutely, §14.1.2.19) in the line, as a character, its text read
        there too (TextTarget._in_place); anchored (wp:anchor, §20.4.2.3;
        position:absolute) apart from it."""
        if not self.outer or self.outer[-1][0] != self.depth - 1:
            return  # not the drawing's or picture's own child
        if special == "shape":
            style = _attr(attrib, "style").replace(" ", "").lower()
            self.line.inline = "position:absolute" not in style
        else:
            self.line.inline = special == "inline"

    def _paragraph_mark(self, special: str, tag: str) -> None:
        """A paragraph (w:p), and its mark's properties (w:pPr/w:rPr) with
        the change tracked in them (w:ins, w:del, w:moveFrom, w:moveTo;
        §17.13.5): a deleted mark joins its paragraph to the next one as
        the text stands now, an inserted one split a paragraph that stood
        whole before (:meth:`_ends`)."""
        if special == "p":
            self.paragraphs.append([self.depth, 0, 0])
        elif special == "pPr":
            if self.paragraphs and self.paragraphs[-1][0] == self.depth - 1:
                self.paragraph_props = self.depth
        elif special == "rPr":
            if self.paragraph_props and self.paragraph_props == self.depth - 1:
                self.mark_props = self.depth
        elif self.mark_props == self.depth - 1:  # a change of the mark
            self.paragraphs[-1][1 if tag in _MARK_INSERTED else 2] = 1

    def _ends(self, tag: str) -> int:
        """A paragraph ends a line in the readings its mark is in (those
        of the content around it too); a line break in those of its run."""
        if tag not in _PARAGRAPH or not self.paragraphs:
            return self.readings
        _, inserted, deleted = self.paragraphs.pop()
        if deleted:
            readings = MARKUP if inserted else ORIGINAL | MARKUP
        else:
            readings = MAIN | MARKUP if inserted else EVERY
        return readings & self.readings

    def _note(self, special: str, name: str, attrib: dict[str, str]) -> None:
        """A footnote's or endnote's number, as Word numbers them by
        default: the note's place among the notes of its part (its mark in
        the note, ``w:footnoteRef``), the reference's among the references
        (``w:footnoteReference``, drawn in the text) -- a number format,
        start or restart of its own (``w:footnotePr``) is not applied."""
        if special == "note":
            if _attr(attrib, "type").strip() in ("", "normal"):  # no separator
                self.marks[name] = self.marks.get(name, 0) + 1
        elif special == "noteRef":
            self._mark(str(self.marks.get(name.removesuffix("Ref"), 0)))
        elif _attr(attrib, "customMarkFollows").strip() not in ("1", "true", "on"):
            self.marks[name] = self.marks.get(name, 0) + 1  # the mark is the text after it
            self._mark(str(self.marks[name]))

    def _drop_down(self, special: str, tag: str, attrib: dict[str, str]) -> None:
        """A legacy drop-down form field (w:ddList, §17.16.9): each entry
        read aside, and the one it shows -- its w:result, else its
        w:default, else the first -- where the field is, when it ends."""
        value = _attr(attrib, "val")
        if special == "ddList":
            self.drop_down = _DropDown(self.depth)
        elif self.drop_down is None:  # a w:listEntry or w:result outside one
            if special == "listEntry" and value:
                self._aside(value)
        elif special == "listEntry":
            self.drop_down.entries.append(value)
            if value:
                self._aside(value)
        elif tag in _RESULT:
            self.drop_down.result = _index(value)
        elif tag in _DEFAULT:
            self.drop_down.default = _index(value)


@dataclass
class _DropDown:
    depth: int
    entries: list[str] = field(default_factory=list)
    result: int | None = None
    default: int | None = None

    def picked(self) -> int:
        """The entry shown; past the entries or unreadable, the first (as
        where none is given)."""
        for index in (self.result, self.default):
            if index is not None and 0 <= index < len(self.entries):
                return index
        return 0


def _index(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 6 else None


# What a group of elements shows from its attributes (ISO/IEC 29500-1):
# every element of a tracked change (CT_TrackChange, §17.13.5) shows its
# author in the revision balloon, a comment (§17.13.4.2) its author and
# initials on its card; a drop-down or combo-box item (§17.5.2.21) the text
# listed and its value; a legacy form field (§17.16) each drop-down entry,
# its default text, status-bar and help text; a content control's title
# (w:alias, §17.5.2.1) on its tab. A content control's tag (w:tag) is not
# shown. Each is shown apart from the text around it, and read aside.
_SHOWN = {"comment": ("author", "initials"), "listItem": ("displayText", "value")}
_REVISIONS = ("ins", "del", "moveFrom", "moveTo", "rPrChange", "pPrChange", "sectPrChange",
              "tblPrChange", "tblPrExChange", "trPrChange", "tcPrChange", "numberingChange",
              "cellIns", "cellDel", "cellMerge", "moveFromRangeStart", "moveToRangeStart",
              "customXmlInsRangeStart", "customXmlDelRangeStart",
              "customXmlMoveFromRangeStart", "customXmlMoveToRangeStart")
_VALUES = ("alias", "default", "statusText", "helpText")
# What Word shows of a tracked change (ISO/IEC 29500-1 §17.13.5), read by
# TextTarget in each of its readings: as the text stands now (Word's
# default views, Simple Markup and No Markup, and what w:revisionView
# with w:insDel="false", §17.15.1.69, shows), as it stood before (the
# Original view), and in All Markup view. Inserted run content (w:ins;
# moved to, w:moveTo) is shown now, not before; deleted run content
# (w:del; moved from, w:moveFrom), and deleted text and field
# instructions wherever written (w:delText, w:delInstrText), before, not
# now; all of it in All Markup view. The same four in a paragraph mark's
# properties (w:pPr/w:rPr; moved, §17.13.5.21 and §17.13.5.26) split or
# join two paragraphs (WordTarget._paragraph_mark). A table row or cell
# inserted or deleted (w:trPr/w:ins, w:trPr/w:del, w:cellIns, w:cellDel)
# holds paragraphs, lines of their own in any view: read in every reading.
_INSERTED = ("ins", "moveTo")
_DELETED = ("del", "moveFrom", "delText", "delInstrText")
_MARK_CHANGES = _tags(*_INSERTED, *_DELETED[:2])
_MARK_INSERTED = _tags(*_INSERTED)
_PARAGRAPH = _tags("p")
_MARK_PARTS = ("p", "pPr", "rPr")
_RESULT, _DEFAULT = _tags("result"), _tags("default")
# Run content Word draws as characters (§17.3.3), read as drawn where it
# is: a non-breaking hyphen (noBreakHyphen, §17.3.3.18) as "-"; a page
# number (pgNum, §17.3.3.22) as the first page's, 1 (the number a later
# page shows is not worked out, as a PAGE field is read by its cached
# result). An absolute position tab (ptab) is a tab. An optional hyphen
# (softHyphen) is drawn only where Word breaks the line at it, and read as
# nothing, as U+00AD is; so are a page break last rendered
# (lastRenderedPageBreak), which marks where the last layout broke and
# draws nothing, a note separator's rule (separator,
# continuationSeparator), a line, no character, and the marks of a
# comment (annotationRef, commentReference, §17.13.4), drawn in the
# margin's balloon, whose author is read aside. A footnote's or endnote's
# number (footnoteRef, endnoteRef, footnoteReference, endnoteReference;
# §17.11) is read as WordTarget._note counts it; a field instruction
# (instrText, and one deleted, delInstrText) and a phonetic guide's text
# (w:rt of w:ruby, drawn above its base) aside. Every other element of
# run content (§17.3.3) is a drawing, an object or a field character,
# whose text, if any, is read where it is.
_DRAWN = {"noBreakHyphen": "-", "pgNum": "1"}
# A drawing or VML picture in a run (w:drawing, w:pict; §17.3.3.9,
# §17.3.3.21) is drawn where it is anchored, a floating one apart from the
# line, and a text box's content in either (w:txbxContent, §17.17.1.1) is
# a story of its own, its paragraphs none of the line's: read after the
# line, the line read whole (TextTarget's stories). Read inline, a text
# box anchored between two groups of a card number ended the line there.
_STORIES = _tags("drawing", "pict", "txbxContent")
# A field's instruction ends where its result begins (w:fldChar separate)
# or the field ends (end; w:fldSimple, its instruction an attribute), a
# phonetic guide with its w:rt: each a line of its own (TextTarget._end_aside).
_ASIDE_ENDS = _tags("fldSimple", "rt")
WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"
# The elements saying where a drawing (wp:inline, wp:anchor) or a VML
# picture (its shape, of any VML kind but a shape type) is drawn.
_PLACED = {f"{WP}inline": "inline", f"{WP}anchor": "anchor"} | {
    f"{VML}{kind}": "shape" for kind in ("shape", "rect", "roundrect", "oval", "line",
                                         "polyline", "curve", "arc", "group", "image")}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
# A date block (dayShort, dayLong, monthShort, monthLong, yearShort,
# yearLong; §17.3.3, a legacy construct an application still draws): the
# current date, by the pictures DD, DDDD, MM, MMMM, YY, YYYY -- read as on
# the day of the inspection (another day shows other digits: a known
# limit).
_DATE_BLOCKS: dict[str, Callable[[date], str]] = {
    "dayShort": lambda d: f"{d.day:02}", "dayLong": lambda d: _DAYS[d.weekday()],
    "monthShort": lambda d: f"{d.month:02}", "monthLong": lambda d: _MONTHS[d.month - 1],
    "yearShort": lambda d: f"{d.year % 100:02}", "yearLong": lambda d: f"{d.year:04}"}
# element -> what it shows: a symbol; an import (refused); what it draws;
# a date block; a note's number; a legacy drop-down; the attribute shown,
# or a group of attributes (_SHOWN)
_SPECIAL = dict.fromkeys(_tags("altChunk"), "altChunk") | dict.fromkeys(_tags("sym"), "sym") \
    | {f"{VML}textpath": "string"} | dict.fromkeys(_tags("fldSimple"), "instr") \
    | dict.fromkeys(_tags("hyperlink"), "tooltip") | dict.fromkeys(_tags(*_REVISIONS), "author") \
    | dict.fromkeys(_tags("comment"), "comment") | dict.fromkeys(_tags("listItem"), "listItem") \
    | dict.fromkeys(_tags(*_VALUES), "val") | {t: t.rsplit("}", 1)[-1] for t in _tags(
        *_DRAWN, *_DATE_BLOCKS, "ddList", "result", "listEntry")} \
    | dict.fromkeys(_tags("footnote", "endnote"), "note") \
    | dict.fromkeys(_tags("footnoteRef", "endnoteRef"), "noteRef") \
    | dict.fromkeys(_tags("footnoteReference", "endnoteReference"), "noteReference") \
    | {t: t.rsplit("}", 1)[-1] for t in _tags(*_MARK_PARTS)} | _PLACED \
    | dict.fromkeys(_tags("fldChar"), "fldChar")
_LEVEL_NUMBER = re.compile(r"%[1-9]")


class NumberingTarget(TextTarget):
    """A numbering part: each level's label, with its level numbers filled in."""

    def __init__(self, depth: int) -> None:
        super().__init__(frozenset(), max_depth=depth)
        self.starts: dict[str, str] = {}  # level (0-based) -> its start, this list
        self.level = "0"

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in _LIST:
            self.starts = {}
        elif tag in _LEVEL:
            self.level = _attr(attrib, "ilvl")
        elif tag in _START:
            self.starts[self.level] = _attr(attrib, "val").strip()[:9]
        elif tag in _LEVEL_TEXT and (label := _attr(attrib, "val")):
            # Read eleven times over (below), each level number up to nine
            # digits: a planted label of millions of them was gigabytes
            # built inside one parser callback, where no budget looks.
            if len(label) > MAX_LABEL:
                raise Refused("too-large", f"a list label longer than {MAX_LABEL} characters")
            if not _LEVEL_NUMBER.search(label):
                self._add(label + "\n")
                return
            first = _LEVEL_NUMBER.sub(
                lambda m: self.starts.get(str(int(m.group()[1]) - 1), "1") or "1", label)
            self._add("\n".join([first, *(_LEVEL_NUMBER.sub(d, label) for d in "0123456789")])
                      + "\n")


MAX_LABEL = 1024  # characters of one list label (Word's are a few)
_LIST, _LEVEL = _tags("abstractNum", "num"), _tags("lvl", "lvlOverride")
_START, _LEVEL_TEXT = _tags("start", "startOverride"), _tags("lvlText")
