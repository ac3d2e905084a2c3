"""How the CLI behaves: one exit code per kind of outcome (README "Exit
codes"), data on stdout, ``vault: <lowercase message>`` and ``hint:`` lines
on stderr, never a traceback -- checked in-process and through the
installed ``vault`` script."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cli_support import (
    PASSPHRASE,
    Office,
    assert_error,
    make_office,
    run,
    run_script,
)

from vault_cli import _progress

MEMO = b"Board decision: the office moves next quarter.\n"


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Office:
    o = make_office(tmp_path_factory.mktemp("conduct"))
    (o.root / "memo.txt").write_bytes(MEMO)
    return o


@pytest.fixture(scope="module")
def board(office: Office) -> str:
    return office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment", "BOARD")


def _script_env(o: Office, who: str) -> dict[str, str]:
    return {"VAULT_DIR": str(o.vault), "VAULT_IDENTITY": str(o.people[who].key)}


def _assert_script_error(r: object, code: int, fragment: str = "") -> None:
    import subprocess

    assert isinstance(r, subprocess.CompletedProcess)
    err = r.stderr.decode()
    assert r.returncode == code, (r.returncode, err)
    assert err.startswith("vault: "), err
    assert "Traceback" not in err
    assert fragment.lower() in err.lower(), err


# --------------------------------------------------------------------------
# Each exit code, in-process.


def test_exit_0_success_data_on_stdout_only(office: Office, board: str) -> None:
    r = office.as_("leader", "open", board, "-o", "-")
    assert r.exit_code == 0
    assert r.stdout_bytes == MEMO
    assert r.stderr == ""


def test_exit_1_other_error(office: Office, board: str) -> None:
    # A malformed policy file: nothing is installed.
    bad = office.root / "broken.yaml"
    bad.write_text("version: 1\nname: office\nlevels: [\n")
    r = office.as_("officer", "policy", "apply", str(bad))
    assert_error(r, 1, "broken.yaml")
    assert r.stdout == ""


def test_exit_2_usage(office: Office, board: str) -> None:
    r = office.as_("leader", "shred", board)  # no --justification
    assert_error(r, 2, "missing option '--justification'")
    assert "hint: see 'vault shred --help'" in r.stderr
    r = run("--vault", str(office.vault), "open", board)  # no identity
    assert_error(r, 2, "no identity given")
    assert "hint: pass --identity FILE, or set VAULT_IDENTITY" in r.stderr
    r = run("--identity", str(office.people["leader"].key), "ls", env={"VAULT_DIR": ""})
    assert_error(r, 2, "no vault given")
    r = run("frobnicate")
    assert_error(r, 2, "no such command")
    r = run("--vault", str(office.root / "not-a-vault"), "--identity",
            str(office.people["leader"].key), "ls")
    assert_error(r, 2, "no vault at")
    # An output file in a folder that does not exist is a bad argument,
    # refused before anything is decided or recorded.
    before = len(office.audit_records())
    missing = office.root / "no" / "such" / "folder" / "memo.txt"
    r = office.as_("leader", "open", board, "-o", str(missing))
    assert_error(r, 2, "folder does not exist")
    assert r.stdout == ""
    assert len(office.audit_records()) == before


def test_exit_3_denied(office: Office, board: str) -> None:
    r = office.as_("outsider", "open", board, "-o", "-")
    assert_error(r, 3, "denied")
    assert "outsiders-stay-out" in r.stderr
    assert any(line.startswith("hint: ") for line in r.stderr.splitlines())
    assert r.stdout == ""


def test_exit_4_integrity(office: Office, board: str) -> None:
    path = office.doc_path(board)
    pristine = path.read_bytes()
    try:
        path.write_bytes(pristine[:-1] + bytes([pristine[-1] ^ 0x80]))
        r = office.as_("leader", "open", board, "-o", str(office.root / "tampered.txt"))
        assert_error(r, 4)
        assert not (office.root / "tampered.txt").exists()
    finally:
        path.write_bytes(pristine)


def test_exit_5_no_key(office: Office, board: str) -> None:
    # The policy clears the leader, but the leader's keyring is gone.
    from vault.store.base import owner_key

    keyring = office.vault / "keyrings" / owner_key(office.people["leader"].recipient)
    moved = office.root / "keyring-aside"
    keyring.rename(moved)
    try:
        r = office.as_("leader", "open", board, "-o", "-")
        assert_error(r, 5, "no key")
        assert r.stdout == ""
    finally:
        moved.rename(keyring)
    r = office.as_("leader", "open", board, "-o", "-")
    assert r.exit_code == 0


def test_exit_5_wrong_passphrase(tmp_path: Path) -> None:
    key = tmp_path / "x.key"
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text(PASSPHRASE + "\n")
    good.chmod(0o600)
    bad.write_text("guess\n")
    bad.chmod(0o600)
    assert run("identity", "new", "x", "-o", str(key),
               env={"VAULT_PASSPHRASE_FILE": str(good)}).exit_code == 0
    (tmp_path / "x.key.pub").unlink()  # else show reads the public part, no passphrase
    r = run("identity", "show", str(key), env={"VAULT_PASSPHRASE_FILE": str(bad)})
    assert_error(r, 5, "wrong passphrase")
    assert "guess" not in r.stderr


def _seal_stopped_by(office: Office, signum: int) -> tuple[int, bytes, str, dict[str, Any]]:
    """A seal that reads its input, stopped by ``signum`` while it waits for
    more: its exit code, stdout, stderr and the attempt's one record."""
    import subprocess
    import time

    from cli_support import VAULT

    assert VAULT is not None
    env = {**os.environ, **_script_env(office, "clerk")}
    before = len(office.audit_records())
    seal = subprocess.Popen([VAULT, "seal", "-", "--level", "C", "--compartment", "FINANCE"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert seal.stdin is not None
    seal.stdin.write(b"the first part of a long document\n")
    seal.stdin.flush()
    # Intake reads the whole input before deciding: wait until it waits for more.
    wchan = f"/proc/{seal.pid}/wchan"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.2)
        with open(wchan) as f:
            if "pipe" in f.read():
                break
    seal.send_signal(signum)
    out, err = seal.communicate(timeout=30)
    (record,) = office.audit_records()[before:]
    assert (record["action"], record["outcome"]) == ("seal", "error")
    assert not list((office.vault / "docs").glob(f"{record['doc']}.*"))
    return seal.returncode, out, err.decode(), record


def test_exit_130_interrupted(office: Office) -> None:
    """Ctrl-C while a seal reads its input: exit 130, no traceback, no
    document, and the attempt's outcome on the record."""
    import signal

    code, out, err, record = _seal_stopped_by(office, signal.SIGINT)
    assert code == 130, err
    assert out == b""
    assert err.strip() == "vault: interrupted"  # after a new line, off the ^C
    assert record["reason"] == "KeyboardInterrupt"


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_terminated_or_hung_up_ends_as_ctrl_c_does(office: Office, name: str) -> None:
    """A stopped service or a closed ssh session ends the command as Ctrl-C
    does: recorded as failed, nothing left behind; 128 + the signal."""
    import signal

    signum = getattr(signal, name)
    code, out, err, record = _seal_stopped_by(office, signum)
    assert code == 128 + signum, err
    assert out == b""
    assert err.strip() == f"vault: terminated ({name})"
    assert record["reason"] == "Terminated"


def test_an_open_terminated_midway_leaves_no_plaintext(office: Office, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from cli_support import VAULT

    assert VAULT is not None
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20) * 96)
    doc = office.seal("clerk", big, "--level", "C", "--compartment", "BOARD")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = len(office.audit_records())
    env = {**os.environ, **_script_env(office, "leader")}
    opening = subprocess.Popen([VAULT, "open", doc, "-o", str(out_dir / "big.bin")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and opening.poll() is None and not any(
            f.stat().st_size for f in out_dir.iterdir()):
        time.sleep(0.002)  # until plaintext is being written to the temporary file
    opening.send_signal(signal.SIGTERM)
    _, err = opening.communicate(timeout=30)
    records = office.audit_records()[before:]
    if opening.returncode == 0:  # finished first: then the whole file is there
        assert (out_dir / "big.bin").read_bytes() == big.read_bytes()
        return
    assert opening.returncode == 128 + signal.SIGTERM, err
    assert list(out_dir.iterdir()) == []
    # Stopped before the decision, while its record was being written, or
    # after it: either way the attempt ends failed on the record.
    assert [r["outcome"] for r in records] in (["error"], ["failed"], ["allowed", "failed"])
    assert records[-1]["reason"] == "Terminated"


# --------------------------------------------------------------------------
# The same, through the installed console script (real process, real streams).


def test_script_exit_codes(office: Office, board: str, tmp_path: Path) -> None:
    r = run_script("open", board, "-o", "-", env=_script_env(office, "leader"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == MEMO and r.stderr == b""

    r = run_script("open", board, "-o", "-", env=_script_env(office, "outsider"))
    _assert_script_error(r, 3, "denied")
    assert r.stdout == b""

    r = run_script("shred", board, env=_script_env(office, "leader"))
    _assert_script_error(r, 2, "--justification")

    r = run_script("open", board, "-o", str(tmp_path / "a" / "b"),
                   env=_script_env(office, "leader"))
    _assert_script_error(r, 2, "folder does not exist")

    bad = tmp_path / "broken.yaml"
    bad.write_text("version: 1\nname: office\nlevels: [\n")
    r = run_script("policy", "apply", str(bad), env=_script_env(office, "officer"))
    _assert_script_error(r, 1, "broken.yaml")

    r = run_script("seal", str(office.root / "memo.txt"), "--json", "--level", "C",
                   "--compartment", "FINANCE", env=_script_env(office, "clerk"))
    assert r.returncode == 0, r.stderr
    (doc,) = json.loads(r.stdout)
    assert doc["label"]["compartments"] == ["FINANCE"]


def test_script_open_refuses_a_terminal_only_when_asked_implicitly(
    office: Office, board: str
) -> None:
    # Not a terminal: plaintext to stdout by default.
    r = run_script("open", board, env=_script_env(office, "leader"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == MEMO


def test_passphrase_protected_identity_for_vault_commands(office: Office, board: str,
                                                          tmp_path: Path) -> None:
    # An encrypted copy of the leader's key, read with VAULT_PASSPHRASE_FILE.
    from vault import load_identity

    phrase = tmp_path / "phrase"
    phrase.write_text(PASSPHRASE + "\n")
    phrase.chmod(0o600)
    enc = tmp_path / "leader-enc.key"
    load_identity(office.people["leader"].key).to_file(enc, PASSPHRASE)
    env = {"VAULT_PASSPHRASE_FILE": str(phrase)}
    r = run("--vault", str(office.vault), "--identity", str(enc), "open", board, "-o", "-",
            env=env)
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == MEMO
    r = run("--vault", str(office.vault), "--identity", str(enc), "open", board, "-o", "-",
            env={"VAULT_PASSPHRASE_FILE": ""})
    assert_error(r, 2, "passphrase")


def test_help_lists_every_command() -> None:
    r = run("--help")
    assert r.exit_code == 0
    for name in ("init", "seal", "open", "ls", "info", "export", "reclassify", "declassify",
                 "shred", "rotate", "doctor", "identity", "demo", "policy", "audit"):
        assert f"  {name} " in r.stdout, name
    r = run("policy", "--help")
    assert r.exit_code == 0 and "apply" in r.stdout
    for cmd in ("seal", "open", "reclassify", "identity"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and r.stdout.startswith("Usage: vault ")


def test_progress_bars_only_for_large_files_on_a_terminal() -> None:
    # Under the test runner stderr is not a terminal: never a bar.
    assert not _progress.wanted(10 * _progress.LARGE_FILE)
    assert not _progress.wanted(None)
    assert os.isatty(2) or not _progress.wanted(_progress.LARGE_FILE)


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`vault open ID -o - | head -c 1`: exit 141, as for a program SIGPIPE
    ends, nothing on stderr, and the open on the record as failed."""
    import subprocess

    from cli_support import VAULT

    o = make_office(tmp_path)
    big = o.root / "big.bin"
    big.write_bytes(os.urandom(4 << 20))
    doc = o.seal("clerk", big, "--level", "PUBLIC")
    assert VAULT is not None
    proc = subprocess.Popen([VAULT, "open", doc, "-o", "-"], env={
        **os.environ, **_script_env(o, "clerk")}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert err == b""
    last = o.audit_records()[-1]
    assert (last["action"], last["outcome"]) == ("open", "failed"), last
