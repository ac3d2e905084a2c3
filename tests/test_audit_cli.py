"""`vault audit ...`: exit codes, stdout and stderr checked separately."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_support import KEYS, ORIGIN, fields, key_lookup, lines_of, make_log, write_lines
from click.testing import CliRunner, Result

from vault.audit import VAULT_ACTIONS, AuditLog, NoteVerifier, open_checkpoint, verify_tlog_proof
from vault_cli.main import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "log"
    make_log(path, 12, every=5)
    return path


@pytest.mark.parametrize(("command", "words"), [
    ("log", ["--json", "--jsonl", "--csv", "--follow", "--interval", "--action", "Ctrl-C",
             "done", "failed"]),
    ("verify", ["--checkpoint", "--key", "--json", "exit 4"]),
    ("checkpoint", ["signed note"]),
    ("prove", ["tlog-proof", "SEQ"]),
    ("key", ["verifier key"]),
])  # fmt: skip
def test_help(command: str, words: list[str]) -> None:
    r = run("audit", command, "--help")
    assert r.exit_code == 0 and r.stderr == ""
    flat = " ".join(r.stdout.split())
    for word in words:
        assert word in flat, word


def test_key(log_dir: Path) -> None:
    r = run("audit", "key", "--log", str(log_dir))
    assert r.exit_code == 0 and r.stderr == ""
    verifier = NoteVerifier.from_key(r.stdout.strip())
    assert verifier.name == ORIGIN and r.stdout.endswith("\n")


def test_log_table(log_dir: Path) -> None:
    table = run("audit", "log", "--log", str(log_dir), "--actor", "bob")
    assert table.exit_code == 0 and table.stderr == ""
    rows = table.stdout.splitlines()
    assert rows[0].split() == [
        "SEQ", "TIME", "(UTC)", "ACTOR", "ACTION", "DOC", "LABEL", "OUTCOME", "RULES", "REASON",
    ]  # fmt: skip
    assert [row.split()[0] for row in rows[1:]] == ["1", "4", "7", "10"]
    assert "secret//ops" in rows[1] and "bob" in rows[1]  # labels as banners, by names


def test_log_json_is_one_document(log_dir: Path) -> None:
    r = run("audit", "log", "--log", str(log_dir), "--json", "--outcome", "denied")
    assert r.exit_code == 0 and r.stderr == ""
    expected = [line for line in lines_of(log_dir) if b'"outcome":"denied"' in line]
    assert json.loads(r.stdout) == [json.loads(line) for line in expected]
    tool = subprocess.run([sys.executable, "-m", "json.tool"], input=r.stdout, text=True,
                          capture_output=True, check=False)
    assert tool.returncode == 0, tool.stderr
    empty = run("audit", "log", "--log", str(log_dir), "--json", "--until", "2000-01-01")
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []


def test_log_jsonl_is_the_exact_lines(log_dir: Path) -> None:
    r = run("audit", "log", "--log", str(log_dir), "--jsonl", "--outcome", "denied")
    expected = [line for line in lines_of(log_dir) if b'"outcome":"denied"' in line]
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.encode().splitlines() == expected  # the exact, signed bytes


def test_log_csv_has_caveats_and_every_outcome(tmp_path: Path) -> None:
    log = AuditLog.create(tmp_path / "l", origin=ORIGIN)
    label = {"level": "secret", "compartments": ["ops"], "caveats": ["PERSONAL-DATA"]}
    log.append(fields("alice", 0, label=label, outcome="allowed", request="r1"), KEYS["alice"])
    log.append_many([(fields("alice", 1, outcome=o, request="r1"), KEYS["alice"])
                     for o in ("done", "failed")])
    out = run("audit", "log", "--log", str(tmp_path / "l"), "--csv")
    assert out.exit_code == 0 and out.stderr == ""
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["outcome"] for r in rows] == ["allowed", "done", "failed"]
    assert rows[0]["caveats"] == "PERSONAL-DATA" and rows[0]["compartments"] == "ops"
    assert list(rows[0])[7:10] == ["compartments", "caveats", "outcome"]
    done = run("audit", "log", "--log", str(tmp_path / "l"), "--outcome", "done", "--jsonl")
    assert [json.loads(x)["outcome"] for x in done.stdout.splitlines()] == ["done"]
    table = run("audit", "log", "--log", str(tmp_path / "l"))
    assert "secret//ops//PERSONAL-DATA" in table.stdout


def test_log_csv_by_doc(log_dir: Path) -> None:
    out = run("audit", "log", "--log", str(log_dir), "--csv", "--doc", "doc-2")
    parsed = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [row["seq"] for row in parsed] == ["2", "7"]
    assert parsed[0]["actor"] == "carol" and parsed[0]["compartments"] == ""
    assert parsed[1]["level"] == "secret" and parsed[1]["compartments"] == "ops"


def test_log_action_names_are_checked(log_dir: Path) -> None:
    r = run("audit", "log", "--log", str(log_dir), "--action", "opne")
    assert r.exit_code == 2 and r.stdout == ""
    assert "vault: unknown action 'opne'" in r.stderr
    assert "hint: did you mean 'open'?" in r.stderr
    r = run("audit", "log", "--log", str(log_dir), "--action", "zzz")
    assert r.exit_code == 2 and "did you mean" not in r.stderr and "actions: init" in r.stderr
    assert {"init", "seal", "policy-apply", "incident", "torn"} <= set(VAULT_ACTIONS)
    r = run("audit", "log", "--log", str(log_dir), "--action", "seal", "--jsonl")
    assert r.exit_code == 0 and all('"action":"seal"' in x for x in r.stdout.splitlines())


def test_log_format_options_are_exclusive(log_dir: Path) -> None:
    for pair in (("--json", "--csv"), ("--json", "--jsonl"), ("--jsonl", "--csv")):
        r = run("audit", "log", "--log", str(log_dir), *pair)
        assert r.exit_code == 2 and r.stdout == "" and "choose one" in r.stderr
    for fmt in ((), ("--json",)):
        r = run("audit", "log", "--log", str(log_dir), "--follow", *fmt)
        assert r.exit_code == 2 and r.stdout == "" and "--follow needs" in r.stderr


def test_log_time_filters_and_injection(log_dir: Path) -> None:
    log = AuditLog.open(log_dir)
    log.append(fields("alice", reason='=HYPERLINK("http://evil")'), KEYS["alice"])
    since = list(log.records())[-1].time
    r = run("audit", "log", "--log", str(log_dir), "--csv", "--since", since)
    (row,) = list(csv.DictReader(io.StringIO(r.stdout)))
    assert row["reason"].startswith("'=HYPERLINK")  # not a formula in a spreadsheet
    r = run("audit", "log", "--log", str(log_dir), "--until", "2000-01-01")
    assert r.exit_code == 0 and r.stdout == "" and "no matching records" in r.stderr
    r = run("audit", "log", "--log", str(log_dir), "--since", "yesterday")
    assert r.exit_code == 2 and "RFC 3339" in r.stderr and r.stdout == ""


@pytest.mark.parametrize("interval", ["nan", "inf", "1e400", "9" * 5000, "0"],
                         ids=["nan", "inf", "1e400", "5000-digits", "0"])
def test_log_follow_refuses_an_interval_sleep_cannot_take(log_dir: Path, interval: str) -> None:
    # A float takes 'nan', 'inf' and '1e400'; time.sleep refused each after
    # the first look at the log, an internal error.
    r = run("audit", "log", "--log", str(log_dir), "--follow", "--jsonl",
            "--interval", interval)
    assert r.exit_code == 2 and r.stdout == "" and "--interval" in r.stderr, r.stderr
    assert "internal error" not in r.stderr


def test_log_follow_tails_new_records(log_dir: Path) -> None:
    proc = _follow(log_dir, "--jsonl", "--actor", "bob")
    try:
        assert proc.stdout is not None
        first = [proc.stdout.readline() for _ in range(4)]  # bob's 4 records so far
        assert [json.loads(x)["seq"] for x in first] == [1, 4, 7, 10]
        log = AuditLog.open(log_dir)
        log.append(fields("alice", 99), KEYS["alice"])  # filtered out
        new = log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(3)])
        got = [proc.stdout.readline().rstrip(b"\n") for _ in range(3)]
        assert got == [r.line for r in new]  # the exact lines, once covered
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and out == b"" and b"Traceback" not in err


def _follow(log_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    """``vault audit log --follow`` of ``log_dir``, polling every 50 ms."""
    vault = shutil.which("vault")
    assert vault is not None, "the vault console script is not installed"
    return subprocess.Popen(
        [vault, "audit", "log", "--log", str(log_dir), "--follow", "--interval", "0.05", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_log_follow_ended_by_a_signal_says_so(log_dir: Path, sig: signal.Signals) -> None:
    # Ctrl-C is how one stops following (130, quietly); a service stopped
    # or a session closed is reported as for every command.
    proc = _follow(log_dir, "--jsonl")
    assert proc.stdout is not None
    proc.stdout.readline()  # following
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert err.strip() == f"vault: terminated ({sig.name})".encode()


def test_log_follow_stops_at_a_rewritten_log(log_dir: Path) -> None:
    proc = _follow(log_dir, "--csv")
    assert proc.stdout is not None
    assert [proc.stdout.readline() for _ in range(13)][-1].startswith(b"11,")
    write_lines(log_dir, lines_of(log_dir)[:5])  # cut short under the follower
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4 and out == b""
    assert b"vault: the audit log is shorter than the 12 lines" in err


def test_verify_ok(log_dir: Path) -> None:
    key = run("audit", "key", "--log", str(log_dir)).stdout.strip()
    r = run("audit", "verify", "--log", str(log_dir), "--key", key)
    assert r.exit_code == 0 and r.stderr == ""
    root = base64.b64encode(AuditLog.open(log_dir).verify().root).decode()
    assert r.stdout.splitlines() == [
        f"ok: 12 lines, root {root}",
        "checkpoints: 3 verified (newest at size 12)",
        "records after the newest checkpoint: 0, checked",
    ]
    r = run("audit", "verify", "--log", str(log_dir), "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["ok"] is True and report["size"] == 12
    assert report["root"] == root  # the same encoding as the text
    assert report["findings"] == [] and report["incidents"] == []
    assert "log's own key" in r.stderr


def test_verify_damaged_exits_4_naming_the_damage(log_dir: Path) -> None:
    lines = lines_of(log_dir)
    write_lines(log_dir, lines[:3] + lines[4:])
    r = run("audit", "verify", "--log", str(log_dir))
    assert r.exit_code == 4 and r.stdout == ""
    assert "vault: record 3 was deleted" in r.stderr and "hint: treat this" in r.stderr
    r = run("audit", "verify", "--log", str(log_dir), "--json")
    assert r.exit_code == 4
    assert json.loads(r.stdout) == {
        "ok": False, "kind": "deleted", "seq": 3, "message": "record 3 was deleted",
    }  # fmt: skip


def test_verify_with_kept_checkpoint(log_dir: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.write_text(run("audit", "checkpoint", "--log", str(log_dir)).stdout)
    AuditLog.open(log_dir).append(fields(), KEYS["alice"])
    r = run("audit", "verify", "--log", str(log_dir), "--checkpoint", str(kept))
    assert r.exit_code == 0 and "trusted checkpoint: size 12 matches" in r.stdout
    write_lines(log_dir, lines_of(log_dir)[:10])  # cut below the kept checkpoint
    r = run("audit", "verify", "--log", str(log_dir), "--checkpoint", str(kept))
    assert r.exit_code == 4 and "truncated" in r.stderr


def test_verify_refuses_an_emptied_or_endless_kept_checkpoint(log_dir: Path,
                                                              tmp_path: Path) -> None:
    # An empty --checkpoint file (a kept note truncated by a full disk) was
    # taken for none given: exit 0, "ok". /dev/zero as the checkpoint or
    # the key was read whole until the memory ran out.
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    r = run("audit", "verify", "--log", str(log_dir), "--checkpoint", str(empty))
    assert r.exit_code == 4 and "malformed note" in r.stderr, (r.exit_code, r.stderr)
    assert "ok:" not in r.stdout
    r = run("audit", "verify", "--log", str(log_dir), "--checkpoint", "/dev/zero")
    assert r.exit_code == 2 and "larger than any checkpoint (64 KiB at most)" in r.stderr
    r = run("audit", "verify", "--log", str(log_dir), "--key", "/dev/zero")
    assert r.exit_code == 2 and "too large to be a verifier key" in r.stderr


def test_verify_with_the_wrong_key(log_dir: Path, tmp_path: Path) -> None:
    other = make_log(tmp_path / "other", 1)
    (tmp_path / "key.txt").write_text(other.verifier().verifier_key() + "\n")
    r = run("audit", "verify", "--log", str(log_dir), "--key", str(tmp_path / "key.txt"))
    # Checkpoints the key does not open are findings, ignored: none vouches for the log.
    assert r.exit_code == 0 and "checkpoints: 0 verified" in r.stdout
    assert r.stderr.count("does not verify and is ignored") == 3
    r = run("audit", "verify", "--log", str(log_dir), "--key", "not-a-key")
    assert r.exit_code == 2 and "cannot read key file" in r.stderr


def test_checkpoint_and_prove(log_dir: Path) -> None:
    log = AuditLog.open(log_dir)
    r = run("audit", "checkpoint", "--log", str(log_dir))
    assert r.exit_code == 0 and r.stderr == ""
    assert open_checkpoint(r.stdout.encode(), [log.verifier()], origin=ORIGIN).size == 12
    r = run("audit", "prove", "4", "--log", str(log_dir))
    assert r.exit_code == 0 and r.stderr == ""
    proof = verify_tlog_proof(r.stdout, [log.verifier()], key_lookup=key_lookup)
    assert proof.leaf == lines_of(log_dir)[4]
    r = run("audit", "prove", "99", "--log", str(log_dir))
    assert r.exit_code == 2 and "no record 99" in r.stderr and r.stdout == ""
    r = run("audit", "prove", "-1", "--log", str(log_dir))
    assert r.exit_code == 2


@pytest.mark.parametrize("later", [0, 3])
def test_prove_hands_out_no_proof_against_a_checkpoint_of_another_history(
        log_dir: Path, later: int) -> None:
    # Whoever holds the checkpoint key (on a folder vault, every writer)
    # stored a signed checkpoint of a history where line 4 differs, and
    # derived hashes to match: 'audit prove' checked the proof against both
    # and handed it out -- a signed statement of a history no machine saw.
    from vault.audit._checkpoint import Checkpoint
    from vault.audit._hashing import leaf_hash
    from vault.audit._tree import stored_order, tree_root

    log = AuditLog.open(log_dir)
    assert run("audit", "prove", "0", "--log", str(log_dir)).exit_code == 0
    # An honest checkpoint older than the log's end: a prefix of it.
    AuditLog(log_dir, checkpoint_every=0).append_many([(fields("bob", 90), KEYS["bob"])])
    assert run("audit", "prove", "0", "--log", str(log_dir)).exit_code == 0
    log.checkpoint()
    lines = lines_of(log_dir)
    forged = [*lines[:4], lines[4].replace(b"reason 4", b"REASON 4"), *lines[5:]]
    leaves = [leaf_hash(line) for line in forged]
    (log_dir / "hashes").write_bytes(stored_order(leaves))
    assert log.checkpoint_signer is not None
    note = Checkpoint(ORIGIN, len(lines), tree_root(leaves)).sign([log.checkpoint_signer])
    (log_dir / "checkpoints" / str(len(lines))).write_bytes(note)
    if later:  # the forged checkpoint is then a prefix to check, no longer the tip
        AuditLog(log_dir, checkpoint_every=0).append_many(
            [(fields("bob", i), KEYS["bob"]) for i in range(later)])
        (log_dir / "hashes").write_bytes(stored_order(
            [*leaves, *(leaf_hash(line) for line in lines_of(log_dir)[len(lines):])]))
    # The proof is made against a checkpoint that is the lines' own (an
    # older one), and the forged one named; never against the forged one.
    r = run("audit", "prove", "0", "--log", str(log_dir))
    assert r.exit_code == 0, (r.stdout, r.stderr)
    proof = verify_tlog_proof(r.stdout, [log.verifier()], key_lookup=key_lookup)
    assert proof.checkpoint.size < len(lines) and proof.leaf == lines[0]
    assert f"note: stored checkpoint {len(lines)} does not match the log's lines and was " \
        "passed over" in r.stderr
    # With none of its own left to serve, and no key to make one: refused.
    for size in log.paths.checkpoint_sizes():
        if size != len(lines):
            log.paths.checkpoint(size).unlink()
    (log_dir / "log.key").rename(log_dir / "kept.key")
    r = run("audit", "prove", "0", "--log", str(log_dir))
    assert r.exit_code == 4 and r.stdout == "", (r.stdout, r.stderr)
    assert f"does not match its checkpoint of size {len(lines)}" in r.stderr


def test_usage_errors(tmp_path: Path) -> None:
    r = run("audit", "verify")
    assert r.exit_code == 2 and "vault: no audit log given" in r.stderr
    assert "hint: pass --vault DIR (or set VAULT_DIR), or --log DIR" in r.stderr
    r = run("audit", "log", "--log", str(tmp_path / "missing"))
    assert r.exit_code == 2 and "no audit log in" in r.stderr


def test_console_script(log_dir: Path) -> None:
    vault = shutil.which("vault")
    assert vault is not None, "the vault console script is not installed"
    out = subprocess.run(
        [vault, "audit", "verify", "--log", str(log_dir), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0 and json.loads(out.stdout)["size"] == 12
    (log_dir / "checkpoints" / "5").write_bytes(b"garbage")  # a finding, never an alarm
    out = subprocess.run(
        [vault, "audit", "verify", "--log", str(log_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.splitlines()[1].startswith("checkpoints: 2 ")
    assert out.stderr.splitlines()[-1] == (
        "note: checkpoint 5 does not verify and is ignored: malformed note: no signature block"
    )
    os.chmod(log_dir / "log", 0o600)
    lines = lines_of(log_dir)
    write_lines(log_dir, [lines[0].replace(b"reason 0", b"REASON 0"), *lines[1:]])
    out = subprocess.run([vault, "audit", "verify", "--log", str(log_dir)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 4 and out.stdout == "" and "Traceback" not in out.stderr


def test_prove_on_a_log_cut_below_its_checkpoint_is_an_alarm(log_dir: Path) -> None:
    # Passing over a checkpoint of another history must not pass over a cut
    # log: 'prove' said ok with a note and signed a checkpoint of the cut
    # log, vouching for the rollback.
    lines = lines_of(log_dir)
    stored = sorted(AuditLog.open(log_dir).paths.checkpoint_sizes())
    write_lines(log_dir, lines[:-3])
    r = run("audit", "prove", "0", "--log", str(log_dir))
    assert r.exit_code == 4 and r.stdout == "", (r.stdout, r.stderr)
    assert "fewer than" in r.stderr
    assert sorted(AuditLog.open(log_dir).paths.checkpoint_sizes()) == stored  # nothing signed


def test_prove_hands_out_no_proof_of_lines_this_machine_read_otherwise(tmp_path: Path) -> None:
    # A folder writer rewrote a line this machine had read (same length),
    # the derived hashes and a checkpoint to match: 'prove' passed over the
    # honest checkpoint as one "of another history" and proved the forged
    # line, exit 0, where 'verify' on the same machine alarmed.
    from office import make_office

    from vault.audit._checkpoint import Checkpoint
    from vault.audit._hashing import leaf_hash
    from vault.audit._tree import stored_order, tree_root

    office = make_office(tmp_path / "office", post_quantum=False)
    minutes = office.file("minutes.txt", b"board minutes\n")
    machine = {"VAULT_STATE_DIR": str(tmp_path / "leader-state")}
    r = office.cli("leader", "seal", str(minutes), "--level", "SECRET", "--compartment",
                   "BOARD", "--justification", "minutes", env=machine)
    assert r.exit_code == 0, r.stderr
    r = office.cli("leader", "open", r.stdout.split()[0], "-o", str(tmp_path / "out"),
                   env=machine)
    assert r.exit_code == 0, r.stderr
    log_dir = office.path / "audit"
    lines = lines_of(log_dir)
    k = next(i for i, line in enumerate(lines) if b'"justification":"minutes"' in line)
    r = office.cli("leader", "audit", "prove", str(k), env=machine)
    assert r.exit_code == 0, r.stderr  # this machine has now read every line
    forged = [*lines[:k], lines[k].replace(b"minutes", b"MINUTES"), *lines[k + 1:]]
    write_lines(log_dir, forged)
    leaves = [leaf_hash(line) for line in forged]
    (log_dir / "hashes").write_bytes(stored_order(leaves))
    log = AuditLog.open(log_dir)
    assert log.checkpoint_signer is not None
    note = Checkpoint(log.origin or "", len(forged), tree_root(leaves)).sign(
        [log.checkpoint_signer])
    (log_dir / "checkpoints" / str(len(forged))).write_bytes(note)
    r = office.cli("leader", "audit", "prove", str(k), env=machine)
    assert r.exit_code == 4 and r.stdout == "", (r.stdout, r.stderr)
    assert "first 5 lines are not those this machine read" in r.stderr
    assert office.cli("leader", "audit", "verify", env=machine).exit_code == 4
