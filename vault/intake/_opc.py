"""The package structure of an Office Open XML file (ISO/IEC 29500-2, OPC):
which part is the main document, which parts hold the metadata, and the
content type of each (docs/POLICY.md §11.1).

An application opens a package through its relationships: ``_rels/.rels``
names the main document (``officeDocument``), the custom properties and
the sensitivity-label part, under any names; it then checks the content
type ``[Content_Types].xml`` declares for each. Part names compare
without regard to ASCII case. Intake finds parts the same way, so that a
decoy under a usual name, or a part under an unusual one, is not read in
place of what the application shows.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from vault.intake._model import Refused
from vault.intake._xml import parse_small
from vault.intake._zip import SafeZip, part_key

__all__ = ["CONTENT_TYPES", "Package", "main_part"]

CONTENT_TYPES = "[Content_Types].xml"
PACKAGE_RELS = "_rels/.rels"
_OOXML = "application/vnd.openxmlformats-officedocument."

# Relationship types, transitional and Strict (ISO 29500), by what they name.
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_STRICT_RELS = "http://purl.oclc.org/ooxml/officeDocument/relationships/"
OFFICE_DOCUMENT = frozenset((_RELS + "officeDocument", _STRICT_RELS + "officeDocument"))
CUSTOM_PROPERTIES_REL = _RELS + "custom-properties"  # the one marking writes
CUSTOM_PROPERTIES = frozenset((CUSTOM_PROPERTIES_REL, _STRICT_RELS + "customProperties"))
# A Word document's custom XML data parts (the stores its content controls
# are bound to), whatever their names.
CUSTOM_XML_RELS = frozenset((_RELS + "customXml", _STRICT_RELS + "customXml"))
STYLES_REL = frozenset((_RELS + "styles", _STRICT_RELS + "styles"))  # a workbook's
CLASSIFICATION_LABELS = frozenset((
    "http://schemas.microsoft.com/office/2020/02/relationships/classificationlabels",))
CUSTOM_PROPERTIES_TYPE = f"{_OOXML}custom-properties+xml"
CLASSIFICATION_LABELS_TYPE = "application/vnd.ms-office.classificationlabels+xml"

# The content type of each kind's main document (its macro-enabled,
# template, slide-show and add-in variants); the same in Strict packages.
MAIN_TYPES: dict[str, str] = {
    **{f"{_OOXML}wordprocessingml.{t}.main+xml": "word" for t in ("document", "template")},
    **{f"application/vnd.ms-word.{t}.main+xml": "word"
       for t in ("document.macroEnabled", "template.macroEnabledTemplate")},
    **{f"{_OOXML}spreadsheetml.{t}.main+xml": "excel" for t in ("sheet", "template")},
    **{f"application/vnd.ms-excel.{t}.macroEnabled.main+xml": "excel"
       for t in ("sheet", "template", "addin")},
    **{f"{_OOXML}presentationml.{t}.main+xml": "powerpoint"
       for t in ("presentation", "slideshow", "template")},
    **{f"application/vnd.ms-powerpoint.{t}.macroEnabled.main+xml": "powerpoint"
       for t in ("presentation", "slideshow", "template", "addin")},
}
# Where each kind's main document usually is: read so only when the
# package names none (no application opens such a package; hostile ones
# are still read within the budget, and an ambiguous one is not).
USUAL_MAIN = {"word/document.xml": "word", "xl/workbook.xml": "excel",
              "ppt/presentation.xml": "powerpoint"}


@dataclass
class Package:
    """The content types and package relationships of an OPC package."""

    zf: SafeZip
    overrides: dict[str, str] = field(default_factory=dict)  # part key -> content type
    defaults: dict[str, str] = field(default_factory=dict)  # extension -> content type
    rels: list[tuple[str, str | None]] = field(default_factory=list)  # (type, stored name)

    @classmethod
    def read(cls, zf: SafeZip) -> Package:
        pkg = cls(zf)
        pkg._read_types()
        pkg._read_rels()
        return pkg

    def _parse(self, name: str) -> list[tuple[str, dict[str, str], str, tuple[str, ...]]]:
        budget = self.zf.meter.budget
        with self.zf.open(name, budget.max_metadata_bytes) as f:
            return parse_small(f, name, budget.max_metadata_bytes, budget.max_xml_depth)

    def _read_types(self) -> None:
        name = self.zf.find(CONTENT_TYPES)
        if name is None:
            return
        for tag, attrib, _, _ in self._parse(name):
            local = tag.rsplit("}", 1)[-1]
            content_type = attrib.get("ContentType", "").strip().lower()
            if local == "Override":
                self.overrides[part_key(attrib.get("PartName", ""))] = content_type
            elif local == "Default":  # a part without an Override has its extension's type
                self.defaults[attrib.get("Extension", "").lower()] = content_type

    def _read_rels(self) -> None:
        self.rels = self._relationships(PACKAGE_RELS, "")

    def _relationships(self, rels: str, folder: str) -> list[tuple[str, str | None]]:
        """(type, stored name of the target) of each internal relationship
        of the relationships part ``rels``, targets resolved from
        ``folder`` (the source part's)."""
        return [(rel_type, name) for _, rel_type, name in self._entries(rels, folder)]

    def _entries(self, rels: str, folder: str) -> list[tuple[str, str, str | None]]:
        """(id, type, stored name of the target) of each internal
        relationship of the relationships part ``rels`` (_relationships)."""
        name = self.zf.find(rels)
        if name is None:
            return []
        found: list[tuple[str, str, str | None]] = []
        for tag, attrib, _, _ in self._parse(name):
            if tag.rsplit("}", 1)[-1] != "Relationship" \
                    or attrib.get("TargetMode", "").lower() == "external":
                continue
            target = attrib.get("Target", "").strip()
            path = posixpath.normpath(target if target.startswith("/") else f"/{folder}/{target}")
            found.append((attrib.get("Id", "").strip(), attrib.get("Type", "").strip(),
                          self.zf.find(path)))
        return found

    def content_type(self, name: str) -> str | None:
        """The content type declared for the stored part ``name``, lowercase."""
        key = part_key(name)
        declared = self.overrides.get(key)
        last = key.rsplit("/", 1)[-1]
        if declared is None and "." in last:
            declared = self.defaults.get(last.rsplit(".", 1)[-1])
        return declared

    def related(self, types: frozenset[str]) -> list[str | None]:
        """The parts the package relationships of ``types`` point at (None
        for a target that is not in the package)."""
        return [name for rel_type, name in self.rels if rel_type in types]

    def part_related(self, source: str, types: frozenset[str]) -> list[str | None]:
        """The parts the relationships of part ``source`` (its
        ``_rels/NAME.rels`` beside it) of ``types`` point at (None for a
        target that is not in the package)."""
        folder, _, last = source.rpartition("/")
        rels = f"{folder}/_rels/{last}.rels" if folder else f"_rels/{last}.rels"
        return [name for rel_type, name in self._relationships(rels, folder)
                if rel_type in types]

    def targets(self, source: str) -> dict[str, str | None]:
        """The parts the relationships of part ``source`` point at, by
        relationship id (the first of an id given twice)."""
        folder, _, last = source.rpartition("/")
        rels = f"{folder}/_rels/{last}.rels" if folder else f"_rels/{last}.rels"
        found: dict[str, str | None] = {}
        for rel_id, _, name in self._entries(rels, folder):
            found.setdefault(rel_id, name)
        return found

    def parts_of_type(self, content_type: str) -> list[str]:
        return [n for n in self.zf.names() if self.content_type(n) == content_type.lower()]


def main_part(pkg: Package) -> tuple[str, str | None]:
    """(kind, stored name of the main document) as an application finds it:
    the one ``officeDocument`` relationship, whose part must be declared a
    main document. More than one main document in a package -- another
    relationship, or another part declared as one -- or a relationship to a
    part that is missing or not declared a main document is ``Refused``:
    which one an application shows is its own choice."""
    main_types = {t.lower(): kind for t, kind in MAIN_TYPES.items()}
    declared = {n: main_types[t] for n in pkg.zf.names()
                if (t := pkg.content_type(n) or "") in main_types}
    targets = pkg.related(OFFICE_DOCUMENT)
    if len(targets) > 1:
        raise Refused("ambiguous", "the package names more than one main document")
    if targets:
        main = targets[0]
        if main is None:
            raise Refused("malformed", "the package's main document is missing")
        kind = declared.get(main)
        if kind is None and pkg.zf.find(CONTENT_TYPES) is None:
            raise Refused("malformed", f"the package has no {CONTENT_TYPES}")
        if kind is None:
            raise Refused("ambiguous", "the package's main document is not declared as a Word, "
                          "Excel or PowerPoint document")
        if len(declared) > 1:
            raise Refused("ambiguous", "the package holds more than one main document")
        return kind, main
    found = dict(declared)
    for usual, kind in USUAL_MAIN.items():
        if (name := pkg.zf.find(usual)) is not None:
            found.setdefault(name, kind)
    kinds = set(found.values())
    if len(kinds) > 1:
        raise Refused("ambiguous", "the package holds main documents of more than one kind")
    if not kinds:
        raise Refused("unsupported", "a zip container that is not a Word, Excel or PowerPoint "
                      "document")
    return kinds.pop(), None
