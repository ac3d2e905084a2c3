"""What officers, clerks and leaders do every day, through the CLI: sealing
from stdin, opening under the stored name, global options anywhere,
explicit reclassification, the policy in force, and hints that help.
Exit code, stdout and stderr are checked apart."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from cli_support import Office, assert_error, make_office, run

MEMO = b"Board decision: the office moves next quarter.\n"


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Office:
    o = make_office(tmp_path_factory.mktemp("everyday"))
    (o.root / "memo.txt").write_bytes(MEMO)
    return o


def test_seal_reads_standard_input(office: Office) -> None:
    r = office.as_("clerk", "seal", "-", "--level", "CONFIDENTIAL//FINANCE",
                   "--filename", "minutes.txt", "--json", input=b"from a pipe\n")
    assert r.exit_code == 0, r.stderr
    (doc,) = json.loads(r.stdout)
    assert doc["filename"] == "minutes.txt" and doc["plaintext_size"] == 12
    r = office.as_("leader", "open", doc["id"], "-o", "-")
    assert r.stdout_bytes == b"from a pipe\n"
    # Without --filename nothing is stored as a name.
    r = office.as_("clerk", "seal", "-", "--level", "C", "--compartment", "FINANCE",
                   "--json", input=b"x")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)[0]["filename"] is None
    r = office.as_("clerk", "seal", "-", "-", input=b"x")
    assert_error(r, 2, "standard input can be sealed once")


def test_open_under_the_stored_name_never_outside_the_folder(office: Office,
                                                            tmp_path: Path) -> None:
    hostile = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                          "BOARD", "--filename", "../../.bashrc")
    folder = tmp_path / "inbox"
    folder.mkdir()
    r = office.as_("leader", "open", hostile, "-o", str(folder))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert r.stderr == f"opened {hostile} into {folder / 'bashrc'}\n"
    assert sorted(p.name for p in folder.iterdir()) == ["bashrc"]
    assert (folder / "bashrc").read_bytes() == MEMO
    assert not (tmp_path / ".bashrc").exists()
    # Never over an existing file unless --force. The name is known only once
    # the document is unlocked, after the decision: the attempt's failure is
    # on the record next to it.
    r = office.as_("leader", "open", hostile, "-o", str(folder))
    assert_error(r, 2, "already exists")
    decided, ended = office.audit_records()[-2:]
    assert (decided["action"], decided["outcome"], decided["doc"]) == ("open", "allowed", hostile)
    assert (ended["outcome"], ended["request"]) == ("failed", decided["request"])
    r = office.as_("leader", "open", hostile, "-o", str(folder), "--force")
    assert r.exit_code == 0, r.stderr
    # -O: the current folder.
    plain = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                        "BOARD")
    here = tmp_path / "here"
    here.mkdir()
    cwd = os.getcwd()
    os.chdir(here)
    try:
        r = office.as_("leader", "open", plain, "-O")
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, r.stderr
    assert (here / "memo.txt").read_bytes() == MEMO
    r = office.as_("leader", "open", plain, "-O", "-o", "-")
    assert_error(r, 2, "-O saves to a file")


@pytest.mark.parametrize(("stored", "saved"), [
    ("report.pdf", "report.pdf"),
    ("C:\\Users\\x\\evil.exe", "evil.exe"),
    ("..", "{id}.txt"),
    ("con.txt", "{id}.txt"),
    ("a\x1bb.docx", "a_b.docx"),
    ("x" * 300 + ".xlsx", "x" * 195 + ".xlsx"),
])
def test_stored_names_are_made_safe(stored: str, saved: str) -> None:
    from vault._ops.filenames import safe_filename

    doc_id = "abcdefghijklmnop"
    assert safe_filename(stored, doc_id, "text/plain") == saved.format(id=doc_id)


@pytest.mark.parametrize(("name", "content_type", "fallback"), [
    ("Minutes.DOCX", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     ".docx"),
    ("budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    ("scan.JPEG", "image/jpeg", ".jpg"),
    ("notes", None, ".bin"),
    ("archive.unknownext", None, ".bin"),
])
def test_a_content_type_comes_from_the_vaults_own_table(name: str, content_type: str | None,
                                                         fallback: str) -> None:
    # The same on every workstation: Python's mimetypes reads the system's
    # tables, which know .docx on one machine and not on another.
    from vault._ops.filenames import content_type_of, safe_filename

    assert content_type_of(name) == content_type
    assert safe_filename("..", "abcdefghijklmnop", content_type) == "abcdefghijklmnop" + fallback


def test_global_options_after_the_command(office: Office) -> None:
    leader = str(office.people["leader"].key)
    r = run("ls", "--vault", str(office.vault), "--identity", leader, "--json")
    assert r.exit_code == 0, r.stderr
    before = run("--vault", str(office.vault), "--identity", leader, "ls", "--json")
    assert json.loads(r.stdout) == json.loads(before.stdout)
    r = run("audit", "log", "--vault", str(office.vault), "--json")
    assert r.exit_code == 0, r.stderr
    r = run("ls", "--help")
    assert "--vault DIR" in r.stdout and "--identity FILE" in r.stdout
    r = run("ls", env={"VAULT_DIR": ""})
    assert_error(r, 2, "no vault given")
    assert "hint: pass --vault DIR, or set VAULT_DIR" in r.stderr


def test_reclassify_adds_and_removes_explicitly(office: Office) -> None:
    doc = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                      "BOARD", "--compartment", "FINANCE")
    r = office.as_("leader", "reclassify", doc, "--add-compartment", "STAFF",
                   "--justification", "staff need it")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert r.stderr == (f"reclassified {doc}: CONFIDENTIAL//BOARD/FINANCE -> "
                        "CONFIDENTIAL//BOARD/FINANCE/STAFF\n  added compartment: STAFF\n")
    r = office.as_("leader", "reclassify", doc, "--remove-compartment", "STAFF",
                   "--add-caveat", "PERSONAL-DATA", "--justification", "payroll inside",
                   "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["removed_compartments"] == ["STAFF"] and out["added_caveats"] == ["PERSONAL-DATA"]
    assert out["previous_label"]["compartments"] == ["BOARD", "FINANCE", "STAFF"]
    # Replacing the whole set says what it dropped ...
    r = office.as_("leader", "reclassify", doc, "--compartment", "BOARD",
                   "--justification", "finance is done with it")
    assert r.exit_code == 0, r.stderr
    assert "dropped compartment: FINANCE" in r.stderr
    # ... and a clerk who meant to add is told how, not only "may_lower".
    r = office.as_("clerk", "reclassify", doc, "--compartment", "FINANCE",
                   "--justification", "add finance")
    assert_error(r, 3, "denied")
    assert "drops BOARD" in r.stderr and "--add-compartment" in r.stderr
    assert "\\n" not in r.stderr  # one hint line, the parts joined, no escaped break
    r = office.as_("clerk", "reclassify", doc, "--add-compartment", "FINANCE",
                   "--justification", "add finance")
    assert r.exit_code == 0, r.stderr
    # Contradictions and impossible removals are usage errors.
    r = office.as_("leader", "reclassify", doc, "--compartment", "BOARD",
                   "--add-compartment", "STAFF", "--justification", "x")
    assert_error(r, 2, "not both")
    r = office.as_("leader", "reclassify", doc, "--remove-compartment", "HR",
                   "--justification", "x")
    assert_error(r, 2, "has no compartment HR")


def test_policy_show_says_what_is_in_force(office: Office) -> None:
    r = run("--vault", str(office.vault), "policy", "show")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "policy     office, version 1 of 1 (in force)"
    assert lines[2].startswith("installed  ") and " by officer (audit record 0)" in lines[2]
    r = run("--vault", str(office.vault), "policy", "show", "--json")
    data = json.loads(r.stdout)
    assert data["in_force"] == 1 and data["applied_by"] == "officer"
    r = run("--vault", str(office.vault), "policy", "show", "--text")
    assert r.stdout == office.policy.read_text()
    r = run("--vault", str(office.vault), "policy", "show", "--version", "7")
    assert_error(r, 2, "no policy version 7")


def test_policy_explain_against_the_vault_and_a_document(office: Office) -> None:
    doc = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                      "BOARD")
    r = office.as_("outsider", "open", doc, "-o", "-")
    assert_error(r, 3, "denied")
    # The hint is a command that works as written.
    hint = next(line for line in r.stderr.splitlines() if line.startswith("hint: "))
    command = hint.split("see why, rule by rule: ", 1)[1].split(";")[0]
    assert command == f"vault policy explain --action open --doc {doc}"
    # The outsider may not even list it: explaining it is denied too.
    r = office.as_("outsider", *command.split()[1:])
    assert_error(r, 3, "denied")
    # The officer may list it, and is told why she may not open it.
    r = office.as_("officer", "policy", "explain", "--action", "open", "--doc", doc)
    assert r.exit_code == 3, r.stderr
    assert r.stdout.startswith("DENIED: officer open CONFIDENTIAL//BOARD")
    # For someone else, with a label given as the vault writes it.
    r = run("--vault", str(office.vault), "policy", "explain", "--user", "leader",
            "--action", "open", "--level", "CONFIDENTIAL//BOARD")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("ALLOWED: leader open CONFIDENTIAL//BOARD")
    r = run("policy", "explain", "--action", "open", env={"VAULT_DIR": ""})
    assert_error(r, 2, "no policy given")


def test_recovery_identity_can_be_passphrase_protected(office: Office, tmp_path: Path) -> None:
    phrase = tmp_path / "phrase"
    phrase.write_text("a long recovery passphrase\n")
    phrase.chmod(0o600)
    rec = tmp_path / "recovery.key"
    r = run("init", str(tmp_path / "v"), "--policy", str(office.policy), "--identity",
            str(office.people["officer"].key), "--recovery-out", str(rec),
            "--protect-recovery", env={"VAULT_RECOVERY_PASSPHRASE_FILE": str(phrase)})
    assert r.exit_code == 0, r.stderr
    assert "passphrase-protected" in r.stderr
    assert rec.read_text().startswith("-----BEGIN AGE ENCRYPTED FILE-----")
    doc = run("--vault", str(tmp_path / "v"), "--identity", str(office.people["clerk"].key),
              "seal", str(office.root / "memo.txt"), "--level", "C", "--compartment",
              "BOARD").stdout.strip()
    (stored,) = (tmp_path / "v" / "docs").glob(f"{doc}.*.age")
    r = run("age", "decrypt", "-i", str(rec), str(stored),
            env={"VAULT_PASSPHRASE_FILE": str(phrase)})
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == MEMO
    r = run("init", str(tmp_path / "v2"), "--policy", str(office.policy), "--identity",
            str(office.people["officer"].key), "--protect-recovery")
    assert_error(r, 2, "--recovery-out")


def test_the_recovery_identity_is_no_user(office: Office) -> None:
    r = run("--vault", str(office.vault), "--identity", str(office.recovery), "ls")
    assert_error(r, 2, "recovery identity")
    assert "age -d -i" in r.stderr and "policy explain" not in r.stderr


def test_init_on_an_existing_vault_says_so_first(office: Office) -> None:
    r = run("init", str(office.vault), "--policy", str(office.policy), "--identity",
            str(office.people["clerk"].key))
    assert_error(r, 2, "is already a vault")
    assert "administer" not in r.stderr


def test_waiting_for_the_lock_is_said(office: Office) -> None:
    from vault.store import open_backend

    backend = open_backend(str(office.vault))
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with backend.lock():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    r = office.as_("officer", "rotate")
    thread.join()
    assert r.exit_code == 0, r.stderr
    assert time.monotonic() - started >= 0.9
    assert r.stderr.startswith("waiting for the vault's lock: other commands are writing")


def test_audit_filters_say_what_the_vault_never_knew(office: Office) -> None:
    office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment", "BOARD")
    log = ("--vault", str(office.vault), "audit", "log")
    r = run(*log, "--actor", "clrek")
    assert_error(r, 2, "no user 'clrek' in any policy version")
    assert "did you mean 'clerk'?" in r.stderr
    assert r.stdout == ""
    r = run(*log, "--doc", "aaaaaaaaaaaaaaaa")
    assert_error(r, 2, "was never in this vault")
    r = run(*log, "--doc", "not-an-id")
    assert_error(r, 2, "is not a document id")
    r = run(*log, "--action", "opne")
    assert_error(r, 2, "unknown action")
    assert "did you mean 'open'?" in r.stderr
    # A known name with nothing to show is an empty answer, not an error.
    r = run(*log, "--actor", "deputy")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == "no matching records\n"
    r = run(*log, "--actor", "clerk", "--json")
    assert r.exit_code == 0
    records = json.loads(r.stdout)  # one JSON document
    assert records and all(rec["actor"]["name"] == "clerk" for rec in records)
    # The root is base64 in text and JSON alike.
    text = run("--vault", str(office.vault), "audit", "verify")
    data = json.loads(run("--vault", str(office.vault), "audit", "verify", "--json").stdout)
    assert f"root {data['root']}" in text.stdout


def test_a_malformed_recipient_is_a_usage_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_bytes(MEMO)
    r = run("age", "encrypt", "-r", "age1bad", "-o", str(tmp_path / "out.age"), str(plain))
    assert_error(r, 2, "not a valid age recipient")
    assert r.stdout == ""
    assert "hint: recipients look like age1" in r.stderr
    assert not (tmp_path / "out.age").exists()
