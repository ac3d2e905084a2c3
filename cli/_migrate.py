"""``vault migrate``: the PostgreSQL schema's versions, and moving a vault
between a folder and PostgreSQL (docs/DEPLOYMENT.md §5 and §7).

    vault migrate [LOCATION] [--grant ROLE ...] [--[no-]checkpoint-key]
    vault migrate --to DEST [--from SOURCE] [--json]

The first form, run as the database's owner, creates or upgrades the vault
schema (idempotent) and grants application roles; the second copies a
vault, as an administrator under its policy (``--identity``). Locations
default to the global ``--vault`` (env ``VAULT_DIR``), then to ``VAULT_DSN``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from vault.errors import UsageError

from ._approve import approval_options, approved
from ._common import echo_json, settings, warn
from ._common import info as tell
from ._vault_common import user_identity


def _default_location(ctx: click.Context, given: str | None, what: str) -> str:
    location = given or settings(ctx).vault_dir or os.environ.get("VAULT_DSN")
    if not location:
        raise UsageError(f"no {what} given",
                         hint="name it, pass --vault before the command, or set VAULT_DSN")
    return location


@click.command("migrate")
@click.argument("location", required=False, metavar="[LOCATION]")
@click.option("--grant", "roles", multiple=True, metavar="ROLE",
              help="Give this database role the application privileges (repeatable).")
@click.option("--checkpoint-key/--no-checkpoint-key", default=None,
              help="With --grant: the roles may (or may no longer) read the checkpoint "
                   "signing key; without either, a role granted before keeps what it had.")
@click.option("--to", "destination", metavar="DEST",
              help="Move the vault here: a new folder or an empty PostgreSQL database.")
@click.option("--from", "source", metavar="SOURCE",
              help="With --to: the vault to move (default: --vault, then VAULT_DSN).")
@click.option("--missing-ok", is_flag=True,
              help="With --to: move the rest when a document's file is missing at the "
                   "source, and name it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@approval_options()
@click.pass_context
def migrate(ctx: click.Context, location: str | None, roles: Sequence[str],
            checkpoint_key: bool | None, destination: str | None, source: str | None,
            missing_ok: bool, as_json: bool) -> None:
    """Create or upgrade a PostgreSQL vault's schema, or move a vault.

    Without --to: bring the vault schema of the database LOCATION to this
    version's (run it as the database's owner; it changes no vault data),
    and grant application roles. With --to: copy the vault SOURCE to DEST,
    byte for byte, as an administrator (--identity); the audit log keeps
    verifying end to end, against the same checkpoints.
    """
    if destination is not None:
        if location or roles or checkpoint_key is not None:
            raise click.UsageError("--to moves a vault; it takes no LOCATION, --grant or "
                                   "--[no-]checkpoint-key")
        _move(ctx, _default_location(ctx, source, "vault to move"), destination, missing_ok,
              as_json)
        return
    if approved():
        raise click.UsageError("approvals are for a move (--to)")
    if source is not None or missing_ok:
        raise click.UsageError("--from and --missing-ok need --to")
    if checkpoint_key is not None and not roles:
        raise click.UsageError("--[no-]checkpoint-key goes with --grant ROLE")
    _upgrade(_default_location(ctx, location, "database"), roles, checkpoint_key, as_json)


def _upgrade(location: str, roles: Sequence[str], checkpoint_key: bool | None,
             as_json: bool) -> None:
    from vault.store import migrate_schema, open_backend

    before, after = migrate_schema(location, grant=list(roles), checkpoint_key=checkpoint_key)
    backend = open_backend(location)
    keys: dict[str, bool] = {}
    if roles:
        from vault.store.postgres import granted_roles

        # Each role's checkpoint key as the database now has it, so a
        # re-grant never changes it unnoticed (docs/DEPLOYMENT.md §5).
        granted = granted_roles(location)
        keys = {role: granted.get(role, False) for role in roles}
    if as_json:
        echo_json({"location": backend.location, "before": before, "after": after,
                   "granted": list(roles), "checkpoint_key": keys})
        return
    if before == after:
        click.echo(f"{backend.location}: vault schema version {after}, up to date")
    else:
        click.echo(f"{backend.location}: vault schema version {before} -> {after}")
    for role in roles:
        extra = (" and the checkpoint key" if keys[role]
                 else " (not the checkpoint key)")
        click.echo(f"granted the application privileges{extra} to {role}")
        if keys[role] and checkpoint_key is False:
            warn(f"{role} can still read the checkpoint key through another role it is a "
                 "member of (or PUBLIC): revoke it there")


def _move(ctx: click.Context, source: str, destination: str, missing_ok: bool,
          as_json: bool) -> None:
    from vault._ops.migrate import move_vault

    report = move_vault(source, destination, user_identity(ctx), missing_ok=missing_ok,
                        vault_id=settings(ctx).vault_id, **approved())
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"moved the vault from {report.source} to {report.destination}")
    click.echo(f"  {report.documents} documents, {report.keyring_entries} keyring entries, "
               f"{report.actors} registered actor{'s' * (report.actors != 1)}, "
               f"{report.statements} requests and approvals")
    click.echo(f"  audit log: {report.records} lines, {report.checkpoints} checkpoints, "
               f"root {report.root} (verified at the destination)")
    for note in report.notes:
        tell(f"note: {note}")
    for where in report.evidence:
        tell(f"note: {where}, kept as evidence after an incident, was moved too "
             "('vault doctor' names it there)")
    for doc in report.missing:
        warn(f"document {doc} was not moved: its file is missing at the source")
    if report.missing:
        tell("hint: restore each from a backup into the destination; 'vault doctor' there "
             "names them until then")
