"""What an inspection finds, and the budget it runs within (docs/POLICY.md §11).

Results name rules, parts and character offsets, never the text that
matched: an :class:`Inspection` may be shown, logged and written to the
audit record as it is.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Budget", "Inspection", "Match", "OfficeLabel", "Refused"]

KiB, MiB = 1 << 10, 1 << 20
COMPLETE, TRUNCATED, UNINSPECTABLE = "complete", "truncated", "uninspectable"


@dataclass(frozen=True, slots=True)
class Budget:
    """Bounds on one inspection (docs/POLICY.md §11.4).

    Bytes are counted as they are decompressed, not taken from a zip's
    directory. Past a *text* bound the inspection stops reading and says
    ``truncated``; past a *container* bound (entries, sizes, ratio, XML
    depth) the file is ``uninspectable``: a document that needs more is
    either hostile or too large to vouch for."""

    max_input_bytes: int = 2048 * MiB  # size of the file itself
    max_entries: int = 10_000  # entries of an Office zip container
    max_part_bytes: int = 256 * MiB  # uncompressed bytes of one part read
    max_total_bytes: int = 1024 * MiB  # uncompressed bytes read from one container
    max_ratio: int = 500  # uncompressed/compressed bytes of a part, past its first MiB
    max_metadata_bytes: int = 4 * MiB  # custom.xml, LabelInfo.xml, XMP
    max_xml_depth: int = 256  # nesting of XML elements
    max_part_chars: int = 16 * MiB  # characters of text inspected per part
    max_chars: int = 64 * MiB  # characters of text inspected in all
    max_pdf_pages: int = 10_000
    max_seconds: float = 120.0  # wall time, checked between chunks, pages and PDF streams
    max_positions: int = 100  # positions kept per rule (every match is counted)

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise TypeError(f"Budget.{name} must be a positive number")


class Refused(Exception):
    """Raised inside the engine when a file cannot be inspected safely.
    ``cause`` is a short code, ``reason`` a sentence; neither quotes content."""

    def __init__(self, cause: str, reason: str) -> None:
        super().__init__(reason)
        self.cause = cause
        self.reason = reason


class Meter:
    """Counts what one inspection consumed against its :class:`Budget`."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.deadline = time.monotonic() + budget.max_seconds
        self.bytes = 0
        self.chars = 0
        self.truncated: str | None = None  # why text was cut short

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.budget.max_total_bytes:
            raise Refused("too-large", f"more than {self.budget.max_total_bytes} bytes "
                          "uncompressed; not inspected (a zip bomb, or too large to vouch for)")

    def out_of_time(self) -> bool:
        if time.monotonic() > self.deadline:
            self.truncate(f"the time budget of {self.budget.max_seconds:g} s ran out")
            return True
        return False

    def truncate(self, why: str) -> None:
        if self.truncated is None:
            self.truncated = why


@dataclass(frozen=True, slots=True)
class OfficeLabel:
    """A Microsoft sensitivity label found in a file's metadata.

    ``id`` is the label's GUID, lowercase, without braces; ``source`` says
    where it was read: ``docMetadata/LabelInfo.xml``, ``docProps/custom.xml``,
    ``pdf:info`` or ``pdf:xmp``."""

    id: str
    name: str | None = None
    enabled: bool = False
    method: str | None = None
    site_id: str | None = None
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "enabled": self.enabled,
                "method": self.method, "site_id": self.site_id, "source": self.source}


@dataclass(frozen=True, slots=True)
class Match:
    """Where a rule matched: a part of the file (``word/document.xml``,
    ``page 3``, ``text``) and the character offset in that part's extracted,
    NFKC-normalised text. Never the text itself."""

    rule: str
    part: str
    offset: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "part": self.part, "offset": self.offset}


@dataclass(frozen=True)
class Inspection:
    """The outcome of :func:`vault.intake.inspect`.

    ``status`` is ``complete`` (every part read within the budget),
    ``truncated`` (text was cut short: ``reason`` says why; what was found
    stands) or ``uninspectable`` (nothing can be vouched for: ``cause`` and
    ``reason`` say why). ``matches`` holds up to ``Budget.max_positions``
    positions per rule; ``counts`` counts every match."""

    status: str
    kind: str
    reason: str | None = None
    cause: str | None = None
    office_labels: tuple[OfficeLabel, ...] = ()
    matches: tuple[Match, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    parts: tuple[str, ...] = ()
    chars: int = 0
    bytes_read: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", MappingProxyType(dict(self.counts)))

    @property
    def inspectable(self) -> bool:
        return self.status != UNINSPECTABLE

    @property
    def whole(self) -> bool:
        """Was all of the file read? A truncated inspection vouches for
        nothing after where it stopped: a file padded (or made slow to
        read) so that a budget runs out before its markings is, for a
        seal, not inspected (docs/POLICY.md §11.5)."""
        return self.status == COMPLETE

    @property
    def office_label(self) -> OfficeLabel | None:
        """The first enabled Office label, if any."""
        return next((lab for lab in self.office_labels if lab.enabled), None)

    @property
    def matched_rules(self) -> tuple[str, ...]:
        """Ids of the content rules that matched at least once, sorted."""
        return tuple(sorted(r for r, n in self.counts.items() if n))

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "kind": self.kind, "reason": self.reason,
                "cause": self.cause,
                "office_labels": [lab.to_dict() for lab in self.office_labels],
                "matches": [m.to_dict() for m in self.matches],
                "counts": dict(sorted(self.counts.items())), "parts": list(self.parts),
                "chars": self.chars, "bytes_read": self.bytes_read}
