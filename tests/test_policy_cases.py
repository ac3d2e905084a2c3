"""The shipped policies: each passes the check, and every case of its test
file is a pytest item; plus the case runner itself (docs/POLICY.md §8)."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

from vault.errors import PolicyLoadError
from vault.policy import CaseReport, load_policy, run_cases
from vault.policy._cases import load_cases

POLICIES = Path(__file__).parent.parent / "policies"
SHIPPED = ["corporate", "office", "tlp2", "uk-gsc", "us-eo13526"]
CASE_FILES = sorted(POLICIES.glob("*.cases.yaml"))


def test_every_shipped_policy_has_a_case_file() -> None:
    assert sorted(p.name.removesuffix(".cases.yaml") for p in CASE_FILES) == SHIPPED
    assert sorted(p.stem for p in POLICIES.glob("*.yaml")
                  if not p.name.endswith(".cases.yaml")) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_policy_loads(name: str) -> None:
    policy = load_policy(POLICIES / f"{name}.yaml", template=True)
    assert policy.name == name
    assert policy.administrators(), "someone must be able to administer the vault"
    for user in policy.users.values():
        assert user.recipient.startswith("age1") and user.signing_key.startswith("ed25519:")


@functools.cache
def _report(path: Path) -> CaseReport:
    return run_cases(path)


def _all_cases() -> list[tuple[Path, str]]:
    out = []
    for path in CASE_FILES:
        _, cases = load_cases(str(path))
        assert len(cases) >= 10, path
        out += [(path, c.name) for c in cases]
    return out


@pytest.mark.parametrize(("path", "case"), _all_cases(),
                         ids=lambda v: v.name.removesuffix(".cases.yaml") if isinstance(v, Path)
                         else v)
def test_shipped_case(path: Path, case: str) -> None:
    report = _report(path)
    [result] = [r for r in report.results if r.name == case]
    assert result.passed, result.message


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_case_files_cover_allow_and_deny(path: Path) -> None:
    results = _report(path).results
    assert any(r.decision.allowed for r in results)
    assert sum(not r.decision.allowed for r in results) >= 5


def test_office_policy_suits_the_demo() -> None:
    policy = load_policy(POLICIES / "office.yaml", template=True)
    assert {"officer", "clerk", "leader", "outsider"} <= set(policy.users)
    assert policy.administrators() == ["officer"]
    sealed = policy.make_label(level="CONFIDENTIAL", compartments=["FINANCE"])
    assert policy.decide("clerk", "seal", sealed).allowed
    assert policy.decide("leader", "open", sealed).allowed
    assert policy.decide("outsider", "open", sealed).rule_ids == ["outsiders-stay-out"]
    lower = policy.make_label(level="INTERNAL", compartments=["FINANCE"])
    assert policy.decide("leader", "reclassify", sealed,
                         inputs={"new_label": lower, "justification": "published"}).allowed
    assert policy.cleared_users(sealed) == ["clerk", "deputy", "leader"]


def _copy(tmp_path: Path, cases: str) -> Path:
    shutil.copy(POLICIES / "office.yaml", tmp_path / "office.yaml")
    path = tmp_path / "my.cases.yaml"
    path.write_text(cases, encoding="utf-8")
    return path


def test_a_wrong_expectation_fails_with_a_message(tmp_path: Path) -> None:
    path = _copy(tmp_path, """policy: office.yaml
at: 2025-06-02T09:00:00Z
cases:
  - name: wrong outcome
    actor: outsider
    action: open
    label: {level: SECRET, compartments: [BOARD]}
    expect: allow
    rule: outsiders-stay-out
  - name: wrong rule
    actor: leader
    action: open
    label: {level: SECRET, compartments: [BOARD]}
    expect: allow
    rule: leaders-seal
    obligations: [justification]
""")
    report = run_cases(path)
    assert not report.passed
    first, second = report.results
    assert (first.line, second.line) == (4, 10)
    assert first.message.startswith("expected allow, got denied (denied by rule outsiders-stay-out")
    assert second.message == ("expected rule leaders-seal, decided by open-with-need-to-know; "
                              "expected obligations ['justification'], got [] (allowed by rule "
                              "open-with-need-to-know: Staff open documents whose compartments "
                              "they are all cleared for.)")
    assert report.to_dict()["failed"] == 2


def test_a_broken_case_file_lists_every_problem(tmp_path: Path) -> None:
    path = _copy(tmp_path, """policy: office.yaml
cases:
  - name: one
    actor: clerk
    action: peek
    label: {level: TOP, compartments: [BOARD]}
    expect: maybe
    rule: no-such-rule
  - name: one
    actor: clerk
    action: reclassify
    label: {level: INTERNAL}
    expect: allow
    rule: clerks-seal
""")
    with pytest.raises(PolicyLoadError) as info:
        run_cases(path)
    assert [(p.line, p.column, p.message) for p in info.value.problems] == [
        (5, 13, "action is 'peek'; expected one of: seal, open, list, export, reclassify, "
                "declassify, shred, administer"),
        (6, 12, "label: unknown level 'TOP'"),
        (7, 13, "expect is 'maybe'; expected one of: allow, deny"),
        (8, 11, "rule 'no-such-rule' is neither a rule of policy office nor a builtin check"),
        (9, 5, "a reclassify case needs inputs.new_label"),
        (9, 11, "case name 'one' is used twice (first at line 3); expected unique names"),
    ]


def test_case_file_names_its_policy_relative_to_itself(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.cases.yaml"
    path.parent.mkdir()
    path.write_text("policy: missing.yaml\ncases: []\n", encoding="utf-8")
    with pytest.raises(PolicyLoadError) as info:
        run_cases(path)
    [problem] = info.value.problems
    assert problem.file == str(tmp_path / "sub" / "missing.yaml")
