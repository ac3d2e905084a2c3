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
Each code is parsed once; only cells whose formats have literal text are
rendered. The rendering is the shape Excel gives, not every detail of it
(no rounding, thousands separators or scaling; dates and times are left
as their literal text).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from vault.intake._model import Refused
from vault.intake._xml import TextTarget

__all__ = ["CellFormats", "StylesTarget", "literal_text", "number_text", "parse", "render"]

Token = tuple[str, str]  # (kind, text): lit, digit, point, text, general, date, other, sep
MAX_CONDITIONAL = 32  # distinct conditional (dxf) number formats with literal text
MAX_CODE = 255  # characters of a number format: Excel's own limit
_DATE = frozenset("yYmMdDhHsSeEbBgG")  # date and time codes (e/b/g: eras); E+ is taken first


def _bracket(inner: str) -> Token:
    if inner.startswith("$"):  # [$€-407]: the currency text is shown
        return ("lit", inner[1:].split("-", 1)[0])
    if inner[:1].lower() in ("h", "m", "s"):  # [h]:mm elapsed time
        return ("date", inner)
    return ("other", inner)  # a colour or a condition


def tokens(code: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == '"':
            j = code.find('"', i + 1)
            j = n if j < 0 else j
            out.append(("lit", code[i + 1:j]))
            i = j + 1
            continue
        if c in "\\*_":  # escaped; repeated to fill (shown once at least); a space as wide
            out.append(("lit", " " if c == "_" else code[i + 1:i + 2]))
            i += 2
            continue
        if c == "[":
            j = code.find("]", i + 1)
            j = n if j < 0 else j
            out.append(_bracket(code[i + 1:j]))
            i = j + 1
            continue
        if code[i:i + 7].lower() == "general":
            out.append(("general", ""))
            i += 7
            continue
        if c in "eE" and code[i + 1:i + 2] in ("+", "-"):
            out.append(("other", code[i:i + 2]))
            i += 2
            continue
        kind = {"0": "digit", "#": "digit", "?": "digit", ".": "point", "@": "text",
                ";": "sep", ",": "other"}.get(c)
        if kind is None:
            kind = "date" if c in _DATE or code[i:i + 5].upper() == "AM/PM" else "lit"
        out.append((kind, c))
        i += 1
    return out


def _fill(placeholder: str) -> str:
    return {"0": "0", "?": " "}.get(placeholder, "")


def _number(section: _Section, digits: str, fraction: str) -> str:
    """The number's digits in the placeholders, right-aligned (the first
    takes any extra digits), its fraction's left-aligned (no rounding)."""
    places = len(section.fills)
    spare = len(digits) - places
    if places == 0:
        whole: list[str] = []
    elif spare >= 0:
        whole = [digits[:spare + 1], *digits[spare + 1:]]
    else:
        whole = [*section.fills[:-spare], *digits]
    after = section.fraction_fills
    shown = iter(whole)
    fractions = iter([*fraction[:len(after)], *after[len(fraction):]])
    out = []
    for kind, text in section.plan:
        out.append(text if kind == "lit" else next(shown) if kind == "whole"
                   else next(fractions) if kind == "fraction" else "." if kind == "point"
                   else digits + ("." + fraction if fraction else ""))
    return "".join(out)


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
    text: bool  # has @

    @classmethod
    def of(cls, toks: list[Token]) -> _Section:
        point = next((i for i, (k, _) in enumerate(toks) if k == "point"), len(toks))
        plan = [("whole" if i < point else "fraction", t) if k == "digit" else (k, t)
                for i, (k, t) in enumerate(toks) if k in ("lit", "digit", "point", "general")]
        return cls(tuple(toks), tuple(plan),
                   tuple(_fill(t) for k, t in plan if k == "whole"),
                   tuple(_fill(t) for k, t in plan if k == "fraction"),
                   any(k == "date" for k, _ in toks), any(k == "text" for k, _ in toks))


@dataclass(frozen=True, slots=True)
class Format:
    """A format code parsed: its sections; whether it shows literal text
    that adds to what a rule reads (else a cell formatted with it shows
    nothing more to read than its value); whether a section has a
    condition (``[>5000]``)."""

    sections: tuple[_Section, ...]
    shows_text: bool
    conditional: bool


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
    return Format(tuple(_Section.of(s) for s in sections),
                  any(k == "lit" and _adds(t) for s in sections for k, t in s), conditional)


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
# How Excel writes most numbers. No pattern that gives back what it took:
# one lazy group before trailing zeros made a 4 KB value of 200,000 zeros
# take minutes, inside one parser feed where no budget is looked at.
_PLAIN = re.compile(r"(-?)(\d*)(?:\.(\d*))?")
_LONGEST = 400  # characters of a number worth rendering (Excel keeps 15 digits)
_ENDS = 32  # characters of each end of a long text value shown around a format's text
_SHOWN = 15  # significant digits Excel shows of a number


def _digits(value: str) -> tuple[int, str, str] | None:
    """(sign, whole digits, fraction digits) of a cell's number, None if
    it is none: the text itself when plain, else through Decimal
    (exponents)."""
    text = value.strip()
    if len(text) > _LONGEST:
        return None
    m = _PLAIN.fullmatch(text)
    if m and (m.group(2) or m.group(3)):
        whole, fraction = m.group(2).lstrip("0"), (m.group(3) or "").rstrip("0")
        sign = 0 if not (whole or fraction) else -1 if m.group(1) else 1
        return sign, whole or "0", fraction
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    # Excel's numbers stop near 1E308: one planted as 1E+1000000 overflowed
    # (an internal error), and one just inside was spelled out in a million
    # digits per cell.
    if not number.is_finite() or not -_MOST_DIGITS < number.adjusted() < _MOST_DIGITS:
        return None
    whole, _, fraction = format(abs(number), "f").partition(".")
    return (number > 0) - (number < 0), whole.lstrip("0") or "0", fraction.rstrip("0")


def number_text(value: str) -> str:
    """A cell's number as it is read when no format adds text to it: an
    integer whole (a card number stored as a number, shown by a format of
    ``0``); a number of at most 15 significant digits, as many as Excel
    shows, whole (typed: 0.378282246310005 shows an Amex number under a
    format of fifteen decimals); of a longer one, a computed ratio, its
    whole part. Every ratio of a budget sheet (6/11 is stored as
    0.5454545454545454) read as a card number or a national identity
    number, though no cell shows its sixteenth digit."""
    parts = _digits(value)
    if parts is None:  # no number: read as it is written
        return value
    sign, whole, fraction = parts
    significant = len((whole + fraction).lstrip("0"))
    shown = whole + ("." + fraction if fraction and significant <= _SHOWN else "")
    return "-" * (sign < 0) + shown


def render(code: str, value: str, numeric: bool) -> str | None:
    """``value`` as the format ``code`` shows it, or None where the format
    adds nothing to read (no literal text that adds to what a rule reads,
    a date, a text format Excel does not apply to this value). A format with conditions shows the
    value with every section, a line each: which one Excel picks is not
    worked out here."""
    fmt = parse(code)
    if not fmt.shows_text:
        return None
    sections = fmt.sections
    if not numeric:
        section = sections[3] if len(sections) > 3 else sections[0]
        if not section.text:
            return None
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
    if fmt.conditional:
        picked = list(enumerate(sections[:3]))
    else:
        pick = 0 if sign > 0 or len(sections) == 1 else 1 if sign < 0 else 2
        picked = [(pick, sections[pick] if pick < len(sections) else sections[0])]
    shown = ["-" * (sign < 0 and at == 0) + _number(section, whole, fraction)
             for at, section in picked if not section.date]
    return "\n".join(shown) if shown else None


class CellFormats:
    """The number formats of a workbook's styles part(s): the format of
    each cell style (``xf`` of ``cellXfs``), and the formats conditional
    formatting may apply to any cell (``dxf``: they have number format ids
    of their own, apart from the cell styles')."""

    def __init__(self) -> None:
        self.tables: list[tuple[dict[str, str], list[str]]] = []
        self.dxf: list[str] = []
        self._shown: dict[str | None, list[str]] = {}

    def codes(self, style: str | None) -> list[str]:
        """The format codes with literal text a cell of style index
        ``style`` may be shown with: its own, and every conditional one."""
        if (got := self._shown.get(style)) is not None:
            return got
        index = int(style) if style and style.isdigit() else 0
        mine = [codes[xfs[index]] for codes, xfs in self.tables
                if index < len(xfs) and xfs[index] in codes]
        got = [code for code in dict.fromkeys(mine + self.dxf) if parse(code).shows_text]
        if len(self._shown) < 65536:  # style indexes are few; a hostile sheet's are not
            self._shown[style] = got
        return got

    def changed(self) -> None:
        self._shown.clear()


class StylesTarget(TextTarget):
    """A styles part: the literal text of each number format, a line each;
    the tables of ``formats`` filled as it is read."""

    def __init__(self, numfmt: frozenset[str], cell_xfs: frozenset[str], xf: frozenset[str],
                 dxfs: frozenset[str], formats: CellFormats, max_depth: int) -> None:
        super().__init__(frozenset(), max_depth=max_depth)
        self.numfmt, self.cell_xfs, self.xf, self.dxfs = numfmt, cell_xfs, xf, dxfs
        self.formats = formats
        self.codes: dict[str, str] = {}
        self.xfs: list[str] = []
        self.in_xfs = self.in_dxfs = False
        formats.tables.append((self.codes, self.xfs))

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in self.numfmt:
            code = attrib.get("formatCode", "")
            if len(code) > MAX_CODE:  # rendered in every cell it formats
                raise Refused("malformed", f"a number format longer than the {MAX_CODE} "
                              "characters Excel allows")
            if self.in_dxfs:
                self._conditional(code)
            else:
                self.codes[attrib.get("numFmtId", "").strip()] = code
            self.formats.changed()
            if text := literal_text(code).strip():
                self._add(text + "\n")
        elif tag in self.cell_xfs:
            self.in_xfs = True
        elif tag in self.dxfs:
            self.in_dxfs = True
        elif tag in self.xf and self.in_xfs:
            self.xfs.append(attrib.get("numFmtId", "0").strip())
            self.formats.changed()

    def _conditional(self, code: str) -> None:
        dxf = self.formats.dxf
        if parse(code).shows_text and code not in dxf:
            if len(dxf) >= MAX_CONDITIONAL:  # each is rendered with every cell
                raise Refused("too-large", f"a workbook with more than {MAX_CONDITIONAL} "
                              "conditional number formats with text")
            dxf.append(code)

    def end(self, tag: str) -> None:
        if tag in self.cell_xfs:
            self.in_xfs = False
        elif tag in self.dxfs:
            self.in_dxfs = False
        super().end(tag)
