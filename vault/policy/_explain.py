"""Explain rendering (docs/POLICY.md §7): the outcome, its reasons, then every
rule of the policy and every built-in check, each with why it did or did
not apply."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from vault._text import printable_lines
from vault.policy._time import format_time

if TYPE_CHECKING:
    from vault.policy._decide import Decision
    from vault.policy.model import Label, Rule, User

_MARK = {"matched": "MATCH", "held": "HELD", "not-matched": "no", "not-applicable": "-"}


def render(decision: Decision) -> list[str]:
    """The explanation's lines, each escaped whole (vault/_text.py): names,
    markings and descriptions come from the policy, the actor from the
    caller, and a line break in one stays in its line."""
    policy = decision.policy
    user = policy.users.get(decision.actor)
    label = decision.label
    lines = [
        f"{decision.outcome.upper()}: {decision.actor} {decision.action}"
        + (f" {policy.format_label(label)}" if label is not None else ""),
        f"  policy    {policy.name} (sha256 {policy.hash})",
        f"  at        {format_time(decision.at)}",
    ]
    if user is not None:
        c = user.clearance
        from vault.policy.model import Label

        clearance = policy.format_label(Label(c.level, c.compartments))
        lines.append(f"  actor     {user.name}: clearance {clearance}"
                     + _membership(sorted(user.groups), "groups")
                     + _membership(sorted(user.roles), "roles"))
    if label is not None:
        lines.append(f"  label     {_label_line(decision)}")
    if decision.inputs:
        shown = [f"{k}={policy.format_label(v) if k in ('new_label', 'floor') else repr(v)}"
                 for k, v in decision.inputs.items()]
        lines.append(f"  inputs    {', '.join(shown)}")
    lines.append(f"  decided by {', '.join(decision.rule_ids)}")
    lines += [f"  - {r}" for r in decision.reasons]
    if decision.obligations:
        lines.append(f"  obligations: {', '.join(decision.obligations)}")
    trace = decision.trace()
    rules = [t for t in trace if t["kind"] == "rule" and t["status"] != "not-applicable"]
    others = [t["id"] for t in trace if t["kind"] == "rule" and t["status"] == "not-applicable"]
    lines.append(f"rules for {decision.action}, in policy order:")
    width = max((len(t["id"]) for t in rules), default=0)
    for t in rules:
        lines.append(f"  {_MARK[t['status']]:<5} {t['effect']:<5} {t['id']:<{width}}  {t['why']}")
    if not rules:
        lines.append("  (none)")
    if others:
        lines.append("rules for other actions:")
        lines += textwrap.wrap(", ".join(others), 96, initial_indent="  ",
                               subsequent_indent="  ", break_on_hyphens=False)
    checks = [t for t in trace if t["kind"] == "check"]
    lines.append("built-in checks:" if checks else
                 "built-in checks: not reached (the rules decided)")
    width = max((len(t["id"]) for t in checks), default=0)
    for t in checks:
        lines.append(f"  {'pass' if t['passed'] else 'FAIL':<5} {t['id']:<{width}}  {t['why']}")
    return printable_lines(lines)


def match_summary(rule: Rule, user: User, label: Label | None, embargoed: bool) -> str:
    """Why a rule matched: which actor clause and which label conditions held."""
    who = rule.who
    if who.anyone:
        parts = ["anyone"]
    elif user.name in who.users:
        parts = [f"{user.name} is named"]
    elif groups := sorted(who.groups & user.groups):
        parts = [f"{user.name} is in group {', '.join(groups)}"]
    else:
        parts = [f"{user.name} has role {', '.join(sorted(who.roles & user.roles))}"]
    cond = rule.label
    if cond is not None and label is not None:
        if cond.min and cond.max:
            parts.append(f"level {label.level} is between {cond.min} and {cond.max}")
        elif cond.min or cond.max:
            bound = f"at least {cond.min}" if cond.min else f"at most {cond.max}"
            parts.append(f"level {label.level} is {bound}")
        if cond.compartments is not None:
            parts.append("compartments fit")
        if cond.caveats is not None:
            parts.append("caveats fit")
    if rule.new_label is not None:
        parts.append("new label fits")
    if rule.below_floor is not None:
        parts.append("the label is below the floor" if rule.below_floor
                     else "the label is not below the floor")
    if rule.when is not None:
        parts.append("time conditions hold" + (" (embargo active)" if embargoed else ""))
    return "; ".join(parts)


def _membership(names: list[str], what: str) -> str:
    return f"; {what} {', '.join(names)}" if names else ""


def _label_line(decision: Decision) -> str:
    label = decision.label
    assert label is not None
    parts = [f"level {label.level}"]
    if label.compartments:
        parts.append(f"compartments {', '.join(sorted(label.compartments))}")
    if label.caveats:
        parts.append(f"caveats {', '.join(sorted(label.caveats))}")
    if label.embargo_until is not None:
        parts.append(f"embargo until {format_time(label.embargo_until)}")
    if label.declassify_on is not None:
        parts.append(f"declassify on {label.declassify_on}")
    return "; ".join(parts)
