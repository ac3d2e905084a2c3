"""The witness job of docs/DEPLOYMENT.md §13 runs as written.

The script is taken from the document itself; only what reaches the vault's
host is stood in for: ``ssh vault@vault-host CMD`` runs CMD here, against a
real folder vault, and ``rsync`` copies its ``audit/`` folder without
``log.key``.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from office import Office, make_office

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = (ROOT / "docs" / "DEPLOYMENT.md").read_text(encoding="utf-8")


def _job_script() -> str:
    section = DEPLOYMENT.split("## 13.", 1)[1]
    match = re.search(r"```sh\n(#!/bin/sh\n.*?)```", section, re.S)
    assert match, "DEPLOYMENT.md §13 has no witness script"
    return match.group(1)


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(stat.S_IRWXU)


def _witness(tmp_path: Path, office: Office) -> tuple[Path, dict[str, str]]:
    """A witness machine: its folder, its commands, and its job."""
    home = tmp_path / "witness"
    (home / "notes").mkdir(parents=True)
    (home / "state").mkdir(mode=0o700)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "vault", f'#!/bin/sh\nexec "{sys.executable}" -m vault_cli.main "$@"\n')
    # The vault's host answers with a checkpoint signed now, unless a stale
    # answer is handed back instead (a delayed or replayed one).
    _executable(bin_dir / "ssh", '#!/bin/sh\n'
                'if [ -n "${STALE_NOTE:-}" ]; then exec cat "$STALE_NOTE"; fi\n'
                'shift; shift; shift; shift\n'
                'exec vault --vault "$VAULT_FOLDER" "$@"\n')
    _executable(bin_dir / "rsync", '#!/bin/sh\n'
                'rm -rf log && mkdir log && cp -pR "$VAULT_FOLDER"/audit/. log/ '
                '&& rm -f log/log.key\n')
    script = _job_script().replace("dir=/var/lib/vault-witness", f"dir={home}", 1)
    assert str(home) in script
    _executable(home / "vault-witness", script)
    key = subprocess.run([str(bin_dir / "vault"), "--vault", str(office.path), "audit", "key"],
                         capture_output=True, text=True, check=True).stdout
    (home / "log.pub").write_text(key, encoding="ascii")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "VAULT_FOLDER": str(office.path), "VAULT_STATE_DIR": str(home / "state")}
    return home, env


def _run(home: Path, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(home / "vault-witness")], env={**env, **extra},
                          capture_output=True, text=True, timeout=120, check=False)


def _size(note: Path) -> int:
    return int(note.read_text(encoding="utf-8").splitlines()[1])


def test_the_witness_keeps_only_checkpoints_that_go_forward(tmp_path: Path) -> None:
    office = make_office(tmp_path / "office")
    clerk = office.as_("clerk")
    clerk.seal(office.file("a.txt", b"first"), level="INTERNAL", compartments=["STAFF"])
    home, env = _witness(tmp_path, office)
    first = _run(home, env)
    assert first.returncode == 0, first.stderr
    older = (home / "latest.note").resolve()
    shutil.copy(older, tmp_path / "stale.note")
    clerk.seal(office.file("b.txt", b"second"), level="INTERNAL", compartments=["STAFF"])
    second = _run(home, env)
    assert second.returncode == 0, second.stderr
    newer = (home / "latest.note").resolve()
    assert newer != older and _size(newer) > _size(older)
    # An older checkpoint handed back later is consistent with the log (it
    # is one of its prefixes), but a witness never goes back: taken as the
    # latest, it would let the log be cut back to it unnoticed.
    stale = _run(home, env, STALE_NOTE=str(tmp_path / "stale.note"))
    assert stale.returncode != 0
    assert "smaller than the last accepted" in stale.stderr
    assert (home / "latest.note").resolve() == newer
    assert len(list((home / "notes").iterdir())) == 2
    # The same checkpoint again changes nothing and is no alarm.
    same = _run(home, env, STALE_NOTE=str(newer))
    assert same.returncode == 0, same.stderr
    # A log cut back below the latest accepted checkpoint is the alarm.
    log = office.path / "audit" / "log"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[: _size(older)]))
    kept = (home / "latest.note").read_bytes()  # the same note, kept again under a new stamp
    assert kept == newer.read_bytes()
    cut = _run(home, env, STALE_NOTE=str(tmp_path / "stale.note"))
    assert cut.returncode != 0
    assert (home / "latest.note").read_bytes() == kept
    clerk.close()


def _restart_script() -> str:
    section = DEPLOYMENT.split("## 13.", 1)[1].split("## 14.", 1)[0]
    match = re.search(r"```sh\n(#!/bin/sh\n# After an incident.*?)```", section, re.S)
    assert match, "DEPLOYMENT.md §13 has no script to restart a witness after an incident"
    return match.group(1)


def test_the_witness_starts_a_new_chain_after_an_incident(tmp_path: Path) -> None:
    # After an honest incident (a disk error changed one byte of a line; the
    # officer sealed it off and every machine verifies again) the witness's
    # check failed for good: 'verify --log' knows no incident, and neither
    # its latest note nor the stored checkpoints from before the damage
    # match the lines. DEPLOYMENT.md §13/§14 say how it goes on: the office
    # sets those stored checkpoints aside, the officer confirms a new
    # checkpoint, and the witness keeps its old notes as evidence and
    # starts a new chain from it.
    office = make_office(tmp_path / "office", post_quantum=False)
    officer = {"VAULT_STATE_DIR": str(tmp_path / "officer-state")}
    for i in range(4):
        r = office.cli("clerk", "seal", str(office.file(f"n{i}.txt", b"note %d\n" % i)))
        assert r.exit_code == 0, r.stderr
    assert office.cli("officer", "audit", "verify", env=officer).exit_code == 0
    home, env = _witness(tmp_path, office)
    first = _run(home, env)
    assert first.returncode == 0, first.stderr
    before = (home / "latest.note").resolve()
    lines = office.raw.audit_lines()
    k = len(lines) - 3
    at = lines[k].index(b'"host":"') + len(b'"host":"')
    office.raw.set_audit_line(k, lines[k][:at] + (b"Y" if lines[k][at:at + 1] == b"X" else b"X")
                              + lines[k][at + 1:])
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=officer)
    assert r.exit_code == 0, r.stderr
    assert office.cli("officer", "audit", "verify", env=officer).exit_code == 0
    stuck = _run(home, env)
    assert stuck.returncode != 0 and "modified" in stuck.stderr, stuck.stderr
    # §14 step 4: the stored checkpoints from before the damage, aside.
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for note in (office.path / "audit" / "checkpoints").iterdir():
        if int(note.name.split(".")[0]) > k:
            shutil.move(note, evidence / note.name)
    r = office.cli("officer", "audit", "verify", env=officer)
    assert r.exit_code == 0 and "incident: " in r.stderr, r.stderr
    # §13: the account on the vault's host that signs the witness's
    # checkpoints (here the witness's own state folder stands for its)
    # starts anew, signing over the lines as they are; the officer confirms
    # the checkpoint it signs; the witness restarts from it.
    shutil.move(home / "state", tmp_path / "host-state-before")
    (home / "state").mkdir(mode=0o700)
    host = {"VAULT_STATE_DIR": str(home / "state")}
    assert office.cli("officer", "audit", "verify", env=host).exit_code == 0
    r = office.cli("officer", "audit", "checkpoint", env=host)
    assert r.exit_code == 0, r.stderr
    confirmed = tmp_path / "confirmed.note"
    confirmed.write_text(r.stdout)
    r = office.cli("officer", "audit", "verify", "--checkpoint", str(confirmed), env=officer)
    assert r.exit_code == 0, r.stderr
    restart = home / "vault-witness-restart"
    _executable(restart, _restart_script().replace("dir=/var/lib/vault-witness",
                                                    f"dir={home}", 1))
    done = subprocess.run([str(restart), str(confirmed)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert (home / "latest.note").read_text() == confirmed.read_text()
    kept = [p.name for d in (home / "evidence").iterdir() for p in d.iterdir()]
    assert kept == [before.name]
    for i in range(2):
        r = office.cli("clerk", "seal", str(office.file(f"m{i}.txt", b"memo %d\n" % i)))
        assert r.exit_code == 0, r.stderr
        again = _run(home, env)
        assert again.returncode == 0, again.stderr
    assert _size((home / "latest.note").resolve()) > _size(confirmed)
