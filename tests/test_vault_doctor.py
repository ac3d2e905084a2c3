"""doctor: documents, index, keyrings and audit log agree; repair rebuilds
the index from the document headers alone."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path

import pytest
from vault_helpers import Office, make_office

import vault
from vault.errors import DeniedError, UsageError


def _office_with_docs(tmp_path: Path) -> tuple[Office, list[str]]:
    office = make_office(tmp_path)
    ids = [office.as_("clerk").seal(office.file(f"{i}.txt", b"d" * i), level="INTERNAL",
                                    compartments=["STAFF"], title=f"title {i}").id
           for i in range(3)]
    ids.append(office.as_("leader").reclassify(ids[0], level="SECRET",
                                               compartments=["BOARD"],
                                               justification="raise").id)
    return office, ids


def _index_rows(office: Office) -> list[tuple[object, ...]]:
    with sqlite3.connect(office.path / "index.sqlite") as db:
        return sorted(db.execute("SELECT * FROM documents").fetchall())


def test_clean_vault_is_ok(tmp_path: Path) -> None:
    office, _ = _office_with_docs(tmp_path)
    report = office.as_("officer").doctor()
    assert report.ok and report.documents == 3 and report.problems == []
    # The index holds labels, never titles or file names.
    dump = (office.path / "index.sqlite").read_bytes()
    assert b"title 1" not in dump and b"1.txt" not in dump


def _drop_index_files(office: Office) -> Path:
    # Earlier Vault objects of this process may still hold SQLite connections
    # (sqlite3 connections are freed by the cycle collector): close them, as
    # the end of a process would.
    gc.collect()
    index = office.path / "index.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    return index


def test_interrupted_writes_leave_rows_that_are_refreshed(tmp_path: Path) -> None:
    office, ids = _office_with_docs(tmp_path)
    good = _index_rows(office)
    _drop_index_files(office)  # as if every seal had died before its index write
    report = office.as_("officer").doctor()
    assert report.ok, report.problems
    assert any("refreshed 3 out-of-date entries" in n for n in report.notes)
    assert _index_rows(office) == good
    # A document rewritten without its row (reclassify interrupted) is seen by ls.
    with sqlite3.connect(office.path / "index.sqlite") as db:
        db.execute("UPDATE documents SET stamp = 'old', level = 'INTERNAL' WHERE id = ?",
                   (ids[0],))
    listed = {d.id: d.label.level for d in office.as_("leader").ls()}
    assert listed[ids[0]] == "SECRET"


@pytest.mark.parametrize("damage", ["garbage", "edit"])
def test_repair_rebuilds_the_index_from_headers(tmp_path: Path, damage: str) -> None:
    office, _ = _office_with_docs(tmp_path)
    good = _index_rows(office)
    if damage == "garbage":
        _drop_index_files(office).write_bytes(b"not a database" * 100)
    else:  # someone edits labels in the index, keeping the stamps
        with sqlite3.connect(office.path / "index.sqlite") as db:
            db.execute("UPDATE documents SET level = 'PUBLIC'")
    report = office.as_("officer").doctor()
    assert not report.ok and any(p.startswith("index") for p in report.problems)
    fixed = office.as_("officer").doctor(repair=True)
    assert any("index rebuilt from 3 document headers" in r for r in fixed.repaired)
    assert _index_rows(office) == good
    assert office.as_("officer").doctor().ok


def test_repair_clears_leftovers_and_orphans(tmp_path: Path) -> None:
    office, _ = _office_with_docs(tmp_path)
    (office.path / "docs" / ".tmp-0123456789abcdef").write_bytes(b"half a document")
    owner = office.path / "keyrings" / office.ids["clerk"].recipient
    (owner / ("0" * 32 + ".age")).write_bytes(b"orphan")
    report = office.as_("officer").doctor()
    assert report.ok and any("belongs to no class key" in n for n in report.notes)
    fixed = office.as_("officer").doctor(repair=True)
    assert "removed leftover docs/.tmp-0123456789abcdef" in fixed.repaired
    assert not (office.path / "docs" / ".tmp-0123456789abcdef").exists()
    assert not (owner / ("0" * 32 + ".age")).exists()


def test_doctor_reports_damaged_documents_and_audit_log(tmp_path: Path) -> None:
    office, ids = _office_with_docs(tmp_path)
    doc = office.path / "docs" / f"{ids[1]}.age"
    doc.write_bytes(doc.read_bytes().replace(b"-> vault/v1/label", b"-> vault/v1/xxxxx"))
    log = office.path / "audit" / "log"
    data = bytearray(log.read_bytes())
    data[data.index(b'"clerk"') + 2] ^= 1
    log.write_bytes(bytes(data))
    report = vault.Vault(office.path).doctor()
    assert any(p.startswith(f"document {ids[1]}") for p in report.problems)
    assert any(p.startswith("audit log") for p in report.problems)


def test_repair_needs_an_administrator(tmp_path: Path) -> None:
    office = make_office(tmp_path)
    with pytest.raises(UsageError):
        vault.Vault(office.path).doctor(repair=True)
    with pytest.raises(DeniedError):
        office.as_("clerk").doctor(repair=True)
