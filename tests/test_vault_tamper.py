"""Tampering with documents in the store: labels changed, forged, swapped
or moved, recipients added, documents from other vaults, planted keyring
entries, policy versions recorded by someone not entitled -- each is
rejected with an IntegrityError subclass (exit code 4), or never counts."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from backends import Kind
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vault_helpers import (
    Office,
    age_decrypt,
    doc_file,
    file_key_of,
    make_office,
)

import vault
from vault._primitives import b64, canonical_json, hkdf, sign
from vault._sealed.label import LABEL_STANZA
from vault.age import Header, Stanza, parse_recipient, read_header
from vault.errors import (
    EXIT_INTEGRITY,
    IntegrityError,
    LabelError,
    NoKeyError,
    PayloadError,
    StateError,
    UsageError,
    VaultError,
)
from vault.identity import new_identity
from vault.store.base import owner_key


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, backend: Kind) -> Office:
    return make_office(tmp_path_factory.mktemp("office"), backend)


def _seal(office: Office, data: bytes = b"minutes of the board") -> str:
    src = office.file("doc.txt", data)
    return office.as_("leader").seal(src, level="CONFIDENTIAL", compartments=["BOARD"]).id


def _split(office: Office, doc: str) -> tuple[Header, bytes]:
    f = io.BytesIO(office.raw.doc_bytes(doc))
    header = read_header(f)
    return header, f.read()


def _write(office: Office, doc: str, stanzas: list[Stanza], payload: bytes,
           file_key: bytes | None, old: Header | None = None) -> None:
    """Write a header: re-MACed with ``file_key`` (an insider who can open
    the document), or keeping the old MAC (someone without any key)."""
    header = Header.seal(stanzas, file_key) if file_key else Header(stanzas, old.mac)  # type: ignore[union-attr]
    office.raw.set_doc_bytes(doc, header.encode() + payload)


def _label_json(stanza: Stanza) -> Any:
    return json.loads(stanza.body)


def _open_fails(office: Office, doc_id: str, kind: type[Exception], tmp: Path) -> None:
    out = tmp / "out.txt"
    with pytest.raises(kind) as e:
        office.as_("leader").open(doc_id, out)
    assert isinstance(e.value, IntegrityError) and e.value.exit_code == EXIT_INTEGRITY
    assert not out.exists()


def test_changed_label_is_rejected(office: Office, tmp_path: Path) -> None:
    doc = _seal(office)
    header, payload = _split(office, doc)
    file_key = file_key_of(office, doc)
    for insider in (False, True):
        stanzas = []
        for s in header.stanzas:
            if s.type == LABEL_STANZA:
                body = _label_json(s)
                body["statement"]["label"]["level"] = "PUBLIC"
                s = Stanza(LABEL_STANZA, [], canonical_json(body))
            stanzas.append(s)
        key = file_key if insider else None
        _write(office, doc, stanzas, payload, key, header)
        _open_fails(office, doc, StateError, tmp_path)
        with pytest.raises(StateError):
            office.as_("leader").info(doc)


def _relabelled(office: Office, doc: str, signer: vault.UserIdentity) -> list[Stanza]:
    header, _ = _split(office, doc)
    key = file_key_of(office, doc)
    stanzas = []
    for s in header.stanzas:
        if s.type == LABEL_STANZA:
            import hashlib
            import hmac

            body = _label_json(s)
            st_ = body["statement"]
            st_["signer"]["signing_key"] = signer.signing_public
            raw = canonical_json(st_)
            binding = hmac.new(hkdf(key, b"", b"vault/v1 label binding"), raw,
                               hashlib.sha256).digest()
            body["binding"] = b64(binding)
            body["sig"] = b64(sign(signer.signing_key, "label", binding + raw))
            s = Stanza(LABEL_STANZA, [], canonical_json(body))
        stanzas.append(s)
    return stanzas


def test_label_signed_by_someone_the_policy_does_not_know(office: Office, tmp_path: Path) -> None:
    doc = _seal(office)
    _, payload = _split(office, doc)
    stranger = new_identity("leader")  # same name, other key
    _write(office, doc, _relabelled(office, doc, stranger), payload, file_key_of(office, doc))
    _open_fails(office, doc, StateError, tmp_path)


def test_label_swapped_between_documents(office: Office, tmp_path: Path) -> None:
    a, b = _seal(office, b"document A"), _seal(office, b"document B")
    ha, _ = _split(office, a)
    hb, pb = _split(office, b)
    key_b = file_key_of(office, b)
    label_a = next(s for s in ha.stanzas if s.type == LABEL_STANZA)
    # B's file with A's label, re-MACed by someone holding B's file key.
    swapped = [label_a if s.type == LABEL_STANZA else s for s in hb.stanzas]
    _write(office, b, swapped, pb, key_b)
    _open_fails(office, b, StateError, tmp_path)
    # ... and moved under A's name.
    _write(office, a, swapped, pb, key_b)
    _open_fails(office, a, StateError, tmp_path)


def test_a_header_check_that_does_not_need_the_log_still_names_the_forgery(
        office: Office) -> None:
    """Without the recorded digest, the label's own checks still hold: its
    signature, the document it names, the vault it names."""
    from vault._sealed.label import SignedLabel

    a, b = _seal(office, b"A"), _seal(office, b"B")
    label_a = next(s for s in _split(office, a)[0].stanzas if s.type == LABEL_STANZA)
    with pytest.raises(LabelError, match="another document"):
        SignedLabel.verify(label_a, office.as_("leader").id, b)
    with pytest.raises(LabelError, match="another vault"):
        SignedLabel.verify(label_a, "0" * 32, a)
    body = _label_json(label_a)
    body["statement"]["label"]["level"] = "PUBLIC"
    with pytest.raises(LabelError, match="signature"):
        SignedLabel.verify(Stanza(LABEL_STANZA, [], canonical_json(body)),
                           office.as_("leader").id, a)


@pytest.mark.parametrize("content", [
    {"payload": 123, "size": 1, "meta": "0" * 64},
    {"payload": "0" * 64, "size": "1", "meta": "0" * 64},
    {"payload": "0" * 64, "size": -1, "meta": "0" * 64},
    {"payload": "Z" * 64, "size": 1, "meta": "0" * 64},
    {"payload": "0" * 64, "size": 1},
    ["not", "a", "dict"],
])
def test_a_signed_label_with_a_malformed_content_commitment_is_malformed(
        office: Office, content: Any) -> None:
    """The label's signer (here the leader, signing their own label) cannot
    make the content check fail with anything but a clean error."""
    from vault._sealed.label import SignedLabel

    doc = _seal(office)
    label = next(s for s in _split(office, doc)[0].stanzas if s.type == LABEL_STANZA)
    body = _label_json(label)
    body["statement"]["content"] = content
    raw = canonical_json(body["statement"])
    binding = base64.b64decode(body["binding"])
    body["sig"] = b64(sign(office.ids["leader"].signing_key, "label", binding + raw))
    with pytest.raises(LabelError, match="malformed"):
        SignedLabel.verify(Stanza(LABEL_STANZA, [], canonical_json(body)),
                           office.as_("leader").id, doc)


def test_recipient_added_by_an_insider(office: Office, tmp_path: Path) -> None:
    doc = _seal(office)
    header, payload = _split(office, doc)
    key = file_key_of(office, doc)
    outsider = parse_recipient(office.ids["outsider"].recipient)
    _write(office, doc, [*header.stanzas, *outsider.wrap(key)], payload, key)
    # The attack is real: an independent age implementation now lets the
    # outsider read the file ...
    assert age_decrypt(office.files["outsider"], doc_file(office, doc)).returncode == 0
    # ... and the vault refuses it: the header is not the one recorded.
    _open_fails(office, doc, StateError, tmp_path)
    with pytest.raises(StateError):
        office.as_("leader").export(doc, tmp_path / "e.age")
    report = office.as_("officer").doctor()
    assert any(doc in p and "not the version the audit log records" in p
               for p in report.problems)


@pytest.mark.parametrize("named", ["nothing", "its stanzas", "the old stanzas"])
def test_recipient_added_and_recorded_by_an_insider(office: Office, tmp_path: Path,
                                                    named: str) -> None:
    """The leader, who holds the file key, adds the outsider's stanza AND
    records the new header as a rewrap with a modified library, naming in
    the record no stanzas, the header's own, or those of the version it
    replaces (FORMAT.md §14.6). The first two records do not count: the
    document stays as it was. The third counts -- it names the recovery
    stanzas of the version before -- but the header does not hold what it
    names: a reader refuses it."""
    import hashlib

    from vault._sealed.recipients import pins_of, recipient_stanzas

    doc = _seal(office)
    header, payload = _split(office, doc)
    key = file_key_of(office, doc)
    outsider = parse_recipient(office.ids["outsider"].recipient)
    stanzas = recipient_stanzas(header)
    added = [*stanzas, *outsider.wrap(key)]
    new = Header.seal([*added, *header.stanzas[len(stanzas):]], key)
    version = "abcdef01"
    office.raw.set_doc_version_bytes(doc, version, new.encode() + payload)
    state: dict[str, Any] = {"doc": doc, "version": version, "header":
                             hashlib.sha256(new.encode()).hexdigest(), "inputs": {}}
    if named == "its stanzas":
        state["stanzas"] = pins_of(added)
    elif named == "the old stanzas":
        state["stanzas"] = pins_of(stanzas)
    with office.as_("leader") as v:
        row = v._s.trusted.doc(doc)
        assert row is not None
        leader = office.ids["leader"]
        v.audit.append({"actor": {"name": "leader", "key": leader.fingerprint},
                        "action": "rewrap", "doc": doc, "label": None, "outcome": "allowed",
                        "rules": [], "reason": "", "policy": None,
                        "state": {"document": {**state, "key_id": row.key_id,
                                               "statement": row.statement}}},
                        leader.signing_key)
    problems = office.as_("leader").doctor().problems
    if named == "the old stanzas":
        _open_fails(office, doc, LabelError, tmp_path)  # not the stanzas it names
        assert any(doc in p and "other than those its record names" in p
                   for p in problems), problems
    else:
        out = tmp_path / "out.txt"
        office.as_("leader").open(doc, out)  # the version before, untouched
        assert out.read_bytes() == b"minutes of the board"
        why = "does not name" if named == "nothing" else "does not carry the recovery stanzas"
        assert any(why in p for p in problems), problems
    office.raw.delete_doc_version(doc, version)


def test_document_copied_from_another_vault(office: Office, tmp_path: Path,
                                            backend: Kind) -> None:
    other = make_office(tmp_path / "other", backend)
    src = other.file("foreign.txt", b"from elsewhere")
    foreign = other.as_("clerk").seal(src, level="INTERNAL", compartments=["STAFF"]).id
    version = other.raw.current(foreign)
    office.raw.set_doc_version_bytes(foreign, version, other.raw.doc_version_bytes(foreign,
                                                                                   version))
    with pytest.raises(UsageError, match="no document"):
        office.as_("leader").open(foreign, tmp_path / "f.txt")
    report = office.as_("officer").doctor()
    assert any(foreign in p and "never saw" in p for p in report.problems)
    office.raw.delete_doc_version(foreign, version)


def test_flipped_payload_byte_leaves_no_output(office: Office, tmp_path: Path) -> None:
    doc = _seal(office, b"x" * 100_000)
    data = bytearray(office.raw.doc_bytes(doc))
    data[-50] ^= 1
    office.raw.set_doc_bytes(doc, bytes(data))
    _open_fails(office, doc, PayloadError, tmp_path)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_header_bit_flip_is_caught(office: Office, where: float, bit: int) -> None:
    doc = _seal(office)
    header, _ = _split(office, doc)
    data = bytearray(office.raw.doc_bytes(doc))
    i = int(where * len(header.encode()))
    data[i] ^= 1 << bit
    office.raw.set_doc_bytes(doc, bytes(data))
    out = io.BytesIO()
    with pytest.raises(VaultError) as e:
        office.as_("leader").open(doc, out)
    assert isinstance(e.value, IntegrityError)
    assert out.getvalue() == b""


def _insider_record(office: Office, who: str, state: dict[str, Any]) -> None:
    me = office.ids[who]
    with office.as_(who) as v:
        v.audit.append({"actor": {"name": who, "key": me.fingerprint}, "action": "policy-apply",
                        "doc": None, "label": None, "outcome": "allowed", "rules": [],
                        "reason": "", "policy": None, "state": state}, me.signing_key)


def test_policy_version_recorded_by_a_non_administrator_never_comes_into_force(
        tmp_path: Path, backend: Kind) -> None:
    import hashlib

    office = make_office(tmp_path, backend)
    evil = office.policy_text({"clearance: PUBLIC": "clearance: SECRET"})
    _insider_record(office, "clerk", {"policy": {
        "version": 2, "sha256": hashlib.sha256(evil.encode()).hexdigest(), "text": evil}})
    with office.as_("outsider") as v:
        assert v.policy_version == 1
        assert v.policy.users["outsider"].clearance.level == "PUBLIC"
    report = office.as_("officer").doctor()
    assert any("not entitled to administer" in p for p in report.problems)


def test_policy_text_that_is_not_the_recorded_hash_never_comes_into_force(
        tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    evil = office.policy_text({"clearance: PUBLIC": "clearance: SECRET"})
    _insider_record(office, "officer", {"policy": {
        "version": 2, "sha256": "0" * 64, "text": evil}})
    assert office.as_("outsider").policy_version == 1


def test_planted_keyring_entry_is_ignored(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = _seal(office)
    leader = office.ids["leader"].recipient
    from vault.age import MLKEM768X25519Identity, encrypt

    for okey, entry in office.raw.keyring_files():
        if okey != owner_key(leader):
            continue
        fake = io.BytesIO()  # replaced by a key the attacker knows
        encrypt(io.BytesIO(f"{MLKEM768X25519Identity.generate()}\n".encode()), fake,
                [parse_recipient(leader)])
        office.raw.set_keyring_entry(okey, entry, fake.getvalue())
    with pytest.raises(NoKeyError):
        office.as_("leader").open(doc, io.BytesIO())
    problems = office.as_("officer").doctor().problems
    assert any("leader's keyring entry" in p and "not the one the audit log granted" in p
               for p in problems)
