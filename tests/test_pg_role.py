"""What one PostgreSQL application role can do to the other workstations
(THREAT-MODEL.md §6): plant an actor under someone else's key, hold the
vault's locks, flood the statements table, cut the others' sessions -- and
how each ends in a clear answer rather than a false alarm, a hang or
exhausted memory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from backends import FolderKind, PostgresKind
from office import Office, make_office
from pg_support import APP, OWNER, SUPER, Cluster, dbname_of
from vault_helpers import PEOPLE, office_policy

import vault
from vault._ops.migrate import move_vault
from vault._primitives import raw_public
from vault.errors import DeniedError
from vault.store._pg_conn import Database
from vault.store._pg_schema import AUDIT_LOCK, STEPS, VERSION, WRITE_LOCK, schema_problems
from vault.store.postgres import migrate_schema


def _app_sql(office: Office, sql: str, *params: object) -> None:
    """``sql`` as the application role every workstation holds."""
    cluster: Cluster = office.kind.cluster  # type: ignore[attr-defined]
    with psycopg.connect(cluster.dsn(APP, dbname_of(office.location)), autocommit=True) as c:
        c.execute(sql, params)


# -- an actor planted under an honest user's key -----------------------------------


def test_an_actor_planted_under_an_honest_key_neither_blocks_nor_forges(
        office: Office) -> None:
    new_key = vault.new_identity("leader")
    raw = raw_public(new_key.signing_key.public_key())  # public: it goes in the policy
    key_hash = hashlib.sha256(raw).hexdigest()
    if office.kind.name == "postgres":
        with pytest.raises(psycopg.errors.CheckViolation):
            _app_sql(office, "INSERT INTO vault.actors VALUES (%s, %s)", key_hash,
                     os.urandom(32))
    else:  # a folder writer can plant the file: it is not believed, and replaced
        (Path(office.location) / "actors" / f"{key_hash}.pub").write_bytes(os.urandom(32))
    with vault.Vault(office.location, new_key) as v, pytest.raises(DeniedError):
        v.ls()  # an unknown actor, on the record
    with office.as_("officer") as officer:
        report = officer.verify_audit()  # no false alarm of a forged record
        assert report.signatures == report.size
        assert officer.doctor().ok
    office.ids["leader"] = new_key
    office.apply({})
    with vault.Vault(office.location, new_key) as v:
        assert v.actor == "leader"


def test_the_migration_drops_actors_whose_hash_is_not_their_key(pg_cluster: Cluster) -> None:
    app = pg_cluster.new_database(schema=False)
    name = dbname_of(app)
    owner = pg_cluster.dsn(OWNER, name)
    assert migrate_schema(owner, target=12) == (0, 12)
    good = os.urandom(32)
    planted = hashlib.sha256(os.urandom(32)).hexdigest()
    pg_cluster.execute("INSERT INTO vault.actors VALUES (%s, %s), (%s, %s)",
                       (hashlib.sha256(good).hexdigest(), good, planted, os.urandom(32)),
                       dbname=name, user=OWNER)
    assert migrate_schema(owner, grant=[APP]) == (12, VERSION)
    rows = pg_cluster.execute("SELECT key_hash, public_key FROM vault.actors", dbname=name,
                              user=OWNER)
    assert [(h, bytes(k)) for h, k in rows] == [(hashlib.sha256(good).hexdigest(), good)]
    with pytest.raises(psycopg.errors.CheckViolation):
        pg_cluster.execute("INSERT INTO vault.actors VALUES (%s, %s)", (planted, good),
                           dbname=name, user=APP)


# -- locks held for ever by another session -------------------------------------------


@pytest.fixture
def pg_office(tmp_path: Path, pg_cluster: Cluster) -> Office:
    return make_office(tmp_path / "office", PostgresKind(pg_cluster))


def _intruder(office: Office, *, autocommit: bool) -> psycopg.Connection[Any]:
    cluster: Cluster = office.kind.cluster  # type: ignore[attr-defined]
    return psycopg.connect(cluster.dsn(APP, dbname_of(office.location)),
                           autocommit=autocommit, application_name="intruder")


def _vault(office: Office, who: str, *args: str, wait: str = "1",
           out: bool = False) -> tuple[int, str, float]:
    if args[0] == "open":
        args = (*args, "-o", tempfile.mkdtemp(dir=office.root))
    return _run(office.location, office.files[who], office.root, *args, wait=wait, out=out)


def _run(location: str, identity: Path, cwd: Path, *args: str,
         wait: str = "1", out: bool = False) -> tuple[int, str, float]:
    """``vault ARGS`` in a process of its own, waiting ``wait`` seconds for
    a lock; a hang fails the test (the timeout), it does not stall it.
    Gives back what it wrote to stderr (with ``out``: stdout and stderr)."""
    env = dict(os.environ, VAULT_PG_LOCK_TIMEOUT=wait)
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "vault_cli.main", "--vault", location,
                        "--identity", str(identity), *args], capture_output=True,
                       text=True, timeout=60, env=env, cwd=cwd)
    return p.returncode, p.stdout + p.stderr if out else p.stderr, time.monotonic() - started


_HOLDS = {
    "the append lock": (f"SELECT pg_advisory_lock({AUDIT_LOCK})", True),
    "the write lock": (f"SELECT pg_advisory_lock({WRITE_LOCK})", True),
    "an uncommitted next audit line": (
        "INSERT INTO vault.audit_log SELECT max(seq) + 1, convert_to(format("
        "'{\"v\":2,\"seq\":%s}', max(seq) + 1), 'UTF8') FROM vault.audit_log", False),
    "a table lock": ("LOCK TABLE vault.documents IN ACCESS EXCLUSIVE MODE", False),
}


@pytest.mark.parametrize("hold", list(_HOLDS))
def test_a_lock_held_for_ever_is_a_clear_error_naming_its_holder(pg_office: Office,
                                                                hold: str) -> None:
    office = pg_office
    doc = office.as_("clerk").seal(io.BytesIO(b"kept"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    before = office.as_("officer").verify_audit().size
    sql, autocommit = _HOLDS[hold]
    with _intruder(office, autocommit=autocommit) as conn:
        conn.execute(sql)
        pid = conn.info.backend_pid
        for args in (("open", doc), ("seal", "--level", "INTERNAL", "--compartment",
                                           "STAFF", str(office.file("new.txt", b"new")))):
            code, err, took = _vault(office, "leader", *args)
            blocked = hold != "the write lock" or args[0] == "seal"  # open takes no write lock
            if not blocked:
                assert code == 0, err
                continue
            assert code == 1, err
            assert f"pid {pid} (application 'intruder')" in err and "gave up after 1s" in err, err
            assert "pg_terminate_backend" in err and took < 30
            assert all(line.startswith(("vault: ", "hint: ", "waiting for"))
                       for line in err.splitlines()), err
    # The holder gone, everything works, and the log verifies: each attempt
    # that could be recorded is on the record, and nothing else happened.
    code, err, _ = _vault(office, "leader", "open", doc, wait="30")
    assert code == 0, err
    with office.as_("officer") as officer:
        report = officer.verify_audit()
        assert report.size > before and not report.findings
        assert officer.doctor().ok


_ROW_LOCKS = {
    "its row": "SELECT 1 FROM vault.documents WHERE id = %s FOR UPDATE",
    # Its header's chunk, which deleting the row deletes: the shred was
    # recorded, then the delete gave up (exit 4, every wrapped key kept).
    "its header's chunk": "SELECT 1 FROM vault.document_chunks c JOIN vault.documents d"
                          " ON d.vid = c.vid WHERE d.id = %s AND c.n = 0 FOR KEY SHARE OF c",
}


@pytest.mark.parametrize("held", list(_ROW_LOCKS))
def test_a_document_row_held_locked_is_no_shred_the_log_calls_done_quietly(
        pg_office: Office, held: str) -> None:
    # The role holds the document's row locked (SELECT ... FOR UPDATE in a
    # transaction it never ends). Once the shred was recorded done, then its
    # DELETE gave up: the version stayed, with every wrapped file key. Now
    # the shred locks the row and its chunks before its record: the wait
    # runs out first, naming the holder, nothing is recorded done and the
    # document stays.
    office = pg_office
    board = office.as_("leader").seal(io.BytesIO(b"board minutes"), level="SECRET",
                                      compartments=["BOARD"]).id
    ((version,),) = [(v,) for d, v in office.raw.doc_files() if d == board]
    with _intruder(office, autocommit=False) as conn:
        conn.execute(_ROW_LOCKS[held], (board,))
        code, err, _ = _vault(office, "leader", "shred", board, "--justification", "spent")
        assert code == 1, err
        assert f"cannot delete document {board}: gave up after 1s" in err, err
        assert "nothing was changed" in err and "recorded" not in err, err
        # The holder named, never the command's own session (its write lock):
        # "end it" once pointed at the honest shred.
        assert f"pid {conn.info.backend_pid} (application 'intruder')" in err, err
        assert "application 'vault'" not in err, err
        assert (board, version) in office.raw.doc_files()
    out = io.BytesIO()
    office.as_("leader").open(board, out)  # still live: no shred on the record
    assert out.getvalue() == b"board minutes"
    code, err, _ = _vault(office, "leader", "shred", board, "--justification", "spent")
    assert code == 0, err
    assert (board, version) not in office.raw.doc_files()
    assert office.as_("officer").doctor().ok


def _start(office: Office, who: str, *args: str) -> subprocess.Popen[str]:
    """``vault ARGS`` started in a process of its own (a lock wait of 30 s)."""
    env = dict(os.environ, VAULT_PG_LOCK_TIMEOUT="30")
    return subprocess.Popen([sys.executable, "-m", "vault_cli.main", "--vault",
                             office.location, "--identity", str(office.files[who]), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=office.root)


def _waits_on_a_document_row(conn: psycopg.Connection[Any], holder: int) -> None:
    """Until another session waits for a lock the holder has on vault.documents."""
    for _ in range(1200):
        if conn.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND %s = ANY (pg_blocking_pids(pid))"
                        " AND query ILIKE '%%vault.documents%%'", (holder,)).fetchone():
            return
        time.sleep(0.05)
    raise AssertionError("no session waited for the document's row")


def test_a_shred_or_repair_raced_by_a_renamed_row_destroys_it_or_says_so(
        pg_office: Office) -> None:
    # The role locks the document's row, lets the shred queue behind it,
    # renames the row's tag and commits: the shred's DELETE matched nothing
    # and it said "shredded", the version -- every wrapped file key -- still
    # stored under the new tag; each 'doctor --repair' said "removed" while
    # the role renamed it again. Now a version's id and tag never change
    # (schema version 21), and the shred deletes the row it locked.
    office = pg_office
    cluster: Cluster = office.kind.cluster  # type: ignore[attr-defined]
    name = dbname_of(office.location)
    board = office.as_("leader").seal(io.BytesIO(b"board minutes: merger"), level="SECRET",
                                      compartments=["BOARD"]).id
    ((version,),) = [(v,) for d, v in office.raw.doc_files() if d == board]
    kept = cluster.execute("SELECT id, tag, vid, size FROM vault.documents WHERE id = %s",
                           (board,), dbname=name, user=OWNER)
    chunks = cluster.execute("SELECT vid, n, data FROM vault.document_chunks WHERE vid = %s",
                             (kept[0][2],), dbname=name, user=OWNER)

    def raced(*args: str) -> tuple[int, str]:
        with _intruder(office, autocommit=False) as conn, _intruder(
                office, autocommit=True) as watch:
            conn.execute("SELECT 1 FROM vault.documents WHERE id = %s FOR UPDATE", (board,))
            p = _start(office, *args)
            try:
                _waits_on_a_document_row(watch, conn.info.backend_pid)
                with pytest.raises(psycopg.errors.IntegrityConstraintViolation,
                                   match="never renamed"):
                    conn.execute("UPDATE vault.documents SET tag = '00000000' WHERE id = %s",
                                 (board,))
                conn.rollback()
                out, err = p.communicate(timeout=120)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        return p.returncode, out + err

    code, out = raced("leader", "shred", board, "--justification", "spent")
    assert code == 0 and f"shredded {board}" in out, out
    assert cluster.execute("SELECT id, tag FROM vault.documents WHERE id = %s", (board,),
                           dbname=name, user=OWNER) == []
    assert cluster.execute("SELECT n FROM vault.document_chunks WHERE vid = %s",
                           (kept[0][2],), dbname=name, user=OWNER) == []
    # The version comes back (a backup restored by the owner): the repair
    # destroys it, raced the same way, and says so only once it has.
    cluster.execute("INSERT INTO vault.documents (id, tag, vid, size) VALUES (%s, %s, %s, %s)",
                    kept[0], dbname=name, user=OWNER)
    for row in chunks:
        cluster.execute("INSERT INTO vault.document_chunks (vid, n, data) VALUES (%s, %s, %s)",
                        row, dbname=name, user=OWNER)
    leftover = f"docs/{board}.{version}.age: a version of shredded document {board} is still " \
               "stored"
    with _intruder(office, autocommit=False) as conn:  # held: the repair names it
        conn.execute("SELECT 1 FROM vault.documents WHERE id = %s FOR UPDATE", (board,))
        code, out, _ = _vault(office, "officer", "doctor", "--repair", out=True)
        assert code == 4 and f"{leftover}; the repair could not destroy it" in out, out
        assert "removed" not in out, out
    code, out = raced("officer", "doctor", "--repair")
    assert code == 0 and f"removed docs/{board}.{version}.age" in out, out
    assert cluster.execute("SELECT id, tag FROM vault.documents WHERE id = %s", (board,),
                           dbname=name, user=OWNER) == []
    assert cluster.execute("SELECT n FROM vault.document_chunks WHERE vid = %s",
                           (kept[0][2],), dbname=name, user=OWNER) == []
    assert office.as_("officer").doctor().ok
    # Nor can a chunk move to another version, where a shred would not find it.
    with _intruder(office, autocommit=True) as c:
        (a, b) = (int(c.execute("SELECT vid FROM vault.documents WHERE id = %s",
                                (_seal(office, "clerk", data),)).fetchone()[0])  # type: ignore[index]
                  for data in (b"one", b"two"))
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="never moved"):
            c.execute("UPDATE vault.document_chunks SET vid = %s, n = n + 1000 WHERE vid = %s",
                      (b, a))


def test_the_lock_wait_is_configured_by_the_environment(pg_office: Office) -> None:
    with _intruder(pg_office, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (AUDIT_LOCK,))
        code, err, took = _vault(pg_office, "leader", "ls", wait="3")
        assert code == 1 and "gave up after 3s" in err and 3 <= took < 30, err
        code, err, _ = _vault(pg_office, "leader", "ls", wait="soon")
        assert code == 2 and "VAULT_PG_LOCK_TIMEOUT must be a number" in err, err


def test_audit_lines_inserted_without_the_append_lock_fail_no_honest_append(
        pg_office: Office) -> None:
    # The role inserts the next audit line in a loop, each a record the
    # schema accepts, never taking the append lock: every workstation's
    # append failed ("audit record 368 is not the next one (375)") for as
    # long as the loop ran -- and no lock was held, so no wait ran out to
    # name it. Every insert takes the lock now (schema 19): the loop's wait
    # for a writer's turn, a writer's for the loop's one-line transaction.
    _seal(pg_office, "clerk", b"before")
    insert, _ = _HOLDS["an uncommitted next audit line"]
    stop, inserted = threading.Event(), [0]

    def insider() -> None:
        with _intruder(pg_office, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute(insert)
                    inserted[0] += 1
                except psycopg.errors.IntegrityConstraintViolation:
                    pass  # a writer's line came first: the next one, then

    thread = threading.Thread(target=insider)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while inserted[0] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = inserted[0]
        docs = [_seal(pg_office, "leader", b"honest %d" % i) for i in range(6)]
        assert inserted[0] > before > 0  # the loop ran all along
    finally:
        stop.set()
        thread.join()
    with pg_office.as_("leader") as v:
        out = io.BytesIO()
        v.open(docs[-1], out)
        assert out.getvalue() == b"honest 5"


# -- a flood of statements ---------------------------------------------------------------

_PEAK = """
import resource, sys
import vault
from vault.identity import load_identity

v = vault.Vault(sys.argv[1], load_identity(sys.argv[2]))
v.ls()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pending = v.approvals()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(pending), (after - before) // 1024)
"""


def test_a_flood_of_statements_does_not_multiply_an_approvers_memory(
        pg_office: Office) -> None:
    rows = 40  # of 1 MiB each, which the table allows in any number
    # Each row named by its bytes' SHA-256, as the database asks (schema 14).
    _app_sql(pg_office, "INSERT INTO vault.statements SELECT 'request',"
             " encode(sha256(d), 'hex'), d FROM (SELECT convert_to('{\"x\":\"' ||"
             " repeat('A', 1048550) || i || '\"}', 'UTF8') AS d"
             " FROM generate_series(1, %s::int) i) AS rows", rows)
    p = subprocess.run([sys.executable, "-c", _PEAK, pg_office.location,
                        str(pg_office.files["leader"])], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    pending, grown_mib = map(int, p.stdout.split())
    assert pending == 0  # none of it is a signed request
    assert grown_mib < rows // 2, f"approvals grew by {grown_mib} MiB"


def test_a_flood_of_signed_requests_does_not_multiply_an_approvers_memory(
        pg_office: Office) -> None:
    # Valid requests this time, each signed with a key of the role's own (in
    # no policy) and bloated with 1,000 classes: 'vault approvals' kept every
    # one it read before filtering, about 3 times the table's size (312 MiB
    # for 107 MiB). Now it keeps only requests whose requester's key is
    # the policy's.
    import secrets

    from vault._trust.requests import new_request

    with pg_office.as_("clerk") as v:
        vault_id = v._s.manifest.vault_id
    me = vault.new_identity("mallory")
    total = 0
    with _intruder(pg_office, autocommit=False) as c:
        for _ in range(1000):
            data = new_request(me, vault=vault_id, action="rotate", doc=None, state=None,
                               label=None, new_label=None,
                               details={"classes": sorted(secrets.token_hex(16)
                                                          for _ in range(1000))},
                               justification="J" * 2000, requester="mallory",
                               policy=secrets.token_hex(32)).to_bytes()
            total += len(data)
            c.execute("INSERT INTO vault.statements (kind, name, data) VALUES ('request', %s,"
                      " %s)", (hashlib.sha256(data).hexdigest(), data))
        c.commit()
    p = subprocess.run([sys.executable, "-c", _PEAK, pg_office.location,
                        str(pg_office.files["leader"])], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    pending, grown_mib = map(int, p.stdout.split())
    assert pending == 0
    assert grown_mib < (total >> 20) // 4, f"approvals grew by {grown_mib} MiB of {total >> 20}"


# -- sessions cut by another ------------------------------------------------------------


def test_a_cut_session_leaves_only_the_vaults_message_on_stderr(pg_office: Office) -> None:
    office = pg_office
    doc = office.as_("clerk").seal(io.BytesIO(b"kept"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    with _intruder(office, autocommit=True) as conn:  # one role: it may cut the others
        conn.execute("SELECT pg_advisory_lock(%s)", (AUDIT_LOCK,))
        victim = subprocess.Popen(
            [sys.executable, "-m", "vault_cli.main", "--vault", office.location, "--identity",
             str(office.files["leader"]), "open", doc, "-o", str(office.root)],
            env=dict(os.environ, VAULT_PG_LOCK_TIMEOUT="30"), stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL, text=True)
        try:
            # Its audit append waits for the lock, in a pipeline: cut it there.
            deadline = time.monotonic() + 30
            waiting: list[tuple[Any, ...]] = []
            while not waiting and time.monotonic() < deadline:
                time.sleep(0.1)
                waiting = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                    " application_name = 'vault' AND wait_event_type = 'Lock'").fetchall()
            assert waiting
            _, err = victim.communicate(timeout=60)
        finally:
            victim.kill()
    assert victim.returncode == 1
    assert "audit record not durable" in err
    assert all(line.startswith(("vault: ", "hint: ")) for line in err.splitlines()), err


def test_one_login_role_per_workstation_in_a_group_role(pg_cluster: Cluster,
                                                        tmp_path: Path) -> None:
    # DEPLOYMENT.md §2: the grants go to a NOLOGIN group role; each
    # workstation logs in as a member. The vault works the same, and no
    # workstation can cut another's sessions any more.
    app = pg_cluster.new_database(schema=False)
    name = dbname_of(app)
    group, one, two = (f"{name}_{r}" for r in ("apps", "ws1", "ws2"))
    pg_cluster.execute(f"CREATE ROLE {group} NOLOGIN")
    for role in (one, two):
        pg_cluster.execute(f"CREATE ROLE {role} LOGIN IN ROLE {group}")
    migrate_schema(pg_cluster.dsn(OWNER, name), grant=[group], checkpoint_key=True)
    ids = {n: vault.new_identity(n) for n in PEOPLE}
    policy = tmp_path / "p.yaml"
    policy.write_text(office_policy(ids, [vault.new_identity("recovery").recipient]))
    first, second = pg_cluster.dsn(one, name), pg_cluster.dsn(two, name)
    vault.Vault.init(first, policy, ids["officer"]).close()
    with vault.Vault(first, ids["clerk"]) as v:
        doc = v.seal(io.BytesIO(b"kept"), level="INTERNAL", compartments=["STAFF"]).id
    with vault.Vault(second, ids["leader"]) as v:
        out = io.BytesIO()
        v.open(doc, out)
        assert out.getvalue() == b"kept"
    with vault.Vault(second, ids["officer"]) as v:
        assert v.verify_audit().size and v.doctor().ok
    with psycopg.connect(first, application_name="ws1", autocommit=True) as c1, \
            psycopg.connect(second, application_name="ws2", autocommit=True) as c2:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c1.execute("SELECT pg_terminate_backend(%s)", (c2.info.backend_pid,))
        # Locks still cross roles: a wait that runs out names the holder.
        c1.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))
        ids["clerk"].to_file(tmp_path / "clerk.key", None)
        (tmp_path / "note.txt").write_bytes(b"a note")
        code, err, _ = _run(second, tmp_path / "clerk.key", tmp_path, "seal", "--level",
                            "INTERNAL", "--compartment", "STAFF", str(tmp_path / "note.txt"))
        assert code == 1 and f"pid {c1.info.backend_pid} (application 'ws1')" in err, err


def test_a_planted_actor_file_is_not_moved_into_postgresql(tmp_path: Path,
                                                          pg_cluster: Cluster) -> None:
    office = make_office(tmp_path / "office")
    with pytest.raises(DeniedError):  # a stranger's attempt: their key is registered
        vault.Vault(office.location, vault.new_identity("mallory")).ls()
    planted = hashlib.sha256(os.urandom(32)).hexdigest()
    (Path(office.location) / "actors" / f"{planted}.pub").write_bytes(os.urandom(32))
    destination = pg_cluster.new_database()
    report = move_vault(office.location, destination, office.ids["officer"])
    # Only the stranger's key, which their record names: a file no record
    # names is not moved, whatever it holds.
    assert report.actors == 1
    assert planted not in {h for h, in pg_cluster.execute(
        "SELECT key_hash FROM vault.actors", dbname=dbname_of(destination))}


# -- rows that would take what the others need (schema 14) ------------------------------


def _seal(office: Office, who: str, data: bytes) -> str:
    with office.as_(who) as v:
        return v.seal(io.BytesIO(data), filename="m.bin", level="INTERNAL",
                      compartments=["STAFF"]).id


def test_document_version_numbers_cannot_be_taken_ahead(pg_office: Office) -> None:
    # The role draws a number, then plants rows under the next ones: every
    # later seal would find its number taken. The database refuses a number
    # not yet drawn, and a number once given is never changed.
    with _intruder(pg_office, autocommit=True) as c:
        (n,) = c.execute("SELECT nextval('vault.document_versions')").fetchone()  # type: ignore[misc]
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="not drawn"):
            c.execute("INSERT INTO vault.documents (id, tag, vid, size) SELECT"
                      " 'aaaaaaaaaaaaaaaa', lpad(to_hex(i::int), 8, '0'), i, 0"
                      " FROM generate_series(%s::bigint + 1, %s::bigint + 1000) i", (n, n))
        c.execute("INSERT INTO vault.documents (id, tag, vid, size)"
                  " VALUES ('aaaaaaaaaaaaaaaa', '00000000', %s, 0)", (n,))  # its own: allowed
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="never changed"):
            c.execute("UPDATE vault.documents SET vid = vid + 1 WHERE vid = %s", (n,))
    small = _seal(pg_office, "clerk", b"notice")
    large = _seal(pg_office, "leader", os.urandom(3 << 20))  # several chunks
    out = io.BytesIO()
    pg_office.as_("clerk").open(small, out)
    assert out.getvalue() == b"notice"
    with pg_office.as_("leader") as v:
        assert {small, large} <= {d.id for d in v.ls()}
        problems = v.doctor().problems  # the role's own row only, named as planted
        assert len(problems) == 1 and "aaaaaaaaaaaaaaaa" in problems[0], problems



def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def _torn_row(seq: int, lines: list[bytes]) -> bytes:
    """An unsigned "torn" row naming ``lines`` (the rows just before it):
    enough for the schema's commit-time check, no record to any reader."""
    return _canonical({"v": 2, "seq": seq, "action": "torn", "fragments": [
        {"length": len(x), "seq": seq - len(lines) + i,
         "sha256": hashlib.sha256(x).hexdigest()}
        for i, x in enumerate(lines)]})


def test_records_planted_ahead_of_their_lines_are_refused(pg_office: Office) -> None:
    # The role copied the last record twice, numbered 1,000 lines ahead, and
    # added an unsigned torn row naming both (the commit-time check was
    # content): every reader found records out of place ("line N holds
    # record N+1000"), every deciding command exited 4 on every machine, an
    # incident was refused and the lines could never be put back (DELETE is
    # refused even to the owner). Such a row is refused now (schema 20): no
    # row is ever removed here, so no record can be numbered ahead of its row.
    doc = _seal(pg_office, "clerk", b"payroll")
    with _intruder(pg_office, autocommit=True) as c:
        (n,) = c.execute("SELECT count(*) FROM vault.audit_log").fetchone()  # type: ignore[misc]
        (last,) = c.execute("SELECT line FROM vault.audit_log WHERE seq = %s",
                            (n - 1,)).fetchone()  # type: ignore[misc]
        record = json.loads(bytes(last))
        unsigned = {k: v for k, v in record.items() if k != "sig"}
        # As planted; with "\u0000", JSON the server stores but cannot read
        # members of; numbered beyond any bigint; one line ahead, unsigned.
        for number, base in ((n + 1000, record), (n + 1000, {**record, "reason": "\x00"}),
                             (10 ** 40, record), (n + 1, unsigned)):
            planted = [_canonical({**base, "seq": number + i}) for i in range(2)]
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation,
                               match=f"audit line {n} holds a record numbered"
                                     r" \d+, ahead of its line"), c.transaction():
                for i, line in enumerate([*planted, _torn_row(n + 2, planted)]):
                    c.execute("INSERT INTO vault.audit_log VALUES (%s, %s)", (n + i, line))
        # A huge number in JSON's exponent form is ahead too.
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="ahead"):
            c.execute("INSERT INTO vault.audit_log VALUES (%s, %s)",
                      (n, bytes(last).replace(b'"seq":%d' % (n - 1), b'"seq":1e999999')))
        # A copy numbered below its row -- its number read in place -- is
        # still set aside as any line that is no record there.
        with c.transaction():
            c.execute("INSERT INTO vault.audit_log VALUES (%s, %s), (%s, %s)",
                      (n, bytes(last), n + 1, _torn_row(n + 1, [bytes(last)])))
    for who in ("clerk", "officer"):
        r = pg_office.cli(who, "open", doc, "-o", str(pg_office.root / f"out-{who}"))
        assert r.exit_code == 0, r.output
        assert (pg_office.root / f"out-{who}").read_bytes() == b"payroll"
    with pg_office.as_("officer") as v:
        assert v.doctor().ok
        assert not v.verify_audit().findings


def test_a_folder_log_with_a_record_numbered_ahead_moves_and_no_role_plants_one_after(
        tmp_path: Path, pg_cluster: Cluster) -> None:
    # Only tampering leaves one in a folder (a copy of a later record, set
    # aside there as a stray line). The database refused it, and the vault
    # could never move there (lines are never removed): the move takes it
    # now, as the folder's readers read it, and the application role still
    # cannot add one to the moved log.
    office = make_office(tmp_path / "a", FolderKind())
    log = office.path / "audit" / "log"
    lines = log.read_bytes().split(b"\n")[:-1]
    planted = _canonical({**json.loads(lines[-1]), "seq": len(lines) + 7})
    with open(log, "ab") as f:
        f.write(planted + b"\n")
    _seal(office, "clerk", b"staff notes")  # sets the stray line aside
    assert office.as_("officer").doctor().ok
    pg = pg_cluster.new_database()
    move_vault(office.location, pg, office.ids["officer"])
    rows = pg_cluster.execute("SELECT line FROM vault.audit_log WHERE seq = %s",
                              (len(lines),), dbname=dbname_of(pg), user=OWNER)
    assert [bytes(r[0]) for r in rows] == [planted]
    with psycopg.connect(pg_cluster.dsn(APP, dbname_of(pg)), autocommit=True) as c:
        (n,) = c.execute("SELECT count(*) FROM vault.audit_log").fetchone()  # type: ignore[misc]
        again = _canonical({**json.loads(lines[-1]), "seq": n + 7})
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation,
                           match=f"audit line {n} holds a record numbered {n + 7}, ahead of "
                                 "its line"), c.transaction():
            c.execute("INSERT INTO vault.audit_log VALUES (%s, %s), (%s, %s)",
                      (n, again, n + 1, _torn_row(n + 1, [again])))
    with vault.Vault(pg, office.ids["officer"]) as v:
        assert v.doctor().ok


def test_the_migration_drops_version_numbers_taken_ahead(pg_cluster: Cluster) -> None:
    app = pg_cluster.new_database(schema=False)
    name = dbname_of(app)
    owner = pg_cluster.dsn(OWNER, name)
    assert migrate_schema(owner, target=13) == (0, 13)
    pg_cluster.execute("SELECT nextval('vault.document_versions')", dbname=name, user=OWNER)
    pg_cluster.execute("INSERT INTO vault.documents (id, tag, vid, size) VALUES"
                       " ('aaaaaaaaaaaaaaaa', '00000001', 1, 0),"
                       " ('aaaaaaaaaaaaaaaa', '00000002', 2, 0),"
                       " ('aaaaaaaaaaaaaaaa', '00000003', 9000000000000000000, 0)",
                       dbname=name, user=OWNER)
    assert migrate_schema(owner, grant=[APP]) == (13, VERSION)
    rows = pg_cluster.execute("SELECT vid FROM vault.documents", dbname=name, user=OWNER)
    assert [int(r[0]) for r in rows] == [1]


def test_statements_and_checkpoints_are_held_to_their_bounds(pg_office: Office) -> None:
    # A statement is named by its bytes' SHA-256: nobody plants junk under
    # the name a genuine one will take. A checkpoint note is at most 64 KiB.
    with pytest.raises(psycopg.errors.CheckViolation):
        _app_sql(pg_office, "INSERT INTO vault.statements VALUES ('approval', %s, 'junk')",
                 hashlib.sha256(b"something else").hexdigest())
    with pytest.raises(psycopg.errors.CheckViolation):
        _app_sql(pg_office, "INSERT INTO vault.audit_checkpoints VALUES"
                 " (1, convert_to(repeat('x', 65537), 'UTF8'))")


# -- what the role could still write (schema 15) ---------------------------------------


def test_two_sessions_racing_one_line_number_cannot_write_the_derived_hashes(
        pg_office: Office) -> None:
    # Session A inserts line N and holds its transaction open; session B
    # inserts another line N with ON CONFLICT DO NOTHING. B's tree trigger
    # waited for A's tree row and, once A committed, overwrote it with the
    # hashes of B's line, which itself was skipped: the derived hashes no
    # longer matched the log, for good, and only the owner could mend them.
    import json
    import threading

    _seal(pg_office, "clerk", b"notice")
    with _intruder(pg_office, autocommit=True) as a, \
            _intruder(pg_office, autocommit=True) as b:
        (n,) = a.execute("SELECT max(seq) + 1 FROM vault.audit_log").fetchone()  # type: ignore[misc]
        a.execute("BEGIN")
        a.execute("INSERT INTO vault.audit_log (seq, line) VALUES (%s, %s)",
                  (n, json.dumps({"v": 2, "seq": n}).encode()))
        refused: list[BaseException] = []

        def race() -> None:
            try:
                b.execute("INSERT INTO vault.audit_log (seq, line) VALUES (%s, %s)"
                          " ON CONFLICT DO NOTHING",
                          (n, json.dumps({"v": 2, "seq": n, "x": "other"}).encode()))
            except psycopg.errors.IntegrityConstraintViolation as e:
                refused.append(e)

        other = threading.Thread(target=race)
        other.start()
        time.sleep(0.5)  # B waits on A's tree row (from schema 19, on the append lock)
        a.execute("COMMIT")
        other.join(timeout=30)
        # From schema 19 B waits for the append lock A's insert took, and
        # its line is then no longer the next one: refused, before any tree row.
        assert len(refused) == 1 and "is not the next one" in str(refused[0]), refused
        line, tree = a.execute("SELECT l.line, t.hashes FROM vault.audit_log l JOIN"
                               " vault.audit_tree t USING (seq) WHERE seq = %s",
                               (n,)).fetchone()  # type: ignore[misc]
    assert bytes(tree)[:32] == hashlib.sha256(b"\x00" + bytes(line)).digest()
    _seal(pg_office, "clerk", b"after")
    with pg_office.as_("officer") as v:
        assert v.verify_audit().hashes_ok


def test_a_bloated_keyring_entry_is_refused(pg_office: Office) -> None:
    # The role may UPDATE keyring entries (deleting one is within its
    # rights); an entry of 256 MiB cost every reader of it 1.5 GB. The
    # database keeps entries to 64 KiB; a reader takes no more of one.
    _seal(pg_office, "clerk", b"notice")
    with _intruder(pg_office, autocommit=True) as c, \
            pytest.raises(psycopg.errors.CheckViolation, match="keyrings_entry_size"):
        c.execute("UPDATE vault.keyrings SET data = data || %s", (bytes(1 << 20),))


def test_defaults_the_role_gives_itself_stop_nobody(pg_office: Office, tmp_path: Path) -> None:
    # Anyone holding the shared application role can set its defaults for
    # every later session of every workstation: read-only transactions
    # stopped every seal and open until a database administrator reset
    # them, and a lock wait of a day let a held lock hang everyone. A limit
    # of 1 ms on an idle transaction ended every replay, verification and
    # long read ("internal error"), and SQL_ASCII made every text column
    # bytes: doctor found every document missing on an intact vault. A
    # library to load that does not exist failed every new session at its
    # start. (Superusers alone set session_preload_libraries: the role's
    # ALTER ROLE is refused.) A search path the role names is not used.
    from vault.store._pg_conn import IDLE_FLOOR, LOCK_TIMEOUT, Database

    cluster: Cluster = pg_office.kind.cluster  # type: ignore[attr-defined]
    _seal(pg_office, "clerk", b"before")
    with _intruder(pg_office, autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("ALTER ROLE CURRENT_USER SET session_preload_libraries = 'nosuchlib'")
        c.execute("ALTER ROLE CURRENT_USER SET local_preload_libraries = 'nosuchlib';"
                  " ALTER ROLE CURRENT_USER SET search_path = pg_temp, public;"
                  " ALTER ROLE CURRENT_USER SET default_transaction_read_only = on;"
                  " ALTER ROLE CURRENT_USER SET default_transaction_isolation = serializable;"
                  " ALTER ROLE CURRENT_USER SET statement_timeout = 1;"
                  " ALTER ROLE CURRENT_USER SET idle_session_timeout = 1;"
                  " ALTER ROLE CURRENT_USER SET standard_conforming_strings = off;"
                  " ALTER ROLE CURRENT_USER SET lock_timeout = '1d';"
                  " ALTER ROLE CURRENT_USER SET idle_in_transaction_session_timeout = 1;"
                  " ALTER ROLE CURRENT_USER SET client_encoding = 'SQL_ASCII'")
    db = Database.get(pg_office.location)
    db.close()  # new sessions only, as on every other workstation
    try:
        doc = _seal(pg_office, "leader", b"after" * 100_000)
        out = io.BytesIO()
        pg_office.as_("leader").open(doc, out)
        assert out.getvalue() == b"after" * 100_000
        with db.connection() as conn:
            row = conn.execute("SELECT current_setting('lock_timeout'),"
                               " current_setting('idle_in_transaction_session_timeout')"
                               ).fetchone()
        assert row == (f"{LOCK_TIMEOUT}s", f"{IDLE_FLOOR // 60}min")
        with db.connection() as conn:
            row = conn.execute("SELECT current_setting('search_path')").fetchone()
        assert row == ("pg_catalog,pg_temp",)
        # A machine that replays the log for the first time, verifies it
        # and runs doctor over the intact vault.
        with vault.Vault(pg_office.location, pg_office.ids["officer"],
                         state_dir=tmp_path / "new") as v:
            checked = v.verify_audit()
            assert checked.hashes_ok and not checked.findings, checked
            report = v.doctor()
            assert report.ok, (report.problems, report.leftovers)
    finally:
        cluster.execute(f"ALTER ROLE {APP} RESET ALL")


# Planner and JIT defaults the role gave itself: every operation of every
# workstation about 75 times slower (0.09 s to 6.8 s), for good.
_SLOW_PLANS = ("jit_above_cost = 0", "jit_inline_above_cost = 0", "jit_optimize_above_cost = 0",
               "force_parallel_mode = on", "parallel_setup_cost = 0",
               "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
               "max_parallel_workers_per_gather = 8", "jit = on", "enable_indexscan = off",
               "enable_bitmapscan = off", "enable_indexonlyscan = off",
               "random_page_cost = 1e9", "cpu_index_tuple_cost = 1e9",
               "plan_cache_mode = force_generic_plan", "geqo_threshold = 2")


def test_planner_defaults_the_role_gives_itself_slow_no_workstation(pg_office: Office) -> None:
    from vault.store._pg_conn import Database

    cluster: Cluster = pg_office.kind.cluster  # type: ignore[attr-defined]
    doc = _seal(pg_office, "clerk", b"before")
    with _intruder(pg_office, autocommit=True) as c:
        for setting in _SLOW_PLANS:
            c.execute(f"ALTER ROLE CURRENT_USER SET {setting}")
    db = Database.get(pg_office.location)
    db.close()  # new sessions only, as on every other workstation
    try:
        with db.connection() as conn:
            row = conn.execute(
                "SELECT current_setting('jit'), current_setting('force_parallel_mode'),"
                " current_setting('max_parallel_workers_per_gather'),"
                " current_setting('enable_indexscan'), current_setting('enable_bitmapscan'),"
                " current_setting('random_page_cost'), current_setting('plan_cache_mode')"
            ).fetchone()
            assert row == ("off", "off", "0", "on", "on", "4", "auto"), row
            (plan,) = conn.execute("EXPLAIN (FORMAT JSON) SELECT line FROM vault.audit_log"
                                   " WHERE seq = 0").fetchone() or (None,)
        top = plan[0]["Plan"]
        assert top["Node Type"] == "Index Scan" and "JIT" not in plan[0], plan
        with pg_office.as_("leader") as v:
            out = io.BytesIO()
            v.open(doc, out)
            assert out.getvalue() == b"before"
        # Each is set back in every session: nothing for doctor to name
        # but the one setting no session sets back.
        with pg_office.as_("officer") as v:
            assert v.doctor().problems == [
                f"database: geqo_threshold is set to 2 for role {APP} in every database:"
                " every session of it starts so, and the vault does not set it back -- reset"
                " it, or set it in the server's configuration (docs/DEPLOYMENT.md §3)"]
    finally:
        cluster.execute(f"ALTER ROLE {APP} RESET ALL")


def test_doctor_names_the_settings_of_the_database_and_its_roles(pg_office: Office) -> None:
    # What no session of the library sets back: a working memory of 64 kB
    # for every sort, a cache the planner thinks is one page.
    cluster: Cluster = pg_office.kind.cluster  # type: ignore[attr-defined]
    name = dbname_of(pg_office.location)
    _app_sql(pg_office, "ALTER ROLE CURRENT_USER SET work_mem = '64kB'")
    cluster.execute(f"ALTER DATABASE {name} SET effective_cache_size = 1", dbname=name,
                    user=OWNER)
    tail = (": every session of it starts so, and the vault does not set it back -- reset it,"
            " or set it in the server's configuration (docs/DEPLOYMENT.md §3)")
    try:
        with pg_office.as_("officer") as v:
            assert v.doctor().problems == [
                "database: effective_cache_size is set to 1 for every role in the vault's"
                f" database{tail}",
                f"database: work_mem is set to 64kB for role {APP} in every database{tail}"]
    finally:
        cluster.execute(f"ALTER ROLE {APP} RESET ALL")


def test_a_checkpoint_that_a_planted_note_keeps_out_is_reported(pg_office: Office) -> None:
    # The role stores a bogus note under the log's current size: the
    # officer's 'vault audit checkpoint' then printed its note and exited
    # 0, but stored nothing (the table is append-only). It still prints
    # the note, to keep outside, and says it was not stored.
    _seal(pg_office, "clerk", b"notice")
    with _intruder(pg_office, autocommit=True) as c:
        c.execute("INSERT INTO vault.audit_checkpoints (size, note) SELECT max(seq) + 1,"
                  " 'bogus' FROM vault.audit_log")
    r = pg_office.cli("officer", "audit", "checkpoint")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.count("\n") >= 3 and "\u2014 " in r.stdout  # a signed note
    assert "was not stored: another note of that size is in its place" in r.stderr
    _seal(pg_office, "clerk", b"later")
    r = pg_office.cli("officer", "audit", "checkpoint")  # one of another size: stored
    assert r.exit_code == 0 and r.stderr == "", r.stderr


def test_large_lines_the_role_plants_cost_readers_bounded_memory(
        pg_office: Office, tmp_path: Path) -> None:
    # Lines the schema takes for records, of 512 KiB each (the most a line
    # may hold): readers fetched 5,000 lines per round trip and held them
    # all -- a new machine's replay, doctor, verify and the next writer.
    # 60 of them (30 MB) here; before, each reader's peak of Python
    # allocations was about twice that.
    import json

    from test_audit_junk_memory import _peak as peak

    _seal(pg_office, "clerk", b"before")
    size = 512 * 1024
    with _intruder(pg_office, autocommit=True) as c:
        (head,) = c.execute("SELECT max(seq) + 1 FROM vault.audit_log").fetchone()  # type: ignore[misc]
        for i in range(60):
            prefix = json.dumps({"v": 2, "seq": head + i, "pad": ""})[:-2]
            c.execute("INSERT INTO vault.audit_log (seq, line) VALUES (%s, %s)",
                      (head + i, (prefix + "x" * (size - len(prefix) - 2) + '"}').encode()))

    bound = 16 * 2**20
    wrote = peak(lambda: _seal(pg_office, "clerk", b"after"))  # sets the lines aside
    assert wrote < bound, f"{wrote / 2**20:.0f} MiB"
    with vault.Vault(pg_office.location, pg_office.ids["officer"],
                     state_dir=tmp_path / "new") as v:
        replayed = peak(v.doctor)
        checked = peak(v.verify_audit)
        assert v.doctor().ok
    assert replayed < bound and checked < bound, (replayed / 2**20, checked / 2**20)


def test_repair_keeps_a_granted_keyring_entry_filed_under_another_user(
        pg_office: Office) -> None:
    # The role re-files the leader's entries under the outsider (an UPDATE
    # of their owner key): the officer's repair deleted them as ungranted.
    from vault.store.base import owner_key

    with pg_office.as_("leader") as v:
        doc = v.seal(io.BytesIO(b"board minutes"), filename="m.bin", level="SECRET",
                     compartments=["BOARD"]).id
    leader = owner_key(pg_office.ids["leader"].recipient)
    outsider = owner_key(pg_office.ids["outsider"].recipient)
    with _intruder(pg_office, autocommit=True) as c:
        c.execute("UPDATE vault.keyrings SET okey = %s WHERE okey = %s", (outsider, leader))
    report = pg_office.as_("officer").doctor(repair=True)
    assert any("the entry the audit log granted leader for" in p for p in report.problems)
    with _intruder(pg_office, autocommit=True) as c:
        c.execute("UPDATE vault.keyrings SET okey = %s WHERE okey = %s", (leader, outsider))
    out = io.BytesIO()
    pg_office.as_("leader").open(doc, out)
    assert out.getvalue() == b"board minutes"


def test_one_damaged_chunk_does_not_stop_the_rotation_of_the_others(pg_office: Office) -> None:
    # The role cuts one byte off a chunk of one large document. Its header
    # still reads, so the rewrap got as far as copying its payload, where
    # the error stopped the whole rotation: every document of the class
    # stayed on the key the revoked deputy kept.
    docs = [_seal_at(pg_office, "leader", b"doc %d" % i) for i in range(3)]
    big = _seal_at(pg_office, "leader", os.urandom(2 << 20))
    _app_sql(pg_office, "UPDATE vault.document_chunks SET data = substring(data FROM 1 FOR"
                        " octet_length(data) - 1) WHERE n = 2 AND vid ="
                        " (SELECT vid FROM vault.documents WHERE id = %s)", big)
    pg_office.apply(DEPUTY_LEAVES_FINANCE)
    report = pg_office.as_("leader").rotate()
    assert sorted(report.rewrapped) == sorted(docs)
    assert any(big in p for p in report.pending), report.pending


# The deputy is no longer cleared for FINANCE: every CONFIDENTIAL//FINANCE
# document must be rewrapped off the key they kept.
DEPUTY_LEAVES_FINANCE = {
    "clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}\n  outsider:":
        "clearance: {level: SECRET, compartments: [STAFF, HR, BOARD]}\n  outsider:"}


def _seal_at(office: Office, who: str, data: bytes) -> str:
    with office.as_(who) as v:
        return v.seal(io.BytesIO(data), filename="m.bin", level="CONFIDENTIAL",
                      compartments=["FINANCE"]).id


def test_a_lowered_declared_size_makes_no_shorter_copy(pg_office: Office) -> None:
    # The role lowers one document's declared size by 1 MB, its chunks left
    # in place. An honest rotation copied the 1.5 MB it could read into a
    # new version, recorded it and dropped the old one: the payload was gone
    # for good, though a reverse UPDATE would have restored it.
    big = _seal_at(pg_office, "leader", os.urandom(2_500_000))
    _app_sql(pg_office, "UPDATE vault.documents SET size = size - 1000000 WHERE id = %s", big)
    pg_office.apply(DEPUTY_LEAVES_FINANCE)
    report = pg_office.as_("leader").rotate()
    assert big not in report.rewrapped and any(big in p for p in report.pending), report
    _app_sql(pg_office, "UPDATE vault.documents SET size = size + 1000000 WHERE id = %s", big)
    out = io.BytesIO()
    pg_office.as_("leader").open(big, out)
    assert len(out.getvalue()) == 2_500_000


def test_a_swapped_chunk_is_never_copied_into_a_new_version(pg_office: Office) -> None:
    # The role moves a chunk out of the way (numbered past the declared
    # size) and puts a zero chunk of its length in its place: the size
    # holds, the payload does not. An honest rotation copied it, recorded it
    # and dropped the old version with the real chunk; a reverse UPDATE
    # before it would have restored the document.
    big = _seal_at(pg_office, "leader", os.urandom(2_500_000))
    cluster: Cluster = pg_office.kind.cluster  # type: ignore[attr-defined]
    (vid,) = cluster.execute("SELECT vid FROM vault.documents WHERE id = %s", (big,),
                             dbname=dbname_of(pg_office.location))[0]
    # (A chunk's number never changes, schema 21: the role copies it aside.)
    _app_sql(pg_office, "INSERT INTO vault.document_chunks (vid, n, data) SELECT vid, 1000,"
                        " data FROM vault.document_chunks WHERE vid = %s AND n = 1", vid)
    _app_sql(pg_office, "UPDATE vault.document_chunks SET data = decode(repeat('00',"
                        " octet_length(data)), 'hex') WHERE vid = %s AND n = 1", vid)
    pg_office.apply(DEPUTY_LEAVES_FINANCE)
    report = pg_office.as_("leader").rotate()
    assert big not in report.rewrapped and any(big in p for p in report.pending), report
    _app_sql(pg_office, "UPDATE vault.document_chunks AS c SET data = k.data FROM"
                        " vault.document_chunks AS k WHERE c.vid = %s AND c.n = 1"
                        " AND k.vid = c.vid AND k.n = 1000", vid)
    _app_sql(pg_office, "DELETE FROM vault.document_chunks WHERE vid = %s AND n = 1000", vid)
    out = io.BytesIO()
    pg_office.as_("leader").open(big, out)
    assert len(out.getvalue()) == 2_500_000


# -- names the role plants in its own temporary schema (schema 17) ---------------------

# A temporary function that notes whom it ran as and, run as anyone but the
# session's own role, makes itself a way back in: a SECURITY DEFINER
# function in schema vault that runs any statement as the owner.
_EVIL = """CREATE FUNCTION pg_temp.evil(v anyelement) RETURNS pg_catalog.bool
    LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_catalog.set_config('attack.ran_as', pg_catalog.concat_ws(' ',
        pg_catalog.current_setting('attack.ran_as', true), current_user), false);
    IF current_user <> session_user THEN
        EXECUTE 'CREATE OR REPLACE FUNCTION vault.sudo(q pg_catalog.text) RETURNS void'
                ' LANGUAGE plpgsql SECURITY DEFINER AS $b$ BEGIN EXECUTE q; END $b$';
        EXECUTE 'GRANT EXECUTE ON FUNCTION vault.sudo(pg_catalog.text) TO PUBLIC';
    END IF;
    RETURN true;
END $f$"""

# The types the schema's functions name, each shadowed by a temporary domain
# over the real one whose CHECK calls the planted function.
_SHADOWED = ("bytea", "int4", "int8", "integer", "bigint", "json", "text", "bool", "boolean")


def _plant_temporary_types(c: psycopg.Connection[Any]) -> None:
    c.execute(_EVIL)
    for name in _SHADOWED:
        base = {"integer": "int4", "bigint": "int8", "boolean": "bool"}.get(name, name)
        c.execute(f"CREATE DOMAIN pg_temp.{name} AS pg_catalog.{base}"
                  " CHECK (pg_temp.evil(VALUE))")


def test_types_the_role_plants_in_its_temporary_schema_run_nothing_as_the_owner(
        pg_office: Office, tmp_path: Path) -> None:
    # The functions set search_path = pg_catalog, which still looks in the
    # caller's temporary schema FIRST for types: a temporary domain "bytea"
    # made the tree trigger, which runs as the schema's owner, run the
    # role's own function as the owner. It read the checkpoint key,
    # disabled the append-only triggers and deleted its own 'open' record,
    # and a new machine's verify and doctor were clean.
    doc = _seal(pg_office, "clerk", b"staff rota")
    with pg_office.as_("clerk") as v:
        v.open(doc, io.BytesIO())  # the record the insider wants gone
    with _intruder(pg_office, autocommit=True) as c:
        _plant_temporary_types(c)
        (n,) = c.execute("SELECT max(seq) + 1 FROM vault.audit_log").fetchone()  # type: ignore[misc]
        c.execute("INSERT INTO vault.audit_log (seq, line) VALUES (%s, %s)",
                  (n, b'{"v":2,"seq":%d}' % n))
        # A line no check accepts is still refused, the types planted.
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
            c.execute("INSERT INTO vault.audit_log (seq, line) VALUES (%s, %s)",
                      (n + 5, b'{"v":2,"seq":%d}' % (n + 5)))
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation):
            c.execute("INSERT INTO vault.audit_log (seq, line) VALUES (%s, 'junk')", (n + 1,))
        c.execute("INSERT INTO vault.audit_checkpoints (size, note) VALUES (%s, 'note')", (n,))
        (ran_as,) = c.execute("SELECT current_setting('attack.ran_as', true)"
                              ).fetchone()  # type: ignore[misc]
        sudo = c.execute("SELECT 1 FROM pg_proc WHERE proname = 'sudo'").fetchall()
    assert OWNER not in (ran_as or "").split() and not sudo, (ran_as, sudo)
    with vault.Vault(pg_office.location, pg_office.ids["officer"],
                     state_dir=tmp_path / "new") as v:
        assert "open" in {r.action for r, _, _ in v.audit_records()}
        assert v.verify_audit().hashes_ok


def test_every_function_of_the_schema_looks_in_pg_catalog_before_pg_temp(
        pg_cluster: Cluster) -> None:
    # A fresh schema, and one upgraded from functions that named pg_catalog
    # alone (as versions 11 to 16 made them): every function in schema
    # vault, whichever version made it -- and whichever a later version adds
    # -- sets the search path, and is one the schema knows.
    from vault.store._pg_schema import FUNCTIONS, SAFE_SEARCH_PATH

    fresh = dbname_of(pg_cluster.new_database())
    old = dbname_of(pg_cluster.new_database(schema=False))
    assert migrate_schema(pg_cluster.dsn(OWNER, old), target=16) == (0, 16)
    pg_cluster.execute("DO $$ DECLARE f regprocedure; BEGIN FOR f IN SELECT oid FROM pg_proc"
                       " WHERE pronamespace = 'vault'::regnamespace LOOP EXECUTE format("
                       "'ALTER FUNCTION %%s SET search_path = pg_catalog', f); END LOOP; END $$",
                       dbname=old, user=OWNER)
    assert migrate_schema(pg_cluster.dsn(OWNER, old), grant=[APP]) == (16, VERSION)
    for name in (fresh, old):
        rows = pg_cluster.execute("SELECT proname, proconfig FROM pg_proc"
                                  " WHERE pronamespace = 'vault'::regnamespace", dbname=name)
        assert {str(r[0]) for r in rows} == set(FUNCTIONS), name
        for proname, config in rows:
            assert config == [f"search_path={SAFE_SEARCH_PATH}"], (name, proname, config)


def test_doctor_names_a_function_the_migrations_did_not_make(pg_office: Office) -> None:
    # Whoever once had the owner's privileges can leave a way back in: a
    # SECURITY DEFINER function in schema vault, an audit trigger disabled.
    cluster: Cluster = pg_office.kind.cluster  # type: ignore[attr-defined]
    name = dbname_of(pg_office.location)
    _seal(pg_office, "clerk", b"notice")
    cluster.execute("CREATE FUNCTION vault.sudo(q text) RETURNS void LANGUAGE plpgsql"
                    " SECURITY DEFINER AS $$ BEGIN EXECUTE q; END $$;"
                    " ALTER FUNCTION vault.audit_json(bytea) RESET search_path;"
                    " ALTER TABLE vault.audit_log DISABLE TRIGGER audit_log_append_only",
                    dbname=name, user=OWNER)
    with pg_office.as_("officer") as v:
        problems = v.doctor().problems
    assert problems == [
        "database: function vault.audit_json does not set search_path to pg_catalog, pg_temp",
        "database: function vault.sudo was not made by the vault's migrations and runs as "
        "the schema's owner",
        "database: trigger audit_log_append_only on vault.audit_log is disabled"], problems


# Each switches the append-only guard of the audit tables off, or lets a
# role past it, as whoever had the owner's privileges would leave it (the
# superuser for what the owner cannot do alone: give a table away, make a
# role a member of its own); doctor names each.
_REPLICA = "fires only in replication sessions (ENABLE REPLICA TRIGGER): never for the vault"
_TAMPERING = {
    "replica trigger": (
        "ALTER TABLE vault.audit_log ENABLE REPLICA TRIGGER audit_log_append_only", OWNER,
        [f"database: trigger audit_log_append_only on vault.audit_log {_REPLICA}"]),
    "always trigger": (
        "ALTER TABLE vault.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate", OWNER,
        ["database: trigger audit_log_no_truncate on vault.audit_log is enabled ALWAYS, not"
         " as the migrations made it"]),
    "dropped trigger": (
        "DROP TRIGGER audit_checkpoints_append_only ON vault.audit_checkpoints", OWNER,
        ["database: trigger audit_checkpoints_append_only on vault.audit_checkpoints is"
         " missing: it was dropped"]),
    "trigger defined again": (
        "DROP TRIGGER audit_log_append_only ON vault.audit_log; CREATE TRIGGER"
        " audit_log_append_only BEFORE UPDATE ON vault.audit_log FOR EACH ROW EXECUTE"
        " FUNCTION vault.append_only()", OWNER,
        ["database: trigger audit_log_append_only on vault.audit_log is not the one the"
         " migrations made: it was defined again"]),
    "permissive body": (
        "CREATE OR REPLACE FUNCTION vault.append_only() RETURNS trigger LANGUAGE plpgsql"
        " SET search_path = pg_catalog, pg_temp AS $$ BEGIN IF TG_OP = 'DELETE' THEN"
        " RETURN OLD; END IF; RETURN NEW; END $$", OWNER,
        ["database: function vault.append_only is not the one the migrations made: its body"
         " was replaced"]),
    "grant to the role": (
        f"GRANT UPDATE, DELETE ON vault.audit_log TO {APP}", OWNER,
        [f"database: role {APP} holds DELETE, UPDATE on vault.audit_log, which the vault's"
         " grants do not give"]),
    "column grant": (
        f"GRANT UPDATE (line) ON vault.audit_log TO {APP}", OWNER,
        [f"database: role {APP} holds UPDATE on vault.audit_log, which the vault's grants do"
         " not give"]),
    "grant to public": (
        "GRANT TRUNCATE ON vault.audit_checkpoints TO PUBLIC", OWNER,
        ["database: PUBLIC (every role) holds TRUNCATE on vault.audit_checkpoints, which the"
         " vault's grants do not give"]),
    "derived hashes writable": (
        f"GRANT INSERT, UPDATE ON vault.audit_tree TO {APP}", OWNER,
        [f"database: role {APP} holds INSERT, UPDATE on vault.audit_tree, which the vault's"
         " grants do not give"]),
    "create in the schema": (
        f"GRANT CREATE ON SCHEMA vault TO {APP}", OWNER,
        [f"database: role {APP} may create objects in schema vault"]),
    "rule": (
        "CREATE RULE keep_out AS ON INSERT TO vault.audit_checkpoints DO INSTEAD NOTHING",
        OWNER, ["database: rule keep_out on vault.audit_checkpoints was not made by the"
                " vault's migrations"]),
    "row-level security": (
        "ALTER TABLE vault.audit_log ENABLE ROW LEVEL SECURITY; CREATE POLICY hide ON"
        " vault.audit_log USING (seq < 1000)", OWNER,
        ["database: vault.audit_log has row-level security, which the vault's migrations"
         " never set"]),
    "table given away": (
        f"ALTER TABLE vault.audit_log OWNER TO {APP}", SUPER,
        [f"database: table vault.audit_log belongs to role {APP}, not to the schema's owner"]),
    "function given away": (
        f"ALTER FUNCTION vault.append_only() OWNER TO {APP}", SUPER,
        [f"database: function vault.append_only belongs to role {APP}, not to the schema's"
         " owner"]),
    "member of the owner": (
        f"GRANT {OWNER} TO {APP}", SUPER,
        [f"database: role {APP} is a member of the schema's owner, and so holds all its"
         " privileges"]),
    # What the tables refuse: a constraint dropped lets the role plant an
    # actor under another's hash, a line numbered twice, a bloated note.
    "check dropped": (
        "ALTER TABLE vault.actors DROP CONSTRAINT actors_key_hash", OWNER,
        ["database: constraint actors_key_hash on vault.actors is missing: it was dropped"]),
    "primary key dropped": (
        "ALTER TABLE vault.audit_log DROP CONSTRAINT audit_log_pkey", OWNER,
        ["database: constraint audit_log_pkey on vault.audit_log is missing: it was dropped"]),
    "bound widened": (
        "ALTER TABLE vault.audit_log DROP CONSTRAINT audit_log_line_size, ADD CONSTRAINT"
        " audit_log_line_size CHECK (octet_length(line) BETWEEN 1 AND 1073741824)", OWNER,
        ["database: constraint audit_log_line_size on vault.audit_log is not the one the"
         " migrations made: it was defined again"]),
    "check left unvalidated": (
        "ALTER TABLE vault.actors DROP CONSTRAINT actors_key_hash, ADD CONSTRAINT"
        " actors_key_hash CHECK (key_hash = encode(sha256(public_key), 'hex')) NOT VALID",
        OWNER, ["database: constraint actors_key_hash on vault.actors is NOT VALID: rows it"
                " refuses may be there"]),
    "not null dropped": (
        "ALTER TABLE vault.audit_log ALTER COLUMN line DROP NOT NULL", OWNER,
        ["database: column line of vault.audit_log is bytea, not bytea NOT NULL as the"
         " migrations made it"]),
    "unlogged audit log": (
        "ALTER TABLE vault.audit_tree SET UNLOGGED; ALTER TABLE vault.audit_log SET UNLOGGED",
        OWNER, ["database: table vault.audit_log is not logged (UNLOGGED or temporary): a crash"
                " empties it, and no trigger fires",
                "database: table vault.audit_tree is not logged (UNLOGGED or temporary): a"
                " crash empties it, and no trigger fires"]),
    "censoring check": (
        "CREATE FUNCTION public.keep(l bytea) RETURNS boolean LANGUAGE sql IMMUTABLE"
        " AS $$ SELECT position('\"shred\"'::bytea IN l) = 0 $$;"
        " ALTER TABLE vault.audit_log ADD CONSTRAINT audit_log_ok CHECK (public.keep(line))"
        " NOT VALID", OWNER,
        ["database: constraint audit_log_ok on vault.audit_log was not made by the vault's"
         " migrations",
         "database: constraint audit_log_ok on table vault.audit_log depends on function"
         " public.keep(bytea), outside schemas pg_catalog and vault: whoever owns that decides"
         " what it does"]),
    "triggers off for the role": (
        f"ALTER ROLE {APP} IN DATABASE @DB@ SET session_replication_role = replica", SUPER,
        [f"database: session_replication_role is set to replica for role {APP} in the vault's"
         " database: triggers do not fire in its sessions -- the audit log's guards among"
         " them"]),
    "triggers off for the database": (
        "ALTER DATABASE @DB@ SET session_replication_role = replica", SUPER,
        ["database: session_replication_role is set to replica for every role in the vault's"
         " database: triggers do not fire in its sessions -- the audit log's guards among"
         " them"]),
}


@pytest.mark.parametrize("tampering", list(_TAMPERING))
def test_doctor_names_every_change_to_the_schema_the_migrations_made(
        pg_office: Office, tampering: str) -> None:
    # With a replaced trigger body, or DELETE granted, the role deleted the
    # clerk's last open record, and a new machine's verify and doctor, and
    # the officer's own, were clean: doctor compared only function names,
    # settings and disabled triggers.
    cluster: Cluster = pg_office.kind.cluster  # type: ignore[attr-defined]
    name = dbname_of(pg_office.location)
    _seal(pg_office, "clerk", b"notice")
    statement, who, expected = _TAMPERING[tampering]
    cluster.execute(statement.replace("@DB@", name), dbname=name, user=who)
    try:
        with pg_office.as_("officer") as v:
            problems = v.doctor().problems
        assert problems == expected, problems
    finally:
        if tampering == "member of the owner":  # roles are the cluster's, not the vault's
            cluster.execute(f"REVOKE {OWNER} FROM {APP}")


# What a prepared transaction of the role may hold for good: the append
# lock (every workstation's records wait on it, their doctor's too: the
# check without an identity, which records nothing, names it), or a
# document's row (its shred and every rotation wait).
_PREPARED = {
    "the append lock": f"SELECT pg_advisory_xact_lock({AUDIT_LOCK})",
    "a document's row": "UPDATE vault.documents SET size = size",
}


@pytest.mark.parametrize("hold", list(_PREPARED))
def test_doctor_names_a_prepared_transaction_and_how_to_end_it(pg_office: Office,
                                                               hold: str) -> None:
    # A prepared transaction outlives its session and every restart: what
    # it holds stays held, and no session shows who holds it.
    cluster: Cluster = pg_office.kind.cluster  # type: ignore[attr-defined]
    name = dbname_of(pg_office.location)
    _seal(pg_office, "clerk", b"notice")
    with _intruder(pg_office, autocommit=False) as conn:
        conn.execute(_PREPARED[hold])
        conn.execute("PREPARE TRANSACTION 'it''s mine'")
        conn.commit()
    try:
        if hold == "the append lock":
            # Every command that records waits, and its error says what to end.
            code, err, _ = _vault(pg_office, "leader", "ls")
            assert code == 1 and "prepared transaction 'it''s mine'" in err, err
            assert "ROLLBACK PREPARED" in err and "Traceback" not in err
            with vault.Vault(pg_office.location, None,
                             state_dir=tempfile.mkdtemp(dir=pg_office.root)) as v:
                problems = v.doctor().problems
        else:
            with pg_office.as_("officer") as v:
                problems = v.doctor().problems
        assert len(problems) == 1, problems
        assert problems[0].startswith(f"database: prepared transaction 'it''s mine' of role {APP},"
                                      " prepared 2"), problems
        assert problems[0].endswith("holds its locks until it is ended, across restarts: end it"
                                    " with ROLLBACK PREPARED 'it''s mine' (as that role or a"
                                    " superuser)"), problems
    finally:
        cluster.execute("ROLLBACK PREPARED 'it''s mine'", dbname=name)
    with pg_office.as_("officer") as v:
        assert v.doctor().problems == []


class _UpgradedKind(PostgresKind):
    """Vaults in databases taken through every migration, one at a time."""

    def new_location(self, root: Path) -> str:
        owner = self.cluster.dsn(OWNER, dbname_of(self.cluster.new_database(schema=False)))
        for version, _, _ in STEPS:
            migrate_schema(owner, target=version)
        migrate_schema(owner, grant=[APP], checkpoint_key=True)  # as new_database does
        return self.cluster.dsn(APP, dbname_of(owner))


@pytest.mark.parametrize("upgraded", [False, True], ids=["fresh", "upgraded"])
def test_an_honest_schema_and_its_documented_roles_give_doctor_nothing_to_name(
        tmp_path: Path, pg_cluster: Cluster, upgraded: bool) -> None:
    # No false alarm: a vault made fresh or upgraded through every
    # migration, with the roles DEPLOYMENT.md §2 and §6 give -- a checkpoint
    # job's role, a group role of workstations, an auditor.
    kind = _UpgradedKind(pg_cluster) if upgraded else PostgresKind(pg_cluster)
    office = make_office(tmp_path / "office", kind)
    name = dbname_of(office.location)
    owner = pg_cluster.dsn(OWNER, name)
    for role in ("doc_checkpointer", "doc_apps", "doc_auditor"):
        pg_cluster.execute(f"DO $$ BEGIN CREATE ROLE {role}; EXCEPTION WHEN duplicate_object"
                           " THEN NULL; END $$")
    migrate_schema(owner, grant=["doc_checkpointer"], checkpoint_key=True)
    migrate_schema(owner, grant=["doc_apps"])
    for statement in ("GRANT USAGE ON SCHEMA vault TO doc_auditor",
                      "GRANT SELECT ON ALL TABLES IN SCHEMA vault TO doc_auditor",
                      "REVOKE SELECT ON vault.log_key FROM doc_auditor"):
        pg_cluster.execute(statement, dbname=name, user=OWNER)
    _seal(office, "clerk", b"notice")
    r = office.cli("officer", "audit", "checkpoint")
    assert r.exit_code == 0, r.stderr
    with office.as_("officer") as v:
        assert v.doctor().problems == []


class _HardenedKind(PostgresKind):
    """Databases whose administrator took EXECUTE on new functions from
    PUBLIC (ALTER DEFAULT PRIVILEGES) before the first ``vault migrate``."""

    def new_location(self, root: Path) -> str:
        name = dbname_of(self.cluster.new_database(schema=False))
        self.cluster.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} REVOKE EXECUTE ON"
                             " FUNCTIONS FROM PUBLIC", dbname=name)
        migrate_schema(self.cluster.dsn(OWNER, name), grant=[APP], checkpoint_key=True)
        return self.cluster.dsn(APP, name)


def test_functions_kept_from_public_still_run_for_the_application_role(
        tmp_path: Path, pg_cluster: Cluster) -> None:
    # A common hardening step: every audit append then failed ("permission
    # denied for function audit_is_record"), which the WHEN clause of
    # audit_log_named calls as the inserting role -- vault init included.
    office = make_office(tmp_path / "office", _HardenedKind(pg_cluster))
    doc = _seal(office, "clerk", b"minutes")
    with office.as_("leader") as v:
        out = io.BytesIO()
        v.open(doc, out)
        assert out.getvalue() == b"minutes"
    assert office.cli("officer", "audit", "checkpoint").exit_code == 0
    with office.as_("officer") as v:
        assert v.doctor().problems == []


@pytest.mark.parametrize("setting", ["quote_all_identifiers = on", "bytea_output = escape",
                                     "extra_float_digits = 3", "DateStyle = 'SQL, DMY'",
                                     "IntervalStyle = sql_standard", "TimeZone = 'Asia/Tokyo'"])
@pytest.mark.parametrize("how", ["the role's own default", "the cluster's setting"])
def test_quoting_every_identifier_is_no_change_to_the_schema(pg_office: Office,
                                                             how: str, setting: str) -> None:
    # quote_all_identifiers changes how PostgreSQL writes back a trigger or
    # a SQL body: any role may turn it on for itself (ALTER ROLE CURRENT_USER
    # SET), an administrator for the cluster -- and every workstation's
    # doctor then found ten triggers and a function changed in an intact vault.
    cluster: Cluster = pg_office.kind.cluster  # type: ignore[attr-defined]
    _seal(pg_office, "clerk", b"notice")
    # (bytea_output = escape wrote a constraint's '\x0a'::bytea as '\012')
    name = setting.split(" ", 1)[0]
    if how == "the role's own default":
        _app_sql(pg_office, f"ALTER ROLE CURRENT_USER SET {setting}")
    else:
        cluster.execute(f"ALTER SYSTEM SET {setting}")
        cluster.execute("SELECT pg_reload_conf()")
    try:
        Database.get(pg_office.location).close()  # new sessions, as on another workstation
        with pg_office.as_("officer") as v:
            assert v.doctor().problems == []
        # a session that does not pin the setting: the comparison pins it itself
        with psycopg.connect(pg_office.location, autocommit=True) as conn:
            assert schema_problems(conn) == []
    finally:
        cluster.execute(f"ALTER ROLE {APP} RESET {name}")
        cluster.execute(f"ALTER SYSTEM RESET {name}")
        cluster.execute("SELECT pg_reload_conf()")


def test_a_bogus_checkpoint_misleads_no_workstation_without_the_key(
        pg_office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # A workstation without the checkpoint key only parsed stored notes: the
    # role's note at the log's size, signed by no key of the vault, became
    # its newest checkpoint, and 'audit prove' failed for good with a false
    # "does not match its checkpoint". Notes are verified with the key
    # vault.json pins, key or no key.
    import vault._ops.session as session_module
    from vault.audit import NoteSigner
    from vault.audit._checkpoint import Checkpoint

    _seal(pg_office, "clerk", b"notice")
    assert pg_office.cli("officer", "audit", "checkpoint").exit_code == 0
    with pg_office.as_("officer") as v:
        origin, kept = v.audit.origin, v.audit.verifier()
    _seal(pg_office, "clerk", b"later")
    size = len(pg_office.raw.audit_lines())
    assert origin is not None
    note = Checkpoint(origin, size, bytes(32)).sign([NoteSigner.generate(origin)])
    _app_sql(pg_office, "INSERT INTO vault.audit_checkpoints (size, note) VALUES (%s, %s)",
             size, note.decode())
    monkeypatch.setattr(session_module.Session, "_log_signer",
                        lambda self: (None, "this workstation holds no checkpoint key"))
    r = pg_office.cli("clerk", "audit", "prove", "0")
    assert r.exit_code == 0, r.stderr
    from vault.audit import verify_tlog_proof

    assert verify_tlog_proof(r.stdout, [kept], key_lookup=pg_office.key_lookup()).checkpoint.size \
        < size


def test_a_database_not_in_utf8_takes_no_schema_and_is_named(pg_cluster: Cluster) -> None:
    # The owner made the database as `initdb` under a C locale makes it:
    # SQL_ASCII. The schema's checks read each line as JSON, and that
    # server cannot decode every line the vault reads as a record ("\u00e9"
    # in a reason): it took two records numbered 1,000 lines ahead for no
    # records, and every deciding command stopped on every machine.
    name = f"vault_ascii_{os.getpid()}"
    pg_cluster.execute(f"CREATE DATABASE {name} OWNER {OWNER} ENCODING 'SQL_ASCII' "
                       "TEMPLATE template0")
    with pytest.raises(vault.errors.UsageError,
                       match="the database's encoding is SQL_ASCII, not UTF8") as caught:
        migrate_schema(pg_cluster.dsn(OWNER, name), grant=[APP])
    assert "ENCODING 'UTF8'" in (caught.value.hint or "")
    (tables,) = pg_cluster.execute("SELECT count(*) FROM pg_catalog.pg_namespace"
                                   " WHERE nspname = 'vault'", dbname=name)
    assert tables == (0,)
    # One made before the check (its encoding changed under it here): doctor
    # names it.
    dsn = pg_cluster.new_database()
    pg_cluster.execute("UPDATE pg_catalog.pg_database SET encoding ="
                       " pg_catalog.pg_char_to_encoding('SQL_ASCII')"
                       " WHERE datname = %s", (dbname_of(dsn),))
    with psycopg.connect(pg_cluster.dsn(OWNER, dbname_of(dsn))) as conn:
        problems = schema_problems(conn)
    assert any("encoding is SQL_ASCII, not UTF8" in p for p in problems), problems


def test_proving_the_torn_record_after_planted_lines_costs_bounded_memory(
        pg_office: Office) -> None:
    # The role plants lines the schema takes for records, of 512 KiB each;
    # the next writer sets them aside with its torn record. Proving that
    # record read every planted line in one answer (storage.lines had no
    # byte bound) and held them all, to carry them in the proof: 100 MiB
    # planted cost the prove 236 MB, 2 GiB about 3.5 GiB, though the proof
    # carries only the line before the torn record. A storage read now
    # returns the lines that begin within 4 MiB (at least one), and the
    # prover holds one such block and the lines its proof carries.
    from vault.audit import verify_tlog_proof
    from vault.audit._tlogproof import TlogProof

    _seal(pg_office, "clerk", b"before")
    size, planted = 512 * 1024, 100
    with _intruder(pg_office, autocommit=True) as c:
        (head,) = c.execute("SELECT max(seq) + 1 FROM vault.audit_log").fetchone()  # type: ignore[misc]
        for i in range(planted):
            prefix = json.dumps({"v": 2, "seq": head + i, "pad": ""})[:-2]
            c.execute("INSERT INTO vault.audit_log (seq, line) VALUES (%s, %s)",
                      (head + i, (prefix + "x" * (size - len(prefix) - 2) + '"}').encode()))
    _seal(pg_office, "clerk", b"after")  # sets them aside
    with _intruder(pg_office, autocommit=True) as c:
        (torn,) = c.execute("SELECT seq FROM vault.audit_log WHERE seq = %s AND position("
                            "'\"action\":\"torn\"'::bytea IN line) > 0",
                            (head + planted,)).fetchone()  # type: ignore[misc]
    with pg_office.as_("officer") as v:
        storage = v.audit.storage
        block = storage.lines(head, head + planted)
        assert block is not None and 1 <= len(block) <= 9, len(block or ())
        assert sum(map(len, block)) <= 4 * 2**20 + size
        assert storage.lines(head - 1, head + 1) == [storage.line(head - 1),
                                                     storage.line(head)]
        text = v.audit.prove(torn)
    # It carries its record and the line before it (its run is its own),
    # none of the other lines it sets aside.
    extra = TlogProof.from_text(text).extra or b""
    assert extra.split(b"\n")[1] == b"run %d %d" % (torn, torn)
    assert len(extra) < 2 * size
    assert verify_tlog_proof(text, [v.audit.verifier()],
                             key_lookup=pg_office.key_lookup()).record is not None

    # What the prover holds, traced around the proof alone (opening the
    # vault, its catch-up and replay, are measured elsewhere): 100 lines of
    # 512 KiB planted, it held them all (over 50 MB); now a block of 4 MiB
    # and the lines its proof carries.
    import tracemalloc

    with pg_office.as_("officer") as v:
        for seq in (1, torn):
            tracemalloc.start()
            try:
                v.audit.prove(seq)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 24 * 2**20, f"{peak} bytes proving line {seq}"
