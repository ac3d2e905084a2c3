"""Every vault command end to end through the CLI, with stdout and stderr
checked apart, under the shipped office policy."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cli_support import Office, age_decrypt, assert_error, make_office, run

MEMO = b"Board decision: the office moves next quarter.\n"
BUDGET = bytes(range(256)) * 64  # binary, several payload chunks' worth of pattern


@pytest.fixture
def office(tmp_path: Path) -> Office:
    o = make_office(tmp_path)
    (o.root / "memo.txt").write_bytes(MEMO)
    (o.root / "budget.bin").write_bytes(BUDGET)
    return o


def test_init_writes_vault_and_recovery_key(office: Office) -> None:
    assert (office.vault / "vault.json").is_file()
    assert stat.S_IMODE(os.stat(office.recovery).st_mode) == 0o600
    # Post-quantum, as the policy requires by default.
    assert "AGE-SECRET-KEY-PQ-1" in office.recovery.read_text()


def test_init_reports_on_stderr_only(tmp_path: Path) -> None:
    o = make_office(tmp_path / "a")
    r = run("init", str(tmp_path / "second"), "--policy", str(o.policy),
            "--identity", str(o.people["officer"].key), "--recovery-out",
            str(tmp_path / "r2.key"))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "created vault" in r.stderr


def test_init_by_a_non_administrator_is_denied(tmp_path: Path) -> None:
    o = make_office(tmp_path)
    r = run("init", str(tmp_path / "v2"), "--policy", str(o.policy),
            "--identity", str(o.people["clerk"].key), "--recovery-out", str(tmp_path / "r.key"))
    assert_error(r, 3, "administer")
    assert r.stdout == ""
    assert not (tmp_path / "v2" / "vault.json").exists()


def test_seal_prints_one_id_per_line(office: Office) -> None:
    r = office.as_("clerk", "seal", str(office.root / "memo.txt"), str(office.root / "budget.bin"),
                   "--level", "CONFIDENTIAL", "--compartment", "BOARD")
    assert r.exit_code == 0, r.stderr
    ids = r.stdout.split("\n")
    assert ids[-1] == "" and len(ids) == 3  # two ids, each on its own line
    assert len(set(ids[:2])) == 2
    for doc_id in ids[:2]:
        assert office.doc_path(doc_id).is_file()


def test_seal_json_describes_the_new_document(office: Office) -> None:
    r = office.as_("clerk", "seal", str(office.root / "memo.txt"), "--level", "C",
                   "--compartment", "BOARD", "--caveat", "PERSONAL-DATA", "--title", "Move",
                   "--json")
    assert r.exit_code == 0, r.stderr
    (doc,) = json.loads(r.stdout)
    assert doc["label"]["level"] == "CONFIDENTIAL"  # the alias C, canonicalised
    assert doc["label"]["compartments"] == ["BOARD"]
    assert doc["label"]["caveats"] == ["PERSONAL-DATA"]
    assert doc["title"] == "Move"
    assert doc["filename"] == "memo.txt"
    assert doc["sealed_by"] == "clerk"


def test_seal_of_a_missing_file_is_a_usage_error(office: Office) -> None:
    r = office.as_("clerk", "seal", str(office.root / "nope.txt"))
    assert_error(r, 2, "does not exist")
    assert r.stdout == ""


def test_seal_above_the_clerks_limit_is_denied(office: Office) -> None:
    r = office.as_("clerk", "seal", str(office.root / "memo.txt"), "--level", "SECRET",
                   "--compartment", "BOARD")
    assert_error(r, 3, "denied")
    assert r.stdout == ""
    assert list((office.vault / "docs").iterdir()) == []


def test_seal_with_an_unknown_level_is_a_usage_error(office: Office) -> None:
    r = office.as_("clerk", "seal", str(office.root / "memo.txt"), "--level", "TOP-SECRET")
    assert r.exit_code == 2, r.stderr
    assert_error(r, 2, "TOP-SECRET")


def test_cleared_user_gets_identical_bytes(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "budget.bin", "--level", "CONFIDENTIAL",
                         "--compartment", "FINANCE")
    out = office.root / "opened.bin"
    r = office.as_("leader", "open", doc_id, "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert out.read_bytes() == BUDGET
    # to stdout, as bytes
    r = office.as_("leader", "open", doc_id, "-o", "-")
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == BUDGET
    assert r.stderr == ""


def test_open_never_overwrites_unless_forced(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                         "BOARD")
    out = office.root / "existing.txt"
    out.write_bytes(b"keep")
    r = office.as_("leader", "open", doc_id, "-o", str(out))
    assert_error(r, 2, "already exists")
    assert "hint: " in r.stderr and "--force" in r.stderr
    assert out.read_bytes() == b"keep"
    r = office.as_("leader", "open", doc_id, "-o", str(out), "--force")
    assert r.exit_code == 0, r.stderr
    assert out.read_bytes() == MEMO


def test_uncleared_user_is_denied_with_the_rule(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                         "BOARD")
    out = office.root / "stolen.txt"
    r = office.as_("outsider", "open", doc_id, "-o", str(out))
    assert_error(r, 3, "denied")
    assert "outsiders-stay-out" in r.stderr
    assert "hint:" in r.stderr
    assert r.stdout == ""
    assert not out.exists()
    # The officer is staff but not cleared for BOARD: denied too.
    r = office.as_("officer", "open", doc_id, "-o", str(out))
    assert_error(r, 3, "denied")
    assert not out.exists()


def test_export_is_a_standard_age_file(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "budget.bin", "--level", "C", "--compartment",
                         "FINANCE")
    out = office.root / "conveyed.age"
    r = office.as_("clerk", "export", doc_id, "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert out.read_bytes() == office.doc_path(doc_id).read_bytes()
    dec = age_decrypt(office.recovery, out)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == BUDGET
    r = office.as_("clerk", "export", doc_id, "-o", str(out))
    assert_error(r, 2, "already exists")
    r = office.as_("outsider", "export", doc_id, "-o", str(office.root / "x.age"))
    assert_error(r, 3, "denied")
    assert not (office.root / "x.age").exists()


def test_reclassify_needs_a_justification_and_an_authorised_principal(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                         "BOARD")
    r = office.as_("leader", "reclassify", doc_id, "--level", "INTERNAL")
    assert_error(r, 2, "--justification")
    # Clerks may only raise a label, never lower it.
    r = office.as_("clerk", "reclassify", doc_id, "--level", "INTERNAL", "--compartment", "STAFF",
                   "--justification", "tidying up")
    assert_error(r, 3, "denied")
    r = office.as_("leader", "reclassify", doc_id, "--level", "INTERNAL", "--compartment",
                   "STAFF", "--justification", "announced at the general meeting", "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["label"]["level"] == "INTERNAL"
    assert doc["label"]["compartments"] == ["STAFF"]
    assert doc["label"]["classified_by"] == "leader"
    r = office.as_("leader", "info", doc_id, "--json")
    assert json.loads(r.stdout)["label"]["reason"] == "announced at the general meeting"
    # Still the same bytes.
    r = office.as_("leader", "open", doc_id, "-o", "-")
    assert r.stdout_bytes == MEMO


def test_reclassify_with_nothing_to_change_is_a_usage_error(office: Office) -> None:
    r = office.as_("leader", "reclassify", "whatever", "--justification", "x")
    assert_error(r, 2, "nothing to change")


def test_declassify(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                         "BOARD")
    r = office.as_("leader", "declassify", "--justification", "x")
    assert_error(r, 2, "no documents")
    r = office.as_("clerk", "declassify", doc_id, "--justification", "release")
    assert_error(r, 3, "denied")
    r = office.as_("leader", "declassify", doc_id, "--justification", "released to the press")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == [doc_id]
    # Now PUBLIC: even the outsider opens it.
    r = office.as_("outsider", "open", doc_id, "-o", "-")
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == MEMO


def test_declassify_due(office: Office) -> None:
    due = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                      "BOARD", "--declassify-on", "2000-01-01")
    later = office.seal("clerk", office.root / "budget.bin", "--level", "C", "--compartment",
                        "FINANCE", "--declassify-on", "2999-01-01")
    r = office.as_("leader", "declassify", "--due", "--justification", "scheduled release",
                   "--json")
    assert r.exit_code == 0, r.stderr
    assert [d["id"] for d in json.loads(r.stdout)] == [due]
    r = office.as_("leader", "info", later, "--json")
    assert json.loads(r.stdout)["label"]["level"] == "CONFIDENTIAL"


def test_shred(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                         "BOARD")
    r = office.as_("clerk", "shred", doc_id, "--justification", "mistake")
    assert_error(r, 3, "denied")
    assert office.doc_path(doc_id).exists()
    r = office.as_("leader", "shred", doc_id, "--justification", "retention period over")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert office.doc_files(doc_id) == []  # no version of it is left
    r = office.as_("leader", "open", doc_id, "-o", "-")
    assert r.exit_code != 0
    assert_error(r, r.exit_code, doc_id)
    assert r.stdout == ""
    r = office.as_("leader", "ls", "--json")
    assert json.loads(r.stdout) == []


def test_rotate_and_doctor(office: Office) -> None:
    board = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                        "BOARD")
    staff = office.seal("clerk", office.root / "budget.bin", "--level", "INTERNAL",
                        "--compartment", "STAFF")
    # Not an administrator: no new keys, only pending rewraps (none here).
    r = office.as_("clerk", "rotate", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["rotated"] == []
    r = office.as_("officer", "rotate", "--class", "SECRET//NOPE")
    assert_error(r, 2, "no label class")
    r = office.as_("officer", "rotate", "--json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    # The officer is cleared for INTERNAL//STAFF, and gives it a new key; a
    # key for BOARD only someone cleared for BOARD may make: the report says who.
    assert [x.split(" -> ")[0] for x in report["rotated"]] == ["INTERNAL//STAFF"]
    assert report["rewrapped"] == [staff]
    (pending,) = report["pending"]
    assert pending.startswith("rotate CONFIDENTIAL//BOARD:")
    assert "clerk, deputy, leader" in pending
    # Documents still open, with the new keys.
    for doc_id, data in ((board, MEMO), (staff, BUDGET)):
        r = office.as_("leader", "open", doc_id, "-o", "-")
        assert r.exit_code == 0, r.stderr
        assert r.stdout_bytes == data

    r = run("--vault", str(office.vault), "doctor")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("ok:")

    # This machine's replay of the audit log is only a cache: without it the
    # state is replayed from the log again, and agrees with the folder.
    import vault

    with vault.Vault(office.vault) as v:
        vault_id = v.id
    for cached in Path(os.environ["VAULT_STATE_DIR"]).glob(f"{vault_id}.sqlite*"):
        cached.unlink()
    r = run("--vault", str(office.vault), "doctor", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    r = office.as_("leader", "ls", "--json")
    assert sorted(d["id"] for d in json.loads(r.stdout)) == sorted([board, staff])


def test_doctor_finds_a_damaged_document(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                         "BOARD")
    path = office.doc_path(doc_id)
    data = path.read_bytes()
    # One character of the label stanza, which anyone can verify (signed).
    at = data.index(b"-> vault/v2/label\n") + len(b"-> vault/v2/label\n") + 10
    swapped = b"A" if data[at:at + 1] != b"A" else b"B"
    path.write_bytes(data[:at] + swapped + data[at + 1:])
    r = run("--vault", str(office.vault), "doctor", "--json")
    assert r.exit_code == 4, r.stderr
    report = json.loads(r.stdout)
    assert not report["ok"]
    assert any(doc_id in p for p in report["problems"])
    assert r.stderr.startswith("vault: ")
    # --repair removes leftovers, never evidence: it is not what the hint offers.
    assert "cannot fix them: they are evidence" in r.stderr


def test_doctor_offers_repair_only_where_it_can_help(office: Office,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stale = office.vault / "docs" / ".vault-tmp-0123456789abcdef"
    stale.write_bytes(b"what a killed writer left")
    stale.chmod(0o600)
    r = run("--vault", str(office.vault), "doctor")
    assert r.exit_code == 0, r.stderr
    assert "\nleftover: docs/.vault-tmp-0123456789abcdef (25 bytes;" in r.stdout
    assert r.stderr.startswith("hint: 'vault doctor --repair' (as an administrator) removes")
    import vault_cli._vault_admin as admin

    monkeypatch.setattr(admin, "_read_only", lambda location: True)
    r = run("--vault", str(office.vault), "doctor")
    assert r.exit_code == 0
    assert "read-only file system" in r.stderr and "--repair" not in r.stderr
    monkeypatch.undo()
    r = office.as_("officer", "doctor", "--repair")
    assert r.exit_code == 0, r.stderr
    assert "repaired: removed docs/.vault-tmp-0123456789abcdef" in r.stdout
    assert not stale.exists()


def test_policy_apply_revokes_and_grants(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "budget.bin", "--level", "C", "--compartment",
                         "FINANCE")
    # The clerk loses FINANCE.
    text = office.policy.read_text()
    new = text.replace("clearance: {level: CONFIDENTIAL, compartments: [STAFF, FINANCE, BOARD]}",
                       "clearance: {level: CONFIDENTIAL, compartments: [STAFF, BOARD]}")
    assert new != text
    policy2 = office.root / "office-v2.yaml"
    policy2.write_text(new)
    r = office.as_("clerk", "policy", "apply", str(policy2))
    assert_error(r, 3, "denied")
    r = office.as_("officer", "policy", "apply", str(policy2), "--json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["version"] == 2
    assert any("clerk" in x for x in report["revoked"])
    # Rewrapping needs someone cleared for FINANCE: the leader runs rotate.
    if report["pending"]:
        r = office.as_("leader", "rotate")
        assert r.exit_code in (0, 3), r.stderr
    r = office.as_("clerk", "open", doc_id, "-o", "-")
    assert_error(r, 3, "denied")
    r = office.as_("leader", "open", doc_id, "-o", "-")
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == BUDGET


def test_policy_apply_refuses_a_broken_policy(office: Office) -> None:
    bad = office.root / "bad.yaml"
    bad.write_text("version: 1\nname: x\nlevels: [\n")
    r = office.as_("officer", "policy", "apply", str(bad))
    assert r.exit_code in (1, 2), r.stderr
    assert_error(r, r.exit_code, "bad.yaml")


def _approved_request(office: Office, doc_id: str, level: str) -> tuple[str, str]:
    """The leader asks to reclassify ``doc_id`` to ``level``, the deputy
    approves with their own identity: the request id and the approval's
    stderr."""
    r = office.as_("leader", "request", "reclassify", doc_id, "--level", level,
                   "--justification", "less sensitive now")
    assert r.exit_code == 0, r.stderr
    request_id = r.stdout.strip()
    r = office.as_("deputy", "approve", request_id, "--yes")
    assert r.exit_code == 0, r.stderr
    return request_id, r.stderr


def test_reclassify_a_secret_document_takes_two_leaders(office: Office) -> None:
    doc_id = office.seal("leader", office.root / "memo.txt", "--level", "SECRET",
                         "--compartment", "BOARD")
    r = office.as_("leader", "reclassify", doc_id, "--level", "CONFIDENTIAL",
                   "--justification", "less sensitive now")
    assert_error(r, 3, "approval")
    # The deputy approves with their own identity; nobody hands a key over.
    request_id, _ = _approved_request(office, doc_id, "CONFIDENTIAL")
    r = office.as_("leader", "reclassify", doc_id, "--level", "CONFIDENTIAL",
                   "--request", request_id)
    assert r.exit_code == 0, r.stderr
    assert "CONFIDENTIAL//BOARD" in r.stderr
    r = office.as_("leader", "info", doc_id, "--json")
    assert json.loads(r.stdout)["label"]["level"] == "CONFIDENTIAL"


def test_a_request_for_a_whole_new_label_asks_for_what_reclassify_makes(
        office: Office) -> None:
    # 'vault request reclassify --level CONFIDENTIAL//STAFF' kept the old
    # compartments and caveats in the label it asked for, while 'vault
    # reclassify --level CONFIDENTIAL//STAFF' replaces them: the approval
    # never fitted, and the two-person lowering could not be done.
    doc_id = office.seal("leader", office.root / "memo.txt", "--level",
                         "SECRET//BOARD/FINANCE")
    request_id, shown = _approved_request(office, doc_id, "CONFIDENTIAL//BOARD")
    assert "new label      CONFIDENTIAL//BOARD\n" in shown, shown
    r = office.as_("leader", "reclassify", doc_id, "--level", "CONFIDENTIAL//BOARD",
                   "--request", request_id)
    assert r.exit_code == 0, r.stderr
    r = office.as_("leader", "info", doc_id, "--json")
    label = json.loads(r.stdout)["label"]
    assert (label["level"], label["compartments"]) == ("CONFIDENTIAL", ["BOARD"])


def test_reclassify_can_clear_compartments(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                         "BOARD", "--caveat", "PERSONAL-DATA")
    r = office.as_("leader", "reclassify", doc_id, "--compartment", "STAFF",
                   "--clear-compartments", "--justification", "x")
    assert_error(r, 2, "contradict")
    r = office.as_("leader", "reclassify", doc_id, "--level", "PUBLIC", "--clear-compartments",
                   "--clear-caveats", "--justification", "published in the annual report",
                   "--json")
    assert r.exit_code == 0, r.stderr
    label = json.loads(r.stdout)["label"]
    assert (label["level"], label["compartments"], label["caveats"]) == ("PUBLIC", [], [])
