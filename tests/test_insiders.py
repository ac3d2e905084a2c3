"""Insiders (docs/THREAT-MODEL.md §3): a name is a key, and a signature counts
only when its signer was entitled to make it.

Each test is an attack by someone inside the office -- a renamed identity
file, a class key planted through the audit log or the store, a reader who
rewrites a header they can decrypt, a content swap, a hostile value -- run
against both backends, with what the attacker could do with write access
to the folder or the PostgreSQL application role: write files, and append
records signed with their *own* key (a modified copy of the library).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from backends import Kind
from office import Office, make_office
from vault_helpers import make_another_users

import vault
from vault.age import Header, MLKEM768X25519Identity, read_header, unwrap_file_key
from vault.errors import DeniedError, IntegrityError, StorageError, UsageError
from vault.identity import UserIdentity, load_identity


def seal(office: Office, who: str, data: bytes, **label: Any) -> str:
    return office.as_(who).seal(io.BytesIO(data), filename="x.txt", **label).id


def insider_append(office: Office, who: str, action: str, state: dict[str, Any] | None,
                   *, outcome: str = "allowed", name: str | None = "") -> None:
    """A record appended by ``who`` with a modified library: signed with
    their own key, claiming whatever they like."""
    me = office.ids[who]
    with office.as_("officer") as v:
        v.audit.append({"actor": {"name": who if name == "" else name, "key": me.fingerprint},
                        "action": action, "doc": None, "label": None, "outcome": outcome,
                        "rules": [], "reason": "", "policy": None, "state": state},
                       me.signing_key)


def records(office: Office) -> list[dict[str, Any]]:
    return [json.loads(line) for line in office.raw.audit_lines()]


# -- 1. who acts is decided by keys ---------------------------------------------


def test_an_identity_file_renamed_to_the_leader_acts_as_its_own_keys(office: Office,
                                                                      tmp_path: Path) -> None:
    doc = seal(office, "leader", b"minutes", level="SECRET", compartments=["BOARD"],
               justification="board")
    text = office.files["outsider"].read_text().replace("# name: outsider", "# name: leader")
    forged = tmp_path / "x.key"
    forged.write_text(text)
    forged.chmod(0o600)
    impostor = load_identity(forged)
    assert impostor.name == "leader"
    with vault.Vault(office.location, impostor) as v:
        assert v.actor == "outsider"  # the policy user whose keys these are
        with pytest.raises(DeniedError):
            v.shred(doc, justification="gone")
    last = records(office)[-1]
    assert last["actor"]["name"] == "outsider" and last["outcome"] == "denied"
    assert office.as_("leader").info(doc).id == doc  # still there


def test_keys_the_policy_does_not_know_act_as_nobody(office: Office) -> None:
    stranger = UserIdentity("leader", MLKEM768X25519Identity.generate())
    with vault.Vault(office.location, stranger) as v:
        assert v.actor is None
        with pytest.raises(DeniedError):
            v.ls()
        with pytest.raises(DeniedError):
            v.rotate()
    rec = records(office)[-1]
    assert rec["actor"]["name"] is None and rec["outcome"] == "denied"
    assert "leader" not in json.dumps(rec["actor"])
    # Recorded, and the record verifies (the stranger's key is registered).
    assert office.as_("officer").verify_audit().size == len(records(office))


def test_an_honest_new_key_under_the_old_name_is_an_unknown_actor_until_the_officer_adds_it(
        office: Office, tmp_path: Path) -> None:
    new_key = vault.new_identity("leader")
    with vault.Vault(office.location, new_key) as v, pytest.raises(DeniedError):
        v.ls()
    assert office.as_("officer").verify_audit()  # no record that verify rejects forever
    office.ids["leader"] = new_key
    office.apply({})  # the officer puts the new keys in the policy
    with vault.Vault(office.location, new_key) as v:
        assert v.actor == "leader"
        v.ls()


# -- 2. a class key counts only if its maker was entitled --------------------------


def _plant_class_key(office: Office, who: str, level: str, comps: list[str]) -> str:
    from vault._trust.classes import LabelClass, key_id

    cls = LabelClass(level, frozenset(comps))
    planted = MLKEM768X25519Identity.generate()
    recipient = str(planted.recipient)
    insider_append(office, who, "class-key", {"class_key": {
        "class": cls.to_dict(), "class_id": cls.id, "generation": 1, "recipient": recipient}})
    return key_id(recipient)


def test_a_class_key_planted_by_someone_not_cleared_is_never_used(office: Office) -> None:
    planted = _plant_class_key(office, "outsider", "SECRET", ["FINANCE"])
    doc = seal(office, "leader", b"budget", level="SECRET", compartments=["FINANCE"],
               justification="budget")
    with office.as_("leader") as v:
        row = v._s.trusted.doc(doc)
        assert row is not None and row.key_id != planted
        report = v.doctor()
    assert any("class key" in p and "outsider" in p for p in report.problems)


def test_a_demoted_administrator_cannot_plant_keys_naming_old_versions(office: Office) -> None:
    office.apply({"members: [officer]": "members: [officer, deputy]"})
    office.apply({})  # deputy is an officer no more (back to the template)
    planted = _plant_class_key(office, "registrar", "CONFIDENTIAL", ["BOARD"])
    doc = seal(office, "clerk", b"agenda", level="CONFIDENTIAL", compartments=["BOARD"])
    with office.as_("clerk") as v:
        row = v._s.trusted.doc(doc)
        assert row is not None and row.key_id != planted


def test_a_key_granted_to_someone_not_cleared_is_never_encrypted_to_again(
        office: Office) -> None:
    first = seal(office, "clerk", b"a", level="CONFIDENTIAL", compartments=["FINANCE"])
    with office.as_("clerk") as v:
        kid = v._s.trusted.doc(first).key_id  # type: ignore[union-attr]
    # The clerk (who holds the key) writes an entry for the outsider and
    # records the grant with a modified library.
    insider_append(office, "clerk", "grant", {"grants": {"key_id": kid, "entries": [
        {"owner": office.ids["outsider"].recipient, "sha256": "0" * 64}]}})
    second = seal(office, "clerk", b"b", level="CONFIDENTIAL", compartments=["FINANCE"])
    with office.as_("clerk") as v:
        assert v._s.trusted.doc(second).key_id != kid  # type: ignore[union-attr]


@pytest.mark.parametrize("who", ["outsider", "officer", "clerk"])
def test_nobody_withdraws_the_entries_cleared_people_still_need(office: Office,
                                                                who: str) -> None:
    # A retire record by the outsider (no right at all), the officer (an
    # administrator) or the clerk (a cleared holder) that withdraws every
    # entry of a class in use: ignored, the others keep their access.
    doc = seal(office, "clerk", b"invoice", level="CONFIDENTIAL", compartments=["FINANCE"])
    with office.as_("clerk") as v:
        kid = v._s.trusted.doc(doc).key_id  # type: ignore[union-attr]
    owners = [office.ids[n].recipient for n in ("clerk", "leader", "deputy")]
    insider_append(office, who, "retire", {"retire": {"key_id": kid, "owners": owners}})
    for reader in ("clerk", "leader"):
        out = io.BytesIO()
        office.as_(reader).open(doc, out)
        assert out.getvalue() == b"invoice"
    report = office.as_("officer").doctor()
    assert any("may not withdraw" in p or "still needed" in p for p in report.problems), \
        report.problems


CLERK_BOARD = "clearance: {level: CONFIDENTIAL, compartments: [STAFF, FINANCE, BOARD]}"
REGISTRAR = "clearance: {level: INTERNAL, compartments: [STAFF]}"


def _old_generation_left_to_its_holders(office: Office) -> str:
    """Routine work: the leader seals a CONFIDENTIAL//BOARD paper (generation
    1); the officer revokes the clerk's BOARD compartment and clears the
    registrar for it; the leader's next BOARD paper makes generation 2 (the
    registrar holds only that one), and raising the first paper to SECRET
    leaves generation 1 needed by no document, its entries the leader's and
    the deputy's. Generation 1's key id."""
    old = seal(office, "leader", b"old board paper", level="CONFIDENTIAL",
               compartments=["BOARD"])
    with office.as_("leader") as v:
        kid = v._s.trusted.doc(old).key_id  # type: ignore[union-attr]
    office.apply({CLERK_BOARD: CLERK_BOARD.replace(", BOARD", ""),
                  REGISTRAR: "clearance: {level: CONFIDENTIAL, compartments: [STAFF, BOARD]}"})
    seal(office, "leader", b"new board paper", level="CONFIDENTIAL", compartments=["BOARD"])
    office.as_("leader").reclassify(old, level="SECRET", compartments=["BOARD"],
                                    justification="raise")
    assert office.as_("officer").doctor().ok
    return kid


def _entries(office: Office, kid: str) -> set[str]:
    from vault.store.base import owner_key

    names = {owner_key(office.ids[n].recipient): n for n in office.ids}
    return {names[o] for o, k in office.raw.keyring_files() if k == kid}


@pytest.mark.parametrize("who", ["outsider", "registrar"])
def test_a_rotate_withdraws_only_the_entries_the_replay_lets_its_runner_withdraw(
        office: Office, who: str) -> None:
    # The outsider (PUBLIC, no key) or the registrar (cleared for the class,
    # holding only its newest generation) finishes pending work with 'vault
    # rotate'. Their client deleted the leader's and the deputy's entries for
    # the unused generation under a retire record every replay ignores: doctor
    # exited 4 on every machine for good. Now it is left, pending, to those
    # the replay lets withdraw it.
    kid = _old_generation_left_to_its_holders(office)
    before = len(office.raw.audit_lines())
    result = office.cli(who, "rotate", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["retired"] == []
    assert report["pending"] == [
        "retire 2 entries of CONFIDENTIAL//BOARD generation 1: they await an administrator "
        "(officer) or a holder of the key cleared for it (deputy, leader) running 'vault "
        "rotate'"]
    assert not any(json.loads(line).get("state") for line in office.raw.audit_lines()[before:])
    assert _entries(office, kid) == {"leader", "deputy"}
    for reader in ("leader", "officer"):
        report_ = office.as_(reader).doctor()
        assert report_.ok, report_.problems
    # A holder of the generation, still cleared, withdraws it on the record.
    result = office.cli("leader", "rotate", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["retired"] == ["CONFIDENTIAL//BOARD generation 1: 2 entries"]
    assert _entries(office, kid) == set()
    for reader in ("leader", "officer", who):
        report_ = office.as_(reader).doctor()
        assert report_.ok, report_.problems


def test_a_retire_the_replay_ignores_deletes_no_entry(office: Office) -> None:
    # Whatever made the client write it (a rule the replay applies otherwise),
    # a withdrawal that does not count deletes nothing: the log still grants
    # the entries, and deleted they would be missing on every machine.
    from vault._ops.keys import retire

    kid = _old_generation_left_to_its_holders(office)
    owners = sorted(office.ids[n].recipient for n in ("deputy", "leader"))
    with office.as_("outsider") as v:
        s = v._s  # type: ignore[attr-defined]
        ck = s.trusted.key(kid)
        with s.lock(), pytest.raises(IntegrityError, match="does not count"):
            retire(s, ck, owners, "retire 2 entries")
    assert _entries(office, kid) == {"leader", "deputy"}
    problems = office.as_("leader").doctor().problems
    assert len(problems) == 1 and "may not withdraw" in problems[0], problems


def test_a_withdrawal_an_older_client_left_ignored_is_repaired_by_an_administrators_rotate(
        office: Office) -> None:
    # What an older client left when the outsider ran 'vault rotate': a retire
    # record every replay ignores, and the entries it named deleted. The
    # repair DESIGN.md §6.6 gives: an administrator's rotate withdraws them on
    # the record, and an incident over the ignored record makes it a note.
    from vault.store.base import owner_key

    kid = _old_generation_left_to_its_holders(office)
    owners = sorted(office.ids[n].recipient for n in ("deputy", "leader"))
    insider_append(office, "outsider", "retire", {"retire": {"key_id": kid, "owners": owners}})
    at = len(office.raw.audit_lines()) - 1
    with office.as_("outsider") as v:
        for owner in owners:
            v._s.backend.delete_keyring_entry(owner_key(owner), kid)  # type: ignore[attr-defined]
    problems = office.as_("leader").doctor().problems
    assert any(p.startswith(f"audit record {at} (retire)") for p in problems), problems
    assert any("deputy's keyring entry" in p and "missing" in p for p in problems), problems

    result = office.cli("officer", "rotate", "--json")
    assert result.exit_code == 0, result.output
    assert "CONFIDENTIAL//BOARD generation 1: 2 entries" in json.loads(result.output)["retired"]
    for reader in ("leader", "officer"):
        problems = office.as_(reader).doctor().problems
        assert len(problems) == 1 and problems[0].startswith(f"audit record {at} (retire)"), \
            problems
    n = office.as_("officer").declare_incident(at, at, reason="an older client's retire record")
    for reader in ("leader", "officer"):
        report = office.as_(reader).doctor()
        assert report.ok, report.problems
        assert any(f"audit record {at}" in x and f"incident record {n}" in x
                   for x in report.notes), report.notes


def test_an_administrator_not_cleared_never_makes_a_class_key(office: Office) -> None:
    seal(office, "leader", b"s", level="SECRET", compartments=["BOARD"], justification="j")
    report = office.as_("officer").rotate()  # the officer is cleared CONFIDENTIAL only
    assert any("SECRET" in p and "no administrator is" in p for p in report.pending)
    assert not any("SECRET" in r for r in report.rotated)


# -- 3. labels: only entitled signers, only through the log ------------------------------


def _rewrite_label(office: Office, doc: str, who: str, **changes: Any) -> None:
    """``who`` holds the file key and rewrites the header's label, signed by
    themselves, header MAC recomputed: no record in the log."""
    from vault._sealed.label import LabelStanza, SignedLabel

    data = office.raw.doc_bytes(doc)
    header = read_header(io.BytesIO(data))
    file_key = unwrap_file_key(header, [office.recovery])
    old = next(s for s in header.stanzas if s.type == "vault/v2/label")
    label = SignedLabel.verify(old, office.as_(who).id, doc)
    statement = json.loads(json.dumps(label.statement))
    statement["label"].update(changes)
    statement["signer"]["name"] = who
    statement["label"]["classified_by"] = who
    statement["signer"]["signing_key"] = office.ids[who].signing_public
    new = LabelStanza(statement, office.ids[who]).wrap(file_key)[0]
    stanzas = [new if s.type == "vault/v2/label" else s for s in header.stanzas]
    raw_header = header.encode()
    office.raw.set_doc_bytes(doc, Header.seal(stanzas, file_key).encode()
                             + data[len(raw_header):])


def test_a_reader_who_lowers_a_label_in_the_file_changes_nothing(office: Office) -> None:
    doc = seal(office, "clerk", b"payroll", level="CONFIDENTIAL", compartments=["FINANCE"])
    _rewrite_label(office, doc, "clerk", level="PUBLIC", compartments=[])
    with pytest.raises(IntegrityError, match="not the version the audit log records"):
        office.as_("outsider").open(doc, io.BytesIO())
    assert not office.as_("officer").doctor().ok


def test_a_reader_who_removes_an_embargo_changes_nothing(office: Office) -> None:
    doc = seal(office, "leader", b"decision", level="CONFIDENTIAL", compartments=["BOARD"],
               embargo_until="2099-01-01")
    _rewrite_label(office, doc, "clerk")  # drops nothing but re-signs as the clerk
    with pytest.raises(IntegrityError):
        office.as_("clerk").open(doc, io.BytesIO())


def test_a_relabel_recorded_by_someone_not_entitled_does_not_count(office: Office) -> None:
    doc = seal(office, "clerk", b"payroll", level="CONFIDENTIAL", compartments=["FINANCE"])
    with office.as_("clerk") as v:
        row = v._s.trusted.doc(doc)
        assert row is not None
    statement = dict(row.statement)
    statement["label"] = {**statement["label"], "level": "PUBLIC", "compartments": []}
    statement["action"] = "reclassify"
    insider_append(office, "clerk", "reclassify", {"document": {
        "doc": doc, "version": row.version, "header": row.header, "key_id": row.key_id,
        "statement": statement, "inputs": {"justification": "x"}}}, outcome="done")
    with office.as_("leader") as v:
        assert v.info(doc).label.level == "CONFIDENTIAL"
        assert any("not entitled" in p or "another class" in p for p in v.doctor().problems)


def test_declassifying_secret_needs_the_second_leader(office: Office) -> None:
    doc = seal(office, "leader", b"s", level="SECRET", compartments=["BOARD"],
               justification="j")
    with pytest.raises(DeniedError, match="approv"):
        office.as_("leader").declassify([doc], justification="release")


# -- 4. a label commits to the content ------------------------------------------------


def test_a_reader_who_swaps_the_content_under_the_signed_label_is_caught(
        office: Office) -> None:
    from vault.age._stream import encrypt_payload

    doc = seal(office, "clerk", b"revenue up 4%", level="CONFIDENTIAL",
               compartments=["FINANCE"])
    data = office.raw.doc_bytes(doc)
    header = read_header(io.BytesIO(data))
    file_key = unwrap_file_key(header, [office.recovery])
    out = io.BytesIO()
    encrypt_payload(io.BytesIO(b"revenue DOWN 40%"), out, file_key)
    office.raw.set_doc_bytes(doc, header.encode() + out.getvalue())
    with pytest.raises(IntegrityError, match="content"):
        office.as_("leader").open(doc, io.BytesIO())
    assert any("content" in p for p in office.as_("leader").doctor(deep=True).problems)
    # Without any key too: the commitment is over ciphertext.
    with vault.Vault(office.location) as v:
        assert any("content" in p for p in v.doctor(deep=True).problems)


def test_an_outsider_who_replaces_a_document_is_caught(office: Office) -> None:
    doc = seal(office, "leader", b"minutes", level="SECRET", compartments=["BOARD"],
               justification="j")
    other = seal(office, "clerk", b"other", level="INTERNAL", compartments=["STAFF"])
    office.raw.set_doc_bytes(doc, office.raw.doc_bytes(other))
    with pytest.raises(IntegrityError):
        office.as_("leader").open(doc, io.BytesIO())


# -- 5. hostile values ------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [
    ("declassify_on", "P7900Y9999W99999D"),
    ("embargo_until", "9999-12-31T23:59:00-23:59"),
    ("declassify_on", "0001-01-01"),
])
def test_hostile_dates_are_refused_at_input_and_on_the_record(office: Office, field: str,
                                                              value: str) -> None:
    before = len(records(office))
    with pytest.raises(UsageError):
        office.as_("clerk").seal(io.BytesIO(b"x"), level="INTERNAL", compartments=["STAFF"],
                                 **{field: value})
    rec = records(office)[-1]
    assert len(records(office)) == before + 1 and rec["outcome"] == "error"
    office.as_("clerk").ls()  # the vault keeps working


def test_a_hostile_label_in_the_log_disables_nothing_else(office: Office) -> None:
    good = seal(office, "clerk", b"fine", level="INTERNAL", compartments=["STAFF"])
    with office.as_("clerk") as v:
        row = v._s.trusted.doc(good)
    assert row is not None
    statement = json.loads(json.dumps(row.statement))
    statement["doc"] = "aaaaaaaaaaaaaaaa"
    statement["label"]["declassify_on"] = "P7900Y9999W99999D"
    insider_append(office, "clerk", "seal", {"document": {
        "doc": "aaaaaaaaaaaaaaaa", "version": "00000000", "header": "0" * 64,
        "key_id": row.key_id, "statement": statement, "inputs": {}}}, outcome="done")
    for who in ("clerk", "leader"):
        with office.as_(who) as v:
            assert good in [d.id for d in v.ls()]
            v.declassify(due=True, justification="due")
    assert not office.as_("officer").doctor().ok  # reported


def test_an_unexpected_exception_still_ends_in_one_record_without_paths(
        office: Office, tmp_path: Path) -> None:
    secret_path = tmp_path / "Secret Plans For Q3.docx"
    before = len(records(office))
    with pytest.raises(UsageError):
        office.as_("clerk").seal(secret_path, level="INTERNAL", compartments=["STAFF"])
    after = records(office)
    assert len(after) == before + 1
    assert "Secret Plans" not in json.dumps(after[-1])


# -- 6. a link planted among the files to seal ----------------------------------------------



def _planted_links(office: Office) -> tuple[Path, Path, Path]:
    """A shared inbox: a file of the clerk's own that only they can read, a
    link to it that another user planted, and a link the clerk made."""
    inbox = office.root / "inbox"
    inbox.mkdir()
    private = office.root / "clerk-only.txt"
    private.write_bytes(b"the clerk's own notes")
    private.chmod(0o600)
    planted = inbox / "report.txt"
    planted.symlink_to(private)
    make_another_users(planted)
    own = inbox / "mine.txt"
    own.symlink_to(private)
    return planted, own, private


def test_a_link_another_user_planted_among_the_files_to_seal_is_refused(
        office: Office) -> None:
    planted, own, private = _planted_links(office)
    others = [office.file(f"memo-{i}.txt", b"memo %d" % i) for i in range(20)]
    clerk = office.as_("clerk")
    for batch in ([planted], [*others, planted]):  # alone, and among many (the workers)
        with pytest.raises(UsageError) as caught:
            clerk.seal_many(batch, level="INTERNAL", compartments=["STAFF"])
        assert "another user" in str(caught.value)
    assert clerk.ls() == []
    # The clerk's own link is theirs to follow.
    doc = clerk.seal(own, level="INTERNAL", compartments=["STAFF"])
    out = io.BytesIO()
    clerk.open(doc.id, out)
    assert out.getvalue() == private.read_bytes()


def test_a_folder_another_user_replaced_with_a_link_is_refused(office: Office) -> None:
    # The inbox's subfolder 'sub' points into the clerk's own folder; the
    # clerk seals 'inbox/*/*', which names their private file through it.
    planted, _, private = _planted_links(office)
    sub = planted.parent / "sub"
    sub.symlink_to(private.parent)
    make_another_users(sub)
    clerk = office.as_("clerk")
    with pytest.raises(UsageError) as caught:
        clerk.seal(sub / private.name, level="INTERNAL", compartments=["STAFF"])
    assert "another user" in str(caught.value)
    assert clerk.ls() == []
    # A folder link of the clerk's own is followed.
    mine = planted.parent / "my-folder"
    mine.symlink_to(private.parent)
    doc = clerk.seal(mine / private.name, level="INTERNAL", compartments=["STAFF"])
    assert doc.plaintext_size == len(private.read_bytes())


def _write_once(fifo: Path) -> None:
    with contextlib.suppress(OSError):  # no reader: nothing waits on it
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_another_user_planted_among_the_files_to_seal_is_refused(
        office: Office) -> None:
    # Opening a FIFO waits for a writer: planted in a shared inbox, it would
    # stall 'vault seal inbox/*' until someone interrupted it.
    inbox = office.root / "inbox"
    inbox.mkdir()
    planted = inbox / "report.txt"
    os.mkfifo(planted)
    make_another_users(planted)
    others = [office.file(f"memo-{i}.txt", b"memo %d" % i) for i in range(20)]
    clerk = office.as_("clerk")
    for batch in ([planted], [*others, planted]):
        # Should the seal wait after all, a writer comes after 20 s, so that
        # the test fails rather than hangs.
        rescue = threading.Timer(20, _write_once, args=(planted,))
        rescue.start()
        with pytest.raises(UsageError) as caught:
            clerk.seal_many(batch, level="INTERNAL", compartments=["STAFF"])
        rescue.cancel()
        assert "another user" in str(caught.value)
    assert clerk.ls() == []
    # A FIFO of the clerk's own is read once its writer comes, as age reads it.
    own = inbox / "mine"
    os.mkfifo(own)
    writer = threading.Thread(target=own.write_bytes, args=(b"piped in",))
    writer.start()
    doc = clerk.seal(own, level="INTERNAL", compartments=["STAFF"])
    writer.join()
    out = io.BytesIO()
    clerk.open(doc.id, out)
    assert out.getvalue() == b"piped in"


# -- 7. templates carry no live keys ------------------------------------------------------


def test_shipped_policies_hold_placeholders_that_check_refuses() -> None:
    from vault.errors import PolicyLoadError
    from vault.policy import load_policy

    root = Path(__file__).resolve().parent.parent / "policies"
    for path in sorted(root.glob("*.yaml")):
        if path.name.endswith(".cases.yaml"):
            continue
        text = path.read_text()
        assert "age1" not in text.split("rules:")[0].split("users:")[1]
        with pytest.raises(PolicyLoadError, match="placeholder"):
            load_policy(path)


@pytest.mark.parametrize("files", [1, 21])  # sealed here; by forked workers
@pytest.mark.parametrize("how", ["written", "through a shared mapping"])
def test_a_file_rewritten_between_intake_and_sealing_seals_nothing(
        office: Office, monkeypatch: pytest.MonkeyPatch, files: int, how: str) -> None:
    # Another local user's file in a shared inbox is read by intake as
    # harmless, then rewritten in place (same inode, same size) with card
    # numbers before the sealer reads it again: the cards were sealed under
    # the label decided for the harmless text, below the intake floor, and
    # a junior reader opened them. Written with write(2), the file's times
    # change; through a shared mapping whose page is already dirty, nothing
    # about the file changes but its bytes: a file others may write is
    # inspected from one read and the sealer's bytes are held to its hash.
    # Either way the batch seals nothing, and is on the record as failed.
    import mmap

    import vault._ops.intake as intake

    harmless = b"Minutes of the canteen meeting: more coffee, please.          \n" * 4
    cards = (b"Card 4111 1111 1111 1111 exp 12/29 holder J Smith cvv 123        \n" * 4)
    cards = cards[:len(harmless)].ljust(len(harmless), b" ")
    src = office.file("aaa-minutes.txt", harmless)
    memos = [office.file(f"memo-{i:02}.txt", b"memo %d\n" % i) for i in range(files - 1)]
    mapped = None
    if how != "written":
        src.chmod(0o666)  # the inbox's other users may write it
        fd = os.open(src, os.O_RDWR)
        mapped = mmap.mmap(fd, len(harmless))
        os.close(fd)
        mapped[0:1] = mapped[0:1]  # its page dirty now: later writes change no time
    real = intake.inspect_all

    def then_rewritten(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        if mapped is not None:
            mapped[:] = cards
        else:
            with open(src, "r+b") as f:  # as the file's owner would, watching it being read
                f.write(cards)
        return found

    monkeypatch.setattr(intake, "inspect_all", then_rewritten)
    try:
        with pytest.raises(IntegrityError, match="changed while it was being sealed"):
            office.as_("clerk").seal_many([src, *memos])
    finally:
        if mapped is not None:
            mapped.close()
    monkeypatch.undo()
    last = json.loads(office.raw.audit_lines()[-1])
    assert (last["action"], last["outcome"]) == ("seal", "failed")
    assert office.as_("leader").ls() == []
    assert office.as_("officer").doctor().ok


def test_a_record_dated_back_into_a_window_that_closed_does_not_count(
        tmp_path: Path, backend: Kind) -> None:
    # Clerks released staff documents until an hour ago. The clerk's
    # modified client dates its declassification back into that window,
    # after the leader and the deputy have written since: the replay judged
    # it at the time it claimed, and the outsider read the document.
    import datetime as dt
    from unittest import mock

    import vault._ops.change as change
    import vault.audit._log as log_module
    import vault.policy._decide as decide

    closed = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    rule = f"""
  - id: clerks-release-window
    effect: allow
    actions: [declassify]
    who: {{groups: [clerks]}}
    label: {{max: CONFIDENTIAL}}
    when: {{until: {closed.strftime("%Y-%m-%dT%H:%M:%SZ")}}}
    require: [justification]

  - id: leaders-shred"""
    office = make_office(tmp_path, backend, edit={"\n  - id: leaders-shred": rule})
    doc = seal(office, "leader", b"staff list", level="CONFIDENTIAL", compartments=["STAFF"],
               justification="list")
    seal(office, "deputy", b"rota", level="CONFIDENTIAL", compartments=["STAFF"])
    with pytest.raises(DeniedError):
        office.as_("clerk").declassify([doc], justification="release")
    back = closed - dt.timedelta(days=1)

    class Back(dt.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return back if tz else back.replace(tzinfo=None)

    with mock.patch.object(log_module, "now", lambda: back.strftime("%Y-%m-%dT%H:%M:%S.%fZ")), \
            mock.patch.object(decide, "datetime", Back), \
            mock.patch.object(change, "datetime", Back), \
            pytest.raises(IntegrityError, match="does not count"):
        office.as_("clerk").declassify([doc], justification="release")
    for state in (None, tmp_path / "fresh-state"):
        with pytest.MonkeyPatch.context() as m:
            if state is not None:
                m.setenv("VAULT_STATE_DIR", str(state))
            with pytest.raises(DeniedError):
                office.as_("outsider").open(doc, io.BytesIO())
            with office.as_("officer") as v:
                assert v.info(doc).label.level == "CONFIDENTIAL"
                assert any("not entitled" in p for p in v.doctor().problems)


@pytest.mark.parametrize("action", ["seal", "reclassify"])
@pytest.mark.parametrize("when", ["before its record", "as its record is written"])
def test_a_change_whose_lock_was_broken_during_a_revocation_leaves_nothing_to_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str, action: str) -> None:
    # The clerk, losing FINANCE, renames a fresh file over the vault's
    # 'lock' while the leader's seal (or reclassification of an HR document
    # to FINANCE) holds it: the officer's revocation and rotation run in the
    # middle. The leader's completion came after the rotation and did not
    # count -- but the new version stayed, wrapped to the generation the
    # clerk kept (she read the HR document she was never cleared for), and
    # doctor called a seal's planted. Now the key is checked against the
    # log before the record, and what the log did not count is removed.
    import vault._ops.change as change_module
    import vault._ops.discipline as discipline_module
    import vault._ops.seal as seal_module

    officer = "clearance: {level: CONFIDENTIAL, compartments: [STAFF, HR]}"
    office = make_office(tmp_path, edit={officer: officer.replace("HR]", "HR, FINANCE]")})
    seal(office, "leader", b"old finance", level="CONFIDENTIAL", compartments=["FINANCE"])
    hr = seal(office, "leader", b"HR: dismissal", level="CONFIDENTIAL", compartments=["HR"])
    module, name = (discipline_module, "complete") if when != "before its record" else (
        (seal_module, "_unchanged") if action == "seal" else (change_module, "write_rewrapped"))
    real = getattr(module, name)

    def revoked_meanwhile(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs) if name == "write_rewrapped" else None
        fresh = office.path / "lock.new"
        fresh.write_bytes(b"")
        os.rename(fresh, office.path / "lock")
        report = office.apply({
            officer: officer.replace("HR]", "HR, FINANCE]"),
            "clearance: {level: CONFIDENTIAL, compartments: [STAFF, FINANCE, BOARD]}":
                "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}"})
        assert report.rotated
        return result if name == "write_rewrapped" else real(*args, **kwargs)

    monkeypatch.setattr(module, name, revoked_meanwhile)
    error = (StorageError, "rotated or revoked meanwhile") if when == "before its record" \
        else (IntegrityError, "does not count")
    with pytest.raises(error[0], match=error[1]):
        if action == "seal":
            seal(office, "leader", b"new finance", level="CONFIDENTIAL",
                 compartments=["FINANCE"])
        else:
            with office.as_("leader") as v:
                v.reclassify(hr, compartments=["FINANCE"], justification="moved")
    monkeypatch.undo()
    # One version of each of the two documents (the rotation rewrapped them): nothing new.
    assert len(list((office.path / "docs").glob("*.age"))) == 2
    with office.as_("officer") as v:
        assert len(v.ls()) == 2
        assert v.info(hr).label.compartments == frozenset({"HR"})
        problems = v.doctor().problems
    assert not any("planted" in p for p in problems), problems
    if when == "before its record":
        assert not problems


@pytest.mark.parametrize("post_quantum", [False, True])
def test_one_key_written_another_way_is_no_second_person(post_quantum: bool) -> None:
    # X25519 ignores a public key's top bit: the officer gave "ghost",
    # cleared SECRET//BOARD, their own key with that bit set. "One key per
    # person" compared recipients as text, so the policy loaded, and what a
    # cleared user's client wrapped to ghost opened with the officer's key.
    from office import PEOPLE, policy_text

    from vault.age import _bech32
    from vault.errors import PolicyLoadError
    from vault.identity import new_identity
    from vault.policy import load_policy_text

    keys = {n: new_identity(n, post_quantum=post_quantum) for n in PEOPLE}
    officer = keys["officer"].recipient
    hrp = "age1pq" if post_quantum else "age"
    raw = _bech32.decode(officer)[1]
    alias = _bech32.encode(hrp, raw[:-1] + bytes([raw[-1] | 0x80]))
    assert alias != officer
    text = policy_text(keys, edit=None if post_quantum else {
        "version: 1\n": "version: 1\npost_quantum: off\n"})
    load_policy_text(text, "p.yaml")
    with pytest.raises(PolicyLoadError, match="not an X25519 key in its one encoding"):
        load_policy_text(text.replace(keys["registrar"].recipient, alias), "p.yaml")


# A label reason a modified client signs: a NEL and a U+2028 forge a line,
# a CSI and an RLO drive the terminal (vault/_text.py).
FORGED_REASON = "ok\x9b2J\x85FORGED LINE\u202etxt.exe\u2028x"


def test_a_signed_label_reason_that_is_not_printable_is_its_signer_s_finding(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clerk's modified client skips the check every client makes before
    # signing a label's reason; the replay took the record without a word,
    # and the reason reached every user's listing.
    import vault._ops.seal as seal_module

    monkeypatch.setattr(seal_module, "check_free_text", lambda *a, **k: None)
    doc = seal(office, "clerk", b"memo", level="PUBLIC", reason=FORGED_REASON)
    monkeypatch.undo()
    with office.as_("leader") as v:
        # It counts all the same: one insider's record never stops the office.
        assert [d.label.reason for d in v.ls() if d.id == doc] == [FORGED_REASON]
        report = v.doctor()
    (problem,) = [p for p in report.problems if "(text)" in p]
    assert "clerk signed a label reason that holds the control character U+009B" in problem
    assert problem.isprintable()
    # An honest reason is nobody's finding.
    seal(office, "clerk", b"memo 2", level="PUBLIC", reason="routine filing")
    with office.as_("leader") as v:
        assert [p for p in v.doctor().problems if "(text)" in p] == [problem]


def test_a_label_text_finding_names_its_signer_once_never_whoever_rewraps_it(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clerk's modified client signs labels whose reason breaks the rule.
    # The honest officer's rotation, and a policy apply renewing the clerk's
    # key, rewrapped those documents, carrying each label statement unchanged
    # into a record of the officer's: the replay reported each as "officer
    # signed a label reason that holds the bidi control U+202E".
    import vault._ops.seal as seal_module

    monkeypatch.setattr(seal_module, "check_free_text", lambda *a, **k: None)
    public = seal(office, "clerk", b"memo", level="PUBLIC", reason=FORGED_REASON)
    staff = seal(office, "clerk", b"staff memo", level="INTERNAL", compartments=["STAFF"],
                 reason=FORGED_REASON)
    monkeypatch.undo()
    with office.as_("officer") as v:
        assert public in v.rotate(["PUBLIC"]).rewrapped
    office.ids["clerk"] = vault.new_identity("clerk")  # renewed: her old key revoked
    assert staff in office.apply({}).rewrapped
    with office.as_("leader") as v:
        found = [p for p in v.doctor().problems if "(text)" in p]
    # One finding a planted label, at the record that brought it in, its signer's.
    assert len(found) == 2, found
    assert all("clerk signed a label reason that holds the control character U+009B" in p
               for p in found), found
    assert not any("officer" in p for p in found), found



def test_a_label_text_carried_into_a_declassify_or_reclassify_stays_its_signer_s_finding(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clerk's modified client seals documents whose label derived-from
    # holds an RLO. The honest leader's declassify keeps a label's
    # derived-from, so the planted text went into a statement the leader
    # signed, and the replay reported "leader signed a label derived-from
    # that holds the bidi control U+202E", once a document declassified.
    import vault._ops.seal as seal_module
    from vault.policy.model import Policy

    forged = "memo-12\u202eexe.txt"
    decide = seal_module.intake.decide_label

    def planted(*a: Any, **k: Any) -> Any:
        label, floor, note = decide(*a, **k)
        return label.replace(derived_from=forged), floor, note

    monkeypatch.setattr(seal_module.intake, "decide_label", planted)
    released = seal(office, "clerk", b"staff memo", level="INTERNAL", compartments=["STAFF"])
    raised = seal(office, "clerk", b"staff note", level="INTERNAL", compartments=["STAFF"])
    monkeypatch.undo()
    with office.as_("leader") as v:
        v.declassify([released], justification="released to the public")
    # A client that keeps a label's derived-from when it reclassifies.
    make_label = Policy.make_label

    def keeping(text: str) -> Any:
        return lambda self, **f: make_label(self, **f).replace(derived_from=text)

    monkeypatch.setattr(Policy, "make_label", keeping(forged))
    with office.as_("leader") as v:
        v.reclassify(raised, level="CONFIDENTIAL", justification="now board-adjacent")
    with office.as_("officer") as v:
        found = [p for p in v.doctor().problems if "(text)" in p]
    # One finding a planted label, at the clerk's seal that brought it in.
    assert len(found) == 2, found
    assert all("clerk signed a label derived-from that holds the bidi control U+202E" in p
               for p in found), found
    # Text a signer brings in is theirs: a derived-from the label did not hold.
    monkeypatch.setattr(Policy, "make_label", keeping(forged + "2"))
    with office.as_("leader") as v:
        v.reclassify(raised, level="INTERNAL", justification="back to staff")
    monkeypatch.undo()
    with office.as_("officer") as v:
        found = [p for p in v.doctor().problems if "(text)" in p]
    assert len(found) == 3, found
    assert sum("leader signed a label derived-from that holds the bidi control U+202E" in p
               for p in found) == 1, found

def test_a_request_justification_or_approval_reason_breaking_the_rule_is_its_signer_s_finding(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The leader's and the deputy's modified clients skip the check before
    # signing; the replay looked one level too shallow (state.request is
    # {sig, statement}, state.approval {approval: {sig, statement}, request})
    # and said nothing.
    from approval_support import ask, grant, office_for
    from approval_support import seal as seal_board

    import vault._ops.approve as approve_module

    office = office_for(tmp_path / "o", backend)
    doc = seal_board(office, "leader")
    monkeypatch.setattr(approve_module, "check_free_text", lambda *a, **k: None)
    request = ask(office, "leader", "declassify", doc, justification="pub\u202elished\u2028x")
    grant(office, "deputy", request, reason="fine\x9b2J\u202e")
    monkeypatch.undo()
    with office.as_("officer") as v:
        found = [p for p in v.doctor().problems if "(text)" in p]
    # Each once, its signer's: the approval carries the request again, and
    # that is no second finding of the leader's.
    assert len(found) == 2, found
    assert "leader signed a request justification that holds the bidi control U+202E" \
        in found[0], found
    assert "deputy signed an approval reason that holds the control character U+009B" \
        in found[1], found
    assert all(p.isprintable() for p in found)
    # Honest text, in any language, is nobody's finding.
    request = ask(office, "leader", "declassify", doc, justification="10\u00a0000\u202f\u20ac")
    grant(office, "deputy", request, reason="\u0915\u094d\u200d\u0937")
    with office.as_("officer") as v:
        assert [p for p in v.doctor().problems if "(text)" in p] == found


def test_a_justification_of_joiners_alone_is_no_justification_given(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lowering needs a justification; one of joiners alone, shown blank in
    # the audit log and on the approve screen, was taken as given (strip()
    # leaves them). A modified client skips the input check: the decision,
    # the client's and the replay's, is the same one.
    import vault._ops.change as change_module

    doc = seal(office, "leader", b"staff file", level="CONFIDENTIAL", compartments=["STAFF"],
               justification="staff file")
    import vault.policy._labels as labels_module

    monkeypatch.setattr(change_module, "check_free_text", lambda *a, **k: None)
    monkeypatch.setattr(labels_module, "_text", lambda value, what: value)
    for blank in ("\u200d\u200c\u200d", "\u3000\u200d\u00a0"):
        with office.as_("leader") as v, pytest.raises(DeniedError, match="justification"):
            v.reclassify(doc, level="INTERNAL", justification=blank)
    with office.as_("leader") as v:
        assert v.info(doc).label.level == "CONFIDENTIAL"
