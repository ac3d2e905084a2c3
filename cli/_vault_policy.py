"""``vault policy apply`` and ``vault policy show``: the policy versions of
a vault.

They live apart from the policy engine's own commands (check, explain,
test), which need no vault; cli/_policy.py attaches them to the ``policy``
group.
"""

from __future__ import annotations

import click

from vault.errors import PartialError, PolicyProblem

from ._approve import approval_options, approved
from ._common import echo_json, printable, warn
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
    rewrapped (payloads are never re-encrypted). What the officer cannot do
    (a class she is not cleared for) is listed as pending, with who can. A
    class that cannot be finished (something planted in its way) is named
    on stderr after the report; the version is in force all the same, and
    the exit code is the failures'.
    """
    try:
        report = open_vault(ctx).apply_policy(file, **approved())
    except PartialError as e:  # in force, some classes not reconciled
        from ._vault_admin import reconciled_in_part

        reconciled_in_part(e, as_json)
        tell(f"policy {file} applied: version {e.done[0].version} is in force")
        raise
    if as_json:
        echo_json(jsonable(report))
    else:
        print_report(report)
        tell(f"policy {file} applied: version {report.version} is in force")


@click.command()
@click.option("--text", "as_text", is_flag=True,
              help="Print the policy file itself (YAML) as installed, any character "
              "that is not printable escaped.")
@click.option("--version", "version", type=click.IntRange(min=1), metavar="N",
              help="Show version N instead of the one in force.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def show(ctx: click.Context, as_text: bool, version: int | None, as_json: bool) -> None:
    """Show the policy in force: its version, who installed it and when,
    and every earlier version (from the vault's verified audit log).

    Needs no identity: the policy is no secret to whoever can read the
    vault. 'vault policy show --text > current.yaml' gives the file to
    read, or to pass to 'vault policy explain': its text, with any
    character that is not printable escaped (a file the reader takes
    holds none but line ends; an older version's are shown as, e.g., \\u202e).
    """
    v = open_vault(ctx, need_identity=False)
    versions = v.policy_versions
    if as_text:
        _echo_policy_text(v.policy_text(version))
        return
    chosen = versions[-1] if version is None else next(
        (x for x in versions if x.version == version), None)
    if chosen is None:
        from vault.errors import UsageError

        raise UsageError(f"no policy version {version} was installed in this vault",
                         hint=f"versions: 1 to {len(versions)}")
    from vault.policy._loader import installed_text_problems, load_installed_policy

    data = v.policy_text(chosen.version).encode("utf-8")
    pol = load_installed_policy(data, "policy")
    _warn_characters(installed_text_problems(data, f"policy version {chosen.version}"))
    if as_json:
        echo_json({"name": pol.name, "in_force": versions[-1].version,
                   **chosen.to_dict(), "versions": [x.to_dict() for x in versions]})
        return
    state = "in force" if chosen is versions[-1] else f"not in force (version " \
        f"{versions[-1].version} is)"
    # The name is the officer's text: escaped, so that it shows as one line.
    click.echo(f"policy     {printable(pol.name)}, version {chosen.version} of "
               f"{len(versions)} ({state})")
    click.echo(f"sha256     {chosen.sha256}")
    click.echo(f"installed  {chosen.applied_at} by {chosen.applied_by} "
               f"(audit record {chosen.seq})")
    click.echo(f"contents   {len(pol.levels)} levels, {len(pol.compartments)} compartments, "
               f"{len(pol.users)} users, {len(pol.rules)} rules; post_quantum "
               f"{pol.post_quantum}")
    if len(versions) > 1:
        click.echo("versions:")
        for x in versions:
            click.echo(f"  {x.version}  {x.applied_at}  {x.applied_by:<12}  sha256 "
                       f"{x.sha256[:16]}…")


def _echo_policy_text(text: str) -> None:
    """The policy file's text, each line escaped (:func:`printable`): a line
    of printable text is written as it is, and a version installed before
    the reader refused a bidi override or a terminal escape in a comment
    shows it escaped, never driving the reader's terminal. A line's CRLF
    ending is kept (a file saved on Windows); the exact text is the
    library's ``Vault.policy_text``."""
    lines = text.split("\n")
    for line in lines[:-1]:
        body, end = (line[:-1], "\r\n") if line.endswith("\r") else (line, "\n")
        click.echo(printable(body) + end, nl=False)
    if lines[-1]:
        click.echo(printable(lines[-1]), nl=False)


def _warn_characters(problems: list[PolicyProblem]) -> None:
    """A version installed before the reader refused the characters it
    holds stays in force: say what the officer is to correct."""
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        warn(f"{first}{more}: a policy may no longer hold this; the officer applies a "
             "corrected version ('vault policy show --text' gives the file, 'vault policy "
             "check' lists every problem)")
