"""The intake section of the policy schema, the below_floor condition, and
classify cases in policy test files."""

from __future__ import annotations

from pathlib import Path

import pytest
from intake_support import FILES, HC_ALL, POLICIES
from office import policy_text

from vault.errors import PolicyLoadError
from vault.policy import Policy, load_policy, load_policy_text, run_cases

OFFICE = policy_text({})  # the template, placeholders replaced by stand-in keys
BASE = OFFICE[: OFFICE.index("\n  - id: leaders-seal-below-floor")] + "\n"


def problems(text: str) -> list[tuple[int | None, int | None, str, str | None]]:
    with pytest.raises(PolicyLoadError) as e:
        load_policy_text(text, "p.yaml")
    return [(p.line, p.column, p.message, p.hint) for p in e.value.problems]


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def test_shipped_policies_check_and_round_trip() -> None:
    for name in ("office", "corporate", "tlp2", "uk-gsc", "us-eo13526"):
        policy = load_policy(POLICIES / f"{name}.yaml", template=True)
        assert policy.intake.configured and policy.intake.floors
        again = Policy.from_dict(policy.to_dict())
        assert again.intake == policy.intake
        assert [r.to_dict() for r in again.rules] == [r.to_dict() for r in policy.rules]


def test_a_policy_without_intake_changes_nothing() -> None:
    policy = load_policy_text(BASE)
    assert not policy.intake.configured and policy.intake.uninspectable == "accept"
    assert "intake" not in policy.to_dict()


def test_unknown_keys_and_names_are_refused_with_positions() -> None:
    text = BASE + """intake:
  office_labels:
    - {id: "{9FBDE396-1A24-4C79-8EDF-9254A0F35055}", label: {level: SECRET, compartments: [STAF]}}
    - {id: not-a-guid, label: SECRET}
    - {label: SECRET}
  floors:
    - {id: cards, detector: payment-cards, label: CONFIDENTIAL}
    - {id: both, detector: iban, keywords: [x], label: CONFIDENTIAL}
    - {id: bad, regex: '(a+)+b', label: CONFIDENTIAL}
    - {id: clerks-seal, keywords: [minutes], label: CONFIDENTIAL}
    - {id: x, keywords: [minutes], label: CONFIDENTIAL, colour: red}
  uninspectable: require-lable
"""
    found = problems(text)
    messages = [(line, msg) for line, _, msg, _ in found]
    assert (line_of(text, "STAF]"), "undefined compartment 'STAF'; expected one of: BOARD, "
            "FINANCE, HR, STAFF") in messages
    hints = {msg: hint for _, _, msg, hint in found}
    assert hints["undefined compartment 'STAF'; expected one of: BOARD, FINANCE, HR, STAFF"] \
        == "did you mean 'STAFF'?"
    assert any("office label id 'not-a-guid' is not a GUID" in m for _, m in messages)
    assert any("office label has neither id nor name" in m for _, m in messages)
    assert any("detector 'payment-cards' is not a built-in detector" in m
               and hints[m] == "did you mean 'payment-card'?" for _, m in messages)
    assert any("floor both has detector and keywords" in m for _, m in messages)
    assert any("floor bad regex refused: a repeat of something of varying length" in m
               for _, m in messages)
    assert any("floor id 'clerks-seal' is already used by a rule" in m for _, m in messages)
    colour = next((line, col, m, h) for line, col, m, h in found if "colour" in m)
    assert colour[:2] == (line_of(text, "colour"), text.splitlines()[colour[0] - 1]
                          .index("colour") + 1)
    assert colour[2].startswith("unknown key 'colour' in floor x; expected one of: id, label")
    assert hints["intake uninspectable is 'require-lable'; expected one of: require-label, "
                 "accept"] == "did you mean 'require-label'?"


def test_below_floor_is_for_seal_rules_only() -> None:
    text = BASE + """  - id: odd
    effect: allow
    actions: [seal, open]
    who: {groups: [leaders]}
    below_floor: true
"""
    assert any("has below_floor; expected it only on rules for seal" in m
               for _, _, m, _ in problems(text))


def test_decide_with_a_floor_explains_it() -> None:
    policy = load_policy(POLICIES / "office.yaml", template=True)
    label = policy.make_label(level="INTERNAL", compartments=["STAFF"])
    floor = policy.make_label(level="CONFIDENTIAL", compartments=["FINANCE"])
    denied = policy.decide("clerk", "seal", label, inputs={"floor": floor})
    assert not denied.allowed and denied.rule_ids == ["builtin:floor"]
    text = denied.explain()
    assert "inputs    floor=CONFIDENTIAL//FINANCE" in text
    assert "FAIL  builtin:floor" in text and "needs a rule with below_floor: true" in text
    assert "no    allow leaders-seal-below-floor  clerk is not among group leaders" in text
    ok = policy.decide("clerk", "seal", floor.replace(compartments=frozenset({"FINANCE",
                                                                              "STAFF"})),
                       inputs={"floor": floor})
    assert ok.allowed and "builtin:floor" not in ok.rule_ids
    with pytest.raises(TypeError):
        policy.decide("clerk", "seal", label, inputs={"floor": "CONFIDENTIAL"})


def test_classify_cases_report_what_differs(tmp_path: Path) -> None:
    policy = tmp_path / "office.yaml"
    policy.write_text(OFFICE)
    cases = tmp_path / "office.cases.yaml"
    cases.write_text(f"""policy: office.yaml
cases:
  - name: right
    classify: {FILES / 'highly-confidential.docx'}
    floor: {{level: SECRET, compartments: [STAFF]}}
    rules: [office-label:{HC_ALL}]
  - name: wrong
    classify: {FILES / 'board-minutes.txt'}
    floor: {{level: INTERNAL, compartments: [STAFF]}}
    rules: [card-numbers]
    status: truncated
""")
    report = run_cases(cases)
    assert [r.passed for r in report.results] == [True, False]
    message = report.results[1].message
    assert "expected status truncated, got complete" in message
    assert "expected floor INTERNAL//STAFF, got CONFIDENTIAL//BOARD/FINANCE//PERSONAL-DATA" \
        in message
    assert "expected rules card-numbers, got board-minutes, card-numbers" in message
    assert "4111" not in str(report.to_dict())
    cases.write_text("policy: office.yaml\ncases:\n  - name: x\n    classify: nowhere.txt\n")
    with pytest.raises(PolicyLoadError, match=r"classify: no file nowhere\.txt"):
        run_cases(cases)


def test_an_office_label_without_its_label_is_a_problem_not_a_crash() -> None:
    text = BASE + """intake:
  office_labels:
    - {id: 87ba5c36-b7cf-4793-bbc2-bd5b3a9f95ca, name: Public}
"""
    assert [msg for _, _, msg, _ in problems(text)] == ["office label is missing 'label'"]


def test_a_floor_dated_with_its_seal_holds_the_release_date_too() -> None:
    # POLICY.md §6.6: a floor made when sealing carries the seal's creation
    # time and the policy's default declassify-on; a label due sooner is
    # below it. A floor recorded undated by an earlier release is judged as
    # then, so that replaying its seal counts what counted.
    from datetime import UTC, datetime

    from vault.intake import dated_floor
    from vault.policy import Label

    policy = load_policy(POLICIES / "office.yaml", template=True)
    now = datetime.now(UTC)
    label = policy.make_label(level="CONFIDENTIAL", compartments=["FINANCE"],
                              declassify_on="2001-01-01", created=now)
    undated = Label("CONFIDENTIAL", compartments=frozenset({"FINANCE"}))
    assert policy.decide("clerk", "seal", label, inputs={"floor": undated}).allowed
    dated = dated_floor(policy, undated, now)
    denied = policy.decide("clerk", "seal", label, inputs={"floor": dated})
    assert not denied.allowed and denied.rule_ids == ["builtin:floor"]
    assert policy.decide("clerk", "seal", label.replace(declassify_on=None),
                         inputs={"floor": dated}).allowed
    later = label.replace(declassify_on="2099-01-01")
    assert not policy.decide("clerk", "seal", later, inputs={"floor": dated}).allowed  # no default
    tenyears = load_policy_text(OFFICE.replace("declassification:\n  to: PUBLIC\n",
                                               "declassification:\n  to: PUBLIC\n"
                                               "  default: P10Y\n"), "p.yaml")
    dated = dated_floor(tenyears, undated, now)
    assert dated.declassify_on == "P10Y"
    assert tenyears.decide("clerk", "seal", later, inputs={"floor": dated}).allowed
    assert not tenyears.decide("clerk", "seal", label.replace(declassify_on="P1Y"),
                               inputs={"floor": dated}).allowed
