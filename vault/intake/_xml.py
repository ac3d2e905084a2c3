"""Streaming, defused XML reading (docs/POLICY.md §11.4).

Parts are fed to defusedxml's parser in chunks, with a target that builds
no tree: it keeps the text of the elements asked for and hands it on in
pieces. DTDs are refused outright (so no entity can be declared, expanded
or fetched: billion laughs and external entities end here), nesting deeper
than ``Budget.max_xml_depth`` is refused, and malformed XML is refused;
each ends as :class:`Refused`, never as a parser traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from vault.intake._detectors import MAX_MATCH
from vault.intake._math import MATH_TAGS, MathDrawn
from vault.intake._model import Meter, Refused
from vault.intake._patterns import LINE_WINDOW

__all__ = ["EVERY", "MAIN", "MARKUP", "ORIGINAL", "TextTarget", "iter_text", "parse_small"]

CHUNK = 64 * 1024
MAX_PENDING = 64 * CHUNK  # characters collected from one CHUNK at most (see _add)


# The readings of a text with changes tracked in it (:meth:`TextTarget._text`),
# one bit each: as it stands now, every change made (the main one, read
# in the line); as it stood before them; with every change marked in
# place, deleted text beside inserted text (read after the line, each
# where it differs from the main one).
MAIN, ORIGINAL, MARKUP = 1, 2, 4
EVERY = MAIN | ORIGINAL | MARKUP
_VARIANTS = (ORIGINAL, MARKUP)
# Characters of a line's main text copied into a reading begun in it (the
# line's last ones): more than the 1,000 a rule reads of a line at once.
HEAD = 4 * 1024
# Of those, the last ones a reading copies whole, never cut inside (see
# _cut): a rule's window of a line and a detector's longest candidate.
WHOLE = LINE_WINDOW + MAX_MATCH


def _cut(before: str) -> str:
    """The last HEAD characters of ``before``, begun where no word or
    number is cut in two: after the first space, else the first mark that
    is no letter or digit, else the first non-digit, among those before
    the last WHOLE characters -- never inside the text a candidate ending
    at the change can span. Cut at its first ASCII space, a line of
    Chinese (or of words joined by no-break spaces) was cut inside the
    card number it ended with."""
    if len(before) <= HEAD:
        return before
    before = before[-HEAD:]
    free = before[:HEAD - WHOLE]
    for fits in (str.isspace, lambda c: not c.isalnum(), lambda c: not c.isdigit()):
        at = next((i for i, c in enumerate(free) if fits(c)), -1)
        if at >= 0:
            return before[at + 1:]
    return before


class _Line:
    """A line being read in one story -- the part's own text, a text box's
    (a story inside a line), the text a line shows apart (a field's
    instruction, a phonetic guide) -- and what is read after it."""

    __slots__ = ("after", "aside", "base", "branches", "head", "inline", "notes", "out",
                 "shown", "start", "variants")

    def __init__(self, out: list[str], base: int = 0, story: bool = False) -> None:
        self.out = out  # the story's text (for the part's own, the pieces taken)
        self.start = len(out)  # the piece of ``out`` the line's main text begins at
        self.head = ""  # its main text taken before that (its last HEAD characters)
        self.base = base  # the branches of Markup Compatibility around the story
        # per reading of _VARIANTS: its text since the main line it differs
        # in began, or None while it is the main one's
        self.variants: list[list[str] | None] = [None] * len(_VARIANTS)
        self.branches: list[_Branch] = []  # readings taking another branch
        self.aside: _Line | None = None  # the text shown apart from the line
        self.notes: list[str] = []  # attribute texts shown apart (each once)
        self.after: list[str] = []  # the stories inside the line, as read
        self.inline = False  # a story's: drawn in the line around it, as a character
        # a story's main text alone (its lines' ends, the stories inside it
        # too): what an inline one draws in place, without what is read
        # after its lines; None for a line no story
        self.shown: list[str] | None = [] if story else None

    def text(self) -> str:
        """The line's main text so far: its last HEAD characters, cut (_cut)."""
        tail, n, at = [], 0, len(self.out)
        while at > self.start and n <= HEAD:  # from its end: a long line is not copied
            at -= 1
            tail.append(self.out[at])
            n += len(self.out[at])
        if n <= HEAD:
            tail.append(self.head)
        return _cut("".join(reversed(tail)))


# The branch a reading takes of an AlternateContent it takes none of.
NONE = -1


class _Branch:
    """A reading of a line taking another alternative in it than the main
    one (:meth:`TextTarget.alternate`): another branch of an
    mc:AlternateContent, or none of its; an inline drawing's text in place.
    The line's last reading (``picks`` None) takes every alternative's
    last: each AlternateContent's Fallback (none of its Choices where it
    has none), every inline drawing's text in place."""

    __slots__ = ("alike", "differs", "picks", "serial", "text")

    def __init__(self, picks: dict[int, int] | None, serial: int, text: str) -> None:
        self.picks = picks  # per AlternateContent (serial): the branch taken, else the first
        self.serial = serial  # the AlternateContent it was begun in (0: none)
        self.text = [text]
        # whether it read text the main reading did not, or left out text it read
        self.differs = False
        self.alike = 0  # characters it read as the main reading did since it last differed


class _Alternate:
    """An open mc:AlternateContent: the lines read in it (the line it
    begins in, and the text that line shows apart) with the text each
    read before it, and whether it has a Fallback."""

    __slots__ = ("fallback", "lines")

    def __init__(self) -> None:
        self.lines: list[tuple[_Line, str]] = []
        self.fallback = False


class TextTarget:
    """Collects text of ``collect`` elements; ``breaks`` end with a newline,
    ``tabs`` stand for a tab. ``skip(tag, attrib)`` may veto collecting an
    element's text (a spreadsheet cell's shared-string index).

    Text an application shows elsewhere than in the line it is written in
    is read after that line, never inside it: an attribute's (a tooltip,
    a tracked change's author: :meth:`_aside`, each on a line of its own);
    the content of ``asides`` elements (a field's instruction, a phonetic
    guide), a line of its own read as the line is (in each reading,
    below); a ``stories`` element's (a text box anchored in the line, its
    own paragraphs), read as a story of its own, the line around it kept
    whole (:meth:`_enter`). Read where it is written, it split the text
    around it in two: a card number one group of which was a hyperlink
    with a tooltip, or with a text box anchored between two groups, was
    read as two numbers, neither a card's; an author read inside a
    field's instruction split the card number in it.

    A line with changes tracked in it (the content of ``inserted`` and
    ``deleted`` elements) is read as the application shows it by default,
    every change made (inserted text shown, deleted text not), and, aside,
    as it stood before (deleted text shown, inserted text not) and with
    every change marked in place (both) -- a reading other than the main
    one (a variant) is kept only for a line where it differs, copied from
    the line's main text where it first does (:meth:`_text`). Read inline
    alone, a deleted digit inside a card number the application shows
    whole split it: "4111 1111 1111 11191". A variant's lines the main
    line goes on past (a deleted paragraph mark) are read as they end.

    With ``branch_readings``, a line holding an mc:AlternateContent is read
    with its first branch and, after it, with each other, with none, and
    with every Fallback (:meth:`alternate`); a story drawn inline (``inline``)
    is read in place too, in readings of the line (:meth:`_in_place`). The
    other readings of a line are held within MAX_PENDING, each given back
    as it ends or is dropped."""

    # Whether the part may hold HTML's <br> unclosed, as Excel writes legacy
    # VML (a comment box or form control label of several lines): read as
    # <br/>, not refused as malformed XML.
    html_breaks = False
    # Whether a line is read once per branch of Markup Compatibility in it
    # (an application takes one), rather than with every branch inline.
    branch_readings = False
    # Whether the part may hold Office Math, which draws characters of its
    # own beyond its text (vault/intake/_math.py).
    draws_math = False

    def __init__(self, collect: frozenset[str], breaks: frozenset[str] = frozenset(),
                 tabs: frozenset[str] = frozenset(), max_depth: int = 256,
                 skip: Callable[[str, dict[str, str]], bool] | None = None,
                 asides: frozenset[str] = frozenset(), inserted: frozenset[str] = frozenset(),
                 deleted: frozenset[str] = frozenset(),
                 stories: frozenset[str] = frozenset()) -> None:
        self.collect = collect
        self.breaks = breaks
        self.tabs = tabs
        self.max_depth = max_depth
        self.skip = skip
        self.asides = asides
        self.inserted = inserted
        self.deleted = deleted
        self.stories = stories
        self.depth = 0
        self.inside = 0  # depth of the collected element we are in, 0 if none
        self.ins_at = 0  # depth of the ``inserted`` element we are in, 0 if none
        self.del_at = 0  # depth of the ``deleted`` element we are in, 0 if none
        self.readings = EVERY  # the readings the content we are in is shown in
        self.pieces: list[str] = []
        self.size = 0
        self.root = self.line = _Line(self.pieces)  # the part's line, the one read
        # per story or aside entered: its depth and the line it is inside of
        self.outer: list[tuple[int, _Line]] = []
        self.held = 0  # characters held until the part's line ends
        self.varied = False  # whether the line read has another reading
        self.variant_size = 0
        # the branches of Markup Compatibility read (:class:`_Unwrap`): per
        # AlternateContent around, its serial in the part, the branch's index
        # and whether it is the Fallback
        self.branches: tuple[tuple[int, int, bool], ...] = ()
        self.off_main = False  # whether in a branch but the first (of the line's story)
        self.alternates: dict[int, _Alternate] = {}  # those open, by serial
        self.math = MathDrawn() if self.draws_math else None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise Refused("xml-too-deep", f"XML nested deeper than {self.max_depth} elements")
        if tag in self.stories:
            self._enter(_Line([], len(self.branches), story=True))
        elif tag in self.asides:
            if self.line.aside is None:
                self.line.aside = _Line([], len(self.branches))
            self._enter(self.line.aside)
        if not self.ins_at and tag in self.inserted:
            self.ins_at = self.depth
            self._changed()
        if not self.del_at and tag in self.deleted:
            self.del_at = self.depth
            self._changed()
        if not self.inside and tag in self.collect and not (self.skip and self.skip(tag, attrib)):
            self.inside = self.depth
        elif tag in self.tabs:
            self._add("\t")
        if self.math is not None and tag in MATH_TAGS and (drawn := self.math.start(tag, attrib)):
            self._add(drawn)

    def end(self, tag: str) -> None:
        if self.math is not None and tag in MATH_TAGS and (drawn := self.math.end(tag)):
            self._add(drawn)
        if self.inside == self.depth:
            self.inside = 0
        if self.ins_at == self.depth:
            self.ins_at = 0
            self._changed()
        if self.del_at == self.depth:
            self.del_at = 0
            self._changed()
        if self.outer and self.outer[-1][0] == self.depth:
            self._leave()
        self.depth -= 1
        if tag in self.breaks:
            self._line(self._ends(tag))

    def data(self, text: str) -> None:
        if self.inside:
            self._add(text)

    def _enter(self, line: _Line) -> None:
        """Read ``line`` (a story's, or the text a line shows apart) until
        the element entered ends, the line it is inside of kept as it is."""
        self.outer.append((self.depth, self.line))
        self.line = line
        self._vary()

    def _leave(self) -> None:
        line = self.line
        self.line = self.outer.pop()[1]
        if line is not self.line.aside:  # a story: its lines read after the line around it
            if self._pending(line):
                self._within(line, self._line)
            self.line.after.append("".join(line.out))
            shown = "".join(line.shown or ())
            if self.line.shown is not None:  # a text box's content, in its drawing
                self.line.shown.append(shown)
            if line.inline and self.branch_readings:
                self._vary()
                self._in_place(shown)
        self._vary()

    def _in_place(self, text: str) -> None:
        """An inline drawing's text (its lines joined by spaces), drawn
        in the line as a character is: its main text alone (not what is
        read after its lines: a hyperlink's tooltip put "Open" in a card's
        middle) read in place in the line's last reading and in one with
        every inline drawing in place taking the branches we are in, as
        well as after the line.
        Read only after it, "Card 4111 1111 1111 " and a box holding
        "1111" were two numbers, neither a card's."""
        text = " ".join(line for line in text.split("\n") if line)
        if not text.strip():
            return
        if not self.readings & MAIN:
            # a deleted drawing: in place where deleted text is shown, alone.
            # Read in every reading, a deleted box's "0" glued two boxes'
            # groups into "11110".
            self._text(text, self.readings)
            return
        picks = self._picks()
        last = next((r for r in self.line.branches if r.picks is None), None)
        # the reading with every inline drawing before in place too, taking
        # the branches we are in: Word draws them all, and read each alone,
        # a card whose second and fourth groups were two boxes was not read
        boxes = next((r for r in self.line.branches
                      if r.serial == 0 and r.picks == picks and self._takes(r)), None)
        if boxes is None:
            boxes = self._begin_reading(None if last is None else picks, 0, self._so_far())
        readings = [boxes]
        if last is not None and last is not boxes and self._takes(last):
            readings.append(last)
        for reading in readings:
            reading.text.append(text)
            reading.differs = True
            self._grow(len(text))

    def _within(self, line: _Line, act: Callable[[], None]) -> None:
        outer, self.line = self.line, line
        self._vary()
        try:
            act()
        finally:
            self.line = outer
            self._vary()

    def _vary(self) -> None:
        line = self.line
        self.off_main = self.branch_readings and any(
            branch for _, branch, _ in self.branches[line.base:])
        self.varied = self.off_main or bool(line.branches) or any(
            kept is not None for kept in line.variants)

    @staticmethod
    def _pending(line: _Line) -> bool:
        return (line.start < len(line.out) or bool(line.head) or line.aside is not None
                or bool(line.notes or line.after or line.branches)
                or any(kept is not None for kept in line.variants))

    def _changed(self) -> None:
        # Inserted text is not in the text as it stood, deleted text not in
        # it as it stands; text inserted and deleted since is in neither.
        if self.del_at:
            self.readings = MARKUP if self.ins_at else ORIGINAL | MARKUP
        else:
            self.readings = MAIN | MARKUP if self.ins_at else EVERY

    def _ends(self, tag: str) -> int:
        """The readings a ``breaks`` element ends a line in: those of the
        content it is in."""
        return self.readings

    def _aside(self, text: str) -> None:
        """``text``, shown apart from the line it is written in, read on a
        line of its own once that line ends; the same text once a line."""
        if text not in self.line.notes:
            self.line.notes.append(text)
            self._hold(len(text) + 2)

    def _end_aside(self) -> None:
        """The end of a line of the text the line shows apart (a field's
        instruction, a phonetic guide): the next one is a line of its own.
        Joined, a QUOTE field's card number and a later guide's "7" read
        "4111 1111 1111 11117"."""
        aside = self.line.aside
        if aside is not None and self._pending(aside):
            self._within(aside, self._line)

    def _hold(self, n: int) -> None:
        self.held += n
        # Held until the part's line ends, across feeds: bounded as what
        # one feed collects is (see _put), no honest line comes near it.
        if self.held > MAX_PENDING:
            raise Refused("too-large", f"more than {MAX_PENDING} characters of text shown "
                          "apart from one line")

    def _add(self, text: str) -> None:
        """Content text, read in the readings the content is shown in."""
        if self.readings == EVERY and not self.varied:
            self._main(text)  # the busy case: no change tracked in the line
        else:
            self._text(text, self.readings)

    def _mark(self, text: str) -> None:
        """A mark drawn raised beside the text (a note's number): read as a
        group of its own in the main reading, glued to the text around it
        in the others -- a card number ended by a note's reference is read
        whole, and one whose last digit is the note's number too."""
        self._text(f" {text} ", self.readings & MAIN)
        self._text(text, self.readings & ~MAIN)

    def _text(self, text: str, readings: int) -> None:
        """``text`` in ``readings``: the main line's if MAIN is one, and each
        variant's that is one; a variant is begun (the main line so far)
        where the two first differ. In a branch but the first, only the
        readings taking it read its text (in the main reading)."""
        line = self.line
        if readings & MAIN:
            done: list[_Branch] = []
            for reading in line.branches:
                takes = self._takes(reading)
                if takes == self.off_main:
                    reading.differs, reading.alike = True, 0
                if takes:
                    reading.text.append(text)
                    self._grow(len(text))
                    if not self.off_main:
                        reading.alike += len(text)
                        if reading.alike > WHOLE:
                            done.append(reading)
            for reading in done:
                self._end_reading(reading)
        if self.off_main:
            return
        for i, bit in enumerate(_VARIANTS):
            kept = line.variants[i]
            if kept is None:
                if bool(readings & bit) == bool(readings & MAIN):
                    continue
                kept = self._begin(i)
            if readings & bit:
                kept.append(text)
                self._grow(len(text))
        if readings & MAIN:
            self._main(text)

    def _main(self, text: str) -> None:
        """``text`` of the main line."""
        self._put(text)
        if self.line.shown is not None:
            self.line.shown.append(text)

    def _takes(self, reading: _Branch) -> bool:
        """Whether ``reading`` takes the branches we are in (the first of
        every AlternateContent it picks none of; the last reading, each
        Fallback)."""
        around = self.branches[self.line.base:]
        if reading.picks is None:
            return all(fallback for _, _, fallback in around)
        return all(reading.picks.get(serial, 0) == branch for serial, branch, _ in around)

    def _picks(self) -> dict[int, int]:
        """The branches we are in that are not the first, per AlternateContent."""
        return {serial: branch for serial, branch, _ in self.branches[self.line.base:] if branch}

    def _begin_reading(self, picks: dict[int, int] | None, serial: int, before: str) -> _Branch:
        reading = _Branch(picks, serial, before)
        self.line.branches.append(reading)
        self._grow(len(before))
        return reading

    def _end_reading(self, reading: _Branch) -> None:
        """``reading``, alike the main one for more than WHOLE characters
        since it last differed: read now, before the main line goes on --
        no rule window or candidate reaches back to where it differs.
        Carried to the line's end, each of a long paragraph's emoji (an
        AlternateContent each, its Fallback the character) copied all the
        line after it, and an honest paragraph of 350 was refused."""
        self.line.branches.remove(reading)
        self._drop(reading)
        if reading.differs:
            self._before("".join(reading.text) + "\n")
        self._vary()

    def _drop(self, reading: _Branch) -> None:
        self.variant_size -= sum(map(len, reading.text))  # given back: the bound is a line's

    def _begin(self, i: int) -> list[str]:
        """Variant ``i``, begun as the main line's text so far: its last
        HEAD characters (_cut), the part around any change a rule reads
        -- a line of millions of characters is not copied."""
        before = self.line.text()
        kept = [before]
        self.line.variants[i] = kept
        self.varied = True
        self._grow(len(before))
        return kept

    def _grow(self, n: int) -> None:
        # A variant is held until its line ends, across feeds: bounded as
        # text read aside is (see _hold), its size given back as it ends or
        # is dropped -- kept, an honest report with a text box in each
        # paragraph outgrew the bound.
        self.variant_size += n
        if self.variant_size > MAX_PENDING:
            raise Refused("too-large", f"more than {MAX_PENDING} characters of other readings "
                          "of one line")

    def alternate(self, serial: int, begins: bool) -> None:
        """An mc:AlternateContent begins or ends (:class:`_Unwrap`). An
        application takes one of its branches (ISO/IEC 29500-3 §10.2.1:
        the first Choice whose namespaces it understands, else the
        Fallback, else none); which, intake does not know. The first is
        read in the line (the main reading); each other, and none of them,
        in a reading of the line of its own; each AlternateContent's
        Fallback (or none of its Choices), with every other's, in the
        line's last reading -- each kept where it differs from the main
        one, read after it (:meth:`_end_branches`). Read inline, both
        branches doubled the group written in each: "4111 1111 11111111
        1111"; read only where another branch held text, a Choice Word
        skips hid the card number around it."""
        if not self.branch_readings:
            return
        if begins:
            alternate = self.alternates[serial] = _Alternate()
            line = self.line
            for reader in (line, line.aside):  # the line, and the text it shows apart
                if reader is not None:
                    self._within(reader, lambda: self._begin_alternate(serial, alternate))
            return
        alternate = self.alternates.pop(serial)
        for line, _ in alternate.lines:
            kept = []
            for reading in line.branches:
                if reading.serial == serial and (not reading.differs or (
                        alternate.fallback and reading.picks and reading.picks[serial] == NONE)):
                    self._drop(reading)  # the main one's, or none of a Fallback's branches
                else:
                    kept.append(reading)
            line.branches = kept
        self._vary()

    def _begin_alternate(self, serial: int, alternate: _Alternate) -> None:
        """The readings of the line begun where an AlternateContent begins:
        taking none of its branches, and the line's last (if not begun)."""
        before = self._so_far()
        alternate.lines.append((self.line, before))
        self._begin_reading(self._picks() | {serial: NONE}, serial, before)
        if all(reading.picks is not None for reading in self.line.branches):
            self._begin_reading(None, serial, before)

    def _so_far(self) -> str:
        """The text so far of the reading of the line the content we are in
        is read in (its last HEAD characters, cut)."""
        if not self.off_main:
            return self.line.text()
        taking = next((r for r in self.line.branches if self._takes(r)), None)
        return _cut("".join(taking.text)) if taking is not None else ""

    def enter_branches(self, branches: tuple[tuple[int, int, bool], ...], entered: bool) -> None:
        """The branches we are in (per AlternateContent around: its serial,
        the branch's index and whether it is the Fallback), one ``entered``
        or left; a reading begun for a branch entered but the first, in
        each line read in its AlternateContent."""
        self.branches = branches
        alternate = self.alternates.get(branches[-1][0]) if branches and entered else None
        if alternate is not None:
            serial, branch, fallback = branches[-1]
            alternate.fallback |= fallback
            for line, before in alternate.lines if branch else ():
                self._within(line, partial(self._begin_branch, serial, before))
        self._vary()

    def _begin_branch(self, serial: int, before: str) -> None:
        self._begin_reading(self._picks(), serial, before)

    def _line(self, readings: int = EVERY) -> None:
        """The end of a line (a paragraph, a line break) in ``readings``.
        Where the main line ends, each variant that ends there too and the
        text held aside are read after it, on lines of their own; a variant
        that goes on (the break inserted since) is read where it ends, one
        that ends where the main line goes on (the break deleted since)
        read before the main line, as it ends (:meth:`_before`)."""
        line = self.line
        if self.off_main:  # a break in a branch but the first: in the readings taking it
            if readings & MAIN:
                self._text("\n", MAIN)
            return
        ended: list[str] = []
        for i, bit in enumerate(_VARIANTS):
            kept = line.variants[i]
            if kept is None and bool(readings & bit) != bool(readings & MAIN):
                kept = self._begin(i)
            if kept is not None and readings & bit and not readings & MAIN:
                kept.append("\n")
                text = "".join(kept)
                kept.clear()
                self.variant_size -= len(text) - 1
                if text not in ended:
                    ended.append(text)
        if ended:
            self._before("".join(ended))
        if readings & MAIN:
            self._main("\n")
            self._end_variants(readings)
            self._end_branches()
            self._after()
            line.start, line.head = len(line.out), ""
            for alternate in self.alternates.values():  # begun anew
                alternate.lines = [(at, "" if at is line else before)
                                   for at, before in alternate.lines]
            if line is self.root:
                self.held = 0
            self._vary()

    def _before(self, text: str) -> None:
        """A variant's finished lines, read before the main line they end
        in as it goes on: held to its end, a deletion of a long past
        version (its paragraph marks deleted too) outgrew every bound. The
        main line, if part of it was taken already, goes on from its last
        characters (copied, cut as _cut cuts)."""
        line = self.line
        pieces = [text]
        if line.head:
            pieces = ["\n" + text, _cut(line.head)]
            line.head = ""
        line.out[line.start:line.start] = pieces
        line.start += 1  # at the main line's text (its last characters copied)
        self._count(sum(map(len, pieces)))

    def _end_variants(self, readings: int) -> None:
        """Each variant that ends with the main line (in ``readings``) read
        after it; two alike once."""
        ended: list[str] = []
        for i, bit in enumerate(_VARIANTS):
            kept = self.line.variants[i]
            if kept is not None and readings & bit:
                self.line.variants[i] = None
                text = "".join(kept)
                self.variant_size -= len(text)
                if (text := text + "\n") not in ended:
                    ended.append(text)
        if ended:
            self._put("".join(ended))

    def _end_branches(self) -> None:
        """Each reading of the line taking another branch, read after it;
        two alike once. One whose AlternateContent is still open goes on,
        begun anew (a branch of whole paragraphs)."""
        ended: list[str] = []
        going: list[_Branch] = []
        for reading in self.line.branches:
            text = "".join(reading.text)
            self.variant_size -= len(text)
            if (text := text + "\n") not in ended:
                ended.append(text)
            if reading.serial in self.alternates:
                reading.text = [""]
                going.append(reading)
        self.line.branches = going
        if ended:
            self._put("".join(ended))

    def _after(self) -> None:
        """What is read after the line that just ended: the text it shows
        apart (its own line, in its readings), attribute texts, the
        stories anchored in it."""
        line = self.line
        if (aside := line.aside) is not None:
            line.aside = None
            if self._pending(aside):
                self._within(aside, self._line)
            self._put("".join(aside.out))
        if line.notes:
            self._put("".join(f"{note}\n" for note in line.notes))
            line.notes.clear()
        if line.after:
            self._put("".join(line.after))
            line.after.clear()

    def _put(self, text: str) -> None:
        self.line.out.append(text)
        self._count(len(text))

    def _count(self, n: int) -> None:
        if self.line.out is not self.pieces:  # a story's or an aside's: held
            self._hold(n)
            return
        self.size += n
        # What one feed of CHUNK bytes collects is looked at only after it:
        # text read out of attributes, list labels and number formats
        # rendered into cells can outgrow the bytes many times over, and a
        # planted part could fill the memory (or outlast every budget)
        # before that. No honest part comes near this.
        if self.size > MAX_PENDING:
            raise Refused("too-large", f"more than {MAX_PENDING} characters of text from "
                          f"{CHUNK} bytes of XML")

    def take(self) -> str:
        root = self.root
        if root.start < len(self.pieces):  # the line goes on: its end kept for _begin
            root.head = (root.head + "".join(self.pieces[root.start:]))[-HEAD:]
        out = "".join(self.pieces)
        self.pieces.clear()
        self.size = 0
        root.start = 0
        return out

    def close(self) -> None:
        root = self.root
        if root.aside is not None or root.notes or root.after or root.branches or any(
                kept is not None for kept in root.variants):  # the part ended inside a line
            self._line()

    def next_pass(self) -> TextTarget | None:
        """A target to read the same part with again, once this one is
        done (a sheet's cells with formats met only after them), or None."""
        return None


_MC_URI = "http://schemas.openxmlformats.org/markup-compatibility/2006"
MC = "{" + _MC_URI + "}"
_ALTERNATE = f"{MC}AlternateContent"
_FALLBACK = f"{MC}Fallback"
_BRANCHES = frozenset((f"{MC}Choice", _FALLBACK))
_PROCESS_CONTENT = f"{MC}ProcessContent"
_CHOICE = f"{MC}Choice"
_IGNORABLE = f"{MC}Ignorable"

# The namespaces some version of Office understands, by how their names
# begin: ISO/IEC 29500's own (transitional, strict: w, a, p, m, ...), the
# VML family's (v, o, w10, x, pvml: ISO/IEC 29500-4 §14) and Microsoft's
# extensions, all under one stem ([MS-DOCX] §2.2, [MS-ODRAWXML] §2.2,
# [MS-PPTX] §2.2, [MS-XLSX] §2.2: w14, w15, w16se, w16cid, w16du, wps, wpg,
# wpc, wpi, wp14, a14, a15, a16, p14, p15, x14, x14ac, x15, c14, c15, c16,
# cx1 ... cx8, ...). By stem, not name by name: each Office release adds
# a few, and a Choice taken for one no Office understands (dropped, below)
# where a newer Office does take it would hide its text.
_OFFICE_NAMESPACES = (
    "http://schemas.openxmlformats.org/",
    "http://purl.oclc.org/ooxml/",
    "urn:schemas-microsoft-com:",
    "http://schemas.microsoft.com/office/",
)


class Namespaces:
    """The namespace each prefix is bound to where the parser is (each
    declaration in scope until its element ends): Markup Compatibility's
    Requires names namespaces by prefix (ISO/IEC 29500-3 §7.2)."""

    def __init__(self) -> None:
        self.bound: dict[str, list[str]] = {}

    def declared(self, prefix: str | None, uri: str) -> None:
        self.bound.setdefault(prefix or "", []).append(uri)

    def ended(self, prefix: str | None) -> None:
        if uris := self.bound.get(prefix or ""):
            uris.pop()

    def uris(self, prefixes: str) -> frozenset[str]:
        """The namespaces ``prefixes`` are bound to (those bound)."""
        return frozenset(uris[-1] for prefix in prefixes.split()
                         if (uris := self.bound.get(prefix)))

    def unknown_to_office(self, prefixes: str) -> bool:
        """Whether one of ``prefixes`` (a Requires) is bound to a namespace
        no version of Office understands. An unbound one is not: Office
        refuses such a part, intake reads it as any."""
        for prefix in prefixes.split():
            uris = self.bound.get(prefix)
            if uris and not uris[-1].startswith(_OFFICE_NAMESPACES):
                return True
        return False


class _Unwrap:
    """Markup Compatibility (ISO/IEC 29500-3) processed as Office does
    before anything else reads a part: an ``mc:AlternateContent`` and its
    ``mc:Choice`` and ``mc:Fallback`` are no elements of their own, the
    content of each branch stands where the AlternateContent is -- a
    cell ``c`` or a chart's ``c:date1904`` in a Choice is a child of the
    AlternateContent's parent. A Choice requiring a namespace no Office
    understands is never taken and never read (:meth:`_drop`); every other
    branch is read (which one an application takes depends on what its
    version understands) -- inline, or, for a target
    reading lines (``branch_readings``), the first inline and each other
    (none, every Fallback) in a reading of the line of its own (:meth:`TextTarget.alternate`,
    told where each AlternateContent begins and ends); ``target.branches`` tells
    a reader whose structure no branch may change (a cell style, whose
    index would shift with a branch taken or not) that it is in one: per
    AlternateContent around, its serial and the branch's index.

    An element of an ``mc:Ignorable`` namespace Office understands is
    read as an element; of one it does not, for a target reading lines,
    in a reading of its own (:meth:`_branch_of_its_own`), else as an
    element (Office drops it and its content: intake reads more); but
    one named by ``mc:ProcessContent`` stands for its content in Office --
    a cell in such a wrapper is a cell of its row, a cell style one of the
    list. Office writes none; a part declaring one is refused as not
    inspected whole, ``unsupported``, rather than its prefixes resolved
    against the namespaces Office understands, which intake does not
    know."""

    def __init__(self, target: TextTarget, namespaces: Namespaces | None = None) -> None:
        self.target = target
        self.namespaces = namespaces or Namespaces()
        # the depth of the Choice no Office takes we are in (0: none), and
        # the collecting the target was in at it
        self.dropped = 0
        self.inside = 0
        # per element naming mc:Ignorable namespaces no Office understands:
        # its place in the stack and those namespaces
        self.ignorable: list[tuple[int, frozenset[str]]] = []
        # per element opened since the unwrapping began: "" passed on, or
        # what of MCE it is (those opened before end past an empty stack)
        self.stack: list[str] = []
        # per open AlternateContent: its serial, its branch read last, whether
        # in it, whether that branch is its Fallback
        self.alternates: list[list[int]] = []
        self.serial = 0
        # text is the parser's busiest event and Markup Compatibility has
        # nothing to do with it: handed to the target without a call here
        self.data = target.data

    def _enter(self, inside: int) -> None:
        self.alternates[-1][2] = inside
        self.target.enter_branches(tuple((serial, branch, bool(fallback)) for serial, branch,
                                         inside, fallback in self.alternates if inside),
                                   bool(inside))

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if len(self.stack) >= self.target.max_depth:
            raise Refused("xml-too-deep", f"XML nested deeper than {self.target.max_depth} "
                          "elements")
        if self.dropped:
            self.stack.append("dropped")
            return
        if (tag == _CHOICE and self.stack and self.stack[-1] == "alternate"
                and self.namespaces.unknown_to_office(attrib.get("Requires", ""))):
            self._drop()
            return
        if ignorable := attrib.get(_IGNORABLE):
            unknown = frozenset(uri for uri in self.namespaces.uris(ignorable)
                                if not uri.startswith(_OFFICE_NAMESPACES))
            if unknown:
                self.ignorable.append((len(self.stack) + 1, unknown))
        if _PROCESS_CONTENT in attrib:
            raise Refused("unsupported", "Markup Compatibility's ProcessContent (elements "
                          "Office reads as their content)")
        if tag == _ALTERNATE:
            self.serial += 1
            self.alternates.append([self.serial, -1, 0, 0])
            self.stack.append("alternate")
            self.target.alternate(self.serial, True)
        elif tag in _BRANCHES and self.stack and self.stack[-1] == "alternate":
            self.alternates[-1][1] += 1
            self.alternates[-1][3] = int(tag == _FALLBACK)
            self._enter(1)
            self.stack.append("branch")
        elif self.target.branch_readings and self._ignored(tag):
            self._branch_of_its_own()
            self.target.start(tag, attrib)
        else:
            self.stack.append("")
            self.target.start(tag, attrib)

    def _ignored(self, tag: str) -> bool:
        """Whether ``tag`` is of an mc:Ignorable namespace no Office
        understands."""
        if not self.ignorable or not tag.startswith("{"):
            return False
        uri = tag[1:tag.find("}")]
        return any(uri in uris for _, uris in self.ignorable)

    def _branch_of_its_own(self) -> None:
        """An element of an mc:Ignorable namespace no Office understands:
        Office drops it with its content (ISO/IEC 29500-3 §10.1.1), so it is
        read as the second branch of an AlternateContent whose first is
        empty -- the line without it the main reading, with it another.
        Read inline, a digit in one Word never draws split the card number
        around it: "4111 1111 01111 1111"."""
        self.serial += 1
        self.alternates.append([self.serial, 0, 0, 1])
        self.stack.append("ignored")
        self.target.alternate(self.serial, True)
        self._enter(1)  # the empty branch, as a Fallback: the line's last reading too
        self._enter(0)
        self.alternates[-1][1:] = [1, 0, 0]
        self._enter(1)

    def _drop(self) -> None:
        """A Choice requiring a namespace no Office understands: never
        taken (ISO/IEC 29500-3 §10.2.1), read in no reading -- the next
        Choice, or the Fallback, is the AlternateContent's first branch.
        Read as a branch Office may take, the Fallbacks of two such around
        a Choice Word takes were never read together with it: "4111 [1111]
        [1111] [1111]", one of each reading but none whole. Its text is
        not collected (text is handed to the target directly)."""
        self.stack.append("dropped")
        self.dropped = len(self.stack)
        self.inside, self.target.inside = self.target.inside, 0

    def end(self, tag: str) -> None:
        if self.dropped:
            if len(self.stack) == self.dropped:
                self.dropped = 0
                self.target.inside = self.inside
            self.stack.pop()
            return
        if self.ignorable and self.ignorable[-1][0] == len(self.stack):
            self.ignorable.pop()
        kind = self.stack.pop() if self.stack else ""
        if not kind:
            self.target.end(tag)
        elif kind == "ignored":
            self.target.end(tag)
            self._enter(0)
            self.target.alternate(self.alternates.pop()[0], False)
        elif kind == "branch":
            self._enter(0)
        else:
            self.target.alternate(self.alternates.pop()[0], False)

    def close(self) -> None:
        self.target.close()


def _parser(target: object) -> DefusedXMLParser:
    return DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True,
                            forbid_external=True)


def _feed(parser: DefusedXMLParser, data: bytes | None, part: str) -> None:
    try:
        if data is None:
            parser.close()
        else:
            parser.feed(data)
    except DefusedXmlException:
        raise Refused("xml-dtd", f"{part}: XML with a DTD or entity declarations (refused: "
                      "entities could expand without bound or fetch external data)") from None
    except ParseError as e:
        raise Refused("malformed", f"{part}: malformed XML (line {e.position[0]})") from None
    except RecursionError:
        raise Refused("xml-too-deep", f"{part}: XML nested too deeply") from None


_OPEN_BR = re.compile(rb"<([bB][rR])(\s*)>")
_BR_TAIL = 16  # bytes of a chunk's end kept back while they may begin a <br >


def _closed_breaks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` with every ``<br>`` (any case, spaces before ``>``) written
    ``<br/>``; a tag cut between two chunks is mended whole."""
    held = b""
    for chunk in chunks:
        data = held + chunk
        cut = data.rfind(b"<")
        keep = cut >= 0 and b">" not in data[cut:] and len(data) - cut <= _BR_TAIL
        data, held = (data[:cut], data[cut:]) if keep else (data, b"")
        if data:  # an empty chunk would end the part for the parser
            yield _OPEN_BR.sub(rb"<\1\2/>", data)
    if held:
        yield _OPEN_BR.sub(rb"<\1\2/>", held)


def iter_text(stream: BinaryIO, target: TextTarget, part: str, meter: Meter,
              flush: int = CHUNK) -> Iterator[str]:
    """Feed ``stream`` through the parser, yielding collected text in pieces
    of about ``flush`` characters. The caller may stop early (a budget)."""
    parser = _parser(target)
    chunks: Iterator[bytes] = iter(lambda: stream.read(CHUNK), b"")
    if target.html_breaks:
        chunks = _closed_breaks(chunks)
    namespaces = Namespaces()

    def declared(prefix: str | None, uri: str) -> None:
        # Markup Compatibility's elements and attributes exist only where
        # its namespace is declared, and expat reports a declaration (after
        # decoding, in any encoding) before the element that carries it:
        # from there on the part is read through the unwrapping, which a
        # part without it never pays for.
        namespaces.declared(prefix, uri)
        if uri == _MC_URI and parser.target is target:
            parser.target = _Unwrap(target, namespaces)

    parser.parser.StartNamespaceDeclHandler = declared
    parser.parser.EndNamespaceDeclHandler = namespaces.ended
    while True:
        data = next(chunks, b"")
        _feed(parser, data or None, part)
        if target.size >= flush or (not data and target.size):
            yield target.take()
        if not data:
            return
        if meter.out_of_time():
            return


class _Collect:
    """A tiny tree-less target for small metadata parts: (tag, attrib, text)
    for every element, text stripped."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.stack: list[tuple[str, dict[str, str], list[str]]] = []
        self.items: list[tuple[str, dict[str, str], str, tuple[str, ...]]] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if len(self.stack) >= self.max_depth:
            raise Refused("xml-too-deep", f"XML nested deeper than {self.max_depth} elements")
        self.stack.append((tag, dict(attrib), []))

    def end(self, tag: str) -> None:
        tag, attrib, text = self.stack.pop()
        parents = tuple(t for t, _, _ in self.stack)
        self.items.append((tag, attrib, "".join(text).strip(), parents))

    def data(self, text: str) -> None:
        if self.stack:
            self.stack[-1][2].append(text)

    def close(self) -> None:
        return None


def parse_small(stream: BinaryIO, part: str, limit: int, max_depth: int
                ) -> list[tuple[str, dict[str, str], str, tuple[str, ...]]]:
    """Every element of a small part: (tag, attributes, text, ancestors' tags),
    in document order of their ends. Refused past ``limit`` bytes."""
    target = _Collect(max_depth)
    parser = _parser(target)
    read = 0
    while data := stream.read(CHUNK):
        read += len(data)
        if read > limit:
            raise Refused("too-large", f"{part} is larger than {limit} bytes")
        _feed(parser, data, part)
    _feed(parser, None, part)
    return target.items
