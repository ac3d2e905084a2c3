"""The vault's document commands: init, seal, open, export, ls, info.

Each command is a thin wrapper over :class:`vault.Vault`: the library checks
the policy and writes the audit record before anything is decrypted or
changed; this module only parses options and prints. Data goes to stdout
(ids, JSON, plaintext), messages for people to stderr. The library is
imported inside the commands so that ``vault --help`` stays fast.

The commands that change documents (reclassify, declassify, shred) and
administer the vault (rotate, doctor) live in :mod:`vault_cli._vault_admin`
and are re-exported here, where the command table looks for them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from vault.errors import UsageError

from . import _progress
from ._common import echo_json
from ._common import info as tell
from ._vault_admin import declassify, doctor, reclassify, rotate, shred
from ._vault_common import (
    jsonable,
    label_line,
    label_options,
    open_vault,
    print_docs_json,
    print_info,
    text,
    user_identity,
    vault_dir,
)

__all__ = [
    "declassify",
    "doctor",
    "export",
    "info",
    "init",
    "ls",
    "open_",
    "reclassify",
    "rotate",
    "seal",
    "shred",
]

# --------------------------------------------------------------------------
# init


@click.command()
@click.argument("directory", metavar="DIR", required=False, type=click.Path(file_okay=False))
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The policy YAML file the officer signs.",
)
@click.option(
    "--identity",
    "officer_path",
    type=click.Path(exists=True, dir_okay=False),
    help="The officer's identity file (default: the global --identity).",
)
@click.option(
    "--recovery-out",
    type=click.Path(dir_okay=False),
    help="Create a recovery identity here (when the policy names no recovery recipient).",
)
@click.pass_context
def init(
    ctx: click.Context,
    directory: str | None,
    policy_path: str,
    officer_path: str | None,
    recovery_out: str | None,
) -> None:
    """Create a vault in DIR under the policy, signed by the officer."""
    from vault import Vault

    directory = directory or vault_dir(ctx)
    if recovery_out and os.path.lexists(recovery_out):
        raise UsageError(
            f"{recovery_out} already exists", hint="choose a new file for the recovery identity"
        )
    officer = user_identity(ctx, officer_path)
    Vault.init(directory, policy_path, officer, recovery_out=recovery_out)
    tell(f"created vault in {directory}, policy signed by {officer.name}")
    if recovery_out:
        tell(f"recovery identity written to {recovery_out}: keep it offline, it opens everything")


# --------------------------------------------------------------------------
# seal


@click.command()
@click.argument(
    "files",
    metavar="FILE...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
)
@click.option("--level", metavar="L", help="Classification level (default: the policy's).")
@label_options
@click.option("--title", metavar="T", help="Title (readable only with the document's key).")
@click.option("--declassify-on", metavar="DATE", help="Date the document may be declassified.")
@click.option("--embargo-until", metavar="TIME", help="No one opens it before this time.")
@click.option("--justification", metavar="TEXT", help="Why this label (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the new documents.")
@click.pass_context
def seal(
    ctx: click.Context,
    files: Sequence[str],
    level: str | None,
    compartments: Sequence[str],
    caveats: Sequence[str],
    title: str | None,
    declassify_on: str | None,
    embargo_until: str | None,
    justification: str | None,
    as_json: bool,
) -> None:
    """Seal FILE... into the vault; print each new id, one per line."""
    if title is not None and len(files) > 1:
        raise UsageError(
            "--title names one document", hint="seal files one at a time to title each"
        )
    v = open_vault(ctx)
    sealed = []
    for path in files:
        with open(path, "rb") as raw, _progress.reading(
            raw, os.fstat(raw.fileno()).st_size, f"sealing {os.path.basename(path)}"
        ) as src:
            doc = v.seal(
                src,
                level=level,
                compartments=tuple(compartments),
                caveats=tuple(caveats),
                title=title,
                filename=os.path.basename(path),
                declassify_on=declassify_on,
                embargo_until=embargo_until,
                justification=justification,
            )
        sealed.append(doc)
        if not as_json:
            # One id per line as each is sealed, so a partial run still tells
            # the caller which files made it.
            click.echo(doc.id)
    if as_json:
        print_docs_json(sealed)


# --------------------------------------------------------------------------
# open, export


def _binary_stdout(what: str, explicit: bool) -> Any:
    if not explicit and sys.stdout.isatty():
        raise UsageError(
            f"refusing to write {what} to the terminal",
            hint="use -o FILE, or -o - to write to stdout anyway",
        )
    return sys.stdout.buffer


@click.command("open")
@click.argument("doc_id", metavar="ID")
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Where to write the plaintext; '-' is stdout (the default when not a terminal).",
)
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@click.pass_context
def open_(ctx: click.Context, doc_id: str, output: str | None, force: bool) -> None:
    """Open document ID: decrypt it, after checking its label and the policy."""
    if output not in (None, "-") and not force and os.path.lexists(output):
        raise UsageError(f"{output} already exists", hint="use --force to overwrite it")
    v = open_vault(ctx)
    if output in (None, "-"):
        out = _binary_stdout("the document", output == "-")
        v.open(doc_id, out)
        out.flush()
        return
    v.open(doc_id, output, overwrite=force)
    tell(f"opened {doc_id} into {output}")


@click.command()
@click.argument("doc_id", metavar="ID")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    required=True,
    help="Where to write the age file ('-': stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.pass_context
def export(ctx: click.Context, doc_id: str, output: str, force: bool) -> None:
    """Write document ID as a standard age file (its recipients can use stock age)."""
    if output != "-" and not force and os.path.lexists(output):
        raise UsageError(f"{output} already exists", hint="use --force to overwrite it")
    v = open_vault(ctx)
    if output == "-":
        out = _binary_stdout("an age file", True)
        v.export(doc_id, out)
        out.flush()
        return
    v.export(doc_id, output, overwrite=force)
    tell(f"exported {doc_id} to {output}")


# --------------------------------------------------------------------------
# ls, info


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def ls(ctx: click.Context, as_json: bool) -> None:
    """List the documents you may see."""
    if as_json:  # the same JSON as print_docs_json(ls()), made for large vaults
        click.echo(open_vault(ctx).ls_json())
        return
    docs = open_vault(ctx).ls()
    # Titles are not shown: they are encrypted, and listing decrypts nothing.
    rows = [("ID", "LABEL", "SEALED BY", "SEALED AT")]
    rows += [(d.id, label_line(d.label), d.sealed_by, text(d.sealed_at)) for d in docs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@click.command()
@click.argument("doc_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def info(ctx: click.Context, doc_id: str, as_json: bool) -> None:
    """Show document ID's label and, if you hold its key, its metadata."""
    doc = open_vault(ctx).info(doc_id)
    if as_json:
        echo_json(jsonable(doc))
    else:
        print_info(doc)
