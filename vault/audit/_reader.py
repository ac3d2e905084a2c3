"""Reading records back (docs/AUDIT.md §2 and §7).

Every line of the log is a leaf, but not every line is a record: a line
left by an interrupted write (a *fragment*) is set aside by the ``torn``
record that follows it. :class:`RecordStream` walks the lines, parses
records, checks that each record's ``seq`` is its line number, and accepts
a run of non-record lines only when the next record is a ``torn`` record
naming exactly those lines (position, SHA-256, length).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from vault.audit._files import LineBlocks
from vault.audit._record import TORN_ACTION, AuditRecord
from vault.errors import AuditIntegrityError

__all__ = ["RecordStream", "iter_lines", "iter_records", "select"]


def iter_lines(path: Path, stop: int) -> Iterator[bytes]:
    """The complete lines in the first ``stop`` bytes of ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        for block in LineBlocks(fd, 0, stop):
            yield from block
    finally:
        os.close(fd)


class RecordStream:
    """Parse numbered lines into records; ``pending`` holds trailing
    non-record lines not (yet) set aside by a torn record."""

    def __init__(self) -> None:
        self.pending: list[tuple[int, bytes]] = []

    def feed(self, seq: int, line: bytes) -> AuditRecord | None:
        """Return the record on line ``seq``, or None for a fragment."""
        try:
            record = AuditRecord.from_line(line, seq=seq)
        except AuditIntegrityError:
            self.pending.append((seq, line))
            return None
        if record.seq != seq:
            kind = "deleted" if record.seq > seq else "inserted"
            raise AuditIntegrityError(
                f"line {seq} holds record {record.seq}", kind=kind, seq=min(seq, record.seq)
            )
        run, self.pending = self.pending, []
        if run and record.action != TORN_ACTION:
            raise AuditIntegrityError(
                f"line {run[0][0]} is not a valid record", kind="modified", seq=run[0][0]
            )
        if record.action == TORN_ACTION and not _names(record, run):
            raise AuditIntegrityError(
                f"torn record {seq} does not match the lines it sets aside",
                kind="modified",
                seq=run[0][0] if run else seq,
            )
        return record


def _names(record: AuditRecord, run: list[tuple[int, bytes]]) -> bool:
    if len(record.fragments) != len(run):
        return False
    for fragment, (seq, line) in zip(record.fragments, run, strict=True):
        if (fragment.seq, fragment.length) != (seq, len(line)):
            return False
        if fragment.sha256 != hashlib.sha256(line).hexdigest():
            return False
    return True


def iter_records(path: Path, stop: int) -> Iterator[AuditRecord]:
    """The records of the log, in order (fragments skipped)."""
    yield from parse_lines(enumerate(iter_lines(path, stop)))


def parse_lines(numbered: Iterable[tuple[int, bytes]]) -> Iterator[AuditRecord]:
    stream = RecordStream()
    for seq, line in numbered:
        record = stream.feed(seq, line)
        if record is not None:
            yield record


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
