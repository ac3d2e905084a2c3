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

__all__ = ["LINE_WINDOW", "MAX_PATTERN", "compile_keywords", "compile_regex", "pattern_problem"]

MAX_PATTERN = 256
MAX_PHRASE = 200
MAX_REPEAT = 100
LINE_WINDOW = 1000
MAX_CHOICES = 100_000

_parser: Any = importlib.import_module("re._parser")
_consts: Any = importlib.import_module("re._constants")
_REPEATS = {_consts.MAX_REPEAT, _consts.MIN_REPEAT, getattr(_consts, "POSSESSIVE_REPEAT", None)}
_UNBOUNDED = _consts.MAXREPEAT


# Dashes a reader takes for a hyphen (hyphen, non-breaking hyphen, figure
# dash, en and em dashes, horizontal bar, minus sign, and their small and
# full-width forms NFKC leaves alone or makes one of these): matched as "-".
_DASHES = dict.fromkeys((*range(0x2010, 0x2016), 0x2212, 0xFE58, 0xFE63, 0xFF0D), "-")


@functools.cache
def _shown_as() -> dict[int, str]:
    """Dashes as "-", and every decimal digit of any script (Arabic-Indic,
    Devanagari, Thai, ...: what a reader of that locale reads as a number)
    as its ASCII digit, one character for one, so offsets stay those of
    the text scanned."""
    table = {c: str(unicodedata.digit(chr(c))) for c in range(0x80, sys.maxunicode + 1)
             if chr(c).isdecimal()}
    return table | _DASHES


@functools.cache
def _invisible() -> re.Pattern[str]:
    """Format characters (Unicode category Cf: zero-width space and
    joiners, word joiner, soft hyphen, direction marks, ...): not drawn,
    or drawn only at a line break, so "4111<ZWSP>1111..." shows as the
    number it hides."""
    cf = [chr(c) for c in range(0x80, sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    return re.compile("[" + "".join(re.escape(c) for c in cf) + "]")


def normalise(text: str) -> str:
    """What the scanner matches against, as a reader sees ``text``: NFKC,
    format characters dropped, dashes as hyphens, digits as ASCII digits."""
    if text.isascii():
        return text
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    # Only runs of what may change are looked at: Latin-1 letters, most of
    # a European text, never do (a pass over all of it, character by
    # character, made accented text four times slower to read).
    return _MAY_CHANGE.sub(_shown, text)


# Beyond Latin-1, and its one format character, the soft hyphen: every
# character _shown_as or _invisible changes is one of these.
_MAY_CHANGE = re.compile(r"[^\x00-\xac\xae-\xff]+")


def _shown(run: re.Match[str]) -> str:
    return _invisible().sub("", run.group()).translate(_shown_as())


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
