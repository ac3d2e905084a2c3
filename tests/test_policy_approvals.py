"""Two-person rules in the policy's own tools (docs/POLICY.md §4.5, §8):
explain with the approvers a request would carry, case files that say
``approvals: [names]``, and what the vault asks of the policy before an
approval exists."""

from __future__ import annotations

from pathlib import Path

from cli_support import run
from policy_support import AT, make_policy, rule

from vault.policy import Label, run_cases

ROOT = Path(__file__).resolve().parent.parent
OFFICE = str(ROOT / "policies" / "office.yaml")
ARGS = ["policy", "explain", OFFICE, "-u", "leader", "-a", "declassify", "-l", "SECRET", "-c",
        "BOARD", "--justification", "the merger closed"]


def test_explain_counts_the_approvers_given() -> None:
    r = run(*ARGS, "--approver", "clerk")
    assert r.exit_code == 3 and r.stderr == ""
    assert "  - a second person's approval is required (rule secret-two-leaders, by group " \
        "leaders); clerk does not count: not among group leaders (rule " \
        "secret-two-leaders)" in r.stdout
    r = run(*ARGS, "--approver", "clerk", "--approver", "deputy")
    assert r.exit_code == 0
    assert "  pass  builtin:approver" in r.stdout and "approved by deputy (rule " \
        "secret-two-leaders: 1 of 1); clerk does not count" in r.stdout


def test_case_files_give_approvals_as_names(tmp_path: Path) -> None:
    (tmp_path / "office.yaml").write_text(Path(OFFICE).read_text())
    cases = tmp_path / "c.yaml"
    cases.write_text("policy: office.yaml\nat: 2025-06-01T00:00:00Z\ncases:\n"
                     "  - name: two leaders\n    actor: leader\n    action: declassify\n"
                     "    label: {level: SECRET, compartments: [BOARD]}\n"
                     "    inputs: {justification: x, approvals: [deputy, leader]}\n"
                     "    expect: allow\n    rule: secret-two-leaders\n")
    report = run_cases(cases)
    assert report.passed
    assert report.results[0].decision.inputs["approvers"] == ["deputy", "leader"]  # type: ignore[union-attr]
    cases.write_text(cases.read_text().replace("approvals: [deputy, leader]", "approver: deputy"))
    r = run("policy", "test", str(cases))
    assert r.exit_code == 1
    assert "unknown key 'approver' in inputs; expected one of: justification, approvals, " \
        "new_label, floor" in r.stderr


def test_who_may_approve_before_any_approval_exists() -> None:
    policy = make_policy(rule("two", "allow", "shred", "{groups: [leads]}",
                              require="[approver]", approvers="{groups: [leads, staff]}"))
    lab = Label("CONFIDENTIAL", frozenset({"A"}))
    assert [r.id for r in policy.approval_rules("alice", "shred", lab, at=AT)] == ["two"]
    assert policy.approver_problem("alice", "shred", lab, "dave", at=AT) is None
    assert policy.approver_problem("alice", "shred", lab, "bob", at=AT) is None
    assert policy.approver_problem("alice", "shred", lab, "carol", at=AT) == \
        "not cleared for CONFIDENTIAL//A"
    assert policy.approver_problem("alice", "shred", lab, "alice", at=AT) == \
        "nobody approves their own request"
    assert policy.approver_problem("alice", "open", lab, "dave", at=AT) == \
        "no rule asks for approval when alice may open this"
