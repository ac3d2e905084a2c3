"""What a name, a title or free text may hold (docs/FORMAT.md §12.1,
docs/POLICY.md §2.3).

Two rules, for every text a person chose and others are shown.

A *name* -- a user's name (an identity file, a FILE.pub, an audit record's
actor), a policy's name, level, compartment, group or label name, an id --
is a key others look things up by: it is printable as Python's
``str.isprintable`` decides. No control character (C0, DEL or C1: U+0085
breaks a line, U+009B begins a terminal escape), no format character (the
bidi marks, embeddings, overrides and isolates reorder what a reader sees;
a zero-width joiner makes two names that look the same), no line or
paragraph separator, no lone surrogate, private-use or unassigned
character, and no space but U+0020.

*Free text* -- a justification, an approval's or an incident's reason, a
label's reason, a document's title, a policy's description or comment --
is what people write in their own language: it also holds the space
separators (Unicode's Zs: the no-break space of "10 000 €", U+202F, U+3000)
and the two joiners, U+200C (Persian needs it) and U+200D (Indic conjuncts,
emoji sequences). None of these reorders text, breaks a line or drives a
terminal. Everything else the name rule refuses stays refused: controls,
bidi controls, U+2028 and U+2029, lone surrogates, the other format
characters (U+200B, U+2060, U+FEFF, the soft hyphen U+00AD), private-use
and unassigned characters.

Such text is shown as it is on a terminal and written as it is in one line
of a file, without redrawing, reordering or breaking it.

How text another person controls is shown: one rule for the library's
messages and explanations and for the command line.

A policy's marking or description, an Office label's name, a file's name, a
user's or group's name, a record's field: whoever wrote it can put a line
break or a terminal escape in it. Such a value is escaped where it is put
into a line of text, and text of many lines is carried as a list of lines,
never joined and split again -- split, a line break in a value would print
a line its writer chose, looking like one of the program's own.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["character_problem", "free_character", "is_text", "printable", "printable_lines"]

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: what free text holds besides printable characters (and what is shown as
#: it is): the space separators and these two joiners
_JOINERS = frozenset("\u200c\u200d")
_KINDS = {"Cc": "control character", "Cs": "lone surrogate", "Cf": "invisible format character",
          "Zs": "space other than U+0020", "Zl": "line separator", "Zp": "paragraph separator",
          "Co": "private-use character", "Cn": "unassigned character"}


def free_character(c: str) -> bool:
    """Whether ``c`` may stand in free text: printable, a space separator
    (Zs) or a joiner (U+200C, U+200D)."""
    return c.isprintable() or c in _JOINERS or unicodedata.category(c) == "Zs"


def _allowed(c: str, *, lines: bool, free: bool) -> bool:
    return (free_character(c) if free else c.isprintable()) or (lines and c == "\n")


def is_text(value: str, *, lines: bool = False, free: bool = False) -> bool:
    """Whether ``value`` is one line of printable text (printable lines, if
    ``lines``): a name's rule, or free text's (``free``)."""
    if value.isprintable():  # the common case, in C
        return True
    return all(_allowed(c, lines=lines, free=free) for c in value)


def character_problem(value: str, *, lines: bool = False, free: bool = False) -> str | None:
    """What makes ``value`` no printable text (one line, unless ``lines``;
    a name's rule, or free text's if ``free``): 'holds the control character
    U+001B', or None."""
    for c in value:
        if _allowed(c, lines=lines, free=free):
            continue
        kind = "line break" if c in "\n\r\x85" else "tab" if c == "\t" else \
            "bidi control" if c in _BIDI else _KINDS.get(unicodedata.category(c), "character")
        return f"holds the {kind} U+{ord(c):04X}"
    return None


def printable(s: str) -> str:
    """``s`` with every character that is not printable escaped (``\\n``,
    ``\\x1b``, ``\\r``, ``\\u202e``): the one way a string that a user typed
    or a record carries is shown, so that none drives the reader's terminal
    (a colour, a title, a line overwritten by ``\\r``, text reversed by a
    bidi override) or starts a line of its own (``\\n``, ``\\x85``,
    ``\\u2028``). What free text holds besides (a no-break space, a joiner)
    is shown as it is: an honest title or justification reads as written."""
    if s.isprintable():
        return s
    return "".join(c if free_character(c) else repr(c)[1:-1] for c in s)


def printable_lines(lines: Iterable[str]) -> list[str]:
    """Each of ``lines`` escaped whole (:func:`printable`): a line break in
    a value a line quotes stays in that line, shown as ``\\n``."""
    return [printable(line) for line in lines]
