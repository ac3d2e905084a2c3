"""A revoked user's kept keys (docs/DESIGN.md §3.3, FORMAT.md §14.6): after
a revocation, no header that counts is wrapped to a class key the revoked
user could know -- not even by a cleared insider whose modified client
picks the old generation on purpose, for a new document or by rewrapping
an existing one back to it.

Each attack is run on both backends by someone cleared for the class (the
leader), who could hand over the plaintext anyway: what the vault must not
do is take such a header for a genuine version, as if the rotation had
shut the revoked user out of it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from office import Office
from vault_helpers import doc_file, held_secret_keys, opens_with

from vault._trust.classes import ClassKey
from vault.errors import DeniedError, IntegrityError

DEPUTY_SECRET = "clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}\n  outsider:"
DEPUTY_LOWER = "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}\n  outsider:"
NOT_CLEAN = "someone not cleared for it could know"


def _seal(office: Office, data: bytes) -> str:
    return office.as_("leader").seal(io.BytesIO(data), filename="m.txt", level="SECRET",
                                     compartments=["BOARD"], justification="minutes").id


def _key_of(office: Office, doc: str) -> str:
    with office.as_("leader") as v:
        row = v._s.trusted.doc(doc)
        assert row is not None
        return row.key_id


def _modified_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leader's copy of the library treats every class key as usable:
    the unclean current generation is wrapped to instead of being replaced;
    and it leaves what it wrote when the log does not count it."""
    import vault._ops.seal as seal_module
    from vault._ops.discipline import complete

    def usable(self: ClassKey, policy: Any, post_quantum: bool) -> bool:
        return True

    def complete_as_written(s: Any, atts: Any, states: Any, ck: Any, reason: str = "") -> None:
        complete(s, atts, states, reason)

    monkeypatch.setattr(ClassKey, "usable", usable)
    monkeypatch.setattr(seal_module, "complete_wrapped", complete_as_written)


def test_a_new_document_wrapped_to_the_key_a_revoked_user_kept_does_not_count(
        office: Office, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _seal(office, b"minutes before")
    old_key = _key_of(office, before)
    kept = held_secret_keys(office, "deputy")  # what the deputy kept while cleared
    office.apply({DEPUTY_SECRET: DEPUTY_LOWER})

    with monkeypatch.context() as m:
        _modified_client(m)
        with pytest.raises(IntegrityError, match="does not count") as caught:
            _seal(office, b"minutes after")
    planted = str(caught.value).split()[1].rstrip(":")
    # The file was written, wrapped to the old generation: the deputy's kept
    # keys open it -- but no reader takes it for a document of the vault,
    # and doctor names both the record and the file, kept as evidence.
    assert opens_with(kept, doc_file(office, planted), tmp_path)
    with office.as_("leader") as v:
        assert {d.id for d in v.ls()} == {before}
    problems = office.as_("officer").doctor().problems
    assert any(NOT_CLEAN in p for p in problems), problems
    assert any(planted in p and "not used" in p for p in problems), problems
    # An honest seal afterwards makes a clean generation, as it should.
    after = _seal(office, b"minutes after, honestly")
    assert _key_of(office, after) != old_key
    assert not opens_with(kept, doc_file(office, after), tmp_path)
    with pytest.raises(DeniedError):
        office.as_("deputy").open(after, io.BytesIO())


def _generations(office: Office, doc: str) -> list[ClassKey]:
    with office.as_("leader") as v:
        row = v._s.trusted.doc(doc)
        assert row is not None
        ck = v._s.trusted.key(row.key_id)
        assert ck is not None
        return v._s.trusted.generations(ck.cls)


def test_a_rewrap_back_to_the_revoked_generation_does_not_count(office: Office) -> None:
    from vault._ops.admin import _rewrap_batch
    from vault._results import RotateReport

    doc = _seal(office, b"minutes")
    office.apply({DEPUTY_SECRET: DEPUTY_LOWER})
    office.as_("leader").rotate()  # generation 2, the document rewrapped to it
    first, second = _generations(office, doc)
    assert _key_of(office, doc) == second.key_id
    # The leader's modified client runs the library's own rewrap, aimed at
    # generation 1: header only, the label kept, as a rewrap is.
    with office.as_("leader") as v, v._s.lock():
        row = v._s.trusted.doc(doc)
        with pytest.raises(IntegrityError, match="does not count"):
            _rewrap_batch(v._s, [row], first, v._s.my_keyring(), RotateReport())
    assert _key_of(office, doc) == second.key_id
    out = io.BytesIO()
    office.as_("leader").open(doc, out)
    assert out.getvalue() == b"minutes"
    problems = office.as_("leader").doctor().problems
    assert any(NOT_CLEAN in p for p in problems), problems


def test_an_older_generation_that_is_still_clean_may_be_used(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # What counts is who could know the key, not how new it is: after a
    # rotation that revoked nobody, generation 1 is as safe as generation 2,
    # and a client still using it when the rotation landed is no insider.
    # Its document counts, and doctor finds nothing wrong with it.
    from vault._trust.trusted import TrustedState

    def staff(data: bytes) -> str:
        return office.as_("clerk").seal(io.BytesIO(data), filename="n.txt",
                                        level="CONFIDENTIAL", compartments=["STAFF"]).id

    doc = staff(b"notice")
    office.as_("officer").rotate(["CONFIDENTIAL//STAFF"])  # an administrator cleared for it
    first, second = _generations(office, doc)
    assert _key_of(office, doc) == second.key_id
    with monkeypatch.context() as m:
        m.setattr(TrustedState, "current", lambda self, cls: first)
        late = staff(b"sealed to generation 1")
    assert _key_of(office, late) == first.key_id
    report = office.as_("officer").doctor()
    assert report.ok, report.problems


def test_a_policy_that_clears_nobody_for_a_class_in_use_is_refused(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # A level renamed (CONFIDENTIAL -> CONF) passes 'policy check'. Applied,
    # it withdrew the CONFIDENTIAL//BOARD key from every holder: applying
    # the old text again granted it to nobody (nobody held it to grant),
    # nobody could open its documents through the vault, new documents
    # sealed at it opened for nobody, and doctor said ok.
    from vault._ops import admin
    from vault.errors import UsageError

    doc = office.as_("clerk").seal(io.BytesIO(b"board paper"), level="CONFIDENTIAL",
                                   compartments=["BOARD"]).id
    renamed = office.write_policy({"CONFIDENTIAL": "CONF"})
    with pytest.raises(UsageError, match=r"clears nobody who holds the key of "
                                         r"CONFIDENTIAL//BOARD \(1 document\)"):
        office.as_("officer").apply_policy(renamed)
    # Its holders lowered, someone who never held it raised: nobody left to
    # grant it to them.
    secret = office.as_("leader").seal(io.BytesIO(b"minutes"), level="SECRET",
                                       compartments=["BOARD"]).id
    swapped = office.write_policy({
        "clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}":
            "clearance: {level: CONFIDENTIAL, compartments: [STAFF, HR, FINANCE, BOARD]}",
        "clearance: {level: INTERNAL, compartments: [STAFF]}":
            "clearance: {level: SECRET, compartments: [STAFF, BOARD]}"})
    with pytest.raises(UsageError, match=r"clears nobody who holds the key of "
                                         r"SECRET//BOARD \(1 document\)"):
        office.as_("officer").apply_policy(swapped)
    assert office.as_("officer").policy_version == 1
    office.as_("deputy").open(secret, io.BytesIO())
    out = io.BytesIO()
    office.as_("leader").open(doc, out)
    assert out.getvalue() == b"board paper"
    # Where it happened anyway (a vault of an earlier version): doctor says so.
    monkeypatch.setattr(admin, "_check_nobody_stranded", lambda s, new: None)
    office.as_("officer").apply_policy(renamed)
    office.apply({})  # the old text again
    problems = office.as_("officer").doctor().problems
    assert any(p.startswith("class CONFIDENTIAL//BOARD: nobody holds its current key, so nobody "
                            "can open its 1 document") for p in problems), problems


def test_holders_given_new_keys_do_not_freeze_the_policy(office: Office) -> None:
    # The officer gives both holders of the SECRET//BOARD key new keys (the
    # documented case where nobody can rewrap until one of them has their
    # old key back). The check looked for holders among the recipients of
    # the version in force only, found none, and refused every later
    # version: the old keys back, an unrelated edit, a revocation.
    from office import policy_text

    from vault.identity import new_identity

    office.as_("leader").seal(io.BytesIO(b"minutes"), level="SECRET", compartments=["BOARD"])
    renewed = {**office.ids, "leader": new_identity("leader", post_quantum=True),
               "deputy": new_identity("deputy", post_quantum=True)}
    recovery = [str(office.recovery.recipient)]
    for n, text in enumerate((policy_text(renewed, recovery),
                              policy_text(renewed, recovery, {
                                  "clearance: {level: INTERNAL, compartments: [STAFF]}":
                                      "clearance: PUBLIC"}),
                              policy_text(office.ids, recovery)), 2):
        path = office.root / f"v{n}.yaml"
        path.write_text(text)
        assert office.as_("officer").apply_policy(path).version == n


def test_doctor_asks_for_the_recovery_identity_when_no_holder_kept_their_keys(
        office: Office) -> None:
    # Everyone cleared for SECRET//BOARD given new keys at once (DESIGN.md
    # §10.3): no rotation can rewrap its documents, since nobody cleared can
    # unwrap the key they are wrapped to. Doctor asked "someone cleared" to
    # run 'vault rotate', which can only leave them as they are.
    from office import policy_text

    from vault.identity import new_identity

    office.as_("leader").seal(io.BytesIO(b"minutes"), level="SECRET", compartments=["BOARD"])
    renewed = {**office.ids, "leader": new_identity("leader", post_quantum=True),
               "deputy": new_identity("deputy", post_quantum=True)}
    path = office.root / "renewed.yaml"
    path.write_text(policy_text(renewed, [str(office.recovery.recipient)]))
    office.as_("officer").apply_policy(path)
    (problem,) = [p for p in office.as_("officer").doctor().problems if "BOARD" in p]
    assert "nobody cleared holds it, open its documents with the recovery identity" in problem
    office.ids = renewed
    office.as_("leader").rotate()  # leaves the same work, on the older generation
    (problem,) = [p for p in office.as_("officer").doctor().problems if "BOARD" in p]
    assert "nobody cleared holds that key to rewrap them: open them with the recovery " \
           "identity" in problem, problem
    assert "'vault rotate'" not in problem
    r = office.cli("officer", "doctor")
    assert r.exit_code == 4
    assert "hint: no key of the vault can open these documents" in r.stderr, r.stderr


def test_renaming_a_classs_only_holder_is_no_stranding(office: Office) -> None:
    # The deputy, the only holder of a class's key, renamed "vice" with the
    # same keys and clearance: refused, as if nobody held it any more.
    # The leader loses BOARD: the deputy alone is cleared for SECRET//BOARD.
    office.apply({"STAFF, HR, FINANCE, BOARD]}\n  deputy:": "STAFF, HR, FINANCE]}\n  deputy:"})
    doc = office.as_("deputy").seal(io.BytesIO(b"minutes"), level="SECRET",
                                    compartments=["BOARD"]).id
    renamed = office.write_policy({
        "STAFF, HR, FINANCE, BOARD]}\n  deputy:": "STAFF, HR, FINANCE]}\n  deputy:",
        "  deputy:\n": "  vice:\n", "[leader, deputy]": "[leader, vice]"})
    office.as_("officer").apply_policy(renamed)
    out = io.BytesIO()
    office.as_("deputy").open(doc, out)
    assert out.getvalue() == b"minutes"


def test_a_version_pairing_a_recipient_with_another_signing_key_is_refused(
        office: Office) -> None:
    # The clerk's recipient replaced, her signing key kept: her client was
    # then no user, and her next honest attempt was recorded with no name
    # under a key the policy gives her -- a finding for 'audit verify' and
    # 'doctor' on an intact vault, for everyone, until an incident.
    from vault.age import MLKEM768X25519Identity
    from vault.errors import UsageError

    clerk = office.ids["clerk"]
    other = str(MLKEM768X25519Identity.generate().recipient)
    path = office.write_policy({clerk.recipient: other})
    with pytest.raises(UsageError, match="user clerk: a recipient and a signing key come "
                                         "from one identity"):
        office.as_("officer").apply_policy(path)
    assert office.as_("officer").policy_version == 1
