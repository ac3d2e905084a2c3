"""Typed reads from :class:`Node` trees, collecting problems (docs/POLICY.md §2.3).

Each reader returns the value, or None after recording a problem that says
what was found, what was expected and, where it helps, a hint. Scalars are
text until a reader asks for a type: ``true``/``false`` only where a boolean
is expected (never ``yes``, ``no``, ``on`` or ``off``), decimal digits only
where a number is expected, and a date only where a time is expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from vault._inputs import SECRET_PREFIXES, quoted_name
from vault._text import character_problem
from vault.policy._time import TIME_HINT, format_time, parse_time
from vault.policy._yaml import Node, Problems

Names = dict[str, str]
PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}")
PRINCIPAL_HINT = "names are 1-64 letters, digits and _ . @ + -"
MARKING_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 +._:/()-]{0,62}[A-Za-z0-9+)])?")
MARKING_HINT = "names are 1-64 letters, digits, spaces and + . _ : / ( ) -, starting with a " \
    "letter or digit"
_YAML11_BOOLS = frozenset(("yes", "no", "on", "off", "y", "n", "True", "False", "TRUE", "FALSE",
                           "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF"))


# docs/POLICY.md §2.3: what a text value may hold once YAML has read its
# escapes. The reader refuses control characters in the file itself, but a
# double-quoted "\e", "\n", "\x01" or "\ud800" is printable text that
# becomes one: a policy name or marking holding it would redraw the terminal
# of whoever runs 'vault policy show', or break what is written with it (an
# Office label name in an XML part). A value is printable text as every name
# and free text is (vault/_text.py); a description, free text, may also
# break lines and hold a no-break space or a joiner.
TEXT_HINT = ("remove it (a double-quoted escape such as \\n, \\e, \\x01 or \\u202e puts "
             "it there): names, markings and labels are one line of printable text, "
             "descriptions printable lines")


_QUOTE_MAX = 64


def describe(node: Node, *, quote: bool = True) -> str:
    if node.kind == "map":
        return "a mapping"
    if node.kind == "seq":
        return "a list"
    if node.is_null():
        return "nothing"
    text = node.text
    if not quote:
        return f"a text of {len(text)} characters, not shown"
    if text.upper().startswith(SECRET_PREFIXES):
        return "a secret key, not shown"
    if len(text) > _QUOTE_MAX:
        return f"'{text[:_QUOTE_MAX]}…'"
    return f"'{text}'"


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    import difflib  # only for a misspelt name: kept out of every start-up

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    if not close:
        lowered = {o.casefold(): o for o in options}
        close = [lowered[word.casefold()]] if word.casefold() in lowered else []
    return f"did you mean '{close[0]}'?" if close else None


def from_data(value: Any, path: str, problems: Problems) -> Node:
    """Turn plain Python data (as ``to_dict`` returns) into a Node tree."""
    if isinstance(value, Mapping):
        pairs = []
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            pairs.append((Node("scalar", str(k), path=sub), from_data(v, sub, problems)))
        return Node("map", pairs, path=path)
    if isinstance(value, (list, tuple)):
        return Node("seq", [from_data(v, f"{path}[{i}]", problems) for i, v in enumerate(value)],
                    path=path)
    if value is None:
        return Node("scalar", "", plain=True, path=path)
    if isinstance(value, bool):
        return Node("scalar", "true" if value else "false", path=path)
    if isinstance(value, datetime):
        return Node("scalar", format_time(value), path=path)
    if isinstance(value, (str, int, date)):
        return Node("scalar", str(value), path=path)
    problems.add(None, None, f"at {path}: unsupported value of type {type(value).__name__}")
    return Node("invalid", "", path=path)


class Refs:
    """Names defined so far; lookups map what may be written to the canonical name."""

    def __init__(self) -> None:
        self.levels: Names = {}
        self.rank: dict[str, int] = {}
        self.compartments: Names = {}
        self.caveats: Names = {}
        self.roles: Names = {}
        self.users: Names = {}
        self.groups: Names = {}
        # Sections that are missing or of the wrong type: references to them
        # are not checked, so one broken section does not bury the real problem.
        self.broken: set[str] = set()


class Fields:
    """Typed readers that report into one :class:`Problems`; with ``refs``,
    references are checked against the names defined so far."""

    def __init__(self, problems: Problems, refs: Refs | None = None) -> None:
        self.problems = problems
        self.refs = refs

    def err(self, node: Node, message: str, hint: str | None = None) -> None:
        self.problems.at(node, message, hint)

    def mapping(self, node: Node, what: str, required: Sequence[str],
                optional: Sequence[str] = ()) -> dict[str, Node] | None:
        if node.kind == "invalid":
            return None
        if node.kind != "map":
            # A whole document that is one scalar is no policy at all (perhaps
            # an identity or passphrase file given by mistake): never quote it.
            shown = describe(node, quote=node.kind != "scalar" or what != "the policy")
            self.err(node, f"{what} is {shown}; expected a mapping")
            return None
        allowed = (*required, *optional)
        out: dict[str, Node] = {}
        for key, value in node.pairs:
            if key.text not in allowed:
                self.err(key, f"unknown key '{key.text}' in {what}; expected one of: "
                         f"{', '.join(allowed)}", did_you_mean(key.text, allowed))
            else:
                out[key.text] = value
        for name in required:
            if name not in out:
                self.err(node, f"{what} is missing '{name}'",
                         f"add '{name}:' to {what}")
        return out

    def is_mapping(self, node: Node, what: str) -> bool:
        """For mappings keyed by names (users, groups): report anything else."""
        if node.kind not in ("map", "invalid"):
            self.err(node, f"{what} is {describe(node)}; expected a mapping of names")
        return node.kind == "map"

    def seq(self, node: Node, what: str, *, nonempty: bool = False) -> list[Node] | None:
        if node.kind == "invalid":
            return None
        if node.kind != "seq":
            self.err(node, f"{what} is {describe(node)}; expected a list",
                     "write a list as [a, b] or as lines starting with '- '")
            return None
        if nonempty and not node.items:
            self.err(node, f"{what} is empty; expected at least one entry")
        return node.items

    def text(self, node: Node, what: str, *, lines: bool = False,
             free: bool = False) -> str | None:
        """A non-blank scalar of printable text: one line, or (``lines``)
        lines of it; a name's rule, or (``free``) free text's, which also
        holds the space separators and the joiners (vault/_text.py). A
        policy the vault already installed keeps the characters it was
        installed with (:attr:`Problems.installed`)."""
        if node.kind == "invalid":
            return None
        if node.kind != "scalar" or node.is_null():
            self.err(node, f"{what} is {describe(node)}; expected text")
            return None
        if not node.text.strip():
            self.err(node, f"{what} is empty; expected text")
            return None
        problem = character_problem(node.text, lines=lines, free=free)
        if problem and not self.problems.installed:
            self.err(node, f"{what} {describe(node)} {problem}; expected "
                     f"{'printable text' if lines else 'one line of printable text'}", TEXT_HINT)
            return None
        return node.text

    def name(self, node: Node, what: str, pattern: re.Pattern[str] = PRINCIPAL_NAME,
             hint: str = PRINCIPAL_HINT) -> str | None:
        value = self.text(node, what)
        if value is not None and not pattern.fullmatch(value):
            self.err(node, f"{what} {quoted_name(value)} is not a valid name", hint)
            return None
        return value

    def boolean(self, node: Node, what: str) -> bool | None:
        if node.kind == "scalar" and node.text in ("true", "false"):
            return node.text == "true"
        hint = None
        if node.kind == "scalar" and node.text in _YAML11_BOOLS:
            hint = f"YAML 1.1 reads '{node.text}' as a boolean; this schema accepts only " \
                "true or false"
        if node.kind != "invalid":
            self.err(node, f"{what} is {describe(node)}; expected true or false", hint)
        return None

    def choice(self, node: Node, what: str, options: Sequence[str]) -> str | None:
        value = self.text(node, what)
        if value is not None and value not in options:
            hint = did_you_mean(value, options)
            if value in _YAML11_BOOLS:
                hint = f"'{value}' is not a boolean here; write one of: {', '.join(options)}"
            self.err(node, f"{what} is '{value}'; expected one of: {', '.join(options)}", hint)
            return None
        return value

    def integer(self, node: Node, what: str) -> int | None:
        value = self.text(node, what)
        if value is not None and not re.fullmatch(r"0|[1-9][0-9]{0,8}", value):
            self.err(node, f"{what} is '{value}'; expected a decimal number like 1",
                     "write plain decimal digits (no 0x, 0o, exponents or leading zeros)")
            return None
        return None if value is None else int(value)

    def time(self, node: Node, what: str) -> datetime | None:
        value = self.text(node, what)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as e:
            self.err(node, f"{what}: {e}", TIME_HINT)
            return None

    def name_list(self, node: Node, what: str, pattern: re.Pattern[str] = PRINCIPAL_NAME,
                  hint: str = PRINCIPAL_HINT) -> list[tuple[str, Node]]:
        """A list of distinct names, each with its node (for later references)."""
        out: list[tuple[str, Node]] = []
        seen: dict[str, Node] = {}
        for item in self.seq(node, what) or []:
            value = self.name(item, f"entry of {what}", pattern, hint)
            if value is None:
                continue
            if value in seen:
                self.err(item, f"'{value}' appears twice in {what} (first at line "
                         f"{seen[value].line}); expected each once")
                continue
            seen[value] = item
            out.append((value, item))
        return out

    def reference(self, value: str, node: Node, kind: str, known: Mapping[str, str] | None,
                  section: str) -> str | None:
        """Resolve a reference to a defined name; None after reporting it."""
        if known is None:  # a lone section, read without its policy
            return value
        resolved = known.get(value)
        if resolved is None:
            options = sorted(set(known.values()))
            listed = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
            self.err(node, f"undefined {kind} '{value}'; expected one of: {listed or '(none)'}",
                     did_you_mean(value, known) or f"define it under '{section}' first")
        return resolved

    # -- references to defined names ----------------------------------------

    def _known(self, kind: str) -> Names | None:
        if self.refs is None or kind in self.refs.broken:
            return None
        known: Names = getattr(self.refs, kind)
        return known

    def section(self, node: Node | None, kind: str, expected: str) -> bool:
        """Whether a section can be read; if not, stop checking references to it."""
        ok = node is not None and node.kind == expected
        if not ok and self.refs is not None:
            self.refs.broken.add(kind)
        return ok

    def refs_list(self, node: Node, what: str, kind: str) -> frozenset[str]:
        """A list of references to defined ``kind`` (users, groups, roles, ...)."""
        out = set()
        for value, item in self.name_list(node, what, *self._pattern(kind)):
            resolved = self.reference(value, item, kind[:-1], self._known(kind), kind)
            if resolved is not None:
                out.add(resolved)
        return frozenset(out)

    @staticmethod
    def _pattern(kind: str) -> tuple[re.Pattern[str], str]:
        if kind in ("levels", "compartments", "caveats"):
            return MARKING_NAME, MARKING_HINT
        return PRINCIPAL_NAME, PRINCIPAL_HINT

    def level_ref(self, node: Node, what: str) -> str | None:
        value = self.name(node, what, MARKING_NAME, MARKING_HINT)
        if value is None:
            return None
        return self.reference(value, node, "level", self._known("levels"), "levels")

    def _opt_text(self, fields: dict[str, Node], key: str) -> str | None:
        # A description is free text and may run over lines (a block
        # scalar); a marking is shown as a label, one line by a name's rule.
        free = key == "description"
        return self.text(fields[key], key, lines=free, free=free) if key in fields else None
