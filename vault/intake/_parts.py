"""Which parts of a Word, Excel or PowerPoint package hold text an
application shows, and what of each part is read (docs/POLICY.md §11.1).

Each reader is a :class:`Reader`: a part-name pattern and a factory of the
:class:`TextTarget` that collects the part's text. ``TYPED`` gives the
same readers by content type, for parts under other names.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Context as Decimals
from decimal import Decimal, InvalidOperation

from vault.intake._model import Refused
from vault.intake._numfmt import (
    MAX_CODE,
    MAX_CONDITIONAL,
    CellFormats,
    Format,
    Places,
    StylesTarget,
    add_places,
    literal_text,
    number_text,
    parse,
    render,
)
from vault.intake._sheets import NamesTarget, SheetTarget
from vault.intake._slides import DrawnText, Inherited
from vault.intake._word import MATH_TEXT, NumberingTarget, WordTarget
from vault.intake._xml import TextTarget

__all__ = ["CUSTOM_XML", "KINDS", "STYLES", "STYLES_TEXT", "TYPED", "Context", "Reader"]

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
P14 = "{http://schemas.microsoft.com/office/powerpoint/2010/main}"  # slide sections
VML = "{urn:schemas-microsoft-com:vml}"


def _tags(ns: str, *names: str) -> frozenset[str]:
    """Each element name in the transitional and the Strict namespace."""
    spaces = (ns, _STRICT[ns]) if ns in _STRICT else (ns,)
    return frozenset(f"{n}{name}" for n in spaces for name in names)


@dataclass
class Context:
    """What a part's reader may need besides the part: the XML depth bound,
    (Excel) the number formats of the cell styles, read first, and
    (PowerPoint) the number each slide and notes page shows, by part, and
    the first slide's (a layout's, master's or handout's), the bullets the
    package's list styles give each level, and the part."""

    depth: int
    formats: CellFormats = field(default_factory=CellFormats)
    slides: dict[str, int] = field(default_factory=dict)
    first_slide: int = 1
    bullets: Inherited = field(default_factory=dict)
    part: str = ""


Reader = tuple[re.Pattern[str], Callable[[Context], TextTarget]]


def _names(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)  # part names ignore ASCII case (OPC)


class _AllText(TextTarget):
    """Every element's text, a line each (an XML data part)."""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        self.inside = 1

    def end(self, tag: str) -> None:
        super().end(tag)
        self.inside = 1
        self._add("\n")


class _AttributeText(TextTarget):
    """The values of the attributes ``shown`` names of each element it
    names, a line each (a part of names an application shows: comment
    authors, their initials)."""

    def __init__(self, shown: dict[str, tuple[str, ...]], depth: int) -> None:
        super().__init__(frozenset(), max_depth=depth)
        self.shown = shown

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        for name in self.shown.get(tag, ()):
            if text := attrib.get(name):
                self._add(text + "\n")


# A DrawingML hyperlink's ScreenTip (Insert > Link > ScreenTip), which
# PowerPoint shows when the pointer rests on the link in a slide show, as
# Word and Excel show a hyperlink's tooltip: on a click or a hover link.
# Shown apart from the run it links, it is read aside (TextTarget._aside).
_SCREEN_TIP = _tags(A, "hlinkClick", "hlinkHover")


def _screen_tip(target: TextTarget, tag: str, attrib: dict[str, str]) -> None:
    if tag in _SCREEN_TIP and (tip := attrib.get("tooltip")):
        target._aside(tip)


class _DrawingText(DrawnText):
    """DrawingML text (a slide, layout, master, notes page), a line each
    paragraph, its bullet and fields as drawn (vault/intake/_slides.py),
    each hyperlink's ScreenTip, after its paragraph, and what an
    equation draws (vault/intake/_math.py); a line holding an
    mc:AlternateContent is read once per branch, as a Word part's is
    (TextTarget.alternate)."""

    branch_readings = draws_math = True

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        _screen_tip(self, tag, attrib)


class _DataText(_AllText):
    """Every element's text and every attribute's value, a line each (a
    custom XML data part: a content control bound to an attribute,
    ``/r[1]/@c``, shows its value)."""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        for value in attrib.values():
            self._add("\n" + value + "\n")


class _VmlTarget(TextTarget):
    """A legacy VML drawing (an Excel form control's label, a comment's
    box, a text box): the text of each ``v:textbox`` (HTML-like ``div``,
    ``font`` and ``br`` inside, in no namespace), a line each paragraph,
    and the ``string`` of a WordArt ``v:textpath``. An ``x:ClientData``
    holds the control's settings (anchor, cell links, ranges), no text
    it shows."""

    _LINES = frozenset(("div", "p", "br"))
    html_breaks = True

    def __init__(self, depth: int) -> None:
        super().__init__(frozenset((f"{VML}textbox",)), max_depth=depth)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag == f"{VML}textpath" and (text := attrib.get("string")):
            self._aside(text)

    def end(self, tag: str) -> None:
        if self.inside and tag.rsplit("}", 1)[-1] in self._LINES:
            self._line()
        super().end(tag)
        if tag == f"{VML}textbox":
            self._line()


@dataclass
class _Labels:
    """What a chart's first reading leaves to a second, when data labels
    (or its ``c:date1904``) came after its numbers: the digits the labels
    show (``places``), every label format that renders (``formats``), how
    many of them each number was shown with (``shown_with``, by the
    number's place in the part), and the chart's date systems with those
    the numbers read before ``c:date1904`` were not shown in
    (``missed``, for the first ``before`` numbers)."""

    places: Places
    formats: list[Format]
    shown_with: list[int]
    systems: tuple[int, ...]
    missed: tuple[int, ...]
    before: int


class _ChartTarget(DrawnText):
    """A chart's numbers (in c:numCache, c:numLit, a newer chart's
    cx:numDim) are read as a sheet's are (number_text): as their format
    shows them -- the cache's ``c:formatCode`` (a newer chart's
    ``formatCode``), a point's own, and as many more digits as any data
    label's ``c:numFmt`` (a newer chart's ``cx:numFmt``) anywhere in the
    part shows; General where none is given. Each is also rendered, as a
    cell is, with each of those formats that renders (literal text, a
    date, a time): ``"card 4111 1111 1111 "0000`` on a data label shows
    1111 as a card number. The literal text of every format code of the
    part is read. Dates are shown in the chart's date system (its
    ``c:date1904``), else the workbook's, else both. Labels may come after
    the numbers (a chart group's c:dLbls follow every series, a newer
    chart's cx:dataLabels its cx:chartData): the part is then read again
    for its numbers alone, each that reads otherwise with the digits they
    show, and rendered with the label formats it was not yet shown with
    (``again``). A line holding an mc:AlternateContent is read once per
    branch (TextTarget.alternate): Office draws one."""

    branch_readings = draws_math = True
    _NUMBERS = _tags(C, "numCache", "numLit") | frozenset((f"{CX}numDim",))
    _CODE = _tags(C, "formatCode")
    _LABEL_FORMAT = _tags(C, "numFmt") | frozenset((f"{CX}numFmt",))
    _LEVEL = frozenset((f"{CX}lvl",))
    _DATE1904 = _tags(C, "date1904")
    # An axis, and the numbers written in it that it draws: its fixed
    # bounds and units (the first tick is at its minimum, the others a
    # major unit apart), where it crosses the other axis, its display unit.
    _AXIS = _tags(C, "valAx", "catAx", "dateAx", "serAx") | frozenset((f"{CX}axis",))
    _AXIS_VALUES = _tags(C, "min", "max", "majorUnit", "minorUnit", "crossesAt", "custUnit")
    _LOG_BASE = _tags(C, "logBase")  # a logarithmic axis's base, in its c:scaling
    _DATE_AXIS = _tags(C, "dateAx")
    # A date axis's units (§21.2.2.101, §21.2.2.12): its major unit counts
    # days, months or years (CT_TimeUnit: days where val is left out).
    _TIME_UNITS = _tags(C, "majorTimeUnit", "baseTimeUnit")
    _AXIS_SCALING = frozenset((f"{CX}valScaling",))  # a newer chart's, in attributes
    _SCALING_VALUES = ("min", "max", "majorUnit", "minorUnit")
    # Display units (c:dispUnits): the tick labels show each number divided
    # by one, a built-in (c:builtInUnit, a newer chart's cx:units) or a
    # custom one (c:custUnit).
    _BUILT_IN_UNIT = _tags(C, "builtInUnit")
    _UNITS = frozenset((f"{CX}units",))
    _CUSTOM_UNIT = _tags(C, "custUnit")

    def __init__(self, depth: int, systems: tuple[int, ...],
                 again: _Labels | None = None) -> None:
        super().__init__(_tags(A, "t") | _tags(C, "v") | frozenset((f"{CX}v", f"{CX}pt"))
                         | MATH_TEXT,
                         _tags(A, "p", "br") | _tags(C, "pt") | frozenset((f"{CX}pt",))
                         if again is None else frozenset(), max_depth=depth)
        self.again = again  # what the labels show, reading the numbers again
        self.drawn = again is None  # bullets and fields: read in the first reading only
        self.systems = systems if again is None else again.systems
        self.fallback = systems  # the systems before the chart's c:date1904 says
        self.read_at: Places | None = None  # label_places when the first number was read
        self.read = 0  # numbers read
        self.before: int | None = None  # numbers read before the chart's c:date1904
        self.numbers = 0  # depth of the numbers element we are in, 0 if none
        self.number: list[str] | None = None
        self.code: list[str] | None = None  # the text of a c:formatCode
        self.cache_format: Format | None = None  # the numbers' format; None: General
        self.point_format: Format | None = None
        self.label_places: Places = {}  # the most digits of a fraction a data label shows
        self.labels: list[Format] = []  # the data labels' formats that render
        self.shown_with: list[int] = []  # of self.labels, how many each number was shown with
        self.axis = 0  # depth of the axis we are in, 0 if none
        self.axis_values: list[str] = []  # the numbers written in it
        self.axis_format: Format | None = None  # its number format; None: General
        self.axis_unit: Decimal | None = None  # its display unit, if any
        self.source_format: Format | None = None  # the first numbers' (a linked axis's)
        self.axis_scale: dict[str, str] = {}  # its min, max, majorUnit, ... as written
        self.ticks = 0  # tick labels worked out in the part

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if (code := attrib.get("formatCode")) is not None and self.again is None:
            self._literal(code)
        if tag in self._LABEL_FORMAT and (label := _format(attrib.get("formatCode"))):
            add_places(self.label_places, label.most_places)
            self._label(label)
        if tag in self._DATE1904 and self.depth == 2 and self.again is None:
            flag = attrib.get("val", "true").strip(" \t\r\n")  # CT_Boolean: true if left out
            said = (1904,) if flag in ("true", "1") else (1900,) if flag in (
                "false", "0") else (1900, 1904)
            # two (each branch of an mc:AlternateContent read): both systems they name
            self.systems = said if self.before is None else tuple(sorted({*self.systems, *said}))
            if self.before is None:
                self.before = self.read
        if self.again is None:
            self._axis_start(tag, attrib)
            _screen_tip(self, tag, attrib)
        if tag in self._NUMBERS and not self.numbers:
            self.numbers, self.cache_format = self.depth, None
        elif self.numbers and tag in self._CODE:
            self.code = []
        elif self.numbers and tag in self._LEVEL:
            self.cache_format = _format(attrib.get("formatCode"))
        elif self.numbers and self.inside == self.depth:
            self.number = []
        if self.numbers and "formatCode" in attrib and tag not in self._LEVEL:
            self.point_format = _format(attrib["formatCode"])  # a c:pt's own format

    def _axis_start(self, tag: str, attrib: dict[str, str]) -> None:
        """An axis's numbers and number format, kept until the axis ends
        (its bounds come before its format)."""
        if tag in self._AXIS and not self.axis:
            self.axis, self.axis_values, self.axis_format = self.depth, [], None
            self.axis_unit, self.axis_scale = None, {}
            if tag in self._DATE_AXIS:
                self.axis_scale["date"] = "1"
        elif not self.axis:
            return
        elif tag in self._BUILT_IN_UNIT or tag in self._UNITS:
            name = attrib.get("val" if tag in self._BUILT_IN_UNIT else "unit", "")
            self.axis_unit = _DISPLAY_UNITS.get(name.strip(), self.axis_unit)
        elif tag in self._AXIS_VALUES and (value := attrib.get("val")):
            self.axis_values.append(value)
            self.axis_scale[tag.rpartition("}")[2]] = value
            if tag in self._CUSTOM_UNIT:
                self.axis_unit = _unit(value)
        elif tag in self._LOG_BASE and (value := attrib.get("val")):
            self.axis_scale["logBase"] = value
        elif tag in self._TIME_UNITS:
            self.axis_scale[tag.rpartition("}")[2]] = attrib.get("val", "days").strip()
        elif tag in self._AXIS_SCALING:
            self.axis_values += [v for name in self._SCALING_VALUES if (v := attrib.get(name))]
            self.axis_scale.update((n, v) for n in self._SCALING_VALUES if (v := attrib.get(n)))
        elif tag in self._LABEL_FORMAT and self.depth == self.axis + 1:
            self.axis_format = _format(attrib.get("formatCode"))
            if attrib.get("sourceLinked", "").strip() in ("1", "true"):
                self.axis_format = self.source_format  # the data's format

    def _axis_end(self) -> None:
        """The axis's numbers read as its tick labels show them: with its
        format, as a chart's numbers are, and rendered with it and with
        every data label format that renders."""
        formats = (self.axis_format,)
        values = self.axis_values + self._ticks()
        if self.axis_unit is not None:  # each as written and as its tick label shows it
            values = values + [v for value in values if (v := _divided(value, self.axis_unit))]
        for value in dict.fromkeys(values):
            self._add("\n" + number_text(value, formats, self.label_places) + "\n")
            self._shown(value, tuple(f for f in (self.axis_format, *self.labels)
                                     if f is not None), self.systems)
        self.axis, self.axis_values = 0, []

    def _ticks(self) -> list[str]:
        """The numbers of the major tick labels after the first, exactly (the
        minor ticks have no labels): on a linear axis the minimum plus each
        multiple of the major unit up to the maximum; on a logarithmic one
        (:func:`_log_ticks`) the minimum times each power of the major unit,
        the base where none is written, and each power of the base in the
        range. With no maximum written (Excel takes one from the data, not
        known here) the first MAX_TICKS of each. With no minimum, or on a
        linear axis no major unit, written none is worked out."""
        low = _finite(self.axis_scale.get("min"))
        step = _finite(self.axis_scale.get("majorUnit"))
        high = _finite(self.axis_scale.get("max"))
        if low is None or (high is not None and high < low):
            return []
        base = _finite(self.axis_scale.get("logBase"))
        if base is not None and _LOG_BASES[0] <= base <= _LOG_BASES[1]:
            ticks = _log_ticks(low, high, step, base)
        elif step is None or step <= 0:
            return []
        elif "date" in self.axis_scale:
            ticks = self._date_ticks(low, high, step)
        else:
            ticks = _linear_ticks(low, high, step)
        if self.ticks + len(ticks) > MAX_TICKS_A_PART:
            raise _too_many_ticks()
        self.ticks += len(ticks)
        return [format(tick, "f") for tick in ticks]

    def _date_ticks(self, low: Decimal, high: Decimal | None, step: Decimal) -> list[Decimal]:
        """A date axis's tick labels: a major unit of days, months or years
        as its c:majorTimeUnit says -- where it says none, as its
        c:baseTimeUnit and in days, both read -- each stepped from the
        minimum in the calendar of each date system the chart may be in.
        Stepped in days, an axis by 2 months drew labels never read, and
        an honest one of three years by the month was 1,095 labels."""
        said = self.axis_scale.get("majorTimeUnit")
        units = (said,) if said else tuple(dict.fromkeys(
            ("days", self.axis_scale.get("baseTimeUnit", "days"))))
        ticks: list[Decimal] = []
        for unit in units:
            if unit in _MONTHS_IN:
                for system in self.systems:
                    ticks += _calendar_ticks(low, high, step * _MONTHS_IN[unit], system)
            else:
                ticks += _linear_ticks(low, high, step)
        return list(dict.fromkeys(ticks))

    def _literal(self, code: str) -> None:
        """A format code's literal text, read (a code longer than Excel
        allows, shown as General: as it is written)."""
        if text := (code if len(code) > MAX_CODE else literal_text(code)).strip():
            self._add("\n" + text + "\n")

    def _label(self, label: Format) -> None:
        if label.renders and label not in self.labels:
            if len(self.labels) >= MAX_CONDITIONAL:  # each is rendered with every number
                raise Refused("too-large", f"a chart with more than {MAX_CONDITIONAL} "
                              "data label number formats with text")
            self.labels.append(label)

    def data(self, text: str) -> None:
        if self.number is not None:
            self.number.append(text)
        elif self.code is not None:
            if len(self.code) < MAX_CODE:
                self.code.append(text)
        elif self.again is None:
            super().data(text)

    def end(self, tag: str) -> None:
        if self.number is not None and self.inside == self.depth:
            value, self.number = "".join(self.number), None
            self._number(value)
        elif self.code is not None and tag in self._CODE:
            code, self.code = "".join(self.code), None
            if self.again is None:
                self._literal(code)
            self.cache_format = _format(code)
        if self.numbers and tag not in self._NUMBERS and self.depth == self.numbers + 1:
            self.point_format = None
        if self.numbers == self.depth:
            if self.read and self.source_format is None:
                self.source_format = self.cache_format
            self.numbers = 0
        if self.axis == self.depth:
            self._axis_end()
        super().end(tag)

    def _number(self, value: str) -> None:
        own = tuple(dict.fromkeys((self.cache_format, self.point_format)))
        formats = tuple(f for f in own if f is not None)
        again, k = self.again, self.read
        self.read += 1
        if again is None:
            if self.read_at is None:
                self.read_at = dict(self.label_places)
            self.shown_with.append(len(self.labels))
            self._add(number_text(value, own if self.point_format else (self.cache_format,),
                                  self.label_places))
            self._shown(value, (*formats, *self.labels), self.systems)
            return
        numbers = own if self.point_format else (self.cache_format,)
        if add_places(dict(self.label_places), again.places) and (
                shown := number_text(value, numbers, again.places)) != number_text(
                value, numbers, self.label_places):
            self._add(shown + "\n")
        seen = again.shown_with[k] if k < len(again.shown_with) else 0
        self._shown(value, again.formats[seen:], again.systems)
        if k < again.before and again.missed:
            self._shown(value, (*formats, *again.formats[:seen]), again.missed)

    def _shown(self, value: str, formats: Sequence[Format], systems: tuple[int, ...]) -> None:
        for fmt in dict.fromkeys(formats):
            if (shown := render(fmt, value, True, systems)) is not None:
                self._add("\n" + shown + "\n")

    def next_pass(self) -> TextTarget | None:
        if self.again is not None or self.read_at is None:
            return None
        missed = tuple(s for s in self.systems if s not in self.fallback)
        before = self.read if self.before is None else self.before
        if add_places(dict(self.read_at), self.label_places) or (
                self.shown_with and self.shown_with[-1] < len(self.labels)) or (
                missed and before):
            return _ChartTarget(self.max_depth, self.fallback, _Labels(
                self.label_places, self.labels, self.shown_with, self.systems, missed, before))
        return None


# The built-in display units of an axis (ISO/IEC 29500-1 §21.2.3.6
# ST_BuiltInUnit; a newer chart's cx:units, the same names).
_DISPLAY_UNITS = {name: Decimal(10) ** power for name, power in (
    ("hundreds", 2), ("thousands", 3), ("tenThousands", 4), ("hundredThousands", 5),
    ("millions", 6), ("tenMillions", 7), ("hundredMillions", 8), ("billions", 9),
    ("trillions", 12))}
_EXACT = Decimals(prec=64)  # wide enough for any number Excel keeps, divided


def _unit(value: str) -> Decimal | None:
    """A custom display unit, None unless it is a positive number."""
    try:
        unit = Decimal(value.strip())
    except InvalidOperation:
        return None
    return unit if unit.is_finite() and unit > 0 and abs(unit.adjusted()) < 400 else None


# The tick labels worked out from an axis's bounds and major unit: at most
# MAX_TICKS on an axis (Excel draws so many only on a very wide chart),
# MAX_TICKS_A_PART in a part; more make the file uninspectable, too-large.
MAX_TICKS = 64
MAX_TICKS_A_PART = 1000
_LOG_BASES = (Decimal(2), Decimal(1000))  # a logarithmic axis's base (ST_LogBase)
_LARGEST = 310  # the exponent of a number past any a cell holds


def _finite(value: str | None) -> Decimal | None:
    """An axis number written in the part, None unless it is one."""
    if value is None:
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and abs(number.adjusted()) <= 400 else None


def _too_many_ticks() -> Refused:
    return Refused("too-large", f"a chart axis of more than {MAX_TICKS} tick labels, "
                   f"or more than {MAX_TICKS_A_PART} in a part")


def _linear_ticks(low: Decimal, high: Decimal | None, step: Decimal) -> list[Decimal]:
    """``low`` plus each multiple of ``step`` up to ``high``. The count is
    bounded by the numbers' exponents before it is divided out: an axis to
    1E+65 by 1 was a quotient of more digits than the exact division
    holds (an internal error)."""
    span = _EXACT.subtract(high, low) if high is not None else None
    if span is not None and span and span.adjusted() - step.adjusted() > len(str(MAX_TICKS)):
        raise _too_many_ticks()
    count = MAX_TICKS if span is None else int(_EXACT.divide_int(span, step))
    if count > MAX_TICKS:
        raise _too_many_ticks()
    return [_EXACT.fma(step, k, low) for k in range(1, count + 1)]


_MONTHS_IN = {"months": 1, "years": 12}
_EPOCH_1900, _EPOCH_1904 = date(1899, 12, 31), date(1904, 1, 1)
_LEAP_DAY_1900 = 60  # 29 February 1900, a day Excel's 1900 date system counts


def _calendar_day(serial: int, system: int) -> tuple[int, int, int] | None:
    """A serial number's day (year, month, day) in a date system; None
    outside the days Excel shows."""
    if system == 1900 and serial == _LEAP_DAY_1900:
        return 1900, 2, 29
    first = 1 if system == 1900 else 0
    if not first <= serial <= 2958465 - (1462 if system == 1904 else 0):
        return None
    day = (_EPOCH_1900 + timedelta(serial - (serial > _LEAP_DAY_1900))) if system == 1900 \
        else _EPOCH_1904 + timedelta(serial)
    return day.year, day.month, day.day


def _serial(day: date, system: int) -> int:
    if system == 1904:
        return (day - _EPOCH_1904).days
    n = (day - _EPOCH_1900).days
    return n + (n >= _LEAP_DAY_1900)


def _month_days(year: int, month: int, system: int) -> int:
    if system == 1900 and (year, month) == (1900, 2):
        return 29  # as Excel counts it
    return monthrange(year, month)[1]


def _calendar_ticks(low: Decimal, high: Decimal | None, months: Decimal,
                    system: int) -> list[Decimal]:
    """The minimum's day plus each multiple of ``months`` months, up to the
    maximum (none: the first MAX_TICKS), in ``system``: its day of the
    month kept, one past the month's end read both as its last day and
    as the days it runs over into the next (which Excel draws is not
    relied on). A fraction of a month is read both rounded down and up."""
    start = _calendar_day(int(low), system)
    if start is None:
        return []
    fraction = low - int(low)
    year, month, day = start
    steps = {int(months), -int(-months)} - {0}
    ticks: list[Decimal] = []
    for step in steps:
        count = 0
        while True:
            count += 1
            at = year * 12 + month - 1 + step * count
            if not 1 <= at // 12 <= 9999:
                break
            y, m = at // 12, at % 12 + 1
            last = _month_days(y, m, system)
            days = [_serial_of(y, m, min(day, last), system)]
            if day > last:  # or run over into the next month
                days.append(days[0] + day - last)
            shown = [Decimal(n) + fraction for n in days]
            if high is not None and shown[0] > high:
                break
            if count > MAX_TICKS:
                if high is None:
                    break
                raise _too_many_ticks()
            ticks += [tick for tick in shown if high is None or tick <= high]
    return ticks


def _serial_of(year: int, month: int, day: int, system: int) -> int:
    if system == 1900 and (year, month, day) == (1900, 2, 29):
        return _LEAP_DAY_1900
    return _serial(date(year, month, day), system)


def _log_ticks(low: Decimal, high: Decimal | None, step: Decimal | None,
               base: Decimal) -> list[Decimal]:
    """A logarithmic axis's tick labels after the first (c:logBase): the
    minimum times each power of the major unit -- on such an axis the
    factor between ticks (Format Axis), the base where none is written --
    up to the maximum, and, besides, each power of the base within the
    range, where Excel may place them when the minimum is none (which of
    the two it draws is not relied on). An axis of 1 to 1,000,000 by 10
    draws 7 labels; counted as a linear one it was 99,999 and refused."""
    if low <= 0:  # no logarithmic axis: Excel draws none so
        return []
    factor = step if step is not None and step > 1 else base
    ticks = _powers(low, factor, high)
    first = Decimal(1)
    while first > low:
        first = _EXACT.divide(first, base)
    while first < low:
        first = _EXACT.multiply(first, base)
    ticks += [first] if first != low and (high is None or first <= high) else []
    ticks += _powers(first, base, high)
    return list(dict.fromkeys(ticks))


def _powers(start: Decimal, factor: Decimal, high: Decimal | None) -> list[Decimal]:
    """``start`` times each power of ``factor`` from the first up to
    ``high`` (none: the first MAX_TICKS), no further than a cell's
    numbers go; more than MAX_TICKS are refused."""
    out: list[Decimal] = []
    tick = start
    while True:
        tick = _EXACT.multiply(tick, factor)
        if (high is not None and tick > high) or tick.adjusted() > _LARGEST:
            return out
        if len(out) == MAX_TICKS:
            if high is None:
                return out
            raise _too_many_ticks()
        out.append(tick)


def _divided(value: str, unit: Decimal) -> str | None:
    """An axis number as its display unit shows it, written out plainly."""
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number.adjusted()) > 400:
        return None
    return format(_EXACT.divide(number, unit), "f")


def _format(code: str | None) -> Format | None:
    """A chart's number format parsed; None (General) for none, General, or
    one longer than Excel allows."""
    if not code or len(code) > MAX_CODE or code.strip().lower() == "general":
        return None
    return parse(code)


def _drawing(ctx: Context) -> TextTarget:
    # DrawingML text, and a chart's values and names (categories, series,
    # titles from cells: c:v in c:strCache, c:tx, c:cat), drawn on its axes,
    # legend and data labels.
    # A newer chart's (chartex) categories are the text of its cx:pt.
    return _ChartTarget(ctx.depth, ctx.formats.systems)


_WORD = (_names(r"word/(document|header\d*|footer\d*|comments|footnotes|endnotes)\.xml"),
         lambda ctx: WordTarget(ctx.depth))
_NUMBERING = (_names(r"word/numbering\.xml"), lambda ctx: NumberingTarget(ctx.depth))
# The core properties (title, subject, ...): Word shows them in the
# content controls and fields (TITLE, SUBJECT) bound to them.
_CORE = (_names(r"docProps/core\.xml"), lambda ctx: _AllText(frozenset(), max_depth=ctx.depth))
# Word content controls bound to a custom XML part show its values: Word
# refreshes them from the part when it opens the document.
# Their values are element text or attributes (a control may be bound to
# an attribute, ``/r[1]/@c``). Parts of other names are found by the
# relationships that name them (CUSTOM_XML, vault/intake/_office.py).
CUSTOM_XML = (_names(r"customXml/item\d+\.xml"), lambda ctx: _DataText(frozenset(),
                                                                      max_depth=ctx.depth))
# The extended properties (Company, Manager, ...): Word shows them in the
# content controls bound to them (Insert > Quick Parts > Document Property).
_APP = (_names(r"docProps/app\.xml"), lambda ctx: _AllText(frozenset(), max_depth=ctx.depth))
_SHARED = (_names(r"xl/sharedStrings\.xml"),
           lambda ctx: TextTarget(_tags(S, "t"), _tags(S, "si"), max_depth=ctx.depth))
_SHEET = (_names(r"xl/(worksheets|macrosheets|chartsheets|dialogsheets)/(intl)?sheet\d+\.xml"),
          lambda ctx: SheetTarget(ctx.depth, ctx.formats))
_WORKBOOK = (_names(r"xl/workbook\.xml"), lambda ctx: NamesTarget(ctx.depth))
_XL_COMMENTS = (_names(r"xl/comments\d*\.xml"),
                lambda ctx: TextTarget(_tags(S, "t"), _tags(S, "comment"), max_depth=ctx.depth))
_XL_THREADED = (_names(r"xl/threadedComments/[^/]+\.xml"),
                lambda ctx: TextTarget(frozenset((f"{TC}text",)),
                                       frozenset((f"{TC}threadedComment",)),
                                       max_depth=ctx.depth))
STYLES = (_names(r"xl/styles\.xml"),
          lambda ctx: StylesTarget(frozenset((S, _STRICT[S])), ctx.formats, ctx.depth))
# Another part typed as styles, which Excel never shows cells with (it reads
# the one the workbook names): the literal text of its number formats only.
STYLES_TEXT = (STYLES[0], lambda ctx: StylesTarget(frozenset((S, _STRICT[S])), CellFormats(),
                                                   ctx.depth))
SLIDES = (_names(r"ppt/(slides/slide|notesSlides/notesSlide|slideMasters/slideMaster"
                  r"|slideLayouts/slideLayout|notesMasters/notesMaster"
                  r"|handoutMasters/handoutMaster)\d+\.xml"),
           lambda ctx: _DrawingText(_tags(A, "t") | MATH_TEXT, _tags(A, "p", "br"),
                                    max_depth=ctx.depth,
                                    slide=ctx.slides.get(ctx.part, ctx.first_slide),
                                    inherited=ctx.bullets))
# Comments, and modern comments (their text is DrawingML, in p188:txBody).
_PPT_COMMENTS = (_names(r"ppt/comments/[^/]+\.xml"),
                 lambda ctx: TextTarget(_tags(P, "text") | _tags(A, "t"),
                                        _tags(P, "cm") | _tags(A, "p", "br")
                                        | frozenset((f"{P188}cm", f"{P188}reply")),
                                        max_depth=ctx.depth))
# Comment authors, shown by name and initials on each comment:
# PowerPoint's (p:cmAuthor), its modern comments' (p188:author), and the
# persons of Excel's threaded comments (their displayName).
_PPT_AUTHORS = (_names(r"ppt/(commentAuthors|authors)\.xml"), lambda ctx: _AttributeText(
    dict.fromkeys(_tags(P, "cmAuthor") | frozenset((f"{P188}author",)), ("name", "initials")),
    ctx.depth))
# A presentation's section names and custom shows' names: PowerPoint shows
# the sections in the thumbnail pane and the slide sorter, a custom show
# in the Slide Show menu.
_PRESENTATION = (_names(r"ppt/presentation\.xml"), lambda ctx: _AttributeText(
    dict.fromkeys(_tags(P, "custShow") | frozenset((f"{P14}section",)), ("name",)), ctx.depth))
_XL_PERSONS = (_names(r"xl/persons/[^/]+\.xml"), lambda ctx: _AttributeText(
    {f"{TC}person": ("displayName",)}, ctx.depth))
# Text boxes, shapes, charts and SmartArt, in any of the three kinds.
_DRAWING = (_names(r"(word|xl|ppt)/(drawings|charts|diagrams)/[^/]+\.xml"), _drawing)
# Legacy VML drawings: Excel's form controls and comment boxes, text boxes.
_VML = (_names(r"(word|xl|ppt)/(.+\.vml|(.+/)?vmlDrawing[^/]*)"),
        lambda ctx: _VmlTarget(ctx.depth))

# kind -> the readers of its parts, by their usual names
KINDS: dict[str, tuple[Reader, ...]] = {
    "word": (_WORD, _NUMBERING, _CORE, _APP, _DRAWING, _VML, CUSTOM_XML),
    "excel": (STYLES, _SHARED, _SHEET, _WORKBOOK, _XL_COMMENTS, _XL_THREADED, _XL_PERSONS,
              _DRAWING, _VML),
    "powerpoint": (SLIDES, _PRESENTATION, _PPT_COMMENTS, _PPT_AUTHORS, _DRAWING, _VML),
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
       for t in ("document.macroEnabled", "template.macroEnabledTemplate")}
    | {f"{_OOXML}wordprocessingml.numbering+xml": _NUMBERING,
       "application/vnd.openxmlformats-package.core-properties+xml": _CORE,
       f"{_OOXML}extended-properties+xml": _APP},
    "excel": {f"{_OOXML}spreadsheetml.{t}+xml": _SHEET
              for t in ("worksheet", "chartsheet", "dialogsheet")}
    | {f"application/vnd.ms-excel.{t}+xml": _SHEET for t in ("macrosheet", "intlmacrosheet")}
    | {f"{_OOXML}spreadsheetml.sharedStrings+xml": _SHARED,
       f"{_OOXML}spreadsheetml.comments+xml": _XL_COMMENTS,
       f"{_OOXML}spreadsheetml.styles+xml": STYLES,
       "application/vnd.ms-excel.threadedcomments+xml": _XL_THREADED,
       "application/vnd.ms-excel.person+xml": _XL_PERSONS},
    "powerpoint": {f"{_OOXML}presentationml.{t}+xml": SLIDES
                   for t in ("slide", "notesSlide", "slideMaster", "slideLayout", "notesMaster",
                             "handoutMaster")}
    | {f"{_OOXML}presentationml.{t}.main+xml": _PRESENTATION
       for t in ("presentation", "slideshow", "template")}
    | {f"application/vnd.ms-powerpoint.{t}.macroEnabled.main+xml": _PRESENTATION
       for t in ("presentation", "slideshow", "template")}
    | {f"{_OOXML}presentationml.comments+xml": _PPT_COMMENTS,
       "application/vnd.ms-powerpoint.comments+xml": _PPT_COMMENTS,
       f"{_OOXML}presentationml.commentAuthors+xml": _PPT_AUTHORS,
       "application/vnd.ms-powerpoint.authors+xml": _PPT_AUTHORS},
}
# Drawings, charts, a chart's own shapes (c:userShapes: text boxes drawn
# on it) and SmartArt (its data, and the drawing Office keeps of it), in
# every kind.
for _typed in TYPED.values():
    _typed |= {f"{_OOXML}{t}+xml": _DRAWING
               for t in ("drawing", "drawingml.chart", "drawingml.chartshapes",
                         "drawingml.diagramData")}
    _typed |= {f"application/vnd.ms-office.{t}+xml": _DRAWING
               for t in ("chartex", "drawingml.diagramDrawing")}
    _typed[f"{_OOXML}vmlDrawing"] = _VML
