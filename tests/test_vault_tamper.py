"""Tampering: labels changed, forged, swapped or moved, recipients added,
documents from other vaults, a replaced policy or key record -- each is
rejected with an IntegrityError subclass (exit code 4)."""

from __future__ import annotations

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
from vault._primitives import b64, canonical_json, sign
from vault._sealed.label import LABEL_STANZA
from vault.age import Header, Stanza, X25519Recipient, read_header
from vault.errors import (
    EXIT_INTEGRITY,
    IntegrityError,
    LabelError,
    NoKeyError,
    PayloadError,
    VaultError,
)
from vault.identity import new_identity


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
        _open_fails(office, doc, LabelError, tmp_path)
        with pytest.raises(LabelError):
            office.as_("leader").info(doc)


def test_label_signed_by_someone_the_policy_does_not_know(office: Office, tmp_path: Path) -> None:
    doc = _seal(office)
    header, payload = _split(office, doc)
    key = file_key_of(office, doc)
    stranger = new_identity("leader")  # same name, other key
    stanzas = []
    for s in header.stanzas:
        if s.type == LABEL_STANZA:
            body = _label_json(s)
            st_ = body["statement"]
            st_["signer"]["signing_key"] = stranger.signing_public
            import hashlib
            import hmac

            from vault._primitives import hkdf32

            raw = canonical_json(st_)
            binding = hmac.new(hkdf32(key, b"vault/v1 label binding"), raw,
                               hashlib.sha256).digest()
            body["binding"] = b64(binding)
            body["sig"] = b64(sign(stranger.signing_key, "label", binding + raw))
            s = Stanza(LABEL_STANZA, [], canonical_json(body))
        stanzas.append(s)
    _write(office, doc, stanzas, payload, key)
    _open_fails(office, doc, LabelError, tmp_path)


def test_label_swapped_between_documents(office: Office, tmp_path: Path) -> None:
    a, b = _seal(office, b"document A"), _seal(office, b"document B")
    ha, _ = _split(office, a)
    hb, pb = _split(office, b)
    key_b = file_key_of(office, b)
    label_a = next(s for s in ha.stanzas if s.type == LABEL_STANZA)
    # B's file with A's label, re-MACed by someone holding B's file key.
    swapped = [label_a if s.type == LABEL_STANZA else s for s in hb.stanzas]
    _write(office, b, swapped, pb, key_b)
    _open_fails(office, b, LabelError, tmp_path)  # names the wrong document
    # ... and moved under A's name: the label names A, but is bound to A's key.
    _write(office, a, swapped, pb, key_b)
    _open_fails(office, a, LabelError, tmp_path)


def test_recipient_added_by_an_insider(office: Office, tmp_path: Path) -> None:
    doc = _seal(office)
    header, payload = _split(office, doc)
    key = file_key_of(office, doc)
    outsider = X25519Recipient.from_string(office.ids["outsider"].recipient)
    _write(office, doc, [*header.stanzas, *outsider.wrap(key)], payload, key)
    # The attack is real: stock age now lets the outsider read the file ...
    assert age_decrypt(office.files["outsider"], doc_file(office, doc)).returncode == 0
    # ... and the vault refuses it.
    _open_fails(office, doc, LabelError, tmp_path)
    with pytest.raises(LabelError):
        office.as_("leader").export(doc, tmp_path / "e.age")
    # A key holder's doctor finds it without opening the document.
    report = office.as_("leader").doctor()
    assert not report.ok
    assert any(doc in p and "not authorise" in p for p in report.problems)


def test_document_copied_from_another_vault(office: Office, tmp_path: Path,
                                            backend: Kind) -> None:
    other = make_office(tmp_path / "other", backend)
    src = other.file("foreign.txt", b"from elsewhere")
    foreign = other.as_("clerk").seal(src, level="INTERNAL", compartments=["STAFF"]).id
    office.raw.set_doc_bytes(foreign, other.raw.doc_bytes(foreign))
    with pytest.raises(LabelError, match="another vault"):
        office.as_("leader").open(foreign, tmp_path / "f.txt")
    office.raw.delete_doc(foreign)


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
    # A damaged stanza for the class key can only show up as "no key".
    assert isinstance(e.value, IntegrityError | NoKeyError)
    assert out.getvalue() == b""


def test_class_key_record_replaced(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    _seal(office)
    record = office.raw.class_keys()[0]
    body = json.loads(office.raw.class_key(*record))
    body["statement"]["recipient"] = office.ids["outsider"].recipient  # not re-signed
    office.raw.set_class_key(*record, (json.dumps(body, sort_keys=True, separators=(",", ":"))
                                       + "\n").encode())
    with pytest.raises(IntegrityError, match="bad signature"):
        office.as_("leader").seal(office.file("n.txt", b"n"), level="CONFIDENTIAL",
                                  compartments=["BOARD"])


def test_policy_replaced_in_the_folder(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    raw = office.raw.policy(1)
    office.raw.set_policy(1, raw.replace(b"clearance: PUBLIC", b"clearance: SECRET"))
    with pytest.raises(IntegrityError):
        office.as_("outsider")


def test_policy_version_signed_by_a_non_administrator(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    from vault._trust.chain import sign_policy_version

    raw = office.raw.policy(1)
    prev = __import__("hashlib").sha256(raw).hexdigest()
    evil = raw.replace(b"clearance: PUBLIC", b"clearance: SECRET")
    clerk = office.ids["clerk"]
    sig = sign_policy_version(clerk, office.as_("clerk").id, 2, evil, prev, "2025-01-01T00:00:00Z")
    office.raw.set_policy(2, evil, sig)
    with pytest.raises(IntegrityError, match="administrator"):
        vault.Vault(office.location, office.ids["outsider"])


def test_planted_keyring_entry_is_ignored(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = _seal(office)
    leader = office.ids["leader"].recipient
    from vault.age import X25519Identity, encrypt

    for entry in office.raw.keyring_entries(leader):  # replace by keys the attacker knows
        fake = io.BytesIO()
        encrypt(io.BytesIO(f"{X25519Identity.generate()}\n".encode()), fake,
                [X25519Recipient.from_string(leader)])
        office.raw.set_keyring_entry(leader, entry, fake.getvalue())
    with pytest.raises(NoKeyError):
        office.as_("leader").open(doc, io.BytesIO())
