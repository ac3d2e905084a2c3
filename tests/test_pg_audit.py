"""The audit log in PostgreSQL: the same AuditLog over another storage,
append-only and hostile rows refused by the database itself, one total
order, and the very same Merkle tree, checkpoints and proofs as a folder log
holding the same lines."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from audit_support import KEYS, fields
from pg_support import APP, OWNER, Cluster, dbname_of

from vault.audit import AuditLog, NoteSigner, fingerprint, verify_tlog_proof
from vault.errors import AuditIntegrityError, AuditWriteError, UsageError
from vault.store._pg_log import AUDIT_LOCK, PostgresLogStorage
from vault.store.postgres import PostgresBackend

ORIGIN = "vault.example.org/pg-test"
SIGNER = NoteSigner.generate(ORIGIN)


def _lookup(name: str | None, fp: str, seq: int) -> Any:
    key = KEYS.get(name or "")
    return key.public_key() if key is not None and fingerprint(key.public_key()) == fp else None


@pytest.fixture
def dsn(pg_cluster: Cluster) -> str:
    return pg_cluster.new_database()


@pytest.fixture(autouse=True)
def _idle_sessions_closed() -> Iterator[None]:
    # Each test uses databases of its own: their idle sessions would
    # otherwise stay open for the rest of the run, against max_connections.
    yield
    from vault.store import _pg_conn

    _pg_conn._close_all()


def _log(dsn: str, every: int = 5, signer: NoteSigner | None = SIGNER) -> AuditLog:
    log = PostgresBackend(dsn).audit_log(signer, ORIGIN)
    assert isinstance(log.storage, PostgresLogStorage)
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
    folder.append_many([(fields("bob", i), KEYS["bob"]) for i in range(12, 15)])  # one run
    pg = _log(dsn)
    assert pg.import_log(folder.lines(), folder.stored_checkpoints())[0] == 15
    assert pg.tip() == folder.tip()  # the same trusted tip: same lines, same offsets
    ours, theirs = pg.verify(key_lookup=_lookup), folder.verify(key_lookup=_lookup)
    assert (ours.size, ours.root, ours.checkpoints) == (theirs.size, theirs.root, 3)
    assert ours.signatures == 13 and ours.unsigned_covered == 2 and ours.hashes_ok
    assert pg.latest_checkpoint() == folder.latest_checkpoint()
    for seq in (0, 7, 14):
        assert pg.prove(seq) == folder.prove(seq)  # byte for byte
        verify_tlog_proof(pg.prove(seq), [SIGNER.verifier], origin=ORIGIN, key_lookup=_lookup)
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


def _as(cluster: Cluster, dsn: str, user: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    cluster.execute(sql, params, dbname=dbname_of(dsn), user=user)


@pytest.mark.parametrize("sql", ["UPDATE vault.audit_log SET line = 'x'",
                                 "DELETE FROM vault.audit_log WHERE seq = 1",
                                 "TRUNCATE vault.audit_log",
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


@pytest.mark.parametrize("sql", ["INSERT INTO vault.audit_tree VALUES (9, '\\x00')",
                                 "UPDATE vault.audit_tree SET hashes = hashes",
                                 "DELETE FROM vault.audit_tree"])
def test_the_derived_hashes_are_the_databases(pg_cluster: Cluster, dsn: str, sql: str) -> None:
    _fill(_log(dsn), 3)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        _as(pg_cluster, dsn, APP, sql)


def _line(seq: int, **over: Any) -> bytes:
    d = {"v": 2, "seq": seq, "action": "open", **over}
    return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()


def _hostile(n: int) -> dict[str, tuple[int, bytes]]:
    """Rows the database must refuse when the log holds ``n`` lines."""
    return {
        "a gap": (n + 4, _line(n + 4)),
        "a duplicate": (n - 1, _line(n - 1)),
        "not JSON": (n, b"not json at all"),
        "a JSON array": (n, b"[1,2,3]"),
        "invalid UTF-8": (n, b'{"v":2,"seq":%d,"x":"\xff"}' % n),
        "version 1": (n, _line(n, v=1)),
        "a float version": (n, b'{"seq":%d,"v":2.0}' % n),
        "a string version": (n, _line(n, v="2")),
        "another seq": (n, _line(n + 1)),
        "a newline": (n, _line(n)[:-1] + b',"x":1}\n'),
        "too long": (n, _line(n, pad="x" * 524_288)),
        "empty": (n, b""),
    }


HOSTILE = _hostile(3)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inserts_are_refused(pg_cluster: Cluster, dsn: str, name: str) -> None:
    log = _log(dsn, every=2)
    _fill(log, 3)
    seq, line = HOSTILE[name]
    with pytest.raises(psycopg.IntegrityError):
        _as(pg_cluster, dsn, APP, "INSERT INTO vault.audit_log VALUES (%s, %s)", (seq, line))
    _fill(log, 2)  # the vault keeps working
    assert log.verify(key_lookup=_lookup).size == 5 and not log.verify().findings


def test_hostile_checkpoint_rows(pg_cluster: Cluster, dsn: str) -> None:
    log = _log(dsn, every=0)
    _fill(log, 3)
    for size, note in ((4, b"too big"), (2, b"\xff\xfe not UTF-8")):
        with pytest.raises((psycopg.IntegrityError, psycopg.errors.CharacterNotInRepertoire)):
            _as(pg_cluster, dsn, APP, "INSERT INTO vault.audit_checkpoints VALUES (%s, %s)",
                (size, note))
    # A row the schema cannot tell from a checkpoint is a finding, and ignored.
    forged = NoteSigner.generate(ORIGIN)
    _as(pg_cluster, dsn, APP, "INSERT INTO vault.audit_checkpoints VALUES (3, %s)",
        (forged.sign(f"{ORIGIN}\n3\n{'A' * 43}=\n"),))
    _as(pg_cluster, dsn, APP, "INSERT INTO vault.audit_checkpoints VALUES (1, 'bogus')")
    report = log.verify(key_lookup=_lookup)
    assert report.checkpoints == 0 and len(report.findings) == 2
    assert log.latest_checkpoint() is None
    verify_tlog_proof(log.prove(2), [SIGNER.verifier], key_lookup=_lookup)  # a new one is made
    _fill(log, 2)
    assert log.verify(key_lookup=_lookup).size == 5


def test_a_fragment_needs_its_torn_record(pg_cluster: Cluster, dsn: str) -> None:
    # What a move from a folder brings: a torn piece, set aside by the next line.
    log = _log(dsn, every=0)
    _fill(log, 2)
    piece = b'{"v":2,"seq":2,"acto'
    with pytest.raises(psycopg.IntegrityError, match="no torn record sets it aside"):
        _as(pg_cluster, dsn, APP, "INSERT INTO vault.audit_log VALUES (2, %s)", (piece,))
    torn = _line(3, action="torn", fragments=[{"length": len(piece), "seq": 2,
                                                "sha256": hashlib.sha256(piece).hexdigest()}])
    with pg_cluster.connect(APP, dbname_of(dsn)) as conn, conn.transaction():
        conn.execute("INSERT INTO vault.audit_log VALUES (2, %s), (3, %s)", (piece, torn))
    assert list(log.lines())[2:] == [piece, torn]
    # That "torn record" is no record: both lines wait at the end, and the
    # next writer sets them aside with a real one.
    assert log.verify().unrecovered_lines == 2
    _fill(log, 1)
    report = log.verify(key_lookup=_lookup)
    assert report.size == 6 and report.unrecovered == 0
    (torn_record,) = [r for r in log.records() if r.action == "torn"]
    assert [f.seq for f in torn_record.fragments] == [2, 3]


def test_a_superuser_who_switches_the_triggers_off_is_caught(pg_cluster: Cluster,
                                                             dsn: str) -> None:
    for damage, kind in [
        ("UPDATE vault.audit_log SET line = line || 'x' WHERE seq = 2", "modified"),
        ("DELETE FROM vault.audit_log WHERE seq = 2", "deleted"),
        ("DELETE FROM vault.audit_log WHERE seq >= 6", "truncated"),
        ("UPDATE vault.audit_log SET seq = seq + 100 WHERE seq = 1", "reordered"),
    ]:
        db = pg_cluster.new_database()
        log = _log(db, every=4)
        _fill(log, 7)
        with pg_cluster.connect(dbname=dbname_of(db)) as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute(damage)
        with pytest.raises(AuditIntegrityError) as caught:
            log.verify(key_lookup=_lookup)  # this writer trusts the 7 lines it wrote
        assert caught.value.kind == kind, damage


def test_fail_closed_and_the_checkpoint_key(pg_cluster: Cluster, dsn: str) -> None:
    log = _log(dsn)
    _fill(log, 2)
    _as(pg_cluster, dsn, OWNER, f"REVOKE INSERT ON vault.audit_log FROM {APP}")
    with pytest.raises(AuditWriteError, match="not durable"):
        log.append(fields("alice", 2), KEYS["alice"])
    _as(pg_cluster, dsn, OWNER, f"GRANT INSERT ON vault.audit_log TO {APP}")
    assert log.verify().size == 2  # nothing of the failed append
    with pytest.raises(ValueError):  # a database cannot tear: the handle goes on
        log.append({"actor": {"name": "alice"}, "action": "open"}, KEYS["alice"])
    log.append(fields("alice", 2), KEYS["alice"])
    assert log.verify().size == 3
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
    # Two handles appending in turn: each catches up on the other's lines.
    a, b = _log(dsn, every=7), _log(dsn, every=7)
    for i in range(40):
        (a if i % 3 else b).append(fields("alice", i), KEYS["alice"])
    b.append_many([(fields("bob", i), KEYS["bob"]) for i in range(40, 45)])
    report = a.verify(key_lookup=_lookup)
    assert (report.size, report.checkpoints, report.signatures) == (45, 6, 41)
    assert report.hashes_ok and report.unsigned_covered == 4
    assert [r.seq for r in b.records()] == list(range(45))
    assert AUDIT_LOCK == 0x7661756C74_0002


def test_an_insider_with_insert_does_not_stop_the_vault(tmp_path: Path,
                                                        pg_cluster: Cluster) -> None:
    import io

    from backends import PostgresKind
    from vault_helpers import make_office

    office = make_office(tmp_path, PostgresKind(pg_cluster))
    clerk = office.as_("clerk")
    doc = clerk.seal(io.BytesIO(b"before"), level="INTERNAL", compartments=["STAFF"]).id
    db = dbname_of(office.location)
    size = len(list(office.as_("officer").audit.lines()))
    for seq, line in _hostile(size).values():
        with pytest.raises(psycopg.IntegrityError):
            pg_cluster.execute("INSERT INTO vault.audit_log VALUES (%s, %s)", (seq, line),
                               dbname=db, user=APP)
    # What the schema cannot tell from a record: a JSON line and a checkpoint.
    pg_cluster.execute("INSERT INTO vault.audit_log VALUES (%s, %s)",
                       (size, _line(size, action="open", note="not signed")), dbname=db,
                       user=APP)
    pg_cluster.execute("INSERT INTO vault.audit_checkpoints VALUES (%s, 'x')", (size,),
                       dbname=db, user=APP)
    out = io.BytesIO()
    office.as_("leader").open(doc, out)  # the vault goes on: the line is set aside
    assert out.getvalue() == b"before"
    officer = office.as_("officer")
    report = officer.verify_audit()
    assert report.unrecovered == 0 and any(f.startswith(f"checkpoint {size} ")
                                           for f in report.findings)
    torn = [r for r in officer.audit.records() if r.action == "torn"]
    assert [f.seq for f in torn[0].fragments] == [size]
    assert officer.doctor().ok


def test_each_append_is_flushed_when_it_returns(pg_cluster: Cluster, dsn: str) -> None:
    # Fail closed (docs/AUDIT.md §9.3): an append returns only once its
    # commit is flushed, whatever the session's synchronous_commit might
    # let a turn do. With the WAL writer slowed down, nothing else flushes
    # it in time: pg_walinspect reads only flushed WAL, so the turn's commit
    # record must be found there. (A turn committed asynchronously, or one
    # followed by a transaction that writes no WAL, fails this.)
    db = dbname_of(dsn)
    pg_cluster.execute("CREATE EXTENSION pg_walinspect", dbname=db)
    pg_cluster.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
    pg_cluster.execute("SELECT pg_reload_conf()")
    try:
        log = _log(dsn, every=0)
        for i in range(4):
            start = pg_cluster.execute("SELECT pg_current_wal_flush_lsn()")[0][0]
            record = log.append(fields("alice", i), KEYS["alice"])
            with pg_cluster.connect(dbname=db) as su:
                (xid,) = su.execute("SELECT xmin::text FROM vault.audit_log WHERE seq = %s",
                                    (record.seq,)).fetchone()
                (moved,) = su.execute("SELECT pg_current_wal_flush_lsn() > %s::pg_lsn",
                                      (start,)).fetchone()
                assert moved, f"append {i}: nothing was flushed"
                found = su.execute(
                    "SELECT count(*) FROM pg_get_wal_records_info(%s, pg_current_wal_flush_lsn())"
                    " WHERE xid::text = %s AND record_type = 'COMMIT'", (start, xid)).fetchone()
            assert found == (1,), f"append {i}: its commit is not flushed"
        assert log.verify(key_lookup=_lookup).size == 4
    finally:
        pg_cluster.execute("ALTER SYSTEM RESET wal_writer_delay")
        pg_cluster.execute("SELECT pg_reload_conf()")
