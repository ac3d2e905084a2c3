"""``vault policy apply``: the officer installs a new policy version.

It lives apart from the policy engine's own commands (check, explain, test),
which need no vault; cli/_policy.py attaches it to the ``policy`` group.
"""

from __future__ import annotations

import click

from ._approve import approval_options, approved
from ._common import echo_json
from ._common import info as tell
from ._vault_common import jsonable, open_vault, print_report


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@approval_options(justification=True)
@click.pass_context
def apply(ctx: click.Context, file: str, as_json: bool) -> None:
    """Sign FILE as the vault's new policy and reconcile keyrings (officer only).

    New grants get their class keys; users who lost a clearance lose the
    keys too: the affected classes are rotated and document headers
    rewrapped (payloads are never re-encrypted).
    """
    report = open_vault(ctx).apply_policy(file, **approved())
    if as_json:
        echo_json(jsonable(report))
    else:
        print_report(report)
        tell(f"policy {file} applied")
