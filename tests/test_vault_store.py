"""Storage: atomic writes and the folder backend's guards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vault._atomic import atomic_writer, remove_stale_temps, write_atomic
from vault.errors import IntegrityError, UsageError
from vault.store.folder import FolderBackend


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
        backend.open_document(bad, "00000000")
    with pytest.raises(UsageError):
        backend.open_document("aaaaaaaaaaaaaaaa", bad)
    with pytest.raises(UsageError):
        backend.read_keyring_entry("age1x", bad)
    with pytest.raises(UsageError):
        backend.delete_keyring_entry(bad, "0" * 32)


def test_symlinks_are_refused(backend: FolderBackend, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.age"
    target.write_bytes(b"age-encryption.org/v1\n")
    os.symlink(target, Path(backend.path) / "docs" / "aaaaaaaaaaaaaaaa.00000000.age")
    with pytest.raises(IntegrityError, match="symbolic link"):
        backend.open_document("aaaaaaaaaaaaaaaa", "00000000")
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


def test_document_versions_are_exclusive_and_listed(backend: FolderBackend) -> None:
    with backend.write_document("aaaaaaaaaaaaaaaa", "00000001") as out:
        out.write(b"one")
    with pytest.raises(FileExistsError), backend.write_document("aaaaaaaaaaaaaaaa",
                                                                "00000001") as out:
        out.write(b"two")
    with backend.write_document("aaaaaaaaaaaaaaaa", "00000002") as out:
        out.write(b"three")
    assert backend.document_files() == [("aaaaaaaaaaaaaaaa", "00000001"),
                                        ("aaaaaaaaaaaaaaaa", "00000002")]
    with backend.open_document("aaaaaaaaaaaaaaaa", "00000001") as f:
        assert f.read() == b"one"
    backend.shred_document("aaaaaaaaaaaaaaaa", "00000001", 3)
    backend.delete_document("aaaaaaaaaaaaaaaa", "00000002")
    backend.delete_document("aaaaaaaaaaaaaaaa", "00000002")  # gone already: fine
    assert backend.document_files() == []


def test_a_batch_of_one_writes_straight_to_the_file(backend: FolderBackend) -> None:
    # A batch keeps small documents in memory until it commits them beside
    # others; the only document of a batch has none to be grouped with and
    # is in place as soon as it is written (the memory is saved).
    ids = [("a" * 16, "00000001"), ("b" * 16, "00000001"), ("c" * 16, "00000001")]
    with backend.document_batch(1) as batch:
        with batch.write(*ids[0], 100) as out:
            out.write(b"x" * 100)
        assert backend.document_files() == [ids[0]]
    with backend.document_batch(2) as batch:
        for doc in ids[1:]:
            with batch.write(*doc, 100) as out:
                out.write(b"y" * 100)
    assert backend.document_files() == ids  # all in place once the batch ends


def test_keyring_entries_are_filed_by_owner_key(backend: FolderBackend) -> None:
    from vault.age import MLKEM768X25519Identity
    from vault.store.base import owner_key

    owner = str(MLKEM768X25519Identity.generate().recipient)  # too long for a file name
    backend.write_keyring_entry(owner, "1" * 32, b"entry")
    assert backend.keyring_files() == [(owner_key(owner), "1" * 32)]
    assert backend.read_keyring_entry(owner, "1" * 32) == b"entry"
    backend.delete_keyring_entry(owner_key(owner), "1" * 32)
    assert backend.read_keyring_entry(owner, "1" * 32) is None


def test_leftovers_are_named_and_tidied(backend: FolderBackend) -> None:
    folder = Path(backend.path)
    (folder / "docs" / ".vault-tmp-0123456789abcdef").write_bytes(b"ciphertext")
    (folder / "actors" / ".vault-tmp-fedcba9876543210").write_bytes(b"key")
    found = {x.where: x for x in backend.leftovers()}
    assert found["docs/.vault-tmp-0123456789abcdef"].size == 10
    assert found["docs/.vault-tmp-0123456789abcdef"].secret
    assert not found["actors/.vault-tmp-fedcba9876543210"].secret
    assert len(backend.tidy()) == 2 and backend.leftovers() == []
