"""``vault identity new`` and ``vault identity show``, end to end, with the
stock age binary as the judge of the files written."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cli_support import (
    PASSPHRASE,
    age_decrypt,
    age_decrypt_on_terminal,
    age_encrypt_to,
    assert_error,
    run,
    run_script,
)
from tty_support import with_tty


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _passphrase_file(tmp_path: Path, value: str = PASSPHRASE) -> Path:
    p = tmp_path / "passphrase"
    p.write_text(value + "\n")
    return p


def test_new_without_passphrase_is_a_stock_age_identity(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    r = run("identity", "new", "clerk", "-o", str(key), "--no-passphrase")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "clerk" in r.stderr and "age1" in r.stderr
    assert _mode(key) == 0o600
    text = key.read_text()
    assert "AGE-SECRET-KEY-1" in text
    assert "AGE-SECRET-KEY-1" not in r.stderr  # the secret is never printed

    shown = run("identity", "show", str(key), "--json")
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["name"] == "clerk"
    assert data["recipient"].startswith("age1")
    assert data["signing_key"].startswith("ed25519:")
    assert data["fingerprint"].startswith("SHA256:")

    secret = tmp_path / "memo.age"
    secret.write_bytes(age_encrypt_to(data["recipient"], b"staff memo\n"))
    out = age_decrypt(key, secret)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"staff memo\n"


def test_new_with_passphrase_file_is_encrypted_and_stock_age_accepts_it(tmp_path: Path) -> None:
    key = tmp_path / "leader.key"
    env = {"VAULT_PASSPHRASE_FILE": str(_passphrase_file(tmp_path))}
    r = run("identity", "new", "leader", "-o", str(key), env=env)
    assert r.exit_code == 0, r.stderr
    assert _mode(key) == 0o600
    text = key.read_text()
    assert "AGE-SECRET-KEY-1" not in text
    assert "passphrase" in r.stderr

    shown = run("identity", "show", str(key), "--json", env=env)
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["name"] == "leader"

    secret = tmp_path / "plan.age"
    secret.write_bytes(age_encrypt_to(data["recipient"], b"five-year plan\n"))
    out = tmp_path / "plan.txt"
    assert age_decrypt_on_terminal(key, secret, out, PASSPHRASE) == 0
    assert out.read_bytes() == b"five-year plan\n"


def test_show_text_lists_what_the_officer_copies(tmp_path: Path) -> None:
    key = tmp_path / "officer.key"
    assert run("identity", "new", "officer", "-o", str(key), "--no-passphrase").exit_code == 0
    data = json.loads(run("identity", "show", str(key), "--json").stdout)
    r = run("identity", "show", str(key))
    assert r.exit_code == 0
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert lines["name"] == "officer"
    assert lines["recipient"] == data["recipient"]
    assert lines["signing_key"] == data["signing_key"]
    assert r.stderr == ""


def test_show_with_wrong_passphrase_fails_cleanly(tmp_path: Path) -> None:
    key = tmp_path / "leader.key"
    env = {"VAULT_PASSPHRASE_FILE": str(_passphrase_file(tmp_path))}
    assert run("identity", "new", "leader", "-o", str(key), env=env).exit_code == 0
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    r = run("identity", "show", str(key), env={"VAULT_PASSPHRASE_FILE": str(wrong)})
    assert r.exit_code != 0
    assert_error(r, r.exit_code)
    assert PASSPHRASE not in r.stderr and "not the passphrase" not in r.stderr


def test_new_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    key.write_text("precious\n")
    r = run("identity", "new", "clerk", "-o", str(key), "--no-passphrase")
    assert_error(r, 2, "already exists")
    assert "hint:" in r.stderr
    assert key.read_text() == "precious\n"


def test_new_without_terminal_or_passphrase_file_is_a_usage_error(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    r = run("identity", "new", "clerk", "-o", str(key), env={"VAULT_PASSPHRASE_FILE": ""})
    assert_error(r, 2, "passphrase")
    assert "hint: set VAULT_PASSPHRASE_FILE" in r.stderr
    assert not key.exists()


def test_group_readable_identity_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    assert run("identity", "new", "clerk", "-o", str(key), "--no-passphrase").exit_code == 0
    os.chmod(key, 0o644)
    r = run("identity", "show", str(key))
    assert_error(r, 2)
    assert "chmod 600" in r.stderr


def test_missing_name_is_a_usage_error(tmp_path: Path) -> None:
    r = run("identity", "new", "-o", str(tmp_path / "x.key"))
    assert_error(r, 2, "missing argument")


def test_installed_script_asks_twice_at_the_terminal(tmp_path: Path) -> None:
    # Through the real console script, on a real pseudo-terminal.
    from cli_support import VAULT

    assert VAULT is not None
    key = tmp_path / "typed.key"
    env = {k: v for k, v in os.environ.items() if k != "VAULT_PASSPHRASE_FILE"}
    status, seen, answered = with_tty([VAULT, "identity", "new", "typed", "-o", str(key)],
                                      [PASSPHRASE, PASSPHRASE, PASSPHRASE], env=env)
    assert status == 0, seen
    assert answered == 2, seen  # asked, then asked to repeat
    assert b"repeat" in seen.lower()
    assert PASSPHRASE.encode() not in seen  # never echoed
    assert "AGE-SECRET-KEY-1" not in key.read_text()
    shown = run_script(
        "identity", "show", str(key), "--json",
        env={"VAULT_PASSPHRASE_FILE": str(_passphrase_file(tmp_path))},
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "typed"
