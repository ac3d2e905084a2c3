"""Reclassify, declassify and shred: new signed labels over the same
payload, two-person rules, crypto-shredding."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from backends import Kind
from vault_helpers import Office, age_decrypt, make_office

from vault._ops.change import check_unchanged
from vault._sealed.reading import read_sealed
from vault.age import read_header
from vault.errors import DeniedError, IntegrityError, PartialError, StorageError, UsageError


def _payload(office: Office, doc: str) -> bytes:
    f = io.BytesIO(office.raw.doc_bytes(doc))
    read_header(f)
    return f.read()


def _label_body(office: Office, doc: str) -> dict[str, object]:
    f = io.BytesIO(office.raw.doc_bytes(doc))
    stanza = next(s for s in read_header(f).stanzas if s.type == "vault/v2/label")
    body: dict[str, object] = json.loads(stanza.body)
    return body


def test_reclassify_rewraps_without_touching_the_payload(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = office.as_("clerk").seal(office.file("a.txt", b"alpha"), level="INTERNAL",
                                   compartments=["STAFF"], title="A").id
    before = _payload(office, doc)
    info = office.as_("clerk").reclassify(doc, level="CONFIDENTIAL",
                                          justification="contains salaries")
    assert info.label.level == "CONFIDENTIAL" and info.label.classified_by == "clerk"
    assert info.title == "A" and info.sealed_by == "clerk"
    assert _payload(office, doc) == before
    with pytest.raises(DeniedError):  # now above the registrar's clearance
        office.as_("registrar").open(doc, io.BytesIO())
    with pytest.raises(DeniedError):  # clerks may not lower a label
        office.as_("clerk").reclassify(doc, level="INTERNAL", justification="oops")


def test_two_person_rule_refuses_one_person(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = office.as_("leader").seal(office.file("s.txt", b"secret"), level="SECRET",
                                    compartments=["BOARD"]).id
    with pytest.raises(DeniedError, match="approv"):
        office.as_("leader").reclassify(doc, level="CONFIDENTIAL", justification="release")
    assert office.as_("leader").info(doc).label.level == "SECRET"


def test_the_new_label_is_signed_by_the_reclassifier_over_the_same_content(
        tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = office.as_("clerk").seal(office.file("a.txt", b"alpha"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    before = _label_body(office, doc)["statement"]
    office.as_("leader").reclassify(doc, level="CONFIDENTIAL", justification="up")
    after = _label_body(office, doc)["statement"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["signer"]["name"] == "leader" and after["action"] == "reclassify"
    assert after["content"] == before["content"]
    assert after["sealed_by"] == before["sealed_by"] == "clerk"


def test_declassify_due_documents(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    leader = office.as_("leader")
    due = leader.seal(office.file("old.txt", b"old news"), level="CONFIDENTIAL",
                      compartments=["STAFF"], declassify_on="2001-01-01").id
    later = leader.seal(office.file("new.txt", b"fresh"), level="CONFIDENTIAL",
                        compartments=["STAFF"], declassify_on="2999-01-01").id
    done = leader.declassify(due=True, justification="declassification date reached")
    assert [d.id for d in done] == [due] and done[0].label.level == "PUBLIC"
    out = io.BytesIO()
    office.as_("outsider").open(due, out)
    assert out.getvalue() == b"old news"
    with pytest.raises(DeniedError):
        office.as_("outsider").open(later, io.BytesIO())
    with pytest.raises(DeniedError):
        office.as_("clerk").declassify([later], justification="not mine to release")
    with pytest.raises(UsageError):
        leader.declassify(justification="nothing named")


def _due(office: Office, n: int) -> list[str]:
    """``n`` documents due for declassification, in the order 'declassify
    --due' walks them."""
    with office.as_("leader") as v:
        for i in range(n):
            v.seal(io.BytesIO(b"old minutes %d" % i), filename=f"m{i}.txt", level="INTERNAL",
                   compartments=["STAFF"], declassify_on="2001-01-01")
        v._s.trusted.catch_up()
        return [row.doc_id for row in v._s.trusted.docs(due_by=datetime.now(UTC))]


def _levels(office: Office, docs: list[str]) -> list[str]:
    with office.as_("officer") as v:
        v._s.trusted.catch_up()
        return [v._s.trusted.doc(d).statement["label"]["level"] for d in docs]  # type: ignore[union-attr]


def _spoil(office: Office, doc: str) -> None:
    """One byte of the document's stored version flipped, as anyone who can
    write the vault can."""
    version = office.raw.current(doc)
    data = bytearray(office.raw.doc_version_bytes(doc, version))
    data[40] ^= 1
    office.raw.set_doc_version_bytes(doc, version, bytes(data))


def test_one_spoiled_due_document_stops_no_other_release(tmp_path: Path,
                                                         backend: Kind) -> None:
    # Anyone who can write the vault flips one byte of one due document:
    # 'vault declassify --due' stopped there with exit 4, every document
    # after it stayed unreleased run after run, and stdout was empty though
    # those before it were declassified. Now each failure is its own: the
    # others are released and listed, the spoiled one is named, and the
    # exit code is the failure's (4, an integrity failure).
    office = make_office(tmp_path, backend)
    order = _due(office, 4)
    spoiled = order[1]
    _spoil(office, spoiled)
    r = office.cli("leader", "declassify", "--due", "--justification", "retention over")
    released = [d for d in order if d != spoiled]
    assert r.exit_code == 4, r.stderr
    assert r.stdout.split() == released, (r.stdout, r.stderr)
    assert f"vault: {spoiled} not declassified: " in r.stderr
    assert "vault: 1 of 4 due documents not declassified" in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert _levels(office, order) == ["INTERNAL" if d == spoiled else "PUBLIC" for d in order]
    tried = [json.loads(line) for line in office.raw.audit_lines()]
    assert any(rec["action"] == "declassify" and rec["doc"] == spoiled
               and rec["outcome"] == "error" for rec in tried)  # the attempt, recorded
    # The next run releases nothing twice, and names the spoiled one again.
    with pytest.raises(PartialError, match="1 of 1 due document not") as e:
        office.as_("leader").declassify(due=True, justification="retention over")
    assert e.value.done == [] and e.value.exit_code == 4
    assert [d for d, _ in e.value.failed] == [spoiled]
    assert isinstance(e.value.failed[0][1], IntegrityError)
    r = office.cli("leader", "declassify", "--due", "--justification", "retention over",
                   "--json")
    assert r.exit_code == 4 and json.loads(r.stdout) == [], r.stderr


def test_one_spoiled_document_of_several_named_stops_no_other(tmp_path: Path,
                                                              backend: Kind) -> None:
    # 'vault declassify A B C' stopped at the first that failed: B spoiled,
    # C was never tried. Each named document is now tried, each failure
    # named, and the exit code is the failures' (4 spoiled; 1 when they
    # differ); one document named still fails with its own error.
    office = make_office(tmp_path, backend)
    order = _due(office, 3)
    spoiled = order[1]
    _spoil(office, spoiled)
    r = office.cli("leader", "declassify", *order, "--justification", "retention over")
    assert r.exit_code == 4, r.stderr
    assert r.stdout.split() == [order[0], order[2]], (r.stdout, r.stderr)
    assert f"vault: {spoiled} not declassified: " in r.stderr
    assert "vault: 1 of 3 documents not declassified" in r.stderr
    assert _levels(office, order) == ["PUBLIC", "INTERNAL", "PUBLIC"]
    r = office.cli("leader", "declassify", spoiled, "--justification", "retention over")
    assert r.exit_code == 4 and r.stdout == "", r.stderr
    assert "not declassified" not in r.stderr
    # A denial among several named is said too, and the exit code mixed.
    more = _due(office, 2)
    fresh = [d for d in more if d not in order]
    r = office.cli("clerk", "declassify", spoiled, *fresh, "--justification", "x")
    assert r.exit_code != 0 and r.stdout == "", (r.stdout, r.stderr)
    assert f"vault: {fresh[0]} not declassified: " in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


def test_a_due_document_shredded_during_the_run_stops_no_other_release(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # The deputy shreds a due document while the leader's 'declassify --due'
    # runs (between the listing of the due documents and its turn): the run
    # stopped there with a usage error, and the documents after it stayed.
    import vault._ops.change as change

    office = make_office(tmp_path, backend)
    order = _due(office, 3)
    gone = order[1]
    real = change._declassify_one

    def meanwhile(s: object, doc_id: str, *rest: object) -> object:
        if doc_id == gone:
            office.as_("deputy").shred(gone, justification="retention over")
        return real(s, doc_id, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(change, "_declassify_one", meanwhile)
    r = office.cli("leader", "declassify", "--due", "--justification", "retention over")
    assert r.exit_code == 2, r.stderr  # a usage error: the document is gone
    assert r.stdout.split() == [order[0], order[2]]
    assert f"vault: {gone} not declassified: " in r.stderr
    assert "1 of 3 due documents not declassified" in r.stderr
    assert _levels(office, [order[0], order[2]]) == ["PUBLIC", "PUBLIC"]


def test_shred_destroys_every_wrapped_key(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    doc = office.as_("clerk").seal(office.file("x.txt", b"to destroy"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    with pytest.raises(DeniedError):
        office.as_("clerk").shred(doc, justification="clerks may not")
    assert office.raw.has_doc(doc)
    fd = office.path.joinpath("docs", f"{doc}.{office.raw.current(doc)}.age").open("rb") \
        if backend.name == "folder" else None  # a reader that had the file open keeps noise
    office.as_("leader").shred(doc, justification="retention period over")
    assert not office.raw.has_doc(doc)
    assert doc not in {d.id for d in office.as_("leader").ls()}
    if fd is not None:
        leftover = fd.read()
        fd.close()
        assert not leftover.startswith(b"age-encryption.org/v1")
        copy = tmp_path / "copy.age"
        copy.write_bytes(leftover)
        assert age_decrypt(office.files["recovery"], copy).returncode != 0
    with pytest.raises(UsageError, match="was shredded"):
        office.as_("leader").open(doc, io.BytesIO())
    assert office.as_("officer").doctor().ok


def test_a_document_changed_by_another_writer_meanwhile_is_a_clear_error(
        tmp_path: Path, backend: Kind) -> None:
    # What reclassify and shred check under the lock, after their decision:
    # another process may have shredded or relabelled the document since
    # its header was read. Each is a vault error, never an OSError.
    office = make_office(tmp_path, backend)
    leader = office.as_("leader")
    doc = leader.seal(office.file("r.txt", b"race"), level="INTERNAL",
                      compartments=["STAFF"]).id
    s = leader._s
    sealed, f = read_sealed(s.backend, s.trusted, doc)
    f.close()
    check_unchanged(s, sealed)  # nobody else wrote: passes
    office.as_("clerk").reclassify(doc, level="CONFIDENTIAL", justification="salaries")
    s.trusted.catch_up()
    with pytest.raises(StorageError, match=f"document {doc} changed while"):
        check_unchanged(s, sealed)
    sealed, f = read_sealed(s.backend, s.trusted, doc)
    f.close()
    office.as_("deputy").shred(doc, justification="retention period over")
    s.trusted.catch_up()
    with pytest.raises(UsageError, match=f"document {doc} was shredded while"):
        check_unchanged(s, sealed)
