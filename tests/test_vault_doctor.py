"""doctor: documents, index, keyrings and audit log agree; repair rebuilds
the index from the document headers alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from backends import Kind
from vault_helpers import Office, make_office

import vault
from vault.errors import DeniedError, UsageError


def _office_with_docs(tmp_path: Path, backend: Kind) -> tuple[Office, list[str]]:
    office = make_office(tmp_path, backend)
    ids = [office.as_("clerk").seal(office.file(f"{i}.txt", b"d" * i), level="INTERNAL",
                                    compartments=["STAFF"], title=f"title {i}").id
           for i in range(3)]
    ids.append(office.as_("leader").reclassify(ids[0], level="SECRET",
                                               compartments=["BOARD"],
                                               justification="raise").id)
    return office, ids


def test_clean_vault_is_ok(tmp_path: Path, backend: Kind) -> None:
    office, _ = _office_with_docs(tmp_path, backend)
    report = office.as_("officer").doctor()
    assert report.ok and report.documents == 3 and report.problems == []
    # The index (and anything else stored) holds labels, never titles or file names.
    dump = repr(office.raw.index_rows()).encode() + b"".join(d for _, d in office.raw.blobs())
    assert b"title 1" not in dump and b"1.txt" not in dump


def test_interrupted_writes_leave_rows_that_are_refreshed(tmp_path: Path,
                                                          backend: Kind) -> None:
    office, ids = _office_with_docs(tmp_path, backend)
    good = office.raw.index_rows()
    office.raw.index_drop()  # as if every seal had died before its index write
    report = office.as_("officer").doctor()
    assert report.ok, report.problems
    assert any("refreshed 3 out-of-date entries" in n for n in report.notes)
    assert office.raw.index_rows() == good
    # A document rewritten without its row (reclassify interrupted) is seen by ls.
    office.raw.index_update({"stamp": "old", "level": "INTERNAL"}, ids[0])
    listed = {d.id: d.label.level for d in office.as_("leader").ls()}
    assert listed[ids[0]] == "SECRET"


@pytest.mark.parametrize("damage", ["garbage", "edit"])
def test_repair_rebuilds_the_index_from_headers(tmp_path: Path, damage: str,
                                                backend: Kind) -> None:
    office, _ = _office_with_docs(tmp_path, backend)
    good = office.raw.index_rows()
    if damage == "garbage":
        office.raw.index_garbage()
    else:  # someone edits labels in the index, keeping the stamps
        office.raw.index_update({"level": "PUBLIC"})
    report = office.as_("officer").doctor()
    assert not report.ok and any(p.startswith("index") for p in report.problems)
    fixed = office.as_("officer").doctor(repair=True)
    assert any("index rebuilt from 3 document headers" in r for r in fixed.repaired)
    assert office.raw.index_rows() == good
    assert office.as_("officer").doctor().ok


def test_repair_clears_leftovers_and_orphans(tmp_path: Path, backend: Kind) -> None:
    office, _ = _office_with_docs(tmp_path, backend)
    clerk = office.ids["clerk"].recipient
    folder = backend.name == "folder"
    if folder:  # a database write is one transaction: a crash leaves no leftover
        (office.path / "docs" / ".tmp-0123456789abcdef").write_bytes(b"half a document")
    office.raw.set_keyring_entry(clerk, "0" * 32, b"orphan")
    report = office.as_("officer").doctor()
    assert report.ok and any("belongs to no class key" in n for n in report.notes)
    fixed = office.as_("officer").doctor(repair=True)
    if folder:
        assert "removed leftover docs/.tmp-0123456789abcdef" in fixed.repaired
        assert not (office.path / "docs" / ".tmp-0123456789abcdef").exists()
    assert "0" * 32 not in office.raw.keyring_entries(clerk)


def test_doctor_reports_damaged_documents_and_audit_log(tmp_path: Path, backend: Kind) -> None:
    office, ids = _office_with_docs(tmp_path, backend)
    data = office.raw.doc_bytes(ids[1])
    office.raw.set_doc_bytes(ids[1], data.replace(b"-> vault/v1/label", b"-> vault/v1/xxxxx"))
    seq, line = next((i, x) for i, x in enumerate(office.raw.audit_lines()) if b'"clerk"' in x)
    flipped = bytearray(line)
    flipped[line.index(b'"clerk"') + 2] ^= 1
    office.raw.set_audit_line(seq, bytes(flipped))
    report = vault.Vault(office.location).doctor()
    assert any(p.startswith(f"document {ids[1]}") for p in report.problems)
    assert any(p.startswith("audit log") for p in report.problems)


def test_repair_needs_an_administrator(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    with pytest.raises(UsageError):
        vault.Vault(office.location).doctor(repair=True)
    with pytest.raises(DeniedError):
        office.as_("clerk").doctor(repair=True)
