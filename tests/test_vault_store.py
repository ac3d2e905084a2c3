"""Storage: atomic writes, the folder backend's guards, the SQLite index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vault._atomic import atomic_writer, remove_stale_temps, write_atomic
from vault.errors import IntegrityError, UsageError
from vault.store.base import IndexRow
from vault.store.folder import FolderBackend
from vault.store.index import SQLiteIndex


def test_atomic_write_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "f"
    with pytest.raises(RuntimeError), atomic_writer(path) as f:
        f.write(b"half")
        raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []  # no file, no temporary left behind
    write_atomic(path, b"one")
    assert path.read_bytes() == b"one" and path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        write_atomic(path, b"two")
    assert path.read_bytes() == b"one"
    write_atomic(path, b"three", replace=True, mode=0o644)
    assert path.read_bytes() == b"three"
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".tmp-deadbeefdeadbeef").write_bytes(b"x")
    (tmp_path / "keep").write_bytes(b"y")
    assert remove_stale_temps(tmp_path) == [".tmp-deadbeefdeadbeef"]
    assert os.listdir(tmp_path) == ["keep"]


@pytest.fixture
def backend(tmp_path: Path) -> FolderBackend:
    b = FolderBackend(tmp_path / "v")
    b.create()
    b.write_manifest(b"{}")
    return b


@pytest.mark.parametrize("bad", ["../../x", "/etc/passwd", "a\x00b", "C:\\x", "AAAAAAAAAAAAAAAA"])
def test_ids_cannot_address_other_files(backend: FolderBackend, bad: str) -> None:
    with pytest.raises(UsageError):
        backend.open_document(bad)
    with pytest.raises(UsageError):
        backend.read_keyring_entry(bad, "0" * 32)
    with pytest.raises(UsageError):
        backend.read_class_key(bad, 1)


def test_symlinks_are_refused(backend: FolderBackend, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.age"
    target.write_bytes(b"age-encryption.org/v1\n")
    os.symlink(target, Path(backend.path) / "docs" / "aaaaaaaaaaaaaaaa.age")
    with pytest.raises(IntegrityError, match="symbolic link"):
        backend.open_document("aaaaaaaaaaaaaaaa")
    os.rename(Path(backend.path) / "docs", tmp_path / "real-docs")
    os.symlink(tmp_path / "real-docs", Path(backend.path) / "docs")
    with pytest.raises(IntegrityError, match="not a directory"):
        backend.read_manifest()


def test_create_refuses_an_existing_vault_or_a_full_folder(tmp_path: Path,
                                                           backend: FolderBackend) -> None:
    with pytest.raises(UsageError):
        FolderBackend(backend.path).create()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        FolderBackend(tmp_path / "full").create()


def _row(doc_id: str, due: str | None = None) -> IndexRow:
    return IndexRow(doc_id=doc_id, class_id="0" * 32, level="INTERNAL",
                    label={"label": {"level": "INTERNAL"}}, sealed_at=f"2025-01-0{doc_id[-1]}",
                    sealed_by="clerk", declassify_on=due, size=10, header_sha256="0" * 64,
                    stamp="1:1")


def test_index_queries_and_rebuild(tmp_path: Path) -> None:
    index = SQLiteIndex(tmp_path / "index.sqlite")
    index.put(_row("aaaaaaaaaaaaaaa1", "2030-01-01"))
    index.put(_row("aaaaaaaaaaaaaaa2", "2020-01-01"))
    index.put(_row("aaaaaaaaaaaaaaa3"))
    assert [r.doc_id for r in index.rows()] == ["aaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaa2",
                                                "aaaaaaaaaaaaaaa3"]
    assert [r.doc_id for r in index.due("2025-06-01")] == ["aaaaaaaaaaaaaaa2"]
    assert index.get("aaaaaaaaaaaaaaa3") == _row("aaaaaaaaaaaaaaa3")
    index.remove("aaaaaaaaaaaaaaa3")
    assert index.get("aaaaaaaaaaaaaaa3") is None
    index.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp_path / "index.sqlite") + suffix).unlink(missing_ok=True)
    (tmp_path / "index.sqlite").write_bytes(b"garbage" * 500)
    index = SQLiteIndex(tmp_path / "index.sqlite")
    index.rebuild([_row("aaaaaaaaaaaaaaa4")])
    assert [r.doc_id for r in index.rows()] == ["aaaaaaaaaaaaaaa4"]
