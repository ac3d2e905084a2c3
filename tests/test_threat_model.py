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
from typing import Any

import pytest
from cli_support import run
from vault_helpers import Office, doc_path, held_secret_keys, make_office, opens_with

import vault
from vault._atomic import atomic_writer, remove_stale_temps
from vault.errors import AuditIntegrityError, DeniedError, StateError

ROOT = Path(__file__).resolve().parent.parent


def test_every_claim_names_a_test_that_exists() -> None:
    doc = (ROOT / "docs" / "THREAT-MODEL.md").read_text(encoding="utf-8")
    refs = re.findall(r"`((?:\w+/)?test_\w+\.py)::(\w+)(?:\[[^]`]*\])?`|`::(\w+)`", doc)
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


def _hide_the_tail(office: Office, size: int) -> None:
    """What a folder writer does to make the newest records disappear: the
    log cut back to ``size`` lines, and every file that would betray it
    (derived hashes and offsets, stored checkpoints) removed."""
    office.raw.truncate_audit(size)
    for name in ("hashes", "index"):
        (office.path / "audit" / name).unlink(missing_ok=True)
    shutil.rmtree(office.path / "audit" / "checkpoints")
    (office.path / "audit" / "checkpoints").mkdir(mode=0o700)


def test_a_folder_writer_can_delete_a_document_and_its_records(office: Office,
                                                               tmp_path: Path) -> None:
    """... when they are the newest records: unseen by a machine that never
    read them, until a checkpoint covering them has left the machine. Any
    machine user who read them before raises the alarm."""
    clerk = office.as_("clerk")
    keep = clerk.seal(office.file("a.txt", b"stays"), level="INTERNAL", compartments=["STAFF"])
    size = len(office.raw.audit_lines())
    gone = clerk.seal(office.file("b.txt", b"goes"), level="INTERNAL", compartments=["STAFF"])
    published = tmp_path / "published.checkpoint"
    published.write_bytes(vault.Vault(office.path).audit.checkpoint())  # sent to auditors
    doc_path(office, gone.id).unlink()
    _hide_the_tail(office, size)
    # A machine that never read those records sees nothing wrong ...
    with vault.Vault(office.path, office.ids["leader"], state_dir=tmp_path / "fresh") as v:
        assert [d.id for d in v.ls()] == [keep.id]
        assert v.doctor().ok
        assert v.verify_audit()
    r = run("audit", "verify", "--log", str(office.path / "audit"))
    assert r.exit_code == 0, r.stderr
    # ... the machine that read them refuses to go on ...
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"):
        office.as_("leader").ls()
    # ... and so does the checkpoint that left the machine.
    r = run("audit", "verify", "--log", str(office.path / "audit"), "--checkpoint",
            str(published))
    assert r.exit_code == 4, (r.stdout, r.stderr)


def test_a_folder_writer_can_rewrite_their_own_earlier_record_for_a_new_machine(
        tmp_path: Path) -> None:
    """A limit (THREAT-MODEL.md §5.5): a record's signature covers only the
    line before its run (AUDIT.md §4). The deputy, an administrator under
    version 2 and revoked by version 3, rewrites a record of his own from
    before, re-signed over the same chain, into a policy version that keeps
    him an administrator. A machine that read the log before stops with
    the alarm and verification fails, naming the next record; a machine
    that reads it for the first time counts the rewritten record, and the
    officer's version 3 does not follow it."""
    import base64
    import hashlib
    import json

    from vault._primitives import canonical_json
    from vault.audit._chain import SIGNING_CONTEXT
    from vault.audit._hashing import leaf_hash

    office = make_office(tmp_path / "o", post_quantum=False)
    pq = {"version: 1\n": "version: 1\npost_quantum: off\n"}
    deputy_admin = {**pq, "    members: [officer]\n": "    members: [officer, deputy]\n"}
    office.as_("officer").apply_policy(office.write_policy(deputy_admin))
    office.as_("deputy").ls()
    log = office.path / "audit" / "log"
    lines = log.read_bytes().split(b"\n")[:-1]
    mine = max(i for i, x in enumerate(lines) if json.loads(x)["actor"]["name"] == "deputy")
    office.as_("leader").ls()
    office.as_("officer").apply_policy(office.write_policy(pq))  # the deputy is out
    lines = log.read_bytes().split(b"\n")[:-1]
    text = office.policy_text({**deputy_admin, "description: Classification policy":
                               "description: The deputy's policy"})
    body = {k: v for k, v in json.loads(lines[mine]).items() if k != "sig"}
    body.update(action="policy-apply", outcome="done", doc=None, label=None, rules=[],
                reason="", state={"policy": {"version": 3, "text": text,
                                             "sha256": hashlib.sha256(text.encode()).hexdigest()}})
    chain = hashlib.sha256(leaf_hash(lines[mine - 1])).digest()
    sig = office.ids["deputy"].signing_key.sign(SIGNING_CONTEXT + chain + canonical_json(body))
    lines[mine] = canonical_json({**body, "sig": base64.b64encode(sig).decode()})
    log.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"):
        office.as_("officer").ls()  # a machine that read the log before
    r = run("--vault", str(office.path), "audit", "verify",  # signatures checked, anew
            env={"VAULT_STATE_DIR": str(tmp_path / "auditor")})
    assert r.exit_code == 4 and f"record {mine + 1} " in r.stderr, r.stderr
    with vault.Vault(office.path, office.ids["leader"], state_dir=tmp_path / "new") as v:
        assert [(p.version, p.applied_by) for p in v.policy_versions][-1] == (3, "deputy")
        assert not v.doctor().ok  # the next record's bad signature, named


def test_an_upgrade_of_this_machines_record_keeps_what_it_verified(office: Office,
                                                                    tmp_path: Path) -> None:
    """A newer vault version reads a record of the vault from the version
    before (schema 5) in place: the pin and the trusted tip stay, so a
    machine that saw the newest records still raises the alarm when they
    were cut away while it was being upgraded. Rebuilt from the log
    instead, it would be new to the vault and see nothing wrong."""
    state = tmp_path / "state"
    with vault.Vault(office.path, office.ids["leader"], state_dir=state) as leader:
        leader.seal(office.file("a.txt", b"stays"), level="INTERNAL", compartments=["STAFF"])
        size = len(office.raw.audit_lines())
        gone = leader.seal(office.file("b.txt", b"goes"), level="INTERNAL",
                           compartments=["STAFF"])
        path = leader._s.trusted.store.path
    assert path is not None
    as_schema_5(path)
    doc_path(office, gone.id).unlink()
    _hide_the_tail(office, size)
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"), \
            vault.Vault(office.path, office.ids["leader"], state_dir=state) as leader:
        leader.ls()


def as_schema_5(path: str) -> None:
    """A record of the vault as the version before left it: no listing entries."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("ALTER TABLE docs DROP COLUMN label")
    db.execute("ALTER TABLE docs DROP COLUMN listed")
    db.execute("ALTER TABLE docs DROP COLUMN pins")
    db.execute("ALTER TABLE pending DROP COLUMN time")
    db.execute("DROP TABLE original_leaves")
    db.execute("DROP TABLE tip_leaves")
    db.execute("PRAGMA user_version=5")
    db.commit()
    db.close()


def test_a_folder_writer_can_roll_a_document_back(office: Office, tmp_path: Path) -> None:
    """... only together with the newest records of the log, with the same
    limits as a deletion: an older copy of the document on its own is refused."""
    doc = office.as_("leader").seal(office.file("r.txt", b"rolled"), level="INTERNAL",
                                    compartments=["STAFF"]).id
    old, version = doc_path(office, doc).read_bytes(), office.raw.current(doc)
    size = len(office.raw.audit_lines())
    office.as_("leader").reclassify(doc, level="CONFIDENTIAL", justification="more sensitive")
    published = office.as_("officer").audit.checkpoint()
    # The file alone rolled back: the log records another header.
    office.raw.set_doc_version_bytes(doc, office.raw.current(doc), old)
    with pytest.raises(StateError):
        office.as_("registrar").open(doc, io.BytesIO())
    # The file and the log's tail: a machine that never saw the change accepts
    # the old label; the machine that saw it, and the checkpoint, do not.
    office.raw.delete_doc_version(doc, office.raw.current(doc))
    office.raw.set_doc_version_bytes(doc, version, old)
    _hide_the_tail(office, size)
    with vault.Vault(office.path, office.ids["registrar"], state_dir=tmp_path / "fresh") as v:
        assert v.info(doc).label.level == "INTERNAL"
        with pytest.raises(AuditIntegrityError):
            v.verify_audit(trusted_checkpoint=published)
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"):
        office.as_("registrar").open(doc, io.BytesIO())


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


# A policy rule that releases documents once their declassify-on date is due
# (us-eo13526's automatic declassification, here for the office's clerks).
_RELEASE_WHEN_DUE = """
  - id: clerks-release-due
    description: Clerks release documents whose declassify-on date has passed.
    effect: allow
    actions: [declassify]
    who: {groups: [clerks]}
    label: {max: CONFIDENTIAL}
    when: {declassify_on: due}
    require: [justification]

  - id: leaders-shred"""


def test_a_record_dated_ahead_meets_a_time_rule_early(tmp_path: Path) -> None:
    """A record's time is its writer's: a clerk whose modified client dates
    its records past a document's declassify-on date gets the release the
    rule gives only then, and every machine's replay agrees -- on the
    record, signed, with the time it claims."""
    import datetime as dt
    from unittest import mock

    import vault._ops.change as change
    import vault.audit._log as log_module
    import vault.policy._decide as decide

    office = make_office(tmp_path, edit={"\n  - id: leaders-shred": _RELEASE_WHEN_DUE})
    doc = office.as_("leader").seal(io.BytesIO(b"staff list"), filename="s.txt",
                                    level="CONFIDENTIAL", compartments=["STAFF"],
                                    declassify_on="2035-01-01", justification="list").id
    with pytest.raises(DeniedError):
        office.as_("clerk").declassify([doc], justification="release")
    ahead = dt.datetime(2035, 1, 2, tzinfo=dt.UTC)

    class Ahead(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return ahead if tz else ahead.replace(tzinfo=None)

    with mock.patch.object(log_module, "now", lambda: "2035-01-02T00:00:00.000000Z"), \
            mock.patch.object(decide, "datetime", Ahead), \
            mock.patch.object(change, "datetime", Ahead):
        office.as_("clerk").declassify([doc], justification="release")
    out = io.BytesIO()
    office.as_("outsider").open(doc, out)
    assert out.getvalue() == b"staff list"
