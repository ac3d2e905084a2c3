"""Registered keys no record names -- anyone who may write the store can
add any number, each certifying itself -- are nowhere in the keys file
(docs/AUDIT.md §15) and are not moved with the vault: the file holds the
keys the log's records name, the same from either backend for the same
log (THREAT-MODEL.md §6)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import psycopg
import pytest
from backends import FolderKind, PostgresKind
from office import Office, make_office
from pg_support import APP, Cluster, dbname_of

import vault
from vault._ops.migrate import move_vault
from vault._primitives import raw_public
from vault.audit import fingerprint
from vault.errors import DeniedError
from vault.identity import UserIdentity


def _plant_actors(office: Office, count: int) -> list[str]:
    """``count`` keys registered as the application role, or a folder
    writer, may: each under the SHA-256 of its bytes. Their hashes."""
    keys = [os.urandom(32) for _ in range(count)]
    hashes = [hashlib.sha256(k).hexdigest() for k in keys]
    if office.kind.name == "postgres":
        cluster: Cluster = office.kind.cluster  # type: ignore[attr-defined]
        with psycopg.connect(cluster.dsn(APP, dbname_of(office.location)),
                             autocommit=True) as conn, conn.cursor() as cur, \
                cur.copy("COPY vault.actors (key_hash, public_key) FROM STDIN") as copy:
            for h, k in zip(hashes, keys, strict=True):
                copy.write_row((h, k))
    else:
        actors = office.path / "actors"
        actors.mkdir(exist_ok=True)
        for h, k in zip(hashes, keys, strict=True):
            (actors / f"{h}.pub").write_bytes(k)
    return hashes


def _stranger(office: Office) -> UserIdentity:
    """Someone the policy does not know tries: their key is registered, and
    their denied attempt, carrying no name, is on the record."""
    mallory = vault.new_identity("mallory")
    with pytest.raises(DeniedError):
        vault.Vault(office.location, mallory).ls()
    return mallory


def _keys_file(office: Office) -> str:
    r = office.cli("deputy", "audit", "keys")
    assert r.exit_code == 0, r.stderr
    return r.stdout


def test_planted_actor_keys_no_record_names_are_not_in_the_keys_file(office: Office) -> None:
    # 50,000 rows the role inserted made 'vault audit keys' 50,000 lines
    # longer and 17 times slower (a query per row), bindings of keys that
    # sign nothing.
    mallory = _stranger(office)
    before = _keys_file(office)
    theirs = fingerprint(mallory.signing_key.public_key())
    (line,) = [x for x in before.splitlines() if theirs in x]
    assert line.endswith(" null")
    planted = _plant_actors(office, 3000)
    after = _keys_file(office)
    assert after == before
    assert not any(h[:16] in after for h in planted)
    # Another stranger's attempt names their key: it is listed, once.
    eve = _stranger(office)
    lines = _keys_file(office).splitlines()
    assert len(lines) == len(before.splitlines()) + 1
    assert sum(fingerprint(eve.signing_key.public_key()) in x for x in lines) == 1


def test_both_backends_give_the_same_keys_file_and_only_named_keys_move(
        tmp_path: Path, pg_cluster: Cluster) -> None:
    office = make_office(tmp_path / "office", FolderKind())
    mallory = _stranger(office)
    planted = _plant_actors(office, 50)
    junk = hashlib.sha256(b"x" * 32).hexdigest()  # a file that is not the key it is named by
    (office.path / "actors" / f"{junk}.pub").write_bytes(os.urandom(32))
    destination = pg_cluster.new_database()
    report = move_vault(office.location, destination, office.ids["officer"])
    assert report.actors == 1 and not report.notes
    kind = PostgresKind(pg_cluster)
    moved = dataclasses.replace(office, location=destination, kind=kind,
                                raw=kind.raw(destination))
    rows = pg_cluster.execute("SELECT key_hash FROM vault.actors",
                              dbname=dbname_of(moved.location))
    assert rows == [(hashlib.sha256(raw_public(mallory.signing_key.public_key())).hexdigest(),)]
    assert not {junk, *planted} & {h for h, in rows}
    _plant_actors(moved, 50)
    folder, database = _keys_file(office), _keys_file(moved)
    assert folder == database
    assert fingerprint(mallory.signing_key.public_key()) in folder

