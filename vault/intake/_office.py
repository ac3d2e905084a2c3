"""Office Open XML documents: which parts are read, and in what order
(docs/POLICY.md §11.1).

The package is opened as an application opens it (vault/intake/_opc.py):
its main document through the package relationships, which says whether it
is a Word, Excel or PowerPoint file; the sensitivity label wherever the
relationships, the usual names or the content types put it. Then the text
parts of that kind (vault/intake/_parts.py) are read: by their usual
names, and by the content type ``[Content_Types].xml`` declares for them.
Embedded objects, images and macros (VBA) are not inspected, nor is what a
formula computes beyond its string literals (vault/intake/_sheets.py).
"""

from __future__ import annotations

import re

from vault.intake._labels import (
    CUSTOM_PROPS,
    LABEL_INFO,
    from_properties,
    merge,
    read_custom,
    read_label_info,
)
from vault.intake._model import Meter, OfficeLabel, Refused
from vault.intake._opc import (
    CLASSIFICATION_LABELS,
    CLASSIFICATION_LABELS_TYPE,
    CUSTOM_PROPERTIES,
    CUSTOM_PROPERTIES_TYPE,
    CUSTOM_XML_RELS,
    STYLES_REL,
    USUAL_MAIN,
    Package,
    main_part,
)
from vault.intake._parts import (
    CUSTOM_XML,
    KINDS,
    SLIDES,
    STYLES,
    STYLES_TEXT,
    TYPED,
    Context,
    Reader,
)
from vault.intake._scan import Scanner
from vault.intake._sheets import DateSystemTarget
from vault.intake._slides import ListStylesTarget, SlideListTarget
from vault.intake._xml import TextTarget, iter_text
from vault.intake._zip import SafeZip

__all__ = ["label_parts", "office_kind", "read_labels", "read_office"]

WORKBOOK = "xl/workbook.xml"  # where a workbook is, when the package names none


def _typed_parts(pkg: Package, kind: str) -> dict[str, Reader]:
    """The parts ``[Content_Types].xml`` declares as text parts of ``kind``."""
    wanted = {t.lower(): reader for t, reader in TYPED[kind].items()}
    return {name: reader for name in pkg.zf.names()
            if (reader := wanted.get(pkg.content_type(name) or "")) is not None}


def _order(name: str) -> tuple[str, int, str]:
    """document.xml first; slide2 before slide10."""
    m = re.search(r"(\d+)\.xml$", name)
    stem = name[: m.start()] if m else name.removesuffix(".xml")
    first = "" if name in USUAL_MAIN or name.endswith("/document.xml") else stem
    return first, int(m.group(1)) if m else 0, name


_RELS_PART = re.compile(r"(?:(.*)/)?_rels/([^/]+)\.rels", re.IGNORECASE)


def _custom_xml(pkg: Package) -> list[str]:
    """The custom XML data parts any relationship of the package names
    (a Word document's, and its glossary's): Word finds the store a
    content control is bound to through them, whatever the part's name;
    a data part has no content type of its own (``application/xml``)."""
    found: list[str | None] = list(pkg.related(CUSTOM_XML_RELS))
    for rels in pkg.zf.names():
        if (m := _RELS_PART.fullmatch(rels)) and m.group(2):
            source = f"{m.group(1)}/{m.group(2)}" if m.group(1) else m.group(2)
            found += pkg.part_related(source, CUSTOM_XML_RELS)
    return list(dict.fromkeys(name for name in found if name is not None))


def office_kind(zf: SafeZip) -> str | None:
    """``word``, ``excel`` or ``powerpoint``; None for another zip. Refused
    for a package whose main document is ambiguous (vault/intake/_opc.py)."""
    try:
        return main_part(Package.read(zf))[0]
    except Refused as e:
        if e.cause == "unsupported":
            return None
        raise


def _candidates(pkg: Package, rel_types: frozenset[str], usual: str,
                content_type: str) -> list[str]:
    """The parts that may hold one kind of metadata: the package
    relationships' targets, the part under its usual name, and the parts
    declared with its content type; each once."""
    found = [*pkg.related(rel_types), pkg.zf.find(usual), *pkg.parts_of_type(content_type)]
    return list(dict.fromkeys(name for name in found if name is not None))


def label_parts(pkg: Package) -> tuple[list[str], list[str]]:
    """The stored names of the parts labels are read from: the LabelInfo
    parts, then the custom properties parts (_candidates). Marking rewrites
    these, so that the copy carries no label intake reads besides its own."""
    return (_candidates(pkg, CLASSIFICATION_LABELS, LABEL_INFO, CLASSIFICATION_LABELS_TYPE),
            _candidates(pkg, CUSTOM_PROPERTIES, CUSTOM_PROPS, CUSTOM_PROPERTIES_TYPE))


def read_labels(zf: SafeZip, meter: Meter, pkg: Package | None = None
                ) -> tuple[OfficeLabel, ...]:
    """Every label of every label part found (vault/intake/_labels.py)."""
    pkg = pkg or Package.read(zf)
    budget = meter.budget
    limit, depth = budget.max_metadata_bytes, budget.max_xml_depth
    info: list[OfficeLabel] = []
    props: list[OfficeLabel] = []
    label_info, custom = label_parts(pkg)
    for name in label_info:
        with zf.open(name, limit) as f:
            info += read_label_info(f, limit, depth, name)
    for name in custom:
        with zf.open(name, limit) as f:
            props += from_properties(read_custom(f, limit, depth, name), name)
    return merge(info, props)


def _cell_styles(pkg: Package, main: str | None, candidates: list[str]) -> str | None:
    """The styles part a workbook's cells are shown with, as Excel finds
    it: the one the workbook's styles relationship names (whatever its name
    or declared type). Where the workbook names none, the one part typed or
    named as styles, if only one is. More than one -- two relationships, or
    none and two candidates -- is ``Refused``: which one Excel shows is its
    own choice. ``candidates``: the parts typed or named as styles."""
    workbook = main or pkg.zf.find(WORKBOOK)
    named = pkg.part_related(workbook, STYLES_REL) if workbook is not None else []
    if len(named) > 1:
        raise Refused("ambiguous", "the workbook names more than one styles part")
    if named:
        if named[0] is None:
            raise Refused("malformed", "the workbook's styles part is missing")
        return named[0]
    if len(candidates) > 1:
        raise Refused("ambiguous", "the package holds more than one styles part and the "
                      "workbook names none")
    return candidates[0] if candidates else None


def _shown_reader_free(chosen: dict[str, Reader], shown: str, main: str | None) -> None:
    """Refused where the styles part the workbook names is a part read for
    text of its own (the workbook, its shared strings, a sheet): read as
    styles alone, its own text went unread; read as both, which Excel takes
    it for is not known."""
    if shown == main or chosen.get(shown, STYLES) not in (STYLES, STYLES_TEXT):
        raise Refused("ambiguous", "the workbook's styles part is also one of its text parts")


def _date_systems(zf: SafeZip, main: str, meter: Meter, depth: int) -> tuple[int, ...]:
    """The date systems of an Excel workbook, from its main part
    (:class:`DateSystemTarget`), whatever else reads that part."""
    target = DateSystemTarget(depth)
    with zf.open(main) as stream:
        for _ in iter_text(stream, target, main, meter):
            pass
    return target.systems


_NOTES_SLIDE = frozenset(
    f"{base}{name}" for base, name in (
        ("http://schemas.openxmlformats.org/officeDocument/2006/relationships/", "notesSlide"),
        ("http://purl.oclc.org/ooxml/officeDocument/relationships/", "notesSlide")))


def _slide_numbers(pkg: Package, main: str, meter: Meter, ctx: Context) -> None:
    """The number each slide shows (the presentation's first slide number
    plus its place in the slide list, the order PowerPoint shows them in)
    and each notes page, its slide's; the first slide's number, which a
    layout, master or handout is read with."""
    target = SlideListTarget(ctx.depth)
    with pkg.zf.open(main) as stream:
        for _ in iter_text(stream, target, main, meter):
            pass
    ctx.first_slide = target.first
    slides = pkg.targets(main)
    for place, rel_id in enumerate(target.ids):
        if (slide := slides.get(rel_id)) is not None and slide not in ctx.slides:
            ctx.slides[slide] = target.first + place
            for notes in pkg.part_related(slide, _NOTES_SLIDE):
                if notes is not None:
                    ctx.slides.setdefault(notes, target.first + place)


def _list_styles(zf: SafeZip, parts: list[str], meter: Meter, ctx: Context) -> None:
    """The bullets drawing digits that the list styles of the presentation
    (its default text style), its masters, layouts and slides give each
    level (ListStylesTarget): a paragraph may inherit one from outside its
    own text body. Read before any slide, as PowerPoint reads them."""
    for name in parts:
        target = ListStylesTarget(ctx.depth, ctx.bullets)
        with zf.open(name) as stream:
            for _ in iter_text(stream, target, name, meter):
                pass


def read_office(zf: SafeZip, scanner: Scanner, meter: Meter) -> tuple[str, tuple[OfficeLabel, ...]]:
    """Scan the text parts of an OOXML package; (kind, labels found)."""
    pkg = Package.read(zf)
    kind, main = main_part(pkg)
    labels = read_labels(zf, meter, pkg)
    readers = KINDS[kind]
    # Parts under their usual names are read as those names say, whatever
    # type a file declares for them; the declared types add the others.
    chosen = _typed_parts(pkg, kind)
    chosen |= {name: reader for name in zf.names() for reader in readers
               if reader[0].fullmatch(name)}
    if kind == "word":  # custom XML data parts under other names
        chosen |= {name: CUSTOM_XML for name in _custom_xml(pkg) if name not in chosen}
    if kind == "excel":
        # One styles part shows the cells; every other typed or named as
        # styles is read for its formats' text alone, never applied to a
        # cell (each applied would cost every cell style once per part).
        styles = [name for name, reader in chosen.items() if reader is STYLES]
        shown = _cell_styles(pkg, main, styles)
        chosen |= {name: STYLES_TEXT for name in styles}
        if shown is not None:
            _shown_reader_free(chosen, shown, main)
            chosen[shown] = STYLES
    ctx = Context(meter.budget.max_xml_depth)
    # Dates are shown in the workbook's date system; a chart's, where its
    # part does not say, in the workbook's, or in both outside a workbook.
    ctx.formats.systems = _date_systems(zf, main, meter, ctx.depth) if (
        kind == "excel" and main is not None) else (1900, 1904)
    if kind == "powerpoint" and (shown := main or pkg.zf.find("ppt/presentation.xml")):
        _slide_numbers(pkg, shown, meter, ctx)
        _list_styles(zf, [shown, *(n for n, reader in chosen.items() if reader is SLIDES)],
                     meter, ctx)
    # The styles first: a sheet's cells are read as their formats show them.
    for name in sorted(chosen, key=lambda n: (chosen[n] is not STYLES, _order(n))):
        _, make = chosen[name]
        ctx.part = name
        scanner.start(name)
        target: TextTarget | None = make(ctx)
        while target is not None:
            with zf.open(name) as stream:
                for text in iter_text(stream, target, name, meter):
                    if not scanner.feed(text):
                        target = None
                        break
            target = target and target.next_pass()
        scanner.end()
        if meter.truncated and (meter.chars >= meter.budget.max_chars or meter.out_of_time()):
            break
    return kind, labels
