"""The vault's document commands: init, seal, open, ls, info, export,
reclassify, declassify, shred, rotate, doctor.

Each command is a thin wrapper over :class:`vault.Vault`: the library checks
the policy and writes the audit record before anything is decrypted or
changed; this module only parses options and prints. Data goes to stdout
(ids, JSON, plaintext), messages for people to stderr. The library is
imported inside the commands so that ``vault --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from vault.errors import UsageError

from . import _progress
from ._common import echo_json, settings
from ._common import info as tell
from ._identity import load_identity_file

# --------------------------------------------------------------------------
# Shared plumbing.


def vault_dir(ctx: click.Context) -> str:
    path = settings(ctx).vault_dir
    if not path:
        raise UsageError(
            "no vault given", hint="pass --vault DIR before the command, or set VAULT_DIR"
        )
    return path


def user_identity(ctx: click.Context, path: str | None = None) -> Any:
    path = path or settings(ctx).identity_path
    if not path:
        raise UsageError(
            "no identity given",
            hint="pass --identity FILE before the command, or set VAULT_IDENTITY",
        )
    return load_identity_file(path)


def open_vault(ctx: click.Context, *, need_identity: bool = True) -> Any:
    """The vault named by --vault/VAULT_DIR, acting as --identity/VAULT_IDENTITY."""
    from vault import Vault

    path = vault_dir(ctx)
    ident = None
    if need_identity or settings(ctx).identity_path:
        ident = user_identity(ctx)
    return Vault(path, ident)


def jsonable(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple | frozenset | set):
        return ",".join(sorted(str(v) for v in value)) or "-"
    return str(value)


def _label_line(label: Any) -> str:
    parts = [str(label.level)]
    parts += sorted(label.compartments)
    text = "/".join(parts)
    if label.caveats:
        text += " (" + ", ".join(sorted(label.caveats)) + ")"
    return text


def _print_docs_json(docs: Iterable[Any]) -> None:
    echo_json([jsonable(d) for d in docs])


def _print_info(doc: Any) -> None:
    label = doc.label.to_dict()  # JSON-safe: times as RFC 3339 text
    rows: list[tuple[str, Any]] = [
        ("id", doc.id),
        ("label", _label_line(doc.label)),
        *((key, label.get(key)) for key in _LABEL_FIELDS),
        ("sealed_at", doc.sealed_at),
        ("sealed_by", doc.sealed_by),
        ("policy", doc.policy),
        ("size", doc.size),
        # Only with the document's key; otherwise "-".
        ("title", doc.title),
        ("filename", doc.filename),
        ("content_type", doc.content_type),
        ("plaintext_size", doc.plaintext_size),
        ("sha256", doc.sha256),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {_text(value)}")


_LABEL_FIELDS = (
    "level",
    "compartments",
    "caveats",
    "classified_by",
    "reason",
    "derived_from",
    "created",
    "declassify_on",
    "embargo_until",
)


def _label_options(fn: Any) -> Any:
    fn = click.option(
        "--caveat",
        "caveats",
        multiple=True,
        metavar="X",
        help="Caveat (handling marking); repeat for several.",
    )(fn)
    fn = click.option(
        "--compartment",
        "compartments",
        multiple=True,
        metavar="C",
        help="Compartment; repeat for several.",
    )(fn)
    return fn


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
@_label_options
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
        _print_docs_json(sealed)


# --------------------------------------------------------------------------
# open, export


def _binary_stdout(what: str, explicit: bool) -> Any:
    if not explicit and sys.stdout.isatty():
        raise UsageError(
            f"refusing to write {what} to the terminal",
            hint="use -o FILE, or -o - to write to stdout anyway",
        )
    return click.get_binary_stream("stdout")


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
    docs = open_vault(ctx).ls()
    if as_json:
        _print_docs_json(docs)
        return
    # Titles are not shown: they are encrypted, and listing decrypts nothing.
    rows = [("ID", "LABEL", "SEALED BY", "SEALED AT")]
    rows += [(d.id, _label_line(d.label), d.sealed_by, _text(d.sealed_at)) for d in docs]
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
        _print_info(doc)


# --------------------------------------------------------------------------
# reclassify, declassify, shred


def _justification_option(fn: Any) -> Any:
    return click.option(
        "--justification",
        metavar="TEXT",
        required=True,
        help="Why (recorded in the audit log).",
    )(fn)


def _read_approver_passphrase(path: str) -> str:
    # The approver is another person, with another passphrase: it never
    # comes from VAULT_PASSPHRASE_FILE, which holds the caller's.
    env = os.environ.get("VAULT_APPROVER_PASSPHRASE_FILE")
    if env:
        with open(env, encoding="utf-8") as f:
            value = f.readline().rstrip("\r\n")
        if value:
            return value
        raise UsageError("VAULT_APPROVER_PASSPHRASE_FILE holds an empty passphrase")
    if not sys.stdin.isatty():
        raise UsageError(
            f"the approver identity {path} is encrypted and there is no terminal to ask",
            hint="set VAULT_APPROVER_PASSPHRASE_FILE to a file holding the approver's passphrase",
        )
    return str(click.prompt(f"Approver's passphrase for {path}", hide_input=True, err=True))


@click.command()
@click.argument("doc_id", metavar="ID")
@click.option("--level", metavar="L", help="New level.")
@_label_options
@click.option("--clear-compartments", is_flag=True, help="Remove every compartment.")
@click.option("--clear-caveats", is_flag=True, help="Remove every caveat.")
@_justification_option
@click.option(
    "--approver-identity",
    type=click.Path(exists=True, dir_okay=False),
    help="A second person's identity, for rules that need two (their passphrase: "
    "VAULT_APPROVER_PASSPHRASE_FILE or the terminal).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new document info as JSON.")
@click.pass_context
def reclassify(
    ctx: click.Context,
    doc_id: str,
    level: str | None,
    compartments: Sequence[str],
    caveats: Sequence[str],
    clear_compartments: bool,
    clear_caveats: bool,
    justification: str,
    approver_identity: str | None,
    as_json: bool,
) -> None:
    """Give document ID a new label, signed by you."""
    from vault import load_identity

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
    approver = None
    if approver_identity:
        path = approver_identity
        approver = load_identity(path, passphrase=lambda: _read_approver_passphrase(path))
    doc = open_vault(ctx).reclassify(
        doc_id,
        level=level,
        compartments=new_compartments,
        caveats=new_caveats,
        justification=justification,
        approver=approver,
    )
    if as_json:
        echo_json(jsonable(doc))
    else:
        tell(f"reclassified {doc.id} as {_label_line(doc.label)}")


@click.command()
@click.argument("doc_ids", metavar="[ID]...", nargs=-1)
@click.option("--due", is_flag=True, help="Every document whose declassify-on date has passed.")
@_justification_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the documents.")
@click.pass_context
def declassify(
    ctx: click.Context, doc_ids: Sequence[str], due: bool, justification: str, as_json: bool
) -> None:
    """Declassify documents ID... and/or those due (prints each id)."""
    if not doc_ids and not due:
        raise UsageError("no documents named", hint="give document ids, or --due")
    docs = open_vault(ctx).declassify(list(doc_ids) or None, due=due, justification=justification)
    if as_json:
        _print_docs_json(docs)
        return
    for doc in docs:
        click.echo(doc.id)
    tell(f"declassified {len(docs)} document{'s' if len(docs) != 1 else ''}")


@click.command()
@click.argument("doc_id", metavar="ID")
@_justification_option
@click.pass_context
def shred(ctx: click.Context, doc_id: str, justification: str) -> None:
    """Destroy document ID for good: every wrapped key, then the ciphertext."""
    open_vault(ctx).shred(doc_id, justification=justification)
    tell(f"shredded {doc_id}")


# --------------------------------------------------------------------------
# rotate, doctor


def print_report(report: Any) -> None:
    data = jsonable(report)
    if not isinstance(data, dict):
        click.echo(str(report))
        return
    for key, value in data.items():
        if isinstance(value, list):
            click.echo(f"{key}: {len(value)}")
            for item in value:
                click.echo(f"  {item}")
        else:
            click.echo(f"{key}: {_text(value)}")


@click.command()
@click.option(
    "--class",
    "classes",
    multiple=True,
    metavar="CLASS",
    help="Only this label class (id, or 'LEVEL [COMPARTMENT, ...]'); repeat for several.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def rotate(ctx: click.Context, classes: Sequence[str], as_json: bool) -> None:
    """Rotate label-class keys and rewrap document headers (payloads untouched).

    The officer gives classes new keys; anyone else finishes pending rewraps
    of the classes whose keys they hold (that grants nothing).
    """
    report = open_vault(ctx).rotate(list(classes) or None)
    if as_json:
        echo_json(jsonable(report))
    else:
        print_report(report)


@click.command()
@click.option("--repair", is_flag=True, help="Rebuild what can be rebuilt (the index).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def doctor(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Check that documents, index, keyrings and audit log agree."""
    from vault.errors import IntegrityError

    report = open_vault(ctx, need_identity=False).doctor(repair=repair)
    if as_json:
        echo_json(jsonable(report))
    else:
        for kind, lines in (
            ("repaired", report.repaired),
            ("note", report.notes),
            ("problem", report.problems),
        ):
            for line in lines:
                click.echo(f"{kind}: {line}")
        if report.ok:
            click.echo("ok: documents, index, keyrings and audit log agree")
    if not report.ok:
        n = len(report.problems)
        raise IntegrityError(
            f"{n} problem{'s' if n != 1 else ''} found",
            hint=None if repair else "run 'vault doctor --repair' to rebuild what can be rebuilt",
        )

