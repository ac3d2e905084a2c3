"""Classification policies: a strict YAML schema, Bell-LaPadula decisions,
explanations and policy test cases (docs/POLICY.md).

    policy = load_policy("policies/office.yaml")
    label = policy.make_label(level="CONFIDENTIAL", compartments=["BOARD"])
    decision = policy.decide("clerk", "open", label)
    if not decision.allowed:
        print(decision.explain())
"""

from __future__ import annotations

from vault.policy._cases import CaseReport, CaseResult, run_cases
from vault.policy._decide import Decision
from vault.policy._loader import load_policy, load_policy_bytes, load_policy_text
from vault.policy.model import ACTIONS, Clearance, Group, Label, Level, Policy, Rule, User

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
