"""What an equation draws beyond its text (Office Math, ISO/IEC 29500-1
§22.1), for the readers of Word, slides and drawings (docs/POLICY.md §11.1).

An equation's text (``m:t``) is read where it stands. A delimiter
(``m:d``, §22.1.2.24) also draws characters of its own, given as
attributes: its opening character before its first argument, its
separator between arguments, its closing one after the last
(``m:begChr``, ``m:sepChr``, ``m:endChr``, §22.1.2.10, .95, .37; by default
``(``, ``|``, ``)``); an n-ary operator (``m:nary``) draws its character
(``m:chr`` in ``m:naryPr``, §22.1.2.20) before its argument. Each may be
any character, a digit too: ``4`` as the opening character before
``111 1111 1111 1111`` draws a card number. Accents and group characters
are drawn above or below their base, not in the line, and are not read.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MATH_TAGS", "MathDrawn"]

# The elements followed, in both namespaces: only these are counted as
# open, so an argument's parent is the delimiter whose argument it is, and
# any other element (a fraction, a radical inside an argument) is passed
# over, whatever it holds. One set look-up for every element of a part.
MATH_TAGS = frozenset(f"{ns}{name}" for ns in (
    "{http://schemas.openxmlformats.org/officeDocument/2006/math}",
    "{http://purl.oclc.org/ooxml/officeDocument/math}")
    for name in ("d", "dPr", "begChr", "sepChr", "endChr", "e", "naryPr", "chr"))


@dataclass
class _Delimiter:
    """An open ``m:d``: the characters it draws, and its arguments so far."""

    begChr: str = "("  # named as its element: set by name
    sepChr: str = "|"
    endChr: str = ")"
    arguments: int = 0


_CHARACTERS = ("begChr", "sepChr", "endChr")


class MathDrawn:
    """Follows the Office Math elements of a part; ``start`` and ``end``
    return the characters drawn there, in the line ("" for none)."""

    def __init__(self) -> None:
        self.open: list[str] = []  # the math elements open, by local name
        self.delimiters: list[_Delimiter] = []  # each open m:d

    def start(self, tag: str, attrib: dict[str, str]) -> str:
        """At an element of MATH_TAGS."""
        name = tag.rsplit("}", 1)[-1]
        # m:val in the element's own namespace (one in an ignorable
        # namespace is skipped by Office, ISO/IEC 29500-3 §10.1.1)
        val = attrib.get(tag[:len(tag) - len(name)] + "val")
        parent = self.open[-1] if self.open else ""
        self.open.append(name)
        if name == "d":
            self.delimiters.append(_Delimiter())
        elif name in _CHARACTERS and parent == "dPr" and self.delimiters:
            setattr(self.delimiters[-1], name, val or "")
        elif name == "e" and parent == "d" and self.delimiters:
            d = self.delimiters[-1]
            d.arguments += 1
            return d.begChr if d.arguments == 1 else d.sepChr
        elif name == "chr" and parent == "naryPr":
            return val or ""
        return ""

    def end(self, tag: str) -> str:
        """At the end of an element of MATH_TAGS."""
        name = tag.rsplit("}", 1)[-1]
        if self.open:
            self.open.pop()
        if name == "d" and self.delimiters:
            return self.delimiters.pop().endChr
        return ""

