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
emoji sequences) -- a joiner only where it joins: between two characters
that are neither a space nor a joiner (letters, marks, emoji; never
leading, trailing, doubled or beside a space, where it would join nothing
and only hide). None of these reorders text, breaks a line or drives a
terminal. Everything else the name rule refuses stays refused: controls,
bidi controls, U+2028 and U+2029, lone surrogates, the other format
characters (U+200B, U+2060, U+FEFF, the soft hyphen U+00AD), private-use
and unassigned characters.

Such text is shown as it is on a terminal and written as it is in one line
of a file, without redrawing, reordering or breaking it.

Free text a rule requires -- a justification, a reason -- is *given* only
when it says something (:func:`says_something`): when it holds a character
a reader sees, not only spaces and joiners, which an audit log line or the
approve screen shows as blank.

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
from collections.abc import Iterable, Iterator

__all__ = ["character_problem", "free_character", "free_characters", "is_text", "printable",
           "printable_lines", "says_something"]

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: what free text holds besides printable characters (and what is shown as
#: it is): the space separators and these two joiners
_JOINERS = frozenset("\u200c\u200d")
#: letters that draw nothing: Unicode's default-ignorable Hangul fillers
_BLANK = frozenset("\u115f\u1160\u3164\uffa0")
_KINDS = {"Cc": "control character", "Cs": "lone surrogate", "Cf": "invisible format character",
          "Zs": "space other than U+0020", "Zl": "line separator", "Zp": "paragraph separator",
          "Co": "private-use character", "Cn": "unassigned character"}


def free_character(c: str) -> bool:
    """Whether ``c`` may stand in free text somewhere: printable, a space
    separator (Zs) or a joiner (U+200C, U+200D; where it stands:
    :func:`free_characters`)."""
    return c.isprintable() or c in _JOINERS or unicodedata.category(c) == "Zs"


def _joinable(c: str, ends: str) -> bool:
    return c not in _JOINERS and not c.isspace() and c not in ends


def _joins(value: str, i: int, ends: str = "") -> bool:
    """Whether the joiner ``value[i]`` joins: it stands between two
    characters that are neither a space nor a joiner. Anywhere else it joins
    nothing and only hides -- alone, doubled or beside a space it makes a
    text that says nothing look like one that says something."""
    return (0 < i < len(value) - 1 and _joinable(value[i - 1], ends)
            and _joinable(value[i + 1], ends))


def free_characters(value: str, ends: str = "") -> Iterator[tuple[str, bool]]:
    """Each character of ``value`` with whether free text holds it there;
    ``ends``: characters that end a text within ``value`` (a JSON document's
    quote), beside which a joiner joins nothing either."""
    for i, c in enumerate(value):
        yield c, free_character(c) and (c not in _JOINERS or _joins(value, i, ends))


def says_something(text: object) -> bool:
    """Whether ``text`` says something: it holds at least one character a
    reader sees -- printable, and neither a space (U+0020, a space
    separator, other whitespace) nor a joiner nor a letter that draws
    nothing. The one test of a free text a rule requires being given (a
    justification, a reason): spaces and joiners alone are shown blank."""
    return isinstance(text, str) and any(
        c.isprintable() and not c.isspace() and c not in _BLANK for c in text)


def _misplaced(value: str, *, lines: bool, free: bool) -> tuple[str, bool] | None:
    """The first character ``value`` may not hold there, and whether it is
    a joiner that joins nothing."""
    if not free:
        return next(((c, False) for c in value if not (c.isprintable() or (lines and c == "\n"))),
                    None)
    for c, ok in free_characters(value):
        if not (ok or (lines and c == "\n")):
            return c, c in _JOINERS
    return None


def is_text(value: str, *, lines: bool = False, free: bool = False) -> bool:
    """Whether ``value`` is one line of printable text (printable lines, if
    ``lines``): a name's rule, or free text's (``free``)."""
    if value.isprintable():  # the common case, in C
        return True
    return _misplaced(value, lines=lines, free=free) is None


def character_problem(value: str, *, lines: bool = False, free: bool = False) -> str | None:
    """What makes ``value`` no printable text (one line, unless ``lines``;
    a name's rule, or free text's if ``free``): 'holds the control character
    U+001B', or None."""
    found = _misplaced(value, lines=lines, free=free)
    if found is None:
        return None
    c, joiner = found
    if joiner:
        return (f"holds the joiner U+{ord(c):04X} where it joins nothing (a joiner stands "
                "between two letters, marks or emoji)")
    kind = "line break" if c in "\n\r\x85" else "tab" if c == "\t" else \
        "bidi control" if c in _BIDI else _KINDS.get(unicodedata.category(c), "character")
    return f"holds the {kind} U+{ord(c):04X}"


def printable(s: str) -> str:
    """``s`` with every character that is not printable escaped (``\\n``,
    ``\\x1b``, ``\\r``, ``\\u202e``): the one way a string that a user typed
    or a record carries is shown, so that none drives the reader's terminal
    (a colour, a title, a line overwritten by ``\\r``, text reversed by a
    bidi override) or starts a line of its own (``\\n``, ``\\x85``,
    ``\\u2028``). What free text holds besides (a no-break space, a joiner)
    is shown as it is: an honest title or justification reads as written; a
    joiner that joins nothing is escaped, or a text of joiners would look
    blank."""
    if s.isprintable():
        return s
    return "".join(c if ok else repr(c)[1:-1] for c, ok in free_characters(s))


def printable_lines(lines: Iterable[str]) -> list[str]:
    """Each of ``lines`` escaped whole (:func:`printable`): a line break in
    a value a line quotes stays in that line, shown as ``\\n``."""
    return [printable(line) for line in lines]
