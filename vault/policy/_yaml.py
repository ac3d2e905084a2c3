"""A strict YAML reader for policy files (docs/POLICY.md §2).

PyYAML's own loaders turn ``no`` into ``False``, ``0777`` into ``511`` and
``2025-01-01`` into a date, silently keep the last of two duplicate keys and
expand aliases without bound. A policy is a security control, so this reader
uses only PyYAML's scanner and parser and composes the events itself into a
small tree of :class:`Node` objects in which every scalar stays the exact text
written. Types are resolved later, by the schema, only where it asks for one.

Refused, each with a position: duplicate keys, anchors and aliases (never
expanded, so a billion-laughs document costs nothing; each alias name is
reported at its first use), explicit tags,
directives, complex keys, a second document, tab characters and other
control characters, nesting deeper than :data:`MAX_DEPTH`, files larger than
:data:`MAX_POLICY_BYTES` and bytes that are not UTF-8. Problems are collected,
not raised one at a time; a YAML syntax error ends parsing, but the problems
found before it are kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.scanner import Scanner

from vault.errors import PolicyProblem

# docs/POLICY.md §2.1: limits. 256 KiB holds a policy with well over a
# thousand users, and the pure-Python parser reads it in a fraction of a second.
MAX_POLICY_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_PROBLEMS = 100

# YAML 1.1 printable characters (what PyYAML's reader accepts), minus TAB.
_NOT_PRINTABLE = re.compile("[^\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_TOO_DEEP = f"nesting deeper than {MAX_DEPTH} levels; expected a flatter document"

NodeKind = Literal["scalar", "seq", "map", "invalid"]


@dataclass(slots=True)
class Node:
    """One YAML node. ``line`` and ``column`` are 1-based (None for data that
    did not come from a file); ``path`` locates the node for such data.

    A scalar's ``value`` is its exact text; ``plain`` says it was unquoted
    (an unquoted empty scalar means "no value"). A sequence holds a list of
    nodes, a mapping a list of (key, value) pairs in file order. An
    ``invalid`` node stands in for something already reported (an alias, a
    too-deep subtree); the schema skips it silently.
    """

    kind: NodeKind
    value: str | list[Node] | list[tuple[Node, Node]]
    line: int | None = None
    column: int | None = None
    plain: bool = False
    path: str = ""

    @property
    def text(self) -> str:
        return self.value if isinstance(self.value, str) else ""

    @property
    def items(self) -> list[Node]:
        v = self.value
        return v if self.kind == "seq" and isinstance(v, list) else []  # type: ignore[return-value]

    @property
    def pairs(self) -> list[tuple[Node, Node]]:
        v = self.value
        return v if self.kind == "map" and isinstance(v, list) else []  # type: ignore[return-value]

    def is_null(self) -> bool:
        return self.kind == "scalar" and self.plain and self.value == ""


@dataclass
class Problems:
    """Collects :class:`PolicyProblem` s for one file, at most MAX_PROBLEMS."""

    file: str
    items: list[PolicyProblem] = field(default_factory=list)
    truncated: bool = False
    #: the policy is one the vault already installed (its log holds it): a
    #: text value is not refused for the characters it holds, which a newer
    #: reader may refuse where an older one did not (docs/POLICY.md §2.3)
    installed: bool = False

    def add(
        self, line: int | None, column: int | None, message: str, hint: str | None = None
    ) -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.truncated = True
            return
        self.items.append(PolicyProblem(self.file, line, column, message, hint))

    def at(self, node: Node, message: str, hint: str | None = None) -> None:
        if node.line is None and node.path:
            message = f"at {node.path}: {message}"
        self.add(node.line, node.column, message, hint)

    def finish(self) -> list[PolicyProblem]:
        out = sorted(self.items, key=lambda p: (p.line or 0, p.column or 0))
        if self.truncated:
            out.append(
                PolicyProblem(
                    self.file, None, None,
                    f"too many problems; stopped after {MAX_PROBLEMS}",
                    "fix these first, then check again",
                )
            )
        return out


def decode(data: bytes, problems: Problems) -> str | None:
    """Check size and encoding of a policy file's bytes; return the text."""
    if len(data) > MAX_POLICY_BYTES:
        problems.add(
            1, 1,
            f"file is {len(data)} bytes; expected at most {MAX_POLICY_BYTES} bytes",
            "a policy this large is probably not a policy; split the data out",
        )
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = len(data[data.rfind(b"\n", 0, e.start) + 1 : e.start].decode("utf-8", "replace"))
        problems.add(line, column + 1, "invalid UTF-8; expected UTF-8 text",
                     "save the file as UTF-8")
        return None
    return text.removeprefix("\ufeff")


def compose(text: str, problems: Problems) -> Node | None:
    """Parse one YAML document into a :class:`Node` tree, collecting problems.

    Returns None when no tree could be built (empty file or syntax error).
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        problems.add(1, 1, f"text is larger than {MAX_POLICY_BYTES} bytes; expected at most that",
                     "a policy this large is probably not a policy; split the data out")
        return None
    text, tab_lines = _blank_bad_characters(text, problems)
    if not problems.installed:
        text = _blank_invisible_characters(text, problems)
    events = _EventSource(text)
    try:
        return _StrictComposer(events, problems).compose_stream()
    except _TooDeep as e:
        assert e.problem_mark is not None
        problems.add(e.problem_mark.line + 1, e.problem_mark.column + 1, _TOO_DEEP)
        return None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        # A tab used for indentation makes a syntax error on its line; the tab
        # is already reported and is the thing to fix.
        if line not in tab_lines:
            problems.add(line, col, f"YAML syntax error: {e.problem or e.context}",
                         "check indentation and quoting here; quote values containing ': ' "
                         "or '#'")
        return None
    finally:
        events.dispose()


def _blank_bad_characters(text: str, problems: Problems) -> tuple[str, set[int]]:
    """Report every tab and control character, then return the text with a
    space in each one's place (so that one stray tab does not hide every
    later problem) and the numbers of the lines that held a tab."""
    if not _NOT_PRINTABLE.search(text):
        return text, set()
    tab_lines: set[int] = set()
    for lineno, line in enumerate(text.split("\n"), 1):
        for m in _NOT_PRINTABLE.finditer(line):
            if m.group() == "\t":
                tab_lines.add(lineno)
                problems.add(lineno, m.start() + 1, "tab character; expected spaces",
                             "indent with spaces")
            else:
                problems.add(lineno, m.start() + 1,
                             f"control character U+{ord(m.group()):04X}; expected printable text",
                             "remove it")
    return _NOT_PRINTABLE.sub(" ", text), tab_lines


def _blank_invisible_characters(text: str, problems: Problems) -> str:
    """Report every format character (the bidi marks, embeddings, overrides
    and isolates, zero-width characters) but the two joiners free text holds
    (U+200C, U+200D: a value that is a name is refused them where it is
    read), and every line break YAML knows but a text editor may not
    (U+0085, U+2028, U+2029), anywhere in the file --
    a comment too, which the check of values never sees, and which 'vault
    policy show --text' gives every user: an RLO there reorders what they
    read (vault/_text.py). Returns the text with a space in their place.
    A version the vault installed keeps them (:attr:`Problems.installed`)."""
    from vault._text import character_problem, free_character

    lines = text.split("\n")
    if all(map(str.isprintable, lines)):  # the common case, in C
        return text
    for lineno, line in enumerate(lines, 1):
        for column, c in enumerate(line, 1):
            if free_character(c) or c in "\t\r" or _NOT_PRINTABLE.match(c):
                continue  # free text, or a tab or control character reported already
            if unicodedata.category(c) in ("Cf", "Zl", "Zp") or c == "\x85":
                problems.add(lineno, column, f"the file {character_problem(c)}; expected "
                             "printable text, in comments too",
                             "remove it: it reorders, hides or breaks what every reader of "
                             "the policy sees")
                lines[lineno - 1] = lines[lineno - 1].replace(c, " ")
    return "\n".join(lines)


class _StrictComposer:
    """Builds :class:`Node` trees from parser events; never resolves types."""

    def __init__(self, events: _EventSource, problems: Problems) -> None:
        # PyYAML's stubs leave these untyped; name the types they return.
        self.check_event: Callable[..., bool] = events.check_event
        self.peek_event: Callable[[], Event] = events.peek_event
        self.get_event: Callable[[], Event] = events.get_event
        self.problems = problems
        self.aliases_seen: set[str] = set()

    def _at(self, event: Event, message: str, hint: str | None = None) -> None:
        line, col = _position(event)
        self.problems.add(line, col, message, hint)

    def compose_stream(self) -> Node | None:
        self.get_event()  # StreamStartEvent
        if self.check_event(StreamEndEvent):
            self.problems.add(1, 1, "empty file; expected a policy mapping")
            return None
        start = self.get_event()
        assert isinstance(start, DocumentStartEvent)
        if start.version is not None or start.tags:
            self._at(start, "YAML directive; expected none", "remove the '%' line")
        node = self.compose_node(0)
        self.get_event()  # DocumentEndEvent
        if not self.check_event(StreamEndEvent):
            self._at(self.peek_event(), "a second YAML document; expected exactly one",
                     "a policy is one document: remove the '---' and what follows, "
                     "or move it to its own file")
        return node

    def compose_node(self, depth: int) -> Node:
        event = self.peek_event()
        line, col = _position(event)
        if isinstance(event, AliasEvent):
            self.get_event()
            if event.anchor not in self.aliases_seen:  # once per name, not per use
                self.aliases_seen.add(event.anchor or "")
                self._at(event, f"alias '*{event.anchor}'; expected a value written out",
                         "anchors and aliases are refused: write the value out in full")
            return Node("invalid", "", line, col)
        assert isinstance(event, NodeEvent)
        if event.anchor is not None:
            self._at(event, f"anchor '&{event.anchor}'; expected a plain value",
                     "anchors and aliases are refused: remove the anchor and write values out")
        tag = getattr(event, "tag", None)
        if tag is not None:
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            self._at(event, f"explicit tag '{tag}'; expected an untagged value",
                     "remove the tag; the schema decides each value's type")
        if depth >= MAX_DEPTH and isinstance(event, CollectionStartEvent):
            self._at(event, _TOO_DEEP)
            self._skip_collection()
            return Node("invalid", "", line, col)
        if isinstance(event, ScalarEvent):
            self.get_event()
            return Node("scalar", event.value, line, col, plain=event.style is None)
        if isinstance(event, SequenceStartEvent):
            self.get_event()
            items: list[Node] = []
            while not self.check_event(SequenceEndEvent):
                items.append(self.compose_node(depth + 1))
            self.get_event()
            return Node("seq", items, line, col)
        assert isinstance(event, MappingStartEvent)
        self.get_event()
        return Node("map", self._compose_pairs(depth), line, col)

    def _compose_pairs(self, depth: int) -> list[tuple[Node, Node]]:
        pairs: list[tuple[Node, Node]] = []
        seen: dict[str, Node] = {}
        while not self.check_event(MappingEndEvent):
            key = self.compose_node(depth + 1)
            value = self.compose_node(depth + 1)
            if key.kind in ("seq", "map"):
                self.problems.add(key.line, key.column, "complex mapping key; expected a name")
                continue
            if key.kind == "invalid":
                continue
            first = seen.get(key.text)
            if first is not None:
                self.problems.add(
                    key.line, key.column,
                    f"duplicate key '{key.text}' (first at line {first.line}, "
                    f"column {first.column}); expected each key once",
                    "remove one of them: YAML loaders disagree on which one wins",
                )
                continue
            seen[key.text] = key
            pairs.append((key, value))
        self.get_event()
        return pairs

    def _skip_collection(self) -> None:
        # Iterative, so that a deeply nested document cannot exhaust the stack.
        open_ = 0
        while True:
            event = self.get_event()
            if isinstance(event, CollectionStartEvent):
                open_ += 1
            elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
                open_ -= 1
            if open_ == 0:
                return


def _position(event: Event) -> tuple[int | None, int | None]:
    mark = event.start_mark
    return (None, None) if mark is None else (mark.line + 1, mark.column + 1)


class _TooDeep(yaml.MarkedYAMLError):
    pass


class _EventSource(Reader, Scanner, Parser):
    """PyYAML's reader, scanner and parser alone: no resolver and no
    constructor, so nothing is ever typed or expanded."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        # PyYAML's scanner rechecks every open flow level at each token, so
        # deep [[[[ nesting costs quadratic time: stop at MAX_DEPTH.
        if self.flow_level >= MAX_DEPTH:
            raise _TooDeep(problem_mark=self.get_mark())
        Scanner.fetch_flow_collection_start(self, TokenClass)
