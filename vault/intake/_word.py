"""What of a Word part is read (docs/POLICY.md §11.1).

The text of runs, deleted runs and field instructions (a QUOTE field shows
its text; ``w:fldSimple`` carries its instruction as an attribute);
symbols (``w:sym``: a character given by its code, in a symbol font
offset by F000); a hyperlink's tooltip; a watermark (WordArt in a header:
the ``string`` of a VML ``v:textpath``); what Word shows from attributes
(``_SHOWN``): the author and initials of a comment and the author of a
tracked change (on the comment card and the revision balloon), a content
control's title (``w:alias``) and its drop-down or combo-box items
(``w:listItem``: shown text and value), and a legacy form field's
drop-down entries (``w:listEntry``: each, whichever ``w:result`` picks),
default text, status-bar and help text. The numbering part: each list
level's label (``w:lvlText``), drawn before every paragraph of the list,
read with its level numbers (``%1`` ...) as the level's start and as each
single digit. A part that imports another document into itself (altChunk:
HTML, RTF or a second .docx that Word merges when it opens the file) is
not inspected: its text is not in this part.
"""

from __future__ import annotations

import re

from vault.intake._model import Refused
from vault.intake._xml import TextTarget

__all__ = ["NumberingTarget", "WordTarget"]

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
W_STRICT = "{http://purl.oclc.org/ooxml/wordprocessingml/main}"
VML = "{urn:schemas-microsoft-com:vml}"


def _tags(*names: str) -> frozenset[str]:
    return frozenset(f"{ns}{name}" for ns in (W, W_STRICT) for name in names)


def _attr(attrib: dict[str, str], name: str) -> str:
    """A Word attribute's value, in whichever namespace it is written."""
    return next((v for k, v in attrib.items() if k.rsplit("}", 1)[-1] == name), "")


class WordTarget(TextTarget):
    """A Word document, header, footer, comments, footnotes or endnotes part."""

    def __init__(self, depth: int) -> None:
        super().__init__(_tags("t", "delText", "instrText"), _tags("p", "br", "cr"),
                         _tags("tab"), depth)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        special = _SPECIAL.get(tag)  # one look-up for most elements: none
        if special == "altChunk":
            raise Refused("unsupported", "a Word document that imports another document "
                          "(altChunk) is not inspected")
        super().start(tag, attrib)
        if special is None:
            return
        if special == "sym":
            code = _attr(attrib, "char")
            if re.fullmatch(r"[0-9A-Fa-f]{1,6}", code):
                n = int(code, 16)
                n = n - 0xF000 if 0xF000 <= n <= 0xF0FF else n
                if 0 < n <= 0x10FFFF and not 0xD800 <= n <= 0xDFFF:
                    self._add(chr(n))
            return
        for name in _SHOWN.get(special, (special,)):  # attributes shown as text
            if text := _attr(attrib, name):
                self._add("\n" + text + "\n")


# What a group of elements shows from its attributes (ISO/IEC 29500-1):
# every element of a tracked change (CT_TrackChange, §17.13.5) shows its
# author in the revision balloon, a comment (§17.13.4.2) its author and
# initials on its card; a drop-down or combo-box item (§17.5.2.21) the text
# listed and its value; a legacy form field (§17.16) each drop-down entry,
# its default text, status-bar and help text; a content control's title
# (w:alias, §17.5.2.1) on its tab. A content control's tag (w:tag) is not
# shown.
_SHOWN = {"comment": ("author", "initials"), "listItem": ("displayText", "value")}
_REVISIONS = ("ins", "del", "moveFrom", "moveTo", "rPrChange", "pPrChange", "sectPrChange",
              "tblPrChange", "tblPrExChange", "trPrChange", "tcPrChange", "numberingChange",
              "cellIns", "cellDel", "cellMerge", "moveFromRangeStart", "moveToRangeStart",
              "customXmlInsRangeStart", "customXmlDelRangeStart",
              "customXmlMoveFromRangeStart", "customXmlMoveToRangeStart")
_VALUES = ("alias", "listEntry", "default", "statusText", "helpText")
# element -> what it shows: a symbol; an import (refused); the attribute
# shown, or a group of attributes (_SHOWN)
_SPECIAL = dict.fromkeys(_tags("altChunk"), "altChunk") | dict.fromkeys(_tags("sym"), "sym") \
    | {f"{VML}textpath": "string"} | dict.fromkeys(_tags("fldSimple"), "instr") \
    | dict.fromkeys(_tags("hyperlink"), "tooltip") | dict.fromkeys(_tags(*_REVISIONS), "author") \
    | dict.fromkeys(_tags("comment"), "comment") | dict.fromkeys(_tags("listItem"), "listItem") \
    | dict.fromkeys(_tags(*_VALUES), "val")
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
