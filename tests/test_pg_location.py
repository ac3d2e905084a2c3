"""A PostgreSQL location's password never reaches an error, whatever it
holds (docs/DEPLOYMENT.md §3): a location libpq would read otherwise than
it is meant is refused before any connection, quoting none of it; one
percent-encoded logs in; and a driver's message holding a piece of a
password is not shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from cli_support import assert_error, run
from pg_support import APP, SUPER, Cluster, dbname_of
from psycopg import sql
from psycopg.conninfo import make_conninfo

import vault
from vault.errors import StorageError, UsageError
from vault.store import _pg_location
from vault.store._pg_conn import Database, storage_errors
from vault.store._pg_location import remember_secrets, secrets_of


def _pieces(password: str) -> set[str]:
    """Every three characters in a row of ``password``."""
    return {password[i:i + 3] for i in range(len(password) - 2)}


def _quotes(text: str, password: str) -> set[str]:
    return {piece for piece in _pieces(password) if piece in text}


@pytest.fixture
def known(monkeypatch: pytest.MonkeyPatch) -> None:
    """No password but this test's is known (conftest forgets them after
    each test)."""
    with _pg_location._known_lock:
        _pg_location._known.clear()
    monkeypatch.delenv("PGPASSWORD", raising=False)


@pytest.fixture
def identity(tmp_path: Path) -> Path:
    path = tmp_path / "clerk.key"
    vault.new_identity("clerk").to_file(path, None)
    return path


def _shapes(cluster: Cluster) -> list[tuple[str, str]]:
    """(password, location) written as people write them, raw: libpq reads
    each otherwise than meant, or nothing else does as libpq."""
    there = f"/vault?host={cluster.dir}&port={cluster.port}"
    return [
        # after the first '@', libpq takes the rest for the host
        ("correct@horse-battery-staple",
         "postgresql://vault_app:correct@horse-battery-staple@db.example.invalid:5432/vault"),
        # before a '/', it takes the user part for a host and a port
        ("hunter2/xyz", "postgresql://vault_app:hunter2/xyz@/vault?host=/var/run/postgresql"),
        ("Sup3rS3cret/2024", f"postgresql://vault_app:Sup3rS3cret/2024@{there}"),
        ("p@ss/w0rd!", f"postgresql://vault_app:p@ss/w0rd!@{there}"),
        # with no '@' after it, the password is the port
        ("hunter2/xyz", "postgresql://vault_app:hunter2/xyz"),
        # a user name of the form user@server, the password then the port
        ("Tr0ub4dor&3", "postgresql://vault_app@server:Tr0ub4dor&3@db.example.invalid/vault"),
        # libpq reads these as meant; a URL parser, or a person, ends the
        # user part at the '#' or '?'
        ("Hunter#2s3cret", f"postgresql://vault_app:Hunter#2s3cret@{there}"),
        ("Hunter?2s3cret", f"postgresql://vault_app:Hunter?2s3cret@{there}"),
        ("a?b/Kq9z", f"postgresql://vault_app:a?b/Kq9z@{there}"),
    ]


def test_a_password_the_location_does_not_carry_as_written_is_refused_unquoted(
        pg_cluster: Cluster, identity: Path, known: None) -> None:
    # Each was masked in the location the error showed, then quoted by the
    # driver's message appended to it: "failed to resolve host
    # 'horse-battery-staple@db.example.invalid'", 'invalid integer value
    # "hunter2" for connection option "port"'.
    for password, location in _shapes(pg_cluster):
        for command in (("ls",), ("doctor",), ("audit", "verify")):
            r = run("--vault", location, "--identity", str(identity), *command)
            assert_error(r, 2, "percent-encode")
            assert not _quotes(r.stdout + r.stderr, password), (location, r.stderr)
        with pytest.raises(UsageError) as caught:
            vault.Vault(location, vault.new_identity("someone"))
        assert not _quotes(f"{caught.value.message} {caught.value.hint}", password)
    r = run("migrate", _shapes(pg_cluster)[0][1])
    assert_error(r, 2, "percent-encode")
    assert "horse" not in r.stderr


@pytest.fixture
def password_role(pg_cluster: Cluster) -> Iterator[tuple[str, str]]:
    """A role that logs in with a password holding every character a URI
    reserves, the server asking for it (the test cluster trusts the rest)."""
    role, password = "vault_pw", "Zq@9/Kx?#%w:L m&"
    with pg_cluster.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(role), sql.Literal(password), sql.Identifier(APP)))
    hba = pg_cluster.data / "pg_hba.conf"
    kept = hba.read_text()
    hba.write_text(f"local all {role} scram-sha-256\n{kept}")
    pg_cluster.execute("SELECT pg_reload_conf()")
    try:
        yield role, password
    finally:
        hba.write_text(kept)
        pg_cluster.execute("SELECT pg_reload_conf()")
        pg_cluster.execute(f"DROP ROLE {role}")


def test_a_password_percent_encoded_logs_in_and_a_wrong_one_is_named_unquoted(
        pg_cluster: Cluster, password_role: tuple[str, str], known: None) -> None:
    role, password = password_role
    name = dbname_of(pg_cluster.new_database())
    query = f"host={pg_cluster.dir}&port={pg_cluster.port}"
    kv = {"host": str(pg_cluster.dir), "port": pg_cluster.port, "dbname": name, "user": role}

    def forms(secret: str) -> list[str]:
        encoded = quote(secret, safe="")
        return [f"postgresql://{role}:{encoded}@/{name}?{query}",
                f"postgresql://{role}@/{name}?{query}&password={encoded}",
                make_conninfo(**kv, password=secret)]

    for location in forms(password):
        with Database(location).connection() as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
    wrong = password.replace("Zq", "Zr")
    for location in forms(wrong):
        with pytest.raises(StorageError) as caught, Database(location).connection():
            pass
        message = str(caught.value)
        assert f'password authentication failed for user "{role}"' in message, message
        assert not _quotes(message, wrong) and not _quotes(message, password)
    # The command line, with the form it takes: in, to a database without a vault.
    r = run("--vault", forms(password)[0], "audit", "verify")
    assert_error(r, 2, f"no vault at postgresql://{role}:***@/{name}?")
    r = run("--vault", forms(wrong)[0], "audit", "verify")
    assert r.exit_code == 1 and "password authentication failed" in r.stderr, r.stderr
    assert not _quotes(r.stderr, wrong)


def test_a_driver_message_holding_a_piece_of_a_password_is_not_shown(
        pg_cluster: Cluster, known: None) -> None:
    # A password pasted where the host goes, too: libpq quotes the host it
    # could not resolve. The location shown keeps it in the host's place,
    # where it was written; the driver's words are not shown, nor chained.
    db = Database("host=Kq9zSecret.invalid password=Kq9zSecret dbname=vault")
    with pytest.raises(StorageError) as caught, db.connection():
        pass
    shown = caught.value.message
    assert shown.startswith(f"cannot connect to the vault database {db.location}: ")
    assert "Kq9zSecret.invalid" in db.location and "password=***" in db.location
    driver_part = shown.removeprefix(f"cannot connect to the vault database {db.location}")
    assert "not shown, as it may quote a password" in driver_part
    assert not _quotes(driver_part, "Kq9zSecret"), shown
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    # A message with nothing of a password is shown whole, and chained.
    with pytest.raises(StorageError) as caught, \
            Database(pg_cluster.dsn(SUPER, "no_such_db")).connection():
        pass
    assert 'database "no_such_db" does not exist' in caught.value.message
    assert caught.value.__cause__ is not None


def test_the_driver_message_of_a_misread_password_is_not_shown_either(
        pg_cluster: Cluster, known: None) -> None:
    # Behind the refusal: where the driver is given a location as written
    # (the refusal missing a shape), what it quotes of the password, as it
    # reads it or as a person means it, is still not shown.
    for password, location in _shapes(pg_cluster)[:4]:
        remember_secrets(secrets_of(location))
        with pytest.raises(StorageError) as caught, storage_errors("failed"):
            psycopg.connect(location, connect_timeout=5).close()
        driver_part = caught.value.message.removeprefix("failed: ")
        assert driver_part.startswith("the database driver's message is not shown")
        assert not _quotes(driver_part, password), caught.value.message
        assert caught.value.__cause__ is None
