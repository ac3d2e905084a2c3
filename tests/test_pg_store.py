"""The PostgreSQL backend under the storage contract (vault/store/base.py):
atomic writes, exclusive creates, documents streamed in chunks, strict ids,
the schema's versions and migrations, and the application role's grants."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from pg_support import APP, OWNER, SUPER, Cluster, dbname_of
from vault_helpers import PEOPLE, descriptors_past_1024, office_policy

import vault
from vault.errors import StorageError, UsageError
from vault.identity import new_identity
from vault.store import open_backend
from vault.store._pg_conn import Database, redact
from vault.store._pg_schema import FIRST, VERSION
from vault.store._pg_stream import CHUNK
from vault.store.postgres import PostgresBackend, migrate_schema


@pytest.fixture
def store(pg_cluster: Cluster) -> PostgresBackend:
    b = open_backend(pg_cluster.new_database())
    assert isinstance(b, PostgresBackend)
    b.create()
    return b


def _chunks(cluster: Cluster, b: PostgresBackend) -> list[tuple[int, int]]:
    return [(int(v), int(n)) for v, n in cluster.execute(
        "SELECT vid, octet_length(data) FROM vault.document_chunks ORDER BY vid, n",
        dbname=dbname_of(b.db.conninfo))]


A, V1, V2 = "aaaaaaaaaaaaaaaa", "00000001", "00000002"


def test_documents_are_streamed_in_chunks(store: PostgresBackend, pg_cluster: Cluster) -> None:
    data = os.urandom(2 * CHUNK + 12345)
    with store.write_document(A, V1) as out:
        for i in range(0, len(data), 50_000):
            out.write(data[i:i + 50_000])
    assert [n for _, n in _chunks(pg_cluster, store)] == [CHUNK, CHUNK, 12345]
    with store.open_document(A, V1) as f:
        assert f.read(10) == data[:10]
        f.seek(CHUNK - 5)
        assert f.read(10) == data[CHUNK - 5:CHUNK + 5]  # across a chunk boundary
        f.seek(0)
        assert f.read() == data
    assert store.document_files() == [(A, V1)]


def test_writes_are_atomic_and_creates_exclusive(store: PostgresBackend,
                                                 pg_cluster: Cluster) -> None:
    doc = "bbbbbbbbbbbbbbbb"
    with pytest.raises(RuntimeError), store.write_document(doc, V1) as out:
        out.write(os.urandom(CHUNK + 1))  # one chunk already sent
        raise RuntimeError("crash")
    assert store.document_files() == [] and _chunks(pg_cluster, store) == []
    with store.write_document(doc, V1) as out:
        out.write(b"one")
    with pytest.raises(FileExistsError), store.write_document(doc, V1) as out:
        out.write(b"two")
    big = os.urandom(CHUNK + 5)
    with store.write_document(doc, V2) as out:
        out.write(big)
    # A reader keeps the version it opened while the old one is removed.
    reader = store.open_document(doc, V2)
    reader.read(10)
    store.delete_document(doc, V1)
    assert reader.read() == big[10:]
    reader.close()
    assert store.document_files() == [(doc, V2)]
    store.write_manifest(b"{}")
    with pytest.raises(FileExistsError):
        store.write_manifest(b"{}")
    store.shred_document(doc, V2, 10)
    assert store.document_files() == [] and _chunks(pg_cluster, store) == []
    with pytest.raises(FileNotFoundError):
        store.open_document(doc, V2)


@pytest.mark.parametrize("bad", ["../../x", "a'; DROP TABLE vault.documents; --", "a\x00b",
                                 "AAAAAAAAAAAAAAAA"])
def test_ids_are_checked_before_any_query(store: PostgresBackend, bad: str) -> None:
    with pytest.raises(UsageError):
        store.open_document(bad, V1)
    with pytest.raises(UsageError):
        store.open_document(A, bad)
    with pytest.raises(UsageError):
        store.read_keyring_entry(bad, "0" * 32)
    with pytest.raises(UsageError):
        store.delete_keyring_entry(bad, "0" * 32)
    with pytest.raises(UsageError):
        store.write_document(bad, V1)


def test_statements_and_actors(store: PostgresBackend) -> None:
    store.put_statement("request", b"r")
    store.put_statement("request", b"r")  # left once, named by its bytes
    assert list(store.statements("request")) == [(hashlib.sha256(b"r").hexdigest(), b"r")]
    key_hash = hashlib.sha256(b"k" * 32).hexdigest()  # self-certifying
    store.register_actor(key_hash, b"k" * 32)
    assert store.actor_keys() == [key_hash] and store.actor_key(key_hash) == b"k" * 32


def test_schema_versions_and_migrations(pg_cluster: Cluster, tmp_path: Path) -> None:
    app = pg_cluster.new_database(schema=False)
    owner = pg_cluster.dsn(OWNER, dbname_of(app))
    assert migrate_schema(owner, target=FIRST) == (0, FIRST)
    with pytest.raises(StorageError, match=f"version {FIRST}") as caught:
        vault.Vault(owner)
    assert "vault migrate" in (caught.value.hint or "")
    assert migrate_schema(owner, grant=[APP]) == (FIRST, VERSION)
    assert migrate_schema(owner) == (VERSION, VERSION)  # idempotent
    ids = {n: new_identity(n) for n in PEOPLE}
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(ids, [ids["leader"].recipient]))
    vault.Vault.init(app, policy, ids["officer"])
    clerk = vault.Vault(app, ids["clerk"])
    doc = clerk.seal(io.BytesIO(b"kept"), level="INTERNAL", compartments=["STAFF"]).id
    # A schema from a newer vault is refused, not misread.
    pg_cluster.execute("INSERT INTO vault.schema_version VALUES (99, 'future')",
                       dbname=dbname_of(app), user=OWNER)
    fresh = "postgresql://" + app.removeprefix("postgresql://")  # a new process's view
    fresh = fresh.replace("?host", "?application_name=other&host")
    with pytest.raises(StorageError, match="version 99") as caught:
        vault.Vault(fresh, ids["clerk"])
    assert "upgrade vault" in (caught.value.hint or "")
    pg_cluster.execute("DELETE FROM vault.schema_version WHERE version = 99",
                       dbname=dbname_of(app), user=OWNER)
    out = io.BytesIO()
    vault.Vault(fresh, ids["clerk"]).open(doc, out)
    assert out.getvalue() == b"kept"


def test_roles_without_grants_or_schema_get_a_clear_error(pg_cluster: Cluster,
                                                          tmp_path: Path) -> None:
    app = pg_cluster.new_database(schema=False)
    ids = {n: new_identity(n) for n in PEOPLE}
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(ids, [ids["leader"].recipient]))
    with pytest.raises(UsageError, match="may not create it") as caught:
        vault.Vault.init(app, policy, ids["officer"])
    assert "vault migrate" in (caught.value.hint or "")
    migrate_schema(pg_cluster.dsn(OWNER, dbname_of(app)))  # schema, but no grant
    with pytest.raises(StorageError, match="permission denied") as denied:
        vault.Vault.init(app, policy, ids["officer"])
    assert "--grant" in (denied.value.hint or "")


def test_the_owner_can_create_the_schema_at_init(pg_cluster: Cluster, tmp_path: Path) -> None:
    owner = pg_cluster.dsn(OWNER, dbname_of(pg_cluster.new_database(schema=False)))
    ids = {n: new_identity(n) for n in PEOPLE}
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(ids, [ids["leader"].recipient]))
    v = vault.Vault.init(owner, policy, ids["officer"])
    assert v.verify_audit().size == 1
    with pytest.raises(UsageError, match="already a vault"):
        vault.Vault.init(owner, policy, ids["officer"])


def test_passwords_never_show(pg_cluster: Cluster) -> None:
    assert redact("postgresql://app:s3cret@db.example/vault") == \
        "postgresql://app:***@db.example/vault"
    assert "s3cret" not in redact("host=db user=app password=s3cret dbname=vault")
    # libpq also takes it in the query (the user part masked, the query left
    # whole, printed it), and a client key's passphrase as sslpassword.
    assert redact("postgresql://app@/vault?host=/run/pg&password=s3cret") == \
        "postgresql://app@/vault?host=/run/pg&password=***"
    assert redact("postgresql://app:s3cret@db/vault?password=s3cret&sslmode=require") == \
        "postgresql://app:***@db/vault?password=***&sslmode=require"
    assert "s3cret" not in redact("postgresql://app@db/vault?sslpassword=s3cret")
    assert "s3cret" not in redact("host=db sslpassword=s3cret dbname=vault")
    # libpq takes '#' and '?' raw where a URL parser cuts the text.
    for location in ("postgresql://app:Hunter#2s3cret@db/vault",
                     "postgresql://app:Hunter?2s3cret@db/vault",
                     "postgresql://app@db/vault?password=Hunter#2s3cret",
                     "postgresql://app@db/vault?sslpassword=a#b&password=s3cret",
                     # and ends the user part at a '/': "app:Pa55/s3cret@db" was a host
                     # and a port to it, no password, and was shown whole
                     "postgresql://app:Pa55/s3cret@db/vault",
                     "postgresql://app:p@s3cret/w@db/vault"):
        assert "s3cret" not in redact(location), redact(location)
    pg_cluster.execute(f"ALTER ROLE {SUPER} PASSWORD 's3cret'")
    bad = pg_cluster.dsn(SUPER).replace(f"{SUPER}@", f"{SUPER}:s3cret@").replace(
        "/postgres?", "/no_such_db?")
    backend = open_backend(bad)
    assert "s3cret" not in backend.location and "s3cret" not in repr(backend)
    with pytest.raises(StorageError) as caught:
        vault.Vault(bad)
    assert "s3cret" not in str(caught.value) and "no_such_db" in str(caught.value)
    in_query = pg_cluster.dsn(SUPER).replace("/postgres?", "/no_such_db?password=s3cret&")
    with pytest.raises(StorageError) as caught:
        vault.Vault(in_query)
    assert "s3cret" not in str(caught.value) and "no_such_db" in str(caught.value)


def test_a_session_is_reused_when_the_process_holds_many_descriptors(
        pg_cluster: Cluster) -> None:
    # select() refuses a descriptor past 1,024: every idle session then
    # looked dead, and each unit of work connected anew.
    db = Database(pg_cluster.new_database())
    try:
        with descriptors_past_1024():
            with db.connection() as conn:
                first = conn.info.backend_pid
                assert conn.fileno() > 1024
            with db.connection() as conn:
                assert conn.info.backend_pid == first
    finally:
        db.close()
