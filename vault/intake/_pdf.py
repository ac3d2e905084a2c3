"""PDF text and labels, with pypdf (docs/POLICY.md §11.1).

Text is extracted page by page, with the annotations' and form fields'
text (an appearance stream's as the strings it draws, through the forms
it draws) and the outline's (bookmarks') titles; the time budget is checked between pages
and pypdf bounds what one stream may decode to (75 MB by default). A PDF
encrypted with a user password is not inspected; one that opens with the
empty password (owner-password protection only) is. Labels come from the
document information dictionary (``/MSIP_Label_<guid>_<Field>`` entries, as
Office writes them when exporting a labelled document) and from the XMP
metadata stream, parsed here with defusedxml (not with pypdf's parser).
pypdf's log messages about malformed files are silenced while it runs.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from vault.intake._labels import PROPERTY, from_properties, merge
from vault.intake._model import Meter, OfficeLabel, Refused
from vault.intake._scan import Scanner
from vault.intake._xml import parse_small

__all__ = ["read_pdf"]


@contextmanager
def _quiet() -> Iterator[None]:
    log = logging.getLogger("pypdf")
    level, propagate = log.level, log.propagate
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False
    try:
        yield
    finally:
        log.setLevel(level)
        log.propagate = propagate


def _info_labels(reader: Any) -> list[OfficeLabel]:
    info = reader.metadata or {}
    props = {str(k).lstrip("/"): str(v) for k, v in info.items()
             if PROPERTY.fullmatch(str(k).lstrip("/"))}
    return from_properties(props, "pdf:info")


def _xmp_labels(reader: Any, meter: Meter) -> list[OfficeLabel]:
    root = reader.trailer["/Root"]
    meta = root.get("/Metadata")
    if meta is None:
        return []
    data = meta.get_object().get_data()
    budget = meter.budget
    if len(data) > budget.max_metadata_bytes:
        return []
    props: dict[str, str] = {}
    for tag, attrib, text, _ in parse_small(io.BytesIO(data), "XMP metadata",
                                            budget.max_metadata_bytes, budget.max_xml_depth):
        local = tag.rsplit("}", 1)[-1]
        if PROPERTY.fullmatch(local):
            props[local] = text
        for key, value in attrib.items():
            if PROPERTY.fullmatch(key.rsplit("}", 1)[-1]):
                props[key.rsplit("}", 1)[-1]] = value
    return from_properties(props, "pdf:xmp")


def read_pdf(fp: BinaryIO, scanner: Scanner, meter: Meter) -> tuple[OfficeLabel, ...]:
    """Scan a PDF's pages; returns the labels found in its metadata."""
    with _quiet():
        try:
            return _read(fp, scanner, meter)
        except Refused:
            raise
        except Exception as e:  # pypdf raises many kinds on malformed input
            raise Refused("malformed", f"a PDF that cannot be read ({type(e).__name__})") \
                from None


def _read(fp: BinaryIO, scanner: Scanner, meter: Meter) -> tuple[OfficeLabel, ...]:
    from pypdf import PasswordType, PdfReader

    reader = PdfReader(fp, strict=False)
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise Refused("encrypted", "an encrypted PDF (it needs a password to open)")
    labels = merge(_info_labels(reader), _xmp_labels(reader, meter))
    forms = _FormsRead()
    for number, page in enumerate(reader.pages, 1):
        if number > meter.budget.max_pdf_pages:
            meter.truncate(f"pages past {meter.budget.max_pdf_pages} were not inspected")
            break
        if meter.out_of_time():
            break
        scanner.start(f"page {number}")
        text = (page.extract_text() or "") + _annotations(page, meter, reader, forms)
        meter.add_bytes(len(text))
        more = scanner.feed(text)
        scanner.end()
        if not more and (meter.chars >= meter.budget.max_chars or meter.out_of_time()):
            break
    for part, read in (("form fields", _form_values), ("outline", _outline)):
        text = "" if meter.out_of_time() else read(reader, meter)
        if text:
            scanner.start(part)
            meter.add_bytes(len(text))
            scanner.feed(text)
            scanner.end()
    return labels


_MAX_ANNOTATIONS = 10_000  # per page: a viewer shows them all, a file may hold many


def _texts(values: Iterator[Any], meter: Meter, what: str) -> str:
    """The text of ``values``, each object once (a file may list one string
    10,000 times: 100 KB on disk, gigabytes once copied), and no more
    characters than one part may hold (``max_part_chars``)."""
    # Keyed by the PDF object itself, held here while its id is used: an
    # _Appearance wrapper is freed once read, and the next one may reuse
    # its address.
    seen: dict[int, Any] = {}
    out: list[str] = []
    room = meter.budget.max_part_chars
    for value in values:
        if meter.out_of_time():
            break
        key = value.stream if isinstance(value, _Appearance) else value
        if value is None or id(key) in seen:
            continue
        seen[id(key)] = key
        if isinstance(value, _Appearance):  # what it draws: its text operators' strings
            drawn = _drawn(value, room, meter)
            if drawn is None:
                meter.truncate(f"{what}: a stream in an encoding not read was not inspected")
                continue
            if drawn[1]:
                meter.truncate(f"{what}: {drawn[1]}")
            value = drawn[0]
        elif hasattr(value, "get_data"):  # a stream (rich text, a value): its bytes
            data = _stream_bytes(value, room)
            if data is None:
                meter.truncate(f"{what}: a stream in an encoding not read was not inspected")
                continue
            value = data.decode("latin-1")
        elif len(value) > room if hasattr(value, "__len__") else False:
            meter.truncate(f"{what} past {meter.budget.max_part_chars} characters were not "
                           "inspected")
            break
        text = str(value)
        if len(text) > room:
            meter.truncate(f"{what} past {meter.budget.max_part_chars} characters were not "
                           "inspected")
            break
        room -= len(text)
        out.append(text)
    return "\n".join(out)


def _stream_bytes(stream: Any, room: int) -> bytes | None:
    """A stream's bytes, decoded here to at most ``room`` + 1 (pypdf would
    decode all of it and keep it: a 60 KB Flate stream of 60 MiB per page).
    None for an encoding other than none or Flate."""
    import zlib

    raw = getattr(stream, "_data", None)
    kind = stream.get("/Filter")
    if not isinstance(raw, bytes):
        return None
    if kind is None:
        return raw[: room + 1]
    if kind not in ("/FlateDecode", ["/FlateDecode"]) or stream.get("/DecodeParms"):
        return None
    try:
        return zlib.decompressobj().decompress(raw, room + 1)
    except zlib.error:
        return None


_MAX_APPEARANCE_BYTES = 4 << 20  # decoded, of all the appearance streams of a document
_CHECK_EVERY = 4096  # operations of a stream between two looks at the clock


class _FormsRead:
    """The appearance streams and Form XObjects a document's appearances
    have drawn so far, each read once however many annotations draw it
    (keyed by the stream object, held here while its id is used), and the
    decoded bytes all of them may still take (_MAX_APPEARANCE_BYTES)."""

    def __init__(self) -> None:
        self.seen: dict[int, Any] = {}
        self.left = _MAX_APPEARANCE_BYTES
        self.fonts: dict[int, tuple[Any, Any]] = {}  # id -> (font dictionary, pypdf's Font)

    def font(self, resource: Any) -> Any:
        """pypdf's reading of a font dictionary (its encoding, its ToUnicode
        map), once per font of the document; None if it cannot read it."""
        if id(resource) not in self.fonts:
            from pypdf.generic._font import Font

            try:
                font: Any = Font.from_font_resource(resource)
            except Exception:  # pypdf raises many kinds on a malformed font
                font = None
            self.fonts[id(resource)] = (resource, font)
        return self.fonts[id(resource)][1]

    def first(self, stream: Any) -> bool:
        """Whether ``stream`` is read here for the first time (and now read)."""
        if id(stream) in self.seen:
            return False
        self.seen[id(stream)] = stream
        return True


class _Appearance:
    """An appearance stream, read as the content stream it is."""

    def __init__(self, stream: Any, reader: Any, forms: _FormsRead) -> None:
        self.stream, self.reader, self.forms = stream, reader, forms


_MAX_FORM_DEPTH = 8  # Form XObjects drawn inside one another (Do), as deep as followed
_MAX_FORMS = 64  # Form XObjects followed from one appearance
_SHOW = frozenset((b"Tj", b"TJ", b"'", b'"'))


def _shown_string(value: Any, font: Any = None) -> str:
    """A string operand (hex and escapes decoded by pypdf) as ``font``
    shows it: its bytes through the font's encoding and ToUnicode map, as
    pypdf's text extraction reads them (two bytes a character under a
    composite font's Identity-H); with no font, its bytes as Latin-1."""
    raw = getattr(value, "original_bytes", None)
    if not isinstance(raw, bytes):
        return str(value) if isinstance(value, str) else ""
    if font is None:
        return raw.decode("latin-1")
    encoding = font.encoding
    if isinstance(encoding, str):
        try:
            text = raw.decode(encoding, "surrogatepass")
        except UnicodeDecodeError:
            text = raw.decode(encoding, "replace")
    else:
        text = "".join(encoding.get(byte, chr(byte)) for byte in raw)
    shown = font.character_map
    return "".join(shown.get(c, c) for c in text)


def _drawn(appearance: _Appearance, room: int,
           meter: Meter) -> tuple[str, str | None] | None:
    """The strings an appearance stream shows (Tj, TJ, ', "): each string
    operand as pypdf decodes it (a hex string, octal escapes), read through
    the font its Tf chose (_shown_string; a font pypdf cannot read leaves
    it not read whole); a Form XObject it draws (Do) followed through its
    /Resources, at most _MAX_FORM_DEPTH deep and _MAX_FORMS in all, each
    stream once in the whole document (_FormsRead), all of them decoding
    to at most _MAX_APPEARANCE_BYTES, the time budget checked before each
    stream and every _CHECK_EVERY operations. At most ``room`` + 1
    characters, each stream decoded to at most that (_stream_bytes); what
    was left unread, if anything (a stream decoding past that, a nested
    form in an encoding not read). None if the appearance itself is in
    such an encoding. A stream pypdf cannot parse whole is read up to the
    error and the rest left unread (never as its raw bytes: a hex string
    drawn before the error would go undecoded)."""
    from pypdf.generic import ContentStream, DecodedStreamObject

    stream, reader, read = appearance.stream, appearance.reader, appearance.forms
    out: list[str] = []
    size = 0
    forms = 0
    unread = cut = broken = over = late = unknown = False

    def walk(form: Any, depth: int, font: Any) -> None:
        nonlocal size, forms, unread, cut, broken, over, late, unknown
        if late or meter.out_of_time():
            late = True
            return
        limit = max(0, min(room - size, read.left))
        data = _stream_bytes(form, limit)
        if data is None:
            unread = True
            return
        if len(data) > limit:  # decoded past what may be read: the rest unread
            if limit == read.left:
                over = True
            else:
                cut = True
            data = data[:limit]
        read.left -= len(data)
        holder = DecodedStreamObject()
        holder.set_data(data)
        content = ContentStream(holder, reader)
        try:
            operations = content.operations
        except Exception:  # not parsed whole: what was, and the rest left unread
            operations = list(getattr(content, "_operations", None) or [])
            broken = True
        resources = _resolved(form.get("/Resources"))
        for done, (operands, operator) in enumerate(operations, 1):
            if size > room:
                return
            if done % _CHECK_EVERY == 0 and meter.out_of_time():
                late = True
                return
            if operator == b"Tf" and operands:
                fonts: Any = _resolved(resources.get("/Font")) \
                    if hasattr(resources, "get") else None
                chosen = _resolved(fonts.get(operands[0])) if hasattr(fonts, "get") else None
                font = read.font(chosen) if hasattr(chosen, "get") else None
                if font is None and chosen is not None:  # a font pypdf cannot read
                    unknown = True
            elif operator in _SHOW and operands:
                shown = operands[-1]
                parts = shown if operator == b"TJ" and isinstance(shown, list) else [shown]
                text = "".join(_shown_string(_resolved(p), font) for p in parts)
                out.append(text)
                size += len(text)
            elif operator == b"Do" and operands and depth < _MAX_FORM_DEPTH \
                    and hasattr(resources, "get"):
                xobjects = _resolved(resources.get("/XObject"))
                inner: Any = _resolved(xobjects.get(operands[0])) \
                    if hasattr(xobjects, "get") else None
                if hasattr(inner, "get_data") and inner.get("/Subtype") == "/Form" \
                        and forms < _MAX_FORMS and read.first(inner):
                    forms += 1
                    walk(inner, depth + 1, font)
                    if late:
                        return
            elif operator in (b"BT", b"ET"):
                out.append("\n")

    if _stream_bytes(stream, 0) is None:
        return None
    if read.first(stream):
        walk(stream, 0, None)
    text = "".join(out)[: room + 1]
    if cut:
        return text, "an appearance stream past the characters a part may hold was not inspected"
    if unread:
        return text, "a stream in an encoding not read was not inspected"
    if broken:
        return text, "an appearance stream past what could be parsed was not inspected"
    if unknown:
        return text, "an appearance stream in a font not read was not inspected"
    if over:
        return text, f"appearance streams past {_MAX_APPEARANCE_BYTES} bytes were not inspected"
    return text, None


def _annotations(page: Any, meter: Meter, reader: Any = None,
                 forms: _FormsRead | None = None) -> str:
    """The text a viewer shows in a page's annotations (a FreeText box, a
    note's contents, rich text), which ``extract_text`` leaves out."""
    annots = page.get("/Annots")
    if annots is None:
        return ""

    listed = annots.get_object()
    if not isinstance(listed, list):
        return ""  # not an array: no annotations a viewer shows
    if len(listed) > _MAX_ANNOTATIONS:  # the rest unread: not inspected whole
        meter.truncate(f"annotations past {_MAX_ANNOTATIONS} on a page were not inspected")

    read = _FormsRead() if forms is None else forms

    def values() -> Iterator[Any]:
        seen: set[int] = set()
        for ref in listed[:_MAX_ANNOTATIONS]:
            annot = ref.get_object()
            if not hasattr(annot, "get") or id(annot) in seen:
                continue
            seen.add(id(annot))
            for key in ("/Contents", "/RC", "/T", "/V"):  # /V: a widget's value
                yield _resolved(annot.get(key))
            # What a viewer draws: the appearance streams (their text
            # operators hold the strings shown), each state's too.
            appearance = _resolved(annot.get("/AP"))
            if hasattr(appearance, "get"):
                for key in ("/N", "/R", "/D"):
                    drawn = _resolved(appearance.get(key))
                    if hasattr(drawn, "get_data"):
                        yield _Appearance(drawn, reader, read)
                    elif hasattr(drawn, "values"):
                        yield from (_Appearance(v, reader, read) for v in
                                    (_resolved(v) for v in list(drawn.values())[:16])
                                    if hasattr(v, "get_data"))

    text = _texts(values(), meter, "annotations")
    return "\n" + text if text else ""


def _resolved(value: Any) -> Any:
    return value.get_object() if hasattr(value, "get_object") else value


def _outline(reader: Any, meter: Meter) -> str:
    """The titles of the document's outline (bookmarks), shown in a
    viewer's side pane: walked here by /First and /Next, each item once
    (a file may link them in a cycle), at most _MAX_ANNOTATIONS of them."""
    outlines = _resolved(reader.trailer["/Root"].get("/Outlines"))
    if not hasattr(outlines, "get"):
        return ""

    def titles() -> Iterator[Any]:
        seen: set[int] = set()
        todo = [outlines.get("/First")]
        while todo:
            item = _resolved(todo.pop())
            if not hasattr(item, "get") or id(item) in seen:
                continue
            if len(seen) >= _MAX_ANNOTATIONS:
                meter.truncate(f"outline items past {_MAX_ANNOTATIONS} were not inspected")
                return
            seen.add(id(item))
            yield _resolved(item.get("/Title"))
            todo += [item.get("/Next"), item.get("/First")]

    return _texts(titles(), meter, "outline titles")


def _form_values(reader: Any, meter: Meter) -> str:
    """The values of the document's form fields, shown in their boxes."""
    fields = list((reader.get_fields() or {}).values())
    if len(fields) > _MAX_ANNOTATIONS:
        meter.truncate(f"form fields past {_MAX_ANNOTATIONS} were not inspected")
    return _texts((_resolved(f.get("/V")) for f in fields[:_MAX_ANNOTATIONS]
                   if hasattr(f, "get")), meter, "form field values")
