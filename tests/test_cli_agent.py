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


def test_fish_syntax(tmp_path: Path) -> None:
    sock_line = run_script("agent", "start", "--fish").stdout.decode()
    assert sock_line.startswith("set -gx VAULT_AGENT_SOCK ")
    sock = shlex.split(sock_line[len("set -gx VAULT_AGENT_SOCK "):].rstrip(";\n"))[0]
    r = run("agent", "stop", env={"VAULT_AGENT_SOCK": sock})
    assert r.exit_code == 0 and r.stderr == "agent stopped\n"
