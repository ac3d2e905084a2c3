"""Many workstations, one PostgreSQL vault: concurrent writers on separate
connections, a connection killed in the middle of a seal, and the server
restarted in the middle of an audit append. Each time: a clear error,
nothing half-written, and the audit log verifies afterwards."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from backends import PostgresKind
from pg_support import APP, Cluster, dbname_of
from pg_workers import run_all, seal_and_open
from vault_helpers import Office, make_office

from vault.errors import AuditWriteError, StorageError
from vault.store._pg_log import AUDIT_LOCK


@pytest.fixture
def office(tmp_path: Path, pg_cluster: Cluster) -> Office:
    return make_office(tmp_path, PostgresKind(pg_cluster))


def _kill_app_sessions(cluster: Cluster, location: str) -> int:
    rows = cluster.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE datname = %s AND usename = %s", (dbname_of(location), APP))
    return len(rows)


def _chunk_versions(cluster: Cluster, location: str) -> set[int]:
    rows = cluster.execute("SELECT DISTINCT vid FROM vault.document_chunks",
                           dbname=dbname_of(location))
    return {r[0] for r in rows}


def test_concurrent_writers_get_one_total_order(office: Office) -> None:
    # Three workstations seal and open at the same moment, at a label class
    # that has no key yet: they also race to create it.
    start = time.time() + 1.5
    args = [(office.location, str(office.files[who]), 6, 2000, start, "CONFIDENTIAL",
             ("STAFF",)) for who in ("clerk", "leader", "deputy")]
    results = run_all(seal_and_open, args)
    ids = [i for r in results for i in r["ids"]]
    assert len(set(ids)) == 18 and all(r["mismatches"] == 0 for r in results)
    with office.as_("leader") as v:  # one generation-1 key won the race
        assert [len(gens) for gens in v._s.trusted.classes()] == [1]
    officer = office.as_("officer")
    report = officer.verify_audit()
    records = list(officer.audit.records())
    assert [r.seq for r in records] == list(range(len(records))) and report.size == len(records)
    assert report.signatures == len(records)
    # Every attempt once: one seal and one open record per document.
    for action in ("seal", "open"):
        assert sorted(r.doc for r in records if r.action == action
                      and r.outcome == "allowed") == sorted(ids)
    for doc in ids[::5]:
        out = io.BytesIO()
        office.as_("leader").open(doc, out)
        assert len(out.getvalue()) == 2000
    assert officer.doctor().ok


class _KillWhileEncrypting(io.BytesIO):
    """A source that, the second time it is read past ``at`` bytes (the
    first pass inspects it, docs/POLICY.md §11; the second encrypts it), has
    every session of the application role terminated by the administrator."""

    def __init__(self, data: bytes, kill: object, at: int) -> None:
        super().__init__(data)
        self._kill, self._at, self._crossings, self._past, self.killed = kill, at, 0, False, False

    def seek(self, pos: int, whence: int = 0) -> int:
        where = super().seek(pos, whence)
        self._past = where > self._at
        return where

    def _check(self) -> None:
        if self.tell() > self._at and not self._past:
            self._past = True
            self._crossings += 1
            if self._crossings == 2 and not self.killed:
                self.killed = True
                self._kill()  # type: ignore[operator]

    def read(self, n: int | None = -1) -> bytes:
        data = super().read(n)
        self._check()
        return data

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        self._check()
        return n


def test_connection_dropped_mid_seal(office: Office, pg_cluster: Cluster) -> None:
    clerk = office.as_("clerk")
    kept = clerk.seal(io.BytesIO(b"before"), level="INTERNAL", compartments=["STAFF"]).id
    docs, versions = office.raw.doc_ids(), _chunk_versions(pg_cluster, office.location)
    source = _KillWhileEncrypting(b"\x5a" * (3 << 20),
                                  lambda: _kill_app_sessions(pg_cluster, office.location),
                                  at=(3 << 20) // 2)
    with pytest.raises(StorageError, match="cannot write document") as caught:
        clerk.seal(source, level="INTERNAL", compartments=["STAFF"])
    assert source.killed
    assert "terminating connection" in caught.value.message
    # Nothing half-written: no document, no stray chunk.
    assert office.raw.doc_ids() == docs
    assert _chunk_versions(pg_cluster, office.location) == versions
    # The attempt is on the record, and so is its failure after the decision ...
    records = list(office.as_("officer").audit.records())
    assert [(r.actor, r.action, r.outcome) for r in records[-2:]] == [
        ("clerk", "seal", "allowed"), ("clerk", "seal", "failed")]
    assert records[-1].request == records[-2].request
    # ... and the vault carries on, on new connections.
    out = io.BytesIO()
    clerk.open(kept, out)
    assert out.getvalue() == b"before"
    assert office.as_("officer").doctor().ok


def test_server_restart_mid_append(office: Office, pg_cluster: Cluster) -> None:
    officer = office.as_("officer")
    before = officer.verify_audit().size
    docs = office.raw.doc_ids()
    dbname = dbname_of(office.location)
    failure: list[BaseException] = []

    def seal() -> None:
        try:
            office.as_("clerk").seal(io.BytesIO(b"never"), level="INTERNAL",
                                     compartments=["STAFF"])
        except BaseException as e:
            failure.append(e)

    with pg_cluster.connect(dbname=dbname) as admin:
        # Hold the append lock, so the seal's audit transaction is open and
        # waiting inside the server when the server goes down.
        admin.execute("SELECT pg_advisory_lock(%s)", (AUDIT_LOCK,))
        worker = threading.Thread(target=seal)
        worker.start()
        for _ in range(200):
            waiting = pg_cluster.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s"
                " AND wait_event_type = 'Lock' AND wait_event = 'advisory'", (dbname, APP))
            if waiting[0][0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the append never reached the lock")
        pg_cluster.restart()
    worker.join(30)
    assert not worker.is_alive()
    assert len(failure) == 1 and isinstance(failure[0], AuditWriteError), failure
    assert "not durable" in failure[0].message and failure[0].hint
    # Fail closed: no record, so no document.
    assert office.raw.doc_ids() == docs
    report = office.as_("officer").verify_audit()
    assert report.size == before and report.hashes_ok
    # After the restart everything works again, on fresh connections.
    office.as_("clerk").seal(io.BytesIO(b"after"), level="INTERNAL", compartments=["STAFF"])
    records = list(office.as_("officer").audit.records())
    assert office.as_("officer").verify_audit().size == len(records) > before
    new = [(r.action, r.outcome) for r in records[before:] if r.action == "seal"]
    assert new == [("seal", "allowed"), ("seal", "done")]


def test_a_short_lock_wait_the_role_gives_itself_fails_no_honest_work(
        office: Office, pg_cluster: Cluster) -> None:
    # Anyone holding the shared role ran ALTER ROLE CURRENT_USER SET
    # lock_timeout = '1ms' once and left: from then on honest workstations
    # that met on a lock failed ("gave up after 1ms"), for good. Every
    # session now sets its own wait, as it sets the other settings.
    import psycopg

    from vault.store._pg_conn import LOCK_TIMEOUT, Database

    with psycopg.connect(pg_cluster.dsn(APP, dbname_of(office.location)),
                         autocommit=True) as intruder:
        intruder.execute("ALTER ROLE CURRENT_USER SET lock_timeout = '1ms'")
    try:
        db = Database.get(office.location)
        db.close()  # new sessions only, as on every other workstation
        with db.connection() as conn:
            row = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
        assert row == (f"{LOCK_TIMEOUT}s",)
        # A location whose options set another setting ending in the same
        # name (deadlock_timeout, or an application's own such as
        # app.lock_timeout) is no location that sets its own wait.
        other = Database.get(office.location + "&options=-c%20app.lock_timeout%3D1ms")
        with other.connection() as conn:
            row = conn.execute("SELECT current_setting('lock_timeout'),"
                               " current_setting('app.lock_timeout')").fetchone()
        assert row == (f"{LOCK_TIMEOUT}s", "1ms")
        other.close()
        # Another workstation holds the append lock for a moment: the seal
        # waits for it instead of failing.
        with psycopg.connect(pg_cluster.dsn(APP, dbname_of(office.location)),
                             autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", (AUDIT_LOCK,))
            timer = threading.Timer(0.5, other.execute, ("SELECT pg_advisory_unlock_all()",))
            timer.start()
            try:
                doc = office.as_("clerk").seal(io.BytesIO(b"memo"), level="INTERNAL",
                                               compartments=["STAFF"]).id
            finally:
                timer.join()
        out = io.BytesIO()
        office.as_("clerk").open(doc, out)
        assert out.getvalue() == b"memo"
    finally:
        pg_cluster.execute(f"ALTER ROLE {APP} RESET lock_timeout")
