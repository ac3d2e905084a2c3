"""Policy test cases (docs/POLICY.md §8).

A case file is YAML, read by the same strict reader as policies, naming its
policy (relative to the case file) and a list of cases: actor, action,
label, time and inputs, and the expected outcome and rule id. Running it
decides each case and compares.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vault._inputs import open_input
from vault.errors import DeniedError, PolicyLoadError, UsageError
from vault.policy._cases_intake import ClassifyCase, read_classify_case, run_classify_case
from vault.policy._checks import BUILTIN_IDS
from vault.policy._decide import Decision
from vault.policy._fields import Fields
from vault.policy._loader import load_policy
from vault.policy._yaml import MAX_POLICY_BYTES, Node, Problems, compose, decode
from vault.policy.model import ACTIONS, Label, Policy

__all__ = ["CaseReport", "CaseResult", "run_cases"]

_ANY_NAME = re.compile(r".+")  # make_label checks names against the policy
_LABEL_KEYS = ("level", "compartments", "caveats", "classified_by", "reason", "derived_from",
               "created", "declassify_on", "embargo_until")


@dataclass(frozen=True)
class CaseResult:
    name: str
    line: int | None
    expected: str  # "allow" | "deny"
    expected_rule: str
    decision: Decision | None  # None: a classify case with no label to decide
    passed: bool
    message: str  # empty when passed
    classification: dict[str, Any] | None = None  # classify cases (§8.2)

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "line": self.line, "passed": self.passed,
               "expected": self.expected, "expected_rule": self.expected_rule,
               "message": self.message,
               "decision": None if self.decision is None else self.decision.to_dict()}
        if self.classification is not None:
            out["classification"] = self.classification
        return out


@dataclass(frozen=True)
class CaseReport:
    file: str
    policy: Policy
    results: tuple[CaseResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "policy": self.policy.hash, "passed": self.passed,
                "total": len(self.results), "failed": len(self.failures),
                "results": [r.to_dict() for r in self.results]}


@dataclass(frozen=True)
class _Case:
    name: str
    line: int | None
    actor: str
    action: str
    label: Label | DeniedError | None
    at: datetime
    inputs: dict[str, Any]
    expect: str
    rule: str
    obligations: list[str] | None


def run_cases(path: str | os.PathLike[str]) -> CaseReport:
    """Load a case file and its policy, decide every case, compare.

    Raises PolicyLoadError (with positions) when either file is malformed."""
    file = os.fspath(path)
    policy, cases = load_cases(file)
    return CaseReport(file, policy, tuple(_run(policy, c) for c in cases))


def load_cases(file: str) -> tuple[Policy, list[_Case | ClassifyCase]]:
    problems = Problems(file)
    try:
        with open_input(file) as f:  # never blocks on a FIFO another user planted
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as e:
        problems.add(None, None, f"cannot read: {e.strerror or e}")
        raise PolicyLoadError(problems.finish()) from None
    text = decode(data, problems)
    root = None if text is None else compose(text, problems)
    reader = Fields(problems)
    top = None if root is None else reader.mapping(
        root, "the case file", ("policy", "cases"), ("description", "at"))
    if top is None or "policy" not in top or "cases" not in top:
        raise PolicyLoadError(problems.finish() or [])
    policy_name = reader.text(top["policy"], "policy")
    if policy_name is None:
        raise PolicyLoadError(problems.finish())
    # A shipped template holds placeholders instead of people's keys:
    # decisions do not depend on key values, so stand-ins take their place.
    policy = load_policy(os.path.join(os.path.dirname(file), policy_name), template=True)
    default_at = reader.time(top["at"], "at") if "at" in top else None
    parser = _CaseReader(problems, policy, default_at or datetime.now(UTC))
    parser.base = os.path.dirname(file)
    cases = [c for item in reader.seq(top["cases"], "cases", nonempty=True) or []
             if (c := parser.case(item)) is not None]
    found = problems.finish()
    if found:
        raise PolicyLoadError(found, hint=f"fix the case file {file}")
    return policy, cases


class _CaseReader(Fields):
    def __init__(self, problems: Problems, policy: Policy, at: datetime) -> None:
        super().__init__(problems)
        self.policy = policy
        self.at = at
        self.names: dict[str, Node] = {}
        self.rule_ids = {r.id for r in policy.rules} | set(BUILTIN_IDS)
        self.base = "."

    def case(self, node: Node) -> _Case | ClassifyCase | None:
        if any(k.text == "classify" for k, _ in node.pairs):  # §8.2
            return read_classify_case(self, node, self.base)
        f = self.mapping(node, "case", ("name", "actor", "action", "expect", "rule"),
                         ("label", "at", "inputs", "obligations"))
        if f is None:
            return None
        get = {k: self.text(f[k], k) for k in ("name", "actor", "rule") if k in f}
        name, actor, rule = get.get("name"), get.get("actor"), get.get("rule")
        if name is not None and name in self.names:
            self.err(f["name"], f"case name '{name}' is used twice (first at line "
                     f"{self.names[name].line}); expected unique names")
        elif name is not None:
            self.names[name] = f["name"]
        action = self.choice(f["action"], "action", ACTIONS) if "action" in f else None
        expect = self.choice(f["expect"], "expect", ("allow", "deny")) if "expect" in f else None
        if rule is not None and rule not in self.rule_ids:
            self.err(f["rule"], f"rule '{rule}' is neither a rule of policy {self.policy.name} "
                     "nor a builtin check", "see 'vault policy explain' for the ids")
        at = self.time(f["at"], "at") if "at" in f else self.at
        label: Label | DeniedError | None = None
        label_ok = True
        if "label" in f:
            label = self.label(f["label"], "label")
            label_ok = label is not None
        elif action != "administer":
            label, label_ok = self._default_label(actor), True
        inputs = self.inputs(f["inputs"]) if "inputs" in f else {}
        if action == "reclassify" and inputs is not None and "new_label" not in inputs:
            self.err(node, "a reclassify case needs inputs.new_label")
        obligations = [o for o, _ in self.name_list(f["obligations"], "obligations")] \
            if "obligations" in f else None
        if (name is None or actor is None or action is None or expect is None or rule is None
                or at is None or inputs is None or not label_ok):
            return None
        return _Case(name, node.line, actor, action, label, at, inputs, expect, rule,
                     obligations)

    def _default_label(self, actor: str | None) -> Label | DeniedError:
        try:
            return self.policy.make_label(actor=actor)
        except DeniedError as e:  # mandatory labelling: the case's outcome
            return e

    def label(self, node: Node, what: str) -> Label | None:
        """A label built with make_label; None after reporting a problem."""
        f = self.mapping(node, what, ("level",), _LABEL_KEYS[1:])
        if f is None:
            return None
        fields: dict[str, Any] = {}
        for key, value in f.items():
            if key in ("compartments", "caveats"):
                fields[key] = [n for n, _ in self.name_list(value, f"{what} {key}", _ANY_NAME)]
            else:
                fields[key] = self.text(value, f"{what} {key}")
        if any(v is None for v in fields.values()):
            return None
        try:
            return self.policy.make_label(**fields)
        except UsageError as e:
            self.err(node, f"{what}: {e.message}", e.hint)
            return None

    def inputs(self, node: Node) -> dict[str, Any] | None:
        f = self.mapping(node, "inputs", (), ("justification", "approvals", "new_label", "floor"))
        if f is None:
            return None
        out: dict[str, Any] = {}
        if "justification" in f:
            out["justification"] = self.text(f["justification"], "inputs justification")
        if "approvals" in f:
            # Names standing for approvals the vault verified (docs/POLICY.md §8):
            # what 'vault <action> --approval FILE' gives the decision.
            names = [n for n, _ in self.name_list(f["approvals"], "inputs approvals", _ANY_NAME)]
            out["approvers"] = names
        for key in ("new_label", "floor"):
            if key in f:
                out[key] = self.label(f[key], f"inputs {key}")
        return None if any(v is None for v in out.values()) else out


def _run(policy: Policy, case: _Case | ClassifyCase) -> CaseResult:
    if isinstance(case, ClassifyCase):
        return run_classify_case(policy, case)
    if isinstance(case.label, DeniedError):
        assert case.label.decision is not None  # make_label's refusals carry one
        decision: Decision = case.label.decision
    else:
        decision = policy.decide(case.actor, case.action, case.label, at=case.at,
                                 inputs=case.inputs)
    problems = []
    if decision.allowed != (case.expect == "allow"):
        problems.append(f"expected {case.expect}, got {decision.outcome}")
    if case.rule not in decision.rule_ids:
        problems.append(f"expected rule {case.rule}, decided by {', '.join(decision.rule_ids)}")
    if case.obligations is not None and sorted(case.obligations) != decision.obligations:
        problems.append(f"expected obligations {sorted(case.obligations)}, got "
                        f"{decision.obligations}")
    message = "; ".join(problems)
    if problems and decision.reasons:
        message += f" ({decision.reasons[0]})"
    return CaseResult(case.name, case.line, case.expect, case.rule, decision, not problems,
                      message)

