"""The limits docs/THREAT-MODEL.md states, shown to hold exactly as written
-- what the vault does not protect, and where its protection begins -- so
that the document cannot drift from the code in either direction.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import run
from vault_helpers import Office, doc_path, held_secret_keys, make_office, opens_with

import vault
from vault._atomic import atomic_writer, remove_stale_temps
from vault.errors import AuditIntegrityError, DeniedError, StateError

ROOT = Path(__file__).resolve().parent.parent


def test_every_claim_names_a_test_that_exists() -> None:
    doc = (ROOT / "docs" / "THREAT-MODEL.md").read_text(encoding="utf-8")
    refs = re.findall(r"`(test_\w+\.py)::(\w+)`|`::(\w+)`", doc)
    assert len(refs) > 50
    current = ""
    for file, name, same_file in refs:
        current = file or current
        source = (ROOT / "tests" / current).read_text(encoding="utf-8")
        assert f"def {name or same_file}(" in source, (current, name or same_file)


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return make_office(tmp_path / "office")


def test_embargo_is_enforced_by_the_policy_not_by_keys(office: Office, tmp_path: Path) -> None:
    # A clerk cleared for BOARD holds the class key; the embargo rule keeps
    # the vault from opening it for them -- but the key itself opens it.
    later = datetime.now(UTC) + timedelta(days=30)
    doc = office.as_("leader").seal(office.file("decision.txt", b"embargoed decision"),
                                    level="CONFIDENTIAL", compartments=["BOARD"],
                                    embargo_until=later).id
    with pytest.raises(DeniedError, match="embargo"):
        office.as_("clerk").open(doc, io.BytesIO())
    assert opens_with(held_secret_keys(office, "clerk"), doc_path(office, doc), tmp_path)


def test_revocation_protects_the_future_not_the_past(office: Office, tmp_path: Path) -> None:
    secret = office.as_("leader").seal(office.file("s.txt", b"before"), level="SECRET",
                                       compartments=["BOARD"]).id
    kept_keys = held_secret_keys(office, "deputy")  # what the deputy could copy
    kept_copy = tmp_path / "copy.age"
    shutil.copy(doc_path(office, secret), kept_copy)
    office.apply({"clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}"
                  "\n  outsider:": "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}"
                  "\n  outsider:"})
    office.as_("leader").rotate()  # rewrap what the officer could not
    after = office.as_("leader").seal(office.file("t.txt", b"after"), level="SECRET",
                                      compartments=["BOARD"]).id
    # The future is safe: neither the rewrapped nor the new document opens.
    assert not opens_with(kept_keys, doc_path(office, secret), tmp_path)
    assert not opens_with(kept_keys, doc_path(office, after), tmp_path)
    # The past is not: a copy made before still opens with the keys kept.
    assert opens_with(kept_keys, kept_copy, tmp_path)


def test_a_folder_writer_can_delete_a_document_and_its_records(office: Office,
                                                               tmp_path: Path) -> None:
    """... without a trace that a machine new to the vault can see, until a
    checkpoint covering the records has left the machine: then verification
    against it fails. A machine that read the log before refuses it."""
    clerk = office.as_("clerk")
    keep = clerk.seal(office.file("a.txt", b"stays"), level="INTERNAL", compartments=["STAFF"])
    gone = clerk.seal(office.file("b.txt", b"goes"), level="INTERNAL", compartments=["STAFF"])
    published = tmp_path / "published.checkpoint"
    published.write_bytes(vault.Vault(office.path).audit.checkpoint())  # sent to auditors
    # The insider deletes the document, the records naming it, and every
    # file that would betray the change (hashes, stored checkpoints).
    doc_path(office, gone.id).unlink()
    log = office.path / "audit" / "log"
    lines = log.read_bytes().split(b"\n")[:-1]
    log.write_bytes(b"".join(x + b"\n" for x in lines if gone.id.encode() not in x))
    for name in ("hashes", "index"):
        (office.path / "audit" / name).unlink(missing_ok=True)
    shutil.rmtree(office.path / "audit" / "checkpoints")
    (office.path / "audit" / "checkpoints").mkdir(mode=0o700)
    # This machine read the log before: it says the log was rolled back.
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"):
        office.as_("leader").ls()
    # From a machine new to the vault (its own state folder), nothing looks wrong ...
    fresh = tmp_path / "new-workstation"
    r = run("audit", "verify", "--log", str(office.path / "audit"))
    assert r.exit_code == 0, r.stderr
    with vault.Vault(office.path, state_dir=fresh) as v:
        assert v.doctor().ok
    with vault.Vault(office.path, office.ids["leader"], state_dir=fresh) as v:
        assert [d.id for d in v.ls()] == [keep.id]
    # ... but the checkpoint that left the machine catches it.
    r = run("audit", "verify", "--log", str(office.path / "audit"), "--checkpoint",
            str(published))
    assert r.exit_code == 4, (r.stdout, r.stderr)


def test_a_document_rolled_back_alone_is_refused(office: Office, tmp_path: Path) -> None:
    # An older copy of a document is validly signed, but its header is not
    # the one the audit log records: every machine refuses it, and the log
    # says what the label should be. (Rolling back the log too is the
    # deletion above.)
    doc = office.as_("leader").seal(office.file("r.txt", b"rolled"), level="INTERNAL",
                                    compartments=["STAFF"]).id
    old = tmp_path / "old.age"
    shutil.copy(doc_path(office, doc), old)
    office.as_("leader").reclassify(doc, level="CONFIDENTIAL", justification="more sensitive")
    shutil.copy(old, doc_path(office, doc))
    for state in (None, tmp_path / "new-workstation"):
        with vault.Vault(office.path, office.ids["leader"], state_dir=state) as v, \
                pytest.raises(StateError, match="rolled back or replaced"):
            v.info(doc)
    records = list(vault.Vault(office.path).audit.records(doc=doc, action="reclassify",
                                                          outcome="allowed"))
    assert "CONFIDENTIAL" in records[-1].reason  # the log says what the label should be


_WRITER = textwrap.dedent("""
    import sys, time
    from vault._atomic import atomic_writer
    with atomic_writer(sys.argv[1], mode=0o600) as f:
        f.write(b"PARTIAL PLAINTEXT")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
""")


def test_killed_writers_temporaries_are_swept_live_ones_kept(tmp_path: Path) -> None:
    """docs/THREAT-MODEL.md, "Temporary files": where the kernel cannot
    link an anonymous file into place, a writer killed mid-write leaves a
    named temporary (owner-only); the next write into that folder removes
    it, and never a live writer's."""
    dest = tmp_path / "opened.txt"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(dest)],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
    temps = [p for p in tmp_path.iterdir() if p.name.startswith(".vault-tmp-")]
    assert not dest.exists()
    if temps:  # named temporaries on this machine
        (temp,) = temps
        assert temp.stat().st_mode & 0o777 == 0o600
        assert remove_stale_temps(tmp_path, only_ours=True) == []  # alive: kept
        assert temp.exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".vault-tmp-")]
    assert left == temps  # the kill left it, or nothing at all (anonymous file)
    with atomic_writer(tmp_path / "next.txt", sweep=True) as f:
        f.write(b"the next run")
    assert sorted(os.listdir(tmp_path)) == ["next.txt"]
