"""Claims of docs/THREAT-MODEL.md that no other test states: what a copy
of a vault shows, what an administrator who is not cleared can still do
through the policy, what a PostgreSQL application role can and cannot
change, that a new vault is post-quantum end to end, and that reading
with stock tools leaves no record.

Every test runs against a real vault (tests/office.py), on both backends
where the claim is about both.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backends import Kind, PostgresKind
from office import Office, board_plan_raised, make_office, policy_text
from pg_support import APP, Cluster, dbname_of
from vault_helpers import doc_file, forge_manifest, held_secret_keys, opens_with

import vault
from vault.age import MLKEM768X25519Identity, read_header
from vault.errors import IntegrityError, StateError
from vault.store.base import owner_key

MARKER = "COPY-CANARY-31f7"


@pytest.fixture
def office(tmp_path: Path, backend: Kind) -> Office:
    return make_office(tmp_path, backend)


def _records(office: Office) -> list[dict[str, Any]]:
    return [json.loads(line) for line in office.raw.audit_lines()]


# -- (a) an outsider with a copy --------------------------------------------------------


def test_a_copy_shows_labels_and_the_trail_but_no_titles_names_or_contents(
        office: Office) -> None:
    src = office.file(f"{MARKER}-file.txt", f"{MARKER} plaintext\n".encode() * 40)
    doc = office.as_("leader").seal(src, level="SECRET", compartments=["BOARD"],
                                    title=f"{MARKER} title").id
    office.as_("leader").open(doc, io.BytesIO())
    copy = list(office.raw.blobs())  # every object the store holds, no key at all
    # No title, file name or plaintext anywhere in it.
    assert not [name for name, data in copy if MARKER.encode() in data]
    # What it does show: each document's label and who sealed it, in clear in
    # its header ...
    header = read_header(io.BytesIO(office.raw.doc_bytes(doc)))
    label = next(s for s in header.stanzas if s.type == "vault/v2/label")
    statement = json.loads(label.body)["statement"]
    assert statement["label"]["level"] == "SECRET" and statement["sealed_by"] == "leader"
    # ... and the audit trail: who did what to which document, when.
    opened = [r for r in _records(office) if r["action"] == "open" and r["doc"] == doc]
    assert opened and opened[0]["actor"]["name"] == "leader" and opened[0]["time"]
    assert opened[0]["label"]["level"] == "SECRET"
    # ... and the policy's full text, recorded when it was installed.
    assert any(b"clerks-convey" in line for line in office.raw.audit_lines())


# -- (f) an administrator who is not cleared -----------------------------------------------


OFFICER = "clearance: {level: CONFIDENTIAL, compartments: [STAFF, HR]}"
OFFICER_SECRET = "clearance: {level: SECRET, compartments: [STAFF, HR, BOARD]}"


def test_an_administrator_who_clears_themselves_is_granted_by_the_next_key_holder(
        office: Office, tmp_path: Path) -> None:
    doc = office.as_("leader").seal(io.BytesIO(b"board minutes"), level="SECRET",
                                    compartments=["BOARD"]).id
    assert not opens_with(held_secret_keys(office, "officer"), doc_file(office, doc), tmp_path)
    report = office.apply({OFFICER: OFFICER_SECRET})
    # Nobody has handed over the key yet: the grant waits for a holder ...
    assert any(p.startswith("grant SECRET//BOARD to officer") for p in report.pending)
    assert not opens_with(held_secret_keys(office, "officer"), doc_file(office, doc), tmp_path)
    # ... whose next routine seal at that class writes it, from public keys.
    office.as_("leader").seal(io.BytesIO(b"more minutes"), level="SECRET",
                              compartments=["BOARD"])
    out = io.BytesIO()
    office.as_("officer").open(doc, out)
    assert out.getvalue() == b"board minutes"
    # All of it is on the record: the policy's full text, and the grant.
    installs = [r for r in _records(office) if (r["state"] or {}).get("policy")]
    assert OFFICER_SECRET in installs[-1]["state"]["policy"]["text"]
    assert installs[-1]["actor"]["name"] == "officer"
    assert office.as_("officer").doctor().ok


def test_a_recovery_recipient_added_by_the_administrator_receives_new_documents(
        office: Office, tmp_path: Path) -> None:
    before = office.as_("leader").seal(io.BytesIO(b"before"), level="SECRET",
                                       compartments=["BOARD"]).id
    staff = office.as_("clerk").seal(io.BytesIO(b"staff"), level="CONFIDENTIAL",
                                     compartments=["STAFF"]).id
    mine = MLKEM768X25519Identity.generate()  # the officer's own, kept off the record
    key = tmp_path / "mine.key"
    key.write_text(f"{mine}\n")
    key.chmod(0o600)
    p = tmp_path / "recovery.yaml"
    p.write_text(policy_text(office.ids, [str(office.recovery.recipient), str(mine.recipient)]))
    report = office.as_("officer").apply_policy(p)
    # Rewrapped at once: what the officer can open; the rest waits for a key holder.
    assert staff in report.rewrapped
    assert any(p.startswith(f"rewrap {before}") for p in report.pending)
    after = office.as_("leader").seal(io.BytesIO(b"after"), level="SECRET",
                                      compartments=["BOARD"]).id
    assert opens_with([str(mine)], doc_file(office, after), tmp_path)
    assert opens_with([str(mine)], doc_file(office, staff), tmp_path)
    assert not opens_with([str(mine)], doc_file(office, before), tmp_path)
    # Every document still opens for its readers, and nothing is reported.
    for doc, data in ((before, b"before"), (after, b"after")):
        out = io.BytesIO()
        office.as_("leader").open(doc, out)
        assert out.getvalue() == data
    assert office.as_("officer").doctor().ok


# -- (e) a revoked user ------------------------------------------------------------------


DEPUTY_SECRET = "clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}\n  outsider:"
DEPUTY_LOWER = "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}\n  outsider:"


def test_until_someone_cleared_rotates_the_old_key_still_opens_and_doctor_says_who_could(
        office: Office, tmp_path: Path) -> None:
    doc = office.as_("leader").seal(io.BytesIO(b"minutes"), level="SECRET",
                                    compartments=["BOARD"]).id
    kept = held_secret_keys(office, "deputy")
    office.apply({DEPUTY_SECRET: DEPUTY_LOWER})  # the officer is not cleared for SECRET
    assert opens_with(kept, doc_file(office, doc), tmp_path)  # not rewrapped yet
    problems = office.as_("officer").doctor().problems
    assert any("SECRET//BOARD" in p and "deputy" in p and "vault rotate" in p
               for p in problems), problems
    # Work to do, not damage: the hint says who must act, never "evidence".
    r = office.cli("officer", "doctor")
    assert r.exit_code == 4
    assert "hint: each problem is a rotation a change of clearances left pending: someone " \
           "cleared for the class must run 'vault rotate'; nothing was damaged" in r.stderr
    assert "evidence" not in r.stderr and "backup" not in r.stderr
    office.as_("leader").rotate()
    assert not opens_with(kept, doc_file(office, doc), tmp_path)
    assert office.as_("officer").doctor().ok


# -- (d) a cleared reader ------------------------------------------------------------------


def test_reading_with_stock_age_and_a_held_key_leaves_no_record(office: Office,
                                                                tmp_path: Path) -> None:
    doc = office.as_("clerk").seal(io.BytesIO(b"payroll"), level="CONFIDENTIAL",
                                   compartments=["FINANCE"]).id
    keys = held_secret_keys(office, "clerk")
    count = len(office.raw.audit_lines())
    assert opens_with(keys, doc_file(office, doc), tmp_path)
    assert len(office.raw.audit_lines()) == count


# -- (b) a folder writer: the whole vault replaced ---------------------------------------


def test_a_manifest_signed_by_someone_else_is_refused(office: Office, tmp_path: Path) -> None:
    office.as_("clerk").ls()  # this machine has opened the vault
    forge_manifest(office, "outsider")
    with pytest.raises(IntegrityError, match=r"vault\.json changed"):
        office.as_("clerk").ls()
    # A machine that never opened it: the log's first policy is not that officer's.
    with pytest.raises(IntegrityError), \
            vault.Vault(office.location, office.ids["clerk"], state_dir=tmp_path / "fresh") as v:
        v.ls()


def test_a_manifest_the_officer_signs_again_is_refused(office: Office, tmp_path: Path) -> None:
    # The officer can write the folder and signs manifests: they sign
    # vault.json again with a recovery recipient of their own added, and
    # record nothing. Before, a machine that had never opened the vault
    # took it, wrapped every document it sealed to the officer's key as
    # well, and doctor and audit verify were clean: the officer, not
    # cleared for SECRET, read the board's minutes, without the approval
    # the policy asks for a change of recovery recipients.
    from vault._trust.manifest import sign_statement

    office.as_("clerk").ls()  # this machine has opened the vault
    statement = json.loads(office.raw.manifest())["statement"]
    theirs = MLKEM768X25519Identity.generate()
    statement["recovery"] = [*statement["recovery"], str(theirs.recipient)]
    office.raw.set_manifest(sign_statement(office.ids["officer"], "manifest", statement))
    stored = len(list(office.raw.blobs()))
    with pytest.raises(IntegrityError, match=r"vault\.json changed"):
        office.as_("clerk").ls()
    # A machine that never opened it: the first record names another manifest.
    with pytest.raises(IntegrityError, match="no policy") as e, \
            vault.Vault(office.location, office.ids["leader"], state_dir=tmp_path / "new") as v:
        v.seal(io.BytesIO(b"board minutes"), level="SECRET", compartments=["BOARD"])
    assert "vault.json is not the manifest the vault's first record names" in str(
        e.value) + (e.value.hint or "")
    assert len(list(office.raw.blobs())) == stored  # nothing was sealed


def test_a_whole_vault_replaced_at_its_place_is_refused(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # The officer, cleared only for CONFIDENTIAL, moves the folder's
    # contents aside and makes a new vault there under the same policy text,
    # with a recovery identity they keep. Machines keep their replay per
    # vault id, so the leader's took the new id for a vault never seen, and
    # wrapped the board's next minutes to the officer's recovery key.
    import os
    import shutil

    from click.testing import CliRunner

    from vault_cli.main import cli

    office = make_office(tmp_path / "office")
    old = office.as_("leader").id
    office.as_("leader").seal(io.BytesIO(b"minutes 1"), level="SECRET", compartments=["BOARD"])
    shutil.move(office.path, tmp_path / "aside")
    os.mkdir(office.path)
    policy = tmp_path / "same.yaml"
    policy.write_text(policy_text(office.ids))
    with monkeypatch.context() as m:  # on the officer's own machine
        m.setenv("VAULT_STATE_DIR", str(tmp_path / "officers-machine"))
        made = vault.Vault.init(office.path, policy, office.ids["officer"],
                                recovery_out=tmp_path / "officers-own.key")
        new = made.id
        made.close()
    with pytest.raises(IntegrityError, match=f"this place held vault {old} when this machine "
                                             f"last opened it; it now holds vault {new}") as e:
        office.as_("leader").seal(io.BytesIO(b"minutes 2"), level="SECRET",
                                  compartments=["BOARD"])
    assert "--vault-id" in (e.value.hint or "")
    assert not list((office.path / "docs").glob("*.age"))
    # On the command line too: exit 4, nothing sealed.
    src = tmp_path / "m.txt"
    src.write_bytes(b"minutes 3")
    r = CliRunner().invoke(cli, ["--vault", str(office.path), "--identity",
                                 str(office.files["leader"]), "seal",
                                 str(src), "--level", "SECRET", "--compartment", "BOARD"])
    assert (r.exit_code, r.stdout) == (4, ""), r.stderr
    assert f"vault: this place held vault {old}" in r.stderr
    # A machine that never opened it has nothing to compare with -- unless
    # its user gives the id the officer announced (VAULT_ID).
    with pytest.raises(IntegrityError, match=f"this is vault {new}, not vault '{old}'"):
        vault.Vault(office.path, office.ids["leader"], state_dir=tmp_path / "new-laptop",
                    vault_id=old)
    assert not (tmp_path / "new-laptop" / f"{new}.sqlite").exists()
    # The new vault, once its id is confirmed, is this place's from then on.
    with vault.Vault(office.path, office.ids["leader"], vault_id=new) as v:
        assert v.id == new
    with vault.Vault(office.path, office.ids["leader"]) as v:
        assert v.id == new


def test_a_machine_that_followed_a_vault_before_places_were_kept_is_not_fooled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The leader's machine followed the vault with a release that kept no
    # places: after the upgrade, a vault made in its place was pinned as
    # new; and so was a copy of another vault it followed elsewhere (the
    # officer's scratch vault, with a recovery key of theirs).
    import os
    import shutil

    from vault.errors import UsageError

    office = make_office(tmp_path / "office")
    scratch = make_office(tmp_path / "scratch")
    state = tmp_path / "leader-state"
    with vault.Vault(office.path, office.ids["leader"], state_dir=state) as v:
        old = v.id
    with vault.Vault(scratch.path, scratch.ids["leader"], state_dir=state) as v:
        other = v.id
    shutil.rmtree(state / "places")  # as the release before left it
    shutil.move(office.path, tmp_path / "aside")
    shutil.copytree(scratch.path, office.path)
    with pytest.raises(UsageError, match=f"this place, new to it, holds vault {other}") as e:
        vault.Vault(office.path, office.ids["leader"], state_dir=state)
    assert "--vault-id" in (e.value.hint or "")
    shutil.rmtree(office.path)
    os.mkdir(office.path)
    policy = tmp_path / "same.yaml"
    policy.write_text(policy_text(office.ids))
    with monkeypatch.context() as m:
        m.setenv("VAULT_STATE_DIR", str(tmp_path / "officers-machine"))
        vault.Vault.init(office.path, policy, office.ids["officer"],
                         recovery_out=tmp_path / "officers-own.key").close()
    with pytest.raises(UsageError, match="new to it"):
        vault.Vault(office.path, office.ids["leader"], state_dir=state)
    # Each vault it followed is confirmed once where it is; then no question.
    with vault.Vault(tmp_path / "aside", office.ids["leader"], state_dir=state,
                     vault_id=old) as v:
        assert v.id == old
    with vault.Vault(scratch.path, scratch.ids["leader"], state_dir=state,
                     vault_id=other) as v:
        assert v.id == other
    with vault.Vault(tmp_path / "aside", office.ids["leader"], state_dir=state) as v:
        assert v.id == old


def test_an_administrator_who_damages_lines_first_seals_them_off(tmp_path: Path) -> None:
    # A limit (THREAT-MODEL.md §9): the officer, not cleared for BOARD, may
    # write the folder like everyone. She changes one character of each
    # signature of the leader's reclassification, then declares the lines
    # damaged -- as they now are: an incident cannot tell a disk error from
    # damage made on purpose. Every machine then ignores the records; the
    # document is missing until restored from a backup of the log. What is
    # left is on the record: the declaration names her, and her damage
    # stopped every machine that had verified the lines until she declared.
    from vault.errors import IntegrityError

    office = make_office(tmp_path / "office")
    doc, first, last = board_plan_raised(office)
    for i in range(first, last + 1):
        rec = json.loads(office.raw.audit_lines()[i])
        rec["sig"] = ("B" if rec["sig"][0] != "B" else "C") + rec["sig"][1:]
        office.raw.set_audit_line(i, json.dumps(rec, sort_keys=True, separators=(",", ":"),
                                                ensure_ascii=False).encode())
    with pytest.raises(IntegrityError):  # the leader's machine stops at the damage
        office.as_("leader").open(doc, io.BytesIO())
    with vault.Vault(office.location, office.ids["officer"], for_incident=True) as v:
        n = v.declare_incident(first, last, reason="disk error")
    record = json.loads(office.raw.audit_lines()[n])
    assert (record["action"], record["actor"]["name"]) == ("incident", "officer")
    with pytest.raises(IntegrityError, match="missing from the vault"):
        vault.Vault(office.location, office.ids["leader"],
                    state_dir=tmp_path / "new").open(doc, io.BytesIO())


def test_a_place_pinned_without_its_id_by_a_full_disk_refuses_no_new_vault(
        tmp_path: Path) -> None:
    # The clerk's first command found one free page in her state folder:
    # the place was pinned, the note of its id was not (ENOSPC, passed over
    # like any failure to keep state). Every later command saw the pin and
    # returned, so the vault looked followed before places were kept, and
    # the first new vault she opened -- a second one, or this one moved --
    # was refused as a possible replacement (exit 2), for good.
    import os

    office, other = make_office(tmp_path / "office"), make_office(tmp_path / "other")
    state = tmp_path / "clerk-state"
    with vault.Vault(office.path, office.ids["clerk"], state_dir=state) as v:
        first = v.id
    os.unlink(state / "places" / "ids" / first)  # as the full disk left it
    with vault.Vault(office.path, office.ids["clerk"], state_dir=state) as v:
        v.ls()
    assert (state / "places" / "ids" / first).exists()
    with vault.Vault(other.path, other.ids["clerk"], state_dir=state) as v:
        assert v.id != first


def test_a_vault_id_that_is_no_id_is_refused(office: Office, tmp_path: Path) -> None:
    # The id names the user's trusted state file: a manifest whose id was
    # "/tmp/x" put that file (0600 SQLite, the reference the vault is held
    # to) wherever its signer chose.
    from vault._trust.manifest import sign_statement

    statement = json.loads(office.raw.manifest())["statement"]
    statement["vault"] = str(tmp_path / "planted")
    office.raw.set_manifest(sign_statement(office.ids["officer"], "manifest", statement))
    with pytest.raises(IntegrityError, match=r"vault\.json is malformed"):
        vault.Vault(office.location, office.ids["leader"], state_dir=tmp_path / "fresh")
    assert not list(tmp_path.glob("planted*"))


def test_a_second_first_policy_naming_another_manifest_is_refused(office: Office,
                                                                   tmp_path: Path) -> None:
    # Right after init the officer records "policy version 1" again, naming
    # the digest of a manifest they sign later with a recovery recipient of
    # their own. Before, once a new machine refused the first record (its
    # manifest no longer matched), it took that later record instead.
    from vault._trust.manifest import Manifest, sign_statement

    officer = office.ids["officer"]
    old = json.loads(office.raw.manifest())["statement"]
    theirs = MLKEM768X25519Identity.generate()
    again = sign_statement(officer, "manifest",
                           {**old, "recovery": [*old["recovery"], str(theirs.recipient)]})
    with office.as_("officer") as v:
        v.audit.append({"actor": {"name": "officer", "key": officer.fingerprint},
                        "action": "administer", "outcome": "allowed", "reason": "routine",
                        "policy": old["genesis"],
                        "state": {"policy": {"version": 1, "sha256": old["genesis"],
                                             "text": office.policy.read_text(),
                                             "manifest": Manifest.load(again).digest()}}},
                       officer.signing_key)
    assert any(p.startswith("audit record 1 (policy): policy version 1 does not follow")
               for p in office.as_("clerk").doctor().problems)
    office.raw.set_manifest(again)
    stored = len(list(office.raw.blobs()))
    with pytest.raises(IntegrityError, match="no policy"), \
            vault.Vault(office.location, office.ids["leader"], state_dir=tmp_path / "new") as v:
        v.seal(io.BytesIO(b"board minutes"), level="SECRET", compartments=["BOARD"])
    assert len(list(office.raw.blobs())) == stored


def test_audit_log_shows_a_name_its_signer_could_not_sign_for_as_a_claim(
        office: Office) -> None:
    # The clerk appends a record naming the leader, signed with the clerk's
    # own key; a folder writer appends one with the leader's fingerprint and
    # no valid signature. 'vault audit log' showed both as the leader's,
    # exit 0 and nothing on stderr: only 'audit verify' said otherwise.
    from vault_helpers import forge_record_after_last

    doc = office.as_("leader").seal(io.BytesIO(b"board minutes"), level="SECRET",
                                    compartments=["BOARD"]).id
    honest = office.cli("officer", "audit", "log")
    assert honest.exit_code == 0 and honest.stderr == "", honest.stderr
    assert "(claims" not in honest.stdout
    clerk = office.ids["clerk"]
    with office.as_("clerk") as v:
        v.audit.append({"actor": {"name": "leader", "key": clerk.fingerprint},
                        "action": "export", "doc": doc,
                        "label": {"level": "SECRET", "compartments": ["BOARD"], "caveats": []},
                        "outcome": "allowed", "rules": ["leaders-export"],
                        "reason": "exported to the press", "policy": None, "state": None},
                       clerk.signing_key)
    seq = forge_record_after_last(office)
    table = office.cli("officer", "audit", "log", "--actor", "leader")
    assert table.exit_code == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "the press" in line
            or "the leader looked" in line]
    assert len(rows) == 2 and all("(claims leader)" in row for row in rows), table.stdout
    assert [line for line in table.stdout.splitlines()
            if " seal " in line and "(claims" not in line and " leader " in line]
    assert table.stderr.startswith("vault: warning: 2 records shown are not signed by the key "
                                   "the policy gave the name they carry (seq "), table.stderr
    assert f"{seq})" in table.stderr and "vault audit verify" in table.stderr
    for form in ("--json", "--jsonl", "--csv"):  # the data as stored; the warning beside it
        r = office.cli("officer", "audit", "log", form)
        assert r.exit_code == 0 and "the press" in r.stdout, r.stderr
        assert "2 records shown are not signed" in r.stderr, (form, r.stderr)
    alone = office.cli("officer", "audit", "log", "--action", "seal")
    assert alone.exit_code == 0 and alone.stderr == "", alone.stderr


def test_who_signed_under_another_name_is_named_as_themselves(office: Office) -> None:
    # The clerk records an open under the officer's name, signed with the
    # clerk's own key. 'audit log --actor clerk' found nothing (it matched
    # the name written), the CSV feed gave the officer as its actor, and
    # 'audit verify' blamed "an unknown key": the auditor was sent looking
    # for a stolen key or an outsider instead of at the clerk.
    import csv

    doc = office.as_("clerk").seal(io.BytesIO(b"rota"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    clerk = office.ids["clerk"]
    with office.as_("clerk") as v:
        seq = v.audit.append({"actor": {"name": "officer", "key": clerk.fingerprint},
                              "action": "open", "doc": doc,
                              "label": {"level": "INTERNAL", "compartments": ["STAFF"],
                                        "caveats": []},
                              "outcome": "allowed", "rules": ["open-with-need-to-know"],
                              "reason": "allowed", "policy": None, "state": None},
                             clerk.signing_key).seq
    r = office.cli("officer", "audit", "log", "--actor", "clerk", "--action", "open")
    assert r.exit_code == 0, r.stderr
    (row,) = [line for line in r.stdout.splitlines() if line.startswith(f"{seq} ")]
    assert "clerk (claims officer)" in row
    r = office.cli("officer", "audit", "log", "--csv", "--action", "open")
    assert r.exit_code == 0, r.stderr
    rows = {int(x["seq"]): x for x in csv.DictReader(io.StringIO(r.stdout))}
    assert rows[seq]["actor"] == "clerk (claims officer)"
    assert "1 record shown is not signed" in r.stderr
    # The officer's own records are theirs; the clerk's claim is not among them
    # unmarked.
    r = office.cli("officer", "audit", "log", "--actor", "officer")
    assert r.exit_code == 0
    assert [line for line in r.stdout.splitlines() if line.startswith(f"{seq} ")
            and "clerk (claims officer)" in line]
    with office.as_("officer") as v:
        mine = [(rec.seq, own, signer) for rec, own, signer in v.audit_records(actor="clerk")]
    assert (seq, False, "clerk") in mine and all(own for n, own, _ in mine if n != seq)
    r = office.cli("officer", "audit", "verify")
    assert r.exit_code == 4
    assert f"vault: record {seq} (officer) is signed by clerk's key, which the policy does " \
           "not give that name" in r.stderr, r.stderr


def test_a_record_of_a_users_key_that_carries_no_name_is_theirs(office: Office) -> None:
    # The clerk's modified client writes her open with no name, signed with
    # her own key, and leaves that key among the unnamed actors' keys. The
    # viewer showed "(unknown key)", '--actor clerk' found nothing, and
    # verify and doctor were clean: the clerk's open was nobody's.
    import csv
    import hashlib

    from vault._primitives import raw_public

    doc = office.as_("clerk").seal(io.BytesIO(b"rota"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    clerk = office.ids["clerk"]
    raw = raw_public(clerk.signing_key.public_key())
    with office.as_("clerk") as v:
        v._s.backend.register_actor(hashlib.sha256(raw).hexdigest(), raw)
        seq = v.audit.append({"actor": {"name": None, "key": clerk.fingerprint},
                              "action": "open", "doc": doc,
                              "label": {"level": "INTERNAL", "compartments": ["STAFF"],
                                        "caveats": []},
                              "outcome": "allowed", "rules": [], "reason": "allowed",
                              "policy": None, "state": None}, clerk.signing_key).seq
    r = office.cli("officer", "audit", "log", "--actor", "clerk", "--action", "open")
    assert r.exit_code == 0, r.stderr
    (row,) = [line for line in r.stdout.splitlines() if line.startswith(f"{seq} ")]
    assert "clerk (claims no name)" in row
    assert "1 record shown is not signed" in r.stderr
    r = office.cli("officer", "audit", "log", "--csv", "--action", "open")
    rows = {int(x["seq"]): x for x in csv.DictReader(io.StringIO(r.stdout))}
    assert rows[seq]["actor"] == "clerk (claims no name)"
    r = office.cli("officer", "audit", "verify")
    assert r.exit_code == 4
    assert f"vault: record {seq} carries no name but is signed by clerk's key" in r.stderr
    assert not office.as_("officer").doctor().ok


def test_audit_log_marks_every_claim_however_many_come_before(tmp_path: Path) -> None:
    # 10,000 planted records under the leader's name, then the one that
    # matters: the table marked only the first 10,000 claims it met.
    import base64

    office = make_office(tmp_path)
    doc = office.as_("leader").seal(io.BytesIO(b"board minutes"), level="SECRET",
                                    compartments=["BOARD"]).id
    lines = office.raw.audit_lines()
    last, n = json.loads(lines[-1]), len(lines)

    def forged(seq: int, action: str) -> bytes:
        record = {**last, "seq": seq, "action": action, "outcome": "allowed", "doc": doc,
                  "actor": {"key": office.ids["leader"].fingerprint, "name": "leader"},
                  "reason": action, "state": None, "request": f"{seq:032x}",
                  "sig": base64.b64encode(bytes(64)).decode()}
        return json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    with open(office.path / "audit" / "log", "ab") as f:
        f.write(b"".join(forged(n + i, "list") for i in range(10_000)) + forged(n + 10_000,
                                                                                "export"))
    r = office.cli("officer", "audit", "log", "--doc", doc, "--action", "export")
    assert r.exit_code == 0, r.stderr
    (row,) = [line for line in r.stdout.splitlines() if line.startswith(f"{n + 10_000} ")]
    assert "(claims leader)" in row
    assert "1 record shown is not signed" in r.stderr
    r = office.cli("officer", "audit", "log", "--doc", doc)
    rows = [line for line in r.stdout.splitlines()[1:] if line.split()[0].isdigit()
            and int(line.split()[0]) >= n]
    assert len(rows) == 10_001 and all("(claims leader)" in row for row in rows)
    assert "10001 records shown are not signed" in r.stderr


# -- post-quantum ------------------------------------------------------------------------


def test_a_new_vault_wraps_every_key_to_a_hybrid_recipient(office: Office) -> None:
    office.as_("clerk").seal(io.BytesIO(b"a"), level="INTERNAL", compartments=["STAFF"])
    office.as_("leader").seal(io.BytesIO(b"b"), level="SECRET", compartments=["BOARD"])
    office.apply({DEPUTY_SECRET: DEPUTY_LOWER})
    office.as_("leader").rotate()
    assert all(i.post_quantum for i in office.ids.values())
    headers = 0
    for name, data in office.raw.blobs():
        if not data.startswith(b"age-encryption.org/v1\n"):
            continue
        headers += 1
        types = {s.type for s in read_header(io.BytesIO(data)).stanzas}
        assert types <= {"mlkem768x25519", "vault/v2/label", "vault/v2/meta"}, (name, types)
        assert "mlkem768x25519" in types, name
    assert headers >= 2 + len(office.raw.keyring_files())


# -- (c) a PostgreSQL application role ---------------------------------------------------


def _app(cluster: Cluster, office: Office, sql: str, *params: Any) -> None:
    cluster.execute(sql, params, dbname=dbname_of(office.location), user=APP)


def test_a_postgresql_application_role_changes_nothing_unseen(tmp_path: Path,
                                                              pg_cluster: Cluster) -> None:
    office = make_office(tmp_path, PostgresKind(pg_cluster))
    keep = office.as_("clerk").seal(io.BytesIO(b"keep"), level="INTERNAL",
                                    compartments=["STAFF"]).id
    swapped = office.as_("clerk").seal(io.BytesIO(b"swap"), level="INTERNAL",
                                       compartments=["STAFF"]).id
    gone = office.as_("clerk").seal(io.BytesIO(b"gone"), level="INTERNAL",
                                    compartments=["STAFF"]).id
    # What the role may not touch at all.
    for sql in ("UPDATE vault.manifest SET data = data", "DELETE FROM vault.manifest",
                "UPDATE vault.audit_log SET line = line", "DELETE FROM vault.audit_log",
                "DELETE FROM vault.audit_checkpoints", "DELETE FROM vault.actors"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _app(pg_cluster, office, sql)
    # What it may change -- documents and keyring entries -- and how it shows.
    other = office.raw.doc_bytes(keep)
    _app(pg_cluster, office, "UPDATE vault.document_chunks SET data = %s WHERE vid ="
         " (SELECT vid FROM vault.documents WHERE id = %s)", other, swapped)
    _app(pg_cluster, office, "UPDATE vault.documents SET size = %s WHERE id = %s",
         len(other), swapped)
    _app(pg_cluster, office, "DELETE FROM vault.documents WHERE id = %s", gone)
    leader = owner_key(office.ids["leader"].recipient)
    outsider = owner_key(office.ids["outsider"].recipient)
    for okey, kid in office.raw.keyring_files():
        if okey == leader:  # the leader's entry, filed as the outsider's
            _app(pg_cluster, office, "INSERT INTO vault.keyrings VALUES (%s, %s, %s)",
                 outsider, kid, office.raw.keyring_entry(okey, kid))
    with pytest.raises(StateError):
        office.as_("leader").open(swapped, io.BytesIO())
    report = office.as_("officer").doctor()
    assert any(p.startswith(f"document {gone}: missing") for p in report.problems)
    assert any(swapped in p and "rolled back or replaced" in p for p in report.problems)
    assert any(f"keyrings/{outsider}/" in x for x in report.leftovers)
    out = io.BytesIO()
    office.as_("leader").open(keep, out)  # the rest goes on
    assert out.getvalue() == b"keep"



def test_a_proof_of_a_record_nobody_signed_is_refused(office: Office) -> None:
    # The clerk reads the checkpoint key (a folder writer reads audit/log.key;
    # every workstation's PostgreSQL role reads it too), signs a checkpoint
    # of the log plus one line of her own -- "leader opened SECRET//BOARD
    # BOARD-plan-2026", the leader's real fingerprint, a random signature --
    # and hands out the tlog-proof. verify_tlog_proof with the vault's
    # pinned key and origin accepted it: the record's signature covers the
    # lines before it, which the proof did not carry, so nobody checked it.
    import base64
    import os

    from vault.audit import fingerprint, verify_tlog_proof
    from vault.audit._checkpoint import Checkpoint
    from vault.audit._hashing import leaf_hash
    from vault.audit._proof import inclusion_proof, range_proof
    from vault.audit._record import canonical_json
    from vault.audit._tlogproof import TlogProof, attested_extra
    from vault.audit._tree import tree_root
    from vault.errors import ProofError

    office.as_("leader").seal(io.BytesIO(b"board plan"), level="SECRET", compartments=["BOARD"])
    clerk = office.ids["clerk"]
    with office.as_("clerk") as v:
        pinned, origin, signer = v.audit.verifier(), v.audit.origin, v.audit.checkpoint_signer
        v.audit.append({"actor": {"name": "leader", "key": fingerprint(
                            clerk.signing_key.public_key())},
                        "action": "open", "doc": "BOARD-plan-2026",
                        "label": {"level": "SECRET", "compartments": ["BOARD"], "caveats": []},
                        "outcome": "allowed", "rules": ["board-read"], "reason": "read",
                        "policy": None, "state": None}, clerk.signing_key)
    assert signer is not None and origin is not None
    trusted = office.key_lookup()  # the keys an auditor trusts, by name
    lines = office.raw.audit_lines()

    def forged_proof(line: bytes, extra: bytes) -> str:
        leaves = [leaf_hash(x) for x in lines] + [leaf_hash(line)]
        note = Checkpoint(origin, len(leaves), tree_root(leaves)).sign([signer])
        proof = inclusion_proof(len(lines), len(leaves), lambda lo, hi: tree_root(leaves[lo:hi]))
        return TlogProof(len(lines), tuple(proof), note, extra).to_text()

    leader = office.ids["leader"].signing_key.public_key()
    fake = json.loads(lines[-1])
    fake.update({"seq": len(lines), "actor": {"key": fingerprint(leader), "name": "leader"},
                 "sig": base64.b64encode(os.urandom(64)).decode()})
    line = canonical_json(fake)
    bare = forged_proof(line, line)  # as the attack made it: the line alone
    with pytest.raises(ProofError, match="carries nothing its signature covers"):
        verify_tlog_proof(bare, [pinned], origin=origin)
    with pytest.raises(ProofError, match="carries nothing its signature covers"):
        verify_tlog_proof(bare, [pinned], origin=origin, key_lookup=trusted)
    # With the line before it, which its signature would cover, shown to be
    # the tree's by a range proof (AUDIT.md §10): it is checked.
    tree = [leaf_hash(x) for x in lines] + [leaf_hash(line)]
    n = len(lines)
    ranged = range_proof(n - 1, n + 1, n + 1, lambda lo, hi: tree_root(tree[lo:hi]))
    attested = forged_proof(line, attested_extra(line, n, n, [lines[-1], line], ranged))
    with pytest.raises(ProofError, match=r"\(leader\) is not signed by the key you trust"):
        verify_tlog_proof(attested, [pinned], origin=origin, key_lookup=trusted)
    # An honest proof names its actor, checked with the keys the auditor trusts.
    r = office.cli("clerk", "audit", "prove", "1")
    assert r.exit_code == 0, r.stderr
    honest = verify_tlog_proof(r.stdout, [pinned], origin=origin, key_lookup=trusted)
    assert honest.record is not None and honest.signer == fingerprint(
        office.ids[honest.record.actor or ""].signing_key.public_key())
    with pytest.raises(ProofError, match="only with the keys you trust"):
        verify_tlog_proof(r.stdout, [pinned], origin=origin)

    # The clerk's own record under the leader's name, signed by her, as proven.
    r = office.cli("clerk", "audit", "prove", str(len(lines) - 1))
    assert r.exit_code == 0, r.stderr
    with pytest.raises(ProofError, match=r"\(leader\) is not signed by the key you trust"):
        verify_tlog_proof(r.stdout, [pinned], origin=origin, key_lookup=trusted)


def _keys_file_lookup(office: Office) -> Any:
    """The auditor's key lookup from 'vault audit keys' (AUDIT.md §15): the
    key bound to a name (JSON, ``null`` for none) over the lines
    ``first <= s < end``."""
    import base64
    import json

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    r = office.cli("deputy", "audit", "keys")
    assert r.exit_code == 0, r.stderr
    bindings = [line.split(" ", 4) for line in r.stdout.splitlines()]

    def lookup(name: str | None, fp: str, seq: int) -> Ed25519PublicKey | None:
        for first, end, key_fp, key, who in bindings:
            if json.loads(who) == name and key_fp == fp and int(first) <= seq \
                    and (end == "-" or seq < int(end)):
                return Ed25519PublicKey.from_public_bytes(base64.b64decode(key))
        return None

    return lookup


def _renew(office: Office, *names: str) -> int:
    """Policy version 2 gives ``names`` new keys (their identity files too):
    the line of the version's record."""
    from vault.identity import new_identity

    renewed = {**office.ids, **{n: new_identity(n, post_quantum=office.post_quantum)
                                for n in names}}
    office.ids.update(renewed)
    p = office.root / "renewed.yaml"
    p.write_text(office.policy_text())
    office.as_("officer").apply_policy(p)
    for n in names:
        office.files[n] = office.root / "keys" / f"{n}-renewed.key"
        office.ids[n].to_file(office.files[n], None)
    return max(i for i, x in enumerate(office.raw.audit_lines()) if json.loads(x).get("policy"))


def test_a_proof_asks_for_the_key_the_log_says_the_run_starts_under(office: Office) -> None:
    # The officer gave the leader a new key (policy version 2): the old one
    # is revoked. A thief holding it appended "leader opened SECRET//BOARD
    # BOARD-plan-2026", signed with it over leaf(0)..leaf(k-1); the honest
    # office's next seal signed a checkpoint over it. 'vault audit prove k'
    # is refused, but a proof is anyone's to rewrite: the thief carried the
    # k leaves her signature covers, which made the run start at line 1,
    # where the old key was still the leader's -- and verify_tlog_proof took
    # it with the keys file and with vault's own key lookup. The run is now
    # the log's: its lines, shown to be the tree's by a range proof.
    import base64

    from vault._ops.verify import key_lookup as vault_lookup
    from vault.audit import fingerprint, verify_tlog_proof
    from vault.audit._chain import SIGNING_CONTEXT, ZERO_LEAF, chain_digest
    from vault.audit._hashing import leaf_hash
    from vault.audit._record import canonical_json
    from vault.audit._tlogproof import TlogProof
    from vault.errors import ProofError

    office.as_("leader").seal(io.BytesIO(b"board plan"), level="SECRET", compartments=["BOARD"])
    stolen = office.ids["leader"].signing_key
    revoked_at = _renew(office, "leader")
    office.as_("deputy").seal(io.BytesIO(b"minutes"), level="INTERNAL", compartments=["STAFF"])
    lines = office.raw.audit_lines()
    k = len(lines)
    leaves = [leaf_hash(x) for x in lines]
    fake = {key: value for key, value in json.loads(lines[-1]).items() if key != "sig"}
    fake.update({"seq": k, "actor": {"name": "leader", "key": fingerprint(
                     stolen.public_key())},
                 "action": "open", "doc": "BOARD-plan-2026", "policy": None, "state": None,
                 "label": {"level": "SECRET", "compartments": ["BOARD"], "caveats": []},
                 "outcome": "allowed", "reason": "read", "rules": ["board-read"]})
    fake["sig"] = base64.b64encode(stolen.sign(
        SIGNING_CONTEXT + chain_digest(leaves[0], leaves[1:]) + canonical_json(fake))).decode()
    line = canonical_json(fake)
    office.raw.append_audit_line(line)
    office.as_("deputy").seal(io.BytesIO(b"more"), level="INTERNAL", compartments=["STAFF"])
    r = office.cli("deputy", "audit", "prove", str(k))
    assert r.exit_code == 0, r.stderr
    honest = TlogProof.from_text(r.stdout)
    with office.as_("deputy") as v:
        pinned, origin = v.audit.verifier(), v.audit.origin
        lookups = [_keys_file_lookup(office), vault_lookup(v._s)]
    assert lookups[0]("leader", fingerprint(stolen.public_key()), 1) is not None
    assert lookups[0]("leader", fingerprint(stolen.public_key()), revoked_at + 1) is None

    def forged(extra: bytes) -> str:
        return TlogProof(k, honest.hashes, honest.checkpoint, extra).to_text()

    # The attack as reported: k leaves, the run read as 1..k.
    as_reported = forged(line + b"\n\n" + leaves[0] + b"".join(leaves[1:]))
    for lookup in lookups:
        with pytest.raises(ProofError, match=r"not signed by the key you trust"):
            verify_tlog_proof(r.stdout, [pinned], origin=origin, key_lookup=lookup)
        with pytest.raises(ProofError, match="made before proofs carried their run's lines"):
            verify_tlog_proof(as_reported, [pinned], origin=origin, key_lookup=lookup)

    # In today's format: lines 0..k with their true range proof -- lines
    # 1..k-1 are no unsigned records of the old key, so no run starts at 1.
    from vault.audit._proof import range_proof
    from vault.audit._tlogproof import attested_extra
    from vault.audit._tree import tree_root

    size = int(honest.checkpoint.split(b"\n")[1])
    tree = [leaf_hash(x) for x in office.raw.audit_lines()[:size]]

    def ranged(a: int, b: int) -> list[bytes]:
        return range_proof(a, b, size, lambda lo, hi: tree_root(tree[lo:hi]))

    whole = forged(attested_extra(line, 1, k, [*lines, line], ranged(0, k + 1)))
    # Lines of her own making in place of the log's, as unsigned records of
    # the old key: not the tree's.
    own = [canonical_json({key: value for key, value in {**fake, "seq": i}.items()
                           if key != "sig"}) for i in range(1, k)]
    planted = forged(attested_extra(line, 1, k, [lines[0], *own, line], ranged(0, k + 1)))
    # The run the log holds: it starts at k, after the revocation.
    own_run = forged(attested_extra(line, k, k, [lines[-1], line], ranged(k - 1, k + 1)))
    for lookup in lookups:
        with pytest.raises(ProofError, match=f"does not cover record {k}"):
            verify_tlog_proof(whole, [pinned], origin=origin, key_lookup=lookup)
        with pytest.raises(ProofError, match="are not the log's"):
            verify_tlog_proof(planted, [pinned], origin=origin, key_lookup=lookup)
        with pytest.raises(ProofError, match=r"not signed by the key you trust"):
            verify_tlog_proof(own_run, [pinned], origin=origin, key_lookup=lookup)
    assert ZERO_LEAF not in tree  # the thief's chain started at a real line


def test_every_line_of_an_honest_office_log_is_proven_its_signers(office: Office) -> None:
    # 'vault audit prove' of every line of an honest office's log -- policy
    # versions giving people new keys, batches of many records (a seal of
    # several files), a torn record setting aside what a crash left --
    # verifies with the keys file
    # of 'vault audit keys', each record its signer's: no false alarm.
    from vault.audit import fingerprint, verify_tlog_proof
    from vault.errors import ProofError

    board_plan_raised(office)
    files = [str(office.file(f"memo-{i}.txt", b"memo %d" % i)) for i in range(6)]
    r = office.cli("clerk", "seal", *files, "--level", "INTERNAL", "--compartment", "STAFF")
    assert r.exit_code == 0, r.stderr
    _renew(office, "leader", "clerk")
    # A batch a crash cut short: an unsigned record nothing covers, which
    # the next writer sets aside with a torn record.
    from vault.audit._record import canonical_json

    lines = office.raw.audit_lines()
    cut = {key: value for key, value in json.loads(lines[-1]).items() if key != "sig"}
    office.raw.append_audit_line(canonical_json({**cut, "seq": len(lines)}))
    set_aside = len(lines)
    r = office.cli("clerk", "seal", *files[:4], "--level", "INTERNAL", "--compartment", "STAFF")
    assert r.exit_code == 0, r.stderr
    office.as_("leader").seal(io.BytesIO(b"y"), level="SECRET", compartments=["BOARD"])
    office.as_("deputy").seal(io.BytesIO(b"z"), level="INTERNAL", compartments=["STAFF"])
    lines = office.raw.audit_lines()
    records = [json.loads(x) for x in lines]
    assert sum(1 for x in records if "sig" not in x) >= 8  # batches
    assert records[set_aside + 1]["action"] == "torn"
    lookup = _keys_file_lookup(office)
    with office.as_("deputy") as v:
        pinned, origin = v.audit.verifier(), v.audit.origin
    for seq, line in enumerate(lines):
        r = office.cli("deputy", "audit", "prove", str(seq))
        assert r.exit_code == 0, (seq, r.stderr)
        if seq == set_aside:  # in the log, and no signature of its actor's covers it
            with pytest.raises(ProofError, match="carries nothing its signature covers"):
                verify_tlog_proof(r.stdout, [pinned], origin=origin, key_lookup=lookup)
            verify_tlog_proof(r.stdout, [pinned], origin=origin, leaf=line)
            continue
        proof = verify_tlog_proof(r.stdout, [pinned], origin=origin, key_lookup=lookup)
        assert proof.record is not None and proof.leaf == line, seq
        assert proof.signer == proof.record.actor_key == records[seq]["actor"]["key"], seq
    assert {fingerprint(office.ids[n].signing_key.public_key()) for n in ("leader", "clerk")} \
        <= {x["actor"]["key"] for x in records}
