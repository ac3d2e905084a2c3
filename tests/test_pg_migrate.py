"""``vault migrate``: the PostgreSQL schema, and a vault moved from a folder
to PostgreSQL and back -- same vault, same documents, and an audit log that
verifies end to end against a checkpoint taken before the first move."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import psycopg
import pytest
from backends import FolderKind, Kind, PostgresKind
from click.testing import CliRunner, Result
from pg_support import APP, OWNER, Cluster, dbname_of
from vault_helpers import Office, age_decrypt, make_office, small_tmpfs

import vault
from vault.errors import DeniedError, UsageError
from vault.identity import new_identity
from vault.store import open_backend
from vault.store._pg_schema import VERSION
from vault_cli.main import cli


def vault_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, prog_name="vault")


def _contents(office: Office, location: str, docs: dict[str, bytes]) -> None:
    for doc, data in docs.items():
        out = io.BytesIO()
        vault.Vault(location, office.ids["leader"]).open(doc, out)
        assert out.getvalue() == data


def test_folder_to_postgres_and_back(tmp_path: Path, pg_cluster: Cluster) -> None:
    office = make_office(tmp_path / "a", FolderKind())
    docs = {office.as_("clerk").seal(office.file(f"{i}.txt", b"doc %d" % i), level="INTERNAL",
                                     compartments=["STAFF"]).id: b"doc %d" % i for i in range(3)}
    secret = office.as_("leader").seal(io.BytesIO(b"board"), level="SECRET",
                                       compartments=["BOARD"]).id
    docs[secret] = b"board"
    with pytest.raises(DeniedError):  # an outsider's attempt, signed by a registered key
        vault.Vault(office.location, new_identity("mallory")).open(secret, io.BytesIO())
    trusted = office.as_("officer").audit.checkpoint()  # an auditor keeps this one
    vault_id = office.as_("officer").id

    pg = pg_cluster.new_database()
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", pg, "--json")
    assert r.exit_code == 0, r.stderr
    moved = json.loads(r.stdout)
    assert (moved["documents"], moved["actors"]) == (4, 1)
    v = vault.Vault(pg, office.ids["officer"])
    assert v.id == vault_id
    report = v.verify_audit(trusted_checkpoint=trusted)
    assert report.consistency_proved and report.root.hex() == moved["root"]
    assert report.signatures == report.size  # mallory's record too
    _contents(office, pg, docs)
    assert v.doctor().ok
    docs[vault.Vault(pg, office.ids["clerk"]).seal(io.BytesIO(b"in pg"), level="INTERNAL",
                                                  compartments=["STAFF"]).id] = b"in pg"

    back = tmp_path / "c" / "vault"
    r = vault_cli("--vault", pg, "--identity", str(office.files["officer"]), "migrate",
                  "--to", str(back))
    assert r.exit_code == 0, r.stderr
    assert "verified at the destination" in r.stdout
    again = vault.Vault(back, office.ids["officer"])
    assert again.id == vault_id
    assert again.verify_audit(trusted_checkpoint=trusted).consistency_proved
    assert again.audit.prove(0)  # the stored hashes came along
    _contents(office, str(back), docs)
    for doc in docs:  # still standard age files for the recovery identity
        (path,) = (back / "docs").glob(f"{doc}.*.age")
        assert age_decrypt(office.files["recovery"], path).returncode == 0
    actions = [rec.action for rec in again.audit.records()]
    assert actions.count("migrate") == 2
    assert again.doctor().ok


def test_moves_are_refused_without_right_or_room(tmp_path: Path, pg_cluster: Cluster) -> None:
    office = make_office(tmp_path / "a", FolderKind())
    pg = pg_cluster.new_database()
    from vault._ops.migrate import move_vault

    with pytest.raises(DeniedError):  # not an administrator: refused, and on the record
        move_vault(office.location, pg, office.ids["clerk"])
    assert not open_backend(pg).exists()
    move_vault(office.location, pg, office.ids["officer"])
    with pytest.raises(UsageError, match="already exists"):
        move_vault(office.location, pg, office.ids["officer"])
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", office.location)
    assert r.exit_code == 2 and "same vault" in r.stderr
    last = list(vault.Vault(office.location).audit.records())[-1]
    assert (last.action, last.outcome, last.actor) == ("migrate", "error", "officer")


def test_schema_command(pg_cluster: Cluster) -> None:
    owner = pg_cluster.dsn(OWNER, dbname_of(pg_cluster.new_database(schema=False)))
    r = vault_cli("migrate", owner, "--grant", APP)
    assert r.exit_code == 0, r.stderr
    assert f"vault schema version 0 -> {VERSION}" in r.stdout and f"to {APP}" in r.stdout
    r = vault_cli("--vault", owner, "migrate", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["before"] == json.loads(r.stdout)["after"]
    r = vault_cli("migrate", "/some/folder")
    assert r.exit_code == 2 and "only PostgreSQL vaults" in r.stderr


def test_a_grant_again_keeps_the_checkpoint_key_unless_told(pg_cluster: Cluster) -> None:
    # The upgrade a deployment runs after each release, `vault migrate DSN
    # --grant ROLE`, once took the checkpoint key from the checkpoint job's
    # role without a word: checkpoints then stopped being signed.
    owner = pg_cluster.dsn(OWNER, dbname_of(pg_cluster.new_database(schema=False)))
    r = vault_cli("migrate", owner, "--grant", APP, "--checkpoint-key")
    assert r.exit_code == 0, r.stderr
    assert f"granted the application privileges and the checkpoint key to {APP}" in r.stdout
    r = vault_cli("migrate", owner, "--grant", APP, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["checkpoint_key"] == {APP: True}
    app = pg_cluster.dsn(APP, dbname_of(owner))
    with psycopg.connect(app) as conn:  # the role still reads it
        conn.execute("SELECT count(*) FROM vault.log_key").fetchone()
    r = vault_cli("migrate", owner, "--grant", APP, "--no-checkpoint-key")
    assert r.exit_code == 0, r.stderr
    assert f"granted the application privileges (not the checkpoint key) to {APP}" in r.stdout
    with psycopg.connect(app) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT count(*) FROM vault.log_key")
    r = vault_cli("migrate", owner, "--no-checkpoint-key")
    assert r.exit_code == 2 and "goes with --grant ROLE" in r.stderr


def test_grants_name_real_roles_and_say_what_they_can_read(pg_cluster: Cluster) -> None:
    # "--grant public" granted PUBLIC -- every role of the cluster -- the
    # application privileges and the checkpoint key, and said "granted ...
    # to public"; and "--no-checkpoint-key" said "(not the checkpoint key)"
    # of a role that still read it through a group it belongs to.
    owner = pg_cluster.dsn(OWNER, dbname_of(pg_cluster.new_database(schema=False)))
    for name in ("public", "PUBLIC", "nobody_here"):
        r = vault_cli("migrate", owner, "--grant", name, "--checkpoint-key")
        assert r.exit_code == 2 and "there is no database role" in r.stderr, r.stderr
    db = dbname_of(owner)
    pg_cluster.execute("CREATE ROLE ws_group NOLOGIN")
    pg_cluster.execute("CREATE ROLE ws_anna LOGIN IN ROLE ws_group")
    assert vault_cli("migrate", owner, "--grant", "ws_group", "--checkpoint-key").exit_code == 0
    r = vault_cli("migrate", owner, "--grant", "ws_anna", "--no-checkpoint-key")
    assert r.exit_code == 0, r.stderr
    assert "granted the application privileges and the checkpoint key to ws_anna" in r.stdout
    assert "vault: warning: ws_anna can still read the checkpoint key through another role" \
        in r.stderr
    assert pg_cluster.execute("SELECT has_table_privilege('ws_anna', 'vault.log_key', 'SELECT')",
                              dbname=db) == [(True,)]
    # A role that reads it by a column grant, or can SET ROLE to one that
    # may (NOINHERIT), reads it too.
    pg_cluster.execute("CREATE ROLE ws_ben LOGIN NOINHERIT IN ROLE ws_group")
    pg_cluster.execute("CREATE ROLE ws_cid LOGIN")
    for role in ("ws_ben", "ws_cid"):
        assert vault_cli("migrate", owner, "--grant", role, "--no-checkpoint-key").exit_code == 0
    pg_cluster.execute("GRANT SELECT (data) ON vault.log_key TO ws_cid", dbname=db)
    from vault.store.postgres import granted_roles

    granted = granted_roles(owner)
    assert (granted["ws_ben"], granted["ws_cid"], granted["ws_group"]) == (True, True, True)


def test_the_cli_takes_a_dsn_as_vault(tmp_path: Path, pg_cluster: Cluster,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from backends import PostgresKind

    office = make_office(tmp_path, PostgresKind(pg_cluster))
    src = office.file("memo.txt", b"over the wire")
    monkeypatch.setenv("VAULT_DIR", office.location)
    r = vault_cli("--identity", str(office.files["clerk"]), "seal", str(src), "--level",
                  "INTERNAL", "--compartment", "STAFF")
    assert r.exit_code == 0, r.stderr
    doc = r.stdout.split()[0]
    r = vault_cli("--identity", str(office.files["leader"]), "open", doc, "-o", "-")
    assert r.exit_code == 0 and r.stdout_bytes == b"over the wire"
    # The audit commands work on the database's log, as on a folder's.
    r = vault_cli("audit", "checkpoint")
    assert r.exit_code == 0 and r.stdout.startswith(f"vault/{vault.Vault(office.location).id}")
    r = vault_cli("audit", "prove", "1")
    assert r.exit_code == 0 and r.stdout.startswith("c2sp.org/tlog-proof@v1")
    r = vault_cli("audit", "verify")
    assert r.exit_code == 0, r.stderr
    office.raw.set_audit_line(1, office.raw.audit_lines()[1].replace(b"clerk", b"clerc"))
    r = vault_cli("audit", "verify")
    assert r.exit_code == 4 and "modified" in r.stderr + r.stdout


def test_a_read_only_auditor_verifies(tmp_path: Path, pg_cluster: Cluster) -> None:
    from backends import PostgresKind

    office = make_office(tmp_path, PostgresKind(pg_cluster))
    office.as_("clerk").seal(io.BytesIO(b"x"), level="INTERNAL", compartments=["STAFF"])
    db = dbname_of(office.location)
    pg_cluster.execute("DO $$ BEGIN CREATE ROLE auditor LOGIN; EXCEPTION WHEN duplicate_object"
                       " THEN NULL; END $$")
    for sql in ("GRANT USAGE ON SCHEMA vault TO auditor",
                "GRANT SELECT ON ALL TABLES IN SCHEMA vault TO auditor",
                "REVOKE SELECT ON vault.log_key FROM auditor"):
        pg_cluster.execute(sql, dbname=db, user=OWNER)
    auditor = pg_cluster.dsn("auditor", db)
    trusted = office.as_("officer").audit.checkpoint()
    checkpoint = tmp_path / "published.note"
    checkpoint.write_bytes(trusted)
    r = vault_cli("--vault", auditor, "audit", "verify", "--checkpoint", str(checkpoint))
    assert r.exit_code == 0, r.stderr
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        pg_cluster.execute("INSERT INTO vault.audit_log VALUES (99, 'x')", dbname=db,
                           user="auditor")


def test_a_log_with_set_aside_lines_moves_verbatim(tmp_path: Path, pg_cluster: Cluster) -> None:
    from vault._ops.migrate import move_vault

    office = make_office(tmp_path / "a", FolderKind())
    with open(office.path / "audit" / "log", "ab") as log:
        log.write(b'{"v":1,"seq":1,"acto')  # a write interrupted by a crash
    pg = pg_cluster.new_database()
    with pytest.raises(UsageError, match="interrupted write"):
        move_vault(office.location, pg, office.ids["officer"])
    office.as_("officer").doctor()  # its record sets the torn line aside (AUDIT.md §7)
    move_vault(office.location, pg, office.ids["officer"])
    moved = vault.Vault(pg, office.ids["officer"])
    assert moved.verify_audit().root == office.as_("officer").verify_audit().root
    assert [r.action for r in moved.audit.records()][:3] == ["init", "torn", "doctor"]


def test_a_json_object_set_aside_in_a_folder_log_moves_too(tmp_path: Path,
                                                            pg_cluster: Cluster) -> None:
    # A folder writer appends "{}" (and a record-shaped line numbered
    # wrong); the next writer's torn record sets them aside, and the folder
    # vault is clean. The database refused every JSON object that was no
    # record numbered as its row, so this vault could never move there.
    from vault._ops.migrate import move_vault

    office = make_office(tmp_path / "a", FolderKind())
    with open(office.path / "audit" / "log", "ab") as log:
        # "\u0000": JSON the server stores but cannot read a member of.
        log.write(b'{}\n{"v":2,"seq":999}\n{"a":"\\u0000","seq":1,"v":2}\n')
    office.as_("clerk").seal(io.BytesIO(b"staff notes"), level="INTERNAL",
                             compartments=["STAFF"])  # sets both aside
    assert office.as_("officer").doctor().ok
    pg = pg_cluster.new_database()
    move_vault(office.location, pg, office.ids["officer"])
    moved = vault.Vault(pg, office.ids["officer"])
    assert moved.verify_audit().root == office.as_("officer").verify_audit().root
    assert moved.doctor().ok
    # Alone, such a line is still refused: no torn record names it.
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="no torn record"):
        pg_cluster.execute("INSERT INTO vault.audit_log (seq, line) SELECT max(seq) + 1, "
                           "'{}' FROM vault.audit_log", dbname=dbname_of(pg), user=APP)


# What a folder writer without a key can append to the log, each set aside
# by the next writer's torn record: the folder vault stays clean with it.
_SET_ASIDE = {
    "an empty line": [b""],
    "a line of 600,000 bytes": [b"x" * 600_000],
    "a record numbered ahead": [b'{"v":2,"time":"x","seq":99999}'],
    "5,000 lines": [b"x"] * 5000,  # more than a torn record names (AUDIT.md §8)
}


def _torn_naming(first: int, lines: list[bytes]) -> bytes:
    seq = first + len(lines)
    return json.dumps({"v": 2, "seq": seq, "time": "2024-01-01T00:00:00Z", "action": "torn",
                       "fragments": [{"length": len(x), "seq": first + i,
                                      "sha256": hashlib.sha256(x).hexdigest()}
                                     for i, x in enumerate(lines)][-4096:]},
                      separators=(",", ":")).encode()


@pytest.mark.parametrize("junk", list(_SET_ASIDE))
def test_every_line_a_folder_log_sets_aside_moves_to_postgresql_and_back_byte_for_byte(
        tmp_path: Path, pg_cluster: Cluster, junk: str) -> None:
    # The database refused such a line (its size, or its number), and the
    # vault could never move there again: lines are never removed.
    office = make_office(tmp_path / "a", FolderKind())
    with open(office.path / "audit" / "log", "ab") as log:
        log.write(b"".join(x + b"\n" for x in _SET_ASIDE[junk]))
    office.as_("clerk").seal(io.BytesIO(b"staff notes"), level="INTERNAL",
                             compartments=["STAFF"])  # sets them aside
    assert office.as_("officer").doctor().ok
    pg = pg_cluster.new_database()
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", pg)
    assert r.exit_code == 0, r.stderr
    lines, there = office.raw.audit_lines(), PostgresKind(pg_cluster).raw(pg)
    assert there.audit_lines() == lines
    moved = vault.Vault(pg, office.ids["officer"])
    assert moved.verify_audit().root == office.as_("officer").verify_audit().root
    assert moved.doctor().ok
    back = tmp_path / "b"
    r = vault_cli("--vault", pg, "--identity", str(office.files["officer"]), "migrate",
                  "--to", str(back))
    assert r.exit_code == 0, r.stderr
    assert FolderKind().raw(str(back)).audit_lines() == there.audit_lines()
    assert there.audit_lines()[:len(lines)] == lines
    # Written live, by the application role, the same lines are still
    # refused -- with a torn record naming them in the same transaction.
    with pg_cluster.connect(APP, dbname_of(pg)) as conn:
        head = int(conn.execute("SELECT max(seq) + 1 FROM vault.audit_log").fetchone()[0])
        planted = _SET_ASIDE[junk] + [_torn_naming(head, _SET_ASIDE[junk])]
        with pytest.raises(psycopg.IntegrityError), conn.transaction():
            conn.execute("INSERT INTO vault.audit_log (seq, line) SELECT %s + u.i - 1, u.line"
                          " FROM unnest(%s::bytea[]) WITH ORDINALITY AS u(line, i)",
                          (head, planted))
    assert moved.doctor().ok


def _rows(pg_cluster: Cluster, pg: str) -> list[tuple[int, int]]:
    return [tuple(r) for r in pg_cluster.execute(  # type: ignore[misc]
        "SELECT (SELECT count(*) FROM vault.audit_log), (SELECT count(*) FROM vault.log_key)",
        dbname=dbname_of(pg), user=OWNER)]


def test_a_line_longer_than_a_database_holds_stops_the_move_there_before_anything_is_written(
        tmp_path: Path, pg_cluster: Cluster) -> None:
    from vault.store._pg_log import MAX_IMPORTED_LINE

    office = make_office(tmp_path / "a", FolderKind())
    n = len(office.raw.audit_lines())
    with open(office.path / "audit" / "log", "ab") as log:
        log.write(b"x" * (MAX_IMPORTED_LINE + 1) + b"\n")
    office.as_("clerk").seal(io.BytesIO(b"staff notes"), level="INTERNAL",
                             compartments=["STAFF"])  # sets it aside
    pg = pg_cluster.new_database()
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", pg)
    assert r.exit_code == 4, r.stderr
    assert f"vault: audit line {n} is {MAX_IMPORTED_LINE + 1:,} bytes, more than a " \
           "database's audit log holds in a line" in r.stderr
    assert "hint: only junk is that long" in r.stderr and "keep the vault in a folder" in r.stderr
    assert _rows(pg_cluster, pg) == [(0, 0)]
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", str(tmp_path / "b"))
    assert r.exit_code == 0, r.stderr


def test_a_refusal_by_the_destinations_checks_is_named_so_and_leaves_nothing_there(
        tmp_path: Path, pg_cluster: Cluster) -> None:
    # The database's checks refused a line: the move said "check the database
    # server and the connection; nothing was changed", while the checkpoint
    # key was already stored there, and a move again was refused for it.
    office = make_office(tmp_path / "a", FolderKind())
    pg = pg_cluster.new_database()
    pg_cluster.execute("ALTER TABLE vault.audit_log ADD CONSTRAINT audit_log_no_moves"
                       " CHECK (position('\"migrate\"'::bytea IN line) = 0) NOT VALID",
                       dbname=dbname_of(pg), user=OWNER)
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", pg)
    assert r.exit_code == 4, r.stderr
    assert "vault: the destination refused the audit log: new row for relation \"audit_log\" " \
           "violates check constraint \"audit_log_no_moves\"" in r.stderr
    assert "has its owner changed the schema?" in r.stderr
    assert "server" not in r.stderr and "Traceback" not in r.stderr
    assert _rows(pg_cluster, pg) == [(0, 0)]


def test_a_version_kept_as_evidence_after_an_incident_moves_with_the_vault(
        tmp_path: Path, backend: Kind, pg_cluster: Cluster) -> None:
    # Honest use; a disk error changes one byte of the clerk's seal decision;
    # the officer seals the line off (DEPLOYMENT.md §14), and doctor keeps
    # the version its completion names as evidence -- the document's only
    # stored copy, to be sealed again. A move left it behind, exit 0, and
    # the destination's doctor still said it was kept.
    office = make_office(tmp_path / "a", backend)
    with office.as_("clerk") as v:
        v.seal(io.BytesIO(b"rota"), level="INTERNAL", compartments=["STAFF"])
        doc = v.seal(io.BytesIO(b"staff rota: the only copy"), level="INTERNAL",
                     compartments=["STAFF"]).id
    witness = office.as_("officer").audit.checkpoint()
    lines = office.raw.audit_lines()
    k = next(i for i, line in enumerate(lines) if json.loads(line).get("doc") == doc
             and json.loads(line)["outcome"] == "allowed")
    done = next(j for j in range(k + 1, len(lines)) if json.loads(lines[j]).get("doc") == doc)
    line = lines[k]
    at = line.index(b'"host":"') + len(b'"host":"')
    office.raw.set_audit_line(k, line[:at] + (b"Y" if line[at:at + 1] == b"X" else b"X")
                              + line[at + 1:])
    with office.as_("officer") as v:
        v.declare_incident(k, k, reason="disk error", checkpoint=witness)
        assert any(f"of {doc} record" in n and "kept as evidence" in n for n in v.doctor().notes)
    ((_, version),) = [(d, ver) for d, ver in office.raw.doc_files() if d == doc]
    kept = office.raw.doc_version_bytes(doc, version)

    other = PostgresKind(pg_cluster) if isinstance(backend, FolderKind) else FolderKind()
    dest = other.new_location(tmp_path / "b")
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", dest, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["evidence"] == [f"docs/{doc}.{version}.age"]
    there = other.raw(dest)
    assert there.doc_version_bytes(doc, version) == kept
    with vault.Vault(dest, office.ids["officer"]) as v:
        report = v.doctor()
        assert report.ok
        assert any(n.startswith(f"docs/{doc}.{version}.age: the version of {doc}")
                   and "kept as evidence" in n for n in report.notes), report.notes
    # Gone from there, its doctor names it: the note says it is kept.
    there.delete_doc_version(doc, version)
    with vault.Vault(dest, office.ids["officer"]) as v:
        problems = v.doctor().problems
    assert [p for p in problems if f"docs/{doc}.{version}.age" in p] == [
        f"docs/{doc}.{version}.age: the version of {doc} record {done} names, whose decision "
        "an incident sealed off, is not stored: it is kept as evidence, the only copy to seal "
        "again -- restore it from a backup"], problems


@pytest.mark.parametrize("to", ["folder", "postgres"])
def test_a_checkpoint_key_the_vault_does_not_pin_is_left_behind_with_a_note(
        tmp_path: Path, pg_cluster: Cluster, to: str) -> None:
    # A folder writer replaced audit/log.key with a key of her own (doctor:
    # "it was replaced"); the move carried it into the database, where the
    # application role can never take it out, and no checkpoint was made
    # there. What the manifest does not pin is not the vault's: not moved.
    from vault.audit import NoteSigner

    office = make_office(tmp_path / "a", FolderKind())
    key = office.path / "audit" / "log.key"
    pinned = key.read_bytes()
    mine = NoteSigner.generate(NoteSigner.from_private_key(pinned.decode().strip()).name)
    key.write_bytes((mine.private_key() + "\n").encode())
    assert any("it was replaced" in p for p in office.as_("officer").doctor().problems)
    other = PostgresKind(pg_cluster) if to == "postgres" else FolderKind()
    dest = other.new_location(tmp_path / "b")
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", dest)
    assert r.exit_code == 0, r.stderr
    assert "note: the checkpoint key is not the one vault.json pins (it was replaced): it was " \
           "not copied" in r.stderr, r.stderr
    with vault.Vault(dest, office.ids["officer"]) as v:
        assert "audit log: the checkpoint key is missing; checkpoints are not being made" \
            in v.doctor().problems
    # The pinned key put there from a backup, as the note says: checkpoints again.
    if to == "postgres":
        pg_cluster.execute("INSERT INTO vault.log_key (data) VALUES (%s)", (pinned,),
                           dbname=dbname_of(dest), user=APP)
    else:
        (Path(dest) / "audit" / "log.key").write_bytes(pinned)
        os.chmod(Path(dest) / "audit" / "log.key", 0o600)
    r = vault_cli("--vault", dest, "--identity", str(office.files["officer"]), "audit",
                  "checkpoint")
    assert r.exit_code == 0, r.stderr
    with vault.Vault(dest, office.ids["officer"]) as v:
        assert v.doctor().ok


@pytest.mark.parametrize("to", ["folder", "postgres"])
def test_a_source_a_new_machine_would_refuse_is_not_moved(
        tmp_path: Path, pg_cluster: Cluster, to: str) -> None:
    # A disk error changed one byte of the clerk's seal decision; the officer
    # sealed the line off without a checkpoint kept outside: the officer's
    # machine holds the line's original leaf, no new machine does. The move
    # wrote the manifest, then its final check failed (exit 4), leaving a
    # complete vault there that workstations used.
    office = make_office(tmp_path / "a", FolderKind())
    with vault.Vault(office.location, office.ids["clerk"], state_dir=tmp_path / "clerk") as v:
        for _ in range(3):  # on the clerk's machine
            v.seal(io.BytesIO(b"rota"), level="INTERNAL", compartments=["STAFF"])
    k = next(i for i, line in enumerate(office.raw.audit_lines())
             if json.loads(line).get("action") == "seal") + 2  # the second seal decision
    line = office.raw.audit_lines()[k]
    at = line.index(b'"host":"') + len(b'"host":"')
    office.raw.set_audit_line(k, line[:at] + (b"Y" if line[at:at + 1] == b"X" else b"X")
                              + line[at + 1:])
    with office.as_("officer") as v:
        v.declare_incident(k, k, reason="disk error")
        assert v.verify_audit().size  # this machine accepts it
    other = PostgresKind(pg_cluster) if to == "postgres" else FolderKind()
    dest = other.new_location(tmp_path / "b")
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", dest)
    assert r.exit_code == 4, r.stderr
    assert "vault: the source's audit log does not verify on a machine that never read it: " \
           f"record {k + 1} (clerk) has a bad signature" in r.stderr, r.stderr
    assert "hint: every machine at the destination would refuse it" in r.stderr
    assert "--checkpoint" in r.stderr
    if to == "folder":
        assert not os.path.lexists(dest)
    else:
        assert _rows(pg_cluster, dest) == [(0, 0)]
    r = vault_cli("--vault", dest, "--identity", str(office.files["clerk"]), "ls")
    assert r.exit_code == 2 and "no vault at" in r.stderr, r.stderr


def test_a_move_its_final_check_refuses_leaves_no_vault_behind(
        tmp_path: Path, pg_cluster: Cluster) -> None:
    # The destination changes what it is given (its owner's trigger rewrites
    # a line): the final check finds another tree, after the manifest had
    # been written -- a complete vault, with another history, that worked.
    office, pg, r = _moved_where_the_check_fails(tmp_path, pg_cluster)
    assert r.exit_code == 4, r.stderr
    assert "vault: the moved vault does not verify: the audit log installs no policy" \
        in r.stderr, r.stderr
    assert "use a new database (createdb)" in r.stderr
    r = vault_cli("--vault", pg, "--identity", str(office.files["clerk"]), "ls")
    assert r.exit_code == 2 and "no vault at" in r.stderr, r.stderr


def _moved_where_the_check_fails(tmp_path: Path,
                                 pg_cluster: Cluster) -> tuple[Office, str, Result]:
    """A move into a database whose owner's trigger rewrites a line: the
    final check refuses it, after the rows were written."""
    office = make_office(tmp_path / "a", FolderKind())
    pg = pg_cluster.new_database()
    pg_cluster.execute(
        "CREATE FUNCTION vault.reword() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " NEW.line := convert_to(replace(convert_from(NEW.line, 'UTF8'), ' created; ',"
        " ' CREATED; '), 'UTF8');"
        " RETURN NEW; END $$; CREATE TRIGGER audit_log_0_reword BEFORE INSERT ON"
        " vault.audit_log FOR EACH ROW EXECUTE FUNCTION vault.reword()",
        dbname=dbname_of(pg), user=OWNER)
    return office, pg, vault_cli("--identity", str(office.files["officer"]), "migrate",
                                 "--from", office.location, "--to", pg)


def test_a_place_a_move_left_unfinished_is_named_so_not_offered_for_an_init(
        tmp_path: Path, pg_cluster: Cluster) -> None:
    # A workstation pointed at what a failed move left in a database, or a
    # killed one in a folder, was told "create one with 'vault init ...'".
    office, pg, r = _moved_where_the_check_fails(tmp_path, pg_cluster)
    assert r.exit_code == 4, r.stderr
    half = tmp_path / "half"
    open_backend(half).create()  # a folder's layout, made first; no manifest
    for place in (pg, str(half)):
        r = vault_cli("--vault", place, "--identity", str(office.files["clerk"]), "ls")
        assert r.exit_code == 2, r.stderr
        assert f"vault: no vault at {open_backend(place).location}: it holds vault data but " \
               "no manifest\nhint: an init or a move that did not finish leaves this: make it " \
               "again in a new folder or database; if a vault was there, its manifest was " \
               "removed -- restore it from a backup" in r.stderr, r.stderr
    for place in (str(tmp_path / "none"), pg_cluster.new_database()):
        r = vault_cli("--vault", place, "--identity", str(office.files["clerk"]), "ls")
        assert r.exit_code == 2 and "create one with 'vault init" in r.stderr, r.stderr


def test_a_move_onto_a_full_disk_says_so_and_leaves_nothing_there(tmp_path: Path) -> None:
    # "vault: no space left on device", exit 1, no hint, and the folder left
    # half written, which 'vault ls' told to create with 'vault init'.
    office = make_office(tmp_path / "a", FolderKind())
    with office.as_("clerk") as v:
        for i in range(3):
            v.seal(io.BytesIO(os.urandom(200_000)), filename=f"{i}.bin", level="INTERNAL",
                   compartments=["STAFF"])
    with small_tmpfs(tmp_path / "small", "512k"):
        dest = tmp_path / "small" / "v2"
        r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                      office.location, "--to", str(dest))
        assert r.exit_code == 1, r.stderr
        assert "vault: the move failed: no space left on device" in r.stderr, r.stderr
        assert "hint: fix the cause (a full disk?), then move again; no vault was made there" \
            in r.stderr, r.stderr
        assert not os.path.lexists(dest)


def test_a_mistyped_source_is_no_vault_not_tampering(tmp_path: Path,
                                                       pg_cluster: Cluster) -> None:
    # "vault: vault folder is missing keyrings/", exit 4, no hint: a typo
    # reported as tampering, where 'vault ls' says "no vault at".
    office = make_office(tmp_path / "a", FolderKind())
    for source in (str(tmp_path / "no-such-vault"), pg_cluster.new_database()):
        r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from", source,
                      "--to", str(tmp_path / "b"))
        assert r.exit_code == 2, r.stderr
        assert f"vault: no vault at {open_backend(source).location}\n" \
               "hint: check the vault to move: --from, --vault or VAULT_DSN" in r.stderr, r.stderr
        assert not os.path.lexists(tmp_path / "b")


def test_a_document_stored_under_another_name_is_named_when_a_move_stops(
        tmp_path: Path) -> None:
    # A document's file renamed (a move back restores it): the move stopped
    # with "vault: fileNotFoundError", naming nothing.
    from vault._ops.migrate import move_vault
    from vault.errors import IntegrityError

    office = make_office(tmp_path / "a", FolderKind())
    doc = office.as_("clerk").seal(io.BytesIO(b"staff notes"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    (stored,) = (office.path / "docs").glob(f"{doc}.*.age")
    os.rename(stored, stored.with_name(f"{doc}.00000000.age"))
    with pytest.raises(IntegrityError, match=f"document {doc}: its current version is not "
                                             "stored"):
        move_vault(office.location, tmp_path / "b", office.ids["officer"])
    assert not (tmp_path / "b" / "vault.json").exists()
    # Any folder writer can delete a file; that must not stop every move
    # for good. Asked to, the rest moves and the missing one is named.
    kept = office.as_("clerk").seal(io.BytesIO(b"rota"), level="INTERNAL",
                                    compartments=["STAFF"]).id
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", str(tmp_path / "c"), "--missing-ok")
    assert r.exit_code == 0, r.stderr
    assert f"vault: warning: document {doc} was not moved" in r.stderr
    assert "moved the vault" in r.stdout and "2 documents" not in r.stdout
    out = io.BytesIO()
    vault.Vault(str(tmp_path / "c"), office.ids["leader"]).open(kept, out)
    assert out.getvalue() == b"rota"
    report = move_vault(office.location, tmp_path / "d", office.ids["officer"],
                        missing_ok=True)
    assert (report.missing, report.documents) == ([doc], 1)
    r = vault_cli("migrate", "--missing-ok")
    assert r.exit_code == 2 and "need --to" in r.stderr


def test_a_planted_oversized_statement_file_does_not_stop_a_move(
        tmp_path: Path, pg_cluster: Cluster) -> None:
    # A request file over the database's 1 MiB bound, planted in the folder:
    # the move to PostgreSQL failed as a whole.
    from vault._ops.migrate import move_vault

    office = make_office(tmp_path / "a", FolderKind())
    (office.path / "requests").mkdir(exist_ok=True)
    (office.path / "requests" / f"{'0' * 64}.json").write_bytes(b"{" + b" " * (2 << 20) + b"}")
    pg = pg_cluster.new_database()
    move_vault(office.location, pg, office.ids["officer"])
    assert vault.Vault(pg, office.ids["officer"]).doctor().ok


def test_planted_checkpoints_are_not_moved(tmp_path: Path, pg_cluster: Cluster) -> None:
    # A folder writer plants checkpoint files: one of 1 MiB, and one that
    # does not verify. They are findings, not checkpoints: the move carries
    # the log's own checkpoints only (the database would refuse a note over
    # 64 KiB, and the move with it).
    office = make_office(tmp_path / "a", FolderKind())
    office.as_("clerk").seal(office.file("a.txt", b"doc"), level="INTERNAL",
                             compartments=["STAFF"])
    office.as_("officer").audit.checkpoint()
    folder = Path(office.location) / "audit" / "checkpoints"
    (folder / "1").write_bytes(b"x" * (1 << 20))
    (folder / "2").write_bytes(b"not a checkpoint\n")
    pg = pg_cluster.new_database()
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", pg, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["checkpoints"] >= 1
    assert vault.Vault(pg, office.ids["officer"]).doctor().ok


@pytest.mark.parametrize("planted", ["a checkpoint key", "a statement"])
def test_rows_put_in_a_prepared_database_stop_no_move_in_silence(
        tmp_path: Path, pg_cluster: Cluster, planted: str) -> None:
    # The database is prepared ('vault migrate DB --grant vault_app'); before
    # the move, someone holding the application role inserts a row. A
    # checkpoint key stopped every move for good with "vault:
    # fileExistsError" (the role cannot remove it); a statement was taken
    # over by the vault made there. Both are refused, naming why.
    office = make_office(tmp_path / "a", FolderKind())
    pg = pg_cluster.new_database()
    with psycopg.connect(pg_cluster.dsn(APP, dbname_of(pg)), autocommit=True) as c:
        if planted == "a checkpoint key":
            c.execute("INSERT INTO vault.log_key (data) VALUES ('PRIVATE+KEY+planted')")
        else:
            c.execute("INSERT INTO vault.statements (kind, name, data) VALUES "
                      "('request', encode(sha256('x'), 'hex'), 'x')")
    r = vault_cli("--identity", str(office.files["officer"]), "migrate", "--from",
                  office.location, "--to", pg)
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    assert ("already holds a checkpoint key" if planted == "a checkpoint key"
            else "holds vault data but no manifest (in statements") in r.stderr, r.stderr
    assert "use a new database (createdb)" in r.stderr
    with pytest.raises(UsageError):  # a vault made there is refused the same way
        vault.Vault.init(pg, office.policy, office.ids["officer"])


# The schema as each earlier release made it (pg_dump --schema-only of a
# database that release's migrations built, named by schema version and
# commit): the migrations of some were edited after they shipped, and an
# upgraded database kept what its release had made.
_RELEASED = sorted((Path(__file__).parent / "pg_schemas").glob("v*.sql"))


class _ReleasedKind(PostgresKind):
    """Vaults in databases an earlier release made, upgraded by ``vault migrate``."""

    def __init__(self, cluster: Cluster, dump: Path) -> None:
        super().__init__(cluster)
        self.dump = dump

    def new_location(self, root: Path) -> str:
        name = dbname_of(self.cluster.new_database(schema=False))
        owner = self.cluster.dsn(OWNER, name)
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(self.dump.read_text())
        r = vault_cli("migrate", owner, "--grant", APP, "--checkpoint-key")
        assert r.exit_code == 0, r.output
        return self.cluster.dsn(APP, name)


@pytest.mark.parametrize("dump", _RELEASED, ids=lambda p: p.stem)
def test_a_database_an_earlier_release_made_upgrades_to_the_same_schema_as_a_new_one(
        tmp_path: Path, pg_cluster: Cluster, dump: Path) -> None:
    # Schema 16 as shipped, upgraded: doctor said its tree trigger's body
    # "was replaced" -- the release after had edited that migration in place.
    assert len(_RELEASED) >= 8
    office = make_office(tmp_path / "office", _ReleasedKind(pg_cluster, dump))
    with office.as_("clerk") as v:
        doc = v.seal(io.BytesIO(b"minutes"), filename="m.txt", level="INTERNAL",
                     compartments=["STAFF"]).id
    assert office.cli("officer", "audit", "checkpoint").exit_code == 0
    _contents(office, office.location, {doc: b"minutes"})
    with office.as_("officer") as v:
        assert v.doctor().problems == []
