"""What DrawingML text draws beside its runs (docs/POLICY.md §11.1): a
paragraph's bullet and a field's text as PowerPoint draws them, and the
slide numbers of a presentation.

A numbered bullet (``a:buAutoNum``, ECMA-376 Part 1 §21.1.2.4.1) draws its
number -- its ``startAt`` plus the paragraph's place among the paragraphs
before it numbered with the same scheme at the same level -- and a
character bullet (``a:buChar``) its character, before the paragraph's
text: read there, a space after it, as the gap PowerPoint leaves. A
paragraph's own bullet (``a:pPr``) is read, else its text body's list
style's for its level (``a:lstStyle``); one inherited from a layout's or
master's styles is not worked out. A field (``a:fld``, §21.1.2.2.4) of a
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
from vault.intake._xml import TextTarget

__all__ = ["DrawnText", "SlideListTarget"]

A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
A_STRICT = "{http://purl.oclc.org/ooxml/drawingml/main}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
P_STRICT = "{http://purl.oclc.org/ooxml/presentationml/main}"
R_ID = ("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id",
        "{http://purl.oclc.org/ooxml/officeDocument/relationships}id")


def _a(*names: str) -> frozenset[str]:
    return frozenset(f"{ns}{name}" for ns in (A, A_STRICT) for name in names)


_PARAGRAPH, _PROPS, _BODY, _FIELD = _a("p"), _a("pPr"), _a("bodyPr"), _a("fld")
_CONTENT = _a("r", "fld", "br")  # what makes a paragraph not empty: it then has its bullet
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


@dataclass(frozen=True)
class _Bullet:
    """A paragraph's bullet: a scheme's number from ``start``, or a
    character (``scheme`` empty); None in its place: no bullet."""

    scheme: str
    start: int = 0
    char: str = ""


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


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _clock(t: datetime, seconds: bool) -> str:
    return f"{t.hour % 12 or 12}:{t.minute:02}" + (f":{t.second:02}" if seconds else "") \
        + (" PM" if t.hour >= 12 else " AM")


# What a date or time field draws (§21.1.2.2.4, the type's form), now.
_DATES: dict[str, Callable[[datetime], str]] = {
    "datetime1": lambda t: f"{t.month:02}/{t.day:02}/{t.year:04}",
    "datetime2": lambda t: f"{_DAYS[t.weekday()]}, {_MONTHS[t.month - 1]} {t.day:02}, {t.year}",
    "datetime3": lambda t: f"{t.day:02} {_MONTHS[t.month - 1]} {t.year}",
    "datetime4": lambda t: f"{_MONTHS[t.month - 1]} {t.day:02}, {t.year}",
    "datetime5": lambda t: f"{t.day:02}-{_MONTHS[t.month - 1][:3]}-{t.year % 100:02}",
    "datetime6": lambda t: f"{_MONTHS[t.month - 1]} {t.year % 100:02}",
    "datetime7": lambda t: f"{_MONTHS[t.month - 1][:3]}-{t.year % 100:02}",
    "datetime8": lambda t: f"{t.month:02}/{t.day:02}/{t.year:04} {_clock(t, False)}",
    "datetime9": lambda t: f"{t.month:02}/{t.day:02}/{t.year:04} {_clock(t, True)}",
    "datetime10": lambda t: f"{t.hour:02}:{t.minute:02}",
    "datetime11": lambda t: f"{t.hour:02}:{t.minute:02}:{t.second:02}",
    "datetime12": lambda t: _clock(t, False),
    "datetime13": lambda t: _clock(t, True),
}


class DrawnText(TextTarget):
    """DrawingML text with its bullets and fields read as drawn (above).
    ``slide``: the number a slide-number field draws; None where none is
    known (a drawing, a chart), its stored text read in place."""

    def __init__(self, *args: object, slide: int | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.slide = slide
        self.styled: dict[int, _Bullet | None] = {}  # the text body's list style, by level
        self.runs: dict[int, tuple[_Bullet, int]] = {}  # level -> numbering, next place
        self.props = 0  # depth of the a:pPr or list style level we are in, 0 if none
        self.level = -1  # the list style level we are in, -1: a paragraph's a:pPr
        self.paragraph = 0  # depth of the a:p we are in, 0 if none
        self.at = 0  # its level
        self.own: _Bullet | bool | None = False  # its own bullet (False: none said)
        self.labelled = False  # whether its bullet was read
        self.field = 0  # depth of the a:fld redrawn we are in, 0 if none
        self.stored: list[str] = []  # its stored text
        self.drawn = True  # whether bullets and fields are read (not in a second reading)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if not self.drawn:
            return
        if tag in _BODY:  # a text body begins: its own list style and numbering
            self.styled, self.runs = {}, {}
        elif tag in _PARAGRAPH:
            self.paragraph, self.at, self.own, self.labelled = self.depth, 0, False, False
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
        if self.paragraph and tag in _CONTENT and not self.labelled and not self.field:
            self.labelled = True
            self._bullet_label()
        if tag in _FIELD and not self.field:
            self._field(attrib.get("type", "").strip())

    def _bullet_label(self) -> None:
        """The paragraph's bullet, read before its text; its number counted."""
        bullet = self.styled.get(self.at) if self.own is False else self.own
        assert not isinstance(bullet, bool)
        self.runs = {level: run for level, run in self.runs.items() if level <= self.at}
        if bullet is None or not bullet.scheme:
            self.runs.pop(self.at, None)
            if bullet is not None and bullet.char:
                self._add(bullet.char + " ")
            return
        run = self.runs.get(self.at)
        place = run[1] if run is not None and run[0] == bullet else 0
        self.runs[self.at] = (bullet, place + 1)
        before, after = _AROUND.get(bullet.scheme, ("", ""))
        self._add(f"{before}{bullet.start + place}{after} ")

    def _field(self, kind: str) -> None:
        if kind == "slidenum" and self.slide is not None:
            drawn = str(self.slide)
        elif kind.startswith("datetime"):
            drawn = _DATES.get(kind, _DATES["datetime1"])(datetime.now())
        else:
            return
        self.field, self.stored = self.depth, []
        self._add(drawn)

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
        if self.paragraph == self.depth:
            self.paragraph = 0
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
