"""Creating a vault: the officer signs the policy; recovery is mandatory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backends import Kind
from vault_helpers import PEOPLE, age_decrypt, office_policy, small_tmpfs

import vault
from vault.errors import DeniedError, IntegrityError, UsageError, VaultError
from vault.identity import new_identity
from vault.store import open_backend


@pytest.fixture
def people() -> dict[str, vault.UserIdentity]:
    return {n: new_identity(n) for n in PEOPLE}


def _untouched(backend: Kind, location: str) -> bool:
    """Nothing was written: no folder at all, or an empty database."""
    if backend.name == "folder":
        return not Path(location).exists()
    return backend.raw(location).audit_lines() == [] and not open_backend(location).exists()


def test_recovery_out_makes_a_working_recovery_identity(tmp_path: Path,
                                                         people: dict[str, vault.UserIdentity],
                                                         backend: Kind) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(people, []))
    v0 = backend.new_location(tmp_path / "v0")
    with pytest.raises(UsageError, match="recovery"):
        vault.Vault.init(v0, policy, people["officer"])
    assert _untouched(backend, v0)
    rec = tmp_path / "recovery.key"
    location = backend.new_location(tmp_path / "v")
    v = vault.Vault.init(location, policy, people["officer"], recovery_out=rec)
    assert rec.stat().st_mode & 0o777 == 0o600
    assert len(v.id) == 32 and v.policy_version == 1
    src = tmp_path / "a.txt"
    src.write_bytes(b"recover me")
    doc = vault.Vault(v.location, people["clerk"]).seal(src, level="INTERNAL",
                                                        compartments=["STAFF"])
    r = age_decrypt(rec, backend.raw(location).doc_file(doc.id, tmp_path / "out"))
    assert r.returncode == 0 and r.stdout == b"recover me"
    with pytest.raises(UsageError, match="already a vault"):  # said before anything else
        vault.Vault.init(location, policy, people["officer"], recovery_out=rec)
    with pytest.raises(UsageError, match="already exists"):
        vault.Vault.init(backend.new_location(tmp_path / "v2"), policy, people["officer"],
                         recovery_out=rec)


def test_a_failed_init_leaves_nothing_and_can_simply_be_run_again(
        tmp_path: Path, people: dict[str, vault.UserIdentity]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(people, []))
    officer = people["officer"]
    # A typo in the recovery key's folder is refused before anything is made.
    with pytest.raises(UsageError, match="does not exist"):
        vault.Vault.init(tmp_path / "v", policy, officer,
                         recovery_out=tmp_path / "nowhere" / "recovery.key")
    assert not (tmp_path / "v").exists()
    # A disk that fills up after the folder was made: what init wrote is
    # removed, the recovery key of a vault that never was included.
    small = tmp_path / "small"
    with small_tmpfs(small, "8k"):
        with pytest.raises((VaultError, OSError)):
            vault.Vault.init(small / "v", policy, officer, recovery_out=small / "recovery.key")
        assert list(small.iterdir()) == []
    for where in (small / "v", tmp_path / "v"):  # the same command, where there is room
        v = vault.Vault.init(where, policy, officer, recovery_out=where.parent / "recovery.key")
        assert v.policy_version == 1


def test_officer_must_be_an_administrator_of_the_policy(tmp_path: Path,
                                                         people: dict[str, vault.UserIdentity],
                                                         backend: Kind) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(people, [people["leader"].recipient]))
    v1, v2 = backend.new_location(tmp_path / "v1"), backend.new_location(tmp_path / "v2")
    with pytest.raises(DeniedError):
        vault.Vault.init(v1, policy, people["clerk"])
    with pytest.raises(UsageError, match="no user"):
        vault.Vault.init(v2, policy, new_identity("officer"))
    assert _untouched(backend, v1) and _untouched(backend, v2)


def test_manifest_is_signed_by_the_officer(tmp_path: Path,
                                           people: dict[str, vault.UserIdentity],
                                           backend: Kind) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(people, [people["leader"].recipient]))
    v = vault.Vault.init(backend.new_location(tmp_path / "v"), policy, people["officer"])
    raw = backend.raw(v.location)
    body = json.loads(raw.manifest())
    assert body["statement"]["officer"]["signing_key"] == people["officer"].signing_public
    body["statement"]["officer"]["name"] = "clerk"
    raw.set_manifest((json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode())
    with pytest.raises(IntegrityError, match=r"vault\.json"):
        vault.Vault(v.location)
