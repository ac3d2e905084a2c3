"""The audit log in PostgreSQL: append-only enforced by the database itself,
one total order, and the very same Merkle tree, checkpoints and proofs as a
folder log holding the same lines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from audit_support import KEYS, fields
from pg_support import APP, OWNER, Cluster, dbname_of

from vault.audit import AuditLog, NoteSigner, fingerprint, verify_tlog_proof
from vault.errors import AuditIntegrityError, AuditWriteError, UsageError
from vault.store._pg_audit import PostgresAuditLog
from vault.store.postgres import PostgresBackend

ORIGIN = "vault.example.org/pg-test"
SIGNER = NoteSigner.generate(ORIGIN)


def _lookup(name: str, fp: str) -> Any:
    key = KEYS.get(name)
    return key.public_key() if key is not None and fingerprint(key.public_key()) == fp else None


@pytest.fixture
def dsn(pg_cluster: Cluster) -> str:
    return pg_cluster.new_database()


def _log(dsn: str, every: int = 5, signer: NoteSigner | None = SIGNER) -> PostgresAuditLog:
    log = PostgresBackend(dsn).audit_log(signer, ORIGIN)
    assert isinstance(log, PostgresAuditLog)
    log.checkpoint_every = every
    return log


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        actor = ("alice", "bob", "carol")[i % 3]
        log.append(fields(actor, i), KEYS[actor])


def test_same_tree_checkpoints_and_proofs_as_a_folder_log(tmp_path: Path, dsn: str) -> None:
    folder = AuditLog(tmp_path / "log", checkpoint_signer=SIGNER, checkpoint_every=5,
                      origin=ORIGIN)
    _fill(folder, 12)
    folder.append_many([(fields("bob", i), KEYS["bob"]) for i in range(12, 15)])
    lines = (tmp_path / "log" / "log").read_bytes().split(b"\n")[:-1]
    notes = {int(p.name): p.read_bytes() for p in (tmp_path / "log" / "checkpoints").iterdir()}
    pg = _log(dsn)
    assert pg.import_lines(lines, notes)[0] == 15
    ours, theirs = pg.verify(key_lookup=_lookup), folder.verify(key_lookup=_lookup)
    assert (ours.size, ours.root, ours.checkpoints) == (theirs.size, theirs.root, 3)
    assert ours.signatures == 15 and ours.hashes_ok
    assert pg.latest_checkpoint() == folder.latest_checkpoint()
    for seq in (0, 7, 14):
        assert pg.prove(seq) == folder.prove(seq)  # byte for byte
        verify_tlog_proof(pg.prove(seq), [SIGNER.verifier], origin=ORIGIN)
    assert pg.consistency_proof(5, 15) == folder.consistency_proof(5, 15)
    assert [r.line for r in pg.records()] == [r.line for r in folder.records()]
    # Appending goes on from the same tree, in both.
    pg.append(fields("alice", 99), KEYS["alice"])
    folder.append(fields("alice", 99), KEYS["alice"])
    assert pg.checkpoint() != b"" and pg.verify().size == folder.verify().size == 16


def test_checkpoints_every_n_records_and_filters(dsn: str) -> None:
    log = _log(dsn, every=4)
    _fill(log, 9)
    log.append_many([(fields("carol", i), KEYS["carol"]) for i in range(9, 13)])
    report = log.verify(key_lookup=_lookup)
    assert (report.size, report.checkpoints, report.newest_checkpoint) == (13, 3, 12)
    assert [r.seq for r in log.records(actor="carol")] == [2, 5, 8, 9, 10, 11, 12]
    with pytest.raises(ValueError, match="timezone-aware"):  # as the folder log
        log.records(since=datetime(2026, 1, 1))
    trusted = log.latest_checkpoint()
    _fill(log, 2)
    assert log.verify(trusted_checkpoint=trusted).consistency_proved


def _as(cluster: Cluster, dsn: str, user: str, sql: str) -> None:
    cluster.execute(sql, dbname=dbname_of(dsn), user=user)


@pytest.mark.parametrize("sql", ["UPDATE vault.audit_log SET line = 'x'",
                                 "DELETE FROM vault.audit_log WHERE seq = 1",
                                 "TRUNCATE vault.audit_log",
                                 "DELETE FROM vault.audit_hashes",
                                 "UPDATE vault.audit_checkpoints SET note = 'x'",
                                 "TRUNCATE vault.audit_checkpoints"])
def test_append_only_for_the_application_and_the_owner(pg_cluster: Cluster, dsn: str,
                                                       sql: str) -> None:
    _fill(_log(dsn, every=2), 4)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg_cluster, dsn, APP, sql)  # no such grant
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        _as(pg_cluster, dsn, OWNER, sql)  # the owner has the grant: the trigger refuses
    assert _log(dsn).verify(key_lookup=_lookup).size == 4


def test_rows_are_numbered_without_gaps(pg_cluster: Cluster, dsn: str) -> None:
    _fill(_log(dsn), 3)
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="not the next"):
        _as(pg_cluster, dsn, APP, "INSERT INTO vault.audit_log VALUES (7, 'x')")
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="not the next"):
        _as(pg_cluster, dsn, APP, "INSERT INTO vault.audit_hashes VALUES (0, '\\x00')")


@pytest.mark.parametrize(("damage", "kind"), [
    ("UPDATE vault.audit_log SET line = line || 'x' WHERE seq = 2", "modified"),
    ("DELETE FROM vault.audit_log WHERE seq = 2", "deleted"),
    ("DELETE FROM vault.audit_log WHERE seq >= 6", "truncated"),
    ("UPDATE vault.audit_log SET seq = seq + 100 WHERE seq = 1", "reordered"),
])
def test_a_superuser_who_switches_the_triggers_off_is_caught(pg_cluster: Cluster, dsn: str,
                                                             damage: str, kind: str) -> None:
    log = _log(dsn, every=4)
    _fill(log, 7)
    with pg_cluster.connect(dbname=dbname_of(dsn)) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(damage)
    with pytest.raises(AuditIntegrityError) as caught:
        log.verify(key_lookup=_lookup)
    assert caught.value.kind == kind


def test_fail_closed_and_the_checkpoint_key(pg_cluster: Cluster, dsn: str) -> None:
    log = _log(dsn)
    _fill(log, 2)
    _as(pg_cluster, dsn, OWNER, f"REVOKE INSERT ON vault.audit_log FROM {APP}")
    with pytest.raises(AuditWriteError, match="not durable"):
        log.append(fields("alice", 2), KEYS["alice"])
    _as(pg_cluster, dsn, OWNER, f"GRANT INSERT ON vault.audit_log TO {APP}")
    assert log.verify().size == 2  # nothing of the failed append
    with pytest.raises(ValueError):
        log.append({"actor": {"name": "alice"}, "action": "open"}, KEYS["alice"])
    assert log.verify().size == 2
    # A role without the checkpoint key appends, but cannot checkpoint.
    keyless = pg_cluster.new_database(checkpoint_key=False)
    backend = PostgresBackend(keyless)
    backend.write_log_key(b"PRIVATE+KEY+...")
    with pytest.raises(PermissionError):
        backend.read_log_key()
    blind = _log(keyless, signer=None)
    _fill(blind, 2)
    with pytest.raises(UsageError, match="no checkpoint key"):
        blind.checkpoint()


def test_interleaved_writers_keep_one_tree(dsn: str) -> None:
    # Two handles appending in turn: each guess of the other's length is
    # wrong half of the time, and the right edge comes from the database.
    a, b = _log(dsn, every=7), _log(dsn, every=7)
    for i in range(40):
        (a if i % 3 else b).append(fields("alice", i), KEYS["alice"])
    b.append_many([(fields("bob", i), KEYS["bob"]) for i in range(40, 45)])
    report = a.verify(key_lookup=_lookup)
    assert (report.size, report.checkpoints, report.signatures) == (45, 6, 45)
    assert report.hashes_ok
    assert [r.seq for r in b.records()] == list(range(45))
