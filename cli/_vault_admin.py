"""Commands that change documents or administer the vault: reclassify,
declassify, shred, rotate, doctor (re-exported by :mod:`vault_cli._vault`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from vault.errors import UsageError

from ._approve import approval_options, approved
from ._common import echo_json
from ._common import info as tell
from ._vault_common import (
    jsonable,
    label_line,
    label_options,
    open_vault,
    print_docs_json,
    print_report,
)

# --------------------------------------------------------------------------
# reclassify, declassify, shred


def _justification_option(fn: Any) -> Any:
    return click.option(
        "--justification",
        metavar="TEXT",
        help="Why (recorded in the audit log); with approvals, the approved request's.",
    )(fn)


@click.command()
@click.argument("doc_id", metavar="ID")
@click.option("--level", metavar="L", help="New level.")
@label_options
@click.option("--clear-compartments", is_flag=True, help="Remove every compartment.")
@click.option("--clear-caveats", is_flag=True, help="Remove every caveat.")
@_justification_option
@click.option("--json", "as_json", is_flag=True, help="Print the new document info as JSON.")
@approval_options(needs_justification=True)
@click.pass_context
def reclassify(
    ctx: click.Context,
    doc_id: str,
    level: str | None,
    compartments: Sequence[str],
    caveats: Sequence[str],
    clear_compartments: bool,
    clear_caveats: bool,
    justification: str | None,
    as_json: bool,
) -> None:
    """Give document ID a new label, signed by you."""
    if clear_compartments and compartments:
        raise UsageError("--compartment and --clear-compartments contradict each other")
    if clear_caveats and caveats:
        raise UsageError("--caveat and --clear-caveats contradict each other")
    new_compartments = () if clear_compartments else (tuple(compartments) or None)
    new_caveats = () if clear_caveats else (tuple(caveats) or None)
    if level is None and new_compartments is None and new_caveats is None:
        raise UsageError(
            "nothing to change", hint="give --level, --compartment or --caveat (or a --clear-…)"
        )
    doc = open_vault(ctx).reclassify(
        doc_id,
        level=level,
        compartments=new_compartments,
        caveats=new_caveats,
        justification=justification,
        **approved(),
    )
    if as_json:
        echo_json(jsonable(doc))
    else:
        tell(f"reclassified {doc.id} as {label_line(doc.label)}")


@click.command()
@click.argument("doc_ids", metavar="[ID]...", nargs=-1)
@click.option("--due", is_flag=True, help="Every document whose declassify-on date has passed.")
@_justification_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the documents.")
@approval_options(needs_justification=True)
@click.pass_context
def declassify(
    ctx: click.Context, doc_ids: Sequence[str], due: bool, justification: str | None,
    as_json: bool
) -> None:
    """Declassify documents ID... and/or those due (prints each id)."""
    if not doc_ids and not due:
        raise UsageError("no documents named", hint="give document ids, or --due")
    docs = open_vault(ctx).declassify(list(doc_ids) or None, due=due, justification=justification,
                                      **approved())
    if as_json:
        print_docs_json(docs)
        return
    for doc in docs:
        click.echo(doc.id)
    tell(f"declassified {len(docs)} document{'s' if len(docs) != 1 else ''}")


@click.command()
@click.argument("doc_id", metavar="ID")
@_justification_option
@approval_options(needs_justification=True)
@click.pass_context
def shred(ctx: click.Context, doc_id: str, justification: str | None) -> None:
    """Destroy document ID for good: every wrapped key, then the ciphertext."""
    open_vault(ctx).shred(doc_id, justification=justification, **approved())
    tell(f"shredded {doc_id}")


# --------------------------------------------------------------------------
# rotate, doctor


@click.command()
@click.option(
    "--class",
    "classes",
    multiple=True,
    metavar="CLASS",
    help="Only this label class (id, or 'LEVEL [COMPARTMENT, ...]'); repeat for several.",
)
@click.option("--post-quantum", "post_quantum", is_flag=True,
              help="Only classes whose key is still classical: move them to hybrid "
                   "(ML-KEM-768 + X25519) keys. Run again to resume.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@approval_options(justification=True)
@click.pass_context
def rotate(ctx: click.Context, classes: Sequence[str], post_quantum: bool,
           as_json: bool) -> None:
    """Rotate label-class keys and rewrap document headers (payloads untouched).

    The officer gives classes new keys; anyone else finishes pending rewraps
    of the classes whose keys they hold (that grants nothing). The report's
    'classical' lines say what a copy taken now would still leave to a
    quantum computer.
    """
    report = open_vault(ctx).rotate(list(classes) or None, post_quantum=post_quantum,
                                    **approved())
    if as_json:
        echo_json(jsonable(report))
    else:
        print_report(report)


@click.command()
@click.option("--repair", is_flag=True,
              help="Remove what interrupted writes left, finish shreds, write pending grants.")
@click.option("--deep", is_flag=True,
              help="Also check every document's payload against its label (reads everything).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def doctor(ctx: click.Context, repair: bool, deep: bool, as_json: bool) -> None:
    """Check that documents, keyrings and class keys agree with the audit log."""
    from vault.errors import IntegrityError

    report = open_vault(ctx, need_identity=False).doctor(repair=repair, deep=deep)
    if as_json:
        echo_json(jsonable(report))
    else:
        if report.ok:
            click.echo("ok: documents, keyrings and class keys agree with the audit log")
        for kind, lines in (
            ("repaired", report.repaired),
            ("note", report.notes),
            ("leftover", report.leftovers),
            ("problem", report.problems),
        ):
            for line in lines:
                click.echo(f"{kind}: {line}")
    if not report.ok:
        n = len(report.problems)
        raise IntegrityError(
            f"{n} problem{'s' if n != 1 else ''} found",
            hint=None if repair else "each problem names what was found; 'vault doctor --repair' "
            "removes leftovers but never what is evidence",
        )
