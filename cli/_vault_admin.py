"""Commands that change documents or administer the vault: reclassify,
declassify, shred, rotate, doctor (re-exported by :mod:`vault_cli._vault`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from vault.errors import DeniedError, PartialError, UsageError

from ._approve import approval_options, approved
from ._common import echo_json, printable, report_error
from ._common import info as tell
from ._complete import complete_caveats, complete_compartments, complete_doc_ids
from ._vault_common import (
    jsonable,
    label_text,
    level_option,
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
@click.argument("doc_id", metavar="ID", shell_complete=complete_doc_ids)
@level_option(help="New level, or a whole new label as 'vault ls' shows it "
              "(LEVEL//COMPARTMENT/...//CAVEAT: replaces the compartments and caveats).")
@click.option("--add-compartment", "add_compartments", multiple=True, metavar="C",
              shell_complete=complete_compartments, help="Add this compartment (repeatable).")
@click.option("--remove-compartment", "remove_compartments", multiple=True, metavar="C",
              shell_complete=complete_compartments,
              help="Remove this compartment (repeatable).")
@click.option("--add-caveat", "add_caveats", multiple=True, metavar="X",
              shell_complete=complete_caveats, help="Add this caveat (repeatable).")
@click.option("--remove-caveat", "remove_caveats", multiple=True, metavar="X",
              shell_complete=complete_caveats, help="Remove this caveat (repeatable).")
@click.option("--compartment", "compartments", multiple=True, metavar="C",
              shell_complete=complete_compartments,
              help="The whole new set of compartments (repeat for several): replaces the "
              "current ones; the result names any dropped.")
@click.option("--caveat", "caveats", multiple=True, metavar="X",
              shell_complete=complete_caveats,
              help="The whole new set of caveats: replaces the current ones.")
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
    add_compartments: Sequence[str],
    remove_compartments: Sequence[str],
    add_caveats: Sequence[str],
    remove_caveats: Sequence[str],
    compartments: Sequence[str],
    caveats: Sequence[str],
    clear_compartments: bool,
    clear_caveats: bool,
    justification: str | None,
    as_json: bool,
) -> None:
    """Give document ID a new label, signed by you.

    Change the level with --level; add and remove compartments and caveats
    with --add-… and --remove-…, or give a whole new set. What was dropped
    is said in the result.
    """
    whole_label = level is not None and "/" in level
    sets = _new_sets(compartments, caveats, clear_compartments, clear_caveats, whole_label,
                     bool(add_compartments or remove_compartments),
                     bool(add_caveats or remove_caveats))
    if level is None and sets == (None, None) and not (
            add_compartments or remove_compartments or add_caveats or remove_caveats):
        raise UsageError(
            "nothing to change",
            hint="give --level, --add-compartment, --remove-compartment, --add-caveat or "
            "--remove-caveat")
    v = open_vault(ctx)
    try:
        doc = v.reclassify(
            doc_id, level=level, compartments=sets[0], caveats=sets[1],
            add_compartments=add_compartments, remove_compartments=remove_compartments,
            add_caveats=add_caveats, remove_caveats=remove_caveats,
            justification=justification, **approved())
    except DeniedError as e:
        raise _explained(e, v.policy) from None
    if as_json:
        echo_json(jsonable(doc))
        return
    assert doc.previous is not None
    tell(f"reclassified {doc.id}: {label_text(v.policy, doc.previous)} -> "
         f"{label_text(v.policy, doc.label)}")
    for key, what in (("removed_compartments", "dropped compartment"),
                      ("removed_caveats", "dropped caveat"),
                      ("added_compartments", "added compartment"),
                      ("added_caveats", "added caveat")):
        names = doc.changes()[key]
        if names:
            tell(f"  {what}{'s' if len(names) > 1 else ''}: {', '.join(names)}")


def _new_sets(compartments: Sequence[str], caveats: Sequence[str], clear_compartments: bool,
              clear_caveats: bool, whole_label: bool, edits_compartments: bool,
              edits_caveats: bool) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The whole new compartment and caveat sets, where the options give them."""
    if clear_compartments and compartments:
        raise UsageError("--compartment and --clear-compartments contradict each other")
    if clear_caveats and caveats:
        raise UsageError("--caveat and --clear-caveats contradict each other")
    out: list[tuple[str, ...] | None] = []
    for given, clear, edits in ((compartments, clear_compartments, edits_compartments),
                                (caveats, clear_caveats, edits_caveats)):
        whole = tuple(given) if given else (() if clear or (whole_label and not edits) else None)
        out.append(whole)
    return out[0], out[1]


def _explained(e: DeniedError, policy: Any) -> DeniedError:
    """A denial that drops names the caller may have meant to keep says so."""
    decision = e.decision
    new = decision.inputs.get("new_label") if decision is not None else None
    if decision is None or new is None or decision.label is None:
        return e
    dropped = sorted((decision.label.compartments - new.compartments)
                     | (decision.label.caveats - new.caveats))
    if not dropped:
        return e
    hint = (f"the new label {label_text(policy, new)} drops {', '.join(dropped)}: to add a "
            "compartment or caveat, use --add-compartment or --add-caveat")
    # One hint line, as every hint is printed: joined by "; ", never "\n".
    return DeniedError(e.message, decision=decision,
                       hint="; ".join(h for h in (hint, e.hint) if h))


@click.command()
@click.argument("doc_ids", metavar="[ID]...", nargs=-1)
@click.option("--due", is_flag=True, help="Every document whose declassify-on instant has come "
              "(a date: 00:00 UTC that day).")
@_justification_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the documents.")
@approval_options(needs_justification=True)
@click.pass_context
def declassify(
    ctx: click.Context, doc_ids: Sequence[str], due: bool, justification: str | None,
    as_json: bool
) -> None:
    """Declassify documents ID... and/or those due (prints each id).

    A document that cannot be declassified (spoiled, shredded meanwhile; of
    several named, also one refused) is named on stderr and the others are
    declassified; then the exit code is the failures' (4 for a spoiled
    document; 1 when they differ)."""
    if not doc_ids and not due:
        raise UsageError("no documents named", hint="give document ids, or --due")
    try:
        docs = open_vault(ctx).declassify(list(doc_ids) or None, due=due,
                                          justification=justification, **approved())
    except PartialError as e:
        _declassified(e.done, as_json)  # what was done is said even so
        for doc_id, why in e.failed:
            report_error(f"{doc_id} not declassified: {why.message}")
        raise
    _declassified(docs, as_json)


def _declassified(docs: Sequence[Any], as_json: bool) -> None:
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
    help="Only this label class (its id, or LEVEL//COMPARTMENT/... as listed); repeat for "
    "several.",
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
    quantum computer. A class that cannot be finished (something planted in
    its way) is named on stderr after the report, and the others are
    finished; then the exit code is the failures' (4 for a planted file).
    """
    try:
        report = open_vault(ctx).rotate(list(classes) or None, post_quantum=post_quantum,
                                        **approved())
    except PartialError as e:
        reconciled_in_part(e, as_json)
        raise
    if as_json:
        echo_json(jsonable(report))
    else:
        print_report(report)


def reconciled_in_part(e: PartialError, as_json: bool) -> None:
    """What a rotation or policy install did before naming the classes it
    could not finish: the report, then each class and why on stderr."""
    for report in e.done:
        if as_json:
            echo_json(jsonable(report))
        else:
            print_report(report)
    for cls, why in e.failed:
        report_error(f"class {cls} not finished: {why.message}")


@click.command()
@click.option("--repair", is_flag=True,
              help="Remove what interrupted writes left, finish shreds, write pending grants.")
@click.option("--deep", is_flag=True,
              help="Also check every document's payload against its label (reads everything).")
@click.option("--recovery-identity", "recovery", multiple=True, metavar="FILE",
              help="Also check that this recovery identity (an age identity file, 0600) "
                   "opens every document. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@approval_options()
@click.pass_context
def doctor(ctx: click.Context, repair: bool, deep: bool, recovery: tuple[str, ...],
           as_json: bool) -> None:
    """Check that documents, keyrings and class keys agree with the audit log.

    Only the holder of the recovery identity can check that it still opens
    every document: a recovery stanza made after a change of recovery
    recipients is counted, not checked. Run it with --recovery-identity
    after each such change and rotation.
    """
    from vault.errors import IntegrityError

    from ._age import identity_files_loaded

    given = approved()
    if given and not repair:
        raise UsageError("approvals are for 'doctor --repair'", hint="add --repair")
    keys = identity_files_loaded(recovery) if recovery else []
    report = open_vault(ctx, need_identity=False).doctor(repair=repair, deep=deep,
                                                         recovery=keys, **given)
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
            for line in lines:  # may quote what a record or a file says
                click.echo(f"{kind}: {printable(str(line))}")
    if not report.ok:
        n = len(report.problems)
        raise IntegrityError(f"{n} problem{'s' if n != 1 else ''} found", hint=_doctor_hint(
            ctx, report, repair))
    if report.leftovers and not repair:
        tell("hint: " + (_doctor_hint(ctx, report, repair) or "nothing to repair"))


def _doctor_hint(ctx: click.Context, report: Any, repair: bool) -> str | None:
    """Only a hint that can help: --repair removes leftovers (never
    evidence), and only where the vault can be written."""
    from ._vault_common import vault_dir

    if report.problems and all("'vault rotate'" in p for p in report.problems):
        # Work a revocation left (a class key someone no longer cleared may
        # know): no damage, no evidence -- a rotation by someone cleared.
        return "each problem is a rotation a change of clearances left pending: someone " \
            "cleared for the class must run 'vault rotate'; nothing was damaged"
    if report.problems and all("recovery identity" in p for p in report.problems):
        return "no key of the vault can open these documents: whoever keeps the recovery " \
            "identity opens them ('vault age decrypt -i') and someone cleared seals them again"
    if repair:
        return "each problem names what was found; treat unexplained ones as an incident"
    if not report.leftovers:
        return "each problem names what was found; 'vault doctor --repair' cannot fix " \
            "them: they are evidence, to compare with a backup"
    if _read_only(vault_dir(ctx)):
        return "the vault is on a read-only file system: leftovers can be removed only " \
            "where it is writable"
    return "'vault doctor --repair' (as an administrator) removes the leftovers listed, " \
        "never what is evidence"


def _read_only(location: str) -> bool:
    import os

    if "://" in location:
        return False
    try:
        return bool(os.statvfs(location).f_flag & os.ST_RDONLY)
    except OSError:
        return False
