"""Built-in checks that no rule can switch off (docs/POLICY.md §6.3).

They run after an allow rule matched: dominance for reading (no read up)
and for classifying (no seal above), lowering only under a rule that says
``may_lower`` (no write down), required inputs (justification, a second
approver), the policy's label requirements and declassify-on limits.
Failing checks are returned as (id, reason); nothing is formatted on the
fast path unless a check fails or a trace is being recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vault.policy._time import format_time
from vault.policy.model import Label, User

if TYPE_CHECKING:
    from vault.policy._decide import Engine, Trace, _Compiled

UNKNOWN_ACTOR = "builtin:unknown-actor"
UNKNOWN_LABEL = "builtin:unknown-label"
DEFAULT_DENY = "builtin:default-deny"
EMBARGO = "builtin:embargo"
NO_READ_UP = "builtin:no-read-up"
NO_SEAL_ABOVE = "builtin:no-seal-above"
NO_WRITE_DOWN = "builtin:no-write-down"
JUSTIFICATION = "builtin:justification"
APPROVER = "builtin:approver"
LABEL_FIELDS = "builtin:label-requirements"
DECLASSIFY_ON = "builtin:declassify-on"
MANDATORY_LABELLING = "builtin:mandatory-labelling"
FLOOR = "builtin:floor"

BUILTIN_IDS = (UNKNOWN_ACTOR, UNKNOWN_LABEL, DEFAULT_DENY, EMBARGO, NO_READ_UP, NO_SEAL_ABOVE,
               NO_WRITE_DOWN, JUSTIFICATION, APPROVER, LABEL_FIELDS, DECLASSIFY_ON,
               MANDATORY_LABELLING, FLOOR)

READS = frozenset(("open", "export", "reclassify", "declassify", "shred"))
_CREATES = frozenset(("seal", "reclassify"))

Failures = list[tuple[str, str]]


def check_entry(check_id: str, passed: bool, why: str) -> dict[str, Any]:
    return {"kind": "check", "id": check_id, "passed": passed, "why": why}


def fmt(label: Label) -> str:
    """A label (or a clearance as one) in reasons: the banner form every
    label is written in (vault.policy._banner), by names."""
    return "//".join([label.level, *("/".join(sorted(names)) for names in
                                     (label.compartments, label.caveats) if names)])


def _dominance(engine: Engine, user: User, label: Label) -> tuple[bool, str]:
    ok = engine.dominates(user.name, label)
    clearance = Label(user.clearance.level, user.clearance.compartments)
    verb = "dominates" if ok else "does not dominate"
    why = f"{user.name}'s clearance {fmt(clearance)} {verb} {fmt(label)}"
    if not ok and engine.rank[label.level] > engine.rank[user.clearance.level]:
        why += f" (level {label.level} is above {user.clearance.level})"
    elif not ok:
        missing = ", ".join(sorted(label.compartments - user.clearance.compartments))
        why += f" (not cleared for {missing})"
    return ok, why


def builtin_checks(
    engine: Engine, user: User, action: str, label: Label | None, new: Label | None,
    allow: list[_Compiled], at: datetime, inputs: Mapping[str, Any], trace: Trace | None,
    below: bool = False,
) -> tuple[Failures, set[str]]:
    failures: Failures = []
    tracing = trace is not None

    def record(check_id: str, ok: bool, why: str, prefix: str = "") -> None:
        if not ok:
            failures.append((check_id, prefix + why))
        if trace is not None:
            trace.append(check_entry(check_id, ok, why))

    if label is not None and action in READS and (
            tracing or not engine.dominates(user.name, label)):
        ok, why = _dominance(engine, user, label)
        record(NO_READ_UP, ok, why, "no read up: ")
    created = label if action == "seal" else new if action == "reclassify" else None
    if created is not None:
        if tracing or not engine.dominates(user.name, created):
            ok, why = _dominance(engine, user, created)
            record(NO_SEAL_ABOVE, ok, why, "nobody classifies above their own clearance: ")
        missing = _missing_fields(engine, created)
        if tracing or missing:
            record(LABEL_FIELDS, not missing,
                   f"label lacks {missing}" if missing else "label carries the required fields")
        why_bad = _declassify_problem(engine, created, at)
        if tracing or why_bad:
            record(DECLASSIFY_ON, why_bad is None, why_bad or "declassify-on is acceptable")

    floor = inputs.get("floor") if action == "seal" else None
    if floor is not None and label is not None and (tracing or below):
        # docs/POLICY.md §6.6. The overriding rule's own require: (a
        # justification, later more) is enforced below like any other.
        by = [c.id for c in allow if c.below_floor]
        record(FLOOR, not below or bool(by),
               f"{fmt(label)} is below the floor {fmt(floor)} that intake "
               f"found; allowed by rule {', '.join(by)}" if below and by else
               f"{fmt(label)} is below the floor {fmt(floor)} that intake found;"
               " sealing below it needs a rule with below_floor: true" if below else
               f"{fmt(label)} is at or above the floor {fmt(floor)}")
    required = set().union(*(c.require for c in allow))
    lowering = action == "declassify" or (
        action == "reclassify" and label is not None and new is not None
        and engine.lowering(label, new))
    if lowering:
        required.add("justification")
    if action == "reclassify" and (lowering or tracing):
        ok = not lowering or any(c.may_lower for c in allow)
        record(NO_WRITE_DOWN, ok,
               (f"lowering {fmt(label)} to {fmt(new)} is allowed by "  # type: ignore[arg-type]
                f"{', '.join(c.id for c in allow if c.may_lower)}") if ok and lowering
               else "the new label is not lower" if ok
               else f"lowering a label needs a rule with may_lower: true for {user.name}")
    if "justification" in required:
        text = inputs.get("justification")
        if text is not None and not isinstance(text, str):
            raise TypeError("inputs['justification'] must be text")
        ok = bool(text and text.strip())
        if tracing or not ok:
            by = _requirers(allow, "justification") or ["lowering a label"]
            record(JUSTIFICATION, ok, "a justification is given" if ok else
                   f"a justification is required ({'; '.join(by)})")
    if "approver" in required:
        problem = _approver_problem(engine, user, label, new, allow, inputs.get("approver"))
        if tracing or problem:
            record(APPROVER, problem is None, problem or f"approved by {inputs['approver']} "
                   f"({'; '.join(_requirers(allow, 'approver'))})")
    return failures, required


def _requirers(allow: list[_Compiled], what: str) -> list[str]:
    return [f"rule {c.id}" for c in allow if what in c.require]


def _missing_fields(engine: Engine, label: Label) -> str:
    needs = engine.policy.label_requires
    missing = []
    if "classified_by" in needs and not label.classified_by:
        missing.append("classified_by")
    if "reason" in needs and not (label.reason or label.derived_from):
        missing.append("reason (or derived_from)")
    return " and ".join(missing)


def _declassify_problem(engine: Engine, label: Label, at: datetime) -> str | None:
    parsed = label._declassify
    if parsed is None:
        return None
    rules = engine.policy.declassification
    if parsed.kind == "exempt":
        if parsed.code not in rules.exemptions:
            allowed = ", ".join(sorted(rules.exemptions)) or "none"
            return f"exemption '{parsed.code}' is not one this policy allows (allowed: {allowed})"
        return None
    if rules.limit is None or parsed.kind == "event":
        return None
    base = label.created or at
    due = parsed.resolve(base)
    latest = rules.limit_duration().after(base)  # type: ignore[union-attr]
    if due is not None and due > latest:
        return (f"declassify-on {label.declassify_on} is later than {rules.limit} after "
                f"creation ({format_time(latest)}); give an exemption")
    return None


def _approver_problem(engine: Engine, user: User, label: Label | None, new: Label | None,
                      allow: list[_Compiled], name: object) -> str | None:
    """Why the named approver cannot approve, or None (docs/POLICY.md §4.5)."""
    if name is None or name == "":
        by = "; ".join(_requirers(allow, "approver"))
        return f"a second person's approval is required ({by}): name an approver"
    if not isinstance(name, str):
        raise TypeError("inputs['approver'] must be a user name (str)")
    approver = engine.policy.users.get(name)
    if approver is None:
        return f"approver '{name}' is not a user of this policy"
    if approver.name == user.name:
        by = "; ".join(_requirers(allow, "approver"))
        return f"{name} cannot approve their own request ({by})"
    for c in allow:
        if "approver" in c.require and c.approvers and not c.approvers.matches(approver):
            return f"approver {name} is not among {c.approvers.describe()} (rule {c.id})"
    for lab in (label, new):
        if lab is not None and not engine.dominates(name, lab):
            return f"approver {name} is not cleared for {fmt(lab)}"
    return None
