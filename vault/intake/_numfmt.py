"""Excel number formats: the text a format adds to the cells it formats
(docs/POLICY.md §11.1).

A custom format's literal text -- quoted strings, backslash-escaped
characters, a currency's ``[$text-409]`` -- is shown in every cell formatted
with it: ``"4111 1111 1111 "0000`` shows the number 1111 as a card number,
``"Board minutes "@`` prefixes any text. So the literal text of every
format in the styles part is read as text of that part, and a cell whose
style has such a format is also read as Excel shows it: the value's digits
put in the format's digit placeholders (``0``, ``#``, ``?``), text put at
``@``. A format whose sections have conditions (``[>5000]``) shows the
value with each section; the formats conditional formatting applies
(``dxf``) are kept apart from the cell styles' and shown with every cell.
Each code is parsed once; only cells whose formats have literal text or
a date section are rendered. The rendering is the shape Excel gives, not every detail of it
(no rounding, thousands separators or scaling by a trailing ``,``; a
``%`` shows the number times 100). A date, time or duration section shows
the number as Excel shows it, in the workbook's date system
(vault/intake/_datefmt.py): ``"card 4111 1111 1111 "[h]`` shows
46.2916666666667 as 1,111 elapsed hours beside its text.

A cell's number is read as its format shows it (:func:`number_text`):
its whole part, and of its fraction only as many digits as the format
displays -- Excel stores a computed value in 15 digits, and the ratio
28/81 (0.345679012345679) or the time 08:13:26 (0.342662037037037) would
otherwise read as card numbers no cell shows.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

from vault.intake import _datefmt as dates
from vault.intake._model import Refused
from vault.intake._patterns import normalise
from vault.intake._xml import TextTarget

__all__ = ["BUILTIN", "CellFormats", "Format", "StylesTarget", "literal_text", "number_text",
           "parse", "render", "style_index", "unsigned"]

Token = tuple[str, str]  # (kind, text): lit (a character shown as itself, unquoted: a "/"
# is a fraction's bar), quoted (text in quotes, an escaped character, the space of _: shown as
# text, never a bar or a denominator), fill (the character of *: repeated to fill the cell),
# digit, point, text, general, date (a run of one
# date letter: yyyy, mm), elapsed ([h]: its letters), ampm (AM/PM, A/P), other, sep, percent
# (an unquoted, unescaped %: the number shown times 100; shown as literal text), system (the
# system's long date or time, [$-F800], [$-F400]: "date", "time"), calendar (one intake does
# not show dates in: B2, Hijri; a locale's, [$-60401]: its name), exponent (E+, E-)
Places = dict[int, int]  # the percent signs of a section -> the most fraction digits shown
MAX_CONDITIONAL = 32  # distinct conditional (dxf) number formats with literal text
MAX_CODE = 255  # characters of a number format: Excel's own limit
MAX_STYLES = 65536  # cell styles (xf of cellXfs) of a styles part; Excel's limit is about 64,000
_DATE = frozenset("yYmMdDhHsSeEbBgG")  # date and time codes (e/b/g: eras); E+ is taken first
# The built-in formats a style names by id alone (ISO/IEC 29500-1 §18.8.30)
# whose display differs from General; the other ids are shown here as
# General, the widest of them where it counts (at most 11 characters).
BUILTIN = {1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00", 9: "0%", 10: "0.00%",
           11: "0.00E+00", 12: "# ?/?", 13: "# ??/??", 14: "mm-dd-yy",
           15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM",
           19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 22: "m/d/yy h:mm",
           37: "#,##0 ;(#,##0)", 38: "#,##0 ;[Red](#,##0)", 39: "#,##0.00;(#,##0.00)",
           40: "#,##0.00;[Red](#,##0.00)", 45: "mm:ss", 46: "[h]:mm:ss", 47: "mmss.0",
           48: "##0.0E+0", 49: "@"}
# An xsd:unsignedInt as a schema reader takes it: white space collapsed,
# an optional sign (- only before zero), leading zeros; ASCII digits only.
_UNSIGNED = re.compile(r"[ \t\r\n]*(?:\+?([0-9]+)|-(0+))[ \t\r\n]*")
_MOST_UNSIGNED = 0xFFFFFFFF


def unsigned(text: str, what: str) -> int:
    """A style index or number format id, the number its text spells:
    ``164``, ``0164``, ``+164`` and `` 164 `` are one id (compared as text,
    a cell's format was not found and it was read as General). Text that
    spells no such number is refused: which format Excel gives the cell is
    not known."""
    if text.isdigit() and text.isascii() and len(text) < 10:  # how they are written
        return int(text)
    m = _UNSIGNED.fullmatch(text)
    digits = (m.group(1) or "0").lstrip("0") if m else ""
    if m is None or len(digits) > 10 or int(digits or "0") > _MOST_UNSIGNED:
        raise Refused("malformed", f"a {what} that is no unsigned number")
    return int(digits or "0")


# An elapsed time: [h], [mm], [ss], one letter repeated. Every other bracket
# Excel defines is no date: a colour ([Magenta], [Color13]), a condition
# ([>=100]), a locale or currency ([$-409], [$€-x-euro2]), a numeral system
# ([DBNum1]). [Magenta] taken for [m] made its section a date, and none of
# a number's fraction was read under [Magenta]0.000000000000000.
_ELAPSED = re.compile(r"h+|m+|s+", re.IGNORECASE)


# A locale's [$-F800] or [$-x-sysdate] has Excel show the system's long date
# in its stead, whatever the rest of the code; [$-F400] or [$-x-systime] the
# system's time. Intake shows them in these forms, the code's own as well.
_SYSTEM = {"f800": "date", "x-sysdate": "date", "f400": "time", "x-systime": "time"}
SYSTEM_CODES = {"date": "dddd, mmmm d, yyyy", "time": "h:mm:ss AM/PM"}
# The calendars of a locale id ([$-NNCCLLLL]: its byte CC) whose dates are
# Gregorian: none named (0), localised (1), US English (2), Middle East
# French (9), Arabic (10), transliterated English (11) and French (12).
# Another -- Japanese era, Taiwan, Korean, Hijri, Thai, Hebrew, Umm al-Qura
# -- shows other digits than a Gregorian date: not shown here, not guessed.
_GREGORIAN = frozenset((0, 1, 2, 9, 10, 11, 12))
_LOCALE = re.compile(r"[0-9a-fA-F]{1,8}")


def _bracket(inner: str) -> list[Token]:
    if inner.startswith("$"):  # [$€-407]: the currency text is shown
        text, _, locale = inner[1:].partition("-")
        out: list[Token] = [("lit", text)]
        if (system := _SYSTEM.get(locale.lower())) is not None:
            out.append(("system", system))
        elif _LOCALE.fullmatch(locale) and (int(locale, 16) >> 16) & 0xFF not in _GREGORIAN:
            out.append(("calendar", f"locale {locale}"))
        return out
    if _ELAPSED.fullmatch(inner):  # [h]:mm elapsed time
        return [("elapsed", inner)]
    return [("other", inner)]  # a colour, a condition, a numeral system


def tokens(code: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == '"':
            j = code.find('"', i + 1)
            j = n if j < 0 else j
            out.append(("quoted", code[i + 1:j]))
            i = j + 1
            continue
        if c in "\\*_":  # escaped; repeated to fill (shown once at least); a space as wide
            out.append(("fill" if c == "*" else "quoted", " " if c == "_" else code[i + 1:i + 2]))
            i += 2
            continue
        if c == "[":
            j = code.find("]", i + 1)
            j = n if j < 0 else j
            out += _bracket(code[i + 1:j])
            i = j + 1
            continue
        if c in "bB" and code[i + 1:i + 2] in ("1", "2"):
            # B1: the Gregorian calendar (as without); B2: the Hijri one
            if code[i + 1] == "2":
                out.append(("calendar", "Hijri (B2)"))
            i += 2
            continue
        if code[i:i + 7].lower() == "general":
            out.append(("general", ""))
            i += 7
            continue
        if c in "eE" and code[i + 1:i + 2] in ("+", "-"):
            out.append(("exponent", code[i + 1]))
            i += 2
            continue
        if (ampm := _ampm(code, i)) is not None:
            out.append(("ampm", ampm))
            i += len(ampm)
            continue
        if c in _DATE:  # a run of one letter is one code: yyyy, mmm, hh
            j = i + 1
            while j < n and code[j].lower() == c.lower():
                j += 1
            out.append(("date", code[i:j]))
            i = j
            continue
        kind = {"0": "digit", "#": "digit", "?": "digit", ".": "point", "@": "text",
                ";": "sep", ",": "other", "%": "percent"}.get(c, "lit")
        out.append((kind, c))
        i += 1
    return out


def _ampm(code: str, i: int) -> str | None:
    """The 12-hour clock's marker at ``i`` (``AM/PM``, ``A/P``, any case), or None."""
    for size in (5, 3):
        if code[i:i + size].upper() == ("AM/PM" if size == 5 else "A/P"):
            return code[i:i + size]
    return None


def _fill(placeholder: str) -> str:
    return {"0": "0", "?": " "}.get(placeholder, "")


def _each(fills: tuple[str, ...], digits: str) -> list[str]:
    """What each placeholder of a whole number shows (``fills``: what each
    shows unfilled): its digits right-aligned, one a placeholder, the
    first taking any extra -- ``0"x"0"-"0`` shows 341 as ``3x4-1``."""
    if not fills:
        return []
    spare = len(digits) - len(fills)
    if spare >= 0:
        return [digits[:spare + 1], *digits[spare + 1:]]
    return [*fills[:-spare], *digits]


def _left(fills: tuple[str, ...], digits: str) -> list[str]:
    """What each placeholder after a point shows: ``digits`` left-aligned."""
    return [*digits[:len(fills)], *fills[len(digits):]]


def _number(section: _Section, digits: str, fraction: str) -> str:
    """The number's digits in the placeholders, right-aligned (the first
    takes any extra digits), its fraction's left-aligned (no rounding)."""
    shown = iter(_each(section.fills, digits))
    fractions = iter(_left(section.fraction_fills, fraction))
    out = []
    for kind, text in section.plan:
        out.append(text if kind == "lit" else next(shown) if kind == "whole"
                   else next(fractions) if kind == "fraction" else "." if kind == "point"
                   else digits + ("." + fraction if fraction else ""))
    return "".join(out)


# Kinds of token shown as their text wherever they are: a bare character,
# quoted or escaped text, a fill's character (at least once)
_TEXT = frozenset(("lit", "quoted", "fill"))


def _as_text(toks: list[Token] | tuple[Token, ...]) -> list[Token]:
    return [("lit", t) if k in _TEXT else (k, t) for k, t in toks]


@dataclass(frozen=True, slots=True)
class _FractionPlan:
    """A fraction section (``# ??/100``, ``# ?/?``, ``??/??``): the tokens
    before its numerator (literal text, the integer part's placeholders:
    none, and the whole number is the numerator), the numerator's
    placeholders, its denominator -- a fixed number, or its count of
    placeholders (``??``: any below 100) -- and the literal text after."""

    before: tuple[Token, ...]
    numerator: tuple[str, ...]
    fixed: int | None
    digits: int
    after: tuple[Token, ...]

    @classmethod
    def of(cls, toks: list[Token]) -> _FractionPlan | None:
        """The fraction ``toks`` show, or None: one pass each way from the
        first bare ``/`` after a placeholder, no pattern to backtrack. Only
        a bare ``/`` is a bar and only bare digits a fixed denominator: a
        quoted or escaped one is text Excel shows as it is (ISO/IEC 29500-1
        §18.8.31), ``0000"/"0`` shows 11110 as ``1111/0``, no fraction."""
        if any(k in ("point", "text", "general", "date", "elapsed", "ampm", "exponent")
               for k, _ in toks):
            return None
        slash = next((i for i, (k, t) in enumerate(toks)
                      if k == "lit" and t == "/" and i and toks[i - 1][0] == "digit"), None)
        if slash is None:
            return None
        start = slash - 1
        while start > 0 and toks[start - 1][0] == "digit":
            start -= 1
        end = slash + 1
        while end < len(toks) and (toks[end][0] == "digit" or (
                toks[end][0] == "lit" and toks[end][1] in _ASCII)):
            end += 1
        below = "".join(t for _, t in toks[slash + 1:end])
        if below[:1] in tuple("123456789") and all(c in _ASCII for c in below):
            fixed, digits = int(below), len(below)
        elif below and all(c in "#?0" for c in below):
            fixed, digits = None, len(below)
        else:
            return None
        return cls(tuple(_as_text(toks[:start])), tuple(t for _, t in toks[start:slash]),
                   fixed, digits, tuple((k, t) for k, t in _as_text(toks[end:]) if k == "lit"))


_ASCII = frozenset("0123456789")


def _convergent(x: Fraction, most: int) -> Fraction:
    """The last convergent of ``x``'s continued fraction whose denominator
    is at most ``most``."""
    p0, q0, p1, q1 = 0, 1, 1, 0
    n, d = x.numerator, x.denominator
    while d:
        a = n // d
        if q0 + a * q1 > most:
            break
        p0, q0, p1, q1 = p1, q1, p0 + a * p1, q0 + a * q1
        n, d = d, n - a * d
    return Fraction(p1, q1)


def _placed(fills: tuple[str, ...], digits: str) -> str:
    """``digits`` in placeholders, right-aligned, the first taking any extra."""
    spare = len(digits) - len(fills)
    return digits if spare >= 0 else "".join(_fill(f) for f in fills[:-spare]) + digits


def _fractions(plan: _FractionPlan, whole: str, fraction: str) -> list[str]:
    """A number as a fraction section shows it: with a fixed denominator
    its numerator rounded (``0 ??/100``: 3714496353984.31 as
    ``3714496353984 31/100``); with one of n placeholders the closest
    fraction whose denominator has at most n digits, and the last
    convergent of its continued fraction where that differs (which of the
    two Excel shows is not relied on). Without an integer part the whole
    number is the numerator; with one, its digits are placed one a
    placeholder as a plain number's (:func:`_each`): ``0"x"0"-"0 ?/?``
    shows 341.5 as ``3x4-1 1/2``. A fraction of 0 beside an integer part
    shows as blanks as wide as its numerator, bar and denominator
    (``"4111 1111 1111 1"0 ?/?`` shows 111 as ``4111 1111 1111 1111``
    and three spaces); it is read so and, besides, as ``0/1``."""
    value = Fraction(int(whole + fraction), 10 ** len(fraction))
    integer = tuple(_fill(t) for k, t in plan.before if k == "digit")
    base = value.numerator // value.denominator if integer else 0
    rest = value - base
    if plan.fixed is not None:
        readings = [(math.floor(rest * plan.fixed + Fraction(1, 2)), plan.fixed)]
    else:
        most = 10 ** plan.digits - 1
        readings = list(dict.fromkeys((f.numerator, f.denominator) for f in (
            rest.limit_denominator(most), _convergent(rest, most))))
    out = []
    for above, below in readings:
        whole_part = base + 1 if integer and above == below else base
        above = 0 if integer and above == below else above
        shown_whole = iter(_each(integer, str(whole_part)))
        text = "".join(t if k == "lit" else next(shown_whole) if k == "digit" else ""
                       for k, t in plan.before)
        denominator = str(below) if plan.fixed is not None else str(below).ljust(plan.digits)
        shown = _placed(plan.numerator, str(above)) + "/" + denominator
        after = "".join(t for _, t in plan.after)
        if integer and above == 0:  # Excel blanks a zero fraction beside an integer part
            out.append(text + " " * len(shown) + after)
        out.append(text + shown + after)
    return out


@dataclass(frozen=True, slots=True)
class _Scientific:
    """A scientific section (``0.00E+00``, ``##0.0E+0``): what it shows,
    in order (``plan``: literal text; ``whole`` and ``fraction``, the
    mantissa's placeholders before and after its point; ``point``;
    ``exponent``, the E and its sign; ``power``, the exponent's
    placeholders), and what each placeholder shows unfilled."""

    plan: tuple[Token, ...]
    whole: tuple[str, ...]
    fraction: tuple[str, ...]
    power: tuple[str, ...]

    @classmethod
    def of(cls, toks: list[Token]) -> _Scientific | None:
        e = next((i for i, (k, _) in enumerate(toks) if k == "exponent"), None)
        if e is None:
            return None
        point = next((i for i, (k, _) in enumerate(toks[:e]) if k == "point"), e)
        plan = [("whole" if i < point else "fraction" if i < e else "power", t)
                if k == "digit" else (k, t) for i, (k, t) in enumerate(toks)
                if k in ("lit", "digit", "exponent") or i == point < e]
        fills = {kind: tuple(_fill(t) for k, t in plan if k == kind)
                 for kind in ("whole", "fraction", "power")}
        return cls(tuple(plan), fills["whole"], fills["fraction"], fills["power"])

    def readings(self, whole: str, fraction: str) -> list[tuple[str, str, int]]:
        """(the mantissa's whole digits, its fraction's, the exponent) as
        the section may show a number: its significant digits rounded to
        as many as the mantissa has placeholders, never past the 15 Excel
        keeps -- ``000000000000000E+0`` shows 0.378282246310005 as
        ``378282246310005E-15`` -- the whole part as many digits as its
        placeholders, or, led by ``#`` or ``?``, as few as make the
        exponent a multiple of them (``##0.0E+0``, engineering notation):
        which of the two Excel shows is not relied on."""
        digits = (whole + fraction).lstrip("0")
        if not digits:
            return [("0", "", 0)]
        point = len(whole) if whole != "0" else len(digits) - len(fraction)
        keep = max(1, min(len(self.whole) + len(self.fraction), _SHOWN))
        if len(digits) > keep:
            rounded = str(int(digits[:keep]) + (digits[keep] >= "5"))
            point += len(rounded) - keep
            digits = rounded[:keep]
        places = len(self.whole)
        splits = {places} | ({(point - 1) % places + 1} if places and self.whole[0] != "0"
                             else set())
        return [((digits + "0" * k)[:k], digits[k:].rstrip("0"), point - k)
                for k in sorted(splits, reverse=True)]

    def shown(self, whole: str, fraction: str, digits_only: bool = False) -> list[str]:
        """The number as the section shows it, a line for each reading;
        ``digits_only``: the mantissa's digits alone, as a rule reads them."""
        out = []
        for mantissa, after, power in self.readings(whole, fraction):
            shown = iter(_each(self.whole, mantissa))
            fractions = iter(_left(self.fraction, after))
            exponent = iter(_each(self.power, str(abs(power))))
            out.append("".join(
                next(shown) if kind == "whole" else next(fractions) if kind == "fraction"
                else "" if digits_only else text if kind == "lit" else "." if kind == "point"
                else next(exponent) if kind == "power"
                else "E" + ("-" if power < 0 else "+" if text == "+" else "")
                for kind, text in self.plan))
        return out


def _reads_as_digit(character: str) -> bool:
    """Whether a rule reads ``character`` as a digit (any script's, as
    normalised for matching: ``١``, ``¹``, a full-width ``１``)."""
    return any(c in _ASCII for c in normalise(character))


@dataclass(frozen=True, slots=True)
class _Section:
    """One section of a format, worked out once: what it shows, in order
    (``plan``: literal text, a whole or fraction digit placeholder, the
    point, a General number), and what each placeholder shows unfilled."""

    tokens: tuple[Token, ...]
    plan: tuple[Token, ...]  # (kind, text): lit, whole, fraction, point, general
    fills: tuple[str, ...]  # of the whole-number placeholders
    fraction_fills: tuple[str, ...]
    date: bool
    # what a date, time or duration section shows (_datefmt.py): by its own
    # code, and the system's long date or time where it names one
    dates: tuple[dates.Plan, ...]
    calendar: str | None  # a calendar whose dates intake does not show (B2), if named
    text: bool  # has @
    places: int | None  # digits of the stored fraction shown; None: as General

    percent: int  # unquoted, unescaped % signs: the number is shown times 100 for each
    fraction: _FractionPlan | None  # a fraction section's plan
    scientific: _Scientific | None  # a scientific section's plan
    # a fill character a rule reads as a digit (*1): Excel repeats it as
    # often as the column is wide, which intake does not know
    digit_fill: str | None

    @classmethod
    def of(cls, toks: list[Token]) -> _Section:
        percent = sum(k == "percent" for k, _ in toks)
        toks = [("lit", t) if k == "percent" else (k, t) for k, t in toks]
        fraction_plan = _FractionPlan.of(toks)  # before quoted text is taken for bare
        digit_fill = next((t for k, t in toks if k == "fill" and _reads_as_digit(t)), None)
        toks = _as_text(toks)
        scientific = _Scientific.of(toks)
        point = next((i for i, (k, _) in enumerate(toks) if k == "point"), len(toks))
        plan = [("whole" if i < point else "fraction", t) if k == "digit" else (k, t)
                for i, (k, t) in enumerate(toks) if k in ("lit", "digit", "point", "general")]
        fraction_fills = tuple(_fill(t) for k, t in plan if k == "fraction")
        date = any(k in ("date", "elapsed", "ampm") for k, _ in toks)
        # a system date or time is shown besides what the code shows, even
        # a number: which of the two Excel shows is not relied on
        plans = (*((dates.Plan.of(toks),) if date else ()),
                 *(dates.Plan.of(tokens(SYSTEM_CODES[t])) for k, t in toks if k == "system"))
        # a scientific section's digits are read as its mantissa shows them
        # (number_text), none of the fraction as a plain number's
        places = 0 if scientific else _places(toks, len(fraction_fills), date)
        return cls(tuple(toks), tuple(plan), tuple(_fill(t) for k, t in plan if k == "whole"),
                   fraction_fills, date, plans,
                   next((t for k, t in toks if k == "calendar"), None),
                   any(k == "text" for k, _ in toks),
                   places, percent, fraction_plan, scientific, digit_fill)


def _places(toks: list[Token], fraction_digits: int, date: bool) -> int | None:
    """How many digits of a number's fraction a section shows (of the
    number times 100 for each ``%``, :attr:`_Section.percent`): none for a
    date, time or duration (its fraction is the time of day, shown as
    hours and minutes); its placeholders after the point; None for General
    (a section of General, or of text only, shows a number as General
    does)."""
    if date:
        return 0
    if any(k == "general" for k, _ in toks) or (
            not any(k == "digit" for k, _ in toks) and any(k == "text" for k, _ in toks)):
        return None
    return fraction_digits


@dataclass(frozen=True, slots=True, eq=False)
class Format:
    """A format code parsed: its sections; whether it is rendered, a cell
    shown with it read as it shows it (:func:`render`): it has literal text
    that adds to what a rule reads or a date, time or duration section
    (``yyyymmddhhmmssdd`` shows the day 4111-11-11 at 11:11:11 as a card
    number, no literal text in it) -- else a cell formatted with it shows
    nothing more to read than its value; whether a section has a
    condition (``[>5000]``). Formats compare and hash by identity, one
    object per code through :func:`parse`'s cache: hashed by value, each
    of 255 characters of ``;`` walked its 249 sections every time."""

    sections: tuple[_Section, ...]
    renders: bool
    conditional: bool

    def sections_for(self, sign: int) -> tuple[_Section, ...]:
        """The sections a number of this sign may be shown with: the one
        Excel picks by the sign, or the first three of a format whose
        sections have conditions."""
        if self.conditional:
            return self.sections[:3]
        pick = 0 if sign > 0 or len(self.sections) == 1 else 1 if sign < 0 else 2
        return (self.sections[pick] if pick < len(self.sections) else self.sections[0],)

    @property
    def most_places(self) -> Places:
        """The most digits of a fraction any section shows, by the percent
        signs of the section (General: none here)."""
        out: Places = {}
        for s in self.sections:
            out[s.percent] = max(out.get(s.percent, 0), s.places or 0)
        return out


@functools.lru_cache(maxsize=4096)  # a workbook has few formats and many cells
def parse(code: str) -> Format:
    sections: list[list[Token]] = [[]]
    conditional = False
    for tok in tokens(code):
        if tok[0] == "sep":
            sections.append([])
        else:
            sections[-1].append(tok)
            conditional = conditional or (tok[0] == "other" and tok[1][:1] in "<>=")
    parsed = tuple(_Section.of(s) for s in sections)
    return Format(parsed, any(s.dates or s.fraction or _long_mantissa(s) for s in parsed) or any(
        k in _TEXT and _adds(t) for s in sections for k, t in s), conditional)


# Digits in a row of the shortest number a detector reads alone (a BSN): a
# mantissa of fewer places shows none, whatever its digits.
_SHORTEST = 9


def _long_mantissa(section: _Section) -> bool:
    """Whether a scientific section's mantissa shows enough digits to be
    read, as shown, with every cell a format may show (a conditional or
    data label format, which is given no cell's number): ``0.00E+00`` never
    is, ``000000000000000E+0`` is."""
    science = section.scientific
    return science is not None and len(science.whole) + len(science.fraction) >= _SHORTEST


def _adds(literal: str) -> bool:
    """Whether literal text can add to what a rule reads in a number:
    spaces, currency signs and brackets around an amount (the usual
    currency and accounting formats) only come between or around its
    digits, which are read without them."""
    return any(not (c.isspace() or c in "()" or unicodedata.category(c) == "Sc")
               for c in literal)


def literal_text(code: str) -> str:
    """The literal text of each section of a format, a line each."""
    return "\n".join("".join(t for k, t in section.tokens if k == "lit")
                     for section in parse(code).sections)


_MOST_DIGITS = 310  # a number's exponent, either way, that a cell can hold
# A number as xsd:double writes it (ISO/IEC 29500-1 §18.3.1.96 c/v): a sign,
# digits with a point, an exponent. No pattern that gives back what it
# took: one lazy group before trailing zeros made a 4 KB value of 200,000
# zeros take minutes, inside one parser feed where no budget is looked at.
_DOUBLE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?)([0-9]+))?")
_LONGEST = 400  # significant digits of a number worth rendering (Excel keeps 17)
_ENDS = 32  # characters of each end of a long text value shown around a format's text
_SHOWN = 15  # significant digits Excel shows of a number


def _digits(value: str) -> tuple[int, str, str] | None:
    """(sign, whole digits, fraction digits) of a cell's number, None if
    it is none (read as it is written). A long value is worked out
    uncached: the cache would hold it."""
    return _cached_digits(value) if len(value) <= _LONGEST else _number_of(value)


@functools.lru_cache(maxsize=256)  # a cell's value is read as its number and as rendered
def _cached_digits(value: str) -> tuple[int, str, str] | None:
    return _number_of(value)


def _number_of(value: str) -> tuple[int, str, str] | None:
    """A number in its canonical form, before any bound: leading zeros,
    trailing zeros of its fraction and its exponent taken out, as Excel
    reads it. xsd:double allows any number of leading zeros: a card number
    after 400 zeros, refused by length before it was read, was read as
    written, one run of digits too long to be a card, while Excel shows
    the card. One of more significant digits than any number Excel keeps
    is refused, never read as written; one no cell can hold (past 1E308
    either way) shows no digits and is read as written -- spelled out,
    1E+999999 was a million digits a cell."""
    m = _DOUBLE.fullmatch(value.strip())
    if m is None or not (m.group(2) or m.group(3)):
        return None
    digits = m.group(2) + (m.group(3) or "")
    point = len(m.group(2))  # where the point falls in the digits
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    significant = significant.rstrip("0")
    if not significant:
        return 0, "0", ""
    exponent = m.group(5).lstrip("0") if m.group(5) else ""
    if len(exponent) > len(str(2 * _MOST_DIGITS)):  # far past what a cell holds
        return None
    point += int(exponent or "0") * (-1 if m.group(4) == "-" else 1)
    if not -_MOST_DIGITS < point - 1 < _MOST_DIGITS:
        return None
    if len(significant) > _LONGEST:
        raise Refused("malformed", f"a number of more than {_LONGEST} significant digits")
    sign = -1 if m.group(1) == "-" else 1
    if point <= 0:
        return sign, "0", "0" * -point + significant
    if point >= len(significant):
        return sign, significant + "0" * (point - len(significant)), ""
    return sign, significant[:point], significant[point:]


_GENERAL_WIDTH = 11  # characters of a number General shows in a cell (Excel's, sign and point too)


def _general_places(sign: int, whole: str) -> int:
    return max(0, _GENERAL_WIDTH - len(whole) - 1 - (sign < 0))


def add_places(into: Places, more: Places) -> bool:
    """``more``'s places added to ``into`` (the most of each); whether any grew."""
    grew = False
    for percent, places in more.items():
        if places > into.get(percent, -1):
            into[percent], grew = places, True
    return grew


def conditional_places(value: str, places: Places) -> Places:
    """The places a conditional format (dxf) may show of a cell's number
    ``value``: ``places``, but none for a whole number -- a ``%`` only
    appends zeros to it, which the cell does not show unless the rule
    applies to it, and its whole part is read anyway (a 14-digit SIRET
    number with two zeros appended reads as a 16-digit card number)."""
    if not places:
        return places
    parts = _digits(value)
    if parts is None or not parts[2].strip("0"):
        return {}
    return places


def _percent(whole: str, fraction: str, percent: int) -> tuple[str, str]:
    """The number times 100 for each ``%``, exactly: its point moved."""
    if not percent:
        return whole, fraction
    shift = 2 * percent
    moved = (whole + fraction[:shift].ljust(shift, "0")).lstrip("0") or "0"
    return moved, fraction[shift:]


def _rounded(whole: str, fraction: str, keep: int) -> tuple[str, str]:
    """The number rounded to ``keep`` digits of its fraction, as a cell
    shows it (half away from zero)."""
    if len(fraction) <= keep:
        return whole, fraction
    digits = whole + fraction[:keep]
    if fraction[keep] >= "5":
        digits = str(int(digits) + 1).zfill(len(digits))
    cut = len(digits) - keep
    return digits[:cut].lstrip("0") or "0", digits[cut:].rstrip("0")


def number_text(value: str, formats: tuple[Format | None, ...] = (None,),
                at_least: Places | None = None) -> str:
    """A cell's number as it is read when no format adds text to it: as
    the cell shows it. Its whole part whole (a card number stored as a
    number, shown by a format of ``0``); of its fraction only as many
    digits as the most any of ``formats`` shows (None: General, at most 11
    characters in all), or ``at_least`` (what a conditional format may
    show, by its percent signs), rounded, never past the 15 significant
    digits Excel shows. A section with ``%`` shows the number times 100
    for each (its point moved, exactly): the number is read so too, a line
    for each shift. A typed 0.378282246310005 shows an Amex number under a
    format of fifteen decimals, 0.00378282246310005 under fifteen and a
    ``%``; under ``0.0%`` the ratio 28/81 (0.345679012345679) shows 34.6%
    and the time 08:13:26 (0.342662037037037) under ``hh:mm:ss`` no digit
    of its fraction: read whole, each was a card number."""
    parts = _digits(value)
    if parts is None:  # no number: read as it is written
        return value
    sign, whole, fraction = parts
    keep: dict[int, int] = {0: 0}
    add_places(keep, at_least or {})
    scientific: list[_Section] = []
    for fmt in formats:
        for section in (None,) if fmt is None else fmt.sections_for(sign):
            if section is not None and section.scientific is not None:
                scientific.append(section)
            percent = 0 if section is None else section.percent
            places = None if section is None else section.places
            if places is None:
                places = _general_places(sign, _percent(whole, fraction, percent)[0])
            add_places(keep, {percent: places})
    out = []
    for percent in sorted(keep):
        shown_whole, shown_fraction = _percent(whole, fraction, percent)
        if shown_fraction:
            significant = len(shown_whole) if shown_whole != "0" else -(
                len(shown_fraction) - len(shown_fraction.lstrip("0")))
            shown_whole, shown_fraction = _rounded(
                shown_whole, shown_fraction, min(keep[percent], max(0, _SHOWN - significant)))
        out.append("-" * (sign < 0) + shown_whole
                    + ("." + shown_fraction if shown_fraction else ""))
    for section in scientific:  # its mantissa's digits, the point left out
        assert section.scientific is not None
        out += ["-" * (sign < 0) + digits for digits in section.scientific.shown(
            *_percent(whole, fraction, section.percent), digits_only=True)]
    return "\n".join(dict.fromkeys(out))


def render(fmt: Format, value: str, numeric: bool,
           systems: tuple[int, ...] = (1900,)) -> str | None:
    """``value`` as the format ``fmt`` shows it, or None where the format
    adds nothing to read (no literal text that adds to what a rule reads,
    a text format Excel does not apply to this value, a date no cell
    shows). A format with conditions shows the value with every section, a
    line each: which one Excel picks is not worked out here. A date, time
    or duration section shows the number as a date in each of the
    workbook's date ``systems`` (1900, 1904), its digits beside the
    literal text (vault/intake/_datefmt.py)."""
    if not fmt.renders:
        return None
    sections = fmt.sections
    if not numeric:
        section = sections[3] if len(sections) > 3 else sections[0]
        if not section.text:
            return None
        _not_filled(section)
        # The value is read as it is elsewhere; here only what the format
        # puts around it counts, so a long one is its two ends (a format of
        # 255 @ over a 30,000-character cell was 7 million characters).
        if len(value) > 2 * _ENDS:
            value = value[:_ENDS] + "\n" + value[-_ENDS:]
        return "".join(t if k == "lit" else value if k == "text" else ""
                       for k, t in section.tokens)
    parts = _digits(value)
    if parts is None:
        return None
    sign, whole, fraction = parts
    shown: list[str] = []
    for section in fmt.sections_for(sign):
        _not_filled(section)
        if section.scientific is not None:
            shown += ["-" * (sign < 0 and section is sections[0]) + text for text in
                      section.scientific.shown(*_percent(whole, fraction, section.percent))]
        elif section.fraction is not None:
            shown += ["-" * (sign < 0 and section is sections[0]) + text for text in _fractions(
                section.fraction, *_percent(whole, fraction, section.percent))]
        elif not section.date:
            shown.append("-" * (sign < 0 and section is sections[0])
                         + _number(section, *_percent(whole, fraction, section.percent)))
        if section.dates:
            shown += _dated(section, sign, whole, fraction, systems)
    return "\n".join(shown) if shown else None


def _not_filled(section: _Section) -> None:
    """A section whose fill (``*1``) a rule reads as a digit makes the file
    not inspected whole: Excel repeats it as often as the column's width
    allows (``"4111 1111 1111 1"*1`` shows a card number in a column of
    one width), and no honest format fills with a digit; a fill of spaces
    (``_(* #,##0_)``, accounting) or other characters is read once."""
    if section.digit_fill is not None:
        raise Refused("unsupported", "a number format filling its cell with a digit "
                      f"({section.digit_fill!r}), repeated as wide as its column")


def _dated(section: _Section, sign: int, whole: str, fraction: str,
           systems: tuple[int, ...]) -> list[str]:
    """A number as a date section shows it in each date system, a line
    each (a negative number: none, Excel fills the cell with ``#``). A
    calendar whose dates are not shown here (Hijri, B2) makes the file not
    inspected whole: the date's digits Excel shows are not known."""
    if sign < 0:
        return []
    if section.calendar is not None:
        raise Refused("unsupported", "a date shown in a calendar intake does not show "
                      f"({section.calendar})")
    number = f"{whole}.{fraction}" if fraction else whole
    return list(dict.fromkeys(line for plan in section.dates for system in systems
                              for line in dates.readings(plan, whole, fraction, system, number)))


def style_index(s: str | None) -> int:
    """A cell's style index (its ``s``; none: 0)."""
    return 0 if s is None else unsigned(s, "cell style index")


class CellFormats:
    """The number formats of a workbook's styles part -- the one its
    workbook's styles relationship names, the only one Excel shows its
    cells with (vault/intake/_office.py) -- the format of each cell style
    (``xf`` of ``cellXfs``), and the formats conditional formatting may
    apply to any cell (``dxf``: they have number format ids of their own,
    apart from the cell styles'). Each format is parsed once, by its id;
    what a cell is shown with is worked out once per format its style
    resolves to, never per style index: the cache holds no more entries
    than formats were parsed, each from a ``numFmt`` the part's read bytes
    counted (or built in), however many styles or cells name them."""

    def __init__(self) -> None:
        self.table: dict[int, str] = {}  # the styles part's formats by id
        self.xfs: list[int] = []  # its cell styles' format ids, by style index
        self.read = False  # whether a styles part was given (:meth:`add`)
        self.dxf: list[Format] = []
        self.dxf_places: Places = {}  # the most digits of a fraction a conditional format shows
        self._by_id: dict[int, Format | None] = {}  # format id -> its format, if it has a code
        self._shown: dict[Format | None, list[Format]] = {}  # a style's format -> what shows
        # the date systems a number is shown in as a date: the workbook's
        # (its workbookPr's date1904), both where it says neither clearly
        self.systems: tuple[int, ...] = (1900,)

    def add(self, codes: dict[int, str], xfs: list[int]) -> None:
        """The styles part's formats by id and its cell styles' format ids,
        filled as it is read (:meth:`changed` after each). A workbook's
        cells are shown with one styles part: a second is refused, never
        merged."""
        if self.read:
            raise Refused("ambiguous", "a workbook with more than one styles part for its cells")
        self.table, self.xfs, self.read = codes, xfs, True
        self.changed()

    def _own(self, index: int) -> tuple[int | None, Format | None]:
        """The format id of style ``index`` (None: no such style) and its
        format (None: General)."""
        fmt_id = self.xfs[index] if index < len(self.xfs) else None
        return fmt_id, None if fmt_id is None else self._format(fmt_id)

    def codes(self, index: int) -> list[Format]:
        """The formats with literal text a cell of style index ``index``
        may be shown with: its own (a format of the styles part, never a
        built-in one), and every conditional one."""
        fmt_id, fmt = self._own(index)
        # a built-in format shows nothing a rule reads but its number, save
        # a fraction's (12, 13: ``# ?/?``, ``# ??/??``)
        mine = fmt if fmt_id is not None and (fmt_id in self.table or (
            fmt is not None and any(s.fraction for s in fmt.sections))) else None
        if (got := self._shown.get(mine)) is None:
            got = self._shown[mine] = [f for f in dict.fromkeys([mine, *self.dxf])
                                       if f is not None and f.renders]
        return got

    def numbers(self, index: int) -> tuple[Format | None, ...]:
        """The formats a number in a cell of style index ``index`` is shown
        with (None: General), for :func:`number_text`."""
        return (self._own(index)[1],)

    def _format(self, fmt_id: int) -> Format | None:
        """The format of id ``fmt_id``, the styles part's own or built in
        (None: General), parsed once; an id with neither is kept nowhere."""
        if (got := self._by_id.get(fmt_id)) is not None:
            return got
        code = self.table.get(fmt_id, BUILTIN.get(fmt_id))
        if code is None:
            return None
        got = self._by_id[fmt_id] = parse(code)
        return got

    def changed(self) -> None:
        self._by_id.clear()
        self._shown.clear()


class StylesTarget(TextTarget):
    """A styles part: the literal text of each number format, a line each;
    the tables of ``formats`` filled as it is read. Each element counts by
    its place, never by its name alone: a cell format is a
    ``styleSheet/numFmts/numFmt``, a cell style a ``styleSheet/cellXfs/xf``,
    a conditional format's a ``styleSheet/dxfs/dxf/numFmt``. A ``numFmt``
    anywhere else (an ``extLst``'s slicer styles, ``x14:dxfs``, or an
    extension Excel ignores) is read as a conditional format's (its literal
    text, the digits it shows, and rendered with every cell), never as a
    cell's; an ``xf`` anywhere else is no cell style. ``spaces`` are the
    namespaces of a styles part's own elements.

    What gives a cell its format is taken once, and only outside Markup
    Compatibility's branches (vault/intake/_xml.py): a format id defined
    twice, or a cell style (``xf`` of ``cellXfs`` or ``cellStyleXfs``),
    cell format (``numFmt`` of ``numFmts``) or conditional format
    (``dxf``) in an ``mc:Choice`` or ``mc:Fallback`` is refused,
    ``ambiguous``: which of two Excel takes, and whether it takes a branch
    at all (an empty Choice it understands before a Fallback with a cell
    style, a Choice it does not with no Fallback), is its own choice, and
    every later style's index shifts with it. Excel writes none of them."""

    def __init__(self, spaces: frozenset[str], formats: CellFormats, max_depth: int) -> None:
        super().__init__(frozenset(), max_depth=max_depth)
        self.spaces = spaces
        self.formats = formats
        self.codes: dict[int, str] = {}
        self.xfs: list[int] = []
        self.path: list[str] = []  # the local names of the open elements (others: in full)
        formats.add(self.codes, self.xfs)

    def _local(self, tag: str) -> str:
        ns, _, name = tag.rpartition("}")
        return name if ns + "}" in self.spaces else tag

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        self.path.append(self._local(tag))
        path = tuple(self.path)
        if path[-1] == "numFmt":
            code = attrib.get("formatCode", "")
            if len(code) > MAX_CODE:  # rendered in every cell it formats
                raise Refused("malformed", f"a number format longer than the {MAX_CODE} "
                              "characters Excel allows")
            if path == _CELL_FORMAT:
                self._in_no_branch()
                fmt_id = unsigned(attrib.get("numFmtId", ""), "number format id")
                if fmt_id in self.codes:
                    raise Refused("ambiguous", "a number format id defined twice in the "
                                  "styles part")
                self.codes[fmt_id] = code
            else:  # a dxf's, or in an extension: never a cell's
                self._conditional(code)
                add_places(self.formats.dxf_places, parse(code).most_places)
            self.formats.changed()
            if text := literal_text(code).strip():
                self._add(text + "\n")
        elif path == _CELL_STYLE:
            if len(self.xfs) >= MAX_STYLES:  # each is worked out once, and kept
                raise Refused("too-large", f"a workbook with more than {MAX_STYLES} cell styles")
            self._in_no_branch()
            self.xfs.append(unsigned(attrib.get("numFmtId", "0"), "number format id"))
            self.formats.changed()
        elif path in _IN_NO_BRANCH:
            self._in_no_branch()

    def _in_no_branch(self) -> None:
        """Refused in a branch of Markup Compatibility (see the class)."""
        if self.branches:
            raise Refused("ambiguous", "cell styles or number formats in a branch of a "
                          "styles part's alternate content")

    def _conditional(self, code: str) -> None:
        dxf, fmt = self.formats.dxf, parse(code)
        if fmt.renders and fmt not in dxf:
            if len(dxf) >= MAX_CONDITIONAL:  # each is rendered with every cell
                raise Refused("too-large", f"a workbook with more than {MAX_CONDITIONAL} "
                              "conditional number formats with text")
            dxf.append(fmt)

    def end(self, tag: str) -> None:
        self.path.pop()
        super().end(tag)


_CELL_FORMAT = ("styleSheet", "numFmts", "numFmt")
_CELL_STYLE = ("styleSheet", "cellXfs", "xf")
# what else gives a cell its format, by index: a cell style's parent style
# and a conditional format
_IN_NO_BRANCH = frozenset((("styleSheet", "cellStyleXfs", "xf"), ("styleSheet", "dxfs", "dxf")))
