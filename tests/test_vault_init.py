"""Creating a vault: the officer signs the policy; recovery is mandatory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vault_helpers import PEOPLE, age_decrypt, office_policy

import vault
from vault.errors import DeniedError, IntegrityError, UsageError
from vault.identity import new_identity


@pytest.fixture
def people() -> dict[str, vault.UserIdentity]:
    return {n: new_identity(n) for n in PEOPLE}


def test_recovery_out_makes_a_working_recovery_identity(tmp_path: Path,
                                                         people: dict[str, vault.UserIdentity]
                                                         ) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(people, []))
    with pytest.raises(UsageError, match="recovery"):
        vault.Vault.init(tmp_path / "v0", policy, people["officer"])
    assert not (tmp_path / "v0").exists()
    rec = tmp_path / "recovery.key"
    v = vault.Vault.init(tmp_path / "v", policy, people["officer"], recovery_out=rec)
    assert rec.stat().st_mode & 0o777 == 0o600
    assert len(v.id) == 32 and v.policy_version == 1
    src = tmp_path / "a.txt"
    src.write_bytes(b"recover me")
    doc = vault.Vault(v.location, people["clerk"]).seal(src, level="INTERNAL",
                                                        compartments=["STAFF"])
    r = age_decrypt(rec, Path(v.location) / "docs" / f"{doc.id}.age")
    assert r.returncode == 0 and r.stdout == b"recover me"
    with pytest.raises(UsageError, match="already exists"):
        vault.Vault.init(tmp_path / "v", policy, people["officer"], recovery_out=rec)


def test_officer_must_be_an_administrator_of_the_policy(tmp_path: Path,
                                                         people: dict[str, vault.UserIdentity]
                                                         ) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(people, [people["leader"].recipient]))
    with pytest.raises(DeniedError):
        vault.Vault.init(tmp_path / "v1", policy, people["clerk"])
    with pytest.raises(UsageError, match="no user"):
        vault.Vault.init(tmp_path / "v2", policy, new_identity("officer"))
    assert not (tmp_path / "v1").exists() and not (tmp_path / "v2").exists()


def test_manifest_is_signed_by_the_officer(tmp_path: Path,
                                           people: dict[str, vault.UserIdentity]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(people, [people["leader"].recipient]))
    v = vault.Vault.init(tmp_path / "v", policy, people["officer"])
    manifest = Path(v.location) / "vault.json"
    body = json.loads(manifest.read_text())
    assert body["statement"]["officer"]["signing_key"] == people["officer"].signing_public
    body["statement"]["officer"]["name"] = "clerk"
    manifest.write_text(json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n")
    with pytest.raises(IntegrityError, match=r"vault\.json"):
        vault.Vault(v.location)
