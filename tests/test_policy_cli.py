"""``vault policy check|explain|test``: exit codes, stdout and stderr apart."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vault_cli.main import cli

ROOT = Path(__file__).parent.parent
OFFICE = str(ROOT / "policies" / "office.yaml")
BROKEN = ROOT / "tests" / "policies_broken"


@pytest.fixture
def filled(tmp_path: Path) -> str:
    """The office template with its people's keys pasted in."""
    from office import policy_text

    from vault.identity import new_identity

    path = tmp_path / "office.yaml"
    path.write_text(policy_text({n: new_identity(n) for n in ("officer", "clerk", "leader")}))
    return str(path)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["policy", *args], catch_exceptions=False)


def test_check_ok(filled: str) -> None:
    r = run("check", filled)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"{filled}: ok (policy office: 4 levels, 6 users, 19 rules; "
                               "sha256 ")
    assert r.stderr == ""


def test_check_refuses_a_template_until_its_placeholders_are_replaced() -> None:
    r = run("check", OFFICE)
    assert r.exit_code == 1 and r.stdout == ""
    assert f"{OFFICE}:65:16: user officer recipient: 'REPLACE-WITH-RECIPIENT-OF-officer' is a " \
        "placeholder of the template, not a key" in r.stderr
    assert "hint: fill it from that person's FILE.pub ('vault policy fill TEMPLATE FILE.pub... " \
        "-o POLICY'" in r.stderr


def test_check_lists_every_problem_on_stderr(filled: str) -> None:
    bad = str(BROKEN / "unknown_key.yaml")
    r = run("check", filled, bad)
    assert r.exit_code == 1
    assert r.stdout.startswith(f"{filled}: ok")
    assert r.stderr.splitlines() == [
        f"{bad}:22:5: rule clerks-open is missing 'effect'",
        "    hint: add 'effect:' to rule clerks-open",
        f"{bad}:23:5: unknown key 'efect' in rule clerks-open; expected one of: id, effect, "
        "actions, who, description, label, new_label, when, require, approvers, approvals, "
        "may_lower, below_floor",
        "    hint: did you mean 'effect'?",
        "vault: 2 problems in 1 of 2 files",
        "hint: fix them and check again; docs/POLICY.md describes the schema",
    ]


def test_check_json(filled: str) -> None:
    bad = str(BROKEN / "duplicate_key.yaml")
    r = run("check", "--json", filled, bad)
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["ok"] is False
    good, broken = data["files"]
    assert good["ok"] and good["name"] == "office" and len(good["hash"]) == 64
    assert broken["problems"] == [{
        "file": bad, "line": 15, "column": 3,
        "message": "duplicate key 'clerk' (first at line 11, column 3); expected each key once",
        "hint": "remove one of them: YAML loaders disagree on which one wins"}]
    assert r.stderr == "vault: 1 problem in 1 of 2 files\n" \
        "hint: fix them and check again; docs/POLICY.md describes the schema\n"


def test_check_needs_a_file() -> None:
    r = run("check")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert "missing argument" in r.stderr.lower()


def test_explain_allowed_exits_0() -> None:
    r = run("explain", OFFICE, "--user", "leader", "--action", "open", "--level", "C",
            "-c", "FINANCE", "--at", "2025-06-02T09:00:00Z")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ALLOWED: leader open CONFIDENTIAL//FINANCE"
    assert "  decided by open-with-need-to-know" in lines
    assert "  MATCH allow open-with-need-to-know  leader is in group leaders; level CONFIDENTIAL " \
        "is at least INTERNAL; compartments fit" in lines
    assert r.stderr == ""


def test_explain_denied_exits_3_without_an_error_line() -> None:
    r = run("explain", OFFICE, "-u", "clerk", "-a", "open", "-l", "CONFIDENTIAL", "-c", "BOARD",
            "--embargo-until", "2025-07-01", "--at", "2025-06-02T09:00:00Z")
    assert r.exit_code == 3
    assert r.stdout.splitlines()[0] == "DENIED: clerk open CONFIDENTIAL//BOARD"
    assert "  decided by embargo-until-release" in r.stdout
    assert r.stderr == ""


def test_explain_reclassify_and_two_person_inputs() -> None:
    args = ["explain", OFFICE, "-u", "leader", "-a", "reclassify", "-l", "SECRET", "-c", "BOARD",
            "--new-level", "CONFIDENTIAL", "--justification", "the merger closed"]
    r = run(*args)
    assert r.exit_code == 3
    assert "  decided by builtin:approver" in r.stdout
    r = run(*args, "--approver", "deputy", "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["outcome"] == "allowed"
    assert data["rule_ids"] == ["leaders-classify", "secret-two-leaders"]
    assert data["inputs"]["new_label"] == {"level": "CONFIDENTIAL", "compartments": ["BOARD"],
                                           "caveats": []}
    assert {t["id"] for t in data["trace"] if t["kind"] == "rule"} == {
        r["id"] for r in json.loads(run("explain", OFFICE, "-u", "leader", "-a", "administer",
                                        "--json").stdout)["trace"] if r["kind"] == "rule"}


def test_explain_usage_errors_exit_2() -> None:
    r = run("explain", OFFICE, "-u", "clerk", "-a", "peek")
    assert r.exit_code == 2 and r.stdout == ""
    r = run("explain", OFFICE, "-u", "clerk", "-a", "open", "-l", "TOP")
    assert r.exit_code == 2
    assert r.stderr.splitlines() == ["vault: unknown level 'TOP'",
                                     "hint: levels: PUBLIC, INTERNAL, CONFIDENTIAL, SECRET"]
    r = run("explain", OFFICE, "-u", "clerk", "-a", "reclassify", "-l", "INTERNAL", "-c", "STAFF")
    assert r.exit_code == 2 and r.stderr.startswith("vault: reclassify needs --new-level")
    r = run("explain", OFFICE, "-u", "clerk", "-a", "open", "--at", "yesterday")
    assert r.exit_code == 2 and "--at: expected a date or time" in r.stderr


def test_explain_mandatory_labelling() -> None:
    corporate = str(ROOT / "policies" / "corporate.yaml")
    r = run("explain", corporate, "-u", "employee", "-a", "seal")
    assert r.exit_code == 3
    assert "  decided by builtin:mandatory-labelling" in r.stdout
    assert "  FAIL  builtin:mandatory-labelling  policy corporate makes labelling mandatory: " \
        "give a level" in r.stdout
    r = run("explain", corporate, "-u", "employee", "-a", "open")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("vault: give --level: policy corporate makes labelling mandatory")


def test_explain_of_a_broken_policy_exits_1() -> None:
    r = run("explain", str(BROKEN / "tabs.yaml"), "-u", "x", "-a", "open")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith(f"vault: {BROKEN / 'tabs.yaml'}:7:14: tab character; expected "
                               "spaces (and 1 more)\nhint: run 'vault policy check")


def test_test_runs_case_files() -> None:
    r = run("test", str(ROOT / "policies" / "office.cases.yaml"))
    assert r.exit_code == 0, r.stdout
    assert r.stdout.splitlines()[0] == "PASS  a clerk seals a confidential finance memo"
    assert r.stdout.splitlines()[-1].endswith(": 48 passed, 0 failed (policy office)")
    assert r.stderr == ""


def test_test_failure_exits_1(tmp_path: Path) -> None:
    shutil.copy(OFFICE, tmp_path / "office.yaml")
    cases = tmp_path / "c.yaml"
    cases.write_text("policy: office.yaml\ncases:\n  - name: wrong\n    actor: outsider\n"
                     "    action: open\n    label: {level: PUBLIC}\n    expect: deny\n"
                     "    rule: public-for-all\n", encoding="utf-8")
    r = run("test", str(cases))
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0] == (f"FAIL  wrong ({cases}:3): expected deny, got allowed "
                                        "(allowed by rule public-for-all: Anyone may list, open "
                                        "and pass on PUBLIC documents.)")
    assert r.stderr == "vault: 1 of 1 case failed\n"
    r = run("test", "--json", str(cases))
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["passed"] is False
    assert data["files"][0]["results"][0]["decision"]["rule_ids"] == ["public-for-all"]


def test_test_of_a_broken_case_file(tmp_path: Path) -> None:
    cases = tmp_path / "c.yaml"
    cases.write_text("policy: office.yaml\ncases: [\n", encoding="utf-8")
    r = run("test", str(cases))
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0].startswith(f"{cases}:3:1: YAML syntax error: ")
    assert r.stderr.splitlines()[-2] == "vault: 1 of 1 case file could not be loaded"


def test_the_installed_script(filled: str) -> None:
    vault = shutil.which("vault")
    assert vault is not None
    good = subprocess.run([vault, "policy", "check", filled], capture_output=True, text=True,
                          check=False)
    assert good.returncode == 0 and good.stderr == ""
    bad = subprocess.run([vault, "policy", "check", str(BROKEN / "anchor_alias.yaml")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert "Traceback" not in bad.stderr
    assert f"{BROKEN / 'anchor_alias.yaml'}:16:16: anchor '&c'; expected a plain value" \
        in bad.stderr
    denied = subprocess.run([vault, "policy", "explain", OFFICE, "-u", "outsider", "-a", "open",
                             "-l", "SECRET", "-c", "BOARD"], capture_output=True, text=True,
                            check=False)
    assert denied.returncode == 3
    assert "decided by outsiders-stay-out" in denied.stdout


def test_group_help_lists_subcommands() -> None:
    r = run("--help")
    assert r.exit_code == 0
    for name in ("check", "explain", "test", "apply"):
        assert f"  {name} " in r.stdout
