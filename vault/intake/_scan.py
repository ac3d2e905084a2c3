"""Content rules run over extracted text, chunk by chunk (docs/POLICY.md §11.3).

Text arrives in pieces of a part (a page, a sheet); it is NFKC-normalised
and scanned in windows of :data:`WINDOW` characters that overlap by
:data:`OVERLAP`, so a match across two pieces is still found and none is
counted twice. Regular expressions see one line (or :data:`LINE_WINDOW`
characters of a long line) at a time. Only rule ids, parts and offsets are
kept: the matched text is dropped as soon as a detector has validated it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from vault.intake._detectors import DETECTORS, MAX_MATCH, Finder
from vault.intake._model import Match, Meter
from vault.intake._patterns import (
    LINE_WINDOW,
    compile_keywords,
    compile_regex,
    held_back,
    last_seen,
    normalise,
)

__all__ = ["ContentRule", "Scanner", "builtin_rules", "near_digits"]

WINDOW = 64 * 1024
OVERLAP = 1024  # longer than any phrase, detector candidate or regex window
_LINES = re.compile(rf"[^\n]{{1,{LINE_WINDOW}}}")
_REACH = MAX_MATCH + 4  # past a match's lookbehind and lookahead, with room
# b"1" for an ASCII digit, b"0" for any other byte
_DIGIT_MARKS = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_DIGIT_RUN = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class ContentRule:
    """One rule to look for: exactly one of a built-in ``detector`` name,
    keyword ``phrases``, or a ``regex`` (vetted by compile)."""

    id: str
    detector: str | None = None
    phrases: tuple[str, ...] = ()
    regex: str | None = None


def builtin_rules() -> tuple[ContentRule, ...]:
    """Every built-in detector, each as a rule named after it."""
    return tuple(ContentRule(name, detector=name) for name in DETECTORS)


def near_digits(text: str) -> list[tuple[int, int]] | None:
    """The stretches ``(start, end)`` of ``text`` that hold every match a
    built-in detector can make in it, or None when it must be read whole.

    Every detector match holds a digit and is at most MAX_MATCH characters
    long (vault/intake/_detectors.py), so none lies more than _REACH
    characters from a digit, and none crosses from one stretch into the
    next. The text is normalised (every script's digits are ASCII digits
    by then): in ASCII text the digits are marked in one
    ``bytes.translate`` and their runs found with ``bytes.find``, in other
    text their runs are found by a pattern. Text whose stretches would
    cover half of it is read whole."""
    spans: list[tuple[int, int]] = []
    covered = 0
    size = len(text)
    for i, j in _digit_runs(text):
        start, end = max(0, i - _REACH), min(size, j + _REACH)  # digits i .. j - 1
        if spans and start <= spans[-1][1]:
            covered += end - spans[-1][1]
            spans[-1] = (spans[-1][0], end)
        else:
            covered += end - start
            spans.append((start, end))
        if 2 * covered > size:
            return None
    return spans


def _digit_runs(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each run of ASCII digits in ``text``."""
    if not text.isascii():
        for m in _DIGIT_RUN.finditer(text):
            yield m.span()
        return
    marks = text.encode("ascii").translate(_DIGIT_MARKS)
    find = marks.find
    i = find(b"1")
    while i >= 0:
        j = find(b"0", i)
        if j < 0:
            j = len(marks)
        yield i, j
        i = find(b"1", j)


def _in_spans(find: Finder, text: str, spans: list[tuple[int, int]] | None) -> Iterator[int]:
    if spans is None:
        yield from find(text, 0, None)
        return
    for start, end in spans:
        yield from find(text, start, end)


@functools.lru_cache(maxsize=256)  # rules are frozen; a batch of files shares them
def _finder(rule: ContentRule) -> Callable[[str], Iterator[int]]:
    """The finder of a keyword or regex rule (a detector is read near digits:
    see Scanner)."""
    if rule.phrases:
        pattern = compile_keywords(rule.phrases)
        # A quick test first: no phrase's first word anywhere, no search.
        firsts = {normalise(p).split()[0].casefold() for p in rule.phrases}

        def phrases(text: str) -> Iterator[int]:
            folded = text.casefold()
            if any(word in folded for word in firsts):
                yield from (m.start() for m in pattern.finditer(text))
        return phrases
    if rule.regex is not None:
        rx = compile_regex(rule.regex)

        def lines(text: str) -> Iterator[int]:
            for line in _LINES.finditer(text):
                m = rx.search(text, line.start(), line.end())
                while m is not None:
                    yield m.start()
                    nxt = m.end() if m.end() > m.start() else m.end() + 1
                    m = rx.search(text, nxt, line.end()) if nxt < line.end() else None
        return lines
    raise ValueError(f"content rule {rule.id} has nothing to look for")


class Scanner:
    """Scans the text of one file's parts against a set of rules."""

    def __init__(self, rules: Iterable[ContentRule], meter: Meter) -> None:
        # Each rule: its id, and its detector (read near digits only, see
        # near_digits) or its finder.
        self.rules: list[tuple[str, Finder | None, Callable[[str], Iterator[int]] | None]] = [
            (r.id, DETECTORS[r.detector][0], None) if r.detector is not None
            else (r.id, None, _finder(r)) for r in rules]
        self.meter = meter
        self.matches: list[Match] = []
        self.counts: dict[str, int] = {rid: 0 for rid, _, _ in self.rules}
        self._kept: dict[str, int] = {}
        self.parts: list[str] = []
        self._part = ""
        self._pending = ""
        self._held = ""  # the end of the text fed, not normalised yet (held_back)
        self._before = ""  # the last character normalised, of the text fed
        self._base = 0
        self._part_chars = 0

    def start(self, part: str) -> None:
        self.parts.append(part)
        self._part, self._pending, self._base, self._part_chars = part, "", 0, 0
        self._held = self._before = ""

    def feed(self, text: str) -> bool:
        """Add text of the current part; False once a budget says stop."""
        budget = self.meter.budget
        room = min(budget.max_part_chars - self._part_chars, budget.max_chars - self.meter.chars)
        full = len(text) > room
        if full:
            text = text[:max(room, 0)]
            self.meter.truncate(
                f"text past {budget.max_part_chars} characters of {self._part} was not inspected"
                if budget.max_part_chars - self._part_chars <= budget.max_chars - self.meter.chars
                else f"text past {budget.max_chars} characters in all was not inspected")
        self._part_chars += len(text)
        self.meter.chars += len(text)
        head, self._held = held_back(self._held + text)
        self._pending += normalise(head, self._before)
        self._before = last_seen(head) or self._before
        while len(self._pending) >= WINDOW:
            self._scan(final=False)
        return not full and not self.meter.out_of_time()

    def end(self) -> None:
        """The current part is complete: scan what remains of it."""
        self._pending += normalise(self._held, self._before)
        self._held = self._before = ""
        if self._pending:
            self._scan(final=True)
        self._pending = ""

    def _scan(self, *, final: bool) -> None:
        window = self._pending
        limit = len(window)
        if not final:
            limit = len(window) - OVERLAP
            line_start = window.rfind("\n", limit - 4 * LINE_WINDOW, limit) + 1
            if line_start > 0:
                limit = line_start
        spans: list[tuple[int, int]] | None = None
        looked = False  # for the digits of this window (once, and only for a detector)
        for rid, detector, find in self.rules:
            if detector is not None:
                if not looked:
                    spans, looked = near_digits(window), True
                found = _in_spans(detector, window, spans)
            else:
                assert find is not None
                found = find(window)
            for offset in found:
                if offset >= limit:
                    break
                self._hit(rid, self._base + offset)
        self._pending = window[limit:]
        self._base += limit

    def _hit(self, rid: str, offset: int) -> None:
        self.counts[rid] += 1
        kept = self._kept.get(rid, 0)
        if kept < self.meter.budget.max_positions:
            self._kept[rid] = kept + 1
            self.matches.append(Match(rid, self._part, offset))
