"""What DrawingML text draws beside its runs (docs/POLICY.md §11.1): a
paragraph's bullet and a field's text as PowerPoint draws them, and the
slide numbers of a presentation.

A numbered bullet (``a:buAutoNum``, ECMA-376 Part 1 §21.1.2.4.1) draws its
number -- its ``startAt`` plus the paragraph's place among the paragraphs
before it numbered with the same scheme at the same level -- and a
character bullet (``a:buChar``) its character, before the paragraph's
text: read there, a space after it, as the gap PowerPoint leaves. A
paragraph's own bullet (``a:pPr``) is read, else its text body's list
style's for its level (``a:lstStyle``), else none and, aside, each one
a list style of the package gives its level (ListStylesTarget): which
one it inherits is not worked out. A paragraph is numbered once it
holds anything (an equation too), counted once it draws something, both
ways where it may draw nothing (an empty run, spaces, a line break).
A field (``a:fld``, §21.1.2.2.4) of a
slide number draws the number of the slide (the presentation's
``firstSlideNum`` plus the slide's place in ``p:sldIdLst``; on a notes
page its slide's; on a layout, master or handout the first slide's, as a
Word page number is read as the first page's), a date or time field the
day and time of the inspection as its type shows them (as a Word date
block is read) -- never the text stored in the field, which PowerPoint
redraws, and which is read after the paragraph, aside. Read as stored, a
stale "7" stood for the "1" a slide showed, and a card's first group
drawn as a bullet's number was not read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vault.intake._model import Refused
from vault.intake._word import _DAYS, _MONTHS  # the names a date block draws too
from vault.intake._xml import TextTarget

__all__ = ["DrawnText", "Inherited", "ListStylesTarget", "SlideListTarget"]

A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
A_STRICT = "{http://purl.oclc.org/ooxml/drawingml/main}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
P_STRICT = "{http://purl.oclc.org/ooxml/presentationml/main}"
R_ID = ("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id",
        "{http://purl.oclc.org/ooxml/officeDocument/relationships}id")


def _a(*names: str) -> frozenset[str]:
    return frozenset(f"{ns}{name}" for ns in (A, A_STRICT) for name in names)


_PARAGRAPH, _PROPS, _FIELD, _BREAK = _a("p"), _a("pPr"), _a("fld"), _a("br")
# A text body begins (a shape's, a table cell's: any *:txBody, or its
# a:bodyPr, which a table cell's may go without): its own list style and
# numbering. Carried over, a cell's list went on from the cell before.
_BODY = _a("bodyPr")
# A paragraph's children drawing nothing: every other one (a:r, a:br,
# a:fld, an equation a14:m, whatever an extension adds) is its content.
_NOT_CONTENT = _a("pPr", "endParaRPr")
_LEVELS = {f"{ns}lvl{n}pPr": n - 1 for ns in (A, A_STRICT) for n in range(1, 10)}
_NUMBERED, _CHARACTER, _NO_BULLET = _a("buAutoNum"), _a("buChar"), _a("buNone", "buBlip")
# The number a scheme draws, around its digits: every scheme ST_TextAutonumberScheme
# names that draws digits (ASCII, full-width, circled, Thai, Hindi: intake
# reads every script's digits as ASCII ones); letters, Roman and East Asian
# numerals draw none. A scheme no Office knows is read as plain digits.
_AROUND = {"arabicPlain": ("", ""), "arabicPeriod": ("", "."), "arabicParenR": ("", ")"),
           "arabicParenBoth": ("(", ")"), "arabicDbPlain": ("", ""),
           "arabicDbPeriod": ("", "."), "circleNumDbPlain": ("", ""),
           "circleNumWdBlackPlain": ("", ""), "circleNumWdWhitePlain": ("", ""),
           "hindiNumParenR": ("", ")"), "thaiNumParenR": ("", ")"),
           "thaiNumPeriod": ("", ".")}
_NO_DIGITS = ("alpha", "roman", "ea1", "arabic1", "arabic2", "hebrew", "hindiAlpha",
              "thaiAlpha")


MAX_SPREAD = 16  # numbers a paragraph's bullet may draw, by the paragraphs before
MAX_INHERITED = 16  # numbered (or digit) bullets the package's list styles give a level
_WINDOW = 64  # characters read either side of a number drawn in another way
_EMPTY, _UNSURE, _DRAWN = 0, 1, 2  # what a paragraph holds: nothing, maybe nothing, text


@dataclass(frozen=True)
class _Bullet:
    """A paragraph's bullet: a scheme's number from ``start``, or a
    character (``scheme`` empty); None in its place: no bullet."""

    scheme: str
    start: int = 0
    char: str = ""


Inherited = dict[int, tuple[_Bullet, ...]]  # by level, the bullets list styles give it


def _bullet(tag: str, attrib: dict[str, str]) -> _Bullet | None:
    if tag in _CHARACTER:
        return _Bullet("", char=attrib.get("char", ""))
    if tag in _NUMBERED:
        scheme = attrib.get("type", "").strip()
        if scheme.startswith(_NO_DIGITS) and scheme not in _AROUND:
            return _Bullet("", char="")  # draws no digit: a bullet, nothing read
        return _Bullet(scheme or "arabicPlain", _number(attrib.get("startAt", "1"), "startAt"))
    return None


def _number(value: str, what: str) -> int:
    """An xsd:int as a schema reads it; one that spells no number is malformed."""
    text = value.strip(" \t\r\n")
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10 \
            or not -2**31 <= int(text) < 2**31:
        raise Refused("malformed", f"a presentation whose {what} is not a number")
    return int(text)


def _clock(t: datetime, seconds: bool) -> str:
    return f"{t.hour % 12 or 12}:{t.minute:02}" + (f":{t.second:02}" if seconds else "") \
        + (" PM" if t.hour >= 12 else " AM")


def _n(value: int, pad: bool) -> str:
    return f"{value:02}" if pad else str(value)


# What a date or time field draws (§21.1.2.2.4, the type's form), now: a
# month, day or hour of one digit as PowerPoint in US English draws it
# (M/d/yyyy), and padded with a zero (MM/dd/yyyy), read both ways.
_DATES: dict[str, Callable[[datetime, bool], str]] = {
    "datetime1": lambda t, p: f"{_n(t.month, p)}/{_n(t.day, p)}/{t.year:04}",
    "datetime2": lambda t, p: f"{_DAYS[t.weekday()]}, {_MONTHS[t.month - 1]} {_n(t.day, p)}, "
                              f"{t.year}",
    "datetime3": lambda t, p: f"{_n(t.day, p)} {_MONTHS[t.month - 1]} {t.year}",
    "datetime4": lambda t, p: f"{_MONTHS[t.month - 1]} {_n(t.day, p)}, {t.year}",
    "datetime5": lambda t, p: f"{_n(t.day, p)}-{_MONTHS[t.month - 1][:3]}-{t.year % 100:02}",
    "datetime6": lambda t, p: f"{_MONTHS[t.month - 1]} {t.year % 100:02}",
    "datetime7": lambda t, p: f"{_MONTHS[t.month - 1][:3]}-{t.year % 100:02}",
    "datetime8": lambda t, p: f"{_n(t.month, p)}/{_n(t.day, p)}/{t.year:04} {_clock(t, False)}",
    "datetime9": lambda t, p: f"{_n(t.month, p)}/{_n(t.day, p)}/{t.year:04} {_clock(t, True)}",
    "datetime10": lambda t, p: f"{_n(t.hour, p)}:{t.minute:02}",
    "datetime11": lambda t, p: f"{_n(t.hour, p)}:{t.minute:02}:{t.second:02}",
    "datetime12": lambda t, p: _clock(t, False),
    "datetime13": lambda t, p: _clock(t, True),
}


class DrawnText(TextTarget):
    """DrawingML text with its bullets and fields read as drawn (above).
    ``slide``: the number a slide-number field draws; None where none is
    known (a drawing, a chart), its stored text read in place.
    ``inherited``: by level, the bullets a paragraph saying none of its own
    (nor its text body's list style) may take from a list style outside
    its text body (:class:`ListStylesTarget`), each read besides none."""

    def __init__(self, *args: object, slide: int | None = None,
                 inherited: Inherited | None = None,
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.slide = slide
        self.inherited = inherited or {}
        self.styled: dict[int, _Bullet | None] = {}  # the text body's list style, by level
        # level -> each bullet numbering its paragraphs, with the fewest and
        # most paragraphs before counted (a paragraph maybe empty: both)
        self.runs: dict[int, dict[_Bullet, tuple[int, int]]] = {}
        self.props = 0  # depth of the a:pPr or list style level we are in, 0 if none
        self.level = -1  # the list style level we are in, -1: a paragraph's a:pPr
        self.paragraph = 0  # depth of the a:p we are in, 0 if none
        self.at = 0  # its level
        self.own: _Bullet | bool | None = False  # its own bullet (False: none said)
        self.labelled = False  # whether its bullet was read
        self.holds = _EMPTY  # what it holds
        self.bullets: tuple[_Bullet | None, ...] = ()  # the bullets it may have, the first read
        self.field = 0  # depth of the a:fld redrawn we are in, 0 if none
        self.stored: list[str] = []  # its stored text
        self.drawn = True  # whether bullets and fields are read (not in a second reading)
        self.labelling = False  # whether what is added is a bullet's label
        self.tail = ""  # the paragraph's last _WINDOW characters read
        # numbers drawn in another way: the text before, the other way, the text after
        self.others: list[tuple[str, str, list[str]]] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if not self.drawn:
            return
        if tag in _BODY or tag.endswith("}txBody"):
            self.styled, self.runs = {}, {}
        elif tag in _PARAGRAPH:
            self.paragraph, self.at, self.own, self.labelled = self.depth, 0, False, False
            self.holds, self.tail = _EMPTY, ""
        elif tag in _PROPS and self.paragraph == self.depth - 1:
            self.props, self.level = self.depth, -1
            self.at = min(max(_level(attrib.get("lvl", "0")), 0), 8)
        elif tag in _LEVELS:
            self.props, self.level = self.depth, _LEVELS[tag]
        elif self.props == self.depth - 1 and (tag in _NUMBERED or tag in _CHARACTER
                                               or tag in _NO_BULLET):
            said = _bullet(tag, attrib)
            if self.level < 0:
                self.own = said
            else:
                self.styled[self.level] = said
        if self.paragraph and self.depth == self.paragraph + 1 and tag not in _NOT_CONTENT:
            # something in the paragraph: its bullet, before it; it is
            # counted once something drawn is known (_add), maybe if not
            self.holds = max(self.holds, _UNSURE)
            if not self.labelled:
                self.labelled = True
                self._bullet_label()
        if tag in _FIELD and not self.field:
            self._field(attrib.get("type", "").strip())

    def _add(self, text: str) -> None:
        super()._add(text)
        if not self.paragraph or not self.drawn:
            return
        if not self.labelling and text.strip():
            self.holds = _DRAWN
        for _, _, after in self.others:
            if len(after) < _WINDOW:
                after.append(text)
        self.tail = (self.tail + text)[-_WINDOW:]

    def _drawn(self, texts: list[str], label: bool = False) -> None:
        """The first of ``texts`` read in place; each other, drawn there in
        another way (a bullet's other number, a date's other form), read
        aside with the paragraph's text around it."""
        before = self.tail
        self.labelling = label
        self._add(texts[0])
        self.labelling = False
        self.others += [(before, text, []) for text in texts[1:] if text]

    def _flush(self) -> None:
        for before, text, after in self.others:
            self._aside((before + text + "".join(after)).strip())
        self.others = []

    def _bullets(self) -> tuple[_Bullet | None, ...]:
        """The bullets the paragraph may have, the one read in place first:
        its own, else its text body's list style's for its level, else
        none -- and each a list style outside the body may give its level."""
        if self.own is not False:
            assert not isinstance(self.own, bool)
            return (self.own,)
        if self.at in self.styled:
            return (self.styled[self.at],)
        return (None, *self.inherited.get(self.at, ()))

    def _bullet_label(self) -> None:
        """The paragraph's bullet, read before its text: each number it may
        draw, by the paragraphs before counted or not, the fewest in place."""
        self.bullets = self._bullets()
        run = self.runs.get(self.at, {})
        labels: list[str] = []
        for bullet in self.bullets:
            if bullet is None or not bullet.scheme:
                labels.append(bullet.char + " " if bullet is not None and bullet.char else "")
            else:
                low, high = run.get(bullet, (0, 0))
                before, after = _AROUND.get(bullet.scheme, ("", ""))
                labels += [f"{before}{bullet.start + n}{after} " for n in range(low, high + 1)]
        self._drawn(labels, label=True)

    def _number_next(self) -> None:
        """The paragraph ended: it numbers the next ones of its bullet at
        its level if it drew something -- maybe, if all it held may draw
        nothing (an empty run, spaces, a line break): counted and not."""
        if self.holds == _EMPTY:
            return  # PowerPoint neither draws its bullet nor counts it
        sure = self.holds == _DRAWN
        for level, run in self.runs.items():
            if level > self.at:  # the runs below end, or go on if it is not counted
                self.runs[level] = {b: (0, high) for b, (_, high) in run.items()} if not sure \
                    else {}
        run = self.runs.get(self.at, {})
        counted: dict[_Bullet, tuple[int, int]] = {}
        for bullet in self.bullets:
            if bullet is not None and bullet.scheme:
                low, high = run.get(bullet, (0, 0))
                counted[bullet] = (low + sure, high + 1)
                if high + 1 - low - sure >= MAX_SPREAD:
                    raise Refused("too-large", f"a numbered list of more than {MAX_SPREAD} "
                                  "paragraphs PowerPoint may or may not number")
        self.runs[self.at] = counted

    def _field(self, kind: str) -> None:
        if kind == "slidenum" and self.slide is not None:
            drawn = [str(self.slide)]
        elif kind.startswith("datetime"):
            form, now = _DATES.get(kind, _DATES["datetime1"]), datetime.now()
            drawn = list(dict.fromkeys((form(now, False), form(now, True))))
        else:
            return
        self.field, self.stored = self.depth, []
        self._drawn(drawn)

    def data(self, text: str) -> None:
        if self.field and self.inside:
            self.stored.append(text)
        else:
            super().data(text)

    def end(self, tag: str) -> None:
        if self.field == self.depth:
            self.field = 0
            if stored := "".join(self.stored).strip():
                self._aside(stored)
        if self.props == self.depth:
            self.props = 0
        if self.drawn and self.others and (tag in _BREAK or self.paragraph == self.depth):
            self._flush()  # the text after them ends with the line
        if self.paragraph == self.depth:
            self.paragraph = 0
            self._number_next()
        super().end(tag)


def _level(value: str) -> int:
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 3 else 0


class SlideListTarget(TextTarget):
    """A presentation's main part: the number of its first slide
    (``firstSlideNum``, §19.2.1.26; 1 where none is said) and its slides'
    relationship ids in the order they are shown (``p:sldIdLst``)."""

    _ROOT = frozenset((f"{P}presentation", f"{P_STRICT}presentation"))
    _SLIDE = frozenset((f"{P}sldId", f"{P_STRICT}sldId"))

    def __init__(self, depth: int) -> None:
        super().__init__(frozenset(), max_depth=depth)
        self.first = 1
        self.ids: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in self._ROOT and self.depth == 1 and "firstSlideNum" in attrib:
            self.first = _number(attrib["firstSlideNum"], "first slide number")
        elif tag in self._SLIDE and self.depth == 3:
            self.ids += [v.strip() for key in R_ID if (v := attrib.get(key)) is not None][:1]


class ListStylesTarget(TextTarget):
    """Every list style level of a part (``a:lvl1pPr`` ... ``a:lvl9pPr``,
    §21.1.2.4.13; ``a:defPPr``, every level's default) -- a shape's
    ``a:lstStyle``, a master's ``p:txStyles`` (its ``p:otherStyle``,
    §19.3.1.49, for text not in a placeholder), the presentation's
    ``p:defaultTextStyle`` (§19.2.1.8): the bullets that draw digits each
    gives a level, which a paragraph of a slide, layout or master saying
    no bullet of its own may inherit. Which one it takes (its placeholder's
    on its layout, then its master's, or the master's and the
    presentation's) is not worked out: each is read (DrawnText)."""

    _DEFAULT = _a("defPPr")

    def __init__(self, depth: int, found: Inherited) -> None:
        super().__init__(frozenset(), max_depth=depth)
        self.found = found
        self.props = 0  # depth of the list style level we are in, 0 if none
        self.levels: range = range(0)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in _LEVELS or tag in self._DEFAULT:
            self.props = self.depth
            self.levels = range(9) if tag in self._DEFAULT else range(_LEVELS[tag],
                                                                        _LEVELS[tag] + 1)
        elif self.props == self.depth - 1 and (tag in _NUMBERED or tag in _CHARACTER):
            bullet = _bullet(tag, attrib)
            if bullet is None or not (bullet.scheme or any(c.isnumeric() for c in bullet.char)):
                return  # draws no digit
            for level in self.levels:
                said = self.found[level] = tuple(dict.fromkeys((*self.found.get(level, ()),
                                                                bullet)))
                if len(said) > MAX_INHERITED:
                    raise Refused("too-large", f"a presentation whose list styles give one "
                                  f"level more than {MAX_INHERITED} numbered bullets")

    def end(self, tag: str) -> None:
        if self.props == self.depth:
            self.props = 0
        super().end(tag)
