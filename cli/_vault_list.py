"""``vault ls`` and ``vault info``: what the caller may see of the documents.

Labels, ids and sealers are public to whoever the policy lets list a
document. Titles and file names are encrypted: they are shown for the
documents the caller may open and holds the key of, and for the others the
listing says why not. One audit record per listing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from vault.errors import UsageError

from ._common import echo_json, echo_json_text
from ._common import info as tell
from ._complete import complete_doc_ids
from ._text_files import SEARCH, given
from ._vault_common import (
    jsonable,
    label_options,
    label_text,
    level_option,
    open_vault,
    print_docs_json,
    print_info,
    text,
)

if TYPE_CHECKING:  # pragma: no cover
    from vault import DocumentInfo
    from vault.policy import Label, Policy

__all__ = ["info", "ls"]


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not a date or time",
                         hint="use 2025-05-01 or 2025-05-01T12:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _where(policy: Policy, label: str | None, level: str | None,
           compartments: Sequence[str], caveats: Sequence[str], sealed_by: str | None,
           since: datetime | None, until: datetime | None
           ) -> Callable[[DocumentInfo], bool] | None:
    """The filter on what is public (labels, sealers, dates)."""
    exact: Label | None = policy.parse_label(label) if label else None
    lvl = policy.canonical_level(level) if level else None
    for name in compartments:
        if name not in policy.compartments:
            raise UsageError(f"unknown compartment '{name}'",
                             hint=f"compartments: {', '.join(policy.compartments)}")
    for name in caveats:
        if name not in policy.caveats:
            raise UsageError(f"unknown caveat '{name}'",
                             hint=f"caveats: {', '.join(policy.caveats) or 'none'}")
    if not (exact or lvl or compartments or caveats or sealed_by or since or until):
        return None

    def where(doc: DocumentInfo) -> bool:
        got = doc.label
        if exact is not None and (got.level, got.compartments, got.caveats) != (
                exact.level, exact.compartments, exact.caveats):
            return False
        if lvl is not None and got.level != lvl:
            return False
        if not set(compartments) <= got.compartments or not set(caveats) <= got.caveats:
            return False
        if sealed_by is not None and doc.sealed_by != sealed_by:
            return False
        if since is None and until is None:
            return True
        try:  # whatever a modified client's statement says: in no window
            when = _moment(doc.sealed_at, "sealed_at")
        except UsageError:
            return False
        return (since is None or (when is not None and when >= since)) and (
            until is None or (when is not None and when < until))

    return where


def _title_matches(doc: DocumentInfo, words: str) -> bool:
    wanted = words.casefold()
    return any(wanted in (v or "").casefold() for v in (doc.title, doc.filename))


def _print_table(policy: Policy, docs: list[DocumentInfo], titles: bool) -> None:
    header = ["ID", "LABEL", "SEALED BY", "SEALED AT (UTC)"]
    header += ["TITLE OR FILE NAME"] if titles else []
    rows = [header]
    for d in docs:
        row = [d.id, label_text(policy, d.label), text(d.sealed_by),
               d.sealed_at[:16].replace("T", " ")]
        if titles:
            shown = d.title or d.filename
            row.append(text(shown) if d.hidden is None else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _say_what_is_hidden(docs: list[DocumentInfo]) -> None:
    from vault._ops.read import (
        CHANGED_WHILE_LISTED,
        HIDDEN_NO_KEY,
        HIDDEN_POLICY,
        POLICY_CHANGED_WHILE_LISTED,
    )

    plain = {HIDDEN_POLICY: "the policy does not let you open them",
             HIDDEN_NO_KEY: "you hold no key for their class yet (someone who holds it grants "
                            "it when they next use it, or with 'vault rotate')",
             CHANGED_WHILE_LISTED: "they were relabelled while they were listed (list again)",
             POLICY_CHANGED_WHILE_LISTED: "the policy changed while they were listed (list "
                                          "again)"}
    why = Counter(d.hidden for d in docs if d.hidden is not None)
    for reason, n in sorted(why.items(), key=lambda kv: -kv[1]):
        tell(f"titles not shown for {n} document{'s' if n != 1 else ''}: "
             f"{plain.get(reason, reason)}")


@click.command()
@click.option("--label", metavar="LABEL",
              help="Only documents with exactly this label (as listed: LEVEL//C/C//X).")
@level_option(help="Only documents at this level.")
@label_options
@click.option("--sealed-by", metavar="USER", help="Only documents this user sealed.")
@click.option("--since", metavar="DATE", help="Only documents sealed at or after DATE (UTC).")
@click.option("--until", metavar="DATE", help="Only documents sealed before DATE (UTC).")
@click.option("--title", "title_words", metavar="TEXT",
              help="Only documents whose title or file name contains TEXT (any case): "
              "among those whose titles you may read. Every local user sees TEXT in the "
              "process list: --title-file keeps it off.")
@click.option("--title-file", metavar="FILE", type=click.Path(allow_dash=True),
              help="Search for the text on FILE's first line ('-': standard input): a file "
              "of yours that nobody else may read, or a pipe, <(...).")
@click.option("--no-titles", is_flag=True,
              help="Do not read titles and file names (faster for large vaults).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
@click.pass_context
def ls(ctx: click.Context, label: str | None, level: str | None, compartments: Sequence[str],
       caveats: Sequence[str], sealed_by: str | None, since: str | None, until: str | None,
       title_words: str | None, title_file: str | None, no_titles: bool,
       as_json: bool) -> None:
    """List the documents you may see, oldest first.

    Titles and file names are shown for the documents you may open and
    hold the key of; for the others, stderr says why not. --compartment
    and --caveat keep the documents that have them all.
    """
    if no_titles and (title_words is not None or title_file is not None):
        option = "--title" if title_file is None else "--title-file"
        raise UsageError(f"{option} searches titles, which --no-titles does not read")
    title_words = given(SEARCH, title_words, title_file)
    v = open_vault(ctx)
    where = _where(v.policy, label, level, compartments, caveats, sealed_by,
                   _moment(since, "--since"), _moment(until, "--until"))
    if as_json and no_titles and where is None:
        echo_json_text(v.ls_json())  # the same JSON, made for large vaults
        return
    docs = v.ls(metadata=not no_titles, where=where)
    if title_words is not None:
        docs = [d for d in docs if d.hidden is None and _title_matches(d, title_words)]
    if as_json:
        print_docs_json(docs)
        return
    if docs:
        _print_table(v.policy, docs, titles=not no_titles)
    else:
        tell("no documents match" if where or title_words else "no documents you may see")
    if not no_titles:
        _say_what_is_hidden(docs)


@click.command()
@click.argument("doc_id", metavar="ID", shell_complete=complete_doc_ids)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def info(ctx: click.Context, doc_id: str, as_json: bool) -> None:
    """Show document ID's label and, if you may open it and hold its key,
    its title and file name (otherwise why not)."""
    v = open_vault(ctx)
    doc = v.info(doc_id)
    if as_json:
        echo_json(jsonable(doc))
    else:
        print_info(v.policy, doc)
