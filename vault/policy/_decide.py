"""The compiled decision engine (docs/POLICY.md §6).

A policy is compiled once: for every (user, action) the rules whose actor
condition and action list match are precomputed, and label conditions are
turned into level ranks. A decision then only walks those candidate rules
and the built-in checks. One evaluator serves both fast decisions and the
explain trace (``trace`` not None), so explanations cannot drift from
decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vault.policy._checks import (
    DEFAULT_DENY,
    EMBARGO,
    MANDATORY_LABELLING,
    UNKNOWN_ACTOR,
    UNKNOWN_LABEL,
    builtin_checks,
    check_entry,
    due_sooner,
    fmt,
)
from vault.policy._explain import match_summary
from vault.policy._time import as_time, format_time
from vault.policy.model import ACTIONS, Label, LabelCondition, Rule, SetCondition, User

if TYPE_CHECKING:
    from vault.policy.model import Policy

__all__ = ["Decision", "Engine"]

_EMBARGOED = frozenset(("open",))
_NEW_LABEL = frozenset(("reclassify", "declassify"))
_BIG = 1 << 30

Trace = list[dict[str, Any]]
Outcome = tuple[bool, list[str], list[str], list[str]]


class Decision:
    """The outcome of :meth:`Policy.decide`. ``rule_ids`` always holds at
    least one id: the rules (or ``builtin:`` checks) that decided."""

    __slots__ = ("action", "actor", "allowed", "at", "inputs", "label", "obligations",
                 "policy", "reasons", "rule_ids")

    def __init__(self, policy: Policy, actor: str, action: str, label: Label | None,
                 at: datetime, inputs: Mapping[str, Any], allowed: bool,
                 rule_ids: list[str], reasons: list[str], obligations: list[str]) -> None:
        self.policy = policy
        self.actor = actor
        self.action = action
        self.label = label
        self.at = at
        self.inputs = inputs
        self.allowed = allowed
        self.rule_ids = rule_ids
        self.reasons = reasons
        self.obligations = obligations

    @property
    def outcome(self) -> str:
        return "allowed" if self.allowed else "denied"

    def trace(self) -> Trace:
        """Every rule and built-in check considered, and why (docs/POLICY.md §7)."""
        if self.rule_ids == [MANDATORY_LABELLING]:  # decided before any rule (make_label)
            return [check_entry(MANDATORY_LABELLING, False, self.reasons[0])]
        trace: Trace = []
        self.policy._engine.evaluate(self.actor, self.action, self.label, self.at,
                                     self.inputs, trace)
        return trace

    def explain_lines(self) -> list[str]:
        """The explanation (docs/POLICY.md §7), one string a line: each value
        it quotes (a name, a marking, a rule's description) is escaped in its
        line, so that a line break in one never starts a line of its own."""
        from vault.policy._explain import render

        return render(self)

    def explain(self) -> str:
        """:meth:`explain_lines` as one text: its every line break is one of
        the explanation's own."""
        return "\n".join(self.explain_lines())

    def to_dict(self) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for k, v in self.inputs.items():
            inputs[k] = v.to_dict() if isinstance(v, Label) else v
        return {
            "outcome": self.outcome, "allowed": self.allowed, "actor": self.actor,
            "action": self.action, "label": self.label and self.label.to_dict(),
            "at": format_time(self.at), "inputs": inputs, "rule_ids": list(self.rule_ids),
            "reasons": list(self.reasons), "obligations": list(self.obligations),
            "policy": self.policy.hash,
        }

    def __repr__(self) -> str:
        return f"Decision({self.outcome}, rule_ids={self.rule_ids!r})"


class _Compiled:
    """A rule with level names turned into ranks."""

    __slots__ = (
        "allow",
        "approvals",
        "approvers",
        "below_floor",
        "cav",
        "comp",
        "declass",
        "embargo",
        "hi",
        "id",
        "lo",
        "may_lower",
        "ncav",
        "ncomp",
        "nhi",
        "nlo",
        "require",
        "rule",
        "start",
        "until",
    )

    def __init__(self, rule: Rule, rank: Mapping[str, int]) -> None:
        self.rule = rule
        self.id = rule.id
        self.allow = rule.effect == "allow"
        lab, new = rule.label, rule.new_label
        self.lo = rank[lab.min] if lab and lab.min else -1
        self.hi = rank[lab.max] if lab and lab.max else _BIG
        self.comp = lab.compartments if lab else None
        self.cav = lab.caveats if lab else None
        self.nlo = rank[new.min] if new and new.min else -1
        self.nhi = rank[new.max] if new and new.max else _BIG
        self.ncomp = new.compartments if new else None
        self.ncav = new.caveats if new else None
        w = rule.when
        self.embargo = w.embargo if w else None
        self.declass = w.declassify_on if w else None
        self.start = w.start if w else None
        self.until = w.until if w else None
        self.require = rule.require
        self.approvers = rule.approvers
        self.approvals = rule.approvals
        self.may_lower = rule.may_lower
        self.below_floor = rule.below_floor


def _set_mismatch(cond: SetCondition, have: frozenset[str], what: str) -> str | None:
    if cond.any and cond.any.isdisjoint(have):
        return f"{what} has none of {', '.join(sorted(cond.any))}"
    if cond.all and not cond.all <= have:
        return f"{what} lacks {', '.join(sorted(cond.all - have))}"
    if cond.none and not cond.none.isdisjoint(have):
        return f"{what} has {', '.join(sorted(cond.none & have))}"
    if cond.empty is not None and cond.empty != (not have):
        return f"{what} {'is not' if cond.empty else 'is'} empty"
    return None


class Engine:
    """A compiled policy: candidate rules per (user, action), level ranks."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.declassified: dict[Label, Label] = {}
        self.rank = {lvl.name: lvl.rank for lvl in policy.levels}
        self.names = [lvl.name for lvl in policy.levels]
        self.compartments = frozenset(policy.compartments)
        self.caveats = frozenset(policy.caveats)
        self.compiled = tuple(_Compiled(r, self.rank) for r in policy.rules)
        self.clearance = {u.name: (self.rank[u.clearance.level], u.clearance.compartments)
                          for u in policy.users.values()}
        self.candidates = {
            (u.name, action): tuple(c for c in self.compiled
                                    if action in c.rule.actions and c.rule.who.matches(u))
            for u in policy.users.values() for action in ACTIONS
        }

    # -- facts -------------------------------------------------------------

    def dominates(self, actor: str, label: Label) -> bool:
        rank, comps = self.clearance[actor]
        lr = self.rank.get(label.level)
        return lr is not None and lr <= rank and label.compartments <= comps

    def _known(self, label: Label) -> bool:
        return (label.level in self.rank and label.compartments <= self.compartments
                and label.caveats <= self.caveats)

    def _unknown(self, label: Label) -> str | None:
        if label.level not in self.rank:
            return f"level '{label.level}'"
        if not label.compartments <= self.compartments:
            return f"compartment {', '.join(sorted(label.compartments - self.compartments))}"
        if not label.caveats <= self.caveats:
            return f"caveat {', '.join(sorted(label.caveats - self.caveats))}"
        return None

    def unknown_labels(self, label: Label | None, new: Label | None) -> str | None:
        """Why a decision on ``label`` (and a change's ``new`` label) is
        refused before any rule: a level, compartment or caveat this policy
        does not know -- rules compare known ranks and names only."""
        for lab, what in ((label, "label"), (new, "new label")):
            bad = lab is not None and not self._known(lab) and self._unknown(lab)
            if bad:
                return f"the {what} names {bad}, unknown to this policy"
        return None

    def lowering(self, old: Label, new: Label) -> bool:
        """docs/POLICY.md §6.4: does ``new`` let more people read, sooner?"""
        return (self.rank[new.level] < self.rank[old.level]
                or not old.compartments <= new.compartments
                or not old.caveats <= new.caveats
                or (old.embargo_until is not None
                    and (new.embargo_until is None or new.embargo_until < old.embargo_until))
                or due_sooner(old, new))

    # -- rules -------------------------------------------------------------

    def _outside(self, what: str, label: Label, lo: int, hi: int,
                 bounds: LabelCondition | None, comp: SetCondition | None,
                 cav: SetCondition | None) -> str | None:
        """Why ``label`` is outside a rule's level range, compartments or
        caveats (``what`` is "" for the current label, "new " for the
        proposed one)."""
        r = self.rank[label.level]
        if r < lo or r > hi:
            assert bounds is not None  # a bound is set, so the rule has its condition
            if r < lo:
                return f"{what}level {label.level} is below {bounds.min}"
            return f"{what}level {label.level} is above {bounds.max}"
        if comp is not None and (why := _set_mismatch(comp, label.compartments,
                                                      what + "compartments")):
            return why
        if cav is not None and (why := _set_mismatch(cav, label.caveats, what + "caveats")):
            return why
        return None

    def below_floor(self, action: str, label: Label | None,
                    inputs: Mapping[str, Any]) -> bool:
        """docs/POLICY.md §6.6: is a label being sealed below the floor that
        intake found (``inputs['floor']``, see vault.intake.classify_for_seal)?
        Below means a lower level, or a compartment or caveat of the floor
        missing -- or, for a floor dated with its seal's ``created`` (see
        vault.intake.dated_floor), a declassify-on due sooner than the
        floor's (§6.4: what ``declassify --due`` releases is lowered)."""
        floor = inputs.get("floor")
        if floor is None or action != "seal" or label is None:
            return False
        if not isinstance(floor, Label):
            raise TypeError("inputs['floor'] must be a vault.policy.Label")
        return (self.rank[label.level] < self.rank[floor.level]
                or not floor.compartments <= label.compartments
                or not floor.caveats <= label.caveats
                # An undated floor is an earlier release's record: judged as then.
                or (floor.created is not None and due_sooner(floor, label)))

    def mismatch(self, c: _Compiled, label: Label | None, new: Label | None,
                 at: datetime, below: bool = False) -> str | None:
        """Why rule ``c`` does not match (its actor and action already do)."""
        if label is not None and (why := self._outside("", label, c.lo, c.hi, c.rule.label,
                                                        c.comp, c.cav)):
            return why
        if (new is not None and (c.nlo >= 0 or c.nhi < _BIG or c.ncomp or c.ncav)
                and (why := self._outside("new ", new, c.nlo, c.nhi, c.rule.new_label,
                                          c.ncomp, c.ncav))):
            return why
        if c.below_floor is not None and c.below_floor != below:
            return "the label is not below the floor" if c.below_floor else \
                "the label is below the floor"
        if c.start is not None and at < c.start:
            return f"rule applies from {format_time(c.start)}"
        if c.until is not None and at >= c.until:
            return f"rule applied until {format_time(c.until)}"
        if (label is not None and c.embargo is not None
                and label.embargoed(at) != (c.embargo == "active")):
            return "no embargo is active" if c.embargo == "active" else "embargo is active"
        if label is not None and c.declass is not None:
            due_at = label.declassify_at()
            due = due_at is not None and due_at <= at
            if due != (c.declass == "due"):
                return "declassify-on is not due" if c.declass == "due" else \
                    "declassify-on is due"
        return None

    # -- the decision --------------------------------------------------------

    def decide(self, actor: str, action: str, label: Label | None, *,
               at: datetime | None = None, inputs: Mapping[str, Any] | None = None) -> Decision:
        if not isinstance(actor, str):
            raise TypeError("actor must be a user name (str)")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        if label is None and action != "administer":
            raise TypeError(f"action {action!r} needs a Label (build one with Policy.make_label)")
        if label is not None and not isinstance(label, Label):
            raise TypeError("label must be a vault.policy.Label")
        if at is None:
            at = datetime.now(UTC)
        elif type(at) is not datetime or at.tzinfo is None:  # aware datetimes compare as is
            at = as_time(at, "at")
        if inputs is None:
            inputs = {}
        elif isinstance(inputs, Mapping):
            inputs = dict(inputs)  # the decision keeps its own copy for explain()
        else:
            raise TypeError("inputs must be a mapping")
        return self.evaluate(actor, action, label, at, inputs, None)

    def evaluate(self, actor: str, action: str, label: Label | None, at: datetime,
                 inputs: Mapping[str, Any], trace: Trace | None) -> Decision:
        allowed, ids, reasons, obligations = self._outcome(actor, action, label, at, inputs,
                                                           trace)
        return Decision(self.policy, actor, action, label, at, inputs, allowed, ids, reasons,
                        obligations)

    def _outcome(self, actor: str, action: str, label: Label | None, at: datetime,
                 inputs: Mapping[str, Any], trace: Trace | None) -> Outcome:
        """docs/POLICY.md §6.2, step by step."""
        user = self.policy.users.get(actor)
        if user is None:
            if trace is not None:
                trace.append(check_entry(UNKNOWN_ACTOR, False, f"'{actor}' is not a user"))
            return False, [UNKNOWN_ACTOR], [f"'{actor}' is not a user of this policy"], []
        new = _new_label(self, action, label, inputs) if action in _NEW_LABEL else None
        if (reason := self.unknown_labels(label, new)) is not None:
            if trace is not None:
                trace.append(check_entry(UNKNOWN_LABEL, False, reason))
            return False, [UNKNOWN_LABEL], [reason], []

        floor = inputs.get("floor")  # docs/POLICY.md §6.6
        if floor is not None and not isinstance(floor, Label):
            raise TypeError("inputs['floor'] must be a vault.policy.Label")
        if floor is not None and not self._known(floor):  # checked like the label itself
            raise ValueError(f"inputs['floor'] names {self._unknown(floor)}, unknown to this "
                             "policy")
        below = self.below_floor(action, label, inputs)
        allow, deny, held = self._match_rules(user, action, label, new, at, trace, below)
        if deny:
            return (False, [c.id for c in deny],
                    [f"denied by rule {c.id}" + _about(c.rule) for c in deny], [])
        if not allow:
            if held:
                until = format_time(label.embargo_until)  # type: ignore[union-attr,arg-type]
                return (False, [EMBARGO, *(c.id for c in held)],
                        [f"under embargo until {until}: no rule lets {actor} {action} it "
                         "before then"], [])
            return (False, [DEFAULT_DENY],
                    [f"no rule allows {actor} to {action} this" +
                     (f" {fmt(label)} document" if label is not None else "")], [])

        failures, required = builtin_checks(self, user, action, label, new, allow, at, inputs,
                                            trace, below)
        obligations = sorted(required)
        if failures:
            return False, [i for i, _ in failures], [r for _, r in failures], obligations
        return (True, [c.id for c in allow],
                [f"allowed by rule {c.id}" + _about(c.rule) for c in allow], obligations)

    def _match_rules(
        self, user: User, action: str, label: Label | None, new: Label | None,
        at: datetime, trace: Trace | None, below: bool = False,
    ) -> tuple[list[_Compiled], list[_Compiled], list[_Compiled]]:
        allow: list[_Compiled] = []
        deny: list[_Compiled] = []
        held: list[_Compiled] = []
        candidates = self.candidates[(user.name, action)]
        embargoed = action in _EMBARGOED and label is not None and label.embargoed(at)
        # The trace walks every rule, in policy order, to say why each one
        # did or did not apply; decisions walk only the precomputed candidates.
        for c in candidates if trace is None else self.compiled:
            if trace is not None and c not in candidates:
                trace.append(_non_candidate(c.rule, user, action))
                continue
            why = self.mismatch(c, label, new, at, below)
            if why is None and c.allow and embargoed and c.embargo != "active":
                held.append(c)
                why = "held back: the document is under embargo and the rule does not say " \
                      "when: {embargo: active}"
            elif why is None:
                (allow if c.allow else deny).append(c)
            if trace is not None:
                matched = why is None
                trace.append(_rule_entry(c.rule, why or match_summary(c.rule, user, label,
                                                                       embargoed), matched))
        return allow, deny, held


def _new_label(engine: Engine, action: str, label: Label | None,
               inputs: Mapping[str, Any]) -> Label | None:
    if label is None:
        return None
    new = inputs.get("new_label")
    if new is None:
        if action == "declassify":
            # Labels are immutable and a batch asks about the same few: each
            # declassified form is built once (a bounded memo).
            memo = engine.declassified
            out = memo.get(label)
            if out is None:
                if len(memo) >= 256:
                    memo.clear()
                out = memo[label] = engine.policy.declassified_label(label)
            return out
        raise ValueError("reclassify needs inputs['new_label'], the proposed Label")
    if not isinstance(new, Label):
        raise TypeError("inputs['new_label'] must be a vault.policy.Label")
    return new


def _about(rule: Rule) -> str:
    return f": {rule.description}" if rule.description else ""


def _rule_entry(rule: Rule, why: str, matched: bool) -> dict[str, Any]:
    status = "matched" if matched else "held" if why.startswith("held back") else "not-matched"
    return {"kind": "rule", "id": rule.id, "effect": rule.effect, "status": status,
            "why": why, "line": rule.line}


def _non_candidate(rule: Rule, user: User, action: str) -> dict[str, Any]:
    if action not in rule.actions:
        why, status = f"not a rule for {action} (it covers {', '.join(rule.actions)})", \
            "not-applicable"
    else:
        why, status = f"{user.name} is not among {rule.who.describe()}", "not-matched"
    return {"kind": "rule", "id": rule.id, "effect": rule.effect, "status": status,
            "why": why, "line": rule.line}
