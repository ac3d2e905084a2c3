"""doctor: does everything in the store agree with the verified audit log?
(docs/DESIGN.md §6.7)

Every kind of damage is named, by id or user: a document deleted, rolled
back, planted or with a swapped payload; a keyring entry changed or
missing; what interrupted writes left; a replaced checkpoint key. Damage to
derived data is repaired, never reported as tampering; an intact vault is
never a false alarm.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from backends import Kind
from vault_helpers import Office, make_office

import vault
from vault.errors import UsageError
from vault.store.base import owner_key


def _office_with_docs(tmp_path: Path, backend: Kind) -> tuple[Office, list[str]]:
    office = make_office(tmp_path, backend)
    ids = [office.as_("clerk").seal(office.file(f"{i}.txt", b"d" * i), level="INTERNAL",
                                    compartments=["STAFF"], title=f"title {i}").id
           for i in range(3)]
    office.as_("leader").reclassify(ids[0], level="SECRET", compartments=["BOARD"],
                                    justification="raise")
    return office, ids


def test_clean_vault_is_ok(tmp_path: Path, backend: Kind) -> None:
    office, _ = _office_with_docs(tmp_path, backend)
    for who in (None, "officer", "leader"):
        v = vault.Vault(office.location, office.ids[who] if who else None)
        report = v.doctor(deep=True)
        assert report.ok and report.documents == 3, report.problems
        assert report.leftovers == [], report.leftovers
    # Nothing stored holds a title or a file name.
    dump = b"".join(d for _, d in office.raw.blobs())
    assert b"title 1" not in dump and b"1.txt" not in dump


def test_a_deleted_document_is_named(tmp_path: Path, backend: Kind) -> None:
    office, ids = _office_with_docs(tmp_path, backend)
    office.raw.delete_doc(ids[1])
    report = vault.Vault(office.location).doctor()
    assert any(p.startswith(f"document {ids[1]}: missing") and "no shred" in p
               for p in report.problems)


def test_a_shredded_document_is_not_missing(tmp_path: Path, backend: Kind) -> None:
    office, ids = _office_with_docs(tmp_path, backend)
    office.as_("leader").shred(ids[1], justification="done with it")
    assert office.as_("officer").doctor().ok


def test_a_document_rolled_back_to_an_earlier_version_is_named(tmp_path: Path,
                                                               backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = office.as_("clerk").seal(io.BytesIO(b"payroll"), level="CONFIDENTIAL",
                                   compartments=["FINANCE"]).id
    before = office.raw.doc_bytes(doc)
    office.as_("leader").reclassify(doc, level="SECRET", justification="more sensitive")
    office.raw.set_doc_bytes(doc, before)  # the copy from before the reclassification
    with pytest.raises(vault.errors.StateError):  # type: ignore[attr-defined]
        office.as_("clerk").open(doc, io.BytesIO())  # the old label would let the clerk in
    report = vault.Vault(office.location).doctor()
    assert any(doc in p and "rolled back or replaced" in p for p in report.problems)


def test_a_document_the_log_never_saw_is_named(tmp_path: Path, backend: Kind) -> None:
    office, ids = _office_with_docs(tmp_path, backend)
    office.raw.set_doc_version_bytes("aaaaaaaaaaaaaaaa", "01234567",
                                     office.raw.doc_bytes(ids[2]))
    report = vault.Vault(office.location).doctor()
    assert any("aaaaaaaaaaaaaaaa" in p and "never saw" in p for p in report.problems)
    # It is evidence: repair leaves it for people to look at.
    office.as_("officer").doctor(repair=True)
    assert ("aaaaaaaaaaaaaaaa", "01234567") in office.raw.doc_files()


def test_a_swapped_payload_is_found_by_a_deep_check_without_any_key(
        tmp_path: Path, backend: Kind) -> None:
    office, ids = _office_with_docs(tmp_path, backend)
    data = bytearray(office.raw.doc_bytes(ids[2]))
    data[-3] ^= 0x40
    office.raw.set_doc_bytes(ids[2], bytes(data))
    assert vault.Vault(office.location).doctor().ok  # the quick check reads headers only
    deep = vault.Vault(office.location).doctor(deep=True)
    assert any(p.startswith(f"document {ids[2]}") and "content" in p for p in deep.problems)
    assert not any("interrupted" in p for p in deep.problems)


def test_keyring_damage_names_the_user(tmp_path: Path, backend: Kind) -> None:
    office, _ = _office_with_docs(tmp_path, backend)
    leader = owner_key(office.ids["leader"].recipient)
    clerk = owner_key(office.ids["clerk"].recipient)
    (lk, lkid), = [(o, k) for o, k in office.raw.keyring_files() if o == leader][:1]
    data = bytearray(office.raw.keyring_entry(lk, lkid))
    data[-1] ^= 1
    office.raw.set_keyring_entry(lk, lkid, bytes(data))
    ck, ckid = next((o, k) for o, k in office.raw.keyring_files() if o == clerk)
    office.raw.set_keyring_entry(ck, ckid, office.raw.keyring_entry(lk, lkid))
    problems = vault.Vault(office.location).doctor().problems
    assert any(p.startswith("leader's keyring entry") for p in problems)
    assert any(p.startswith("clerk's keyring entry") for p in problems)


def test_repair_clears_leftovers_and_names_each(tmp_path: Path, backend: Kind) -> None:
    office, _ = _office_with_docs(tmp_path, backend)
    clerk = owner_key(office.ids["clerk"].recipient)
    folder = backend.name == "folder"
    planted = []
    if folder:  # a database write is one transaction: a crash leaves no leftover
        for where in ("docs", "keyrings", "audit/checkpoints", ""):
            p = office.path / where / ".vault-tmp-0123456789abcdef"
            p.write_bytes(b"half a write")
            planted.append(p)
    office.raw.set_keyring_entry(clerk, "0" * 32, b"orphan")
    report = office.as_("officer").doctor()
    assert report.ok, report.problems  # leftovers of crashes are not tampering
    assert any(f"keyrings/{clerk}/{'0' * 32}.age" in x for x in report.leftovers)
    if folder:
        assert any("docs/.vault-tmp-0123456789abcdef (12 bytes" in x and "may hold" in x
                   for x in report.leftovers)
        assert any("audit/checkpoints/.vault-tmp" in x for x in report.leftovers)
    fixed = office.as_("officer").doctor(repair=True)
    assert fixed.repaired
    for p in planted:
        assert not p.exists(), p
    assert (clerk, "0" * 32) not in office.raw.keyring_files()
    assert office.as_("officer").doctor().leftovers == []


def test_a_replaced_checkpoint_key_is_a_finding(tmp_path: Path) -> None:
    office, _ = _office_with_docs(tmp_path, None)  # type: ignore[arg-type]
    key = office.path / "audit" / "log.key"
    key.chmod(0o600)
    from vault.audit import NoteSigner

    key.write_text(NoteSigner.generate("vault/other").private_key() + "\n")
    report = office.as_("officer").doctor()
    assert any("checkpoint key is not the one vault.json pins" in p for p in report.problems)
    key.unlink()
    assert any("checkpoint key is missing" in p for p in office.as_("officer").doctor().problems)


def test_damaged_derived_files_are_repaired_not_reported(tmp_path: Path) -> None:
    office, _ = _office_with_docs(tmp_path, None)  # type: ignore[arg-type]
    hashes = office.path / "audit" / "hashes"
    data = bytearray(hashes.read_bytes())
    data[-1] ^= 1
    hashes.write_bytes(bytes(data))
    index = office.path / "audit" / "index"
    raw = bytearray(index.read_bytes())
    raw[-1] = (raw[-1] + 1) % 256
    index.write_bytes(bytes(raw))
    office.as_("clerk").seal(io.BytesIO(b"after"), level="INTERNAL", compartments=["STAFF"])
    checkpoint = office.as_("officer").audit.checkpoint()
    report = office.as_("officer").doctor()
    assert report.ok, report.problems
    assert vault.Vault(office.location).verify_audit(trusted_checkpoint=checkpoint)


def test_repair_needs_an_administrator(tmp_path: Path, backend: Kind) -> None:
    # Anyone else's repair ends their own interrupted changes alone
    # (test_crash.py) and repairs nothing of the vault.
    office = make_office(tmp_path, backend)
    with pytest.raises(UsageError):
        vault.Vault(office.location).doctor(repair=True)
    report = office.as_("clerk").doctor(repair=True)
    assert report.repaired == [] and "the rest of a repair is an administrator's " \
        "('vault doctor --repair' as one)" in report.notes


def test_many_planted_documents_are_named_up_to_a_hundred(office: Office) -> None:
    # Whoever can write the folder (or the PostgreSQL role) can store any
    # number of documents: doctor names the first hundred and counts the
    # rest.
    import base64

    for i in range(130):
        doc = base64.b32encode(i.to_bytes(10, "big")).decode().lower()
        office.raw.set_doc_version_bytes(doc, "0000000a", b"age-encryption.org/v1\n")
    problems = office.as_("officer").doctor().problems
    named = [p for p in problems if "never saw" in p and p.startswith("docs/")]
    assert len(named) == 100, len(named)
    assert "30 more stored documents the audit log never saw (planted, or copied in); " \
        "not used" in problems


def _doctor_peak(office: Office, repair: bool = False) -> tuple[vault.DoctorReport, int]:
    import tracemalloc

    v = office.as_("officer")
    v.doctor()  # caught up with the log first: the replay is not what is measured
    tracemalloc.start()
    try:
        report = v.doctor(repair=repair)
        return report, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_doctor_reads_what_was_planted_in_bounded_memory(office: Office) -> None:
    # 30,000 planted documents and 30,000 planted keyring entries for the
    # officer cost a doctor that held every stored name 13.4 MB (folder) and
    # 16.0 MB (PostgreSQL) of Python objects more; one that reads them a
    # batch at a time holds the hundred of each kind it names (0.04 and
    # 0.84 MB more: a cursor's batch of rows).
    _, before = _doctor_peak(office)
    officer = owner_key(office.ids["officer"].recipient)
    office.raw.plant_many(30_000, 30_000, officer)
    report, peak = _doctor_peak(office)
    print(f"doctor peak: {before:,} before, {peak:,} with 30,000 of each planted")
    assert peak - before < 2_000_000, (before, peak)
    named = [p for p in report.problems if "never saw" in p and p.startswith("docs/")]
    assert len(named) == 100 and named == sorted(named)
    assert all(n.startswith("docs/zz") for n in named)
    assert "29,900 more stored documents the audit log never saw (planted, or copied in); " \
        "not used" in report.problems
    entries = [x for x in report.leftovers if x.startswith(f"keyrings/{officer}/")]
    assert len(entries) == 100
    assert "29,900 more keyring entries with no grant in the audit log; not used" \
        in report.leftovers
    # The repair removes every planted entry (the documents stay, as evidence)
    # in the same bounds, and the vault is as it was.
    repaired, peak = _doctor_peak(office, repair=True)
    assert peak - before < 2_000_000, (before, peak)
    assert "removed 29,900 more keyring entries with no grant in the audit log" \
        in repaired.repaired
    after = office.as_("officer").doctor()
    assert not after.leftovers
    assert [p for p in after.problems if "never saw" not in p] == []


@pytest.mark.parametrize("how", ["the clerk's key", "no valid signature"])
def test_a_decision_under_another_name_is_nobodys(office: Office, how: str) -> None:
    # The clerk records an allowed seal decision "by the leader" -- signed
    # with the clerk's own key, or a copy of a leader's line with a zeroed
    # signature -- and plants a file for its document. doctor blamed the
    # leader for a seal "allowed but never completed", and called the
    # planted file an interrupted write (which a repair removes).
    import base64
    import json
    import secrets

    office.as_("leader").seal(io.BytesIO(b"minutes"), level="INTERNAL",
                              compartments=["STAFF"])
    doc = "abcdefghijklmnop"
    clerk = office.ids["clerk"]
    if how == "the clerk's key":
        with office.as_("officer") as v:
            v.audit.append({"actor": {"name": "leader", "key": clerk.fingerprint},
                            "action": "seal", "doc": doc, "label": None, "outcome": "allowed",
                            "rules": [], "reason": "", "policy": None,
                            "request": secrets.token_hex(16), "state": None},
                           clerk.signing_key)
    else:
        lines = office.raw.audit_lines()
        decided = next(json.loads(x) for x in lines if b'"outcome":"allowed"' in x
                       and b'"action":"seal"' in x)
        forged = {**decided, "seq": len(lines), "doc": doc, "request": secrets.token_hex(16),
                  "sig": base64.b64encode(bytes(64)).decode()}
        office.raw.append_audit_line(json.dumps(forged, sort_keys=True, separators=(",", ":"),
                                                ensure_ascii=False).encode())
    office.raw.set_doc_version_bytes(doc, "00000001", b"planted by the clerk")
    report = office.as_("officer").doctor()
    text = "\n".join([*report.problems, *report.leftovers, *report.notes])
    assert "leader's seal" not in text and "never completed" not in text, text
    assert any(p.startswith(f"docs/{doc}.00000001.age: a document the audit log never saw")
               for p in report.problems), report.problems


def test_documents_sealed_while_doctor_lists_are_not_planted(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    """Others seal, reclassify and shred while a read-only doctor reads: a
    decision appended after doctor read the log, its file there when doctor
    lists the documents, is counted -- never "planted", "missing" or a stray
    version. A document planted then is still named (docs/DESIGN.md §6.7)."""
    office, ids = _office_with_docs(tmp_path, backend)
    clerk, leader = office.as_("clerk"), office.as_("leader")
    v = vault.Vault(office.location)
    backend_ = v._s.backend
    listing = backend_.iter_document_files
    sealed: list[str] = []

    def changed_first():  # type: ignore[no-untyped-def]
        # Real work by other sessions after doctor read the log, before it lists.
        if not sealed:
            sealed.append(clerk.seal(io.BytesIO(b"meanwhile"), level="INTERNAL",
                                     compartments=["STAFF"]).id)
            leader.reclassify(ids[1], level="SECRET", compartments=["BOARD"],
                              justification="raise")
            leader.shred(ids[2], justification="done with it")
            office.raw.set_doc_version_bytes("aaaaaaaaaaaaaaaa", "01234567",
                                             office.raw.doc_bytes(ids[0]))
        return listing()

    monkeypatch.setattr(backend_, "iter_document_files", changed_first)
    report = v.doctor()
    monkeypatch.undo()
    assert sealed
    assert [p for p in report.problems if "aaaaaaaaaaaaaaaa" not in p] == [], report.problems
    assert any("aaaaaaaaaaaaaaaa" in p and "never saw" in p for p in report.problems)
    assert report.leftovers == [], report.leftovers


def test_a_shred_under_way_while_doctor_reads_is_not_planted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shred starts after a read-only doctor on another machine read the
    log: its record is appended, its file is a tombstone when doctor lists
    them. Judged by the
    log read again: what an interrupted shred left, never "planted". A
    tombstone planted under a live document's name is still named."""
    import threading

    from backends import FolderKind

    office, ids = _office_with_docs(tmp_path, FolderKind())
    planted = office.path / f".shred-{_stored_name(office, ids[1])}"
    planted.write_bytes(office.raw.doc_bytes(ids[1]))  # a copy: nothing but itself
    leader = office.as_("leader")
    lb = leader._s.backend
    under_way, go = threading.Event(), threading.Event()
    overwrite = lb._overwrite

    def paused(fd: int, size: int) -> None:  # the leader's shred, its tombstone made
        under_way.set()
        assert go.wait(60)
        overwrite(fd, size)

    monkeypatch.setattr(lb, "_overwrite", paused)
    shred = threading.Thread(target=leader.shred, args=(ids[2],),
                             kwargs={"justification": "done with it"})
    v = vault.Vault(office.location, state_dir=tmp_path / "another machine")
    backend_ = v._s.backend
    listing, documents = backend_.interrupted_shreds, backend_.iter_document_files

    def shred_started():  # type: ignore[no-untyped-def]
        shred.start()  # after doctor read the log
        assert under_way.wait(60)
        return listing()

    def shred_ended():  # type: ignore[no-untyped-def]
        go.set()
        shred.join(60)
        return documents()

    monkeypatch.setattr(backend_, "interrupted_shreds", shred_started)
    monkeypatch.setattr(backend_, "iter_document_files", shred_ended)
    try:
        report = v.doctor()
    finally:
        go.set()
    monkeypatch.undo()
    assert shred.ident is not None and not shred.is_alive()
    assert [p for p in report.problems if planted.name not in p] == [], report.problems
    assert any(planted.name in p and "planted" in p for p in report.problems), report.problems
    assert any(f".shred-{ids[2]}." in item for item in report.leftovers), report.leftovers


def _stored_name(office: Office, doc_id: str) -> str:
    return next(p.name for p in (office.path / "docs").iterdir()
                if p.name.startswith(f"{doc_id}."))


def test_documents_changed_while_doctor_reads_them_are_no_problem(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    """Others reclassify and shred after a read-only doctor listed the
    documents, before it reads their files: each is judged by the log read
    again -- never "missing" or "not the version recorded". A document
    replaced before is still named (docs/DESIGN.md §6.7)."""
    office, ids = _office_with_docs(tmp_path, backend)
    office.raw.set_doc_bytes(ids[0], office.raw.doc_bytes(ids[1]))  # replaced
    leader = office.as_("leader")
    v = vault.Vault(office.location)
    backend_ = v._s.backend
    open_document = backend_.open_document
    changed: list[str] = []

    def changed_first(doc_id: str, version: str):  # type: ignore[no-untyped-def]
        # Real work by another session once doctor reads a document's file.
        if not changed:
            changed.append(doc_id)
            leader.reclassify(ids[1], level="SECRET", compartments=["BOARD"],
                              justification="raise")
            leader.shred(ids[2], justification="done with it")
        return open_document(doc_id, version)

    monkeypatch.setattr(backend_, "open_document", changed_first)
    report = v.doctor(deep=True)
    monkeypatch.undo()
    assert changed
    assert [p for p in report.problems if ids[0] not in p] == [], report.problems
    assert any(ids[0] in p and "rolled back or replaced" in p for p in report.problems)


def test_keyring_entries_retired_while_doctor_reads_are_no_problem(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    """A revocation retires entries after a read-only doctor read the log
    (before it lists the keyrings), then another while it reads them: each
    entry is judged by the log read again -- never "missing" or "not the one
    the audit log granted". An entry changed before is still named."""
    office, _ = _office_with_docs(tmp_path, backend)
    registrar = owner_key(office.ids["registrar"].recipient)
    rk, rkid = next((o, k) for o, k in office.raw.keyring_files() if o == registrar)
    data = bytearray(office.raw.keyring_entry(rk, rkid))
    data[-1] ^= 1
    office.raw.set_keyring_entry(rk, rkid, bytes(data))
    leader = office.as_("leader")
    v = vault.Vault(office.location)
    backend_ = v._s.backend
    listing, read = backend_.iter_keyring_files, backend_.read_keyring_entry
    retired: list[str] = []

    def revoked_first():  # type: ignore[no-untyped-def]
        retired.append("listing")
        office.apply({"clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}"
                      "\n  outsider:": "clearance: {level: CONFIDENTIAL, compartments: "
                      "[STAFF]}\n  outsider:"})
        leader.rotate()  # someone cleared for SECRET//BOARD ends the revocation
        return listing()

    def revoked_again(owner: str, kid: str):  # type: ignore[no-untyped-def]
        if len(retired) == 1:
            retired.append("read")
            office.apply({"clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, "
                          "BOARD]}\n  outsider:": "clearance: {level: INTERNAL, "
                          "compartments: [STAFF]}\n  outsider:"})
            leader.rotate()
        return read(owner, kid)

    monkeypatch.setattr(backend_, "iter_keyring_files", revoked_first)
    monkeypatch.setattr(backend_, "read_keyring_entry", revoked_again)
    report = v.doctor()
    monkeypatch.undo()
    assert retired == ["listing", "read"]
    assert [p for p in report.problems if not p.startswith("registrar's")] == [], \
        report.problems
    assert any(p.startswith("registrar's keyring entry") and "not the one" in p
               for p in report.problems), report.problems
