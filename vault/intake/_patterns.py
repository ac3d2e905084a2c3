"""Keyword phrases and regular expressions of content rules, made safe to
run on hostile text (docs/POLICY.md §11.3).

Python's ``re`` has no timeout, so a policy's patterns are vetted when the
policy is checked, and bounded when they run:

* refused at check time: patterns over :data:`MAX_PATTERN` characters;
  backreferences and conditionals; a repeat (``*``, ``+``, ``{m,n}`` with
  n > 1) of something whose length varies (a nested quantifier, an optional
  part); an alternation of branches longer than one character inside a
  repeat; a bounded repeat above :data:`MAX_REPEAT`; a pattern that can
  match the empty text; and patterns whose repeats together allow more than
  :data:`MAX_CHOICES` ways to split a line (the product over repeats of the
  number of counts each allows, an unbounded one counting
  :data:`LINE_WINDOW`). What remains backtracks at most that many times at
  each position of a line;
* bounded at run time: a pattern is applied to one line of text at a time,
  and a line longer than :data:`LINE_WINDOW` characters is cut into windows
  of that size, so no single search sees more than that.

Keyword phrases are compiled here into a pattern of our own (escaped, any
run of whitespace between words, word boundaries, case-insensitive), which
needs no vetting. Text and phrases both go through :func:`normalise` first.
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
import unicodedata
from collections.abc import Iterable
from typing import Any

__all__ = ["LINE_WINDOW", "MAX_PATTERN", "compile_keywords", "compile_regex", "held_back",
           "last_seen", "pattern_problem"]

MAX_PATTERN = 256
MAX_PHRASE = 200
MAX_REPEAT = 100
LINE_WINDOW = 1000
MAX_CHOICES = 100_000

_parser: Any = importlib.import_module("re._parser")
_consts: Any = importlib.import_module("re._constants")
_REPEATS = {_consts.MAX_REPEAT, _consts.MIN_REPEAT, getattr(_consts, "POSSESSIVE_REPEAT", None)}
_UNBOUNDED = _consts.MAXREPEAT


# Dashes a reader takes for a hyphen (every dash punctuation, Unicode
# category Pd: hyphen, non-breaking hyphen, figure dash, en and em dashes,
# horizontal bar, Armenian, Hebrew and Mongolian hyphens, ...; and the
# minus signs and hyphen bullet, U+02D7, U+2043, U+2212, U+2796), in the
# forms NFKC leaves: matched as "-". Every space separator (category Zs)
# NFKC leaves, the Ogham space mark, is matched as a space.
_DASHES = (0x02D7, 0x2043, 0x2212, 0x2796,
           # box-drawing horizontals, drawn as a dash between digits
           0x2500, 0x2501, 0x2504, 0x2505, 0x2508, 0x2509, 0x254C, 0x254D, 0x2574, 0x2576,
           0x2578, 0x257A, 0x257C, 0x257E, 0x23AF)


@functools.cache
def _shown_as() -> dict[int, str]:
    """Dashes as "-", spaces as " ", and every digit of any script (Arabic-Indic,
    Devanagari, Thai, ...: what a reader of that locale reads as a number)
    as its ASCII digit, one character for one, so offsets stay those of
    the text scanned."""
    table: dict[int, str] = {}
    for c in range(0x80, sys.maxunicode + 1):
        kind = unicodedata.category(chr(c))
        digit = unicodedata.digit(chr(c), None)
        if digit is not None:  # Nd, and digits NFKC leaves: dingbat circled ones
            table[c] = str(digit)
        elif kind == "Pd":
            table[c] = "-"
        elif kind == "Zs":
            table[c] = " "
    return table | dict.fromkeys(_DASHES, "-") | dict.fromkeys(_BLANKS, " ")


# Default-ignorable code points beyond the format characters (Unicode's
# DerivedCoreProperties: Default_Ignorable_Code_Point): the combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian
# variation selectors, the whole block U+2060-U+206F (unassigned code
# points included), variation selectors, unassigned tags -- drawn as
# nothing where a font has no glyph for them.
_IGNORABLE = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
              (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0),
              (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
# The Braille pattern blank is no space to Unicode, but is drawn as one:
# matched as a space.
_BLANKS = (0x2800,)


@functools.cache
def _unseen() -> frozenset[int]:
    """Format characters (Unicode category Cf: zero-width space and
    joiners, word joiner, soft hyphen, direction marks, ...) and every
    other default-ignorable code point (_IGNORABLE): not drawn, or drawn
    only at a line break, so "4111<ZWSP>1111..." shows as the number it
    hides."""
    cf = {c for c in range(0x80, sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"}
    return frozenset(cf | {c for a, b in _IGNORABLE for c in range(a, b + 1)})


@functools.cache
def _marks() -> frozenset[int]:
    """Combining marks (categories Mn, Me): on a digit -- a keycap, an
    underline, a dot over it -- a reader reads the digit."""
    return frozenset(c for c in range(0x300, sys.maxunicode + 1)
                     if unicodedata.category(chr(c)) in ("Mn", "Me"))


@functools.cache
def _invisible() -> re.Pattern[str]:
    return re.compile(_one_of(_unseen()))


@functools.cache
def _marks_on_digits() -> re.Pattern[str]:
    # (or on a superscript digit, held as a noncharacter: see normalise)
    return re.compile("(?<=[0-9\ufdd0-\ufdd9])" + _one_of(_marks()) + "+")


@functools.cache
def _leading_soft() -> re.Pattern[str]:
    """The run of marks and unseen characters a text begins with."""
    return re.compile(_one_of(_marks() | _unseen()) + "*")


def _soft(c: str) -> bool:
    """Is ``c`` a combining mark or an unseen character (no character a
    reader sees of its own)?"""
    return bool(unicodedata.combining(c)) or ord(c) in _marks() or ord(c) in _unseen()


def _one_of(codes: set[int] | frozenset[int]) -> str:
    """A character class of ``codes``, as ranges: a class of single
    characters made matching three times slower."""
    ranges: list[list[int]] = []
    for c in sorted(codes):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return "[" + "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "")
                         for a, b in ranges) + "]"


def normalise(text: str, before: str = "") -> str:
    """What the scanner matches against, as a reader sees ``text``: NFKC,
    default-ignorable characters dropped (format characters, variation
    selectors, ...), dashes as hyphens, spaces as spaces, digits as ASCII
    digits, combining marks on a digit dropped, a superscript or subscript
    digit beside other digits set apart by a space. ``before``: the last
    character seen (no mark, none ignorable) of the text this follows,
    when it is read in pieces (vault/intake/_scan.py)."""
    if before and text:
        text = _after(before, text)
    if text.isascii():
        return text
    scripts = _SCRIPT_DIGIT.search(text) is not None
    if scripts:
        # A superscript or subscript digit beside ordinary ones is a mark of
        # its own (a footnote's, an exponent): "4111 1111 1111 1111¹" is a
        # card and its note. Held as a noncharacter of its own until the
        # text is as a reader sees it (invisible characters and marks
        # between dropped, every script's digits ASCII), then set apart.
        text = text.translate(_TO_MARKER)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    # Only runs of what may change are looked at: Latin-1 letters, most of
    # a European text, never do (a pass over all of it, character by
    # character, made accented text four times slower to read).
    text = _MAY_CHANGE.sub(_shown, text)
    if scripts:
        text = _MARKER_EDGE.sub(" ", text).translate(_FROM_MARKER)
    return text


def _after(before: str, text: str) -> str:
    """``text`` as it reads after ``before``: the marks and ignorable
    characters it begins with dropped where they sit on a digit (a run of
    them longer than held_back holds), a space where a superscript digit
    and an ordinary one meet."""
    digit = unicodedata.digit(before, None) is not None
    if digit and not text[0].isascii():
        lead = _leading_soft().match(text)
        if lead is not None and lead.end() > 0:
            text = text[lead.end():]
            if not text:
                return text
    if digit and unicodedata.digit(text[0], None) is not None \
            and (before in _SCRIPT_SET) != (text[0] in _SCRIPT_SET):
        text = " " + text
    return text


# Superscript and subscript digits 0-9.
_SCRIPT_SET = frozenset(map(chr, (0x2070, 0xB9, 0xB2, 0xB3, *range(0x2074, 0x207A),
                                  *range(0x2080, 0x208A))))
_SCRIPT_DIGIT = re.compile(_one_of(set(map(ord, _SCRIPT_SET))))
# Noncharacters (U+FDD0-U+FDD9, kept for a program's own use) hold the place
# of a superscript or subscript digit 0-9; one in the text itself is no
# character to a reader, and is read as U+FFFD.
_TO_MARKER = {ord(c): chr(0xFDD0 + unicodedata.digit(c)) for c in _SCRIPT_SET} \
    | {c: "\ufffd" for c in range(0xFDD0, 0xFDDA)}
_FROM_MARKER = {0xFDD0 + d: str(d) for d in range(10)}
_MARKER_EDGE = re.compile("(?<=[0-9])(?=[\ufdd0-\ufdd9])|(?<=[\ufdd0-\ufdd9])(?=[0-9])")


def last_seen(text: str) -> str:
    """The last character of ``text`` that is no combining mark and none
    ignorable (among its last HELD), or ""."""
    return next((c for c in reversed(text[-HELD:]) if not _soft(c)), "")


def held_back(text: str) -> tuple[str, str]:
    """``text`` cut before its last character that is no combining mark and
    no default-ignorable one, and what follows it (at most HELD characters):
    normalised only with the text after it, so that a mark or an ignorable
    character the next piece begins with is read with the digit it sits on,
    and NFKC composes across pieces (vault/intake/_scan.py)."""
    i, stop = len(text), max(len(text) - HELD, 0)
    while i > stop and _soft(text[i - 1]):
        i -= 1
    i = max(i - 1, 0) if i > stop else stop
    return text[:i], text[i:]


HELD = 32  # characters held back at most: a run of marks longer is cut


# Beyond Latin-1, and its one format character, the soft hyphen: every
# character _shown_as or _invisible changes, and every combining mark, is
# one of these.
_MAY_CHANGE = re.compile(r"[^\x00-\xac\xae-\xff]+")


def _shown(run: re.Match[str]) -> str:
    text = _invisible().sub("", run.group()).translate(_shown_as())
    at = run.start()
    if at and run.string[at - 1] in "0123456789":  # a mark may sit on the digit before
        text = _marks_on_digits().sub("", run.string[at - 1] + text)[1:]
    elif _DIGIT.search(text):
        text = _marks_on_digits().sub("", text)
    return text


_DIGIT = re.compile("[0-9\ufdd0-\ufdd9]")


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is refused as a content rule, or None."""
    if len(pattern) > MAX_PATTERN:
        return f"pattern is {len(pattern)} characters; expected at most {MAX_PATTERN}"
    try:
        parsed = _parser.parse(pattern, 0)
    except re.error as e:
        return f"not a regular expression: {e.msg}"
    except RecursionError:
        return "pattern nests too deeply"
    if parsed.getwidth()[0] == 0:
        return "pattern can match empty text; expected one that needs at least one character"
    choices = [1]
    problem = _walk(parsed, False, choices)
    if problem is None and choices[0] > MAX_CHOICES:
        problem = (f"pattern's repeats allow about {choices[0]:,} ways to split a line; expected "
                   f"at most {MAX_CHOICES:,} (bound them, e.g. {{1,5}} instead of +)")
    return problem


def _walk(sub: Any, in_repeat: bool, choices: list[int]) -> str | None:
    for op, av in sub:
        if op in (_consts.GROUPREF, _consts.GROUPREF_EXISTS):
            return "backreferences and conditionals are refused (they can take exponential time)"
        if op in _REPEATS:
            lo, hi, body = av
            if hi != _UNBOUNDED and hi > MAX_REPEAT:
                return f"repeat {{{lo},{hi}}} is above {MAX_REPEAT}"
            choices[0] *= (LINE_WINDOW if hi == _UNBOUNDED else hi) - lo + 1
            many = hi > 1
            if many:
                low, high = body.getwidth()
                if low != high:
                    return ("a repeat of something of varying length (nested quantifiers or "
                            "optional parts inside a repeat can take exponential time)")
            if problem := _walk(body, in_repeat or many, choices):
                return problem
        elif op == _consts.BRANCH:
            branches = av[1]
            if in_repeat and any(b.getwidth() != (1, 1) for b in branches):
                return ("an alternation of longer branches inside a repeat (overlapping "
                        "branches can take exponential time)")
            for b in branches:
                if problem := _walk(b, in_repeat, choices):
                    return problem
        elif op == _consts.SUBPATTERN:
            if problem := _walk(av[3], in_repeat, choices):
                return problem
        elif op in (_consts.ASSERT, _consts.ASSERT_NOT):
            if problem := _walk(av[1], in_repeat, choices):
                return problem
        elif (op == getattr(_consts, "ATOMIC_GROUP", None)
              and (problem := _walk(av, in_repeat, choices))):
            return problem
    return None


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile a vetted pattern; ValueError says why it is refused."""
    problem = pattern_problem(pattern)
    if problem:
        raise ValueError(problem)
    return re.compile(pattern, re.MULTILINE)  # ^ and $ at line starts and ends


def phrase_problem(phrase: str) -> str | None:
    if not phrase.strip():
        return "phrase is empty"
    if len(phrase) > MAX_PHRASE:
        return f"phrase is {len(phrase)} characters; expected at most {MAX_PHRASE}"
    return None


def compile_keywords(phrases: Iterable[str]) -> re.Pattern[str]:
    """One pattern matching any phrase: NFKC-normalised, case-insensitive,
    whole words only (no letter or digit just before or after), any run of
    whitespace where the phrase has a space."""
    alternatives = []
    for phrase in phrases:
        words = normalise(phrase).split()
        alternatives.append(r"\s+".join(re.escape(w) for w in words))
    alternatives.sort(key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)
