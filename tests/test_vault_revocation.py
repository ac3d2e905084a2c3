"""Policy versions, grants and revocation: new grants need only public keys;
revoking rotates the class key and rewraps headers, so that the revoked
user's old keys open neither new nor rewrapped documents."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from backends import Kind
from vault_helpers import Office, doc_file, held_secret_keys, make_office, opens_with

import vault
from vault.age import read_header, unwrap_file_key
from vault.errors import DeniedError, NoKeyError, UsageError

DEPUTY_SECRET = "clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}\n  outsider:"
DEPUTY_LOWER = "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}\n  outsider:"
REGISTRAR = "clearance: {level: INTERNAL, compartments: [STAFF]}"
REGISTRAR_UP = "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}"


def _seal(office: Office, who: str, level: str, comps: list[str], data: bytes) -> str:
    return office.as_(who).seal(office.file(f"{who}.txt", data), level=level,
                                compartments=comps).id


def test_revocation_rotates_and_rewraps(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    s1 = _seal(office, "leader", "SECRET", ["BOARD"], b"secret one")
    c1 = _seal(office, "clerk", "CONFIDENTIAL", ["STAFF"], b"confidential one")
    s1_payload = office.raw.doc_bytes(s1)[-40:]
    old_keys = held_secret_keys(office, "deputy")
    assert opens_with(old_keys, doc_file(office, s1), tmp_path)  # before: deputy can

    report = office.apply({DEPUTY_SECRET: DEPUTY_LOWER})
    assert report.version == 2
    assert "deputy: SECRET//BOARD" in report.revoked
    # The officer is not cleared for SECRET: they never make (and so never
    # see) its new key; that waits for someone who is, and says who.
    assert not any("SECRET" in r for r in report.rotated)
    assert any(p.startswith("rotate SECRET//BOARD: needs someone cleared for it (leader)")
               and "deputy could still open its documents" in p for p in report.pending)

    done = office.as_("leader").rotate()  # a cleared user finishes the rotation
    assert any(r.startswith("SECRET//BOARD -> generation 2") for r in done.rotated)
    assert s1 in done.rewrapped
    assert office.raw.doc_bytes(s1)[-40:] == s1_payload  # payload untouched
    s2 = _seal(office, "leader", "SECRET", ["BOARD"], b"secret two")

    for doc in (s1, s2):
        assert not opens_with(old_keys, doc_file(office, doc), tmp_path), doc
        assert not opens_with(held_secret_keys(office, "deputy"), doc_file(office, doc),
                              tmp_path)
        assert opens_with(held_secret_keys(office, "leader"), doc_file(office, doc), tmp_path)
        with pytest.raises(DeniedError):
            office.as_("deputy").open(doc, io.BytesIO())
    out = io.BytesIO()
    office.as_("deputy").open(c1, out)  # what the deputy is still cleared for stays open
    assert out.getvalue() == b"confidential one"
    assert office.as_("officer").doctor().ok


def test_grant_needs_only_public_keys(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    c1 = _seal(office, "clerk", "CONFIDENTIAL", ["STAFF"], b"for the registrar, later")
    with pytest.raises(DeniedError):
        office.as_("registrar").open(c1, io.BytesIO())
    assert not opens_with(held_secret_keys(office, "registrar"), doc_file(office, c1), tmp_path)
    report = office.apply({REGISTRAR: REGISTRAR_UP})
    assert "registrar: CONFIDENTIAL//STAFF" in report.granted
    assert report.rotated == []
    out = io.BytesIO()
    office.as_("registrar").open(c1, out)
    assert out.getvalue() == b"for the registrar, later"
    assert opens_with(held_secret_keys(office, "registrar"), doc_file(office, c1), tmp_path)


def test_only_an_administrator_installs_a_policy(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    p = tmp_path / "p2.yaml"
    p.write_text(office.policy_text({"clearance: PUBLIC": "clearance: SECRET"}))
    with pytest.raises(DeniedError):
        office.as_("clerk").apply_policy(p)
    assert vault.Vault(office.location).policy_version == 1
    office.as_("officer").apply_policy(p)
    assert vault.Vault(office.location).policy_version == 2


def test_rotate_all_classes_keeps_documents_open(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    docs = {_seal(office, "clerk", "INTERNAL", ["STAFF"], b"internal"): b"internal",
            _seal(office, "clerk", "CONFIDENTIAL", ["STAFF"], b"conf"): b"conf"}
    report = office.as_("officer").rotate()
    assert sorted(report.rewrapped) == sorted(docs)
    assert report.pending == []
    for doc, data in docs.items():
        out = io.BytesIO()
        office.as_("clerk").open(doc, out)
        assert out.getvalue() == data
    assert office.as_("officer").doctor().ok


def test_pending_grant_is_completed_by_a_key_holder(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    s1 = _seal(office, "leader", "SECRET", ["BOARD"], b"board only")
    report = office.apply({REGISTRAR: "clearance: {level: SECRET, compartments: [STAFF, BOARD]}"})
    assert report.granted == [] and any(
        p.startswith("grant SECRET//BOARD to registrar: needs someone who holds its key "
                     "(deputy, leader)") for p in report.pending)
    assert any("pending grant" in n for n in office.as_("officer").doctor().notes)
    done = office.as_("leader").rotate()  # not an administrator: may only finish work
    assert done.rotated == [] and "registrar: SECRET//BOARD" in done.granted
    out = io.BytesIO()
    office.as_("registrar").open(s1, out)
    assert out.getvalue() == b"board only"
    assert office.as_("officer").doctor().ok


def test_an_officer_cannot_remove_themselves_by_mistake(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    with pytest.raises(UsageError, match="keep you an administrator"):
        office.apply({"members: [officer]": "members: [deputy]"})
    assert vault.Vault(office.location).policy_version == 1


def test_a_vault_object_opened_before_a_revocation_never_grants_the_revoked(
        tmp_path: Path, backend: Kind) -> None:
    # A long-lived vault object (a server, a batch job) read the policy while
    # the registrar was cleared; after the officer revokes the registrar, its
    # next seal grants by the version in force, not by the one it read.
    office = make_office(tmp_path, backend)
    office.apply({REGISTRAR: REGISTRAR_UP})
    c1 = _seal(office, "clerk", "CONFIDENTIAL", ["STAFF"], b"before the revocation")
    stale = office.as_("leader")
    report = office.apply({})
    assert "registrar: CONFIDENTIAL//STAFF" in report.revoked
    c2 = stale.seal(office.file("late.txt", b"after it"), level="CONFIDENTIAL",
                    compartments=["STAFF"]).id
    registrar_keys = held_secret_keys(office, "registrar")
    for doc in (c1, c2):
        assert not opens_with(registrar_keys, doc_file(office, doc), tmp_path), doc
        assert opens_with(held_secret_keys(office, "clerk"), doc_file(office, doc), tmp_path)
    assert office.as_("officer").doctor().ok


def test_every_decision_is_made_under_the_version_in_force(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    office.apply({REGISTRAR: REGISTRAR_UP})
    c1 = _seal(office, "clerk", "CONFIDENTIAL", ["STAFF"], b"for the registrar, for now")
    registrar = office.as_("registrar")  # lives on, as in a server
    registrar.open(c1, io.BytesIO())
    office.apply({})  # the registrar is back to INTERNAL
    with pytest.raises(DeniedError):  # the policy says no, before any key is tried
        registrar.open(c1, io.BytesIO())
    last = list(registrar.audit.records())[-1]
    assert (last.actor, last.action, last.outcome) == ("registrar", "open", "denied")
    assert last.policy == office.as_("officer").policy.hash


@pytest.mark.parametrize("post_quantum", [True, False])
def test_documents_open_after_the_recovery_recipients_change(
        tmp_path: Path, post_quantum: bool) -> None:
    # Post-quantum stanzas cannot be recomputed: a reader matches them by
    # count against every recovery recipient ever in force and the class
    # key. Adding a recovery recipient (documents not yet rewrapped carry
    # fewer stanzas than that) and removing it again (rewrapped documents
    # carry fewer) must leave every document open (docs/FORMAT.md §11.1).
    from office import policy_text

    from vault.age import MLKEM768X25519Identity, X25519Identity

    office = make_office(tmp_path, post_quantum=post_quantum)
    old = _seal(office, "clerk", "INTERNAL", ["STAFF"], b"before")
    extra = (MLKEM768X25519Identity.generate() if post_quantum
             else X25519Identity.generate())
    edit = None if post_quantum else {"version: 1\n": "version: 1\npost_quantum: off\n"}
    for version, recovery in ((2, [office.recovery, extra]), (3, [office.recovery])):
        policy = tmp_path / f"policy-{version}.yaml"
        policy.write_text(policy_text(office.ids, [str(r.recipient) for r in recovery], edit))
        assert office.as_("officer").apply_policy(policy).version == version
        new = _seal(office, "clerk", "INTERNAL", ["STAFF"], b"after %d" % version)
        for doc, data in ((old, b"before"), (new, b"after %d" % version)):
            out = io.BytesIO()
            office.as_("clerk").open(doc, out)
            assert out.getvalue() == data


def test_a_change_of_recovery_recipients_is_finished_by_whoever_holds_the_keys(
        tmp_path: Path) -> None:
    # The officer replaces the recovery recipient but cannot open SECRET
    # documents: they stay wrapped to the old one, pending. A later plain
    # 'rotate' by a leader finishes it, so the old recovery key stops
    # opening them and the new one opens them.
    from office import policy_text, stock_decrypt

    from vault.age import MLKEM768X25519Identity

    office = make_office(tmp_path)
    doc = _seal(office, "leader", "SECRET", ["BOARD"], b"minutes")
    new = MLKEM768X25519Identity.generate()
    policy = tmp_path / "new-recovery.yaml"
    policy.write_text(policy_text(office.ids, [str(new.recipient)]))
    office.as_("officer").apply_policy(policy)
    header = read_header(io.BytesIO(office.raw.doc_bytes(doc)))
    assert unwrap_file_key(header, [office.recovery]) is not None  # still the old one
    report = office.as_("leader").rotate()
    assert doc in report.rewrapped, report
    header = read_header(io.BytesIO(office.raw.doc_bytes(doc)))
    with pytest.raises(NoKeyError):
        unwrap_file_key(header, [office.recovery])
    key = tmp_path / "new-recovery.key"
    key.write_text(f"{new}\n")
    key.chmod(0o600)
    r = stock_decrypt(key, office.raw.doc_file(doc, tmp_path))
    assert r.returncode == 0 and r.stdout == b"minutes"
    assert not office.as_("leader").rotate().rewrapped  # nothing left
