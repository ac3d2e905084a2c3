"""Post-quantum vaults (docs/POLICY.md §3.12, FORMAT.md §5.3).

A new vault is hybrid end to end: every stanza of every header and every
keyring entry is ``mlkem768x25519``, and the recovery identity opens its
documents with an independent implementation (the npm ``age-encryption``
package). A classical vault moves to hybrid keys header-only, in the steps
an office would take, with every document still opening to the same bytes,
its payload untouched and the audit log verifying.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from office import Office, make_office, stock_decrypt

import vault
from vault.age import MLKEM768X25519Identity, read_header
from vault.errors import PolicyLoadError, UsageError
from vault.identity import new_identity
from vault.store.base import owner_key

HYBRID = "mlkem768x25519"
CLASSICAL = {"X25519", "scrypt"}
PREFERRED = {"version: 1\n": "version: 1\npost_quantum: preferred\n"}
REQUIRED: dict[str, str] = {}  # the template's default


def stanza_types(data: bytes) -> set[str]:
    return {s.type for s in read_header(io.BytesIO(data)).stanzas}


def recipient_types(data: bytes) -> set[str]:
    """The recipient stanzas of a header (not the vault's label and
    metadata stanzas, which wrap nothing)."""
    return {t for t in stanza_types(data) if not t.startswith("vault/")}


def seal_all(office: Office) -> dict[str, bytes]:
    """Documents at five classes, by the people allowed to seal them."""
    plan = [("clerk", "CONFIDENTIAL", ["STAFF"]), ("clerk", "CONFIDENTIAL", ["FINANCE"]),
            ("clerk", "INTERNAL", ["STAFF"]), ("leader", "SECRET", ["BOARD"]),
            ("leader", "SECRET", ["HR"]), ("leader", "CONFIDENTIAL", ["STAFF"])]
    out = {}
    for i, (who, level, comps) in enumerate(plan):
        data = b"document %d " % i + bytes(range(256)) * (i * 300)
        doc = office.as_(who).seal(io.BytesIO(data), filename=f"d{i}.txt", level=level,
                                   compartments=comps, justification="pq").id
        out[doc] = data
    return out


def payload(data: bytes) -> bytes:
    """The bytes after the header: what header-only rewrapping keeps."""
    return data[len(read_header(io.BytesIO(data)).encode()):]


def assert_opens_unchanged(office: Office, docs: dict[str, bytes], who: str = "leader") -> None:
    v = office.as_(who)
    for doc, data in docs.items():
        out = io.BytesIO()
        v.open(doc, out)
        assert out.getvalue() == data, doc


def assert_intact(office: Office) -> None:
    v = office.as_("officer")
    assert v.doctor().ok, v.doctor().problems
    report = v.verify_audit()  # raises on any damage
    assert report.size == len(office.raw.audit_lines())
    assert report.signatures + report.unsigned_covered == report.size
    assert not report.findings and not report.incidents


# -- a new vault ----------------------------------------------------------------


def test_a_new_vault_holds_no_classical_recipient_anywhere(office: Office) -> None:
    docs = seal_all(office)
    office.apply({"clearance: {level: INTERNAL, compartments: [STAFF]}":
                  "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}"})  # a grant
    leader = office.as_("leader")
    leader.reclassify(next(iter(docs)), level="SECRET", compartments=["STAFF"],
                      justification="raised")
    leader.rotate()
    headers = [office.raw.doc_version_bytes(d, v) for d, v in office.raw.doc_files()]
    entries = [office.raw.keyring_entry(o, k) for o, k in office.raw.keyring_files()]
    assert len(headers) == len(docs) and len(entries) >= 10
    for data in headers + entries:
        assert recipient_types(data) == {HYBRID}
    assert not leader.rotate(post_quantum=True).classical
    assert_opens_unchanged(office, docs)


def test_its_recovery_identity_opens_documents_with_the_npm_implementation(
        office: Office, tmp_path: Path) -> None:
    docs = seal_all(office)
    for doc, data in list(docs.items())[:3]:
        r = stock_decrypt(office.files["recovery"], office.raw.doc_file(doc, tmp_path))
        assert r.returncode == 0, r.stderr
        assert r.stdout == data


def test_a_post_quantum_policy_refuses_classical_keys(office: Office) -> None:
    # Under 'required' (the default) a classical user, or a recovery
    # recipient, is refused when the policy is read.
    office.ids["outsider"] = new_identity("outsider", post_quantum=False)
    with pytest.raises(PolicyLoadError, match="classical X25519 key"):
        office.as_("officer").apply_policy(office.write_policy())


def test_recovery_recipients_of_both_kinds_are_refused(office: Office, tmp_path: Path) -> None:
    classical = vault.age.X25519Identity.generate().recipient
    text = office.policy_text(PREFERRED).replace(
        "recovery: [", f"recovery: [{classical}, ")
    p = tmp_path / "mixed.yaml"
    p.write_text(text)
    with pytest.raises(PolicyLoadError, match="mix post-quantum"):
        office.as_("officer").apply_policy(p)


# -- migration -------------------------------------------------------------------


@pytest.fixture
def classical(tmp_path: Path, backend: Any) -> Office:
    return make_office(tmp_path, backend, post_quantum=False)


def test_rotate_post_quantum_under_a_classical_policy_is_a_usage_error(
        classical: Office) -> None:
    with pytest.raises(UsageError, match="keeps class keys classical"):
        classical.as_("leader").rotate(post_quantum=True)


def test_a_classical_vault_moves_to_hybrid_keys_header_only(classical: Office,
                                                            tmp_path: Path) -> None:
    office = classical
    docs = seal_all(office)
    before = {d: office.raw.doc_bytes(d) for d in docs}
    assert all(recipient_types(b) == {"X25519"} for b in before.values())
    old_recovery = office.recovery

    # Step 1: the officer installs 'preferred' with a hybrid recovery
    # recipient. Class keys must follow (one header cannot mix kinds): the
    # officer moves the classes they are cleared for; the rest is pending.
    office.recovery = MLKEM768X25519Identity.generate()
    report = office.apply(PREFERRED)
    assert any("--post-quantum" in p for p in report.pending), report.pending
    # Step 2: someone cleared for the rest finishes (and could resume).
    rotated = office.as_("leader").rotate(post_quantum=True)
    assert rotated.rotated and not rotated.pending
    assert rotated.classical == [
        "classical identities (their keyring entries are classical): clerk, deputy, leader, "
        "officer, outsider, registrar"]
    again = office.as_("leader").rotate(post_quantum=True)  # nothing left to do
    assert not again.rotated and not again.rewrapped

    for doc, old in before.items():
        new = office.raw.doc_bytes(doc)
        assert recipient_types(new) == {HYBRID}, doc
        assert payload(new) == payload(old)  # header-only
    assert_opens_unchanged(office, docs)
    assert_intact(office)
    # Headers copied before the move still open with the old recovery key;
    # the current ones open with the new one only.
    for doc, data in list(docs.items())[:2]:
        got = io.BytesIO()
        vault.age.decrypt(io.BytesIO(before[doc]), got, [old_recovery])
        assert got.getvalue() == data
        r = stock_decrypt(_key_file(tmp_path, office.recovery),
                          office.raw.doc_file(doc, tmp_path))
        assert r.returncode == 0 and r.stdout == data

    # Step 3: users move to hybrid identities, some at a time, so that
    # someone who still holds the keys can rotate what the others' new
    # recipients make unclean. The officer keeps theirs (their own key
    # changes through another administrator).
    for batch, finisher in ((("clerk", "leader", "registrar", "outsider"), "deputy"),
                            (("deputy",), "leader")):
        for name in batch:
            office.ids[name] = new_identity(name, post_quantum=True)
        office.apply(PREFERRED)
        office.as_(finisher).rotate()
    report = office.as_("leader").rotate(post_quantum=True)
    assert report.classical == [
        "classical identities (their keyring entries are classical): officer"]
    officer_key = owner_key(office.ids["officer"].recipient)
    for owner, kid in office.raw.keyring_files():
        types = recipient_types(office.raw.keyring_entry(owner, kid))
        assert types == ({"X25519"} if owner == officer_key else {HYBRID})
    for doc in docs:
        assert recipient_types(office.raw.doc_bytes(doc)) == {HYBRID}
    assert_opens_unchanged(office, docs)
    assert_opens_unchanged(office, {d: b for d, b in docs.items()
                                    if b"document 0 " in b}, who="clerk")
    assert_intact(office)
    # The move is on the record: who rotated what, every record verifying.
    records = [json.loads(line) for line in office.raw.audit_lines()]
    assert sum(1 for r in records if r.get("action") == "rotate") >= 3


def test_an_interrupted_move_resumes_and_reports_what_remains(classical: Office) -> None:
    office = classical
    docs = seal_all(office)
    office.recovery = MLKEM768X25519Identity.generate()
    office.apply(PREFERRED)  # CONFIDENTIAL/INTERNAL STAFF moved, the rest pending
    # The clerk moves what they are cleared for (FINANCE); SECRET stays
    # classical, named by the report and the doctor until the leader runs it.
    first = office.as_("clerk").rotate(post_quantum=True)
    assert first.rotated == ["CONFIDENTIAL//FINANCE -> generation 2"]
    left = [c for c in first.classical if "identities" not in c]
    assert left and all("SECRET" in c for c in left), first.classical
    assert any("SECRET" in p for p in first.pending)
    one = office.as_("leader").rotate(["SECRET//HR"], post_quantum=True)
    assert one.rotated == ["SECRET//HR -> generation 2"]
    notes = office.as_("officer").doctor().notes
    assert any("--post-quantum" in n and "SECRET" in n for n in notes), notes
    last = office.as_("leader").rotate(post_quantum=True)
    assert [c for c in last.classical if "identities" not in c] == []
    assert_opens_unchanged(office, docs)
    assert_intact(office)


def test_the_command_line_reports_what_stays_classical(classical: Office) -> None:
    office = classical
    seal_all(office)
    office.recovery = MLKEM768X25519Identity.generate()
    office.apply(PREFERRED)
    r = office.cli("leader", "rotate", "--post-quantum", "--json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["rotated"] and report["pending"] == []
    assert report["classical"] == [
        "classical identities (their keyring entries are classical): clerk, deputy, leader, "
        "officer, outsider, registrar"]
    assert r.stderr == ""


def _key_file(tmp: Path, identity: Any) -> Path:
    p = tmp / f"id-{hashlib.sha256(str(identity).encode()).hexdigest()[:8]}.key"
    p.write_text(f"{identity}\n")
    p.chmod(0o600)
    return p


def test_a_classical_recovery_identity_made_at_init_gives_way_to_hybrid_ones(
        tmp_path: Path) -> None:
    from office import policy_text

    ids = {n: new_identity(n) for n in ("officer", "clerk", "leader")}
    off = tmp_path / "off.yaml"
    off.write_text(policy_text(ids, [], {"version: 1\n": "version: 1\npost_quantum: off\n"}))
    location = tmp_path / "vault"
    vault.Vault.init(location, off, ids["officer"], recovery_out=tmp_path / "rec.key").close()
    assert "AGE-SECRET-KEY-1" in (tmp_path / "rec.key").read_text()  # classical
    officer = vault.Vault(location, ids["officer"])
    # 'required' is refused while the vault's own recovery recipient would
    # stay classical ...
    required = tmp_path / "required.yaml"
    required.write_text(policy_text(ids))
    with pytest.raises(UsageError, match="made at 'vault init' is classical"):
        officer.apply_policy(required)
    # ... and with a hybrid one in the policy the classical one is no longer
    # wrapped to: new headers are hybrid only.
    hybrid = MLKEM768X25519Identity.generate()
    required.write_text(policy_text(ids, [str(hybrid.recipient)]))
    officer.apply_policy(required)
    doc = vault.Vault(location, ids["clerk"]).seal(
        io.BytesIO(b"memo"), filename="m.txt", level="CONFIDENTIAL", compartments=["STAFF"])
    data = next(p for p in (location / "docs").iterdir()
                if p.name.startswith(doc.id)).read_bytes()
    assert recipient_types(data) == {HYBRID}
    assert len([s for s in read_header(io.BytesIO(data)).stanzas if s.type == HYBRID]) == 2
