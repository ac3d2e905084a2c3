"""Classification policies: a strict YAML schema, Bell-LaPadula decisions,
explanations and policy test cases (docs/POLICY.md).

Example (``load_policy(path)`` reads a file; ``template=True`` stands in
keys for a shipped template's placeholders)::

    >>> from vault.policy import load_policy_text
    >>> policy = load_policy_text('''
    ... version: 1
    ... name: example
    ... post_quantum: off
    ... levels: [PUBLIC, CONFIDENTIAL]
    ... compartments: [BOARD]
    ... users:
    ...   clerk:
    ...     recipient: age13ujtj75hzu9efvpxtmkzft4j65alpy5nkxu5khjfhxzl3fnjjaxqentttd
    ...     signing_key: ed25519:sUKXW59CSzFou9idzv+6m8wgf70mgR1q/NkTUoSfzFs=
    ...     clearance: CONFIDENTIAL
    ... rules:
    ...   - {id: need-to-know, effect: allow, actions: [open], who: {users: [clerk]}}
    ... ''')
    >>> label = policy.parse_label("CONFIDENTIAL//BOARD")
    >>> policy.format_label(label)
    'CONFIDENTIAL//BOARD'
    >>> decision = policy.decide("clerk", "open", label)
    >>> decision.allowed
    False
    >>> print(decision.reasons[0])  # doctest: +NORMALIZE_WHITESPACE
    no read up: clerk's clearance CONFIDENTIAL does not dominate
    CONFIDENTIAL//BOARD (not cleared for BOARD)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vault.policy._decide import Decision
from vault.policy._loader import load_policy, load_policy_bytes, load_policy_text
from vault.policy.model import ACTIONS, Clearance, Group, Label, Level, Policy, Rule, User

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy._cases import CaseReport, CaseResult, run_cases

__all__ = [
    "ACTIONS",
    "CaseReport",
    "CaseResult",
    "Clearance",
    "Decision",
    "Group",
    "Label",
    "Level",
    "Policy",
    "Rule",
    "User",
    "load_policy",
    "load_policy_bytes",
    "load_policy_text",
    "run_cases",
]


def __getattr__(name: str) -> Any:
    # Policy test cases (vault policy test) are loaded when first asked for:
    # the commands that only decide never load them (docs/PERFORMANCE.md).
    if name in ("CaseReport", "CaseResult", "run_cases"):
        from vault.policy import _cases

        return getattr(_cases, name)
    raise AttributeError(f"module 'vault.policy' has no attribute {name!r}")
