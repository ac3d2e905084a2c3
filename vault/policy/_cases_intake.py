"""Classification cases in policy test-case files (docs/POLICY.md §8.2).

    - name: a Highly Confidential document is at least SECRET//STAFF
      classify: ../tests/intake/files/highly-confidential.docx
      actor: clerk                  # whose default label and seal decision (optional)
      floor: {level: SECRET, compartments: [STAFF]}    # or "none"
      label: {level: SECRET, compartments: [STAFF]}    # the label proposed without one
      rules: [office-label:9fbde396-1a24-4c79-8edf-9254a0f35055]
      status: complete              # optional: complete, truncated, uninspectable
      expect: deny                  # optional: may the actor seal the proposed label?

The file is relative to the case file. Labels compare on level,
compartments and caveats; ``rules`` lists exactly the intake rule ids that
set the floor (in any order).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault.policy._yaml import Node

if TYPE_CHECKING:
    from vault.policy._cases import CaseResult, _CaseReader
    from vault.policy.model import Label, Policy

__all__ = ["ClassifyCase", "read_classify_case", "run_classify_case"]

_KEYS = ("actor", "floor", "label", "rules", "status", "expect")
_STATUS = ("complete", "truncated", "uninspectable")
_ANY = re.compile(r".+")


@dataclass(frozen=True)
class ClassifyCase:
    name: str
    line: int | None
    path: str
    actor: str
    floor: Label | bool | None  # False: not checked
    label: Label | bool | None
    rules: tuple[str, ...] | None
    status: str | None
    expect: str | None


def _label_or_none(reader: _CaseReader, node: Node, what: str) -> Label | bool | None:
    if node.kind == "scalar" and node.text == "none":
        return None
    label = reader.label(node, what)
    return False if label is None else label


def read_classify_case(reader: _CaseReader, node: Node, base: str) -> ClassifyCase | None:
    f = reader.mapping(node, "classify case", ("name", "classify"), _KEYS)
    if f is None:
        return None
    name = reader.text(f["name"], "name") if "name" in f else None
    if name is not None and name in reader.names:
        reader.err(f["name"], f"case name '{name}' is used twice (first at line "
                   f"{reader.names[name].line}); expected unique names")
    elif name is not None:
        reader.names[name] = f["name"]
    rel = reader.text(f["classify"], "classify") if "classify" in f else None
    path = None if rel is None else os.path.normpath(os.path.join(base, rel))
    if path is not None and not os.path.isfile(path):
        reader.err(f["classify"], f"classify: no file {rel} (relative to the case file)")
        path = None
    actor = reader.text(f["actor"], "actor") if "actor" in f else next(iter(reader.policy.users))
    floor = _label_or_none(reader, f["floor"], "floor") if "floor" in f else False
    label = _label_or_none(reader, f["label"], "label") if "label" in f else False
    rules = tuple(r for r, _ in reader.name_list(f["rules"], "rules", _ANY, "")) \
        if "rules" in f else None
    status = reader.choice(f["status"], "status", _STATUS) if "status" in f else None
    expect = reader.choice(f["expect"], "expect", ("allow", "deny")) if "expect" in f else None
    if name is None or path is None or actor is None:
        return None
    if (floor is False and "floor" in f) or (label is False and "label" in f):
        return None
    return ClassifyCase(name, node.line, path, actor, floor, label, rules, status, expect)


def _same(a: Label | None, b: Label | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.level, a.compartments, a.caveats) == (b.level, b.compartments, b.caveats)


def run_classify_case(policy: Policy, case: ClassifyCase) -> CaseResult:
    from vault.intake import classify_for_seal, inspect
    from vault.policy._cases import CaseResult

    found = inspect(case.path, rules=policy.intake.content_rules())
    outcome = classify_for_seal(policy, found, None, actor=case.actor)
    show = policy.format_label
    problems = []
    if case.status is not None and found.status != case.status:
        problems.append(f"expected status {case.status}, got {found.status}")
    if case.floor is not False and not _same(case.floor, outcome.floor):  # type: ignore[arg-type]
        problems.append(f"expected floor {_fmt(show, case.floor)}, got "
                        f"{_fmt(show, outcome.floor)}")
    if case.label is not False and not _same(case.label, outcome.label):  # type: ignore[arg-type]
        problems.append(f"expected label {_fmt(show, case.label)}, got "
                        f"{_fmt(show, outcome.label)}")
    if case.rules is not None and sorted(case.rules) != sorted(outcome.rule_ids):
        problems.append(f"expected rules {', '.join(sorted(case.rules)) or '(none)'}, got "
                        f"{', '.join(sorted(outcome.rule_ids)) or '(none)'}")
    if case.expect is not None and outcome.allowed != (case.expect == "allow"):
        why = outcome.decision.reasons[0] if outcome.decision and outcome.decision.reasons \
            else "no label to seal"
        problems.append(f"expected seal {case.expect}, got "
                        f"{'allow' if outcome.allowed else 'deny'} ({why})")
    return CaseResult(case.name, case.line, case.expect or "classify",
                      ",".join(outcome.rule_ids), outcome.decision, not problems,
                      "; ".join(problems), classification=outcome.to_dict())


def _fmt(show: Any, label: Any) -> str:
    return "none" if label is None else str(show(label))

