"""``vault classify``: what a file says about itself, under a policy
(docs/POLICY.md §9 and §11).

For each file: the label it would be sealed with when no level is given,
the floor under it, and every Office label and content rule that set the
floor, with where it matched (part and character offset, never the
text). An uninspectable file is reported, not an error. Exit codes: 0,
or 3 when ``--user`` is given and sealing any file would be denied; 1, 2
and 4 as for every command (README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from vault.errors import EXIT_DENIED

from ._common import echo_json, printable, settings
from ._vault_common import label_options

if TYPE_CHECKING:
    from vault.intake import SealClassification
    from vault.policy import Label, Policy


def vault_policy(ctx: click.Context) -> Policy:
    """The policy in force in the vault named by --vault/VAULT_DIR.

    Opened read-only, without an identity: only the signed policy chain is
    read (and verified) by ``Vault``; nothing is decrypted or recorded."""
    from vault import Vault

    from ._vault_common import vault_dir, warn_unkept

    with Vault(vault_dir(ctx), vault_id=settings(ctx).vault_id) as v:
        warn_unkept()
        return v.policy


def _label(pol: Policy, label: Label | None) -> str:
    return "none" if label is None else pol.format_label(label)


def _matches(outcome: SealClassification, rule: str) -> str:
    found = [m for m in outcome.inspection.matches if m.rule == rule]
    shown = ", ".join(f"{m.part}:{m.offset}" for m in found[:5])
    total = outcome.inspection.counts.get(rule, 0)
    more = f" (+{total - len(found[:5])} more)" if total > len(found[:5]) else ""
    return shown + more


def _report(pol: Policy, name: str, outcome: SealClassification, user: str | None) -> list[str]:
    found = outcome.inspection
    if outcome.label is None and not found.inspectable:
        head = f"{name}: give a label (the file could not be inspected)"
    else:
        head = f"{name}: {_label(pol, outcome.label)}" + \
            (" (proposed)" if outcome.proposed else " (given)")
    lines = [head, f"  floor      {_label(pol, outcome.floor)}"]
    status = found.status + (f": {found.reason}" if found.reason else "")
    lines.append(f"  inspected  {found.kind}, {status}")
    for office in found.office_labels:
        mapping = pol.intake.mapping_for(office) if office.enabled else None
        what = f"'{office.name}' {office.id}" if office.name else office.id
        to = f"-> {_label(pol, mapping.label)} ({mapping.rule_id})" if mapping else \
            ("not mapped" if office.enabled else "disabled")
        lines.append(f"  office     {what} [{office.source}] {to}")
    for rid in found.matched_rules:
        lines.append(f"  matched    {rid} at {_matches(outcome, rid)}")
    if user is not None and outcome.decision is not None:
        d = outcome.decision
        lines.append(f"  seal       {d.outcome.upper()} for {user} by {', '.join(d.rule_ids)}")
        lines += [f"    - {r}" for r in d.reasons]
    elif user is not None:
        lines.append("  seal       needs a label given with --level")
    return lines


def _explain(pol: Policy, name: str, outcome: SealClassification, user: str | None) -> list[str]:
    """Every mapping and floor rule of the policy, MATCH or not, then the decision."""
    found = outcome.inspection
    lines = _report(pol, name, outcome, None)
    lines.append(f"  policy     {pol.name} (sha256 {pol.hash})")
    lines += [f"  - {r}" for r in outcome.reasons]
    office = {lab.id for lab in found.office_labels if lab.enabled}
    names = {(lab.name or "").casefold() for lab in found.office_labels if lab.enabled}
    lines.append("office labels mapped by the policy:")
    width = max((len(m.rule_id) for m in pol.intake.office_labels), default=0)
    for m in pol.intake.office_labels:
        hit = m.rule_id in outcome.rule_ids or (m.id in office) or \
            (m.id is None and (m.name or "").casefold() in names)
        lines.append(f"  {'MATCH' if hit else 'no':<5} {m.rule_id:<{width}}  -> "
                     f"{_label(pol, m.label)}")
    if not pol.intake.office_labels:
        lines.append("  (none)")
    lines.append("floors, in policy order:")
    width = max((len(f.id) for f in pol.intake.floors), default=0)
    for f in pol.intake.floors:
        n = found.counts.get(f.id, 0)
        where = f"{n} match{'es' * (n != 1)}: {_matches(outcome, f.id)}" if n else "no match"
        lines.append(f"  {'MATCH' if n else 'no':<5} {f.id:<{width}}  {f.looks_for()}; "
                     f"{where} -> {_label(pol, f.label)}")
    if not pol.intake.floors:
        lines.append("  (none)")
    lines.append(f"uninspectable files: {pol.intake.uninspectable}"
                 + (f" {_label(pol, pol.intake.uninspectable_floor)}"
                    if pol.intake.uninspectable_floor else ""))
    if user is not None and outcome.decision is not None:
        lines += outcome.decision.explain_lines()
    return lines


@click.command("classify")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False),
              help="Classify under this policy file (default: the vault's, --vault/VAULT_DIR).")
@click.option("--user", "-u", help="Also decide whether this user may seal each file.")
@click.option("--level", "-l", help="The label the sealer would give (default: none, so "
              "the proposed one).")
@label_options
@click.option("--declassify-on", metavar="DATE",
              help="The declassify-on date the sealer would give (default: the policy's).")
@click.option("--justification", help="Justification for sealing below the floor.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--explain", is_flag=True, help="Every mapping and floor rule considered.")
@click.pass_context
def classify(ctx: click.Context, files: Sequence[str], policy_file: str | None,
             user: str | None, level: str | None, compartments: Sequence[str],
             caveats: Sequence[str], declassify_on: str | None, justification: str | None,
             as_json: bool, explain: bool) -> None:
    """Show the label each FILE would be sealed with, and why.

    Reads Office sensitivity labels and runs the policy's content floors
    (docs/POLICY.md §11). Nothing is sealed or recorded. Matches are shown
    as part:offset, never as text."""
    from vault._inputs import open_input
    from vault.errors import UsageError
    from vault.intake import classify_for_seal, inspect
    from vault.policy import load_policy

    if policy_file is None and not settings(ctx).vault_dir:
        raise UsageError("no policy given", hint="pass --policy FILE, or --vault DIR before "
                         "the command (or set VAULT_DIR) to use the vault's policy")
    pol = load_policy(policy_file, template=True) if policy_file else vault_policy(ctx)
    if (compartments or caveats or justification or declassify_on) and level is None:
        raise UsageError("--compartment, --caveat, --declassify-on and --justification "
                         "need --level")
    # Dated now, as a seal now would date it: under a floor, a label due
    # sooner than the policy's default declassify-on is below it (§6.6).
    given = None if level is None else pol.make_label(
        level=level, compartments=compartments, caveats=caveats, declassify_on=declassify_on,
        created=datetime.now(UTC))
    rules = pol.intake.content_rules()
    out: list[dict[str, Any]] = []
    denied = False
    for name in files:
        # Opened as seal opens files: a FIFO or link another user planted is
        # refused, never waited on.
        try:
            stream = open_input(name, foreign_hint="classify a regular file, or copy the "
                                "data into one of your own")
        except OSError as e:
            raise UsageError(f"cannot read {name}: {e.strerror}") from None
        with stream:
            found = inspect(stream, filename=name, rules=rules)
        outcome = classify_for_seal(pol, found, given, actor=user or "",
                                    justification=justification)
        denied = denied or (user is not None and not outcome.allowed)
        if as_json:
            data = outcome.to_dict()
            if user is None:
                data.pop("decision")
                data.pop("allowed")
            out.append({"file": name, **data})
        else:
            lines = (_explain if explain else _report)(pol, click.format_filename(name),
                                                       outcome, user)
            # The file name, the user and the Office label names come from
            # whoever made the file: each line escaped whole, never joined
            # and split again, so that a line break in one stays in its line.
            for line in lines:
                click.echo(printable(line))
    if as_json:
        echo_json({"policy": {"name": pol.name, "hash": pol.hash}, "files": out})
    if denied:
        ctx.exit(EXIT_DENIED)
