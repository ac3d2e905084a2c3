"""Microsoft sensitivity labels in a file's metadata (docs/POLICY.md §11.1).

Office writes a label in one or both of two places ([MS-OFFCRYPTO] §2.6):

* custom document properties (``docProps/custom.xml``), one property per
  field, named ``MSIP_Label_<guid>_<Field>``: ``Enabled``, ``SetDate``,
  ``Method``, ``Name``, ``SiteId``, ``ActionId``, ``ContentBits``;
* the Sensitivity Label Information part ``docMetadata/LabelInfo.xml``,
  a ``clbl:labelList`` of ``clbl:label`` elements with the attributes
  ``id``, ``enabled``, ``method``, ``siteId``, ``contentBits``, ``removed``
  (namespace ``http://schemas.microsoft.com/office/2020/mipLabelMetadata``).

Both are found as an application finds them (vault/intake/_opc.py): by the
package relationship of their type, by their usual names (compared without
regard to ASCII case) and by their declared content types. Every part so
found is read: the labels of all of them count, and where two readings of
one label differ, the enabled one stands (a decoy part cannot switch off
the label the other carries). LabelInfo is read first; custom properties
add the labels it lacks and the names it never carries. Property names
compare without regard to case. A PDF exported from a labelled document carries
the same custom properties in its document information dictionary, and
in its XMP metadata (pdfx namespace).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import BinaryIO

from vault._text import is_text
from vault.intake._model import OfficeLabel, Refused

__all__ = [
    "CUSTOM_PROPS",
    "LABEL_INFO",
    "from_properties",
    "is_label_property",
    "merge",
    "read_custom",
    "read_label_info",
]

CUSTOM_PROPS = "docProps/custom.xml"
LABEL_INFO = "docMetadata/LabelInfo.xml"
LABEL_NS = "http://schemas.microsoft.com/office/2020/mipLabelMetadata"
PROPERTY = re.compile(r"MSIP_Label_([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                      r"[0-9A-Fa-f]{12})_([A-Za-z]+)", re.IGNORECASE)
# A property of a label, whatever its field (older clients also wrote
# fields such as ``_Extended_MSFT_Method``, read by none here).
_LABEL_PROPERTY = re.compile(r"MSIP_Label_[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                             r"[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}_", re.IGNORECASE)
_GUID = re.compile(r"\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                   r"[0-9A-Fa-f]{12})\}?")
_MAX_FIELD = 256  # longer property values are not a label's


def guid(text: str | None) -> str | None:
    """A GUID lowercase without braces, or None if ``text`` is not one."""
    m = _GUID.fullmatch(text.strip()) if text else None
    return m.group(1).lower() if m else None


def _true(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1")


def is_label_property(name: str) -> bool:
    """Whether a property's name says it is a label's (``MSIP_Label_``, in
    any case), whether or not its label id is one (:func:`from_properties`)."""
    return name[:11].lower() == "msip_label_"


def from_properties(props: Mapping[str, str], source: str) -> list[OfficeLabel]:
    """Labels from ``MSIP_Label_<guid>_<Field>`` properties, in first-seen
    order. A property named ``MSIP_Label_`` whose label id is not a GUID
    as Office writes it (without braces, with its hyphens) is refused,
    ``ambiguous``: whether a client reads a label in it is not known, and
    skipped it was a label read as none. So is a label field whose value
    holds a character that is not printable (:func:`_checked`; the display
    name as free text is)."""
    fields: dict[str, dict[str, str]] = {}
    for name, value in props.items():
        if is_label_property(name) and not _LABEL_PROPERTY.match(name):
            raise Refused("ambiguous", f"{source}: a label property whose label id is not "
                          "a GUID")
        m = PROPERTY.fullmatch(name)
        # Measured without the spaces around it, as it is read (_true,
        # _checked): ``true`` padded past the bound with spaces was skipped,
        # a label read as switched off.
        if m and len(value.strip()) <= _MAX_FIELD:
            got = fields.setdefault(m.group(1).lower(), {})
            key = m.group(2).lower()
            # one field named twice in different case: enabled if either says so
            if not (key == "enabled" and _true(got.get(key))):
                got[key] = _checked(value, source, free=key == "name")
    return [OfficeLabel(gid, f.get("name") or None, _true(f.get("enabled")),
                        f.get("method") or None, guid(f.get("siteid")), source)
            for gid, f in fields.items()]


Items = list[tuple[str, dict[str, str], str, tuple[str, ...]]]


def _parsed(stream: BinaryIO, part: str, limit: int, max_depth: int) -> Items:
    """Every element of a label part (vault/intake/_xml.py), refused,
    ``ambiguous``, where Markup Compatibility is in it -- an element or an
    attribute of its namespace: Office processes it before reading the
    label (a value in an ``mc:Choice``, an ``mc:Ignorable`` element beside
    it) and writes none there; read as written, a label Office shows
    enabled read as off."""
    from vault.intake._xml import MC, parse_small  # the XML parser only when a file has labels

    items = parse_small(stream, part, limit, max_depth)
    for tag, attrib, _, _ in items:
        if tag.startswith(MC) or any(key.startswith(MC) for key in attrib):
            raise Refused("ambiguous", f"{part}: a label part with Markup Compatibility")
    return items


def read_custom(stream: BinaryIO, limit: int, max_depth: int,
                part: str = CUSTOM_PROPS) -> dict[str, str]:
    """The custom properties of ``docProps/custom.xml``: name -> value text,
    the text of the property's one child element (``vt:lpwstr``,
    ``vt:bool``, ...). A property with more than one is refused,
    ``ambiguous``: which is its value is not known (the last one read was
    taken, an empty element after ``true`` switched a label off), and so
    is one named twice with two values (the last was taken)."""
    out: dict[str, str] = {}
    children: dict[int, list[str]] = {}  # depth -> the texts of a property's children there
    for tag, attrib, text, parents in _parsed(stream, part, limit, max_depth):
        if parents and _local(parents[-1]) == "property":
            children.setdefault(len(parents), []).append(text)
        if _local(tag) == "property":
            values = children.pop(len(parents) + 1, [])
            if len(values) > 1:
                raise Refused("ambiguous", f"{part}: a custom property with more than one value")
            value = values[0] if values else ""
            if (name := attrib.get("name")) and out.setdefault(name, value) != value:
                raise Refused("ambiguous", f"{part}: a custom property named twice")
    return out


def _checked(value: str, part: str, *, free: bool = False) -> str:
    """A label field's value without the spaces around it, refused,
    ``ambiguous``, where a character in it is not printable (a line break
    written ``&#10;``, a control, a bidi override): Office writes none in
    a label's name, id or method, which label a client takes it for is not
    known, and shown, a name holding a line break forged lines of
    'vault classify' under the label the file really carries. The display
    name (``free``) is read as free text (vault/_text.py): French
    typography puts a no-break space before a colon ("Confidentiel : Conseil"),
    and refused, an honest file was uninspectable, the floor its label's
    GUID maps to lost."""
    value = value.strip()
    if not is_text(value, free=free):
        raise Refused("ambiguous", f"{part}: a label field holding a character that is "
                      "not printable")
    return value


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_label_info(stream: BinaryIO, limit: int, max_depth: int,
                    part: str = LABEL_INFO) -> list[OfficeLabel]:
    """Labels listed in a LabelInfo part (``part``) that are not removed.
    A label whose id is not a GUID (``{…}`` or bare, with its hyphens) is
    refused, ``ambiguous``: skipped, it was a label read as none, and
    whether a client reads it another way is not known; so is one whose
    method or site id holds a character that is not printable."""
    out: list[OfficeLabel] = []
    for tag, attrib, _, _ in _parsed(stream, part, limit, max_depth):
        if tag != f"{{{LABEL_NS}}}label":
            continue
        gid = guid(attrib.get("id"))
        if gid is None:
            raise Refused("ambiguous", f"{part}: a label whose id is not a GUID")
        if _true(attrib.get("removed")):
            continue
        method, site = (_checked(attrib.get(k) or "", part) for k in ("method", "siteId"))
        out.append(OfficeLabel(gid, None, _true(attrib.get("enabled")),
                               method or None, guid(site), part))
    return out


def _enabled_first(labels: Iterable[OfficeLabel]) -> dict[str, OfficeLabel]:
    """One reading per label id: the first enabled one, else the first."""
    out: dict[str, OfficeLabel] = {}
    for lab in labels:
        if lab.id not in out or (lab.enabled and not out[lab.id].enabled):
            out[lab.id] = lab
    return out


def merge(first: Iterable[OfficeLabel], then: Iterable[OfficeLabel]) -> tuple[OfficeLabel, ...]:
    """``first`` gives the labels it has (taking names from ``then``);
    ``then`` adds the others ([MS-OFFCRYPTO] §2.6.3). A label is enabled
    if any reading of it, in either, says so: a decoy reading that says it
    is off, in one part or the other, does not switch it off."""
    later = _enabled_first(then)
    out: dict[str, OfficeLabel] = {}
    for lab in _enabled_first(first).values():
        other = later.get(lab.id)
        name = lab.name or (other.name if other else None)
        if not lab.enabled and other is not None and other.enabled:
            lab = other  # the enabled reading stands, with all it says
        out[lab.id] = OfficeLabel(lab.id, name, lab.enabled, lab.method,
                                  lab.site_id, lab.source)
    for lab in later.values():
        out.setdefault(lab.id, lab)
    return tuple(out.values())
