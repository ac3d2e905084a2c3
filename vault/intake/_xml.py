"""Streaming, defused XML reading (docs/POLICY.md §11.4).

Parts are fed to defusedxml's parser in chunks, with a target that builds
no tree: it keeps the text of the elements asked for and hands it on in
pieces. DTDs are refused outright (so no entity can be declared, expanded
or fetched: billion laughs and external entities end here), nesting deeper
than ``Budget.max_xml_depth`` is refused, and malformed XML is refused;
each ends as :class:`Refused`, never as a parser traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from vault.intake._model import Meter, Refused

__all__ = ["TextTarget", "iter_text", "parse_small"]

CHUNK = 64 * 1024
MAX_PENDING = 64 * CHUNK  # characters collected from one CHUNK at most (see _add)


class TextTarget:
    """Collects text of ``collect`` elements; ``breaks`` end with a newline,
    ``tabs`` stand for a tab. ``skip(tag, attrib)`` may veto collecting an
    element's text (a spreadsheet cell's shared-string index)."""

    def __init__(self, collect: frozenset[str], breaks: frozenset[str] = frozenset(),
                 tabs: frozenset[str] = frozenset(), max_depth: int = 256,
                 skip: Callable[[str, dict[str, str]], bool] | None = None) -> None:
        self.collect = collect
        self.breaks = breaks
        self.tabs = tabs
        self.max_depth = max_depth
        self.skip = skip
        self.depth = 0
        self.inside = 0  # depth of the collected element we are in, 0 if none
        self.pieces: list[str] = []
        self.size = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise Refused("xml-too-deep", f"XML nested deeper than {self.max_depth} elements")
        if not self.inside and tag in self.collect and not (self.skip and self.skip(tag, attrib)):
            self.inside = self.depth
        elif tag in self.tabs:
            self._add("\t")

    def end(self, tag: str) -> None:
        if self.inside == self.depth:
            self.inside = 0
        self.depth -= 1
        if tag in self.breaks:
            self._add("\n")

    def data(self, text: str) -> None:
        if self.inside:
            self._add(text)

    def _add(self, text: str) -> None:
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
        out = "".join(self.pieces)
        self.pieces.clear()
        self.size = 0
        return out

    def close(self) -> None:
        return None

    def next_pass(self) -> TextTarget | None:
        """A target to read the same part with again, once this one is
        done (a sheet's cells with formats met only after them), or None."""
        return None


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


def iter_text(stream: BinaryIO, target: TextTarget, part: str, meter: Meter,
              flush: int = CHUNK) -> Iterator[str]:
    """Feed ``stream`` through the parser, yielding collected text in pieces
    of about ``flush`` characters. The caller may stop early (a budget)."""
    parser = _parser(target)
    while True:
        data = stream.read(CHUNK)
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
