"""The audit discipline: every attempt, allowed, denied or failed, is in the
verified log exactly once, before anything happens; no record, no action."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from backends import Kind
from vault_helpers import Office, make_office

from vault.errors import (
    AuditIntegrityError,
    AuditWriteError,
    DeniedError,
    StateError,
    UsageError,
    VaultError,
)

# Records a decision makes; the others are its follow-ups (completions,
# class keys made, grants, rewraps) -- docs/AUDIT.md §13.
DECISIONS = ("allowed", "denied", "error")
FOLLOW_UPS = ("class-key", "grant", "retire", "rewrap")


def _records(office: Office) -> list[tuple[str | None, str, str | None, str]]:
    v = office.as_("officer")
    report = v.verify_audit()
    recs = list(v.audit.records())
    signed = [r for r in recs if r.signature is not None]
    assert report.signatures == len(signed)  # every signature checked
    return [(r.actor, r.action, r.doc, r.outcome) for r in recs
            if r.outcome in DECISIONS and r.action not in FOLLOW_UPS]


def test_every_attempt_is_recorded_exactly_once(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    expect: list[tuple[str | None, str, str | None, str]] = [
        ("officer", "init", None, "allowed")]

    def attempt(who: str, action: str, doc: str | None, outcome: str, fn: object) -> object:
        try:
            result = fn()  # type: ignore[operator]
        except VaultError:
            result = None
        expect.append((who, action, doc, outcome))
        return result

    clerk, leader, outsider = (office.as_(n) for n in ("clerk", "leader", "outsider"))
    src = office.file("a.txt", b"alpha")
    a = clerk.seal(src, level="CONFIDENTIAL", compartments=["STAFF"])
    expect.append(("clerk", "seal", a.id, "allowed"))
    attempt("leader", "open", a.id, "allowed", lambda: leader.open(a.id, io.BytesIO()))
    attempt("outsider", "open", a.id, "denied", lambda: outsider.open(a.id, io.BytesIO()))
    attempt("clerk", "ls", None, "allowed", clerk.ls)
    attempt("leader", "info", a.id, "allowed", lambda: leader.info(a.id))
    attempt("clerk", "export", a.id, "allowed",
            lambda: clerk.export(a.id, tmp_path / "a.age"))
    attempt("leader", "reclassify", a.id, "allowed",
            lambda: leader.reclassify(a.id, level="SECRET", compartments=["STAFF", "BOARD"],
                                      justification="board matter"))
    attempt("clerk", "reclassify", a.id, "denied",
            lambda: clerk.reclassify(a.id, level="INTERNAL", justification="oops"))
    attempt("outsider", "shred", a.id, "denied",
            lambda: outsider.shred(a.id, justification="no"))
    missing = "aaaaaaaaaaaaaaaa"
    attempt("leader", "open", missing, "error", lambda: leader.open(missing, io.BytesIO()))
    attempt("officer", "rotate", None, "allowed", office.as_("officer").rotate)
    attempt("clerk", "rotate", None, "allowed", clerk.rotate)  # non-admin: rewrap only
    attempt("officer", "doctor", None, "allowed", office.as_("officer").doctor)
    attempt("leader", "shred", a.id, "allowed",
            lambda: leader.shred(a.id, justification="duplicate"))
    with pytest.raises(DeniedError):  # mandatory-labelling style denial before a doc exists
        clerk.seal(office.file("b.txt", b"b"), level="SECRET", compartments=["BOARD"])
    recs = _records(office)
    seal_denied = recs[-1]
    assert seal_denied[:2] == ("clerk", "seal") and seal_denied[3] == "denied"
    expect.append(("clerk", "seal", seal_denied[2], "denied"))
    assert recs == expect


def test_integrity_failure_before_the_decision_is_recorded_as_error(tmp_path: Path,
                                                                    backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = office.as_("clerk").seal(office.file("a.txt", b"a"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    data = office.raw.doc_bytes(doc)
    office.raw.set_doc_bytes(doc, data.replace(b"vault/v2/label", b"vault/v2/lab3l"))
    with pytest.raises(StateError):
        office.as_("clerk").open(doc, io.BytesIO())
    last = list(office.as_("clerk").audit.records())[-1]
    assert (last.actor, last.action, last.doc, last.outcome) == ("clerk", "open", doc, "error")
    assert "StateError" in last.reason


def test_no_record_no_action(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = office.as_("clerk").seal(office.file("a.txt", b"secret text"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    # The log can no longer be written: every operation must stop.
    with office.raw.audit_unwritable():
        before = office.raw.doc_ids()
        with pytest.raises(AuditWriteError):
            office.as_("clerk").seal(office.file("b.txt", b"b"), level="INTERNAL",
                                     compartments=["STAFF"])
        assert office.raw.doc_ids() == before
        out = tmp_path / "out.txt"
        with pytest.raises(AuditWriteError):
            office.as_("clerk").open(doc, out)
        assert not out.exists()
        with pytest.raises(AuditWriteError):
            office.as_("leader").shred(doc, justification="gone")
        assert office.raw.doc_ids() == before
    office.as_("officer").verify_audit()


def test_emptied_audit_folder_stops_everything(tmp_path: Path) -> None:
    office = make_office(tmp_path)
    doc = office.as_("clerk").seal(office.file("a.txt", b"secret text"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    audit = office.path / "audit"
    shutil.rmtree(audit)  # a folder writer swaps in an empty log folder
    audit.mkdir()
    out = tmp_path / "out.txt"
    with pytest.raises(AuditIntegrityError) as caught:
        office.as_("clerk").open(doc, out)
    assert caught.value.kind == "truncated"
    assert not out.exists()
    assert not (audit / "log").exists() or (audit / "log").stat().st_size == 0
    assert caught.value.exit_code == 4


def test_outsider_records_verify(tmp_path: Path, backend: Kind) -> None:
    """Someone the policy does not know is still on the record, verifiably."""
    from vault.identity import new_identity

    office = make_office(tmp_path, backend)
    doc = office.as_("clerk").seal(office.file("a.txt", b"a"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    import vault

    stranger = vault.Vault(office.location, new_identity("mallory"))
    with pytest.raises(DeniedError):
        stranger.open(doc, io.BytesIO())
    with pytest.raises(DeniedError):
        stranger.ls()
    recs = _records(office)
    # Named by their key only: "mallory" is what their file says, not a user.
    assert recs[-2:] == [(None, "open", doc, "denied"), (None, "ls", None, "denied")]


def test_needs_identity(tmp_path: Path, backend: Kind) -> None:
    import vault

    office = make_office(tmp_path, backend)
    with pytest.raises(UsageError, match="identity"):
        vault.Vault(office.location).ls()
    assert vault.Vault(office.location).doctor().ok  # read-only checks need none


@pytest.mark.parametrize("signed_with", ["the key before", "the key the run installs"])
def test_a_run_that_installs_a_policy_is_judged_under_the_one_before(
        tmp_path: Path, backend: Kind, signed_with: str) -> None:
    # The officer's modified client appends one run: first (unsigned) a
    # policy version giving the officer a new signing key, then a record
    # signed with the old key -- or with the new one. The replay judges a
    # run's signature under the policy in force before the run; verification
    # looked the key up at the signed record's line, under the new version,
    # and called the first run forged although every machine counted it. Now
    # both judge the whole run under the version before: the first counts
    # and verifies, the second neither.
    import hashlib
    import os

    from office import policy_text

    import vault
    from vault.identity import new_identity

    office = make_office(tmp_path / "o", backend, post_quantum=False)
    second = new_identity("officer", post_quantum=False)
    text = policy_text({**office.ids, "officer": second}, [str(office.recovery.recipient)],
                       {"version: 1\n": "version: 1\npost_quantum: off\n",
                        "description: Classification policy": "description: v2"})
    key = (office.ids["officer"] if signed_with == "the key before" else second).signing_key
    fp = (office.ids["officer"] if signed_with == "the key before" else second).fingerprint

    def record(action: str, outcome: str, state: dict[str, object] | None) -> dict[str, object]:
        return {"actor": {"name": "officer", "key": fp}, "action": action, "doc": None,
                "label": None, "outcome": outcome, "rules": [], "reason": "", "policy": None,
                "request": os.urandom(16).hex(), "state": state}

    with office.as_("officer") as v:
        v.audit.append_many([
            (record("policy-apply", "done", {"policy": {
                "version": 2, "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "text": text}}), key),
            (record("list", "allowed", None), key)])
    with vault.Vault(office.location, office.ids["leader"], state_dir=tmp_path / "new") as v:
        counted = v.policy_version == 2
        try:
            v.verify_audit()
            verified = True
        except AuditIntegrityError as e:
            assert e.kind == "signature", e
            verified = False
    assert (counted, verified) == ((True, True) if signed_with == "the key before"
                                   else (False, False))


def test_verify_while_others_append_is_no_false_alarm(tmp_path: Path, backend: Kind,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Another workstation seals while the officer verifies: the derived
    data it reads then covers lines the verification's pass did not. It
    serves those lines, read from the log: nothing to report, nothing
    rebuilt -- at every point verification reads it (docs/AUDIT.md §11)."""
    office = make_office(tmp_path, backend)
    clerk = office.as_("clerk")
    clerk.seal(io.BytesIO(b"first"), level="INTERNAL", compartments=["STAFF"])
    v = office.as_("officer")
    storage = v._s.log.storage
    real = storage.derived
    appended = []

    def derived_after_a_seal():  # type: ignore[no-untyped-def]
        # A real seal by another session before the derived data is read:
        # before the pass (a deep one reads it along), then after it.
        if len(appended) < 2:
            appended.append(clerk.seal(io.BytesIO(b"meanwhile"), level="INTERNAL",
                                       compartments=["STAFF"]).id)
        return real()

    monkeypatch.setattr(storage, "derived", derived_after_a_seal)
    report = v.verify_audit()
    monkeypatch.undo()
    assert len(appended) == 2, "the seam was not reached"
    assert report.hashes_ok, report.findings
    assert not [f for f in report.findings if "derived" in f], report.findings
    after = office.as_("officer").verify_audit()
    assert after.hashes_ok and after.size > report.size


def test_derived_data_past_the_log_is_still_reported(tmp_path: Path) -> None:
    """A folder writer's hashes and offsets for lines the log does not hold
    are no appends made meanwhile: reported, and rebuilt."""
    from backends import FolderKind

    office = make_office(tmp_path, FolderKind())
    office.as_("clerk").seal(io.BytesIO(b"x"), level="INTERNAL", compartments=["STAFF"])
    audit = Path(office.location) / "audit"
    index = (audit / "index").read_bytes()
    hashes = (audit / "hashes").read_bytes()
    # One line more: its end offset past the log's, a leaf and the hashes it adds.
    end = int.from_bytes(index[-8:], "big")
    (audit / "index").write_bytes(index + (end + 10).to_bytes(8, "big"))
    (audit / "hashes").write_bytes(hashes + bytes(32) * 8)
    report = office.as_("officer").verify_audit()
    assert not report.hashes_ok
    assert any("rebuilt" in f for f in report.findings), report.findings
    assert office.as_("officer").verify_audit().hashes_ok


def test_a_hash_changed_under_lines_appended_during_verify_is_still_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the officer verifies, a folder writer seals (her lines and
    their derived data written honestly) and then changes the stored leaf
    hash of her first new line, leaving the subtree node above it as it
    was. Verification held the lines appended meanwhile to the root and end
    offset alone: it said nothing, rebuilt nothing, and the next writer
    kept the junk. Every hash and offset of those lines is compared too."""
    from backends import FolderKind

    from vault.audit._hashing import leaf_hash
    from vault.audit._tree import stored_hash_count

    office = make_office(tmp_path, FolderKind())
    clerk = office.as_("clerk")
    clerk.seal(io.BytesIO(b"first"), level="INTERNAL", compartments=["STAFF"])
    audit = Path(office.location) / "audit"
    v = office.as_("officer")
    storage = v._s.log.storage
    real = storage.derived
    grown: list[int] = []

    def derived_after_her_seal():  # type: ignore[no-untyped-def]
        if not grown:
            grown.append(len((audit / "log").read_bytes().splitlines()))
            clerk.seal(io.BytesIO(b"meanwhile"), level="INTERNAL", compartments=["STAFF"])
            data = bytearray((audit / "hashes").read_bytes())
            data[stored_hash_count(grown[0]) * 32] ^= 0xFF
            (audit / "hashes").write_bytes(bytes(data))
        return real()

    monkeypatch.setattr(storage, "derived", derived_after_her_seal)
    report = v.verify_audit()
    monkeypatch.undo()
    assert grown, "the seam was not reached"
    assert not report.hashes_ok and any("rebuilt" in f for f in report.findings), report
    line = (audit / "log").read_bytes().splitlines()[grown[0]]
    at = stored_hash_count(grown[0]) * 32
    assert (audit / "hashes").read_bytes()[at: at + 32] == leaf_hash(line)
