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
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from vault.intake._model import Meter, Refused

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


class TextTarget:
    """Collects text of ``collect`` elements; ``breaks`` end with a newline,
    ``tabs`` stand for a tab. ``skip(tag, attrib)`` may veto collecting an
    element's text (a spreadsheet cell's shared-string index).

    Text an application shows elsewhere than in the line it is written in
    (an attribute's: a tooltip, a tracked change's author; a field's
    instruction, ``asides``) is read aside (:meth:`_aside`): held until
    the line ends (a ``breaks`` element, :meth:`_line`) or the part does,
    then read on lines of its own. Read where it is written, it split the
    text around it in two: a card number one group of which was a
    hyperlink with a tooltip was read as two numbers, neither a card's.

    A line with changes tracked in it (the content of ``inserted`` and
    ``deleted`` elements) is read as the application shows it by default,
    every change made (inserted text shown, deleted text not), and, aside,
    as it stood before (deleted text shown, inserted text not) and with
    every change marked in place (both) -- a reading other than the main
    one (a variant) is kept only for a line where it differs, copied from
    the line's main text where it first does (:meth:`_text`). Read inline
    alone, a deleted digit inside a card number the application shows
    whole split it: "4111 1111 1111 11191"."""

    # Whether the part may hold HTML's <br> unclosed, as Excel writes legacy
    # VML (a comment box or form control label of several lines): read as
    # <br/>, not refused as malformed XML.
    html_breaks = False

    def __init__(self, collect: frozenset[str], breaks: frozenset[str] = frozenset(),
                 tabs: frozenset[str] = frozenset(), max_depth: int = 256,
                 skip: Callable[[str, dict[str, str]], bool] | None = None,
                 asides: frozenset[str] = frozenset(), inserted: frozenset[str] = frozenset(),
                 deleted: frozenset[str] = frozenset()) -> None:
        self.collect = collect
        self.breaks = breaks
        self.tabs = tabs
        self.max_depth = max_depth
        self.skip = skip
        self.asides = asides
        self.inserted = inserted
        self.deleted = deleted
        self.depth = 0
        self.inside = 0  # depth of the collected element we are in, 0 if none
        self.apart = 0  # depth of the ``asides`` element we are in, 0 if none
        self.ins_at = 0  # depth of the ``inserted`` element we are in, 0 if none
        self.del_at = 0  # depth of the ``deleted`` element we are in, 0 if none
        self.readings = EVERY  # the readings the content we are in is shown in
        self.pieces: list[str] = []
        self.size = 0
        self.aside: list[str] = []  # text read aside, until the line ends
        self.aside_seen: set[str] = set()  # of it, the attribute texts (each read once)
        self.aside_size = 0
        # per reading of _VARIANTS: its text since the main line it differs
        # in began, or None while it is the main one's
        self.variants: list[list[str] | None] = [None] * len(_VARIANTS)
        self.varied = False  # whether any is kept
        self.variant_size = 0
        self.line_from = 0  # the piece the main line begins at
        self.head = ""  # the main line's text taken before it (its last HEAD characters)
        # the branches of Markup Compatibility read (:class:`_Unwrap`): per
        # AlternateContent around, its serial in the part and the branch's index
        self.branches: tuple[tuple[int, int], ...] = ()

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise Refused("xml-too-deep", f"XML nested deeper than {self.max_depth} elements")
        if not self.apart and tag in self.asides:
            self.apart = self.depth
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

    def end(self, tag: str) -> None:
        if self.inside == self.depth:
            self.inside = 0
        if self.apart == self.depth:
            self.apart = 0
        if self.ins_at == self.depth:
            self.ins_at = 0
            self._changed()
        if self.del_at == self.depth:
            self.del_at = 0
            self._changed()
        self.depth -= 1
        if tag in self.breaks:
            self._line(self._ends(tag))

    def data(self, text: str) -> None:
        if self.inside:
            if self.apart:
                self._hold(text)
            else:
                self._add(text)

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
        if text not in self.aside_seen:
            self.aside_seen.add(text)
            self._hold("\n" + text + "\n")

    def _hold(self, text: str) -> None:
        self.aside.append(text)
        self.aside_size += len(text)
        # Held until the line ends, across feeds: bounded as what one
        # feed collects is (see _put), no honest line comes near it.
        if self.aside_size > MAX_PENDING:
            raise Refused("too-large", f"more than {MAX_PENDING} characters of text shown "
                          "apart from one line")

    def _add(self, text: str) -> None:
        """Content text, read in the readings the content is shown in."""
        if self.readings == EVERY and not self.varied:
            self._put(text)  # the busy case: no change tracked in the line
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
        where the two first differ."""
        for i, bit in enumerate(_VARIANTS):
            kept = self.variants[i]
            if kept is None:
                if bool(readings & bit) == bool(readings & MAIN):
                    continue
                kept = self._begin(i)
            if readings & bit:
                kept.append(text)
                self._grow(len(text))
        if readings & MAIN:
            self._put(text)

    def _begin(self, i: int) -> list[str]:
        """Variant ``i``, begun as the main line's text so far: its last
        HEAD characters (from a space), the part around any change a rule
        reads -- a line of millions of characters is not copied."""
        before = self.head + "".join(self.pieces[self.line_from:])
        if len(before) > HEAD:
            before = before[-HEAD:]
            before = before[before.find(" ") + 1:]
        kept = [before]
        self.variants[i] = kept
        self.varied = True
        self._grow(len(before))
        return kept

    def _grow(self, n: int) -> None:
        # A variant is held until its line ends, across feeds: bounded as
        # text read aside is (see _hold).
        self.variant_size += n
        if self.variant_size > MAX_PENDING:
            raise Refused("too-large", f"more than {MAX_PENDING} characters of other readings "
                          "of one line")

    def _line(self, readings: int = EVERY) -> None:
        """The end of a line (a paragraph, a line break) in ``readings``.
        Where the main line ends, each variant that ends there too and the
        text held aside are read after it, on lines of their own; a variant
        that goes on (the break inserted since) is read where it ends."""
        for i, bit in enumerate(_VARIANTS):
            kept = self.variants[i]
            if kept is None and bool(readings & bit) != bool(readings & MAIN):
                kept = self._begin(i)
            if kept is not None and readings & bit and not readings & MAIN:
                kept.append("\n")
                self._grow(1)
        if readings & MAIN:
            self._put("\n")
            self._end_variants(readings)
            if self.aside:
                self._put("".join(self.aside) + "\n")
                self.aside.clear()
                self.aside_seen.clear()
                self.aside_size = 0
            self.line_from, self.head = len(self.pieces), ""

    def _end_variants(self, readings: int) -> None:
        """Each variant that ends with the main line (in ``readings``) read
        after it; two alike once."""
        ended: list[str] = []
        for i, bit in enumerate(_VARIANTS):
            kept = self.variants[i]
            if kept is not None and readings & bit:
                self.variants[i] = None
                if (text := "".join(kept) + "\n") not in ended:
                    ended.append(text)
        if ended:
            self._put("".join(ended))
            self.varied = any(kept is not None for kept in self.variants)
            if not self.varied:
                self.variant_size = 0

    def _put(self, text: str) -> None:
        self.pieces.append(text)
        self.size += len(text)
        # What one feed of CHUNK bytes collects is looked at only after it:
        # text read out of attributes, list labels and number formats
        # rendered into cells can outgrow the bytes many times over, and a
        # planted part could fill the memory (or outlast every budget)
        # before that. No honest part comes near this.
        if self.size > MAX_PENDING:
            raise Refused("too-large", f"more than {MAX_PENDING} characters of text from "
                          f"{CHUNK} bytes of XML")

    def take(self) -> str:
        if self.line_from < len(self.pieces):  # the line goes on: its end kept for _begin
            self.head = (self.head + "".join(self.pieces[self.line_from:]))[-HEAD:]
        out = "".join(self.pieces)
        self.pieces.clear()
        self.size = 0
        self.line_from = 0
        return out

    def close(self) -> None:
        if self.aside or self.varied:  # the part ended inside a line
            self._line()

    def next_pass(self) -> TextTarget | None:
        """A target to read the same part with again, once this one is
        done (a sheet's cells with formats met only after them), or None."""
        return None


_MC_URI = "http://schemas.openxmlformats.org/markup-compatibility/2006"
MC = "{" + _MC_URI + "}"
_ALTERNATE = f"{MC}AlternateContent"
_BRANCHES = frozenset((f"{MC}Choice", f"{MC}Fallback"))
_PROCESS_CONTENT = f"{MC}ProcessContent"


class _Unwrap:
    """Markup Compatibility (ISO/IEC 29500-3) processed as Office does
    before anything else reads a part: an ``mc:AlternateContent`` and its
    ``mc:Choice`` and ``mc:Fallback`` are no elements of their own, the
    content of each branch stands where the AlternateContent is -- a
    cell ``c`` or a chart's ``c:date1904`` in a Choice is a child of the
    AlternateContent's parent. Every branch is read (which one an
    application takes depends on what it understands, and a Choice it does
    not understand with no Fallback is dropped); ``target.branches`` tells
    a reader whose structure no branch may change (a cell style, whose
    index would shift with a branch taken or not) that it is in one: per
    AlternateContent around, its serial and the branch's index.

    An element of an ``mc:Ignorable`` namespace is read as an element
    (Office drops it and its content: intake reads more, never less), but
    one named by ``mc:ProcessContent`` stands for its content in Office --
    a cell in such a wrapper is a cell of its row, a cell style one of the
    list. Office writes none; a part declaring one is refused as not
    inspected whole, ``unsupported``, rather than its prefixes resolved
    against the namespaces Office understands, which intake does not
    know."""

    def __init__(self, target: TextTarget) -> None:
        self.target = target
        # per element opened since the unwrapping began: "" passed on, or
        # what of MCE it is (those opened before end past an empty stack)
        self.stack: list[str] = []
        # per open AlternateContent: its serial, its branch read last, whether in it
        self.alternates: list[list[int]] = []
        self.serial = 0
        # text is the parser's busiest event and Markup Compatibility has
        # nothing to do with it: handed to the target without a call here
        self.data = target.data

    def _enter(self, inside: int) -> None:
        self.alternates[-1][2] = inside
        self.target.branches = tuple((serial, branch) for serial, branch, inside
                                     in self.alternates if inside)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if len(self.stack) >= self.target.max_depth:
            raise Refused("xml-too-deep", f"XML nested deeper than {self.target.max_depth} "
                          "elements")
        if _PROCESS_CONTENT in attrib:
            raise Refused("unsupported", "Markup Compatibility's ProcessContent (elements "
                          "Office reads as their content)")
        if tag == _ALTERNATE:
            self.serial += 1
            self.alternates.append([self.serial, -1, 0])
            self.stack.append("alternate")
        elif tag in _BRANCHES and self.stack and self.stack[-1] == "alternate":
            self.alternates[-1][1] += 1
            self._enter(1)
            self.stack.append("branch")
        else:
            self.stack.append("")
            self.target.start(tag, attrib)

    def end(self, tag: str) -> None:
        kind = self.stack.pop() if self.stack else ""
        if not kind:
            self.target.end(tag)
        elif kind == "branch":
            self._enter(0)
        else:
            self.alternates.pop()

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

    def declared(prefix: str | None, uri: str) -> None:
        # Markup Compatibility's elements and attributes exist only where
        # its namespace is declared, and expat reports a declaration (after
        # decoding, in any encoding) before the element that carries it:
        # from there on the part is read through the unwrapping, which a
        # part without it never pays for.
        if uri == _MC_URI and parser.target is target:
            parser.target = _Unwrap(target)

    parser.parser.StartNamespaceDeclHandler = declared
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
