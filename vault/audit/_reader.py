"""Filtering records for people (docs/AUDIT.md §14)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from vault.audit._record import AuditRecord

__all__ = ["select"]


def select(
    records: Iterable[AuditRecord],
    *,
    actor: str | None = None,
    doc: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[AuditRecord]:
    """Records matching every filter given (``since`` inclusive, ``until`` not)."""
    for record in records:
        if actor is not None and record.actor != actor:
            continue
        if doc is not None and record.doc != doc:
            continue
        if action is not None and record.action != action:
            continue
        if outcome is not None and record.outcome != outcome:
            continue
        if since is not None and record.datetime < since:
            continue
        if until is not None and record.datetime >= until:
            continue
        yield record
