"""The vault's document commands: init, seal, open, export.

Each command is a thin wrapper over :class:`vault.Vault`: the library checks
the policy and writes the audit record before anything is decrypted or
changed; this module only parses options and prints. Data goes to stdout
(ids, JSON, plaintext), messages for people to stderr. The library is
imported inside the commands so that ``vault --help`` stays fast.

Listing lives in :mod:`vault_cli._vault_list`; the commands that change
documents (reclassify, declassify, shred) and administer the vault (rotate,
doctor) in :mod:`vault_cli._vault_admin`. All are re-exported here, where
the command table looks for them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO

import click

from vault.errors import UsageError

from . import _progress
from ._approve import approval_options, approved
from ._common import binary_stream, read_passphrase
from ._common import info as tell
from ._complete import complete_doc_ids
from ._text_files import FILE_NAME, TITLE, given
from ._vault_admin import declassify, doctor, reclassify, rotate, shred
from ._vault_common import (
    label_options,
    level_option,
    open_vault,
    print_docs_json,
    user_identity,
    vault_dir,
)
from ._vault_list import info, ls

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

RECOVERY_PASSPHRASE_FILE = "VAULT_RECOVERY_PASSPHRASE_FILE"  # noqa: S105 - a variable's name

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
@click.option(
    "--protect-recovery",
    is_flag=True,
    help="Encrypt the recovery identity with a passphrase (asked twice, or read from the "
    f"file named by {RECOVERY_PASSPHRASE_FILE}); age reads such files too.",
)
@click.pass_context
def init(
    ctx: click.Context,
    directory: str | None,
    policy_path: str,
    officer_path: str | None,
    recovery_out: str | None,
    protect_recovery: bool,
) -> None:
    """Create a vault in DIR under the policy, signed by the officer."""
    from vault import Vault

    directory = directory or vault_dir(ctx)
    if protect_recovery and not recovery_out:
        raise UsageError("--protect-recovery protects the file --recovery-out writes",
                         hint="add --recovery-out FILE")
    if recovery_out and os.path.lexists(recovery_out):
        raise UsageError(
            f"{recovery_out} already exists", hint="choose a new file for the recovery identity"
        )
    officer = user_identity(ctx, officer_path)
    passphrase = read_passphrase("passphrase for the recovery identity", confirm=True,
                                 env=RECOVERY_PASSPHRASE_FILE) if protect_recovery else None
    made = Vault.init(directory, policy_path, officer, recovery_out=recovery_out,
                      recovery_passphrase=passphrase)
    vault_id = made.id
    made.close()
    tell(f"created vault in {directory}, policy signed by {officer.name}")
    tell(f"vault id {vault_id}: give it to everyone who will use the vault, to check with "
         "--vault-id (env VAULT_ID)")
    if recovery_out:
        how = "passphrase-protected" if passphrase else "unencrypted"
        tell(f"recovery identity written to {recovery_out} ({how}): keep it offline, "
             "it opens every document")


# --------------------------------------------------------------------------
# seal

_SEAL_BATCH = 500  # files per seal_many call


@click.command()
@click.argument(
    "files",
    metavar="FILE...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
)
@level_option()
@label_options
@click.option("--title", metavar="T",
              help="Title (readable only with the document's key; given here, every local "
              "user sees it in the process list: --title-file keeps it off).")
@click.option("--title-file", metavar="FILE", type=click.Path(allow_dash=True),
              help="Read the title from FILE's first line ('-': standard input): a file of "
              "yours that nobody else may read, or a pipe, <(...).")
@click.option("--filename", metavar="NAME",
              help="The file name to store (default: FILE's own; none for '-'); seen in the "
              "process list, as FILE is.")
@click.option("--filename-file", metavar="FILE", type=click.Path(allow_dash=True),
              help="Read the file name to store from FILE's first line, as --title-file.")
@click.option("--declassify-on", metavar="DATE", help="Date the document may be declassified.")
@click.option("--embargo-until", metavar="TIME", help="No one opens it before this time.")
@click.option("--justification", metavar="TEXT", help="Why this label (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the new documents.")
@approval_options()
@click.pass_context
def seal(
    ctx: click.Context,
    files: Sequence[str],
    level: str | None,
    compartments: Sequence[str],
    caveats: Sequence[str],
    title: str | None,
    title_file: str | None,
    filename: str | None,
    filename_file: str | None,
    declassify_on: str | None,
    embargo_until: str | None,
    justification: str | None,
    as_json: bool,
) -> None:
    """Seal FILE... into the vault; print each new id, one per line.

    '-' reads a document from standard input (give it a --filename to
    store). The label is --level (a level, or a whole label such as
    CONFIDENTIAL//FINANCE//PERSONAL-DATA) plus any --compartment and
    --caveat; without one, the policy's default, raised to what the file
    says of itself (see 'vault classify'). A path through a symbolic link
    that another user made is refused, and so is a FIFO or device file that
    another user made.

    Every local user sees a command line in the process list while it
    runs: a --title, a --filename, FILE's own path. --title-file and
    --filename-file read them from a file of yours or a pipe instead ('-'
    and --filename-file keep FILE's name off it too).
    """
    for option, text, path in (("--title", title, title_file),
                               ("--filename", filename, filename_file)):
        if (text is not None or path is not None) and len(files) > 1:
            as_given = option if path is None else f"{option}-file"
            raise UsageError(f"{as_given} names one document", hint="seal files one at a time"
                             + (" to title each" if option == "--title" else ""))
    if approved() and len(files) > 1:
        raise UsageError("approvals cover one document", hint="seal files one at a time")
    if files.count("-") > 1:
        raise UsageError("standard input can be sealed once")
    if files.count("-") + [title_file, filename_file].count("-") > 1:
        raise UsageError("standard input can be read once",
                         hint="give the title or file name in a file of yours, or a pipe: "
                              "--title-file <(...)")
    # Read before the vault is opened: a file that gives no title or name
    # is refused at input; what one gives goes on as --title's would.
    title = given(TITLE, title, title_file)
    filename = given(FILE_NAME, filename, filename_file)
    v = open_vault(ctx)
    sealed = []
    for group in _batches(files):
        with contextlib.ExitStack() as stack:
            srcs: Sequence[Any] = group
            name = None
            if len(group) == 1:
                (path,) = group
                raw, size = stack.enter_context(_source(path))
                what = "standard input" if path == "-" else os.path.basename(path)
                srcs = [stack.enter_context(_progress.reading(raw, size, f"sealing {what}"))]
                name = filename or (None if path == "-" else os.path.basename(path))
            # Several files of one label are sealed together: one decision,
            # one batch of records, durable writes grouped (Vault.seal_many).
            docs = v.seal_many(
                srcs,
                level=level,
                compartments=tuple(compartments),
                caveats=tuple(caveats),
                title=title,
                filename=name,
                declassify_on=declassify_on,
                embargo_until=embargo_until,
                justification=justification,
                **approved(),
            )
        sealed += docs
        if not as_json:
            # The ids of each group as soon as it is sealed, so that a partial
            # run still tells the caller which files made it.
            click.echo("\n".join(doc.id for doc in docs))
    if as_json:
        print_docs_json(sealed)


class _source:
    """A file to seal, or standard input for '-': (stream, size if known)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: BinaryIO | None = None

    def __enter__(self) -> tuple[BinaryIO, int | None]:
        if self.path == "-":
            return binary_stream("stdin"), None
        from vault._ops.seal import open_source

        self.file = open_source(self.path)
        return self.file, os.fstat(self.file.fileno()).st_size

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _batches(files: Sequence[str]) -> list[list[str]]:
    """Consecutive small files in groups that one ``seal_many`` call takes
    (each keeps its files open: a few hundred at most); a large file alone,
    with its progress bar."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    most = max(1, min(_SEAL_BATCH, (soft if soft > 0 else 1024) // 2 - 32))
    groups: list[list[str]] = []
    current: list[str] = []
    for path in files:
        if path == "-" or os.path.getsize(path) >= _progress.LARGE_FILE:
            groups += [current, [path]] if current else [[path]]
            current = []
            continue
        current.append(path)
        if len(current) == most:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


# --------------------------------------------------------------------------
# open, export


def _binary_stdout(what: str, explicit: bool) -> Any:
    if not explicit and sys.stdout.isatty():
        raise UsageError(
            f"refusing to write {what} to the terminal",
            hint="use -o FILE, -O to save it under its own file name, or -o - to write to "
            "stdout anyway",
        )
    return binary_stream("stdout")


@click.command("open")
@click.argument("doc_id", metavar="ID", shell_complete=complete_doc_ids)
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Where to write the plaintext: a file, a folder (then under the stored file name), "
    "or '-' for stdout (the default when not a terminal).",
)
@click.option("-O", "--stored-name", is_flag=True,
              help="Save under the document's stored file name, in the current folder "
              "(or in the folder -o names); never outside it.")
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@click.option("--mark", is_flag=True,
              help="Write the vault's label into the Office or PDF file's sensitivity-label "
                   "properties (the policy's Office label mapping).")
@approval_options(justification=True)
@click.pass_context
def open_(ctx: click.Context, doc_id: str, output: str | None, stored_name: bool,
          force: bool, mark: bool) -> None:
    """Open document ID: decrypt it, after checking its label and the policy.

    An existing file is replaced only with --force; a device or FIFO
    (/dev/null, a pipe) is written in place; a symbolic link is followed,
    never replaced, and refused if another user made it. A folder another
    user made, or one lying in such a folder, is refused.
    """
    into = None
    if stored_name or (output not in (None, "-") and os.path.isdir(str(output))):
        if output == "-":
            raise UsageError("-O saves to a file; '-o -' writes to stdout", hint="give one")
        into = output or "."
    v = open_vault(ctx)
    if into is not None:
        path, _ = v.open_into(doc_id, into, overwrite=force, mark=mark, **approved())
        tell(f"opened {doc_id} into {path}")
        return
    if output in (None, "-"):
        out = _binary_stdout("the document", output == "-")
        v.open(doc_id, out, mark=mark, **approved())
        out.flush()
        return
    # The path goes to the library: the file is committed inside the
    # attempt, so that a failure to write it is on the record.
    v.open(doc_id, output, overwrite=force, mark=mark, **approved())
    tell(f"opened {doc_id} into {output}")


@click.command()
@click.argument("doc_id", metavar="ID", shell_complete=complete_doc_ids)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    required=True,
    help="Where to write the age file ('-': stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@approval_options(justification=True)
@click.pass_context
def export(ctx: click.Context, doc_id: str, output: str, force: bool) -> None:
    """Write document ID as a standard age file (its recipients can use stock age).

    -o FILE as for 'vault open': replaced only with --force; a device or
    FIFO written in place; a symbolic link followed, never replaced.
    """
    v = open_vault(ctx)
    if output == "-":
        out = _binary_stdout("an age file", True)
        v.export(doc_id, out, **approved())
        out.flush()
        return
    v.export(doc_id, output, overwrite=force, **approved())
    tell(f"exported {doc_id} to {output}")
