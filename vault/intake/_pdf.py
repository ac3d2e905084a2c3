"""PDF text and labels, with pypdf (docs/POLICY.md §11.1).

Text is extracted page by page, with what the extraction leaves out of a
page (the text of its tiling patterns, its soft masks' groups and its
Type3 fonts' glyph procedures, its contents again where an ExtGState
sets a font), the annotations' and form fields' text (an appearance
stream's as the strings it draws, through the forms, patterns, masks and
glyphs it draws; a field's value, inherited ones, tooltip, options,
captions) and
the outline's (bookmarks') titles. Every stream pypdf decodes, whatever
reads it (the cross-reference and object streams its parser reads, a page's
contents, an appearance, the XMP metadata), and every one decoded here,
counts against one budget for the file as it is decoded (_Decoding); the
time budget is checked before each stream is decoded, between pages and
within the walks here. A PDF encrypted with a user password is not
inspected; one that opens with the empty password (owner-password
protection only) is. Labels come from the document information dictionary
(``/MSIP_Label_<guid>_<Field>`` entries, as Office writes them when
exporting a labelled document) and from the XMP metadata stream, parsed
here with defusedxml (not with pypdf's parser): its pdfx properties, and
the same names in other namespaces as decoys that may switch a label on,
never off; a packet past the metadata bound is refused, never skipped.
pypdf's log messages about malformed files are silenced while it runs,
but for the one saying a dictionary defines a key twice: met before the
labels are read, the file is refused (pypdf keeps the first definition, a
viewer may keep the last).
"""

from __future__ import annotations

import html
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, BinaryIO

from vault.intake._labels import from_properties, is_label_property, merge
from vault.intake._model import Meter, MiB, OfficeLabel, Refused
from vault.intake._scan import Scanner
from vault.intake._xml import parse_small

__all__ = ["read_pdf"]


_Saved = list[tuple[logging.Logger, int, bool, list[logging.Handler]]]


def _quiet() -> _Saved:
    """pypdf's log messages silenced, but for the one that says a dictionary
    defines a key twice (_note_duplicate), taken from the logger of the
    module that parses dictionaries; what is returned puts them back
    (_loud). Set by the first read under way and put back by the last
    (_counted): saved and restored by each read, two reads overlapping left
    the second without the duplicate keys noted, and pypdf silenced."""
    from pypdf.generic import DictionaryObject

    log, parser = logging.getLogger("pypdf"), logging.getLogger(DictionaryObject.__module__)
    saved = [(one, one.level, one.propagate, one.handlers) for one in (log, parser)]
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False
    parser.setLevel(logging.WARNING)
    parser.propagate = False
    parser.handlers = [_DUPLICATE_HANDLER]
    return saved


def _loud(saved: _Saved) -> None:
    for one, level, propagate, handlers in saved:
        one.setLevel(level)
        one.propagate = propagate
        one.handlers = handlers


# pypdf keeps the first of a key a dictionary defines twice and says so only
# in a log message ("Multiple definitions in dictionary at byte ... for key
# ..."); a viewer may keep the last. The keys so defined while a PDF is read
# are noted for that read (this thread's or task's).
_DUPLICATES: ContextVar[list[str] | None] = ContextVar("vault_pdf_duplicates", default=None)
_DUPLICATE_MESSAGE = re.compile(r"Multiple definitions in dictionary at byte \S+ for key (\S+)")


class _DuplicateKeys(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        noted = _DUPLICATES.get()
        if noted is None or not str(record.msg).startswith("Multiple definitions"):
            return
        if m := _DUPLICATE_MESSAGE.match(record.getMessage()):
            noted.append(m.group(1))


_DUPLICATE_HANDLER = _DuplicateKeys()


def _info_labels(reader: Any) -> list[OfficeLabel]:
    info = reader.metadata or {}
    props = {str(k).lstrip("/"): str(v) for k, v in info.items()
             if is_label_property(str(k).lstrip("/"))}
    return from_properties(props, "pdf:info")


PDFX = "http://ns.adobe.com/pdfx/1.3/"  # where Office writes a label in XMP, and reads it
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RDF_VALUES = (f"{{{_RDF}}}value", f"{{{_RDF}}}resource")  # a property's value as an attribute


def _xmp_data(reader: Any, meter: Meter) -> bytes | None:
    """The XMP packet the catalogue's ``/Metadata`` names, or None. A
    reference to an object that does not exist is null (ISO 32000-2
    §7.3.10), and a /Metadata that is no stream holds no packet: no reader
    takes one from either. A packet past ``max_metadata_bytes`` is refused,
    ``too-large``: its labels unread, the file was read as labelled none."""
    from pypdf.generic import StreamObject

    meta = reader.trailer["/Root"].get("/Metadata")
    meta = meta.get_object() if meta is not None else None
    if not isinstance(meta, StreamObject):
        return None
    data: bytes = meta.get_data()
    if len(data) > meter.budget.max_metadata_bytes:
        raise Refused("too-large", f"the XMP metadata is larger than "
                      f"{meter.budget.max_metadata_bytes} bytes")
    return data


def _xmp_readings(data: bytes, meter: Meter) -> dict[tuple[str, str], str]:
    """Each label property of an XMP packet, (namespace, name) -> its value:
    an attribute's, or a property element's text -- or, for one that holds
    elements (a language alternative's ``rdf:li``, an ``rdf:value``), the
    text of each leaf in it, and an ``rdf:value`` or ``rdf:resource``
    attribute. A property read with two different values is refused,
    ``ambiguous``: which one a reader takes is its own choice (the last one
    read was taken, and a decoy after ``true`` switched the label off)."""
    budget = meter.budget
    out: dict[tuple[str, str], str] = {}
    # depth -> the values of the subtrees ended there under the element open
    # above, two at most: enough to tell one value from more, each element
    # looked at once whatever its depth.
    below: dict[int, set[str]] = {}

    def note(tag: str, value: str) -> None:
        ns, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
        if is_label_property(local) and out.setdefault((ns, local), value) != value:
            raise Refused("ambiguous", "XMP metadata: a label property with two values")

    for tag, attrib, text, parents in parse_small(io.BytesIO(data), "XMP metadata",
                                                  budget.max_metadata_bytes,
                                                  budget.max_xml_depth):
        children = below.pop(len(parents) + 1, None)
        values = _two({text} if children is None or text else set(), children or set(),
                      {attrib[k] for k in _RDF_VALUES if k in attrib})
        if is_label_property(tag.rsplit("}", 1)[-1]):
            if len(values) > 1:
                raise Refused("ambiguous", "XMP metadata: a label property with two values")
            note(tag, values.pop() if values else "")
        for key, value in attrib.items():
            note(key, value)
        below[len(parents)] = _two(below.get(len(parents), set()), values)
    return out


def _two(*sets: set[str]) -> set[str]:
    """The union of ``sets``, two of its values at most."""
    out: set[str] = set()
    for one in sets:
        for value in one:
            if len(out) == 2:
                return out
            out.add(value)
    return out


def _xmp_labels(reader: Any, meter: Meter) -> list[OfficeLabel]:
    """Labels of the XMP metadata: those of the pdfx namespace, which a
    MIP-aware reader takes; a property of the same name in another
    namespace is a decoy, read as another reading of the label -- enabled
    if any reading says so (vault/intake/_labels.py), so it cannot switch
    the label off."""
    data = _xmp_data(reader, meter)
    if data is None:
        return []
    by_ns: dict[str, dict[str, str]] = {}
    for (ns, local), value in _xmp_readings(data, meter).items():
        by_ns.setdefault(ns, {})[local] = value
    labels = tuple(from_properties(by_ns.pop(PDFX, {}), "pdf:xmp"))
    for props in by_ns.values():
        labels = merge(labels, from_properties(props, "pdf:xmp"))
    return list(labels)


def _labels(reader: Any, meter: Meter) -> tuple[OfficeLabel, ...]:
    """The labels of the information dictionary and the XMP metadata,
    refused, ``ambiguous``, where a dictionary read for them (or before
    them: the trailer, the catalogue, the information dictionary, the
    metadata stream's) defines a key twice: pypdf keeps the first, a viewer
    may keep the last (an information dictionary holding ``_Enabled
    (false)`` then ``(true)`` was read as a label switched off)."""
    labels = merge(_info_labels(reader), _xmp_labels(reader, meter))
    if _DUPLICATES.get():
        raise Refused("ambiguous", "a PDF dictionary that defines a key twice")
    return labels


def read_pdf(fp: BinaryIO, scanner: Scanner, meter: Meter) -> tuple[OfficeLabel, ...]:
    """Scan a PDF's pages; returns the labels found in its metadata."""
    with _counted(meter) as decoding:
        try:
            labels = _read(fp, scanner, meter)
        except _Stop as stop:
            if stop.refused is not None:
                raise stop.refused from None
            return ()  # out of time before the labels were read: truncated
        except Refused:
            raise
        except Exception as e:  # pypdf raises many kinds on malformed input
            raise Refused("malformed", f"a PDF that cannot be read ({type(e).__name__})") \
                from None
        if decoding.stopped is not None and decoding.stopped.refused is not None:
            raise decoding.stopped.refused  # never read past, whatever caught it
        return labels


def _read(fp: BinaryIO, scanner: Scanner, meter: Meter) -> tuple[OfficeLabel, ...]:
    from pypdf import PasswordType, PdfReader

    token = _DUPLICATES.set([])  # the keys defined twice up to the labels
    try:
        reader = PdfReader(fp, strict=False)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise Refused("encrypted", "an encrypted PDF (it needs a password to open)")
        labels = _labels(reader, meter)
    finally:
        _DUPLICATES.reset(token)
    try:
        _scan(reader, scanner, meter)
    except _Stop as stop:
        if stop.refused is not None:
            raise
        # out of time inside pypdf: the labels stand, the text is truncated
    return labels


def _scan(reader: Any, scanner: Scanner, meter: Meter) -> None:
    """Scan the pages, then the form fields' values and the outline."""
    forms = _FormsRead()
    _same_pages(reader, meter)
    for number, page in enumerate(reader.pages, 1):
        if number > meter.budget.max_pdf_pages:
            meter.truncate(f"pages past {meter.budget.max_pdf_pages} were not inspected")
            break
        if meter.out_of_time():
            break
        scanner.start(f"page {number}")
        text = (page.extract_text() or "") + _annotations(page, meter, reader, forms)
        drawn = _page_drawn(page, meter, reader, forms)
        text += "\n" + drawn if drawn else ""
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


_MAX_STREAM_BYTES = 75_000_000  # one stream decoded: pypdf's own default bound
# One object stream decoded: pypdf parses it whole, a byte at a time through
# white space, before it returns (8 MiB: under a second), and a writer packs
# some hundred small objects in one (well under a MiB).
_MAX_OBJECT_STREAM_BYTES = 8 * MiB
# All of a file's object streams decoded: each within every ratio, a few
# hundred KB of white space compressed under the ratio still made a file
# pypdf parsed for 9 s; a writer's object streams hold a few hundred bytes
# an object, so a document of tens of thousands of pages stays within it.
_MAX_OBJECT_STREAMS_BYTES = 16 * MiB
# pypdf's bounds on what one filter may decode a stream to (pypdf.Configuration,
# pypdf >= 6.18), each set for every stream to what the file's budget still
# allows it; those the installed pypdf lacks are left out.
_OUTPUT_LIMITS = ("zlib_maximum_output_length", "lzw_maximum_output_length",
                  "run_length_maximum_output_length", "brotli_maximum_output_length",
                  "jbig2_maximum_output_length")


class _Stop(BaseException):
    """Ends pypdf's work from inside it: ``refused`` the file's refusal, or
    None when the time budget ran out. A BaseException because pypdf
    catches Exception in its many recovery paths (a stream it cannot
    decode, an object it cannot parse, a page tree it cannot walk) and
    would go on reading the file another way round the stream refused."""

    def __init__(self, refused: Refused | None) -> None:
        super().__init__(refused.reason if refused is not None else "out of time")
        self.refused = refused


class _Decoding:
    """The streams decoded for one file (pypdf's and those of
    _stream_bytes), counted against its budget as they are decoded: one
    stream at most _MAX_STREAM_BYTES (and ``max_part_bytes``), all of them
    ``max_total_bytes`` (with the text read, in the meter), and, past its
    first MiB, ``max_ratio`` times its encoded size, each stream and all of
    them together (a file's first MiB once, not each of its streams': a
    thousand streams of a MiB each, from a KB each, are a bomb); an object
    stream at most _MAX_OBJECT_STREAM_BYTES, all of them
    _MAX_OBJECT_STREAMS_BYTES. pypdf is
    told each stream's bound before it decodes it, so a bomb stops at the
    bound, never decoded whole; a stream pypdf decodes is also the moment
    the time budget is looked at, since pypdf's parse (of an object stream,
    a byte at a time through its white space) never returns to us in
    between. Once stopped, every later stream stops again."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.encoded = 0
        self.decoded = 0
        self.objects = 0  # of it, object streams
        self.stopped: _Stop | None = None

    def _bounds(self, encoded: int, objects: bool = False) -> list[tuple[int, str, str]]:
        """What a stream of ``encoded`` bytes (of ``objects``: an object
        stream) may decode to, bound by bound, each with the cause and
        reason past it."""
        budget = self.meter.budget
        ratio = budget.max_ratio
        most = _MAX_OBJECT_STREAM_BYTES if objects else min(_MAX_STREAM_BYTES,
                                                             budget.max_part_bytes)
        bounds = [
            (most, "too-large", f"a PDF {'object ' if objects else ''}stream decodes to more "
             f"than {most} bytes; not inspected"),
            (budget.max_total_bytes - self.meter.bytes, "too-large",
             f"more than {budget.max_total_bytes} bytes uncompressed; not inspected (a "
             "decompression bomb, or too large to vouch for)"),
            (max(MiB, ratio * max(encoded, 1)), "zip-bomb",
             f"a PDF stream inflates more than {ratio} times its compressed size (a "
             "decompression bomb)"),
            (max(MiB, ratio * max(self.encoded + encoded, 1)) - self.decoded, "zip-bomb",
             f"a PDF's streams inflate more than {ratio} times their compressed size (a "
             "decompression bomb)"),
        ]
        if objects:
            bounds.append((_MAX_OBJECT_STREAMS_BYTES - self.objects, "too-large",
                           f"a PDF's object streams decode to more than "
                           f"{_MAX_OBJECT_STREAMS_BYTES} bytes in all; not inspected"))
        return bounds

    def _stop(self, refused: Refused | None) -> _Stop:
        self.stopped = _Stop(refused)
        return self.stopped

    def decode(self, stream: Any, decode: Callable[[Any], bytes]) -> bytes:
        """pypdf's ``decode`` of ``stream``, within the bounds."""
        from pypdf import apply_configuration, get_configuration
        from pypdf.errors import LimitReachedError

        if self.stopped is not None:
            raise self.stopped
        if self.meter.out_of_time():
            raise self._stop(None)
        raw = getattr(stream, "_data", b"")
        encoded = len(raw) if isinstance(raw, bytes) else 0
        objects = stream.get("/Type") == "/ObjStm"
        most, cause, reason = min(self._bounds(encoded, objects))
        # One more than allowed: a stream decoding to exactly its bound is
        # read, one past it stops pypdf's decoder there. (0 would be none.)
        limits: dict[str, Any] = {name: max(most, 0) + 1 for name in _OUTPUT_LIMITS
                                  if hasattr(get_configuration(), name)}
        try:
            with apply_configuration(None, **limits):
                data = decode(stream)
        except LimitReachedError:  # past the bound (or past one of pypdf's own)
            raise self._stop(Refused(cause, reason)) from None
        self.count(encoded, len(data), objects)
        return data

    def count(self, encoded: int, decoded: int, objects: bool = False) -> None:
        """Counts a stream of ``encoded`` bytes decoded to ``decoded``;
        stops the read past any bound."""
        past = [(cause, reason) for most, cause, reason in self._bounds(encoded, objects)
                if decoded > most]
        self.encoded += encoded
        self.decoded += decoded
        self.objects += decoded if objects else 0
        if past:
            raise self._stop(Refused(*past[0]))
        try:
            self.meter.add_bytes(decoded)
        except Refused as e:
            raise self._stop(e) from None


# pypdf decodes every stream through pypdf.filters.decode_stream_data (called
# by EncodedStreamObject.get_data, looked up at each call) and offers no hook
# to count what it decodes across a file: its Configuration bounds one stream
# at a time. So while a PDF is read that function is replaced by one counting
# for the read in progress (_DECODING: this thread's or task's; pypdf used
# elsewhere meanwhile goes through untouched), and restored once the last
# read ends.
_DECODING: ContextVar[_Decoding | None] = ContextVar("vault_pdf_decoding", default=None)
_hook_lock = threading.Lock()
_hook_users = 0
_pypdf_decode: list[Callable[[Any], bytes]] = []  # the original, while replaced
_logging: list[_Saved] = []  # pypdf's loggers as they were, while silenced


def _decode_counted(stream: Any) -> bytes:
    decoding = _DECODING.get()
    decode = _pypdf_decode[0]
    return decode(stream) if decoding is None else decoding.decode(stream, decode)


@contextmanager
def _counted(meter: Meter) -> Iterator[_Decoding]:
    """Every stream decoded within, in this thread or task, counted by the
    _Decoding yielded."""
    import pypdf.filters

    global _hook_users
    decoding = _Decoding(meter)
    with _hook_lock:
        if _hook_users == 0:
            _pypdf_decode.append(pypdf.filters.decode_stream_data)
            setattr(pypdf.filters, "decode_stream_data", _decode_counted)  # noqa: B010
            _logging.append(_quiet())
        _hook_users += 1
    token = _DECODING.set(decoding)
    try:
        yield decoding
    finally:
        _DECODING.reset(token)
        with _hook_lock:
            _hook_users -= 1
            if _hook_users == 0:
                setattr(pypdf.filters, "decode_stream_data", _pypdf_decode.pop())  # noqa: B010
                _loud(_logging.pop())


_MAX_TREE_DEPTH = 64  # page tree nodes nested in one another, as deep as walked


def _same_pages(reader: Any, meter: Meter) -> None:
    """Refused unless the pages pypdf reads are those a viewer shows. A
    viewer (pdf.js) walks the page tree from /Root /Pages and shows as a
    page every node typed /Page or without /Kids, whatever else its /Type
    says; pypdf skips a node typed neither /Page nor /Pages (/page,
    /Pagex), its /Kids too, and reads a /Pages node without /Kids as no
    page: a page so typed was shown and never read. The tree is walked
    here as the viewer does, each node once (a node met twice, a cycle, is
    malformed), at most _MAX_TREE_DEPTH deep; the leaves must be pypdf's
    pages, in order. A tree's /Count is not compared: every leaf is read,
    as many as the viewer shows or more."""
    limit = meter.budget.max_pdf_pages
    shown: list[Any] = []
    seen: set[Any] = set()
    todo: list[tuple[Any, int]] = [(reader.trailer["/Root"].get("/Pages"), 0)]
    while todo and len(shown) <= limit:
        if meter.out_of_time():  # the tree not walked whole: the pages not vouched for
            raise _Stop(None)
        ref, depth = todo.pop()
        node = _resolved(ref)
        key = _key(ref) or id(node)
        if key in seen or depth > _MAX_TREE_DEPTH or not hasattr(node, "get"):
            raise Refused("malformed", "a PDF whose page tree is not a tree of pages")
        seen.add(key)
        kids = _resolved(node.get("/Kids"))
        if node.get("/Type") == "/Page" or kids is None:
            shown.append(_key(ref))
        elif isinstance(kids, list):
            todo += [(kid, depth + 1) for kid in reversed(kids)]
        else:
            raise Refused("malformed", "a PDF whose page tree is not a tree of pages")
    read = [_key(page.indirect_reference) for page in reader.pages[:len(shown)]]
    if read != shown[:len(read)] or len(read) < min(len(shown), limit):
        raise Refused("malformed", "a PDF page tree whose pages a viewer reads otherwise "
                      "(a page not typed /Page)")


def _key(ref: Any) -> tuple[int, int] | None:
    """An indirect object's number and generation; None for a direct one."""
    if ref is None or not hasattr(ref, "idnum"):
        return None
    return int(ref.idnum), int(ref.generation)


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
        rich = isinstance(value, _Rich)
        if rich:
            value = value.value
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
        text = _plain(str(value)) if rich else str(value)
        if len(text) > room:
            meter.truncate(f"{what} past {meter.budget.max_part_chars} characters were not "
                           "inspected")
            break
        room -= len(text)
        out.append(text)
    return "\n".join(out)


_MARKUP = re.compile(r"<[^<>]*>")


def _plain(rich: str) -> str:
    """Rich text (XHTML) as the text it shows: tags removed, character
    references decoded."""
    return html.unescape(_MARKUP.sub("", rich))


def _stream_bytes(stream: Any, room: int) -> bytes | None:
    """A stream's bytes, decoded here to at most ``room`` + 1 (pypdf would
    decode all of it and keep it: a 60 KB Flate stream of 60 MiB per page),
    counted against the file's budget (_Decoding.count). None for an
    encoding other than none or Flate."""
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
        data = zlib.decompressobj().decompress(raw, room + 1)
    except zlib.error:
        return None
    decoding = _DECODING.get()
    if decoding is not None:  # bounded by room here, counted with the file's
        decoding.count(len(raw), len(data))
    return data


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
    """A content stream read for the strings it draws: an appearance
    stream, a tiling pattern, or a page's contents (a stream, or the
    array of streams a viewer reads as one); ``resources`` are those it
    is drawn with when it has none of its own (its drawer's, the page's,
    or an annotation's appearance the form's default resources)."""

    def __init__(self, stream: Any, reader: Any, forms: _FormsRead,
                 resources: Any = None) -> None:
        self.stream, self.reader, self.forms = stream, reader, forms
        self.resources = resources


_MAX_FORM_DEPTH = 8  # forms and patterns drawn inside one another, as deep as followed
_MAX_FORMS = 64  # Form XObjects, tiling patterns, mask groups followed from one stream
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


def _content_bytes(content: Any, limit: int) -> bytes | None:
    """A content stream's bytes (_stream_bytes), or those of an array of
    them joined as a viewer joins a page's: None if one is in an encoding
    not read."""
    if not isinstance(content, list):
        return _stream_bytes(content, limit)
    out = bytearray()
    for part in content:
        data = _stream_bytes(_resolved(part), max(0, limit - len(out)))
        if data is None:
            return None
        out += data + b"\n"
        if len(out) > limit:
            break
    return bytes(out)


def _entry(resources: Any, kind: str, name: Any) -> Any:
    """The resource ``name`` of ``kind`` (/Font, /XObject, /ExtGState,
    /Pattern) in ``resources``, resolved; None if there is none."""
    group: Any = _resolved(resources.get(kind)) if hasattr(resources, "get") else None
    return _resolved(group.get(name)) if hasattr(group, "get") else None


_MAX_GLYPHS = 256  # glyph procedures read of one Type3 font: its one-byte codes pick 256


def _side_streams(resources: Any, read: _FormsRead, meter: Meter) -> list[tuple[Any, Any, bool]]:
    """The content streams a viewer may draw through ``resources`` besides
    those a ``Do`` names, each with the resources it is read with if it has
    none of its own (``resources``, as a viewer falls back to its drawer's)
    and whether it counts among the forms and patterns of one stream
    (_MAX_FORMS): every tiling pattern (/PatternType 1, whose cell a fill
    paints); every soft mask's group (an ExtGState's /SMask /G, also the
    ExtGState of a shading pattern: a fill through the mask shows the
    shapes the group draws, text too); and the glyph procedures of every
    Type3 font (/CharProcs: what its glyphs draw, a glyph's own text
    included), read with the font's /Resources, at most _MAX_GLYPHS a font
    (past which the inspection is not whole) and not counted as forms.
    Each /Pattern, /ExtGState and /Font dictionary and each Type3 font is
    looked into once in the document (_FormsRead.first): a glyph drawing
    with its own font, or a mask's group listing its own ExtGState, ends."""
    if not hasattr(resources, "get"):
        return []
    found: list[tuple[Any, Any, bool]] = []
    states: list[Any] = []
    patterns: Any = _resolved(resources.get("/Pattern"))
    if hasattr(patterns, "values") and read.first(patterns):
        for pattern in (_resolved(v) for v in patterns.values()):
            kind = pattern.get("/PatternType") if hasattr(pattern, "get") else None
            if kind == 1 and hasattr(pattern, "get_data"):
                found.append((pattern, resources, True))
            elif kind == 2:
                states.append(_resolved(pattern.get("/ExtGState")))
    listed: Any = _resolved(resources.get("/ExtGState"))
    if hasattr(listed, "values") and read.first(listed):
        states += [_resolved(v) for v in listed.values()]
    for state in states:
        mask: Any = _resolved(state.get("/SMask")) if hasattr(state, "get") else None
        group: Any = _resolved(mask.get("/G")) if hasattr(mask, "get") else None
        if hasattr(group, "get_data") and group.get("/Subtype") in ("/Form", None):
            found.append((group, resources, True))
    fonts: Any = _resolved(resources.get("/Font"))
    if hasattr(fonts, "values") and read.first(fonts):
        for font in (_resolved(v) for v in fonts.values()):
            if (not hasattr(font, "get") or font.get("/Subtype") != "/Type3"
                    or not read.first(font)):
                continue
            procs: Any = _resolved(font.get("/CharProcs"))
            if not hasattr(procs, "values"):
                continue
            own: Any = _resolved(font.get("/Resources"))
            drawn_with = own if hasattr(own, "get") else resources
            glyphs = [g for g in (_resolved(v) for v in procs.values()) if hasattr(g, "get_data")]
            if len(glyphs) > _MAX_GLYPHS:
                meter.truncate(f"glyphs past {_MAX_GLYPHS} in a Type3 font were not inspected")
            found += [(g, drawn_with, False) for g in glyphs[:_MAX_GLYPHS]]
    return found


def _drawn(appearance: _Appearance, room: int,
           meter: Meter) -> tuple[str, str | None] | None:
    """The strings a content stream shows (Tj, TJ, ', "), as a viewer
    draws them: each string operand as pypdf decodes it (a hex string,
    octal escapes), read through the font the graphics state holds -- set
    by Tf or by an ExtGState's /Font (gs), restored by Q to what it was at
    its q (_shown_string; a font pypdf cannot read leaves it not read
    whole); a Form XObject it draws (Do), and every tiling pattern, soft
    mask group and Type3 glyph procedure among its resources
    (_side_streams), followed through their /Resources, or the drawer's
    when they have none, at most _MAX_FORM_DEPTH deep and _MAX_FORMS in
    all, glyphs apart (past which the rest is not read whole), each stream
    once in the whole document (_FormsRead), all
    of them decoding to at most _MAX_APPEARANCE_BYTES, the time budget
    checked before each stream and every _CHECK_EVERY operations. At most
    ``room`` + 1 characters, each stream decoded to at most that
    (_stream_bytes); what was left unread, if anything (a stream decoding
    past that, a nested form in an encoding not read). None if the stream
    itself is in such an encoding. A stream pypdf cannot parse whole is
    read up to the error and the rest left unread (never as its raw bytes:
    a hex string drawn before the error would go undecoded)."""
    from pypdf.generic import ContentStream, DecodedStreamObject

    stream, reader, read = appearance.stream, appearance.reader, appearance.forms
    out: list[str] = []
    size = 0
    forms = 0
    unread = cut = broken = over = late = unknown = many = False

    def chosen(resource: Any) -> Any:
        """pypdf's reading of the font dictionary ``resource``; None (its
        bytes read as Latin-1, a viewer's fallback font) if it is none."""
        nonlocal unknown
        if not hasattr(resource, "get"):
            return None
        read_font = read.font(resource)
        if read_font is None:  # a font pypdf cannot read
            unknown = True
        return read_font

    def follow(inner: Any, depth: int, font: Any, resources: Any, counted: bool = True) -> None:
        """Walk the form, pattern, mask group or glyph ``inner``, once in
        the document."""
        nonlocal forms, many
        if id(inner) in read.seen:
            return
        if (counted and forms >= _MAX_FORMS) or depth >= _MAX_FORM_DEPTH:
            many = True
            return
        read.first(inner)
        forms += 1 if counted else 0
        walk(inner, depth + 1, font, resources)

    def walk(form: Any, depth: int, font: Any, inherited: Any) -> None:
        nonlocal size, unread, cut, broken, over, late
        if late or meter.out_of_time():
            late = True
            return
        limit = max(0, min(room - size, read.left))
        data = _content_bytes(form, limit)
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
        own: Any = _resolved(form.get("/Resources")) if hasattr(form, "get") else None
        resources = own if hasattr(own, "get") else inherited  # a viewer's inheritance
        saved: list[Any] = []  # the font at each open q
        for done, (operands, operator) in enumerate(operations, 1):
            if size > room:
                return
            if done % _CHECK_EVERY == 0 and meter.out_of_time():
                late = True
                return
            if operator == b"q":
                saved.append(font)
            elif operator == b"Q":
                font = saved.pop() if saved else font
            elif operator == b"Tf" and operands:
                font = chosen(_entry(resources, "/Font", operands[0]))
            elif operator == b"gs" and operands:
                state = _entry(resources, "/ExtGState", operands[0])
                set_font = _resolved(state.get("/Font")) if hasattr(state, "get") else None
                if isinstance(set_font, list) and set_font:
                    font = chosen(_resolved(set_font[0]))
            elif operator in _SHOW and operands:
                shown = operands[-1]
                parts = shown if operator == b"TJ" and isinstance(shown, list) else [shown]
                text = "".join(_shown_string(_resolved(p), font) for p in parts)
                out.append(text)
                size += len(text)
            elif operator == b"Do" and operands:
                inner = _entry(resources, "/XObject", operands[0])
                if hasattr(inner, "get_data") and inner.get("/Subtype") == "/Form":
                    follow(inner, depth, font, resources)
            elif operator in (b"BT", b"ET"):
                out.append("\n")
            if late:
                return
        others.extend(_side_streams(resources, read, meter))

    others: list[tuple[Any, Any, bool]] = []  # met in resources, each drawn on its own
    if _content_bytes(stream, 0) is None:
        return None
    if read.first(stream):
        walk(stream, 0, None, appearance.resources)
    for other, resources, counted in others:  # grows as it goes: each drawn in its
        if late:                              # own graphics state (no font), none nested
            break
        follow(other, 0, None, resources, counted)
    text = "".join(out)[: room + 1]
    if cut:
        return text, "an appearance stream past the characters a part may hold was not inspected"
    if unread:
        return text, "a stream in an encoding not read was not inspected"
    if broken:
        return text, "an appearance stream past what could be parsed was not inspected"
    if unknown:
        return text, "an appearance stream in a font not read was not inspected"
    if many:
        return text, (f"forms, patterns and soft masks past {_MAX_FORMS}, or nested past "
                      f"{_MAX_FORM_DEPTH}, were not inspected")
    if over:
        return text, f"appearance streams past {_MAX_APPEARANCE_BYTES} bytes were not inspected"
    return text, None


def _annotations(page: Any, meter: Meter, reader: Any = None,
                 forms: _FormsRead | None = None) -> str:
    """The text a viewer shows in a page's annotations (a FreeText box, a
    note's contents, rich text, a widget's field as _field_texts reads it,
    its own and those it inherits through /Parent), which ``extract_text``
    leaves out."""
    annots = page.get("/Annots")
    if annots is None:
        return ""

    listed = annots.get_object()
    if not isinstance(listed, list):
        return ""  # not an array: no annotations a viewer shows
    if len(listed) > _MAX_ANNOTATIONS:  # the rest unread: not inspected whole
        meter.truncate(f"annotations past {_MAX_ANNOTATIONS} on a page were not inspected")

    read = _FormsRead() if forms is None else forms
    # An appearance with no /Resources of its own is drawn, as viewers draw
    # it, with the form's default resources (/AcroForm /DR).
    defaults = _default_resources(reader)

    def values() -> Iterator[Any]:
        seen: set[int] = set()
        fields: set[int] = set()  # apart: a parent may be an annotation listed later
        for ref in listed[:_MAX_ANNOTATIONS]:
            annot = ref.get_object()
            if not hasattr(annot, "get") or id(annot) in seen:
                continue
            seen.add(id(annot))
            for key in ("/Contents", "/T"):
                yield _resolved(annot.get(key))
            yield _Rich(_resolved(annot.get("/RC")))
            yield from _field_texts(annot)
            for parent in _ancestors(annot, fields, meter):  # a widget's field
                yield from _field_texts(parent)
            # What a viewer draws: the appearance streams (their text
            # operators hold the strings shown), every state's too: the
            # 4 MiB all of them may decode to bounds how many are read.
            appearance = _resolved(annot.get("/AP"))
            if hasattr(appearance, "get"):
                for key in ("/N", "/R", "/D"):
                    drawn = _resolved(appearance.get(key))
                    if hasattr(drawn, "get_data"):
                        yield _Appearance(drawn, reader, read, defaults)
                    elif hasattr(drawn, "values"):
                        yield from (_Appearance(v, reader, read, defaults) for v in
                                    (_resolved(v) for v in drawn.values())
                                    if hasattr(v, "get_data"))

    text = _texts(values(), meter, "annotations")
    return "\n" + text if text else ""


def _default_resources(reader: Any) -> Any:
    """The interactive form's default resources (/AcroForm /DR), None if
    the document has none."""
    if reader is None:
        return None
    form = _resolved(reader.trailer["/Root"].get("/AcroForm"))
    found = _resolved(form.get("/DR")) if hasattr(form, "get") else None
    return found if hasattr(found, "get") else None


_MAX_FIELD_DEPTH = 32  # fields nested in one another (/Kids, /Parent), as deep as followed


class _Rich:
    """A rich text string or stream (/RC, /RV: XHTML), read as the text it
    shows: its markup removed and its character references decoded, so a
    number split across styled spans reads whole."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _strings(value: Any) -> Iterator[Any]:
    """``value``, or each item of it if it is an array (a list box's
    several values; /Opt: each option, its export value and the text
    shown for it)."""
    if isinstance(value, list):
        yield from (_resolved(item) for item in value)
    else:
        yield value


def _field_texts(node: Any) -> Iterator[Any]:
    """What a viewer shows of a form field or widget besides its
    appearance streams: its value (/V), tooltip (/TU), rich value (/RV),
    the options of a list or combo box (/Opt) and a button's captions
    (/MK: /CA, /RC rollover, /AC pressed)."""
    yield from _strings(_resolved(node.get("/V")))
    yield _resolved(node.get("/TU"))
    yield _Rich(_resolved(node.get("/RV")))
    opt = _resolved(node.get("/Opt"))
    if isinstance(opt, list):
        for item in opt:  # an item, or an [export value, text shown] pair
            item = _resolved(item)
            yield from (_resolved(i) for i in item[:2]) if isinstance(item, list) else (item,)
    captions = _resolved(node.get("/MK"))
    if hasattr(captions, "get"):
        for key in ("/CA", "/RC", "/AC"):
            yield _resolved(captions.get(key))


def _ancestors(node: Any, seen: set[int], meter: Meter) -> Iterator[Any]:
    """The fields ``node`` inherits from by /Parent (its value, where it
    has none), nearest first, up to one already in ``seen`` (whose own
    were read with it; a file may link them in a cycle), at most
    _MAX_FIELD_DEPTH (past which the inspection is not whole)."""
    parent = _resolved(node.get("/Parent"))
    for _ in range(_MAX_FIELD_DEPTH):
        if not hasattr(parent, "get") or id(parent) in seen:
            return
        seen.add(id(parent))
        yield parent
        parent = _resolved(parent.get("/Parent"))
    if hasattr(parent, "get") and id(parent) not in seen:
        meter.truncate(f"form fields nested past {_MAX_FIELD_DEPTH} were not inspected")


def _page_drawn(page: Any, meter: Meter, reader: Any, forms: _FormsRead) -> str:
    """What a viewer draws on a page that ``extract_text`` leaves out: the
    text of every tiling pattern, soft mask group and Type3 glyph
    procedure among the page's resources and those of the forms it draws
    (_side_streams, read by _drawn, each once in the document), and,
    where a font is set by an ExtGState (gs /Font, which extract_text does
    not follow), the page's contents read again through _drawn. The
    resources are walked for each page (pages share them: what one finds
    holds for every page drawing them), each once, at most _MAX_FORM_DEPTH
    deep and _MAX_ANNOTATIONS in all (past which the inspection is not
    whole), the time budget checked before each."""
    resources = _resolved(page.get("/Resources"))
    others: list[_Appearance] = []
    font_state = False
    seen: dict[int, Any] = {}  # resources and /XObject dictionaries walked, held
    todo = [(resources, 0)]
    while todo:
        res, depth = todo.pop()
        if not hasattr(res, "get") or id(res) in seen:
            continue
        if len(seen) >= _MAX_ANNOTATIONS or depth > _MAX_FORM_DEPTH:
            meter.truncate(f"a page's forms past {_MAX_ANNOTATIONS}, or nested past "
                           f"{_MAX_FORM_DEPTH}, were not inspected")
            break
        if meter.out_of_time():
            break
        seen[id(res)] = res
        states = _resolved(res.get("/ExtGState"))
        if hasattr(states, "values") and any(
                _resolved(_resolved(v).get("/Font")) is not None for v in states.values()
                if hasattr(_resolved(v), "get")):
            font_state = True
        others += [_Appearance(p, reader, forms, drawn_with)
                   for p, drawn_with, _ in _side_streams(res, forms, meter)
                   if id(p) not in forms.seen]
        xobjects = _resolved(res.get("/XObject"))
        if hasattr(xobjects, "values") and id(xobjects) not in seen:
            seen[id(xobjects)] = xobjects  # shared: its forms listed once
            todo += [(_resolved(x.get("/Resources")), depth + 1)
                     for x in (_resolved(v) for v in xobjects.values())
                     if hasattr(x, "get_data") and x.get("/Subtype") == "/Form"]
    contents = _resolved(page.get("/Contents"))
    drawn = ([_Appearance(contents, reader, forms, resources)]
             if font_state and contents is not None else []) + others
    return _texts(iter(drawn), meter, "page content")


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
    """What the document's form fields show (_field_texts), walked from
    /AcroForm /Fields by /Kids, each field once (a file may link them in
    a cycle), at most _MAX_ANNOTATIONS of them and _MAX_FIELD_DEPTH deep
    (past which the inspection is not whole)."""
    form = _resolved(reader.trailer["/Root"].get("/AcroForm"))
    listed = _resolved(form.get("/Fields")) if hasattr(form, "get") else None
    if not isinstance(listed, list):
        return ""

    def values() -> Iterator[Any]:
        seen: set[int] = set()
        listed_kids: dict[int, Any] = {}
        todo = [(field, 0) for field in reversed(listed)]
        while todo:
            field, depth = todo.pop()
            field = _resolved(field)
            if not hasattr(field, "get") or id(field) in seen:
                continue
            if len(seen) >= _MAX_ANNOTATIONS or depth >= _MAX_FIELD_DEPTH:
                meter.truncate(f"form fields past {_MAX_ANNOTATIONS}, or nested past "
                               f"{_MAX_FIELD_DEPTH}, were not inspected")
                return
            seen.add(id(field))
            yield from _field_texts(field)
            kids = _resolved(field.get("/Kids"))
            if isinstance(kids, list) and id(kids) not in listed_kids:
                listed_kids[id(kids)] = kids  # shared: its fields listed once
                todo += [(kid, depth + 1) for kid in reversed(kids)]

    return _texts(values(), meter, "form field values")
