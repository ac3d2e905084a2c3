"""Marking on the way out (docs/POLICY.md §11.6): write a policy label back
into an Office file's sensitivity-label metadata, so that Microsoft 365
shows and enforces it once the document leaves the vault.

The policy label is translated to the Office label its intake section
maps to it (:func:`office_label_for`), and written as ``MSIP_Label_*``
custom properties and in LabelInfo, in every part intake reads labels
from (found as it finds them: by relationship, by usual name in any case,
by content type; ``docProps/custom.xml`` created if there is none). Every
other part is copied byte for byte. A PDF gets the same properties in its
document information dictionary (:func:`mark_pdf`; pypdf rewrites the
whole file). Either copy is inspected before it is handed out, and
refused unless intake reads it as carrying the vault's label alone.
"""

from __future__ import annotations

import io
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException

from vault.errors import BadDataError
from vault.intake._labels import CUSTOM_PROPS, LABEL_NS, is_label_property
from vault.intake._model import Budget, Meter, Refused
from vault.intake._opc import CUSTOM_PROPERTIES_REL, CUSTOM_PROPERTIES_TYPE
from vault.intake._xml import parse_small
from vault.intake._zipwrite import ZipCopier

if TYPE_CHECKING:
    from vault.policy import Label, Policy
    from vault.policy._intake_model import OfficeLabelMapping

__all__ = ["mark_office", "mark_pdf", "name_problem", "office_label_for"]

_FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"
_PROPS_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
_VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"


def office_label_for(policy: Policy, label: Label) -> OfficeLabelMapping | None:
    """The Office label to mark a document labelled ``label`` with: of the
    mappings (with an id) whose label is at least ``label`` -- a level as
    high, every compartment and caveat of it -- the least (lowest level,
    then fewest compartments and caveats; policy order breaks ties). None
    when no mapping covers it: a copy read back at intake takes the mapped
    label as its floor, so marking it lower would let whoever seals the
    copy lower the document without the policy's leave (§6.4)."""
    rank = policy.level_rank
    covering = [m for m in policy.intake.office_labels if m.id is not None
                and rank(m.label.level) >= rank(label.level)
                and m.label.compartments >= label.compartments
                and m.label.caveats >= label.caveats]
    return min(covering, key=lambda m: (rank(m.label.level),
                                        len(m.label.compartments) + len(m.label.caveats)),
               default=None)


# XML 1.0's Char production: what an XML part (and a PDF text string read
# back as one) may hold. NUL or U+0001 written there makes a part no XML
# parser reads (Office calls the file corrupt); a lone surrogate cannot be
# encoded at all.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def name_problem(mapping: OfficeLabelMapping) -> str | None:
    """Why ``mapping``'s Office label name cannot be written into a file, or
    None. A policy refuses such a name (docs/POLICY.md §2.3); one installed
    before it did is refused here, before anything is written."""
    found = _NOT_XML_CHAR.search(mapping.name or "")
    if found is None:
        return None
    return (f"the policy's Office label name for {mapping.rule_id} holds U+"
            f"{ord(found.group()):04X}, which an Office file cannot carry")


NAME_HINT = "the officer corrects the name in the policy's 'intake: office_labels' and " \
    "applies it ('vault policy check' names the character); or open it without --mark"


def _fields(mapping: OfficeLabelMapping, site_id: str | None, method: str,
            now: datetime) -> dict[str, str]:
    assert mapping.id is not None
    problem = name_problem(mapping)
    if problem:
        raise BadDataError(problem, hint=NAME_HINT)
    out = {"Enabled": "true", "SetDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "Method": method,
           "Name": mapping.name or mapping.id}
    if site_id:
        out["SiteId"] = site_id
    out["ActionId"] = str(uuid.uuid4())
    out["ContentBits"] = "0"
    return {f"MSIP_Label_{mapping.id}_{k}": v for k, v in out.items()}


def _custom_xml(old: list[Element], fields: dict[str, str]) -> bytes:
    """custom.xml with the ``old`` properties (:func:`_old_properties`),
    then the label's fields, numbered from 2 in that order."""
    scope = {_PROPS_NS: "", _VT_NS: "vt"}  # the prefixes the root declares
    rows = [_element(prop, scope, pid) for pid, prop in enumerate(old, 2)]
    rows += [f'<property fmtid="{_FMTID}" pid="{pid}" name={quoteattr(name)}>'
             f"<vt:lpwstr>{_text(value)}</vt:lpwstr></property>"
             for pid, (name, value) in enumerate(fields.items(), len(old) + 2)]
    lines = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n',
             f'<Properties xmlns="{_PROPS_NS}" xmlns:vt="{_VT_NS}">', *rows, "</Properties>"]
    return "".join(lines).encode("utf-8")


def _old_properties(data: bytes, budget: Budget, part: str) -> list[Element]:
    """The properties of a custom properties part that are not labels
    (named ``MSIP_Label_`` in any case, as intake reads them), each whole,
    to be written again as it is: its attributes (``linkTarget`` too), its
    value's elements -- a ``vt:vector`` with its ``size``, ``baseType``
    and items, a ``vt:filetime``, an empty value -- and their text.
    Rebuilt from its last element's name and text, a vector was written
    as an empty ``<vt:vector></vt:vector>``, its values lost and the part
    invalid, and a property's other attributes were dropped."""
    from defusedxml.ElementTree import fromstring

    # Read first as intake reads it: bounded, no DTD, its nesting bounded.
    parse_small(io.BytesIO(data), part, budget.max_metadata_bytes, budget.max_xml_depth)
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException):
        raise Refused("malformed", f"{part} is not well-formed XML") from None
    return [prop for prop in root if _local(prop.tag) == "property"
            and (name := prop.get("name")) and not is_label_property(name)]


_XML_NS = "http://www.w3.org/XML/1998/namespace"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(value: str) -> str:
    # A carriage return the source wrote as &#13; stays one: written raw,
    # a parser reads it as a line feed.
    return escape(value, {"\r": "&#13;"})


def _element(elem: Element, scope: dict[str, str], pid: int | None = None) -> str:
    """``elem`` and its subtree as XML, where ``scope`` gives the prefix
    of each namespace declared around it ("" the default's); one not
    declared is declared where it is first used. ``pid``: the number its
    ``pid`` attribute is given."""
    scope = dict(scope)
    declared: list[str] = []

    def declare(ns: str, prefix: str) -> None:
        for other in [k for k, v in scope.items() if v == prefix]:
            del scope[other]
        scope[ns] = prefix
        declared.append(f" xmlns:{prefix}={quoteattr(ns)}" if prefix else
                        f" xmlns={quoteattr(ns)}")

    def qualified(tag: str, attribute: bool) -> str:
        ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        if ns == _XML_NS:
            return f"xml:{local}"
        if attribute and not ns:
            return local
        prefix = scope.get(ns)
        if prefix is None or (attribute and not prefix):  # an attribute needs a prefix
            if ns or attribute:
                taken = set(scope.values())
                prefix = next(f"ns{n}" for n in range(len(taken) + 1) if f"ns{n}" not in taken)
            else:  # an element in no namespace, inside a default one
                prefix = ""
            declare(ns, prefix)
        return f"{prefix}:{local}" if prefix else local

    tag = qualified(elem.tag, False)
    attrs = dict(elem.attrib)
    if pid is not None:
        attrs["pid"] = str(pid)
    written = "".join(f" {qualified(k, True)}={quoteattr(v)}" for k, v in attrs.items())
    body = _text(elem.text or "") + "".join(
        _element(child, scope) + _text(child.tail or "") for child in elem)
    return f"<{tag}{''.join(declared)}{written}>{body}</{tag}>"


def _label_info(mapping: OfficeLabelMapping, site_id: str | None, method: str) -> bytes:
    body = ""
    if site_id:  # siteId is required: without it, no label element (custom properties apply)
        body = (f'<clbl:label id="{{{mapping.id}}}" enabled="1" method={quoteattr(method)} '
                f'siteId="{{{site_id}}}" removed="0" />')
    return ('<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n'
            f'<clbl:labelList xmlns:clbl="{LABEL_NS}">{body}</clbl:labelList>').encode()


def _insert(data: bytes, closing: bytes, element: str, part: str) -> bytes:
    at = data.rfind(closing)
    if at < 0:
        raise BadDataError(f"{part} has no {closing.decode()}; not an Office document")
    return data[:at] + element.encode("utf-8") + data[at:]


@contextmanager
def _seekable(src: BinaryIO) -> Iterator[BinaryIO]:
    """``src``, or a temporary copy of it when it cannot seek (a pipe)."""
    try:
        ok = src.seekable()
    except (AttributeError, ValueError, OSError):
        ok = False
    if ok:
        yield src
        return
    with tempfile.TemporaryFile() as spool:
        while chunk := src.read(1 << 20):
            spool.write(chunk)
        spool.seek(0)
        yield spool


def mark_office(src: BinaryIO, dst: BinaryIO, mapping: OfficeLabelMapping, *,
                site_id: str | None = None, method: str = "Privileged",
                now: datetime | None = None, budget: Budget | None = None) -> None:
    """Copy the Office document ``src`` to ``dst`` with its sensitivity label
    set to ``mapping`` (see :func:`office_label_for`). ``site_id`` is the
    tenant's id (default: the mapping's, else the one the file already
    carries). BadDataError when ``src`` is not an Office document that can
    be marked, or when intake would not read the copy as carrying that
    label alone (:func:`_vouched`); nothing is written then."""
    if mapping.id is None:
        raise BadDataError("this Office label mapping has no id (GUID); it cannot be written")
    budget = budget or Budget()
    with _seekable(src) as seekable, _spool() as marked:
        _mark_zip(seekable, marked, mapping, site_id, method, now, budget)
        _vouched(marked, mapping, budget)
        _copy(marked, dst)


_SPOOLED = 64 << 20  # a marked copy held in memory up to this, on disk past it


@contextmanager
def _spool() -> Iterator[BinaryIO]:
    with tempfile.SpooledTemporaryFile(_SPOOLED) as spool:
        yield cast(BinaryIO, spool)


def _copy(src: BinaryIO, dst: BinaryIO) -> None:
    src.seek(0)
    while chunk := src.read(1 << 20):
        dst.write(chunk)


def _vouched(marked: BinaryIO, mapping: OfficeLabelMapping, budget: Budget) -> None:
    """BadDataError unless intake reads the marked copy and finds the label
    written, enabled, and no other. A copy it could not read was sealed
    again at any label its sealer gave (custom.xml added beside a
    ``docProps/Custom.xml``: two parts of one name), and one with another
    label left in it (a LabelInfo or custom properties part under another
    name, a property named in lowercase) carried that label too. A copy cut
    short by the time or text budget stands: at seal it counts as not
    inspected whole (docs/POLICY.md §11.5)."""
    from vault.intake._inspect import inspect

    marked.seek(0)
    found = inspect(marked, budget=budget, rules=())
    if not found.inspectable:
        raise BadDataError(f"cannot mark this file: intake could not read the marked copy "
                           f"({found.reason})")
    if [(lab.id, lab.enabled) for lab in found.office_labels] != [(mapping.id, True)]:
        raise BadDataError("cannot mark this file: the marked copy would carry a label "
                           "besides the vault's")


def _mark_zip(src: BinaryIO, dst: BinaryIO, mapping: OfficeLabelMapping, site_id: str | None,
              method: str, now: datetime | None, budget: Budget) -> None:
    from vault.intake._labels import guid
    from vault.intake._office import label_parts, read_labels
    from vault.intake._opc import CONTENT_TYPES, PACKAGE_RELS, Package, main_part
    from vault.intake._zip import SafeZip

    meter = Meter(budget)
    try:
        zf = SafeZip(src, meter)
        pkg = Package.read(zf)
        try:
            _, main = main_part(pkg)
        except Refused as e:
            raise Refused(e.cause, "not a Word, Excel or PowerPoint document" if
                          e.cause == "unsupported" else e.reason) from None
        found = read_labels(zf, meter, pkg)
        site = guid(site_id) or mapping.site_id or next(
            (lab.site_id for lab in found if lab.site_id), None)
        fields = _fields(mapping, site, method, now or datetime.now(UTC))
        # The parts intake reads labels from, found as it finds them (by
        # relationship, usual name in any case, content type): each is
        # rewritten, so the copy carries the vault's label and no other.
        label_info, custom = label_parts(pkg)
        _rewritable(set(label_info), set(custom), main, pkg)
        replace = {name: _label_info(mapping, site, method) for name in label_info}
        for name in custom:
            with zf.open(name, budget.max_metadata_bytes) as f:
                replace[name] = _custom_xml(_old_properties(f.read(), budget, name), fields)
        if not custom:  # added, with its content type and relationship
            types, rels = zf.find(CONTENT_TYPES), zf.find(PACKAGE_RELS)
            for stored, usual in ((types, CONTENT_TYPES), (rels, PACKAGE_RELS)):
                if stored is None:
                    raise Refused("malformed", f"it has no {usual}")
            assert types is not None and rels is not None
            replace[CUSTOM_PROPS] = _custom_xml([], fields)
            replace[types] = _insert(
                _read(zf, types, budget), b"</Types>",
                f'<Override PartName="/{CUSTOM_PROPS}" ContentType="{CUSTOM_PROPERTIES_TYPE}"/>',
                CONTENT_TYPES)
            replace[rels] = _insert(
                _read(zf, rels, budget), b"</Relationships>",
                f'<Relationship Id="rIdVaultCustomProps" Type="{CUSTOM_PROPERTIES_REL}" '
                f'Target="{CUSTOM_PROPS}"/>', PACKAGE_RELS)
    except Refused as e:
        raise BadDataError(f"cannot mark this file: {e.reason}") from None
    out = ZipCopier(src, dst)
    for info in zf.zip.infolist():
        if info.filename in replace:
            out.add(info.filename, replace.pop(info.filename), info)
        else:
            out.copy(info)
    for name, data in replace.items():  # a custom.xml the file did not have
        out.add(name, data)
    out.close()
    zf.close()


def _read(zf: Any, name: str, budget: Budget) -> bytes:
    with zf.open(name, budget.max_metadata_bytes) as f:
        data: bytes = f.read()
    return data


def _rewritable(label_info: set[str], custom: set[str], main: str | None, pkg: Any) -> None:
    """Refused where a part labels are read from cannot be rewritten as a
    label part alone: one read both as LabelInfo and as custom properties,
    or one that is also the main document, the content types or a
    relationships part (its other role lost, or the package broken)."""
    from vault.intake._opc import CONTENT_TYPES

    if label_info & custom:
        raise Refused("ambiguous", "a part read both as LabelInfo and as custom properties")
    structural = {main, pkg.zf.find(CONTENT_TYPES)}
    for name in label_info | custom:
        if name in structural or name.lower().endswith(".rels"):
            raise Refused("ambiguous", f"{name} holds labels and is also a part of the "
                          "package's structure")


def mark_pdf(src: BinaryIO, dst: BinaryIO, mapping: OfficeLabelMapping, *,
             site_id: str | None = None, method: str = "Privileged",
             now: datetime | None = None, budget: Budget | None = None) -> None:
    """The same for a PDF: ``/MSIP_Label_<guid>_<Field>`` entries in its
    document information dictionary (other entries kept). Not streaming:
    pypdf holds the document while it rewrites it. BadDataError for an
    encrypted or unreadable PDF, or one intake would not read as carrying
    that label alone once marked (:func:`_vouched`)."""
    from pypdf import PdfReader, PdfWriter

    if mapping.id is None:
        raise BadDataError("this Office label mapping has no id (GUID); it cannot be written")
    fields = _fields(mapping, site_id or mapping.site_id, method, now or datetime.now(UTC))
    budget = budget or Budget()
    with _spool() as marked:
        try:
            with _seekable(src) as seekable:
                _write_pdf(PdfReader(seekable, strict=False), marked, fields, PdfWriter,
                           budget.max_metadata_bytes)
        except BadDataError:
            raise
        except Exception as e:  # pypdf raises many kinds on malformed input
            raise BadDataError(f"cannot mark this PDF ({type(e).__name__})") from None
        _vouched(marked, mapping, budget)
        _copy(marked, dst)


def _write_pdf(reader: Any, dst: BinaryIO, fields: dict[str, str], writer_type: Any,
               max_metadata: int) -> None:
    from pypdf.generic import StreamObject

    if reader.is_encrypted:
        raise BadDataError("cannot mark an encrypted PDF")
    writer = writer_type(clone_from=reader)
    # The vault's label is the only one the copy carries: the labels the
    # file came with go, from the information dictionary and from the XMP
    # metadata (which readers such as inspect() also take labels from),
    # their names in any case, as intake reads them.
    # (``writer.metadata`` is a copy: the dictionary itself is ``_info``.)
    info = writer._info.get_object() if writer._info is not None else None
    if info is not None:
        for key in [k for k in info if is_label_property(str(k)[1:])]:
            del info[key]
    root = writer.root_object
    meta = root.get("/Metadata")
    meta = meta.get_object() if meta is not None else None
    # An XMP packet larger than intake reads goes too, label or none: kept,
    # the copy was refused as one intake cannot read (a Photoshop or
    # InDesign file's packet swollen with its DocumentAncestors).
    if isinstance(meta, StreamObject) and (len(data := meta.get_data()) > max_metadata
                                           or b"msip_label_" in data.lower()):
        del root["/Metadata"]
    writer.add_metadata({f"/{k}": v for k, v in fields.items()})
    writer.write(dst)
