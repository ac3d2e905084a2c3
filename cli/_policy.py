"""``vault policy``: check, explain and test classification policies.

Problems go to stderr as ``file:line:column: message`` with a ``hint:`` line,
data to stdout; ``--json`` puts one JSON document on stdout instead.
``explain`` exits 0 when the request would be allowed and 3 when denied.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import click

from vault.errors import EXIT_DENIED, BadDataError, DeniedError, PolicyLoadError, UsageError
from vault.policy import ACTIONS, Decision, Policy, load_policy, run_cases
from vault.policy._time import TIME_HINT, parse_time

from ._common import bounded, echo_json, printable, report_error
from ._complete import complete_caveats, complete_compartments, complete_doc_ids, complete_levels
from .main import LazyGroup, with_global_options

# Subcommands of ``vault policy`` that live in other modules, imported only
# when invoked: name -> (module, attribute, short help). Add entries here.
_ELSEWHERE: dict[str, tuple[str, str, str]] = {
    "apply": ("vault_cli._vault_policy", "apply",
              "Install a new policy version in a vault (officer only)."),
    "show": ("vault_cli._vault_policy", "show",
             "Show the policy in force in a vault: version, by whom, when."),
    "fill": ("vault_cli._policy_fill", "fill",
             "Fill a policy template's placeholder keys from people's FILE.pub."),
}


class _PolicyGroup(LazyGroup):
    """A lazy group that treats a not-yet-written subcommand as unknown."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr, _ = self.lazy[cmd_name]
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as e:
                if e.name != module:
                    raise
                return None
            cmd = getattr(mod, attr, None)
            if not isinstance(cmd, click.Command):
                return None
            return with_global_options(cmd, f"{ctx.command_path} {cmd_name}")
        found = click.Group.get_command(self, ctx, cmd_name)
        return None if found is None else with_global_options(
            found, f"{ctx.command_path} {cmd_name}")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in self.lazy.items()]
        for name in click.Group.list_commands(self, ctx):
            cmd = click.Group.get_command(self, ctx, name)
            if cmd is not None and name not in self.lazy:
                rows.append((name, cmd.get_short_help_str()))
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=_PolicyGroup, lazy=_ELSEWHERE)
def policy() -> None:
    """Check, test, explain, show and apply classification policies (docs/POLICY.md)."""


def _print_problems(err: PolicyLoadError) -> None:
    for p in err.problems:  # they quote the file's own text: each line bounded
        click.echo(bounded(printable(str(p))), err=True)
        if p.hint:
            click.echo(f"    hint: {bounded(printable(p.hint))}", err=True)


@policy.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def check(files: Sequence[str], as_json: bool) -> None:
    """Check policy files and list every problem.

    Each problem is printed as FILE:LINE:COLUMN: message, with a hint.
    Exits 1 when any file has a problem."""
    results: list[dict[str, Any]] = []
    failed = problems = 0
    for name in files:
        try:
            pol = load_policy(name)
        except PolicyLoadError as e:
            failed += 1
            problems += len(e.problems)
            if not as_json:
                _print_problems(e)
            results.append({"file": name, "ok": False,
                            "problems": [p.to_dict() for p in e.problems]})
            continue
        results.append({"file": name, "ok": True, "name": pol.name, "hash": pol.hash,
                        "levels": len(pol.levels), "users": len(pol.users),
                        "rules": len(pol.rules)})
        if not as_json:
            # The file's name and the policy's: escaped, each as one line.
            click.echo(printable(f"{name}: ok (policy {pol.name}: {len(pol.levels)} levels, "
                                 f"{len(pol.users)} users, {len(pol.rules)} rules; sha256 "
                                 f"{pol.hash})"))
    if as_json:
        echo_json({"ok": failed == 0, "files": results})
    if failed:
        raise BadDataError(f"{problems} problem{'s' * (problems != 1)} in {failed} of "
                           f"{len(files)} file{'s' * (len(files) != 1)}",
                           hint="fix them and check again; docs/POLICY.md describes the schema")


def _time(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as e:
        raise UsageError(f"{option}: {e}", hint=TIME_HINT) from None


def _new_label(pol: Policy, old: Any, level: str | None, compartments: Sequence[str],
               caveats: Sequence[str], action: str) -> Any:
    if action != "reclassify":
        if level or compartments or caveats:
            raise UsageError("--new-level, --new-compartment and --new-caveat are for reclassify")
        return None
    if level is None:
        raise UsageError("reclassify needs --new-level",
                         hint="--new-compartment and --new-caveat default to the current ones")
    whole = "/" in level  # a whole label: its sets replace the current ones
    return pol.make_label(level=level,
                          compartments=compartments or (() if whole else old.compartments),
                          caveats=caveats or (() if whole else old.caveats), created=old.created,
                          classified_by=old.classified_by, reason=old.reason,
                          derived_from=old.derived_from, declassify_on=old.declassify_on,
                          embargo_until=old.embargo_until)


@policy.command("explain")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--doc", "doc_id", metavar="ID", shell_complete=complete_doc_ids,
              help="Explain for this document of the vault (its label; needs --identity).")
@click.option("--user", "-u", "user",
              help="The actor (a user of the policy; default: you, by your --identity).")
@click.option("--action", "-a", required=True, type=click.Choice(ACTIONS))
@click.option("--level", "-l", shell_complete=complete_levels,
              help="Document level, or a whole label (LEVEL//C/C//X); default: the policy's "
              "default label.")
@click.option("--compartment", "-c", "compartments", multiple=True,
              shell_complete=complete_compartments, help="Repeatable.")
@click.option("--caveat", "caveats", multiple=True, shell_complete=complete_caveats,
              help="Repeatable.")
@click.option("--at", "at", help="Decide at this time (default: now), e.g. 2025-06-01T09:00:00Z.")
@click.option("--justification", help="Justification text (reclassify, declassify, ...).")
@click.option("--approver", "approvers", multiple=True, metavar="USER",
              help="A user whose verified approval is assumed (two-person rules); repeatable.")
@click.option("--new-level", help="reclassify: the proposed level (or whole label).")
@click.option("--new-compartment", "new_compartments", multiple=True,
              help="reclassify: proposed compartments (default: unchanged).")
@click.option("--new-caveat", "new_caveats", multiple=True,
              help="reclassify: proposed caveats (default: unchanged).")
@click.option("--embargo-until", help="The document's embargo end.")
@click.option("--declassify-on", help="Date, duration (P10Y), event:… or exempt:CODE.")
@click.option("--created", help="When the document was classified.")
@click.option("--classified-by", help="Who classified the document.")
@click.option("--reason", help="Classification reason.")
@click.option("--json", "as_json", is_flag=True, help="The decision and its trace as JSON.")
@click.pass_context
def explain(ctx: click.Context, file: str | None, doc_id: str | None, user: str | None,
            action: str, level: str | None, compartments: Sequence[str],
            caveats: Sequence[str], at: str | None, justification: str | None,
            approvers: Sequence[str], new_level: str | None, new_compartments: Sequence[str],
            new_caveats: Sequence[str], embargo_until: str | None, declassify_on: str | None,
            created: str | None, classified_by: str | None, reason: str | None,
            as_json: bool) -> None:
    """Explain why a request is allowed or denied.

    Against the policy FILE, or without FILE the policy in force in the
    vault (--vault); --doc takes the label of one of its documents (you
    must be allowed to list it). Shows the decision, its reasons, every
    rule considered and every built-in check, each with why it did or did
    not apply. Exits 0 when the request would be allowed, 3 when denied."""
    pol, user, doc_label = _explain_inputs(ctx, file, doc_id, user)
    if doc_label is not None and (level or compartments or caveats or embargo_until
                                  or declassify_on or created or classified_by or reason):
        raise UsageError("--doc gives the label; drop --level, --compartment and the other "
                         "label options")
    when = _time(at, "--at")
    decision: Decision
    try:
        label = doc_label
        if label is None and (action != "administer" or level is not None):
            label = pol.make_label(level=level, compartments=compartments, caveats=caveats,
                                   created=created, classified_by=classified_by, reason=reason,
                                   declassify_on=declassify_on, embargo_until=embargo_until,
                                   actor=user)
        inputs: dict[str, Any] = {k: v for k, v in (("justification", justification),
                                                    ("approvers", list(approvers))) if v}
        new = _new_label(pol, label, new_level, new_compartments, new_caveats, action)
        if new is not None:
            inputs["new_label"] = new
        decision = pol.decide(user, action, label, at=when, inputs=inputs)
    except DeniedError as e:  # mandatory labelling, before any rule
        if action != "seal":
            raise UsageError(f"give --level: policy {pol.name} makes labelling mandatory, so "
                             "documents have no default label") from None
        assert e.decision is not None  # make_label's refusals carry one
        decision = e.decision
    if as_json:
        echo_json({**decision.to_dict(), "trace": decision.trace()})
    else:
        # Names, markings and descriptions escaped in their lines, which are
        # never joined and split again (a line break in one stays in it).
        for line in decision.explain_lines():
            click.echo(printable(line))
    if not decision.allowed:
        ctx.exit(EXIT_DENIED)


def _explain_inputs(ctx: click.Context, file: str | None, doc_id: str | None,
                    user: str | None) -> tuple[Policy, str, Any]:
    """The policy, the actor and (with --doc) the document's label."""
    from ._common import settings

    if file is not None and doc_id is not None:
        raise UsageError("--doc explains under the vault's policy: drop FILE")
    if file is not None:
        if user is None:
            raise UsageError("explaining against a policy file needs --user")
        return load_policy(file, template=True), user, None
    if not settings(ctx).vault_dir:
        raise UsageError("no policy given", hint="give a policy FILE, or --vault DIR (or set "
                         "VAULT_DIR) to explain under the policy in force there")
    from ._vault_common import open_vault

    v = open_vault(ctx, need_identity=doc_id is not None or user is None)
    if user is None:
        user = v.actor
        if user is None:
            raise UsageError("your keys belong to no user of the policy in force",
                             hint="give --user NAME, or ask the officer to add you "
                                  "('vault identity show')")
    label = v.info(doc_id).label if doc_id is not None else None
    return v.policy, user, label


@policy.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def test(files: Sequence[str], as_json: bool) -> None:
    """Run policy test-case files.

    Each case file names its policy relative to itself. Exits 1 when a
    case fails."""
    reports: list[dict[str, Any]] = []
    failed = total = broken = 0
    for name in files:
        try:
            report = run_cases(name)
        except PolicyLoadError as e:
            broken += 1
            if not as_json:
                _print_problems(e)
            reports.append({"file": name, "passed": False,
                            "problems": [p.to_dict() for p in e.problems]})
            continue
        reports.append(report.to_dict())
        total += len(report.results)
        failed += len(report.failures)
        if not as_json:
            # Case names and messages quote the files' own text: escaped.
            for r in report.results:
                where = f"{name}:{r.line}" if r.line else name
                click.echo(printable(f"PASS  {r.name}" if r.passed else
                                     f"FAIL  {r.name} ({where}): {r.message}"))
            click.echo(printable(f"{name}: {len(report.results) - len(report.failures)} "
                                 f"passed, {len(report.failures)} failed (policy "
                                 f"{report.policy.name})"))
    if as_json:
        echo_json({"passed": not failed and not broken, "files": reports})
    if broken:
        raise BadDataError(f"{broken} of {len(files)} case file{'s' * (len(files) != 1)} "
                           "could not be loaded", hint="fix the problems listed above")
    if failed:
        report_error(f"{failed} of {total} case{'s' * (total != 1)} failed")
        raise click.exceptions.Exit(1)
