"""Excel number formats: the text a format adds to the cells it formats
(docs/POLICY.md §11.1).

A custom format's literal text -- quoted strings, backslash-escaped
characters, a currency's ``[$text-409]`` -- is shown in every cell formatted
with it: ``"4111 1111 1111 "0000`` shows the number 1111 as a card number,
``"Board minutes "@`` prefixes any text. So the literal text of every
format in the styles part is read as text of that part, and a cell whose
style has such a format is also read as Excel shows it: the value's digits
put in the format's digit placeholders (``0``, ``#``, ``?``), text put at
``@``. The rendering is the shape Excel gives, not every detail of it
(no rounding, thousands separators or scaling; dates and times are left
as their literal text).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from vault.intake._xml import TextTarget

__all__ = ["CellFormats", "StylesTarget", "literal_text", "render"]

Token = tuple[str, str]  # (kind, text): lit, digit, point, text, general, date, other, sep
_DATE = frozenset("yYmMdDhHsSeEbBgG")  # date and time codes (e/b/g: eras); E+ is taken first


def _bracket(inner: str) -> Token:
    if inner.startswith("$"):  # [$€-407]: the currency text is shown
        return ("lit", inner[1:].split("-", 1)[0])
    if inner[:1].lower() in ("h", "m", "s"):  # [h]:mm elapsed time
        return ("date", inner)
    return ("other", inner)  # a colour or a condition


def tokens(code: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == '"':
            j = code.find('"', i + 1)
            j = n if j < 0 else j
            out.append(("lit", code[i + 1:j]))
            i = j + 1
            continue
        if c in "\\*_":  # escaped; repeated to fill (shown once at least); a space as wide
            out.append(("lit", " " if c == "_" else code[i + 1:i + 2]))
            i += 2
            continue
        if c == "[":
            j = code.find("]", i + 1)
            j = n if j < 0 else j
            out.append(_bracket(code[i + 1:j]))
            i = j + 1
            continue
        if code[i:i + 7].lower() == "general":
            out.append(("general", ""))
            i += 7
            continue
        if c in "eE" and code[i + 1:i + 2] in ("+", "-"):
            out.append(("other", code[i:i + 2]))
            i += 2
            continue
        kind = {"0": "digit", "#": "digit", "?": "digit", ".": "point", "@": "text",
                ";": "sep", ",": "other"}.get(c)
        if kind is None:
            kind = "date" if c in _DATE or code[i:i + 5].upper() == "AM/PM" else "lit"
        out.append((kind, c))
        i += 1
    return out


def _sections(code: str) -> list[list[Token]]:
    out: list[list[Token]] = [[]]
    for tok in tokens(code):
        if tok[0] == "sep":
            out.append([])
        else:
            out[-1].append(tok)
    return out


def literal_text(code: str) -> str:
    """The literal text of each section of a format, a line each."""
    return "\n".join("".join(t for k, t in section if k == "lit")
                     for section in _sections(code))


def _fill(placeholder: str) -> str:
    return {"0": "0", "?": " "}.get(placeholder, "")


def _number(section: list[Token], digits: str, fraction: str) -> str:
    point = next((i for i, (k, _) in enumerate(section) if k == "point"), len(section))
    places = [i for i, (k, _) in enumerate(section[:point]) if k == "digit"]
    shown: dict[int, str] = {}
    spare = len(digits) - len(places)
    for n, at in enumerate(places):  # right-aligned; the first takes any extra digits
        if n == 0 and spare > 0:
            shown[at] = digits[:spare + 1]
        else:
            k = n + spare
            shown[at] = digits[k] if 0 <= k < len(digits) else _fill(section[at][1])
    after = [i for i, (k, _) in enumerate(section) if k == "digit" and i > point]
    for n, at in enumerate(after):
        shown[at] = fraction[n] if n < len(fraction) else _fill(section[at][1])
    out = []
    for i, (kind, text) in enumerate(section):
        if kind == "lit":
            out.append(text)
        elif kind == "digit":
            out.append(shown[i])
        elif kind == "point":
            out.append(".")
        elif kind == "general":
            out.append(digits + ("." + fraction if fraction else ""))
    return "".join(out)


def render(code: str, value: str, numeric: bool) -> str | None:
    """``value`` as the format ``code`` shows it, or None where the format
    adds nothing to read (no literal text, a date, a text format Excel
    does not apply to this value)."""
    sections = _sections(code)
    if not any(k == "lit" and t.strip() for s in sections for k, t in s):
        return None
    if not numeric:
        section = sections[3] if len(sections) > 3 else sections[0]
        if not any(k == "text" for k, _ in section):
            return None
        return "".join(t if k == "lit" else value if k == "text" else "" for k, t in section)
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    pick = 0 if number > 0 or len(sections) == 1 else 1 if number < 0 else 2
    section = sections[pick] if pick < len(sections) else sections[0]
    if any(k == "date" for k, _ in section):
        return None
    whole, _, fraction = format(abs(number), "f").partition(".")
    sign = "-" if number < 0 and pick == 0 else ""
    return sign + _number(section, whole.lstrip("0") or "0", fraction)


class CellFormats:
    """The custom number format of each cell style (``xf`` of ``cellXfs``)
    of a workbook's styles part(s)."""

    def __init__(self) -> None:
        self.tables: list[tuple[dict[str, str], list[str]]] = []

    def codes(self, style: str | None) -> list[str]:
        """The format codes a cell of style index ``style`` is shown with."""
        index = int(style) if style and style.isdigit() else 0
        return [codes[xfs[index]] for codes, xfs in self.tables
                if index < len(xfs) and xfs[index] in codes]


class StylesTarget(TextTarget):
    """A styles part: the literal text of each number format, a line each;
    the tables of ``formats`` filled as it is read."""

    def __init__(self, collect: frozenset[str], numfmt: frozenset[str],
                 cell_xfs: frozenset[str], xf: frozenset[str], formats: CellFormats,
                 max_depth: int) -> None:
        super().__init__(collect, max_depth=max_depth)
        self.numfmt, self.cell_xfs, self.xf = numfmt, cell_xfs, xf
        self.codes: dict[str, str] = {}
        self.xfs: list[str] = []
        self.in_xfs = False
        formats.tables.append((self.codes, self.xfs))

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        super().start(tag, attrib)
        if tag in self.numfmt:
            code = attrib.get("formatCode", "")
            self.codes[attrib.get("numFmtId", "").strip()] = code
            if text := literal_text(code).strip():
                self._add(text + "\n")
        elif tag in self.cell_xfs:
            self.in_xfs = True
        elif tag in self.xf and self.in_xfs:
            self.xfs.append(attrib.get("numFmtId", "0").strip())

    def end(self, tag: str) -> None:
        if tag in self.cell_xfs:
            self.in_xfs = False
        super().end(tag)
