"""A document's recovery stanzas are the ones its record names, and a new
version keeps them while the recovery recipients stay the same
(docs/FORMAT.md §14.6, DESIGN.md §4.3).

A post-quantum stanza cannot be recomputed from the file key, so counting
stanzas was all a reader could do: a cleared insider's modified client
could swap a document's recovery stanza for one to a key of their choosing
(the outsider's) and record the header as a rewrap, or record again a
header kept from before the recovery recipients changed. Both counted, and
recovery no longer opened the document, or a retired recovery key did
again. Run on both backends.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from office import Office, policy_text

from vault._sealed.recipients import pins_of, recipient_stanzas, vault_recipient
from vault.age import (
    Header,
    MLKEM768X25519Identity,
    Stanza,
    decrypt,
    parse_recipient,
    read_header,
    unwrap_file_key,
)


def _seal(office: Office, who: str, level: str, compartment: str) -> str:
    return office.as_(who).seal(io.BytesIO(b"staff appraisal"), filename="a.txt", level=level,
                                compartments=[compartment], justification="review").id


def _opens(office: Office, who: str, doc: str) -> bytes:
    out = io.BytesIO()
    office.as_(who).open(doc, out)
    return out.getvalue()


def _version(office: Office, doc: str) -> str:
    """The version the replayed log says is the document."""
    with office.as_("officer") as v:
        row = v._s.trusted.doc(doc)
        assert row is not None
        return row.version


def _recorded(office: Office, doc: str) -> bytes:
    return office.raw.doc_version_bytes(doc, _version(office, doc))


def _stored_opens_with(office: Office, doc: str, identity: Any) -> bool:
    out = io.BytesIO()
    try:
        decrypt(io.BytesIO(_recorded(office, doc)), out, [identity])
    except Exception:
        return False
    return out.getvalue() == b"staff appraisal"


def _record_rewrap(office: Office, who: str, doc: str, data: bytes,
                   stanzas: list[Stanza] | None) -> None:
    """``who``'s modified client stores ``data`` as a new version of
    ``doc`` and records it as a rewrap, naming ``stanzas`` (or none)."""
    version = "5eed5eed"
    office.raw.set_doc_version_bytes(doc, version, data)
    header = read_header(io.BytesIO(data)).encode()
    me = office.ids[who]
    with office.as_(who) as v:
        row = v._s.trusted.doc(doc)
        assert row is not None
        state: dict[str, Any] = {"doc": doc, "version": version, "key_id": row.key_id,
                                 "header": hashlib.sha256(header).hexdigest(),
                                 "statement": row.statement, "inputs": {}}
        if stanzas is not None:
            state["stanzas"] = pins_of(stanzas)
        v.audit.append({"actor": {"name": who, "key": me.fingerprint}, "action": "rewrap",
                        "doc": doc, "label": None, "outcome": "allowed", "rules": [],
                        "reason": "", "policy": None, "state": {"document": state}},
                       me.signing_key)


def _swapped_for_the_outsider(office: Office, who: str, doc: str) -> tuple[bytes, list[Stanza]]:
    """The document's stored file as ``who`` (cleared: they hold the class
    key) rewrites it: the class key's stanza made anew and, in place of the
    recovery stanza, one to the outsider's key -- the same count."""
    with office.as_(who) as v:
        row = v._s.trusted.doc(doc)
        assert row is not None
        ck = v._s.trusted.key(row.key_id)
        assert ck is not None
        identity = v._s.my_keyring().identity(ck)
    src = io.BytesIO(_recorded(office, doc))
    header = read_header(src)
    file_key = unwrap_file_key(header, [identity])
    swapped = [*vault_recipient(ck.recipient).wrap(file_key),
               *parse_recipient(office.ids["outsider"].recipient).wrap(file_key)]
    assert len(swapped) == len(recipient_stanzas(header))
    new = Header.seal([*swapped, *header.stanzas[len(swapped):]], file_key)
    return new.encode() + src.read(), swapped


@pytest.mark.parametrize("named", ["no stanzas", "its stanzas"])
def test_a_recovery_stanza_swapped_for_an_outsiders_does_not_count(
        office: Office, named: str) -> None:
    doc = _seal(office, "leader", "CONFIDENTIAL", "STAFF")
    data, swapped = _swapped_for_the_outsider(office, "clerk", doc)  # clerk: cleared for it
    _record_rewrap(office, "clerk", doc, data, None if named == "no stanzas" else swapped)
    # The version before is still the document: the leader opens it, and so
    # does the recovery identity, on every machine; doctor names the record.
    assert _opens(office, "leader", doc) == b"staff appraisal"
    assert _version(office, doc) != "5eed5eed"
    assert _stored_opens_with(office, doc, office.recovery)
    problems = office.as_("officer").doctor().problems
    why = "does not name" if named == "no stanzas" else "does not carry the recovery stanzas"
    assert any(why in p for p in problems), problems


def test_a_header_from_before_a_recovery_change_does_not_come_back(office: Office) -> None:
    doc = _seal(office, "leader", "SECRET", "BOARD")
    kept = _recorded(office, doc)  # the deputy keeps a copy of the stored file
    retired = office.recovery
    new = MLKEM768X25519Identity.generate()
    path = office.root / "new-recovery.yaml"
    path.write_text(policy_text(office.ids, [str(new.recipient)]))
    office.as_("officer").apply_policy(path)
    assert doc in office.as_("leader").rotate().rewrapped
    assert not _stored_opens_with(office, doc, retired)
    assert _stored_opens_with(office, doc, new)
    for named in (None, recipient_stanzas(read_header(io.BytesIO(kept)))):
        _record_rewrap(office, "deputy", doc, kept, named)
        assert _version(office, doc) != "5eed5eed"
        assert not _stored_opens_with(office, doc, retired)  # still retired
        assert _stored_opens_with(office, doc, new)
        assert _opens(office, "leader", doc) == b"staff appraisal"
        office.raw.delete_doc_version(doc, "5eed5eed")


def test_honest_new_versions_keep_the_recovery_stanzas(office: Office) -> None:
    # Writers copy the recovery stanzas while the recovery recipients stay
    # the same: a rotation and a relabel keep them byte for byte; after the
    # recovery recipients change, the next rewrap makes new ones.
    doc = _seal(office, "leader", "CONFIDENTIAL", "STAFF")

    def recovery_stanzas() -> list[bytes]:
        header = read_header(io.BytesIO(_recorded(office, doc)))
        return sorted(s.encode() for s in recipient_stanzas(header)[1:])

    first = recovery_stanzas()
    office.as_("leader").rotate(["CONFIDENTIAL//STAFF"])
    office.as_("leader").reclassify(doc, level="CONFIDENTIAL", compartments=["STAFF", "HR"],
                                    justification="also a personnel matter")
    assert recovery_stanzas() == first
    new = MLKEM768X25519Identity.generate()
    path = office.root / "new-recovery.yaml"
    path.write_text(policy_text(office.ids, [str(new.recipient)]))
    office.as_("officer").apply_policy(path)
    office.as_("leader").rotate()
    assert recovery_stanzas() != first
    assert _stored_opens_with(office, doc, new)
    assert office.as_("leader").doctor().ok


def test_a_header_recorded_again_before_the_rotation_is_still_rewrapped(
        office: Office) -> None:
    # Between a change of recovery recipients and the rotation that carries
    # it out, a cleared insider records the document's current header again.
    # Its recovery stanzas are the same, made for the retired recipient: the
    # record says so, and the rotation still moves it.
    doc = _seal(office, "leader", "SECRET", "BOARD")
    retired = office.recovery
    new = MLKEM768X25519Identity.generate()
    path = office.root / "new-recovery.yaml"
    path.write_text(policy_text(office.ids, [str(new.recipient)]))
    office.as_("officer").apply_policy(path)
    current = _recorded(office, doc)
    _record_rewrap(office, "deputy", doc, current,
                   recipient_stanzas(read_header(io.BytesIO(current))))
    assert _version(office, doc) == "5eed5eed"  # the same stanzas: it counts
    assert doc in office.as_("leader").rotate().rewrapped
    assert _stored_opens_with(office, doc, new)
    assert not _stored_opens_with(office, doc, retired)


def test_one_spoiled_document_does_not_stop_the_rotation_of_the_others(
        office: Office) -> None:
    # A cleared insider's record names stanzas its header does not hold (a
    # documented way to spoil one document). A revocation afterwards must
    # still move every other document of the class off the revoked key.
    docs = [_seal(office, "leader", "CONFIDENTIAL", "FINANCE") for _ in range(3)]
    spoiled = _seal(office, "clerk", "CONFIDENTIAL", "FINANCE")
    data = _recorded(office, spoiled)
    pins = pins_of(recipient_stanzas(read_header(io.BytesIO(data))))
    me = office.ids["clerk"]
    with office.as_("clerk") as v:
        row = v._s.trusted.doc(spoiled)
        assert row is not None
        state = {"doc": spoiled, "version": row.version, "key_id": row.key_id,
                 "header": row.header, "statement": row.statement, "inputs": {},
                 "stanzas": {**pins, "class": "0" * 64}}
        v.audit.append({"actor": {"name": "clerk", "key": me.fingerprint}, "action": "rewrap",
                        "doc": spoiled, "label": None, "outcome": "allowed", "rules": [],
                        "reason": "", "policy": None, "state": {"document": state}},
                       me.signing_key)
    office.apply({"clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}\n"
                  "  outsider:": "clearance: {level: SECRET, compartments: [STAFF, HR, BOARD]}\n"
                  "  outsider:"})  # the deputy leaves FINANCE
    report = office.as_("leader").rotate()
    assert sorted(report.rewrapped) == sorted(docs), report
    assert any(spoiled in p and "cannot be rewrapped" in p for p in report.pending), report


def test_the_recovery_holder_finds_a_stanza_made_for_another_key_in_the_rotation_window(
        office: Office, tmp_path: Any) -> None:
    # A limit (DESIGN.md §4.3): between a change of recovery recipients and
    # the rotation that carries it out, the version that moves a document to
    # the new recipients makes new recovery stanzas, which nobody can
    # check. The deputy's modified client makes the one for the new
    # recovery key to the outsider's key instead, and records it as that
    # rewrap: it counts, and the leader's rotation leaves it. Only the
    # holder of the new recovery identity can tell, and doctor does when
    # given it -- on the document, by record; a clean vault stays clean.
    doc = _seal(office, "leader", "SECRET", "BOARD")
    other = _seal(office, "leader", "SECRET", "BOARD")
    new = MLKEM768X25519Identity.generate()
    path = office.root / "new-recovery.yaml"
    path.write_text(policy_text(office.ids, [str(new.recipient)]))
    office.as_("officer").apply_policy(path)  # not cleared for BOARD: no rewrap yet
    with office.as_("officer") as v:
        assert not v.doctor(recovery=[new]).ok  # both wait for the rotation, and it says so
        assert all("'vault rotate'" in p for p in v.doctor(recovery=[new]).problems)
    data, swapped = _swapped_for_the_outsider(office, "deputy", doc)
    _record_rewrap(office, "deputy", doc, data, swapped)
    assert _version(office, doc) == "5eed5eed"  # counted: the limit
    assert other in office.as_("leader").rotate().rewrapped
    assert not _stored_opens_with(office, doc, new)
    assert _stored_opens_with(office, other, new)
    assert office.as_("officer").doctor().ok  # nobody else can tell
    problems = office.as_("officer").doctor(recovery=[new]).problems
    assert len(problems) == 1 and problems[0].startswith(f"document {doc}: the recovery "
                                                          "identity given does not open it")
    assert "whoever recorded it chose them" in problems[0]
    # From the command line, with the recovery identity file (0600).
    key = tmp_path / "recovery.key"
    key.write_text(f"{new}\n")
    key.chmod(0o600)
    r = office.cli("officer", "doctor", "--recovery-identity", str(key))
    assert r.exit_code == 4 and f"problem: document {doc}: the recovery identity" in r.stdout
    assert str(new) not in r.stdout + r.stderr  # no key material shown
    key.chmod(0o644)
    r = office.cli("officer", "doctor", "--recovery-identity", str(key))
    assert r.exit_code == 2 and "chmod 600" in r.stderr, r.stderr
