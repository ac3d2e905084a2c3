"""``vault agent``: the optional passphrase agent. Off unless started and
named by VAULT_AGENT_SOCK; keeps unlocked identities for its time limit
only; answers only its own user, on a socket only that user can reach."""

from __future__ import annotations

import os
import re
import shlex
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import PASSPHRASE, Office, assert_error, make_office, run, run_script

from vault import load_identity


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Office:
    o = make_office(tmp_path_factory.mktemp("agent"))
    (o.root / "memo.txt").write_bytes(b"memo\n")
    locked = o.root / "leader-locked.key"
    load_identity(o.people["leader"].key).to_file(locked, PASSPHRASE)
    (o.root / "phrase").write_text(PASSPHRASE + "\n")
    (o.root / "phrase").chmod(0o600)
    return o


def _start(*options: str) -> str:
    r = run_script("agent", "start", *options)
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"VAULT_AGENT_SOCK=(\S+); export VAULT_AGENT_SOCK;\n", r.stdout.decode())
    assert m, r.stdout
    return shlex.split(m.group(1))[0]


@pytest.fixture
def agent() -> Iterator[str]:
    sock = _start("--timeout", "10m")
    yield sock
    run("agent", "stop", env={"VAULT_AGENT_SOCK": sock})


def _ls(office: Office, env: dict[str, str]) -> object:
    return run("--vault", str(office.vault), "--identity", str(office.root / "leader-locked.key"),
               "ls", "--json", env=env)


def test_the_agent_spares_the_passphrase_for_its_time_limit(office: Office, agent: str) -> None:
    folder = os.path.dirname(agent)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(agent).st_mode) == 0o600
    no_phrase = {"VAULT_AGENT_SOCK": agent, "VAULT_PASSPHRASE_FILE": ""}
    r = _ls(office, no_phrase)
    assert_error(r, 2, "no terminal")  # not unlocked yet: asked for, and no terminal
    r = _ls(office, {"VAULT_AGENT_SOCK": agent,
                     "VAULT_PASSPHRASE_FILE": str(office.root / "phrase")})
    assert r.exit_code == 0, r.stderr
    r = _ls(office, no_phrase)  # now the agent answers
    assert r.exit_code == 0, r.stderr
    r = run("agent", "status", "--json", env={"VAULT_AGENT_SOCK": agent})
    assert r.exit_code == 0, r.stderr
    assert '"entries":[' in r.stdout and '"timeout":600' in r.stdout
    r = run("agent", "forget", env={"VAULT_AGENT_SOCK": agent})
    assert r.exit_code == 0 and r.stderr == "the agent holds no identity now\n"
    assert_error(_ls(office, no_phrase), 2, "no terminal")


def test_without_the_variable_the_agent_is_not_used(office: Office, agent: str) -> None:
    run("--vault", str(office.vault), "--identity", str(office.root / "leader-locked.key"),
        "ls", env={"VAULT_AGENT_SOCK": agent,
                   "VAULT_PASSPHRASE_FILE": str(office.root / "phrase")})
    r = _ls(office, {"VAULT_AGENT_SOCK": "", "VAULT_PASSPHRASE_FILE": ""})
    assert_error(r, 2, "no terminal")


def test_identities_expire_and_the_agent_leaves(office: Office) -> None:
    sock = _start("--timeout", "2s")
    r = _ls(office, {"VAULT_AGENT_SOCK": sock,
                     "VAULT_PASSPHRASE_FILE": str(office.root / "phrase")})
    assert r.exit_code == 0, r.stderr
    deadline = time.monotonic() + 20
    while os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not os.path.exists(sock)  # expired, idle, gone, its folder removed
    assert not os.path.exists(os.path.dirname(sock))
    r = run("agent", "status", env={"VAULT_AGENT_SOCK": sock})
    assert_error(r, 1, "not running")
    # A vanished agent costs nothing but the question.
    r = _ls(office, {"VAULT_AGENT_SOCK": sock,
                     "VAULT_PASSPHRASE_FILE": str(office.root / "phrase")})
    assert r.exit_code == 0, r.stderr


def test_agent_usage_errors(tmp_path: Path) -> None:
    r = run("agent", "status", env={"VAULT_AGENT_SOCK": ""})
    assert_error(r, 2, "no agent is set")
    assert 'eval "$(vault agent start)"' in r.stderr
    r = run("agent", "start", "--timeout", "forever")
    assert_error(r, 2, "not a duration")
    r = run("agent", "start", "--timeout", "48h")
    assert_error(r, 2, "24 hours")


@pytest.mark.parametrize("timeout", ["9" * 5000, "9" * 4300 + "s", "\u0661\u0662s", "1\u0662"],
                         ids=["5000-digits", "4300-digits-s", "arabic-indic-s", "mixed-digits"])
def test_a_timeout_of_thousands_of_digits_or_other_digits_is_a_usage_error(
        timeout: str) -> None:
    # int() refuses a string past 4,300 digits with a ValueError (it was an
    # internal error), and takes Arabic-Indic digits as 12.
    r = run("agent", "start", "--timeout", timeout)
    assert_error(r, 2, "not a duration")
    assert r.stdout == "" and "internal error" not in r.stderr


def test_fish_syntax(tmp_path: Path) -> None:
    sock_line = run_script("agent", "start", "--fish").stdout.decode()
    assert sock_line.startswith("set -gx VAULT_AGENT_SOCK ")
    sock = shlex.split(sock_line[len("set -gx VAULT_AGENT_SOCK "):].rstrip(";\n"))[0]
    r = run("agent", "stop", env={"VAULT_AGENT_SOCK": sock})
    assert r.exit_code == 0 and r.stderr == "agent stopped\n"


_FAKE_AGENT = """
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
os.chmod(path, 0o777)
server.listen(8)
server.settimeout(20)
print("ready", flush=True)
with open(log, "ab") as out:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            break
        with conn:
            conn.settimeout(5)
            out.write(conn.recv(1 << 20) + b"\\\\n")
            out.flush()
            conn.sendall(b'{"ok": true}\\\\n')
"""


def test_a_socket_another_user_serves_is_never_told_anything(office: Office) -> None:
    # The agent stopped; the shell still names its socket. Another local
    # user makes a socket there (in a shared /tmp anyone can): the client
    # must not send it the unlocked identity, nor take an answer from it.
    import subprocess
    import sys

    from vault_helpers import ANOTHER_USER

    if os.geteuid() != 0:
        pytest.skip("only root can run a process as another user here")
    import shutil
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="vault-agent-", dir="/tmp"))  # a shared /tmp
    shared.chmod(0o1777)
    sock, log = shared / "agent.sock", shared / "heard"

    def as_another_user() -> None:
        os.setgid(ANOTHER_USER)
        os.setuid(ANOTHER_USER)

    for python in (sys.executable, "/usr/bin/python3"):  # one the other user may run
        try:
            fake = subprocess.Popen([python, "-c", _FAKE_AGENT, str(sock), str(log)],
                                    stdout=subprocess.PIPE, preexec_fn=as_another_user)
            break
        except OSError:
            continue
    else:
        pytest.skip("no Python interpreter another user may run")
    try:
        assert fake.stdout is not None and fake.stdout.readline() == b"ready\n"
        r = _ls(office, {"VAULT_AGENT_SOCK": str(sock),
                         "VAULT_PASSPHRASE_FILE": str(office.root / "phrase")})
        assert r.exit_code == 0, r.stderr  # type: ignore[attr-defined]
        assert "served by another user" in r.stderr  # type: ignore[attr-defined]
        heard = log.read_bytes() if log.exists() else b""
        assert b"AGE-SECRET-KEY" not in heard and b'"op"' not in heard, heard
    finally:
        fake.kill()
        fake.wait()
        shutil.rmtree(shared, ignore_errors=True)


def test_a_malformed_request_does_not_stop_the_agent(agent: str) -> None:
    import socket

    from vault_cli._agent_client import ask

    for junk in (b"[" * 100_000 + b"\n", b"\xff\xfe\n", b"{}" * 10 + b"\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(agent)
            s.sendall(junk)
            s.settimeout(10)
            s.recv(1024)  # an answer, or the connection closed
    assert ask(agent, {"op": "get", "key": "nothing"}) is not None  # still there


def test_the_agent_runs_no_module_planted_in_the_folder_it_is_started_from(
        tmp_path: Path) -> None:
    # Someone who can write the folder the agent is started from (a shared
    # vault folder) plants json.py there. Started with 'python -m', the
    # agent -- the process that holds every unlocked identity -- imported
    # it from its working folder first.
    import subprocess

    from cli_support import VAULT

    shared = tmp_path / "shared"
    shared.mkdir()
    marker = tmp_path / "planted-code-ran"
    (shared / "json.py").write_text(
        "import importlib, os, sys\n"
        f"open({str(marker)!r}, 'a').write(str(os.getpid()))\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "del sys.modules['json']\n"
        "sys.path = [p for p in sys.path if os.path.abspath(p or '.') != here]\n"
        "sys.modules['json'] = importlib.import_module('json')\n")
    assert VAULT is not None
    r = subprocess.run([VAULT, "agent", "start"], cwd=shared, capture_output=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    sock = shlex.split(r.stdout.decode().split(";")[0].split("=", 1)[1])[0]
    try:
        status = run("agent", "status", "--json", env={"VAULT_AGENT_SOCK": sock})
        assert status.exit_code == 0, status.stderr
    finally:
        run("agent", "stop", env={"VAULT_AGENT_SOCK": sock})
    assert not marker.exists()
