"""Containing damage to the audit log (docs/AUDIT.md §13.8): an insider's
bad record never makes the vault unusable, and an officer's signed
incident record seals it off while keeping it as evidence. History
rewritten below what a machine verified is an alarm, never accepted."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from office import Office, board_plan_raised, make_office
from vault_helpers import forge_record_after_last, rewrite_audit_line

import vault
from vault.errors import AuditIntegrityError, DeniedError, UsageError


def _seal(office: Office, data: bytes) -> str:
    return office.as_("clerk").seal(io.BytesIO(data), level="INTERNAL",
                                    compartments=["STAFF"]).id


def test_a_forged_record_is_contained_then_sealed_off(office: Office) -> None:
    first = _seal(office, b"before")
    at = forge_record_after_last(office)
    # The vault keeps working for everyone, on this machine and a fresh one.
    second = _seal(office, b"after")
    for who in ("clerk", "leader"):
        with vault.Vault(office.location, office.ids[who],
                         state_dir=office.root / f"fresh-{who}") as v:
            assert {first, second} <= {d.id for d in v.ls()}
    # The damage is reported, loudly, until an officer declares it.
    with pytest.raises(AuditIntegrityError):
        office.as_("officer").verify_audit()
    assert not office.as_("officer").doctor().ok
    with pytest.raises(DeniedError):
        office.as_("clerk").declare_incident(at, at, reason="a forged record")
    n = office.as_("officer").declare_incident(at, at, reason="a forged record, kept")
    report = office.as_("officer").verify_audit()
    assert report.incidents and str(at) in report.incidents[0]
    assert office.as_("officer").doctor().ok
    # The evidence is still there, and the incident is on the record.
    assert json.loads(office.raw.audit_lines()[at])["reason"] == "the leader looked"
    record = json.loads(office.raw.audit_lines()[n])
    assert record["action"] == "incident" and record["actor"]["name"] == "officer"
    # The line is as it was written (appended, never changed): the record
    # carries no leaves, the line's own being no original (FORMAT.md §14.8).
    assert record["state"] == {"incident": {"from": at, "to": at,
                                            "reason": "a forged record, kept"}}


def test_an_incident_names_real_lines(office: Office) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        office.as_("officer").declare_incident(5, 10_000, reason="x")
    with pytest.raises(UsageError):
        office.as_("officer").declare_incident(3, 1, reason="x")


def test_an_incident_over_honest_lines_is_refused(office: Office, tmp_path: Path) -> None:
    # The officer -- an administrator, not cleared for BOARD, not allowed to
    # shred -- declared the leader's reclassification of a BOARD document
    # (lines that verify, in place, signed by the leader) an incident. It
    # was accepted: the replay ignored the lines, the document was "missing
    # from the vault, although the audit log records it" for the leader and
    # the deputy, and the officer's 'doctor --repair' removed their keyring
    # entries for the class key, leaving the document to the offline
    # recovery identity alone.
    doc, first, last = board_plan_raised(office)
    officer = office.as_("officer")
    with pytest.raises(UsageError, match=rf"lines {first} to {last} verify in place .*: an "
                       "incident seals off only damaged lines") as caught:
        officer.declare_incident(first, last, reason="looks damaged")
    assert caught.value.hint and "--checkpoint" in caught.value.hint
    # Refused before anything was sealed off; the attempt is on the record.
    assert _declared(office) == []
    tried = json.loads(office.raw.audit_lines()[-1])
    assert (tried["action"], tried["outcome"], tried["actor"]["name"]) == (
        "incident", "failed", "officer")
    # From a machine that verified the lines too, and through the command
    # line: one honest line among them is enough to refuse.
    machine = {"VAULT_STATE_DIR": str(tmp_path / "officer-machine")}
    assert office.cli("officer", "audit", "verify", env=machine).exit_code == 0
    r = office.cli("officer", "audit", "incident", str(last), str(last), "--reason", "x",
                   env=machine)
    assert r.exit_code == 2 and r.stdout == "", (r.exit_code, r.stdout)
    assert f"line {last} verifies in place and differs from nothing this machine verified: " \
           "an incident seals off only damaged lines" in r.stderr, r.stderr
    assert _declared(office) == []
    # The record appended after an honest one is damage, not the honest one
    # before it, whose line its chain starts with.
    at = forge_record_after_last(office)
    with pytest.raises(UsageError, match=rf"line {at - 1} verifies in place"):
        officer.declare_incident(at - 1, at, reason="a forged record and the one before")
    officer.declare_incident(at, at, reason="a forged record")
    assert _declared(office) == [{"from": at, "to": at, "reason": "a forged record"}]
    # The reclassification stands for everyone it was meant for, and the
    # officer's repair takes away nobody's key.
    report = officer.doctor(repair=True)
    assert not [x for x in report.repaired if "keyrings" in x], report.repaired
    assert report.ok, report.problems
    for who in ("leader", "deputy"):
        out = io.BytesIO()
        office.as_(who).open(doc, out)
        assert out.getvalue() == b"board plan"
        assert office.as_(who).info(doc).label.level == "SECRET"


def test_history_rewritten_below_what_a_machine_verified_is_an_alarm(tmp_path: Path) -> None:
    office = make_office(tmp_path)
    _seal(office, b"seen")
    rewrite_audit_line(office, 2)
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"):
        office.as_("clerk").ls()
    office.raw.truncate_audit(3)
    with pytest.raises(AuditIntegrityError, match=r"rolled back or rewritten|truncated"):
        office.as_("leader").ls()


def test_the_command_line_declares_an_incident_and_verify_reports_it(office: Office) -> None:
    _seal(office, b"before")
    at = forge_record_after_last(office)
    r = office.cli("officer", "audit", "verify")
    assert r.exit_code == 4 and r.stdout == "", (r.exit_code, r.stdout, r.stderr)
    assert r.stderr.startswith("vault: ")
    r = office.cli("clerk", "audit", "incident", str(at), str(at), "--reason", "forged")
    assert r.exit_code == 3 and r.stdout == "" and "denied" in r.stderr
    r = office.cli("officer", "audit", "incident", str(at), str(at), "--reason",
                   "a forged record", "--json")
    # A line never changed (appended forged) has no original leaf but its
    # own: the record carries none, and the note says what that means.
    assert r.exit_code == 0, r.stderr
    assert r.stderr.startswith("note: the incident carries no original leaves"), r.stderr
    out = json.loads(r.stdout)
    assert out["first"] == out["last"] == at and out["incident"] > at
    r = office.cli("officer", "audit", "verify")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("ok: ")
    assert "incident: " in r.stderr and str(at) in r.stderr  # reported from then on


def test_an_incident_already_seen_never_explains_a_later_rollback(office: Office) -> None:
    at = forge_record_after_last(office)
    office.as_("officer").declare_incident(at, at, reason="a forged record")
    doc = _seal(office, b"to be shredded")
    office.as_("leader").shred(doc, justification="done with")
    keep = len(office.raw.audit_lines())
    assert doc not in {d.id for d in office.as_("leader").ls()}  # the leader saw the shred
    # Someone rolls the log back to before the shred, the incident still in it.
    lines = office.raw.audit_lines()
    shred_at = next(i for i, line in enumerate(lines)
                    if json.loads(line).get("action") == "shred")
    office.raw.truncate_audit(shred_at)
    assert len(office.raw.audit_lines()) < keep
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"):
        office.as_("leader").ls()


def test_an_invalid_record_stays_a_problem_until_an_incident_seals_it_off(
        office: Office) -> None:
    # The outsider appends a state record it is not entitled to (a policy
    # version): ignored, a problem for the doctor -- until declared.
    me = office.ids["outsider"]
    with office.as_("officer") as v:
        v.audit.append({"actor": {"name": "outsider", "key": me.fingerprint},
                        "action": "policy-apply", "outcome": "done", "doc": None,
                        "label": None, "rules": [], "reason": "", "policy": None,
                        "state": {"policy": {"version": 2, "sha256": "0" * 64, "text": "x"}}},
                       me.signing_key)
    at = len(office.raw.audit_lines()) - 1
    report = office.as_("officer").doctor()
    assert any(f"audit record {at}" in p for p in report.problems), report.problems
    n = office.as_("officer").declare_incident(at, at, reason="an outsider's policy record")
    report = office.as_("officer").doctor()
    assert report.ok, report.problems
    assert any(f"audit record {at}" in x and f"incident record {n}" in x for x in report.notes)


def test_an_incident_over_one_line_excuses_no_other_change_below_what_a_machine_verified(
        tmp_path: Path) -> None:
    # The deputy, an administrator under version 2, revoked by version 3,
    # plants a forged line; the officer declares an incident over it alone.
    # Then the deputy overwrites version 3's line. The leader's machine, which
    # had counted version 3, took the new incident as explaining any change
    # below what it verified: it replayed the log again and made the deputy
    # an administrator. Now the change must be confined to the sealed-off
    # lines, checked with every signature; here it is not: the alarm stands.
    office = make_office(tmp_path / "o", post_quantum=False)
    pq = {"version: 1\n": "version: 1\npost_quantum: off\n"}
    deputy_admin = {**pq, "    members: [officer]\n": "    members: [officer, deputy]\n"}
    office.as_("officer").apply_policy(office.write_policy(deputy_admin))
    office.as_("officer").apply_policy(office.write_policy(pq))
    machine = tmp_path / "leader-machine"

    def versions() -> list[int]:
        with vault.Vault(office.location, office.ids["leader"], state_dir=machine) as v:
            return [p.version for p in v.policy_versions]

    lines = office.raw.audit_lines()
    v3 = max(i for i, x in enumerate(lines) if (json.loads(x).get("state") or {}).get("policy"))
    forged = forge_record_after_last(office)
    assert versions() == [1, 2, 3]
    office.as_("officer").declare_incident(forged, forged, reason="a forged record")
    office.raw.set_audit_line(v3, b'{"junk":"the revocation is gone"}')  # before it reads it
    with pytest.raises(AuditIntegrityError, match="rolled back or rewritten"):
        versions()


def test_one_sealed_off_line_excuses_no_other_line_of_a_condensed_stretch(
        tmp_path: Path) -> None:
    # A folder writer puts a junk line, then a run of her own longer than a
    # reader holds (4,096 pending lines): the damage before the run's end is
    # one condensed item, named by its first line. Sealing off that line
    # excused the whole item -- so honest lines rewritten into it afterwards
    # passed verify, against a kept checkpoint too.
    import os

    from audit_support import KEYS, ORIGIN, fields, key_lookup, lines_of, write_lines

    from vault.audit import AuditLog, fingerprint
    from vault.audit._chain import chain_digest
    from vault.audit._fields import FieldChecker, RecordBuilder
    from vault.audit._hashing import leaf_hash
    from vault.audit._record import now

    path = tmp_path / "log"
    log = AuditLog.create(path, origin=ORIGIN, checkpoint_every=0)
    for i in range(10):
        log.append(fields(("bob", "carol")[i % 2], i), KEYS[("bob", "carol")[i % 2]])
    write_lines(path, [*lines_of(path), b"junk"])  # line 10
    lines, key = lines_of(path), KEYS["alice"]  # her own client: one run of 4,097
    check = FieldChecker()
    items = [check(fields("alice", 100 + j), key, fingerprint(key.public_key()),
                   os.urandom(16).hex()) for j in range(4097)]
    build = RecordBuilder(time=now(), host="alice-pc", pid=1)
    unsigned = [build.unsigned(c, len(lines) + i) for i, c in enumerate(items[:-1])]
    chain = chain_digest(leaf_hash(lines[-1]), [leaf_hash(r.line) for r in unsigned])
    last = build.signed(items[-1], len(lines) + len(unsigned), chain)
    write_lines(path, [*lines, *(r.line for r in unsigned), last.line])
    kept = AuditLog.open(path, checkpoint_every=0).checkpoint()
    with pytest.raises(AuditIntegrityError, match="line 10 is not a valid record"):
        AuditLog.open(path).verify(key_lookup=key_lookup)
    report = AuditLog.open(path).verify(key_lookup=key_lookup, sealed_off={10},
                                        trusted_checkpoint=kept)
    assert report.incidents
    lines = lines_of(path)
    write_lines(path, [lines[0], *(b"erased %d" % i for i in range(1, 10)), *lines[10:]])
    with pytest.raises(AuditIntegrityError) as e:
        AuditLog.open(path).verify(key_lookup=key_lookup, sealed_off={10},
                                   trusted_checkpoint=kept)
    assert e.value.kind == "modified", e.value.message
    # Sealing off every line of the stretch is what excuses it.
    AuditLog.open(path).verify(key_lookup=key_lookup, sealed_off=set(range(1, 11)))


def test_the_audit_listing_passes_over_lines_an_incident_sealed_off(tmp_path: Path) -> None:
    # A folder writer's junk line, then a record of her own signed over it:
    # the officer sealed the line off, doctor and verify were clean -- and
    # 'vault audit log' ended on it with exit 4, for everyone, for good.
    import os

    from vault.audit import fingerprint
    from vault.audit._chain import chain_digest
    from vault.audit._fields import FieldChecker, RecordBuilder
    from vault.audit._hashing import leaf_hash
    from vault.audit._record import now

    office = make_office(tmp_path / "o")
    doc = office.as_("clerk").seal(io.BytesIO(b"x"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    lines = [*office.raw.audit_lines(), b"junk"]
    key = office.ids["clerk"].signing_key
    checked = FieldChecker()(
        {"actor": {"name": "clerk", "key": office.ids["clerk"].fingerprint}, "action": "ls",
         "doc": None, "outcome": "allowed", "rules": [], "reason": "listed", "policy": None,
         "label": None, "state": None, "request": os.urandom(16).hex()},
        key, fingerprint(key.public_key()), os.urandom(16).hex())
    last = RecordBuilder(time=now(), host="h", pid=1).signed(
        checked, len(lines), chain_digest(leaf_hash(lines[-1]), []))
    (office.path / "audit" / "log").write_bytes(b"".join(x + b"\n" for x in [*lines, last.line]))
    at = len(lines) - 1
    r = office.cli("officer", "audit", "log")
    assert r.exit_code == 4 and "is not a valid record" in r.stderr, r.stderr  # until declared
    office.as_("officer").declare_incident(at, at, reason="junk line")
    r = office.cli("officer", "audit", "log", "--json")
    assert r.exit_code == 0, r.stderr
    assert doc in r.stdout and json.loads(r.stdout)[-1]["action"] == "incident"


@pytest.mark.parametrize("same_length", [True])
def test_proofs_are_handed_out_again_after_an_honest_incident(tmp_path: Path,
                                                              same_length: bool) -> None:
    # A disk error damaged one line; 'verify' alarmed, the officer sealed
    # the line off and made a checkpoint: 'verify' was ok again, but
    # 'prove' failed for every record, on every machine, for good ("does
    # not match its checkpoint", "not those this machine read").
    office, machines = _office_read_by(tmp_path, ("officer", "clerk"), 6, ("officer",))
    lines = office.raw.audit_lines()
    k = len(lines) - 3
    flip = (b'"outcome":"', b'"outcome":"X') if not same_length else (b'"host":"', b'"host":"X')
    damaged = lines[k].replace(*flip, 1)
    if same_length:  # one byte flipped, as a disk error does
        at = damaged.index(b'"host":"X') + len(b'"host":"X')
        damaged = damaged[:at] + damaged[at + 1:]
    assert damaged != lines[k] and (len(damaged) == len(lines[k])) == same_length
    office.raw.set_audit_line(k, damaged)
    r = office.cli("officer", "audit", "verify", env=machines["officer"])
    assert r.exit_code == 4, r.stderr
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=machines["officer"])
    assert r.exit_code == 0, r.stderr
    r = office.cli("officer", "audit", "checkpoint", env=machines["officer"])
    assert r.exit_code == 0, r.stderr
    r = office.cli("officer", "audit", "verify", env=machines["officer"])
    assert r.exit_code == 0, r.stderr
    from vault.audit.note import NoteVerifier

    with office.as_("officer") as v:
        verifier = NoteVerifier.from_key(v.manifest.log_key)
    fresh = {"VAULT_STATE_DIR": str(tmp_path / "fresh-state")}
    for who, env in (("officer", machines["officer"]), ("clerk", machines["clerk"]),
                     ("leader", fresh)):
        for seq in (1, k - 1, k + 1):
            r = office.cli(who, "audit", "prove", str(seq), env=env)
            assert r.exit_code == 0, (who, seq, r.stderr)
            _verified(office, r.stdout, verifier, seq, k)
        r = office.cli(who, "audit", "prove", str(k), env=env)
        assert r.exit_code != 0 and r.stdout == "", r.stdout
        assert f"line {k} was sealed off by an incident" in r.stderr, r.stderr


def _verified(office: Office, proof: str, verifier: Any, seq: int, k: int) -> None:
    """A proof of line ``seq`` verifies. The record after the sealed-off
    line ``k`` signs over that line as written, which nobody can show any
    more: its proof shows the line is in the log, not who wrote it."""
    from vault.audit import verify_tlog_proof
    from vault.errors import ProofError

    if seq != k + 1:
        verify_tlog_proof(proof, [verifier], key_lookup=office.key_lookup())
        return
    with pytest.raises(ProofError, match="carries nothing its signature covers"):
        verify_tlog_proof(proof, [verifier], key_lookup=office.key_lookup())
    verify_tlog_proof(proof, [verifier], leaf=office.raw.audit_lines()[seq])


def _machines(tmp_path: Path, *users: str) -> dict[str, dict[str, str]]:
    """Each user on a machine of their own: the environment of its state folder."""
    return {w: {"VAULT_STATE_DIR": str(tmp_path / f"{w}-state")} for w in users}


def _notes(office: Office, env: dict[str, str], count: int) -> None:
    """The clerk seals ``count`` short notes from the machine ``env``."""
    for i in range(count):
        r = office.cli("clerk", "seal", str(office.file(f"n{i}.txt", b"note %d\n" % i)),
                       env=env)
        assert r.exit_code == 0, r.stderr


def _office_read_by(tmp_path: Path, users: tuple[str, ...], notes: int,
                    readers: tuple[str, ...] = ()) -> tuple[Office, dict[str, dict[str, str]]]:
    """An office with a machine for each of ``users``, the clerk's ``notes``
    sealed, and the log verified on each of ``readers``' machines."""
    office = make_office(tmp_path / "o", post_quantum=False)
    m = _machines(tmp_path, *users)
    _notes(office, m["clerk"], notes)
    for w in readers:
        assert office.cli(w, "audit", "verify", env=m[w]).exit_code == 0
    return office, m


def _flip(office: Office, seq: int) -> None:
    """One byte of line ``seq`` changed, its length kept: a disk error."""
    line = office.raw.audit_lines()[seq]
    at = line.index(b'"host":"') + len(b'"host":"')
    office.raw.set_audit_line(seq, line[:at] + (b"Y" if line[at:at + 1] == b"X" else b"X")
                              + line[at + 1:])


def _declared(office: Office) -> list[dict[str, object]]:
    return [rec["state"]["incident"] for rec in map(json.loads, office.raw.audit_lines())
            if isinstance(rec.get("state"), dict) and "incident" in rec["state"]]


def test_the_officer_declares_the_damage_from_the_machine_that_stopped_at_it(
        office: Office, tmp_path: Path) -> None:
    # The officer's machine had verified the log; a disk error then changed
    # the last line it verified. It stopped ("no longer extends what this
    # machine verified"), as it must -- and 'audit incident' failed there
    # too, with the same error: the officer could not declare the damage
    # from the machine that found it.
    machine = {"VAULT_STATE_DIR": str(tmp_path / "officer-machine")}
    _seal(office, b"one")
    r = office.cli("officer", "audit", "verify", env=machine)
    assert r.exit_code == 0, r.stderr
    at = len(office.raw.audit_lines()) - 1  # the last line this machine verified
    _seal(office, b"two")  # the others keep working
    written = vault.audit.leaf_hash(office.raw.audit_lines()[at]).hex()
    _flip(office, at)
    r = office.cli("officer", "audit", "verify", env=machine)
    assert r.exit_code == 4 and "no longer extends what this machine verified" in r.stderr
    r = office.cli("officer", "audit", "incident", str(at), str(at), "--reason", "disk error",
                   "--json", env=machine)
    assert r.exit_code == 0, r.stderr
    # It carries the leaf the line had when written, which reproduces the
    # root this machine verified (FORMAT.md §14.8).
    assert json.loads(r.stdout)["first"] == at and _declared(office) == [
        {"from": at, "to": at, "reason": "disk error", "leaves": [written]}]
    # The machine accepts the log again, the incident reported, and works on.
    r = office.cli("officer", "audit", "verify", env=machine)
    assert r.exit_code == 0 and r.stdout.startswith("ok: "), r.stderr
    assert "incident: " in r.stderr and str(at) in r.stderr
    third = _seal(office, b"three")
    r = office.cli("officer", "ls", "--json", env=machine)
    assert r.exit_code == 0 and third in r.stdout, r.stderr
    assert office.cli("officer", "audit", "verify", env=machine).exit_code == 0


def test_an_incident_from_a_stopped_machine_carries_no_other_change_nor_a_rollback(
        tmp_path: Path) -> None:
    # Declared from the officer's machine, an incident must explain the whole
    # change below what it verified: one over the line that stopped it must
    # not carry another line changed, nor a log cut back, past that machine.
    office = make_office(tmp_path / "o", post_quantum=False)
    state = str(tmp_path / "officer-machine")
    machine = {"VAULT_STATE_DIR": state}
    for data in (b"one", b"two"):
        _seal(office, data)
    assert office.cli("officer", "audit", "verify", env=machine).exit_code == 0
    seen = len(office.raw.audit_lines())
    _seal(office, b"three")
    _flip(office, seen - 1)
    _flip(office, 2)  # below, and not declared
    r = office.cli("officer", "audit", "incident", str(seen - 1), str(seen - 1),
                   "--reason", "disk error", env=machine)
    assert r.exit_code == 4 and r.stdout == "", r.stdout
    assert "at lines the incident does not cover" in r.stderr, r.stderr
    assert "a record between 0 and 5 was modified" in r.stderr, r.stderr
    assert _declared(office) == []
    r = office.cli("officer", "audit", "verify", env=machine)
    assert r.exit_code == 4 and "no longer extends what this machine verified" in r.stderr
    # Opened to declare an incident, the vault does nothing else there: it
    # neither signs a checkpoint over the log it refused, nor reads or
    # verifies it, nor proves a line of it.
    stored = sorted((office.path / "audit" / "checkpoints").iterdir())
    with vault.Vault(office.location, office.ids["officer"], state_dir=state,
                     for_incident=True) as v:
        for act in (v.ls, lambda: v.audit.checkpoint(), lambda: v.audit.prove(1),
                    v.verify_audit, lambda: list(v.audit_records()), v.doctor):
            with pytest.raises(AuditIntegrityError):
                act()
    assert sorted((office.path / "audit" / "checkpoints").iterdir()) == stored
    # Cut back below what the machine verified: no incident explains that.
    office.raw.truncate_audit(seen - 1)
    r = office.cli("officer", "audit", "incident", "2", str(seen - 2), "--reason", "cut",
                   env=machine)
    assert r.exit_code == 4 and "cut back" in r.stderr, r.stderr
    assert _declared(office) == []
    r = office.cli("officer", "audit", "verify", env=machine)
    assert r.exit_code == 4 and "no longer extends what this machine verified" in r.stderr


def _honest_incident(tmp_path: Path, same_length: bool = True
                     ) -> tuple[Office, dict[str, dict[str, str]], int, bytes]:
    """Three machines -- the officer's, a clerk's that read the log before
    the damage, a new one -- and a line one disk error changed (one byte,
    or, ``same_length`` false, its length too), sealed off by the officer
    and followed by a checkpoint. Returns the office, the machines, the
    line and its original bytes."""
    office, machines = _office_read_by(tmp_path, ("officer", "clerk"), 6, ("officer",))
    machines["leader"] = {"VAULT_STATE_DIR": str(tmp_path / "fresh-state")}
    lines = office.raw.audit_lines()
    k = len(lines) - 3
    if same_length:
        _flip(office, k)
    else:
        office.raw.set_audit_line(k, lines[k].replace(b'"host":"', b'"host":"XY', 1))
    assert (len(office.raw.audit_lines()[k]) == len(lines[k])) == same_length
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=machines["officer"])
    assert r.exit_code == 0, r.stderr
    r = office.cli("officer", "audit", "checkpoint", env=machines["officer"])
    assert r.exit_code == 0, r.stderr
    return office, machines, k, lines[k]


def _proofs_work(office: Office, machines: dict[str, dict[str, str]], k: int) -> None:
    from vault.audit.note import NoteVerifier

    with office.as_("officer") as v:
        verifier = NoteVerifier.from_key(v.manifest.log_key)
    for who, env in machines.items():
        for seq in (1, k - 1, k + 1):
            r = office.cli(who, "audit", "prove", str(seq), env=env)
            assert r.exit_code == 0, (who, seq, r.stderr)
            _verified(office, r.stdout, verifier, seq, k)
        r = office.cli(who, "audit", "prove", str(k), env=env)
        assert r.exit_code != 0 and f"line {k} was sealed off by an incident" in r.stderr


@pytest.mark.parametrize(("attack", "same_length"), [
    ("deleted", True), ("damaged", True), ("deleted", False)])
def test_proofs_outlive_the_derived_data_after_an_honest_incident(
        tmp_path: Path, attack: str, same_length: bool) -> None:
    # After an honest incident, proofs were made from the original leaf the
    # derived hashes still held. Any folder writer deleted (or damaged)
    # them: the next append rebuilt them from the damaged line -- or failed,
    # "the audit log changed while its derived files were rebuilt" -- and
    # from then on every 'audit prove' exited 4 on every machine, while
    # verify and doctor said ok. The incident record now carries the leaf.
    from vault.audit import leaf_hash

    office, machines, k, original = _honest_incident(tmp_path, same_length)
    _proofs_work(office, machines, k)
    # What the doctor says on each machine, before: one that replayed the
    # log since the damage (every machine, the line's length changed) finds
    # the seal the damaged decision was about never completed, as it is.
    doctor = {who: office.cli(who, "doctor", env=env).exit_code
              for who, env in machines.items()}
    assert not same_length or doctor["officer"] == doctor["clerk"] == 0
    hashes = office.path / "audit" / "hashes"
    if attack == "deleted":
        hashes.unlink()
    else:
        data = bytearray(hashes.read_bytes())
        data[32 * k: 32 * k + 32] = bytes(32)
        hashes.write_bytes(bytes(data))
    for i, who in enumerate(("clerk", "leader")):  # each append rebuilds them first
        r = office.cli(who, "seal", str(office.file(f"z{i}.txt", b"z\n")), env=machines[who])
        assert r.exit_code == 0, (who, r.stderr)
    r = office.cli("officer", "ls", env=machines["officer"])
    assert r.exit_code == 0, r.stderr
    for who, env in machines.items():
        r = office.cli(who, "audit", "verify", env=env)
        assert r.exit_code == 0 and r.stdout.startswith("ok: "), (who, r.stderr)
        r = office.cli(who, "doctor", env=env)
        assert r.exit_code == doctor[who], (who, r.stdout, r.stderr)
    _proofs_work(office, machines, k)
    r = office.cli("officer", "audit", "checkpoint", env=machines["officer"])
    assert r.exit_code == 0, r.stderr
    hashes.unlink(missing_ok=True)
    _proofs_work(office, machines, k)
    assert _declared(office)[-1]["leaves"] == [leaf_hash(original).hex()]


def test_recorded_leaves_excuse_no_line_outside_the_incident(tmp_path: Path) -> None:
    # The leaves an incident carries stand only for the lines it seals off:
    # another line changed after it is still an alarm for prove and verify,
    # on every machine, whatever the derived data holds.
    office, machines, k, _ = _honest_incident(tmp_path)
    _flip(office, k - 1)
    (office.path / "audit" / "hashes").unlink()
    for who, env in machines.items():
        r = office.cli(who, "audit", "prove", "1", env=env)
        assert r.exit_code == 4 and r.stdout == "", (who, r.stdout)
    r = office.cli("officer", "audit", "verify", env=machines["officer"])
    assert r.exit_code == 4, r.stderr
    r = office.cli("leader", "audit", "verify", env={"VAULT_STATE_DIR": str(tmp_path / "new")})
    assert r.exit_code == 4, r.stderr


@pytest.mark.parametrize("leaves", [["AB" * 32], ["ab" * 31], ["ab" * 32] * 2, "ab" * 32,
                                    [], [None]])
def test_an_incident_with_malformed_leaves_does_not_count(
        office: Office, monkeypatch: pytest.MonkeyPatch, leaves: object) -> None:
    # Not lowercase hex, not 64 characters, not one per line, not a list:
    # the record does not count (nothing is sealed off), and doctor says why.
    import vault._ops.incident as incident
    from vault.errors import IntegrityError

    at = forge_record_after_last(office)
    monkeypatch.setattr(incident, "_original_leaves", lambda *_: leaves)
    monkeypatch.setattr(incident, "_explains", lambda *_: None)
    with pytest.raises(IntegrityError, match="does not count"):
        office.as_("officer").declare_incident(at, at, reason="a forged record")
    assert _declared(office)[-1]["leaves"] == leaves
    with pytest.raises(AuditIntegrityError):
        office.as_("officer").verify_audit()
    report = office.as_("officer").doctor()
    assert any("malformed incident leaves" in p for p in map(str, report.problems)), report


def _planted(office: Office, k: int, line: bytes, sizes: tuple[int, ...] = ()) -> None:
    """What any folder writer can do with the log key the folder holds:
    derived hashes computed as if line ``k`` were ``line``, and stored
    checkpoints signed over that history (at its end, and at ``sizes``)."""
    from vault.audit import AuditLog, leaf_hash
    from vault.audit._checkpoint import Checkpoint
    from vault.audit._tree import tree_root

    audit = office.path / "audit"
    now = office.raw.audit_lines()
    office.raw.set_audit_line(k, line)
    for name in ("hashes", "index"):
        (audit / name).unlink(missing_ok=True)
    log = AuditLog.open(audit, checkpoint_every=0)
    log.checkpoint()
    office.raw.set_audit_line(k, now[k])
    leaves = [leaf_hash(x) for x in now]
    leaves[k] = leaf_hash(line)
    for size in sizes:
        note = Checkpoint(log.origin, size, tree_root(leaves[:size])).sign(
            [log._require_signer()])
        assert log.storage.store_checkpoint(size, note)


@pytest.mark.parametrize("declared_from", ["stopped", "new"])
def test_an_incident_never_launders_a_record_its_own_signer_rewrote(
        tmp_path: Path, declared_from: str) -> None:
    # The clerk, a folder writer, rewrote her own newest record (her 'open'
    # of one document now named another), re-signed with her own key, and
    # flipped a byte of an unrelated earlier line, planting derived hashes
    # and a checkpoint (signed with the folder's log key) holding that
    # line's leaf. The officer declared the one visible damage, and from
    # then on the machines that had verified her record, and 'verify' with
    # a checkpoint kept outside, accepted the rewritten one: "checkpoint 12
    # differs from the log only at lines an incident sealed off" -- its
    # signature verified, which vouches for nothing against its signer.
    import base64
    import hashlib

    from vault._primitives import canonical_json
    from vault.audit import leaf_hash
    from vault.audit._chain import SIGNING_CONTEXT

    office = make_office(tmp_path / "o", post_quantum=False)
    m = _machines(tmp_path, "officer", "clerk", "leader")
    _notes(office, m["clerk"], 4)
    docs = [d.id for d in office.as_("clerk").ls()]
    r = office.cli("clerk", "open", docs[0], "-o", str(tmp_path / "out.txt"), env=m["clerk"])
    assert r.exit_code == 0, r.stderr
    lines = office.raw.audit_lines()
    mine = len(lines) - 1
    rec = json.loads(lines[mine])
    assert rec["action"] == "open" and rec["doc"] == docs[0]
    for w in ("officer", "leader"):
        assert office.cli(w, "audit", "verify", env=m[w]).exit_code == 0
    r = office.cli("officer", "audit", "checkpoint", env=m["officer"])
    assert r.exit_code == 0, r.stderr
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(r.stdout)
    # The clerk: her record rewritten and re-signed, an earlier line damaged.
    body = {key: value for key, value in rec.items() if key != "sig"}
    body["doc"] = docs[1]
    chain = hashlib.sha256(leaf_hash(lines[mine - 1])).digest()
    sig = office.ids["clerk"].signing_key.sign(SIGNING_CONTEXT + chain + canonical_json(body))
    office.raw.set_audit_line(mine, canonical_json({**body, "sig": base64.b64encode(sig).decode()}))
    k = 3
    _flip(office, k)
    _planted(office, k, lines[k], sizes=(k + 2,))
    r = office.cli("officer", "audit", "verify", env=m["officer"])
    assert r.exit_code == 4, r.stderr
    where = m["officer"] if declared_from == "stopped" else \
        {"VAULT_STATE_DIR": str(tmp_path / "new-state")}
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=where)
    if declared_from == "stopped":
        # The machine that verified record 11 does not explain it away.
        assert r.exit_code == 4, r.stderr
        assert "at lines the incident does not cover" in r.stderr, r.stderr
        assert _declared(office) == []
    else:
        assert r.exit_code == 0, r.stderr
        assert "leaves" not in _declared(office)[-1]  # nothing this machine trusts has them
    for w in ("officer", "leader"):
        r = office.cli(w, "audit", "verify", env=m[w])
        assert r.exit_code == 4, (w, r.stderr)
        assert "no longer extends what this machine verified" in r.stderr, (w, r.stderr)
        r = office.cli(w, "ls", env=m[w])
        assert r.exit_code == 4, (w, r.stderr)
    r = office.cli("leader", "audit", "verify", "--checkpoint", str(kept),
                   env={"VAULT_STATE_DIR": str(tmp_path / "auditor")})
    assert r.exit_code == 4, r.stderr
    assert "does not match its checkpoint of size 12" in r.stderr or (
        "was modified" in r.stderr), r.stderr
    assert "incident sealed off" not in r.stderr
    # Nor does a proof against the checkpoint kept stand for the rewrite.
    r = office.cli("leader", "audit", "prove", str(mine), env=m["leader"])
    assert r.exit_code == 4 and r.stdout == "", r.stdout


def test_a_rewrite_only_a_root_tells_is_declared_where_that_root_is_trusted(
        tmp_path: Path) -> None:
    # The clerk rewrote a record of hers and signed it again: it verifies as
    # it stands, and only a root signed before tells it changed. Declared
    # from the officer's machine, which verified it, it shows damage; from a
    # machine that knows no such root, it shows none.
    import base64
    import hashlib

    from vault._primitives import canonical_json
    from vault.audit import leaf_hash
    from vault.audit._chain import SIGNING_CONTEXT

    office = make_office(tmp_path / "o", post_quantum=False)
    m = _machines(tmp_path, "officer", "clerk")
    _notes(office, m["clerk"], 3)
    docs = [d.id for d in office.as_("clerk").ls()]

    def rewritten_open() -> tuple[int, bytes]:
        """The clerk opens a document, then rewrites that record of hers to
        name another, signed again with her own key."""
        out = tmp_path / f"out{len(office.raw.audit_lines())}.txt"
        r = office.cli("clerk", "open", docs[0], "-o", str(out), env=m["clerk"])
        assert r.exit_code == 0, r.stderr
        lines = office.raw.audit_lines()
        mine = len(lines) - 1
        body = {k: v for k, v in json.loads(lines[mine]).items() if k != "sig"}
        assert body["action"] == "open"
        assert office.cli("officer", "audit", "verify", env=m["officer"]).exit_code == 0
        body["doc"] = docs[1]
        chain = hashlib.sha256(leaf_hash(lines[mine - 1])).digest()
        sig = office.ids["clerk"].signing_key.sign(SIGNING_CONTEXT + chain
                                                   + canonical_json(body))
        office.raw.set_audit_line(mine, canonical_json(
            {**body, "sig": base64.b64encode(sig).decode()}))
        return mine, lines[mine]

    mine, written = rewritten_open()
    r = office.cli("officer", "audit", "incident", str(mine), str(mine), "--reason",
                   "rewritten by its signer", env=m["officer"])
    assert r.exit_code == 0, r.stderr
    assert _declared(office)[-1]["leaves"] == [leaf_hash(written).hex()]
    mine, _ = rewritten_open()
    r = office.cli("officer", "audit", "incident", str(mine), str(mine), "--reason",
                   "rewritten", env={"VAULT_STATE_DIR": str(tmp_path / "new")})
    assert r.exit_code == 2 and f"line {mine} verifies in place" in r.stderr, r.stderr
    assert len(_declared(office)) == 1


def test_leaves_planted_before_an_honest_incident_are_not_recorded(tmp_path: Path) -> None:
    # Before the officer declared a damaged line, the clerk planted derived
    # hashes holding a leaf of her choosing for it, and a checkpoint over
    # that history, signed with the folder's log key at a size no
    # machine's tip has. The officer's honest incident recorded her leaf:
    # then 'audit verify' failed on every machine for good ("record 12
    # (clerk) has a bad signature"), and no later incident could correct it
    # (the first record's leaves stood).
    import shutil

    from vault.audit import leaf_hash

    office = make_office(tmp_path / "o", post_quantum=False)
    m = _machines(tmp_path, "officer", "clerk")
    m["leader"] = {"VAULT_STATE_DIR": str(tmp_path / "fresh")}
    assert office.cli("officer", "audit", "verify", env=m["officer"]).exit_code == 0
    _notes(office, m["clerk"], 6)
    r = office.cli("leader", "audit", "checkpoint", env=m["leader"])
    assert r.exit_code == 0, r.stderr
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(r.stdout)
    audit = office.path / "audit"
    backup = tmp_path / "backup"
    shutil.copytree(audit, backup, ignore=shutil.ignore_patterns("log", "log.key", "lock"))
    lines = office.raw.audit_lines()
    k = len(lines) - 4
    _flip(office, k)
    at = lines[k].index(b'"host":"') + len(b'"host":"')
    fake = lines[k][:at] + b"Q" + lines[k][at + 1:]
    _planted(office, k, fake, sizes=(k + 2,))
    for attempt in ([], ["--checkpoint", str(kept)]):
        r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                       *attempt, env=m["officer"])
        assert r.exit_code in (0, 4), r.stderr
        assert leaf_hash(fake).hex() not in json.dumps(_declared(office)), attempt
    # (Held to the officer's machine's own tip, which covers the line, a
    # declaration is refused while the planted leaf breaks the record after
    # it; one recorded carries no leaf.)
    assert len(_declared(office)) <= 1 and all("leaves" not in d for d in _declared(office))
    # What verification has to go on for that line is now the derived
    # data, anyone's to mend: the office restores it, and the checkpoints,
    # from a backup (the planted ones are kept aside as evidence), and the
    # officer declares the line again with the checkpoint kept outside.
    shutil.move(audit / "checkpoints", tmp_path / "evidence")
    for item in backup.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, audit / item.name)
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "again",
                   "--checkpoint", str(kept), env=m["officer"])
    assert r.exit_code == 0, r.stderr
    assert _declared(office)[-1]["leaves"] == [leaf_hash(lines[k]).hex()]
    for w, env in m.items():
        r = office.cli(w, "audit", "verify", env=env)
        assert r.exit_code == 0 and r.stdout.startswith("ok: "), (w, r.stderr)
        r = office.cli(w, "audit", "verify", "--checkpoint", str(kept), env=env)
        assert r.exit_code == 0, (w, r.stderr)


def test_a_later_incident_corrects_the_leaves_an_earlier_one_carries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An incident recorded a wrong leaf for its line (declared before this
    # release checked where leaves come from, say): every verification
    # failed at the record after the line. The first record's leaves stood
    # against every later one; a later declaration now replaces them.
    import vault._ops.incident as incident
    from vault.audit import leaf_hash

    office = make_office(tmp_path / "o", post_quantum=False)
    m = _machines(tmp_path, "officer", "clerk")
    _notes(office, m["clerk"], 6)
    r = office.cli("officer", "audit", "checkpoint", env=m["officer"])
    assert r.exit_code == 0, r.stderr
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(r.stdout)
    lines = office.raw.audit_lines()
    k = len(lines) - 4
    _flip(office, k)
    with monkeypatch.context() as patch:
        patch.setattr(incident, "_original_leaves", lambda *_: ["ab" * 32])
        patch.setattr(incident, "_explains", lambda *_: None)
        r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                       env={"VAULT_STATE_DIR": str(tmp_path / "elsewhere")})
        assert r.exit_code == 0, r.stderr
    r = office.cli("clerk", "audit", "verify", env=m["clerk"])
    assert r.exit_code == 4, r.stderr
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "corrected",
                   "--checkpoint", str(kept), env=m["officer"])
    assert r.exit_code == 0, r.stderr
    assert _declared(office)[-1]["leaves"] == [leaf_hash(lines[k]).hex()]
    for w, env in m.items():
        r = office.cli(w, "audit", "verify", "--checkpoint", str(kept), env=env)
        assert r.exit_code == 0, (w, r.stderr)
        assert office.cli(w, "audit", "prove", "1", env=env).exit_code == 0


def test_a_replay_judges_the_record_after_a_sealed_off_line_by_the_line_as_written(
        tmp_path: Path) -> None:
    # A disk error changed one byte of line k, a seal's completion; line
    # k+1 is the clerk's honest decision to seal the next note. The
    # officer's incident carries the leaf line k had when written and
    # 'verify' is ok everywhere -- but every machine replaying the log since
    # the damage (a new one, a rebuilt one, one that read it before the
    # incident) checked record k+1's signature over the damaged line and
    # silently refused it: the note vanished from 'ls' there, and 'doctor'
    # called the honest document "planted ... remove it".
    import shutil

    office, m = _office_read_by(tmp_path, ("officer", "clerk"), 6, ("officer",))
    lines = office.raw.audit_lines()
    k = len(lines) - 3
    damaged, decision = json.loads(lines[k]), json.loads(lines[k + 1])
    assert (damaged["action"], damaged["outcome"]) == ("seal", "done")
    assert (decision["action"], decision["outcome"]) == ("seal", "allowed")
    _flip(office, k)
    # A machine that read the log after the damage, before the incident.
    m["registrar"] = {"VAULT_STATE_DIR": str(tmp_path / "registrar-state")}
    assert office.cli("registrar", "ls", env=m["registrar"]).exit_code == 0
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=m["officer"])
    assert r.exit_code == 0, r.stderr
    assert "leaves" in _declared(office)[-1]
    shutil.rmtree(tmp_path / "clerk-state")  # the clerk's machine rebuilds its state
    m["leader"] = {"VAULT_STATE_DIR": str(tmp_path / "new-state")}  # a new machine
    for who, env in m.items():
        r = office.cli(who, "audit", "verify", env=env)
        assert r.exit_code == 0, (who, r.stderr)
        r = office.cli(who, "ls", env=env)
        assert r.exit_code == 0 and decision["doc"] in r.stdout, (who, r.stderr)
        r = office.cli(who, "doctor", env=env)
        assert r.exit_code == 0, (who, r.stdout, r.stderr)
        assert "planted" not in r.stdout + r.stderr, (who, r.stdout, r.stderr)
    # The document whose completion the incident sealed off is the honest
    # one the clerk sealed: a repair keeps it, as evidence, and says so.
    stored = sorted(p.name for p in (office.path / "docs").iterdir())
    assert any(name.startswith(damaged["doc"]) for name in stored)
    r = office.cli("officer", "doctor", "--repair", env=m["leader"])
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert f"a version of {damaged['doc']} whose completion an incident may have sealed off" \
        in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert sorted(p.name for p in (office.path / "docs").iterdir()) == stored


@pytest.mark.parametrize("derived", ["kept", "rebuilt"])
def test_a_declaration_is_held_to_the_tip_of_a_machine_that_did_not_stop(
        tmp_path: Path, derived: str) -> None:
    # A folder writer flipped one byte of another user's line below what
    # the officer's machine verified (not its last line: the machine does
    # not notice at opening, and does not stop), deleted the derived files
    # and sealed once, rebuilding them from the damaged line. The officer's
    # declaration from that machine was held to nothing: recorded without
    # leaves, and from then on 'verify' failed on every machine, the
    # officer's own tip never reproduced again. Now it is held to the
    # machine's tip, stopped or not: with the original leaf still in the
    # derived data it is recorded with it, and verify is ok; without, it
    # is refused and nothing is declared.
    office = make_office(tmp_path / "o", post_quantum=False)
    m = _machines(tmp_path, "officer", "clerk", "registrar")
    for i in range(3):
        for who in ("registrar", "clerk"):
            r = office.cli(who, "seal", str(office.file(f"{who}{i}.txt", b"%d\n" % i)),
                           env=m[who])
            assert r.exit_code == 0, r.stderr
    assert office.cli("officer", "audit", "verify", env=m["officer"]).exit_code == 0
    lines = office.raw.audit_lines()
    k = max(i for i, line in enumerate(lines[:-2])
            if json.loads(line)["actor"]["name"] == "registrar")
    _flip(office, k)
    if derived == "rebuilt":
        for name in ("hashes", "index"):
            (office.path / "audit" / name).unlink()
    r = office.cli("clerk", "seal", str(office.file("x.txt", b"x\n")),
                   env={"VAULT_STATE_DIR": str(tmp_path / "throwaway")})
    assert r.exit_code == 0, r.stderr
    assert office.cli("officer", "ls", env=m["officer"]).exit_code == 0  # it did not stop
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "damaged",
                   env=m["officer"])
    if derived == "rebuilt":
        assert r.exit_code == 4 and r.stdout == "", (r.stdout, r.stderr)
        assert "verified before" in r.stderr, r.stderr
        assert _declared(office) == []
        return
    assert r.exit_code == 0, r.stderr
    assert _declared(office)[-1]["leaves"] == [vault.audit.leaf_hash(lines[k]).hex()]
    for who, env in m.items():
        r = office.cli(who, "audit", "verify", env=env)
        assert r.exit_code == 0, (who, r.stderr)


def test_a_machine_that_read_the_log_only_after_the_damage_records_no_leaves(
        tmp_path: Path) -> None:
    # A disk error changed line k, and an append rebuilt the derived data
    # from the damaged line. Declared from a machine whose tip was first
    # made after that, the incident recorded the damaged line's own leaf as
    # its "original" (it reproduces that tip): the office then restored
    # audit/hashes from a backup made before the damage, as DEPLOYMENT.md
    # §14 says, but the recorded leaf stood against it and the stored
    # checkpoint signed before the damage could never be excused again.
    import shutil

    office = make_office(tmp_path / "o", post_quantum=False)
    m = _machines(tmp_path, "officer", "clerk")
    _notes(office, m["clerk"], 6)
    r = office.cli("officer", "audit", "checkpoint", env=m["officer"])
    assert r.exit_code == 0, r.stderr
    audit, backup = office.path / "audit", tmp_path / "backup"
    backup.mkdir()
    for name in ("hashes", "index"):
        shutil.copy(audit / name, backup / name)
    k = len(office.raw.audit_lines()) - 3
    _flip(office, k)
    for name in ("hashes", "index"):
        (audit / name).unlink()
    new = {"VAULT_STATE_DIR": str(tmp_path / "new-state")}
    r = office.cli("clerk", "seal", str(office.file("x.txt", b"x\n")), env=new)
    assert r.exit_code == 0, r.stderr
    r = office.cli("officer", "audit", "incident", str(k), str(k + 1), "--reason",
                   "disk error", env=new)
    assert r.exit_code == 0, r.stderr
    assert _declared(office) == [{"from": k, "to": k + 1, "reason": "disk error"}]
    for name in ("hashes", "index"):
        shutil.copy(backup / name, audit / name)
    r = office.cli("leader", "audit", "verify",
                   env={"VAULT_STATE_DIR": str(tmp_path / "auditor")})
    assert r.exit_code == 0, r.stderr
    assert "checkpoint" in r.stderr and "incident sealed off" in r.stderr, r.stderr


def test_a_machine_keeps_the_original_leaves_it_confirmed(tmp_path: Path) -> None:
    # A disk error changed one byte of line k; the officer declared it from
    # a new laptop, which tells no original leaf, so the record carries
    # none (FORMAT.md §14.8) -- and said nothing about it. 'verify' was ok
    # while the derived data held the original leaf; once a folder writer
    # deleted it and an append rebuilt it from the damaged line, the
    # machines that had verified the log before the damage failed 'verify'
    # and 'prove' for good: their own tips, and the record after the line,
    # no longer matched anything. Now each keeps the leaves it confirmed.
    office, m = _office_read_by(tmp_path, ("clerk", "registrar"), 6, ("registrar",))
    k = len(office.raw.audit_lines()) - 3
    _flip(office, k)
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env={"VAULT_STATE_DIR": str(tmp_path / "laptop")})
    assert r.exit_code == 0, r.stderr
    assert "leaves" not in _declared(office)[-1]
    assert "note: the incident carries no original leaves" in r.stderr, r.stderr
    assert "--checkpoint FILE" in r.stderr, r.stderr
    for who, env in m.items():
        r = office.cli(who, "audit", "verify", env=env)
        assert r.exit_code == 0, (who, r.stderr)
    for name in ("hashes", "index"):
        (office.path / "audit" / name).unlink()
    r = office.cli("clerk", "seal", str(office.file("z.txt", b"z\n")),
                   env={"VAULT_STATE_DIR": str(tmp_path / "elsewhere")})
    assert r.exit_code == 0, r.stderr
    for who, env in m.items():
        r = office.cli(who, "audit", "verify", env=env)
        assert r.exit_code == 0, (who, r.stderr)
        r = office.cli(who, "audit", "prove", str(k + 1), env=env)
        assert r.exit_code == 0, (who, r.stderr)
    # And each counts what a new machine counts: nothing of line k.
    fresh = office.cli("registrar", "ls", env={"VAULT_STATE_DIR": str(tmp_path / "new")})
    for env in m.values():
        assert office.cli("registrar", "ls", env=env).stdout == fresh.stdout


def _batch_with_a_sealed_off_completion(tmp_path: Path, *, rewrite: bool
                                        ) -> tuple[Office, dict[str, dict[str, str]], int,
                                                   list[str]]:
    """The clerk seals one note, then three in one batch (one run: unsigned
    completions, the last signed); two machines verify the log. A disk
    error flips one byte of the batch's first unsigned completion (line
    L), the officer declares it with its original leaf, and -- ``rewrite``
    -- a folder writer then rewrites line L: the clerk's record, unsigned,
    with the document's payload hash changed. Returns the office, the
    machines (officer, registrar: read the log before; leader: new), L and
    the batch's documents (L's first)."""
    office = make_office(tmp_path / "o", post_quantum=False)
    m = _machines(tmp_path, "officer", "clerk", "registrar")
    r = office.cli("clerk", "seal", str(office.file("a.txt", b"x\n")), env=m["clerk"])
    assert r.exit_code == 0, r.stderr
    r = office.cli("clerk", "seal", *(str(office.file(f"b{i}.txt", b"batch %d\n" % i))
                                      for i in (1, 2, 3)), env=m["clerk"])
    assert r.exit_code == 0, r.stderr
    for w in ("officer", "registrar"):
        assert office.cli(w, "audit", "verify", env=m[w]).exit_code == 0
    lines = office.raw.audit_lines()
    records = [json.loads(line) for line in lines]
    at = next(i for i, rec in enumerate(records)
              if rec.get("outcome") == "done" and "sig" not in rec)
    batch = [rec["doc"] for rec in records[at:] if rec.get("outcome") == "done"]
    assert len(batch) == 3 and "sig" in records[at + 2]
    _flip(office, at)
    r = office.cli("officer", "audit", "incident", str(at), str(at), "--reason", "disk error",
                   env=m["officer"])
    assert r.exit_code == 0, r.stderr
    assert "leaves" in _declared(office)[-1]
    if rewrite:
        forged = records[at]
        forged["state"]["document"]["statement"]["content"]["payload"] = "00" * 32
        office.raw.set_audit_line(at, json.dumps(forged, separators=(",", ":"),
                                                 sort_keys=True).encode())
    m["leader"] = {"VAULT_STATE_DIR": str(tmp_path / "new-state")}
    return office, m, at, batch


@pytest.mark.parametrize("rewrite", [True, False])
def test_a_record_on_a_sealed_off_line_never_counts(tmp_path: Path, rewrite: bool) -> None:
    # A folder writer rewrote an unsigned record of the clerk's batch run at
    # a line the officer had sealed off: the run's signature verifies over
    # the line as written (the leaf the incident carries), and every
    # machine -- those that read the log before as much as a new one --
    # applied the run as it now reads, her line too: the clerk's document
    # recorded with her payload hash. What a sealed-off line says never
    # counts, whatever signature covers it; the run's other records do.
    office, m, at, batch = _batch_with_a_sealed_off_completion(tmp_path, rewrite=rewrite)
    for who, env in m.items():
        r = office.cli(who, "audit", "verify", env=env)
        assert r.exit_code == 0, (who, r.stderr)
        assert "sealed off" in r.stderr and "bad signature" not in r.stderr, (who, r.stderr)
        r = office.cli(who, "ls", env=env)
        assert r.exit_code == 0, (who, r.stderr)
        assert batch[0] not in r.stdout and all(d in r.stdout for d in batch[1:]), (who, r.stdout)
        with vault.Vault(office.location, office.ids[who],
                         state_dir=env["VAULT_STATE_DIR"]) as v:
            assert v._s.trusted.doc(batch[0]) is None
            notes = [n for n in v.doctor().notes if f"audit record {at} " in n]
            assert notes and "sealed off by incident record" in notes[0], notes
        r = office.cli(who, "doctor", env=env)
        assert r.exit_code == 0, (who, r.stdout, r.stderr)
    for doc in batch[1:]:  # the clerk's other documents of the run still open
        r = office.cli("clerk", "open", doc, "-o", str(tmp_path / f"{doc}.txt"),
                       env={"VAULT_STATE_DIR": str(tmp_path / "clerk-new")})
        assert r.exit_code == 0, r.stderr
    # The sealed-off completion's document: kept as evidence by a repair.
    stored = sorted(p.name for p in (office.path / "docs").iterdir())
    assert any(name.startswith(batch[0]) for name in stored)
    r = office.cli("officer", "doctor", "--repair", env=m["officer"])
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert f"a version of {batch[0]} whose completion an incident may have sealed off" \
        in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert sorted(p.name for p in (office.path / "docs").iterdir()) == stored


@pytest.mark.parametrize("incident", [True, False])
def test_an_incident_shields_no_file_planted_under_an_open_decision(
        tmp_path: Path, incident: bool) -> None:
    # The deputy's seal decision, its process killed before the file was
    # written; later an unrelated line (the clerk's) is damaged and sealed
    # off. Every file named like a version of the deputy's document was
    # then "kept as evidence, never removed by a repair" -- junk, another
    # document's file copied in -- and 'doctor --repair' exited 0. Only a
    # version an incident may have taken the completion of is kept.
    import os

    import vault._ops.seal as sealing

    office = make_office(tmp_path / "o", post_quantum=False)
    _seal(office, b"before")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies
        try:
            sealing._seal_one = lambda *a, **k: os._exit(9)  # type: ignore[attr-defined]
            office.as_("deputy").seal(io.BytesIO(b"x"), level="INTERNAL",
                                      compartments=["STAFF"])
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    decision = json.loads(office.raw.audit_lines()[-1])
    assert (decision["action"], decision["outcome"]) == ("seal", "allowed")
    doc = decision["doc"]
    for i in range(3):
        _seal(office, b"b %d" % i)
    office.as_("clerk").open(_seal(office, b"read"), io.BytesIO())
    inert = len(office.raw.audit_lines()) - 1  # the clerk's 'open' decision
    _seal(office, b"after")
    office.as_("officer").verify_audit()
    if incident:
        _flip(office, inert)
        office.as_("officer").declare_incident(inert, inert, reason="disk error")
    docs = office.path / "docs"
    other = next(p for p in docs.iterdir())
    (docs / f"{doc}.deadbeef.age").write_bytes(b"anything at all\n")
    (docs / f"{doc}.0badf00d.age").write_bytes(other.read_bytes())
    for i in range(3):
        (docs / f"{doc}.{i:08x}.age").write_bytes(os.urandom(64))
    planted = sorted(p.name for p in docs.iterdir() if p.name.startswith(doc))
    env = {"VAULT_STATE_DIR": str(tmp_path / "officer-state")}
    r = office.cli("officer", "doctor", "--repair", env=env)
    assert r.exit_code != 0, (r.stdout, r.stderr)
    assert "kept as evidence, never removed" not in r.stdout + r.stderr, r.stdout
    assert f"named like a version of {doc}, but it is not one" in r.stdout, r.stdout
    assert sorted(p.name for p in docs.iterdir() if p.name.startswith(doc)) == planted


def _kept_after_an_incident(office: Office, machines: dict[str, dict[str, str]],
                            doc: str) -> None:
    """Every machine: verify and doctor ok (the refused completion a note
    naming the incident), ``doc`` not listed (its decision is sealed off),
    its file kept by a repair as evidence."""
    for who, env in machines.items():
        r = office.cli(who, "audit", "verify", env=env)
        assert r.exit_code == 0, (who, r.stderr)
        r = office.cli(who, "ls", env=env)
        assert r.exit_code == 0 and doc not in r.stdout, (who, r.stdout, r.stderr)
        r = office.cli(who, "doctor", env=env)
        assert r.exit_code == 0, (who, r.stdout, r.stderr)
        out = r.stdout + r.stderr
        assert "planted" not in out, (who, out)
        assert f"seal decision of document {doc} this record completes" in out, (who, out)
        assert "vault age decrypt" in out, (who, out)
    stored = sorted(p.name for p in (office.path / "docs").iterdir())
    assert any(name.startswith(doc) for name in stored)
    for who, env in machines.items():
        r = office.cli("officer", "doctor", "--repair", env=env)
        assert r.exit_code == 0, (who, r.stdout, r.stderr)
        assert sorted(p.name for p in (office.path / "docs").iterdir()) == stored


def test_an_honest_seal_decision_sealed_off_leaves_its_document_as_evidence(
        tmp_path: Path) -> None:
    # A disk error flipped one byte of the clerk's signed seal decision; the
    # officer declared that line, with its original leaf. The completion
    # after it was refused as a problem on every machine for good ("no
    # allowed seal decision ... precedes this record"), doctor exited 4 and
    # called the honest document's file planted.
    office, m = _office_read_by(tmp_path, ("officer", "clerk", "registrar"), 3,
                                ("officer", "registrar"))
    records = [json.loads(line) for line in office.raw.audit_lines()]
    k = max(i for i, rec in enumerate(records)
            if (rec.get("action"), rec.get("outcome")) == ("seal", "allowed"))
    _flip(office, k)
    r = office.cli("clerk", "seal", str(office.file("after.txt", b"more\n")), env=m["clerk"])
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=m["officer"])
    assert r.exit_code == 0, r.stderr
    assert "leaves" in _declared(office)[-1]
    m["leader"] = {"VAULT_STATE_DIR": str(tmp_path / "new-state")}
    _kept_after_an_incident(office, m, records[k]["doc"])


def test_the_no_original_leaves_procedure_leaves_the_document_as_evidence(
        tmp_path: Path) -> None:
    # A disk error shortened the clerk's completion line k; a new machine's
    # seal rebuilt the derived data from it. The officer followed
    # DEPLOYMENT.md §14 ("no original leaves"): declared k..k+1 (the next
    # seal's decision, whose signature covers k) from a new machine and set
    # the old machines' state aside. The next seal's completion was then a
    # problem on every machine for good, its file called planted.
    import shutil

    office, m = _office_read_by(tmp_path, ("officer", "clerk", "registrar", "leader"), 6,
                                ("registrar", "officer"))
    lines = office.raw.audit_lines()
    k = len(lines) - 3
    decision = json.loads(lines[k + 1])
    assert (decision["action"], decision["outcome"]) == ("seal", "allowed")
    office.raw.set_audit_line(k, lines[k][:-5])
    r = office.cli("leader", "seal", str(office.file("after.txt", b"work\n")), env=m["leader"])
    fresh = {"VAULT_STATE_DIR": str(tmp_path / "officer-new-state")}
    r = office.cli("officer", "audit", "incident", str(k), str(k + 1), "--reason",
                   "disk error; k+1 breaks with it", env=fresh)
    assert r.exit_code == 0, r.stderr
    for w in ("officer", "clerk", "registrar"):  # set aside, as evidence
        shutil.move(m[w]["VAULT_STATE_DIR"], tmp_path / f"aside-{w}")
    m["officer"] = fresh
    for note in list((office.path / "audit" / "checkpoints").iterdir()):
        if int(note.name.split(".")[0]) > k:
            shutil.move(str(note), str(tmp_path / f"stored-{note.name}"))
    _kept_after_an_incident(office, m, decision["doc"])


def _rules_before(machines: dict[str, dict[str, str]], rules: str = "10") -> None:
    """Each machine's state as the release before left it: replayed under
    its rules (the log is then replayed again from its start)."""
    import sqlite3

    for env in machines.values():
        for db in Path(env["VAULT_STATE_DIR"]).glob("*.sqlite"):
            con = sqlite3.connect(db)
            with con:
                con.execute("UPDATE meta SET value = ? WHERE key = 'rules'", (rules,))
            con.close()


def _office_with_an_incident(tmp_path: Path) -> tuple[Office, dict[str, dict[str, str]], int]:
    """Every machine read the log; a disk error then flipped one byte of the
    clerk's last seal decision k, which the officer declared (with its
    original leaf), and every machine verified the log since."""
    office, m = _office_read_by(tmp_path, ("officer", "clerk", "registrar", "leader"), 5,
                                ("officer", "registrar", "leader"))
    k = len(office.raw.audit_lines()) - 2
    _flip(office, k)
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=m["officer"])
    assert r.exit_code == 0, r.stderr
    assert "leaves" in _declared(office)[-1]
    for note in list((office.path / "audit" / "checkpoints").iterdir()):
        if int(note.name.split(".")[0]) > k:  # signed over the damaged line: set aside
            note.unlink()
    for w, env in m.items():
        r = office.cli(w, "audit", "verify", env=env)
        assert r.exit_code == 0, (w, r.stderr)
    return office, m, k


def _office_with_an_incident_without_leaves(
        tmp_path: Path) -> tuple[Office, dict[str, dict[str, str]], int]:
    """The registrar's machine read the log; a disk error then flipped one
    byte of the clerk's last seal decision k, which the officer declared
    from a laptop that had never read the log: no original leaves."""
    office, m = _office_read_by(tmp_path, ("clerk", "registrar"), 5, ("registrar",))
    k = len(office.raw.audit_lines()) - 2
    _flip(office, k)
    m["officer"] = {"VAULT_STATE_DIR": str(tmp_path / "laptop")}
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason",
                   "disk error", env=m["officer"])
    assert r.exit_code == 0 and "leaves" not in _declared(office)[-1], r.stderr
    return office, m, k


@pytest.mark.parametrize("incident", [True, False])
def test_machines_that_knew_an_incident_replay_again_under_new_rules(
        tmp_path: Path, incident: bool) -> None:
    # Every machine that read the log before an honest, declared incident
    # stopped for good once a new release replayed the log again from its
    # start: the replay was held to its old tip without the original leaf
    # the incident carries ("no longer extends what this machine verified").
    if incident:
        office, m, _ = _office_with_an_incident(tmp_path)
    else:
        users = ("officer", "clerk", "registrar", "leader")
        office, m = _office_read_by(tmp_path, users, 3, users)
    fresh = office.cli("registrar", "ls", env={"VAULT_STATE_DIR": str(tmp_path / "new")})
    assert fresh.exit_code == 0, fresh.stderr
    _rules_before(m)
    for w, env in m.items():
        for command in (("audit", "verify"), ("doctor",)):
            r = office.cli(w, *command, env=env)
            assert r.exit_code == 0, (w, command, r.stdout, r.stderr)
        r = office.cli("registrar", "ls", env=env)
        assert r.exit_code == 0 and r.stdout == fresh.stdout, (w, r.stdout, r.stderr)


def test_a_line_changed_outside_an_incident_is_refused_when_replaying_again(
        tmp_path: Path) -> None:
    office, m, k = _office_with_an_incident(tmp_path)
    assert k != 4
    _flip(office, 4)  # a line every machine verified, which no incident seals off
    _rules_before(m)
    for w, env in m.items():
        r = office.cli(w, "audit", "verify", env=env)
        assert r.exit_code == 4 and "rolled back or rewritten" in r.stderr, (w, r.stderr)


def test_a_line_changed_while_a_machine_replays_an_incident_again_is_an_alarm(
        tmp_path: Path) -> None:
    # A folder writer changed one byte of a line below the registrar's tip
    # (its length kept) before its machine first met an honest incident,
    # then restored it: the replay from the start failed on her line and was
    # passed over, silently, the machine keeping the state of its first pass
    # -- it went on counting what the sealed-off line said, for good, while
    # every other machine did not (verify and doctor clean everywhere).
    office, m = _office_read_by(tmp_path, ("officer", "clerk", "registrar"), 5,
                                ("officer", "registrar"))
    k = len(office.raw.audit_lines()) - 2  # the clerk's last seal decision
    _flip(office, k)
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=m["officer"])
    assert r.exit_code == 0, r.stderr
    saved = office.raw.audit_lines()[4]
    _flip(office, 4)  # a line the registrar verified, no incident's
    r = office.cli("registrar", "ls", env=m["registrar"])
    assert r.exit_code == 4 and "rolled back or rewritten" in r.stderr, (r.stdout, r.stderr)
    office.raw.set_audit_line(4, saved)
    fresh = office.cli("registrar", "ls", env={"VAULT_STATE_DIR": str(tmp_path / "new")})
    assert fresh.exit_code == 0, fresh.stderr
    for w in ("registrar", "officer"):
        r = office.cli("registrar", "ls", env=m[w])
        assert r.exit_code == 0 and r.stdout == fresh.stdout, (w, r.stdout, fresh.stdout)



def test_copies_planted_beside_a_sealed_off_completion_never_cost_the_honest_file(
        tmp_path: Path) -> None:
    # After an honest incident over the clerk's seal completion, doctor kept
    # the document's stored version as evidence -- one per decision, the
    # first met. A folder writer planted copies of it under other version
    # names, one character of the header MAC changed (nothing without the
    # file key tells them apart); a copy was kept and 'doctor --repair'
    # removed the honest file, the only one the office could seal again.
    import secrets

    office, m = _office_read_by(tmp_path, ("officer", "clerk", "registrar"), 5,
                                ("officer", "registrar"))
    k = len(office.raw.audit_lines()) - 1  # the clerk's last completion
    state = json.loads(office.raw.audit_lines()[k])["state"]["document"]
    doc = state["doc"]
    honest = office.path / "docs" / f"{doc}.{state['version']}.age"
    _flip(office, k)
    r = office.cli("officer", "audit", "incident", str(k), str(k), "--reason", "disk error",
                   env=m["officer"])
    assert r.exit_code == 0, r.stderr
    for note in list((office.path / "audit" / "checkpoints").iterdir()):
        if int(note.name.split(".")[0]) > k:
            note.unlink()
    r = office.cli("officer", "doctor", env=m["officer"])
    assert r.exit_code == 0 and "kept as evidence" in r.stdout, (r.stdout, r.stderr)
    data = honest.read_bytes()
    at = data.index(b"\n--- ") + 5
    fake = data[:at] + (b"B" if data[at:at + 1] == b"A" else b"A") + data[at + 1:]
    copies = [office.path / "docs" / f"{doc}.{secrets.token_hex(4)}.age" for _ in range(16)]
    for copy in copies:
        copy.write_bytes(fake)
    for env in m.values():
        r = office.cli("officer", "doctor", "--repair", env=env)
        assert honest.exists() and all(c.exists() for c in copies), (r.stdout, r.stderr)
        # The officer must choose: a problem, naming the candidates.
        assert r.exit_code != 0, (r.stdout, r.stderr)
        out = r.stdout + r.stderr
        assert f"17 stored versions of {doc}" in out and honest.name in out, out


def test_a_sealed_off_line_rewritten_at_another_length_stops_no_machine(
        tmp_path: Path) -> None:
    # Any folder writer may rewrite a line an incident sealed off. Rewritten
    # at another length, every machine that had accepted the honest
    # incident stopped for good ("no longer extends what this machine
    # verified before"): its trusted tip was held to the byte offset its
    # lines ended at; an incident it knew explained nothing, and the
    # officer's new declaration of the same line did not either.
    office, m, k = _office_with_an_incident(tmp_path)
    line = office.raw.audit_lines()[k]
    host = line.index(b'"host":"') + len(b'"host":"')
    longer, shorter = line[:host] + b"EVIL-LONGER-" + line[host:], line[:host] + line[host + 2:]
    for i, rewritten in enumerate((longer, shorter)):
        assert len(rewritten) != len(line)
        office.raw.set_audit_line(k, rewritten)
        fresh = office.cli("registrar", "ls", env={"VAULT_STATE_DIR": str(tmp_path / f"new{i}")})
        assert fresh.exit_code == 0, fresh.stderr
        for w, env in m.items():
            r = office.cli("registrar", "ls", env=env)
            assert r.exit_code == 0 and r.stdout == fresh.stdout, (w, r.stderr)
            r = office.cli(w, "audit", "verify", env=env)
            assert r.exit_code == 0, (w, r.stderr)
        _notes(office, m["clerk"], 1)  # a writer goes on from where the lines end now
    r = office.cli("officer", "doctor", env=m["officer"])
    assert r.exit_code == 0 and "rewritten at another length" in r.stdout, r.stdout
    for w, env in m.items():
        r = office.cli(w, "audit", "prove", "1", env=env)
        assert r.exit_code == 0, (w, r.stderr)


@pytest.mark.parametrize("attack", ["longer", "rolled back"])
def test_a_line_not_sealed_off_rewritten_at_another_length_is_still_an_alarm(
        tmp_path: Path, attack: str) -> None:
    office, m, k = _office_with_an_incident(tmp_path)
    lines = office.raw.audit_lines()
    if attack == "longer":  # a line every machine verified, which no incident seals off
        assert k != 4
        office.raw.set_audit_line(4, lines[4].replace(b'"host":"', b'"host":"X', 1))
        office.raw.set_audit_line(k, lines[k].replace(b'"host":"', b'"host":"X', 1))
    else:  # the last line every machine verified cut off, the sealed-off one longer
        office.raw.set_audit_line(k, lines[k].replace(b'"host":"', b'"host":"XY', 1))
        office.raw.truncate_audit(len(lines) - 1)
    for w, env in m.items():
        r = office.cli(w, "audit", "verify", env=env)
        assert r.exit_code == 4 and "rolled back or rewritten" in r.stderr, (w, r.stderr)


def test_verify_rebuilds_junk_in_the_derived_hashes_keeping_the_original_leaves(
        tmp_path: Path) -> None:
    # After an honest incident carrying its leaf, a folder writer zeroed the
    # stored leaf of an ordinary line: 'verify' kept the derived hashes
    # ("they keep the original leaves") as it only looked at the
    # sealed-off line, and the junk stayed for good.
    from vault.audit import stored_hash_index

    office, m, k = _office_with_an_incident(tmp_path)
    hashes = office.path / "audit" / "hashes"
    at, two = 32 * stored_hash_index(0, k), 32 * stored_hash_index(0, 2)
    data = bytearray(hashes.read_bytes())
    original = bytes(data[at: at + 32])
    data[two: two + 32] = bytes(32)  # line 2's leaf
    hashes.write_bytes(bytes(data))
    r = office.cli("officer", "audit", "verify", env=m["officer"])
    assert r.exit_code == 0 and "rebuilt" in r.stdout + r.stderr, (r.stdout, r.stderr)
    data = bytearray(hashes.read_bytes())
    assert data[two: two + 32] != bytes(32) and data[at: at + 32] == original
    r = office.cli("officer", "audit", "checkpoint", env=m["officer"])
    assert r.exit_code == 0, r.stderr
    for w, env in m.items():
        r = office.cli(w, "audit", "prove", "2", env=env)
        assert r.exit_code == 0, (w, r.stderr)


@pytest.mark.parametrize("attack", ["longer", "without leaves", "same length, new rules"])
def test_a_machine_that_first_read_a_sealed_off_line_damaged_outlives_its_rewrite(
        tmp_path: Path, attack: str) -> None:
    # A machine set up after an honest incident made its trusted tip from
    # the sealed-off line as it read it -- the damaged line, whose leaf no
    # incident carries. A folder writer rewrote the line longer (or kept
    # its length, and the next release replayed the log from its start):
    # the tip's root could no longer be reproduced from the lines, and the
    # machine stopped for good ("no longer extends what this machine
    # verified before") -- every machine set up since the incident, and,
    # for an incident declared without leaves, every machine at all.
    if attack == "without leaves":
        office, m, k = _office_with_an_incident_without_leaves(tmp_path)
    else:
        office, m, k = _office_with_an_incident(tmp_path)
    m["new"] = {"VAULT_STATE_DIR": str(tmp_path / "new-machine")}
    for w, env in m.items():
        r = office.cli("registrar", "audit", "verify", env=env)
        assert r.exit_code == 0, (w, r.stderr)
    line = office.raw.audit_lines()[k]
    at = line.index(b'"host":"') + len(b'"host":"')
    if attack == "same length, new rules":
        office.raw.set_audit_line(k, line[:at] + b"Q" + line[at + 1:])
        _rules_before(m)
    else:
        office.raw.set_audit_line(k, line[:at] + b"EVIL-LONGER-" + line[at:])
    fresh = office.cli("registrar", "ls", env={"VAULT_STATE_DIR": str(tmp_path / "fresh")})
    assert fresh.exit_code == 0, fresh.stderr
    for w, env in m.items():
        r = office.cli("registrar", "ls", env=env)
        assert r.exit_code == 0 and r.stdout == fresh.stdout, (w, r.stderr)
        r = office.cli("registrar", "audit", "verify", env=env)
        assert r.exit_code == 0, (w, r.stderr)
    _notes(office, m["new"], 1)  # a writer goes on from where the lines end now
    for w, env in m.items():
        r = office.cli("registrar", "audit", "verify", env=env)
        assert r.exit_code == 0, (w, r.stderr)
        if attack != "without leaves":  # not promised then: docs/AUDIT.md §11.3
            r = office.cli("registrar", "audit", "prove", "1", env=env)
            assert r.exit_code == 0, (w, r.stderr)


def _rewritten_after_read(office: Office, k: int, line: bytes, reads: int,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder writer's timing, modelled on the log's reads (the smallest
    seam; nothing else is changed): line ``k`` becomes ``line`` (a sealed-off
    line: anyone may) just after the ``reads``-th reading of the log from
    its start got it -- while a machine's catch-up replays the log."""
    from vault.audit import LineSource
    from vault.audit._folder import FolderStorage

    real = FolderStorage.read
    count = [0]

    class Racing(LineSource):
        def __init__(self, inner: LineSource, last: bool) -> None:
            self._inner, self._last = inner, last

        def __iter__(self):  # type: ignore[no-untyped-def]
            seen = 0
            for block in self._inner:
                seen += len(block)
                if self._last and seen > k:  # the block holding line k is read
                    self._last = False
                    office.raw.set_audit_line(k, line)
                yield block

        @property
        def tail(self) -> bytes:  # type: ignore[override]
            return self._inner.tail

        def close(self) -> None:
            self._inner.close()

    def read(self: FolderStorage, start: int, offset: int, stop: object = None) -> LineSource:
        source = real(self, start, offset, stop)  # type: ignore[arg-type]
        if start != 0 or count[0] >= reads:
            return source
        count[0] += 1
        return Racing(source, count[0] == reads)

    monkeypatch.setattr(FolderStorage, "read", read)


@pytest.mark.parametrize("leaves", [True, False])
def test_a_rewrite_while_a_new_machine_first_replays_keeps_the_leaf_its_tip_holds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leaves: bool) -> None:
    # After an honest incident, a folder writer rewrote the sealed-off line
    # (same length) while a new machine first caught up: after its replay
    # read the line, before it told the leaf its tip's tree holds there,
    # which it did by reading the lines again. Neither the line's new leaf
    # nor the original reproduced the tip's root: nothing was kept, the
    # machine fell back to the original leaf its tip never held, and her
    # later rewrite of the line at another length stopped that machine for
    # good ("no longer extends what this machine verified before"), an
    # officer declaring the line again notwithstanding.
    if leaves:
        office, m, k = _office_with_an_incident(tmp_path)
    else:
        office, m, k = _office_with_an_incident_without_leaves(tmp_path)
        for w, env in m.items():  # each keeps the original leaf it confirms (§11.3)
            r = office.cli("registrar", "audit", "verify", env=env)
            assert r.exit_code == 0, (w, r.stderr)
    line = office.raw.audit_lines()[k]
    at = line.index(b'"host":"') + len(b'"host":"')
    with monkeypatch.context() as patch:
        _rewritten_after_read(office, k, line[:at] + b"Q" + line[at + 1:], 2, patch)
        new = {"VAULT_STATE_DIR": str(tmp_path / "new-machine")}
        r = office.cli("registrar", "ls", env=new)
        assert r.exit_code == 0, r.stderr
    assert office.raw.audit_lines()[k] != line  # the writer's rewrite landed
    line = office.raw.audit_lines()[k]
    office.raw.set_audit_line(k, line[:at] + b"EVIL-LONGER-" + line[at:])
    fresh = office.cli("registrar", "ls", env={"VAULT_STATE_DIR": str(tmp_path / "fresh")})
    assert fresh.exit_code == 0, fresh.stderr
    for w, env in {**m, "new": new}.items():
        r = office.cli("registrar", "ls", env=env)
        assert r.exit_code == 0 and r.stdout == fresh.stdout, (w, r.stderr)
    if leaves:  # without, the record after the line is judged by the derived data alone
        r = office.cli("registrar", "audit", "verify", env=new)
        assert r.exit_code == 0, r.stderr
    # Still held: a line no incident seals off changed is the alarm.
    lines = office.raw.audit_lines()
    assert k != 4
    office.raw.set_audit_line(4, lines[4].replace(b'"host":"', b'"host":"X', 1))
    r = office.cli("registrar", "ls", env=new)
    assert r.exit_code == 4 and "rolled back or rewritten" in r.stderr, r.stderr


@pytest.mark.parametrize("attack", [True, False])
def test_an_officer_set_up_after_an_incident_declares_another_after_a_rewrite(
        tmp_path: Path, attack: bool) -> None:
    # The officer's new laptop, set up after an honest incident, made its
    # tip from the damaged line; a folder writer then rewrote that line
    # (same length: nothing else notices). Every declaration from the
    # laptop -- a genuine disk error at another line too -- was held to the
    # laptop's tip with the leaves a fresh replay of the log as it is now
    # holds there, which never reproduce it: "the audit log differs from
    # the 22 lines this machine verified before at lines the incident does
    # not cover". Held to the leaves the laptop's own tip holds, it goes on;
    # a change at a line no incident covers is still refused.
    office, m, k = _office_with_an_incident(tmp_path)
    laptop = {"VAULT_STATE_DIR": str(tmp_path / "officer-new-laptop")}
    assert office.cli("officer", "audit", "verify", env=laptop).exit_code == 0
    line = office.raw.audit_lines()[k]
    at = line.index(b'"host":"') + len(b'"host":"')
    office.raw.set_audit_line(k, line[:at] + b"Q" + line[at + 1:])
    _notes(office, m["clerk"], 2)
    j = len(office.raw.audit_lines()) - 2
    _flip(office, j)
    if not attack:  # and a line no incident covers, at its length
        lines = office.raw.audit_lines()
        office.raw.set_audit_line(4, lines[4].replace(b'"host":"X', b'"host":"Y', 1)
                                  if b'"host":"X' in lines[4]
                                  else lines[4].replace(b'"host":"', b'"host":"X', 1)[:-1])
    r = office.cli("officer", "audit", "incident", str(j), str(j), "--reason",
                   "second disk error", env=laptop)
    if not attack:
        assert r.exit_code == 4 and "at lines the incident does not cover" in r.stderr, (
            r.stderr)
        return
    assert r.exit_code == 0, r.stderr
    assert _declared(office)[-1]["from"] == j
    for w, env in {**m, "laptop": laptop}.items():
        r = office.cli("registrar", "audit", "verify", env=env)
        assert r.exit_code == 0, (w, r.stderr)


def _renumbered(office: Office, k: int, how: str) -> list[bytes]:
    """Line ``k`` split in two (one byte of it a newline), joined with the
    line before it (the newline between them a byte of theirs), or a junk
    line inserted before it -- as a folder writer does it; the log before."""
    lines = office.raw.audit_lines()
    changed = list(lines)
    at = lines[k].index(b'"host":"') + len(b'"host":"')
    if how == "split":
        changed[k] = lines[k][:at] + b"\n" + lines[k][at + 1:]
    elif how == "join":
        changed[k - 1:k + 1] = [lines[k - 1] + b" " + lines[k][:at] + lines[k][at + 2:]]
    else:
        changed.insert(k, b"junk")
    (office.path / "audit" / "log").write_bytes(b"".join(x + b"\n" for x in changed))
    return lines


@pytest.mark.parametrize("how", ["split", "join", "insert"])
def test_lines_split_joined_or_inserted_are_never_silent_and_rejoined_stop_no_machine(
        tmp_path: Path, how: str) -> None:
    # A sealed-off line may be rewritten, but within itself (AUDIT.md §11.3).
    # A folder writer split it in two, joined it with the line before, or
    # inserted a junk line: a new machine listed one document fewer with
    # nothing on stderr (every record after it out of place, silently not
    # counting); once a writer rebuilt the derived data, every machine that
    # had read the log stopped, "changed while its derived files were
    # rebuilt". Now each says which line moved; the lines put back as
    # written, every machine works again.
    office, m, k = _office_with_an_incident(tmp_path)
    _notes(office, m["clerk"], 1)
    listed = office.cli("registrar", "ls", env=m["registrar"]).stdout
    lines = _renumbered(office, k, how)
    new = {"VAULT_STATE_DIR": str(tmp_path / "new")}
    r = office.cli("registrar", "ls", env=new)
    assert r.exit_code == 0 and r.stdout != listed, r.stderr
    moved = "inserted after line" if how != "join" else "removed, or lines after it joined"
    assert "records out of place" in r.stderr and moved in r.stderr, r.stderr
    r = office.cli("registrar", "doctor", env=new)
    assert "records out of place" in r.stderr and moved in r.stdout, r.stdout
    office.cli("clerk", "seal", str(office.file("z.txt", b"z\n")), env=m["clerk"])
    for w, env in m.items():  # the derived data rebuilt: every machine names the move
        r = office.cli(w, "audit", "verify", env=env)
        assert r.exit_code == 4 and "derived files were rebuilt" not in r.stderr and any(
            said in r.stderr for said in (" holds record ", "inserted at position",
                                          "no longer extends")), (w, r.stderr)
    (office.path / "audit" / "log").write_bytes(b"".join(x + b"\n" for x in lines))
    for w, env in m.items():
        r = office.cli("registrar", "ls", env=env)
        if how == "split" and r.exit_code == 4:
            # It read lines after the split while they were out of place:
            # its tip counts one line more (DEPLOYMENT.md §14 sets it aside).
            assert "no longer extends" in r.stderr, (w, r.stderr)
            continue
        assert r.exit_code == 0 and r.stdout == listed and r.stderr == "", (w, r.stderr)
        assert office.cli(w, "audit", "verify", env=env).exit_code == 0
    r = office.cli("registrar", "ls", env={"VAULT_STATE_DIR": str(tmp_path / "after")})
    assert r.exit_code == 0 and r.stdout == listed and r.stderr == "", r.stderr


def _stderr_of_every_command(office: Office, env: dict[str, str]) -> str:
    """What ``ls``, ``doctor`` and ``audit verify`` say on stderr, exit 0 each."""
    said = ""
    for args in (("ls",), ("doctor",), ("audit", "verify")):
        r = office.cli("registrar", *args, env=env)
        assert r.exit_code == 0, (args, r.stdout, r.stderr)
        said += r.stderr
    return said


@pytest.mark.parametrize("copies", [1, 2])
def test_a_record_copied_at_the_end_of_the_log_is_junk_set_aside(tmp_path: Path,
                                                                 copies: int) -> None:
    # A folder writer appended byte-exact copies of earlier signed records:
    # every command of every machine warned "records out of place: line 8
    # holds record 2: 6 lines inserted", verify and doctor exited 4 for
    # good and the torn record of the next writer set nothing aside --
    # though nothing moved. A record alone at another offset (or copies of
    # records already read in place) is a stray line, set aside as junk.
    office, m = _office_read_by(tmp_path, ("officer", "clerk", "registrar"), 3, ("registrar",))
    lines = office.raw.audit_lines()
    for i in range(copies):
        office.raw.append_audit_line(lines[2 + i])
    new = {"VAULT_STATE_DIR": str(tmp_path / "new")}
    assert "out of place" not in office.cli("registrar", "ls", env=new).stderr
    _notes(office, m["clerk"], 1)  # its torn record sets the copies aside
    for env in (m["registrar"], new, {"VAULT_STATE_DIR": str(tmp_path / "after")}):
        assert "out of place" not in _stderr_of_every_command(office, env)


def test_a_sealed_off_line_rewritten_as_a_copy_of_a_record_moves_nothing(
        tmp_path: Path) -> None:
    # A sealed-off line may hold any bytes without a newline (AUDIT.md
    # §11.3); rewritten as a copy of an earlier signed record, every new
    # machine warned "records out of place" on every command for good, even
    # once the line was restored.
    office, m, k = _office_with_an_incident(tmp_path)
    _notes(office, m["clerk"], 1)
    lines = office.raw.audit_lines()
    office.raw.set_audit_line(k, lines[2])
    new = {"VAULT_STATE_DIR": str(tmp_path / "new")}
    for env in (m["registrar"], new):
        r = office.cli("registrar", "ls", env=env)
        assert r.exit_code == 0 and "out of place" not in r.stderr, r.stderr
    office.raw.set_audit_line(k, lines[k])
    for env in (m["registrar"], new, {"VAULT_STATE_DIR": str(tmp_path / "after")}):
        r = office.cli("registrar", "ls", env=env)
        assert r.exit_code == 0 and "out of place" not in r.stderr, r.stderr


def test_nothing_is_decided_while_records_are_out_of_place(tmp_path: Path) -> None:
    # A revoked registrar, still a folder writer, inserted one junk line
    # before the revocation's records: on a new machine they did not count,
    # and the clerk sealed CONFIDENTIAL//STAFF from it (a warning, exit 0)
    # under the old class key, which the registrar opened. Now every
    # command that decides refuses there, appending nothing, until the
    # lines are put back; a report (ls without titles, doctor) goes on.
    from vault_helpers import doc_file, held_secret_keys, opens_with

    cleared = "clearance: {level: INTERNAL, compartments: [STAFF]}"
    office = make_office(tmp_path / "o")
    office.apply({cleared: cleared.replace("INTERNAL", "CONFIDENTIAL")})
    old = office.as_("clerk").seal(office.file("c0.txt", b"before"), level="CONFIDENTIAL",
                                   compartments=["STAFF"]).id
    before = len(office.raw.audit_lines())
    assert office.apply({}).revoked == ["registrar: CONFIDENTIAL//STAFF"]
    lines = office.raw.audit_lines()
    log = office.path / "audit" / "log"
    log.write_bytes(b"".join(x + b"\n" for x in [*lines[:before], b"junk", *lines[before:]]))
    written = log.read_bytes()
    new = {"VAULT_STATE_DIR": str(tmp_path / "clerk-new")}
    late = str(office.file("late.txt", b"after the revocation\n"))
    for args in (("seal", late, "--level", "CONFIDENTIAL", "--compartment", "STAFF"),
                 ("open", old, "-o", str(tmp_path / "opened")), ("info", old),
                 ("rotate",), ("doctor", "--repair")):
        who = "officer" if args[0] in ("rotate", "doctor") else "clerk"
        r = office.cli(who, *args, env=new)
        assert r.exit_code == 4 and "records out of place" in r.stderr \
            and "DEPLOYMENT.md §14" in r.stderr, (args, r.stderr)
    assert log.read_bytes() == written  # nothing appended: it would be out of place itself
    r = office.cli("clerk", "ls", env=new)
    assert r.exit_code == 0 and "records out of place" in r.stderr and "c0.txt" not in r.stdout
    r = office.cli("officer", "doctor", env=new)
    assert r.exit_code == 4 and "inserted after line" in r.stdout, r.stdout
    log.write_bytes(b"".join(x + b"\n" for x in office.raw.audit_lines()[:before] + lines[before:]))
    after = {"VAULT_STATE_DIR": str(tmp_path / "clerk-after")}
    r = office.cli("clerk", "seal", late, "--level", "CONFIDENTIAL", "--compartment", "STAFF",
                   env=after)
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    doc = r.stdout.strip().split()[-1]
    assert not opens_with(held_secret_keys(office, "registrar"), doc_file(office, doc), tmp_path)


def _registrar_cleared(tmp_path: Path) -> Office:
    """An office whose registrar is cleared for CONFIDENTIAL//STAFF."""
    cleared = "clearance: {level: INTERNAL, compartments: [STAFF]}"
    office = make_office(tmp_path / "o")
    office.apply({cleared: cleared.replace("INTERNAL", "CONFIDENTIAL")})
    return office


def _listed_on(office: Office, tmp_path: Path, *users: str) -> dict[str, dict[str, str]]:
    """A machine of each of ``users`` that has read the log (``ls``)."""
    m = _machines(tmp_path, *users)
    for w, env in m.items():
        assert office.cli(w, "ls", env=env).exit_code == 0
    return m


def _moved_by(office: Office, how: str) -> tuple[bytes, bytes]:
    """The log as written, and as a folder writer without a key left it:
    two copies of the last record numbered 1000 and 1001 lines ahead (off
    by as much), or one junk line before the records of a revocation."""
    log = office.path / "audit" / "log"
    if how == "numbered ahead":
        written = log.read_bytes()
        lines = written.split(b"\n")[:-1]
        forged = []
        for k in (1000, 1001):
            record = json.loads(lines[-1])
            record["seq"] = len(lines) + k
            forged.append(json.dumps(record, separators=(",", ":"), sort_keys=True).encode())
        return written, written + b"".join(x + b"\n" for x in forged)
    before = len(office.raw.audit_lines())
    assert office.apply({}).revoked == ["registrar: CONFIDENTIAL//STAFF"]
    written = log.read_bytes()
    lines = written.split(b"\n")[:-1]
    return written, b"".join(x + b"\n" for x in [*lines[:before], b"junk", *lines[before:]])


@pytest.mark.parametrize("how", ["numbered ahead", "junk before a revocation"])
def test_reports_append_nothing_while_records_are_out_of_place(tmp_path: Path,
                                                               how: str) -> None:
    # While records were out of place, 'ls' (exit 0) and the read-only
    # 'doctor' appended a torn record setting the moved lines aside -- a
    # revocation's records with them -- and their own record, and moved
    # the machine's trusted tip past those lines: with the lines put back
    # as written, what they appended was out of place itself (exit 4 on
    # every machine), and with the log cut back to before the attack every
    # machine that had listed stopped ("no longer extends what this machine
    # verified... treat this as an incident"), though no incident applies.
    office = _registrar_cleared(tmp_path)
    doc = office.as_("clerk").seal(office.file("a.txt", b"hello\n"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    office.as_("clerk").seal(office.file("c0.txt", b"before"), level="CONFIDENTIAL",
                             compartments=["STAFF"])  # the registrar holds its key
    m = _listed_on(office, tmp_path, "clerk", "officer")
    log = office.path / "audit" / "log"
    written, planted = _moved_by(office, how)
    log.write_bytes(planted)
    for w, env in m.items():
        r = office.cli(w, "ls", env=env)
        assert r.exit_code == 0 and "records out of place" in r.stderr, r.stderr
        assert office.cli(w, "doctor", env=env).exit_code == 4
        assert office.cli(w, "doctor", "--json", env=env).exit_code == 4
    assert log.read_bytes() == planted  # nothing appended: not even a torn record
    r = office.cli("officer", "audit", "checkpoint", env=m["officer"])
    assert r.exit_code == 4 and "records out of place" in r.stderr, r.stderr
    assert not (office.path / "audit" / "checkpoints").exists() or not any(
        (office.path / "audit" / "checkpoints").iterdir())
    # The office puts the lines back as written (DEPLOYMENT.md §14): the
    # planted ones removed, all else kept -- which is the log as written.
    stray = set(planted.split(b"\n")) - set(written.split(b"\n"))
    repaired = b"".join(x + b"\n" for x in log.read_bytes().split(b"\n")[:-1] if x not in stray)
    assert repaired == written
    log.write_bytes(repaired)
    new = {"VAULT_STATE_DIR": str(tmp_path / "new")}
    for i, (w, env) in enumerate((*m.items(), ("clerk", new))):
        for args in (("open", doc, "-o", str(tmp_path / f"opened-{i}.txt")),
                     ("seal", str(office.file(f"after-{i}.txt", b"after\n"))), ("ls",)):
            r = office.cli(w if args == ("ls",) else "clerk", *args, env=env)
            assert r.exit_code == 0 and "out of place" not in r.stderr \
                and "warning" not in r.stderr, (i, args, r.stderr)
    assert office.cli("officer", "audit", "verify", env=m["officer"]).exit_code == 0


def _back_in_place(office: Office, how: str) -> tuple[bytes, bytes]:
    """The log as written, and as an insider left it: one junk line before
    the records of a revocation, then the last record back in its own place
    -- two of the later lines joined, a copy of the last record renumbered
    to its new line (its signature no longer valid), or one valid record of
    the registrar's own."""
    import base64
    import hashlib

    from vault.audit._chain import SIGNING_CONTEXT
    from vault.audit._hashing import leaf_hash
    from vault.audit._record import canonical_json

    before = len(office.raw.audit_lines())
    assert office.apply({}).revoked == ["registrar: CONFIDENTIAL//STAFF"]
    log = office.path / "audit" / "log"
    written = log.read_bytes()
    w = written.split(b"\n")[:-1]
    planted = [*w[:before], b"junk", *w[before:]]
    if how == "two lines joined":
        planted = [*planted[:-3], planted[-3] + planted[-2], planted[-1]]
    else:
        record = json.loads(w[-1])
        record["seq"] = len(planted)
        if how == "a record of her own":
            ident = office.ids["registrar"]
            record.pop("sig")
            record["actor"] = {"key": ident.fingerprint, "name": "registrar"}
            chain = hashlib.sha256(leaf_hash(planted[-1])).digest()
            record["sig"] = base64.b64encode(ident.signing_key.sign(
                SIGNING_CONTEXT + chain + canonical_json(record))).decode()
        planted.append(canonical_json(record))
    return written, b"".join(x + b"\n" for x in planted)


@pytest.mark.parametrize("how", ["two lines joined", "a renumbered copy",
                                 "a record of her own"])
def test_no_checkpoint_over_records_out_of_place_before_a_settle_point(
        tmp_path: Path, how: str) -> None:
    # 'audit checkpoint' looked only at the lines after the last settle
    # point: a record in its own place after the moved ones -- two lines
    # joined, a copy renumbered (its signature never checked there) or a
    # record of one's own -- had the log key sign over records out of
    # place, so once the lines were put back as written 'audit verify' and
    # 'doctor' exited 4 on every machine, new ones too, suspecting the
    # officer who holds the log key.
    office = _registrar_cleared(tmp_path)
    office.as_("clerk").seal(office.file("c0.txt", b"x"), level="CONFIDENTIAL",
                             compartments=["STAFF"])
    m = _listed_on(office, tmp_path, "clerk", "officer")
    log = office.path / "audit" / "log"
    written, planted = _back_in_place(office, how)
    log.write_bytes(planted)
    checkpoints = office.path / "audit" / "checkpoints"
    new = {"VAULT_STATE_DIR": str(tmp_path / "new")}
    for env in (m["officer"], new):
        r = office.cli("officer", "audit", "checkpoint", env=env)
        assert r.exit_code == 4 and "records out of place" in r.stderr, r.stderr
        assert "put the lines back" in r.stderr or "puts the lines back" in r.stderr, r.stderr
    # The log alone, without a vault's replay, signs nothing either: not
    # on demand, not for a proof, not when one falls due.
    standalone = vault.audit.AuditLog.open(log.parent)
    with pytest.raises(AuditIntegrityError, match="records out of place"):
        standalone.checkpoint()
    with pytest.raises(AuditIntegrityError, match="records out of place"):
        standalone.prove(len(planted.split(b"\n")) - 2)
    assert not checkpoints.exists() or not any(checkpoints.iterdir())
    # verify and migrate name them as every command does: no incident.
    for args in (("audit", "verify"), ("migrate", "--to", str(tmp_path / "moved-to"))):
        r = office.cli("officer", *args, env=new)
        assert r.exit_code == 4 and "put the lines back as written" in r.stderr \
            and "security incident" not in r.stderr, (args, r.stderr)
    assert log.read_bytes() == planted
    log.write_bytes(written)  # put back as written (DEPLOYMENT.md §14)
    for env in (m["officer"], new):
        for args in (("audit", "verify"), ("doctor",)):
            r = office.cli("officer", *args, env=env)
            assert r.exit_code == 0, (args, r.stderr)
    r = office.cli("officer", "audit", "checkpoint", env=m["officer"])
    assert r.exit_code == 0, r.stderr


# -- lines planted while a writer waits for the lock ----------------------------


def _planted_ahead(lines: list[bytes]) -> list[bytes]:
    """Two copies of the last record numbered 1000 lines ahead (records out
    of place), then a copy renumbered to its own new line: a settle point
    as the trailing run reads it (its signature is not checked there)."""
    from vault.audit._record import canonical_json

    n = len(lines)

    def copy(seq: int) -> bytes:
        record = json.loads(lines[-1])
        record["seq"] = seq
        return canonical_json(record)

    return [copy(n + 1000), copy(n + 1001), copy(n + 2)]


@pytest.mark.parametrize("victim", ["seal", "open"])
def test_a_turn_appends_nothing_after_records_planted_while_it_waits_for_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    # A folder writer without a key held the log's lock while an honest
    # command, past its check for records out of place, waited for it; she
    # appended two records numbered 1000 lines ahead and a copy renumbered
    # to its own line, and let go. The turn looked only after that seeming
    # settle point: the seal appended its records after the planted lines
    # (exit 4, "recorded but does not count"), the open delivered the
    # plaintext, and once the planted lines were removed every machine
    # exited 4 for good ("3 lines after line 5 removed"). The race is
    # modelled here: the lines are planted as the turn's catch-up starts.
    from vault.audit import _writer

    office = make_office(tmp_path / "o")
    doc = office.as_("clerk").seal(office.file("a.txt", b"secret\n"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    m = _machines(tmp_path, "clerk", "officer")
    for w, env in m.items():
        assert office.cli(w, "ls", env=env).exit_code == 0
    log = office.path / "audit" / "log"
    written = log.read_bytes()
    planted = b"".join(x + b"\n" for x in _planted_ahead(written.split(b"\n")[:-1]))
    catch_up = _writer.Turn._catch_up
    raced: list[bool] = []

    def racing(turn: _writer.Turn, tip: object) -> None:
        if not raced:  # the first turn: the command's own, under the lock
            raced.append(True)
            with log.open("ab") as f:
                f.write(planted)
        catch_up(turn, tip)  # type: ignore[arg-type]

    monkeypatch.setattr(_writer.Turn, "_catch_up", racing)
    opened = tmp_path / "opened.txt"
    args = ("open", doc, "-o", str(opened)) if victim == "open" else (
        "seal", str(office.file("v.txt", b"victim\n")), "--level", "INTERNAL",
        "--compartment", "STAFF")
    r = office.cli("clerk", *args, env=m["clerk"])
    monkeypatch.undo()
    assert raced and r.exit_code == 4 and "records out of place" in r.stderr, r.stderr
    assert log.read_bytes() == written + planted  # nothing appended after them
    assert not opened.exists()
    log.write_bytes(written)  # put back as written (DEPLOYMENT.md §14)
    new = {"VAULT_STATE_DIR": str(tmp_path / "new")}
    for i, env in enumerate((m["clerk"], m["officer"], new)):
        for w, cmd in (("officer", ("doctor",)), ("officer", ("audit", "verify")),
                       ("clerk", ("open", doc, "-o", str(tmp_path / f"o{i}.txt"))),
                       ("clerk", ("seal", str(office.file(f"b{i}.txt", b"b\n")), "--level",
                                  "INTERNAL", "--compartment", "STAFF"))):
            r = office.cli(w, *cmd, env=env)
            assert r.exit_code == 0 and "out of place" not in r.stderr, (i, cmd, r.stderr)


def test_a_turn_passes_over_junk_lines_planted_while_it_waits_for_the_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Junk lines (a torn write, a crash) are no records out of place: the
    # turn that reads them sets them aside and goes on.
    from vault.audit import _writer

    office = make_office(tmp_path / "o")
    log = office.path / "audit" / "log"
    catch_up = _writer.Turn._catch_up
    raced: list[bool] = []

    def racing(turn: _writer.Turn, tip: object) -> None:
        if not raced:
            raced.append(True)
            with log.open("ab") as f:
                f.write(b'{"torn\n{"seq":3,\n')
        catch_up(turn, tip)  # type: ignore[arg-type]

    monkeypatch.setattr(_writer.Turn, "_catch_up", racing)
    r = office.cli("clerk", "seal", str(office.file("v.txt", b"v\n")), "--level", "INTERNAL",
                   "--compartment", "STAFF")
    monkeypatch.undo()
    assert raced and r.exit_code == 0, r.stderr
    assert office.cli("officer", "audit", "verify").exit_code == 0


_REVOKE_STAFF = {"clearance: {level: CONFIDENTIAL, compartments: [STAFF, FINANCE, BOARD]}":
                 "clearance: {level: CONFIDENTIAL, compartments: [FINANCE, BOARD]}"}


def _junk_before_write(monkeypatch: pytest.MonkeyPatch, log: Path, k: int) -> list[int]:
    """A folder writer without a key appends one junk line through her own
    descriptor, ignoring the lock, right before the ``k``-th write of the
    commands that follow: after that turn's catch-up, while it holds
    audit/lock. Returns the count of appends made so far."""
    from vault.audit import _folder

    append = _folder.FolderStorage.append
    made: list[int] = [0]

    def racing(storage: _folder.FolderStorage, lines: list[bytes], *at: int) -> None:
        made[0] += 1
        if made[0] == k:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b"x\n")
            finally:
                os.close(fd)
        append(storage, lines, *at)

    monkeypatch.setattr(_folder.FolderStorage, "append", racing)
    return made


def _raced(office: Office, monkeypatch: pytest.MonkeyPatch, k: int, who: str, *cmd: str,
           env: dict[str, str]) -> None:
    """``who`` runs ``cmd`` with the junk line slipped in before its
    ``k``-th write (:func:`_junk_before_write`): it fails, exit 1, nothing
    on stdout, naming the other writer."""
    made = _junk_before_write(monkeypatch, office.path / "audit" / "log", k)
    r = office.cli(who, *cmd, env=env)
    monkeypatch.undo()
    assert made[0] == k and r.exit_code == 1 and r.stdout == "", r.stderr
    assert "another writer wrote to the audit log during this append" in r.stderr, r.stderr


def _everyone_works(office: Office, tmp_path: Path, envs: list[dict[str, str]],
                    doc: str) -> None:
    for i, env in enumerate(envs):
        for w, cmd in (("clerk", ("ls",)), ("officer", ("audit", "verify")),
                       ("officer", ("doctor",)),
                       ("clerk", ("open", doc, "-o", str(tmp_path / f"again{i}.txt"))),
                       ("clerk", ("seal", str(office.file(f"b{i}.txt", b"b\n")), "--level",
                                  "INTERNAL", "--compartment", "STAFF"))):
            r = office.cli(w, *cmd, env=env)
            assert r.exit_code == 0 and "out of place" not in r.stderr, (i, cmd, r.stderr)


def _set_aside(office: Office) -> list[int]:
    """The lines torn records of the log set aside."""
    return [f["seq"] for x in office.raw.audit_lines() if x.startswith(b"{")
            for f in json.loads(x).get("fragments", [])]


def test_an_append_landing_after_lines_slipped_in_under_the_lock_does_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A folder writer without a key appended one junk line, ignoring the
    # lock, while the clerk's open held it between its catch-up and its
    # write: the 'open allowed' record landed a line late (record N on line
    # N + 1), nothing checked where, and the open delivered the plaintext;
    # the next writer set the junk and the misplaced record aside as torn,
    # and verify and doctor said ok everywhere: an open on no record that
    # counts. Now the write is found out of place: exit 1, nothing opened,
    # and the next writer's torn record sets the lines aside as before.
    office = make_office(tmp_path / "o")
    doc = _seal(office, b"secret\n")
    m = _listed_on(office, tmp_path, "clerk", "officer")
    before = len(office.raw.audit_lines())
    opened = tmp_path / "opened.txt"
    _raced(office, monkeypatch, 1, "clerk", "open", doc, "-o", str(opened), env=m["clerk"])
    assert not opened.exists()
    lines = office.raw.audit_lines()
    assert lines[before] == b"x" and json.loads(lines[before + 1])["seq"] == before
    # The clerk's machine, whose write was misplaced, goes on like the others.
    _everyone_works(office, tmp_path, [m["clerk"], m["officer"],
                                       {"VAULT_STATE_DIR": str(tmp_path / "new")}], doc)
    assert {before, before + 1} <= set(_set_aside(office))


def test_a_revocation_whose_completion_lands_out_of_place_fails_and_is_made_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same junk line, slipped in before the officer's 'policy apply'
    # wrote its completion: the command said it was done, the completion
    # was set aside as torn -- the clerk's STAFF clearance was never taken
    # back -- and the officer's machine, whose trusted tip was saved from
    # the wrong offsets, stopped for good ("no longer extends what this
    # machine verified"; an incident from it refused). Now the apply fails
    # before anything counts, and the officer applies the policy again.
    office = make_office(tmp_path / "o")
    doc = _seal(office, b"secret\n")
    m = _listed_on(office, tmp_path, "clerk", "officer")
    policy = office.write_policy(_REVOKE_STAFF)
    _raced(office, monkeypatch, 2, "officer", "policy", "apply", str(policy), env=m["officer"])
    for w, cmd in (("officer", ("ls",)), ("officer", ("audit", "verify")),
                   ("officer", ("policy", "apply", str(policy)))):
        r = office.cli(w, *cmd, env=m["officer"])
        assert r.exit_code == 0 and "out of place" not in r.stderr, (cmd, r.stderr)
    for i, env in enumerate((m["clerk"], {"VAULT_STATE_DIR": str(tmp_path / "new")})):
        out = tmp_path / f"revoked{i}.txt"
        r = office.cli("clerk", "open", doc, "-o", str(out), env=env)
        assert r.exit_code != 0 and not out.exists(), r.stderr
        assert office.cli("officer", "audit", "verify", env=env).exit_code == 0


def test_a_batch_landing_out_of_place_is_put_back_like_an_inserted_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two records slipped a line late are records out of place (AUDIT.md
    # §8): no torn record sets them aside, and nothing is decided until the
    # officer puts the lines back as written (DEPLOYMENT.md §14) -- as for
    # any line a folder writer inserts. The seal of two files did nothing,
    # and once the junk line is removed every machine, the clerk's too,
    # works again.
    office = make_office(tmp_path / "o")
    doc = _seal(office, b"secret\n")
    m = _listed_on(office, tmp_path, "clerk", "officer")
    log = office.path / "audit" / "log"
    _raced(office, monkeypatch, 1, "clerk", "seal", str(office.file("p.txt", b"p\n")),
           str(office.file("q.txt", b"q\n")), "--level", "INTERNAL", "--compartment", "STAFF",
           env=m["clerk"])
    r = office.cli("officer", "audit", "verify", env=m["officer"])
    assert r.exit_code == 4 and "out of place" in r.stderr, r.stderr
    log.write_bytes(b"".join(x + b"\n" for x in office.raw.audit_lines() if x != b"x"))
    _everyone_works(office, tmp_path, [m["clerk"], m["officer"],
                                       {"VAULT_STATE_DIR": str(tmp_path / "new")}], doc)
    assert len(office.as_("officer").ls()) == 4  # the first document and three seals since


def test_sealed_off_lines_rewritten_as_later_records_stop_no_checkpoint(tmp_path: Path) -> None:
    # An officer's incident sealed off damaged lines 5-6; a folder writer
    # then rewrote them (anyone may, AUDIT.md §11.3) as copies of two later
    # records. The replay passes over sealed-off lines ('audit verify' exit
    # 0), but the walk before signing did not: 'audit checkpoint' and every
    # proof were refused, "records out of place ... put back", and a log
    # handle whose checkpoint fell due raised on every append after writing
    # its line.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    office = make_office(tmp_path / "o", post_quantum=False)
    for i in range(3):
        office.as_("clerk").seal(office.file(f"a{i}.txt", b"hello %d\n" % i),
                                 level="INTERNAL", compartments=["STAFF"])
    m = _machines(tmp_path, "clerk", "officer")
    for w, env in m.items():
        assert office.cli(w, "ls", env=env).exit_code == 0
    log = office.path / "audit" / "log"
    lines = log.read_bytes().split(b"\n")[:-1]
    for j in (5, 6):  # damage: one byte changed in each
        lines[j] = lines[j][:20] + b"X" + lines[j][21:]
    log.write_bytes(b"".join(x + b"\n" for x in lines))
    r = office.cli("officer", "audit", "incident", "5", "6", "--reason", "disk damage",
                   env=m["officer"])
    assert r.exit_code == 0, r.stderr
    for i in range(2):
        r = office.cli("clerk", "seal", str(office.file(f"m{i}.txt", b"more\n")), "--level",
                       "INTERNAL", "--compartment", "STAFF", env=m["clerk"])
        assert r.exit_code == 0, r.stderr
    lines = log.read_bytes().split(b"\n")[:-1]
    n = len(lines)
    lines[5], lines[6] = lines[n - 3], lines[n - 2]
    log.write_bytes(b"".join(x + b"\n" for x in lines))
    new = {"VAULT_STATE_DIR": str(tmp_path / "new")}
    for env in (m["officer"], new):
        assert office.cli("officer", "audit", "verify", env=env).exit_code == 0
        r = office.cli("officer", "audit", "checkpoint", env=env)
        assert r.exit_code == 0, r.stderr
        r = office.cli("officer", "audit", "prove", str(n - 1), env=env)
        assert r.exit_code == 0, r.stderr
    # A log handle that knows no incident refuses, but never after writing.
    handle = vault.audit.AuditLog.open(log.parent, checkpoint_every=4)
    key = Ed25519PrivateKey.generate()
    for _ in range(3):
        before = log.read_bytes()
        with pytest.raises(AuditIntegrityError, match="records out of place"):
            handle.append({"actor": {"name": "x"}, "action": "note", "outcome": "allowed"}, key)
        assert log.read_bytes() == before


# -- a catch-up within an attempt meets records out of place ---------------------
#
# The check at an attempt's start is not the last word: a read that follows
# a document rewrapped meanwhile catches the state up with the log, and may
# meet there records out of place. The hook below models only that timing
# (the other person's real operations run just before the reader's file is
# opened, as tests/test_vault_seal_open.py's _meanwhile); the rest is real.

_CLEARED = "clearance: {level: INTERNAL, compartments: [STAFF]}"
_NO_CLERK_OPENS = ("rules:\n  - id: no-clerk-open\n    description: closed\n    effect: deny\n"
                   "    actions: [open]\n    who: {groups: [clerks]}\n\n")


def _junk_before_the_next_policy(office: Office, state: Path, revoke: bool) -> bytes:
    """On the officer's machine (``state``), a routine rotation rewraps every
    CONFIDENTIAL//STAFF document, then the officer applies a policy denying
    clerks 'open' -- or, with ``revoke``, one taking CONFIDENTIAL back from
    the registrar (rotating the class again); a folder writer inserts one
    junk line between the two. Returns the log's bytes as it stands then."""
    edit = {} if revoke else {_CLEARED: _CLEARED.replace("INTERNAL", "CONFIDENTIAL"),
                              "rules:\n": _NO_CLERK_OPENS}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VAULT_STATE_DIR", str(state))
        with office.as_("officer") as officer:
            officer.rotate(["CONFIDENTIAL//STAFF"], justification="routine")
            before = len(office.raw.audit_lines())
            report = officer.apply_policy(office.write_policy(edit))
    assert bool(report.revoked) == revoke
    lines = office.raw.audit_lines()
    log = office.path / "audit" / "log"
    log.write_bytes(b"".join(x + b"\n" for x in [*lines[:before], b"junk", *lines[before:]]))
    return log.read_bytes()


@pytest.mark.parametrize("how", ["open", "vault open", "ls --titles"])
@pytest.mark.parametrize("revoke", [False, True], ids=["denied", "revoked"])
def test_nothing_is_decided_when_a_read_catches_up_with_records_out_of_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, revoke: bool) -> None:
    # The registrar, a clerk and a folder writer, inserted one junk line
    # between a rotation that rewrapped the pay scales and the officer's
    # next policy (clerks may no longer open; or her CONFIDENTIAL revoked).
    # Her open, already past the check at its start, followed the rewrap
    # to the log, caught up to the junk line, decided under the old policy
    # and appended 'open allowed': she had the plaintext (under the
    # revocation: "missing from the vault ... treat it as an incident", a
    # false alarm), and ls --titles showed the title. Now the catch-up's
    # finding stops the attempt as it would at its start: exit 4, nothing
    # decrypted or appended; ls hides every title.
    from vault._ops.read import HIDDEN_OUT_OF_PLACE
    from vault.store.folder import FolderBackend

    office = make_office(tmp_path / "o")
    office.apply({_CLEARED: _CLEARED.replace("INTERNAL", "CONFIDENTIAL")})
    doc = office.as_("leader").seal(office.file("pay.txt", b"pay scales\n"),
                                    level="CONFIDENTIAL", compartments=["STAFF"],
                                    title="Pay scales 2025").id
    mine = tmp_path / "registrar-state"
    monkeypatch.setenv("VAULT_STATE_DIR", str(mine))
    assert office.cli("registrar", "open", doc, "-o", str(tmp_path / "earlier")).exit_code == 0
    plain = FolderBackend.open_document
    raced: list[str] = []
    written: list[bytes] = []

    def racing(backend: FolderBackend, doc_id: str, version: str) -> BinaryIO:
        if doc_id == doc and not raced:
            raced.append(version)  # first: the officer's rotation opens it too
            written.append(_junk_before_the_next_policy(office, tmp_path / "officer", revoke))
        return plain(backend, doc_id, version)

    monkeypatch.setattr(FolderBackend, "open_document", racing)
    out = tmp_path / "pay.txt"
    if how == "ls --titles":
        (listed,) = office.as_("registrar").ls(metadata=True)
        assert written and listed.id == doc
        assert (listed.title, listed.filename, listed.hidden) == (None, None, HIDDEN_OUT_OF_PLACE)
        # a report that meets them mid-attempt is unrecorded, as at its start
        assert (office.path / "audit" / "log").read_bytes() == written[0]
        return
    if how == "open":
        with pytest.raises(AuditIntegrityError, match="records out of place") as e:
            office.as_("registrar").open(doc, out)
        message = e.value.message
    else:
        r = office.cli("registrar", "open", doc, "-o", str(out))
        assert r.exit_code == 4, r.stderr
        message = r.stderr
    assert written and "records out of place" in message and "missing" not in message
    assert not out.exists()
    assert (office.path / "audit" / "log").read_bytes() == written[0]  # nothing appended
