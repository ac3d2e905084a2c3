"""Output of ``vault audit log``: a table, one JSON document, JSON lines,
CSV, and following the log (docs/AUDIT.md §14). Data to stdout only."""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import click

from vault.audit import AuditLog, AuditRecord

from ._common import echo_json_text, printable

_TABLE_BLOCK = 500  # rows per aligned block: a long log never sits in memory
_CSV_FIELDS = (
    "seq",
    "time",
    "actor",
    "actor_key",
    "action",
    "doc",
    "level",
    "compartments",
    "caveats",
    "outcome",
    "rules",
    "reason",
    "policy",
    "request",
    "host",
    "pid",
)


def matches(r: AuditRecord, filters: dict[str, Any]) -> bool:
    from vault.audit._reader import in_window

    since, until = filters.get("since"), filters.get("until")
    return all(filters.get(k) is None or getattr(r, k) == filters[k]
               for k in ("actor", "doc", "action", "outcome")) and (
        (since is None and until is None) or in_window(r, since, until))


def follow(ctx: click.Context, log: AuditLog, interval: float, as_csv: bool,
            filters: dict[str, Any]) -> None:
    """Print matching records, then new ones as they settle (docs/AUDIT.md §12:
    each look starts from the trusted tip of the last, so a log cut short or
    rewritten meanwhile is an error, not a silent restart)."""
    out = csv.writer(sys.stdout, lineterminator="\n") if as_csv else None
    if out is not None:
        out.writerow(_CSV_FIELDS)
    tip = None
    try:
        while True:
            scan = log.scan(tip)
            with scan:
                for item in scan:
                    if item.problem is not None:
                        raise item.problem
                    if item.record is None or not matches(item.record, filters):
                        continue
                    if out is not None:
                        out.writerow(_csv_row(item.record))
                    else:
                        echo_json_text(json_line(item.record))
            tip = scan.tip
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt as e:
        # Ctrl-C is how one stops following: quietly, 130. SIGTERM and
        # SIGHUP (main.Terminated, which carries its signal) are reported
        # as for every command, 128 + the signal.
        if getattr(e, "signum", None) is not None:
            raise
        from vault.errors import EXIT_INTERRUPTED

        ctx.exit(EXIT_INTERRUPTED)


def json_line(record: AuditRecord) -> str:
    """The record's line as JSON text, printed only through
    :func:`echo_json_text`, which writes every character that is not
    printable as a JSON escape (docs/AUDIT.md §14): a modified client can
    sign a justification holding U+0085 or U+202E, which would break the
    line for a SIEM or reorder a terminal's text. Its values are the
    line's; its bytes are not the signed ones where it held such a
    character."""
    return record.line.decode("utf-8")


def write_json(records: Iterable[AuditRecord]) -> int:
    """One JSON array of the records' lines (:func:`json_line`), streamed
    (a long log never sits in memory); returns how many."""
    sep, n = "[", 0
    for record in records:
        click.echo(sep, nl=False)  # the array's own punctuation, a line break among it
        echo_json_text(json_line(record), nl=False)
        sep, n = ",\n", n + 1
    click.echo("[]" if sep == "[" else "]")
    return n


def write_jsonl(records: Iterable[AuditRecord]) -> int:
    """The records' lines (:func:`json_line`), one per line (for a SIEM)."""
    n = 0
    for n, record in enumerate(records, 1):  # noqa: B007 - n is what was written
        echo_json_text(json_line(record))
    return n


def _safe_cell(value: str) -> str:
    # Spreadsheets run cells starting with these as formulas (CSV injection).
    value = printable(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv_row(r: AuditRecord, claim: str | None = None) -> list[str]:
    text = [
        claim or r.actor or "",
        r.actor_key,
        r.action,
        r.doc or "",
        r.level or "",
        ";".join(r.compartments),
        ";".join(r.caveats),
        r.outcome,
        ";".join(r.rules),
        r.reason,
    ]
    return [
        str(r.seq),
        r.time,
        *map(_safe_cell, text),
        printable(r.policy or ""),
        printable(r.request),
        printable(r.host),
        str(r.pid),
    ]


def write_csv(records: Iterable[AuditRecord], claim: ActorOf = lambda r: None) -> int:
    """A header, then a row per record; a claim's actor cell as in the table
    (a feed must not take a name as the actor's when it is only a claim)."""
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(_CSV_FIELDS)
    n = 0
    for record in records:
        out.writerow(_csv_row(record, claim(record)))
        n += 1
    return n


LabelWriter = Callable[[str, Sequence[str], Sequence[str]], str]


def banner(level: str, compartments: Sequence[str], caveats: Sequence[str]) -> str:
    """The banner form of a label (vault.policy._banner), by names: for a
    standalone log, whose policy is not at hand."""
    return "//".join([level, *("/".join(sorted(x)) for x in (compartments, caveats) if x)])


def _label(r: AuditRecord, write: LabelWriter) -> str:
    return write(r.level, r.compartments, r.caveats) if r.level else "-"


#: the actor cell of a record whose name is only a claim ("clerk (claims
#: officer)"), asked as each record comes; None: its name, as written
ActorOf = Callable[[AuditRecord], "str | None"]


def _table_row(r: AuditRecord, write: LabelWriter, claim: str | None) -> tuple[str, ...]:
    # Every cell escaped: whoever signed a record chose its text, and a
    # '\r' or an escape sequence in it must not redraw the auditor's table.
    when = r.time[:19].replace("T", " ")
    actor = r.actor if r.actor is not None else "(unknown key)"
    return tuple(map(printable, (
        str(r.seq),
        when,
        claim or actor,
        r.action,
        r.doc or "-",
        _label(r, write),
        r.outcome,
        ",".join(r.rules) or "-",
        r.reason,
    )))


def _blocks(records: Iterable[AuditRecord], write: LabelWriter,
            claim: ActorOf) -> Iterator[list[tuple[str, ...]]]:
    block: list[tuple[str, ...]] = []
    for record in records:
        block.append(_table_row(record, write, claim(record)))
        if len(block) == _TABLE_BLOCK:
            yield block
            block = []
    if block:
        yield block


def write_table(records: Iterable[AuditRecord], write: LabelWriter = banner,
                claim: ActorOf = lambda r: None) -> int:
    """The records as an aligned table, the actor of each record ``claim``
    names one for (asked as each record comes) shown as a claim; returns
    how many were shown."""
    header = ("SEQ", "TIME (UTC)", "ACTOR", "ACTION", "DOC", "LABEL", "OUTCOME", "RULES", "REASON")
    widths = [len(h) for h in header]
    shown = 0
    for block in _blocks(records, write, claim):
        for row in block:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
        if not shown:
            click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        for row in block:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        shown += len(block)
    return shown
