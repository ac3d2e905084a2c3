"""The policy's intake section (docs/POLICY.md §3.11): Office label mappings,
content floor rules, and what an uninspectable file requires.

Built by the schema (``_schema_intake.py``); read by
:func:`vault.intake.classify_for_seal` through :attr:`Policy.intake`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: model.py imports this module
    from vault.intake import ContentRule, OfficeLabel
    from vault.policy.model import Label

__all__ = ["UNINSPECTABLE_CHOICES", "FloorRule", "IntakePolicy", "OfficeLabelMapping"]

UNINSPECTABLE_CHOICES = ("require-label", "accept")


def _short(label: Label) -> dict[str, Any]:
    return {k: v for k, v in label.to_dict().items() if k in ("level", "compartments", "caveats")}


def _folded(name: str) -> str:
    """``name`` casefolded, each space separator (Zs) as U+0020: an Office
    label's display name in French holds a no-break space before its colon
    ("Confidentiel : Conseil"), where a policy's name, which holds no space
    but U+0020 (docs/POLICY.md §2.3), has a space. Matched only where the
    names differ in nothing else, a file is floored where the policy meant."""
    return "".join(" " if unicodedata.category(c) == "Zs" else c for c in name).casefold()


@dataclass(frozen=True, slots=True)
class OfficeLabelMapping:
    """An Office sensitivity label (by GUID ``id``, or by ``name`` as a
    fallback) and the policy label it means."""

    label: Label
    id: str | None = None  # lowercase, no braces
    name: str | None = None
    line: int | None = field(default=None, compare=False)
    site_id: str | None = None  # the tenant, written when marking (lowercase, no braces)

    @property
    def rule_id(self) -> str:
        """How the mapping is named in results and audit records."""
        return f"office-label:{self.id}" if self.id else f"office-label:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.id:
            out["id"] = self.id
        if self.name:
            out["name"] = self.name
        if self.site_id:
            out["site_id"] = self.site_id
        out["label"] = _short(self.label)
        return out


@dataclass(frozen=True, slots=True)
class FloorRule:
    """A content rule: when it matches, the file's label is at least ``label``.
    Exactly one of ``detector``, ``keywords``, ``regex`` is set."""

    id: str
    label: Label
    description: str | None = None
    detector: str | None = None
    keywords: tuple[str, ...] = ()
    regex: str | None = None
    line: int | None = field(default=None, compare=False)

    def content_rule(self) -> ContentRule:
        from vault.intake import ContentRule

        return ContentRule(self.id, detector=self.detector, phrases=self.keywords,
                           regex=self.regex)

    def looks_for(self) -> str:
        if self.detector:
            return f"detector {self.detector}"
        if self.keywords:
            return f"{len(self.keywords)} keyword phrase{'s' * (len(self.keywords) != 1)}"
        return "a regular expression"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.description:
            out["description"] = self.description
        if self.detector:
            out["detector"] = self.detector
        if self.keywords:
            out["keywords"] = list(self.keywords)
        if self.regex:
            out["regex"] = self.regex
        out["label"] = _short(self.label)
        return out


@dataclass(frozen=True, slots=True)
class IntakePolicy:
    """``uninspectable`` is ``require-label`` (the sealer must give a label),
    ``accept`` (seal as if nothing was found) or ``floor`` (then
    ``uninspectable_floor`` is the floor)."""

    office_labels: tuple[OfficeLabelMapping, ...] = ()
    floors: tuple[FloorRule, ...] = ()
    uninspectable: str = "require-label"
    uninspectable_floor: Label | None = None
    configured: bool = True

    def mapping_for(self, office: OfficeLabel) -> OfficeLabelMapping | None:
        """The mapping of an Office label: by GUID, else by name (ignoring
        case, and which space separator stands between words)."""
        for m in self.office_labels:
            if m.id is not None and m.id == office.id:
                return m
        if office.name:
            folded = _folded(office.name)
            for m in self.office_labels:
                if m.id is None and m.name is not None and _folded(m.name) == folded:
                    return m
        return None

    def content_rules(self) -> tuple[ContentRule, ...]:
        """The floor rules as :func:`vault.intake.inspect` takes them."""
        return tuple(f.content_rule() for f in self.floors)

    def floor_rule(self, rule_id: str) -> FloorRule | None:
        return next((f for f in self.floors if f.id == rule_id), None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.office_labels:
            out["office_labels"] = [m.to_dict() for m in self.office_labels]
        if self.floors:
            out["floors"] = [f.to_dict() for f in self.floors]
        if self.uninspectable == "floor" and self.uninspectable_floor is not None:
            out["uninspectable"] = {"floor": _short(self.uninspectable_floor)}
        else:
            out["uninspectable"] = self.uninspectable
        return out


# A policy without an intake section: no mappings, no floors, and an
# uninspectable file is sealed as before.
NO_INTAKE = IntakePolicy(uninspectable="accept", configured=False)
