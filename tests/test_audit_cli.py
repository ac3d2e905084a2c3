"""`vault audit ...`: exit codes, stdout and stderr checked separately."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from audit_support import KEYS, ORIGIN, fields, lines_of, make_log, write_lines
from click.testing import CliRunner, Result

from vault.audit import AuditLog, NoteVerifier, open_checkpoint, verify_tlog_proof
from vault_cli.main import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "log"
    make_log(path, 12, every=5)
    return path


def test_key(log_dir: Path) -> None:
    r = run("audit", "key", "--log", str(log_dir))
    assert r.exit_code == 0 and r.stderr == ""
    verifier = NoteVerifier.from_key(r.stdout.strip())
    assert verifier.name == ORIGIN and r.stdout.endswith("\n")


def test_log_table_json_csv(log_dir: Path) -> None:
    table = run("audit", "log", "--log", str(log_dir), "--actor", "bob")
    assert table.exit_code == 0 and table.stderr == ""
    rows = table.stdout.splitlines()
    assert rows[0].split() == [
        "SEQ", "TIME", "(UTC)", "ACTOR", "ACTION", "DOC", "LABEL", "OUTCOME", "RULES", "REASON",
    ]  # fmt: skip
    assert [row.split()[0] for row in rows[1:]] == ["1", "4", "7", "10"]
    assert "secret/ops" in rows[1] and "bob" in rows[1]

    lines = run("audit", "log", "--log", str(log_dir), "--json", "--outcome", "denied")
    expected = [line for line in lines_of(log_dir) if b'"outcome":"denied"' in line]
    assert lines.stdout.encode().splitlines() == expected  # the exact, signed bytes

    out = run("audit", "log", "--log", str(log_dir), "--csv", "--doc", "doc-2")
    parsed = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [row["seq"] for row in parsed] == ["2", "7"]
    assert parsed[0]["actor"] == "carol" and parsed[0]["compartments"] == ""
    assert parsed[1]["level"] == "secret" and parsed[1]["compartments"] == "ops"


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


def test_verify_ok(log_dir: Path) -> None:
    key = run("audit", "key", "--log", str(log_dir)).stdout.strip()
    r = run("audit", "verify", "--log", str(log_dir), "--key", key)
    assert r.exit_code == 0 and r.stderr == ""
    root = AuditLog.open(log_dir).verify().root
    assert r.stdout.splitlines() == [
        f"ok: 12 lines, root {base64.b64encode(root).decode()}",
        "checkpoints: 3 verified (newest at size 12)",
        "records after the newest checkpoint: 0, checked",
    ]
    r = run("audit", "verify", "--log", str(log_dir), "--json")
    report = json.loads(r.stdout)
    assert r.exit_code == 0 and report["ok"] is True and report["size"] == 12
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


def test_verify_with_the_wrong_key(log_dir: Path, tmp_path: Path) -> None:
    other = make_log(tmp_path / "other", 1)
    (tmp_path / "key.txt").write_text(other.verifier().verifier_key() + "\n")
    r = run("audit", "verify", "--log", str(log_dir), "--key", str(tmp_path / "key.txt"))
    assert r.exit_code == 4 and "checkpoint" in r.stderr and r.stdout == ""
    r = run("audit", "verify", "--log", str(log_dir), "--key", "not-a-key")
    assert r.exit_code == 2 and "cannot read key file" in r.stderr


def test_checkpoint_and_prove(log_dir: Path) -> None:
    log = AuditLog.open(log_dir)
    r = run("audit", "checkpoint", "--log", str(log_dir))
    assert r.exit_code == 0 and r.stderr == ""
    assert open_checkpoint(r.stdout.encode(), [log.verifier()], origin=ORIGIN).size == 12
    r = run("audit", "prove", "4", "--log", str(log_dir))
    assert r.exit_code == 0 and r.stderr == ""
    proof = verify_tlog_proof(r.stdout, [log.verifier()])
    assert proof.leaf == lines_of(log_dir)[4]
    r = run("audit", "prove", "99", "--log", str(log_dir))
    assert r.exit_code == 2 and "no record 99" in r.stderr and r.stdout == ""
    r = run("audit", "prove", "-1", "--log", str(log_dir))
    assert r.exit_code == 2


def test_usage_errors(tmp_path: Path) -> None:
    r = run("audit", "verify")
    assert r.exit_code == 2 and "vault: no audit log given" in r.stderr
    assert "hint: pass --vault DIR (or set VAULT_DIR), or --log DIR" in r.stderr
    r = run("audit", "log", "--log", str(tmp_path / "missing"))
    assert r.exit_code == 2 and "no audit log in" in r.stderr
    make_log(tmp_path / "a", 1)
    r = run("audit", "log", "--log", str(tmp_path / "a"), "--json", "--csv")
    assert r.exit_code == 2


def test_console_script(log_dir: Path) -> None:
    vault = shutil.which("vault")
    assert vault is not None, "the vault console script is not installed"
    out = subprocess.run(
        [vault, "audit", "verify", "--log", str(log_dir), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0 and json.loads(out.stdout)["size"] == 12
    (log_dir / "checkpoints" / "5").write_bytes(b"garbage")
    out = subprocess.run(
        [vault, "audit", "verify", "--log", str(log_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 4 and out.stdout == ""
    assert out.stderr.splitlines()[-1] == (
        "vault: checkpoint 5 does not verify: malformed note: no signature block"
    )
    assert "Traceback" not in out.stderr
