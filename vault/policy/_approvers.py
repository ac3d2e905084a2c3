"""Who may approve a request (docs/POLICY.md §4.5), asked before any
approval exists: ``vault approve`` refuses to sign what would not count,
``vault approvals`` lists only what the caller may answer, and the audit
log's replay keeps an approval on the record only from an eligible user.

The decision itself (:mod:`vault.policy._checks`) counts approvals with the
same test, :func:`~vault.policy._checks.not_counted`, so the two cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vault.policy._checks import not_counted

if TYPE_CHECKING:
    from vault.policy._decide import _Compiled
    from vault.policy.model import Label, Policy, Rule

__all__ = ["approval_rules", "approver_problem"]


def _rules(policy: Policy, actor: str, action: str, label: Label | None, at: datetime | None,
           inputs: Mapping[str, Any] | None) -> tuple[list[_Compiled], Label | None]:
    from vault.policy._decide import _NEW_LABEL, _new_label

    engine = policy._engine
    user = policy.users.get(actor)
    if user is None:
        return [], None
    given = dict(inputs or {})
    new = _new_label(engine, action, label, given) if action in _NEW_LABEL else None
    floor = given.get("floor")
    if engine.unknown_labels(label, new) is not None or (
            floor is not None and engine.unknown_labels(floor, None) is not None):
        return [], new  # refused before any rule (decide's builtin:unknown-label)
    below = engine.below_floor(action, label, given)
    allow, deny, _ = engine._match_rules(user, action, label, new, at or datetime.now(UTC),
                                         None, below)
    if deny:
        return [], new
    return [c for c in allow if "approver" in c.require], new


def approval_rules(policy: Policy, actor: str, action: str, label: Label | None, *,
                   at: datetime | None = None,
                   inputs: Mapping[str, Any] | None = None) -> list[Rule]:
    """The allow rules that make ``actor``'s request need approval."""
    return [c.rule for c in _rules(policy, actor, action, label, at, inputs)[0]]


def approver_problem(policy: Policy, actor: str, action: str, label: Label | None,
                     approver: str, *, at: datetime | None = None,
                     inputs: Mapping[str, Any] | None = None) -> str | None:
    """Why ``approver``'s approval of ``actor``'s request would not count
    (for some rule that asks for approval), or None when it counts for all."""
    rules, new = _rules(policy, actor, action, label, at, inputs)
    if not rules:  # a label the policy does not know: no rule can ask for approval
        return policy._engine.unknown_labels(label, new) \
            or f"no rule asks for approval when {actor} may {action} this"
    user = policy.users[actor]
    for c in rules:
        why = not_counted(policy._engine, user, label, new, c, approver)
        if why is not None:
            return why
    return None
