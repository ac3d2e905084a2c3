"""What a name, a title or free text may hold (docs/FORMAT.md §12.1,
docs/POLICY.md §2.3).

One rule for every text a person chose and others are shown: a user's name
(an identity file, a FILE.pub, an audit record's actor), a justification or
an incident reason, a document's title, and the policy's names and
descriptions. The text is printable as Python's ``str.isprintable`` decides:
no control character (C0, DEL or C1: U+0085 breaks a line, U+009B begins a
terminal escape), no format character (the bidi marks, embeddings,
overrides and isolates reorder what a reader sees), no line or paragraph
separator, no lone surrogate, private-use or unassigned character, and no
space but U+0020. Such text is shown as it is on a terminal and written as
it is in one line of a file, without redrawing, reordering or breaking it.

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

__all__ = ["character_problem", "is_text", "printable", "printable_lines"]

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_KINDS = {"Cc": "control character", "Cs": "lone surrogate", "Cf": "invisible format character",
          "Zs": "space other than U+0020", "Zl": "line separator", "Zp": "paragraph separator",
          "Co": "private-use character", "Cn": "unassigned character"}


def is_text(value: str, *, lines: bool = False) -> bool:
    """Whether ``value`` is one line of printable text (printable lines, if
    ``lines``)."""
    return value.isprintable() or (lines and all(map(str.isprintable, value.split("\n"))))


def character_problem(value: str, *, lines: bool = False) -> str | None:
    """What makes ``value`` no printable text (one line, unless ``lines``):
    'holds the control character U+001B', or None."""
    if is_text(value, lines=lines):
        return None
    for c in value:
        if c.isprintable() or (lines and c == "\n"):
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
    ``\\u2028``)."""
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def printable_lines(lines: Iterable[str]) -> list[str]:
    """Each of ``lines`` escaped whole (:func:`printable`): a line break in
    a value a line quotes stays in that line, shown as ``\\n``."""
    return [printable(line) for line in lines]
