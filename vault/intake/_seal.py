"""The decision at seal (docs/POLICY.md §6.6 and §11.5): what was found
in a file, under a policy, becomes a floor and a label.

A pure function of its arguments: it reads nothing and writes nothing.
The seal operation calls :func:`classify_for_seal` after :func:`inspect`
and before it seals, records ``rule_ids`` and the decision's rule ids in
the audit record, and seals with ``label`` only when ``allowed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vault.errors import DeniedError
from vault.intake._model import Inspection
from vault.policy import Decision, Label, Policy

__all__ = ["UNINSPECTABLE_RULE", "SealClassification", "classify_for_seal", "floor_of", "join"]

UNINSPECTABLE_RULE = "intake:uninspectable"


def join(policy: Policy, labels: Iterable[Label]) -> Label:
    """The least upper bound: the highest level, every compartment and caveat."""
    items = list(labels)
    if not items:
        raise ValueError("join needs at least one label")
    top = max(items, key=lambda lab: policy.level_rank(lab.level))
    return Label(top.level, frozenset().union(*(lab.compartments for lab in items)),
                 frozenset().union(*(lab.caveats for lab in items)))


def _show(policy: Policy, label: Label) -> str:
    return policy.format_label(label)


def floor_of(policy: Policy, inspection: Inspection) -> tuple[Label | None, list[str], list[str]]:
    """(floor, ids of what set it, reasons) from the policy's intake section:
    every enabled Office label the policy maps, every floor rule that
    matched, and the uninspectable floor when the policy has one."""
    intake = policy.intake
    found: list[Label] = []
    ids: list[str] = []
    reasons: list[str] = []
    for office in inspection.office_labels:
        if not office.enabled:
            continue
        shown = f"'{office.name}'" if office.name else office.id
        mapping = intake.mapping_for(office)
        if mapping is None:
            reasons.append(f"Office label {shown} is not mapped by policy {policy.name}")
            continue
        found.append(mapping.label)
        ids.append(mapping.rule_id)
        reasons.append(f"Office label {shown} maps to {_show(policy, mapping.label)}")
    for rid in inspection.matched_rules:
        rule = intake.floor_rule(rid)
        if rule is not None:
            found.append(rule.label)
            ids.append(rule.id)
            n = inspection.counts[rid]
            reasons.append(f"floor {rule.id} matched {n} time{'s' * (n != 1)}: at least "
                           f"{_show(policy, rule.label)}")
    if not inspection.whole and intake.uninspectable == "floor" \
            and intake.uninspectable_floor is not None:
        found.append(intake.uninspectable_floor)
        ids.append(UNINSPECTABLE_RULE)
        reasons.append(f"the file could not be inspected whole ({inspection.reason}): at "
                       f"least {_show(policy, intake.uninspectable_floor)}")
    return (join(policy, found) if found else None), ids, reasons


@dataclass(frozen=True)
class SealClassification:
    """The outcome of :func:`classify_for_seal`.

    ``floor`` is the least upper bound of everything intake found (None when
    nothing applies); ``label`` is the label to seal with: the sealer's own,
    or (when they gave none) the floor joined with the default label, or the
    default alone; it is None when the policy requires the sealer to give
    one (an uninspectable file under ``uninspectable: require-label``).
    ``decision`` is the policy's decision on sealing ``label`` with the
    floor as an input (None when there is no label); ``rule_ids`` name what
    set the floor (floor rule ids, ``office-label:<guid>`` or
    ``office-label:<name>``, ``intake:uninspectable``), never any content."""

    inspection: Inspection
    floor: Label | None
    label: Label | None
    proposed: bool
    below_floor: bool
    decision: Decision | None
    rule_ids: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return self.decision is not None and self.decision.allowed

    def audit_fields(self) -> dict[str, Any]:
        """What the audit record should carry about intake (no content)."""
        return {"intake": self.inspection.status, "intake_rules": list(self.rule_ids),
                "floor": _short(self.floor), "below_floor": self.below_floor}

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "floor": _short(self.floor),
                "label": None if self.label is None else self.label.to_dict(),
                "proposed": self.proposed, "below_floor": self.below_floor,
                "rule_ids": list(self.rule_ids), "reasons": list(self.reasons),
                "decision": None if self.decision is None else self.decision.to_dict(),
                "inspection": self.inspection.to_dict()}


def _short(label: Label | None) -> dict[str, Any] | None:
    if label is None:
        return None
    return {"level": label.level, "compartments": sorted(label.compartments),
            "caveats": sorted(label.caveats)}


def dated_floor(policy: Policy, floor: Label, created: datetime | None) -> Label:
    """``floor`` as a seal at ``created`` holds a label to (docs/POLICY.md
    §6.6): with the policy's default declassify-on, so that a label the
    sealer makes due sooner -- for the next ``declassify --due`` -- is below
    it, as a reclassification that does so lowers (§6.4)."""
    return floor.replace(created=created or datetime.now(UTC),
                         declassify_on=policy.declassification.default)


def classify_for_seal(policy: Policy, inspection: Inspection, proposed: Label | None, *,
                      actor: str, justification: str | None = None,
                      at: datetime | None = None) -> SealClassification:
    """Decide the label of a file being sealed (docs/POLICY.md §11.5).

    ``proposed`` is the label the sealer gave (None when they gave no
    level). Sealing below the floor is denied (``builtin:floor``) unless an
    allow rule for seal with ``below_floor: true`` matches, with whatever it
    requires (typically a justification)."""
    floor, ids, reasons = floor_of(policy, inspection)
    if floor is not None:
        floor = dated_floor(policy, floor, proposed.created if proposed is not None else at)
    must_give = (not inspection.whole and policy.intake.uninspectable == "require-label"
                 and proposed is None)
    if must_give:
        ids.append(UNINSPECTABLE_RULE)
        reasons.append(f"the file could not be inspected whole ({inspection.reason}): policy "
                       f"{policy.name} requires the sealer to give a label")
        return SealClassification(inspection, floor, None, False, False, None, tuple(ids),
                                  tuple(reasons))
    label, decision = proposed, None
    if label is None:
        try:
            default = policy.make_label(actor=actor)
        except DeniedError as e:  # mandatory labelling: the sealer must choose
            decision = e.decision
            default = None
        base = [lab for lab in (floor, default) if lab is not None]
        if base:
            joined = join(policy, base)
            label = policy.make_label(level=joined.level, compartments=joined.compartments,
                                      caveats=joined.caveats, actor=actor)
    below = False
    if label is not None and decision is None:
        inputs: dict[str, Any] = {}
        if floor is not None:
            inputs["floor"] = floor
        if justification is not None:
            inputs["justification"] = justification
        decision = policy.decide(actor, "seal", label, at=at, inputs=inputs)
        below = policy.below_floor(label, floor)
    return SealClassification(inspection, floor, label, proposed is None, below, decision,
                              tuple(ids), tuple(reasons))
