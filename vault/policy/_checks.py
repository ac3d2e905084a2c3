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

from vault._text import says_something
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


def due_sooner(old: Label, new: Label) -> bool:
    """docs/POLICY.md §6.4: is ``new`` due for declassification before ``old``?

    A due declassify-on is what ``declassify --due`` and rules with ``when:
    {declassify_on: due}`` release, so bringing it forward lowers the label
    as surely as dropping a compartment does. A label that is never due (no
    declassify-on, an event, a bare exemption, a duration without its
    creation time) is due after every label that is."""
    due = new.declassify_at()
    if due is None:
        return False
    before = old.declassify_at()
    return before is None or due < before


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
        shown = fmt(label)
        if below and not engine.below_floor(action, label.replace(declassify_on=None),
                                            {"floor": floor}):
            shown += f" (its declassify-on {label.declassify_on} releases it sooner)"
        record(FLOOR, not below or bool(by),
               f"{shown} is below the floor {fmt(floor)} that intake "
               f"found; allowed by rule {', '.join(by)}" if below and by else
               f"{shown} is below the floor {fmt(floor)} that intake found;"
               " sealing below it needs a rule with below_floor: true" if below else
               f"{shown} is at or above the floor {fmt(floor)}")
    required = set().union(*(c.require for c in allow))
    lowering = action == "declassify" or (
        action == "reclassify" and label is not None and new is not None
        and engine.lowering(label, new))
    if lowering:
        required.add("justification")
    if action == "reclassify" and (lowering or tracing):
        ok = not lowering or any(c.may_lower for c in allow)
        sooner = _sooner(label, new) if lowering else ""  # type: ignore[arg-type]
        record(NO_WRITE_DOWN, ok,
               (f"lowering {fmt(label)} to {fmt(new)}{sooner} is allowed by "  # type: ignore[arg-type]
                f"{', '.join(c.id for c in allow if c.may_lower)}") if ok and lowering
               else "the new label is not lower" if ok
               else f"lowering a label{sooner} needs a rule with may_lower: true for {user.name}")
    if "justification" in required:
        text = inputs.get("justification")
        if text is not None and not isinstance(text, str):
            raise TypeError("inputs['justification'] must be text")
        ok = says_something(text)  # spaces and joiners alone are shown blank
        if tracing or not ok:
            by = _requirers(allow, "justification") or ["lowering a label"]
            record(JUSTIFICATION, ok, "a justification is given" if ok else
                   f"a justification is required ({'; '.join(by)})")
    if "approver" in required:
        ok, why = _approvals(engine, user, label, new, allow, inputs)
        if tracing or not ok:
            record(APPROVER, ok, why)
    return failures, required


def _sooner(old: Label, new: Label) -> str:
    """Says why a label that reads the same is lower: its new declassify-on
    releases it earlier (the banner shows no dates)."""
    if not due_sooner(old, new):
        return ""
    return (f" (declassify-on {new.declassify_on} brings declassification forward from "
            f"{old.declassify_on or 'never'})")


def _requirers(allow: list[_Compiled], what: str) -> list[str]:
    return [f"rule {c.id}" for c in allow if what in c.require]


def _missing_fields(engine: Engine, label: Label) -> str:
    needs = engine.policy.label_requires
    missing = []
    if "classified_by" in needs and not label.classified_by:
        missing.append("classified_by")
    if "reason" in needs and not (says_something(label.reason)
                                  or says_something(label.derived_from)):
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


def _approvals(engine: Engine, user: User, label: Label | None, new: Label | None,
               allow: list[_Compiled], inputs: Mapping[str, Any]) -> tuple[bool, str]:
    """docs/POLICY.md §4.5: every allow rule that requires approval counts
    at least its ``approvals`` distinct acceptable names among
    ``inputs['approvers']`` -- names whose signed approvals the caller has
    already verified (vault/_trust/approvals.py), never names typed in."""
    if "approver" in inputs:
        raise TypeError("inputs['approver'] is gone: pass inputs['approvers'], the names of "
                        "verified approvals")
    given = inputs.get("approvers") or ()
    if isinstance(given, str) or not all(isinstance(n, str) for n in given):
        raise TypeError("inputs['approvers'] must be a list of user names (str)")
    names = list(dict.fromkeys(given))
    passed: list[str] = []
    failed: list[str] = []
    skipped: dict[str, str] = {}
    for c in allow:
        if "approver" not in c.require:
            continue
        counted = []
        for name in names:
            why = not_counted(engine, user, label, new, c, name)
            if why is None:
                counted.append(name)
            else:
                skipped.setdefault(name, why)
        if len(counted) >= c.approvals:
            passed.append(f"approved by {', '.join(counted)} (rule {c.id}: {len(counted)} of "
                          f"{c.approvals})")
        else:
            need = ("a second person's approval is required" if c.approvals == 1 else
                    f"{c.approvals} approvals by other people are required")
            who = f", by {c.approvers.describe()}" if c.approvers else ""
            got = f"; {len(counted)} counted ({', '.join(counted)})" if counted else ""
            failed.append(f"{need} (rule {c.id}{who}){got}")
    extra = "; ".join(f"{n} does not count: {w}" for n, w in skipped.items())
    if failed:
        return False, "; ".join(failed) + (f"; {extra}" if extra else "")
    return True, "; ".join(passed) + (f"; {extra}" if extra else "")


def not_counted(engine: Engine, user: User, label: Label | None, new: Label | None,
                c: _Compiled, name: str) -> str | None:
    """Why the approval of ``name`` does not count for rule ``c``, or None."""
    approver = engine.policy.users.get(name)
    if approver is None:
        return "not a user of this policy"
    if approver.name == user.name:
        return "nobody approves their own request"
    if c.approvers and not c.approvers.matches(approver):
        return f"not among {c.approvers.describe()} (rule {c.id})"
    for lab in (label, new):
        if lab is not None and not engine.dominates(name, lab):
            return f"not cleared for {fmt(lab)}"
    return None
