"""Plumbing shared by the vault's commands: which vault, which identity,
and how documents and reports are printed.

Nothing here imports the library at module level: ``vault --help`` stays
fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vault.errors import UsageError

from ._common import echo_json, printable, settings, warn
from ._common import info as tell
from ._complete import complete_caveats, complete_compartments, complete_levels
from ._identity import load_identity_file

if TYPE_CHECKING:  # pragma: no cover
    from vault import DocumentInfo, UserIdentity, Vault
    from vault.policy import Label, Policy

# --------------------------------------------------------------------------
# Shared plumbing.


def vault_dir(ctx: click.Context) -> str:
    path = settings(ctx).vault_dir
    if not path:
        raise UsageError("no vault given", hint="pass --vault DIR, or set VAULT_DIR")
    return path


def user_identity(ctx: click.Context, path: str | None = None) -> UserIdentity:
    path = path or settings(ctx).identity_path
    if not path:
        raise UsageError("no identity given",
                         hint="pass --identity FILE, or set VAULT_IDENTITY")
    return load_identity_file(path)


FC = TypeVar("FC", bound=Callable[..., Any])


def _waiting(why: str) -> None:
    tell(f"waiting for the vault's lock: {why}; this goes on when they finish")


def open_vault(ctx: click.Context, *, need_identity: bool = True,
               for_incident: bool = False) -> Vault:
    """The vault named by --vault/VAULT_DIR, acting as --identity/VAULT_IDENTITY
    (``for_incident``: see :class:`vault.Vault`)."""
    from vault import Vault

    path = vault_dir(ctx)
    ident = None
    if need_identity or settings(ctx).identity_path:
        ident = user_identity(ctx)
    v = Vault(path, ident, on_wait=_waiting, vault_id=settings(ctx).vault_id,
              for_incident=for_incident)
    ctx.call_on_close(v.close)
    ctx.call_on_close(lambda: warn_replayed(v))  # runs first: before the vault closes
    warn_unkept()
    return v


def warn_replayed(v: Vault) -> None:
    """What the replay found that no command may keep silent: records out of
    place (lines inserted, split or joined), after which records stop
    counting (docs/AUDIT.md §11.3)."""
    import sqlite3

    from vault.errors import VaultError

    try:
        found = v.warnings()
    except (VaultError, sqlite3.Error):  # the state cannot be read: the command said why
        return
    for message in found:
        warn(message)


def warn_unkept() -> None:
    """The replay kept in memory alone is said, never silent: this machine
    would not notice a log rolled back or a vault replaced in its place."""
    from vault._trust.state import state_problem

    why = state_problem()
    if why is not None:
        warn(f"this machine keeps no record of the vault: {why}; a log rolled back or a "
             "vault replaced in its place goes unnoticed (set VAULT_STATE_DIR to a folder "
             "of your own, mode 0700)")


def jsonable(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple | frozenset | set):
        return printable(",".join(sorted(str(v) for v in value))) or "-"
    # Stored titles and file names come from whoever sealed the document.
    return printable(str(value))


def label_text(policy: Policy, label: Label) -> str:
    """The one way labels are written (vault.policy.Policy.format_label)."""
    return printable(policy.format_label(label))


def print_docs_json(docs: Iterable[DocumentInfo]) -> None:
    echo_json([jsonable(d) for d in docs])


def print_info(policy: Policy, doc: DocumentInfo) -> None:
    label = doc.label.to_dict()  # JSON-safe: times as RFC 3339 text
    rows: list[tuple[str, Any]] = [
        ("id", doc.id),
        ("label", label_text(policy, doc.label)),
        *((key, label.get(key)) for key in _LABEL_FIELDS),
        ("sealed_at", doc.sealed_at),
        ("sealed_by", doc.sealed_by),
        ("policy", doc.policy),
        ("size", doc.size),
        ("payload_sha256", doc.payload_sha256),
        # Only with the document's key; otherwise "-" and why.
        ("title", doc.title),
        ("filename", doc.filename),
        ("content_type", doc.content_type),
        ("plaintext_size", doc.plaintext_size),
    ]
    if doc.hidden:
        rows.append(("hidden", f"title and file name not shown: {doc.hidden}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {text(value)}")


_LABEL_FIELDS = (
    "classified_by",
    "reason",
    "derived_from",
    "created",
    "declassify_on",
    "embargo_until",
)


def label_options(fn: Any) -> Any:
    fn = click.option(
        "--caveat",
        "caveats",
        multiple=True,
        metavar="X",
        shell_complete=complete_caveats,
        help="Caveat (handling marking); repeat for several.",
    )(fn)
    fn = click.option(
        "--compartment",
        "compartments",
        multiple=True,
        metavar="C",
        shell_complete=complete_compartments,
        help="Compartment; repeat for several.",
    )(fn)
    return fn


LEVEL_HELP = ("Level, or a whole label as 'vault ls' shows it (LEVEL//COMPARTMENT/...//CAVEAT); "
              "default: the policy's.")


def level_option(help: str = LEVEL_HELP) -> Callable[[FC], FC]:
    """``--level``, which takes a level or a whole label (parsed by the policy)."""
    return click.option("--level", metavar="L", shell_complete=complete_levels, help=help)


def print_report(report: Any) -> None:
    data = jsonable(report)
    if not isinstance(data, dict):
        click.echo(str(report))
        return
    for key, value in data.items():
        if isinstance(value, list):
            click.echo(f"{key}: {len(value)}")
            for item in value:
                click.echo(f"  {printable(str(item))}")
        else:
            click.echo(f"{key}: {text(value)}")
    if data.get("pending"):
        tell("hint: each pending item names who can finish it; nothing else is needed from "
             "you")


# --------------------------------------------------------------------------
# The vault's audit log, for ``vault audit`` when --vault/VAULT_DIR is set.


def vault_for_audit(ctx: click.Context) -> Vault | None:
    # One Vault per command, shared by the helpers below.
    path = settings(ctx).vault_dir
    if not path:
        return None
    v: Vault | None = ctx.meta.get("vault_cli.audit_vault")
    if v is None:
        from vault import Vault

        v = ctx.meta["vault_cli.audit_vault"] = Vault(path, vault_id=settings(ctx).vault_id)
        opened = v
        ctx.call_on_close(lambda: warn_replayed(opened))
        warn_unkept()
    return v


def vault_audit_log(ctx: click.Context) -> Any:
    """The audit log (``vault.audit.AuditLog``) of the vault named by
    --vault/VAULT_DIR, or None when no vault is named."""
    v = vault_for_audit(ctx)
    return None if v is None else v.audit


def vault_audit_verify(ctx: click.Context, trusted_checkpoint: bytes | None,
                       verifier: Any = None) -> Any:
    """Verify the vault's audit log as the vault reads it: every record's
    signature by the key the policy in force then gave its actor, the
    checkpoints by ``verifier`` (default: the key vault.json pins). None
    when no vault is named."""
    v = vault_for_audit(ctx)
    return None if v is None else v.verify_audit(trusted_checkpoint=trusted_checkpoint,
                                                 verifier=verifier)


def vault_audit_verifier(ctx: click.Context) -> Any:
    """The checkpoint verifier pinned in the vault's signed ``vault.json``."""
    v = vault_for_audit(ctx)
    if v is None:
        return None
    from vault.audit import NoteVerifier

    return NoteVerifier.from_key(v.manifest.log_key)
