"""A vault in a PostgreSQL database, shared by many workstations
(docs/DEPLOYMENT.md).

The location is a libpq connection URI, ``postgresql://[user@]host[:port]/
database[?sslmode=verify-full&...]``; whatever it leaves out comes from
libpq's environment (``PGHOST``, ``PGUSER``, ``PGPASSFILE``, ``PGSSLMODE``
...). One database holds one vault, in the schema ``vault``
(:mod:`vault.store._pg_schema`). Objects map to tables:

=====================  ============================================
manifest, log key      ``vault.manifest``, ``vault.log_key`` (one row each)
keyring entries        ``vault.keyrings`` (owner recipient, key id)
audit actors           ``vault.actors`` (SHA-256 of the key)
requests, approvals    ``vault.statements`` (kind, SHA-256)
sealed documents       ``vault.documents`` + ``vault.document_chunks``
                       (:mod:`vault.store._pg_stream`), one row per version
the audit log          ``vault.audit_*`` (:mod:`vault.store._pg_log`)
=====================  ============================================

The contract of :mod:`vault.store.base` holds as for a folder: each write
is one transaction (atomic); exclusive creates are primary keys
(``INSERT ... ON CONFLICT DO NOTHING`` tells who won); the write lock is a
session-level advisory lock (:data:`WRITE_LOCK`), released by the server
if the session dies; nothing here interprets content. Ids are checked
against the same strict patterns as the folder's file names before any
query, and the tables' CHECK constraints repeat them.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import psycopg

from vault.errors import StorageError, UsageError
from vault.store import _pg_schema, _pg_stream
from vault.store._pg_conn import Database, describe, driver_cause, storage_errors
from vault.store._pg_schema import WRITE_LOCK
from vault.store.base import (
    DOC_ID,
    HASH,
    KEY_ID,
    MAX_KEYRING_ENTRY,
    OWNER,
    VERSION,
    Backend,
    Leftover,
    owner_key,
)

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit import AuditLog, NoteSigner

__all__ = ["WRITE_LOCK", "PostgresBackend", "migrate_schema"]


_STATEMENTS_PER_FETCH = 4  # rows of at most 1 MiB each
_HINT_MIGRATE = "run 'vault migrate LOCATION' as the database owner (docs/DEPLOYMENT.md §5)"


def _self_certified(key_hash: str, public_key: bytes) -> str:
    """``key_hash``, if it is the SHA-256 of ``public_key`` (an actor's
    file or row is named by its key's hash)."""
    if hashlib.sha256(public_key).hexdigest() != _check("hash", key_hash):
        raise UsageError("an audit actor's key hash must be the SHA-256 of its key")
    return key_hash


def _check(kind: str, value: str) -> str:
    pattern = {"doc": DOC_ID, "key": KEY_ID, "owner": OWNER, "hash": HASH,
               "version": VERSION}[kind]
    if not isinstance(value, str) or not pattern.match(value):
        raise UsageError(f"not a valid {kind} id: {value[:40]!r}")
    return value



# The tables of a vault that hold nothing before its first record
# (docs/DEPLOYMENT.md §5), those of them that hold something; the key's,
# which the application role may not read, refuses a second key itself.
_NOT_EMPTY = """SELECT array_remove(ARRAY[
    CASE WHEN EXISTS (SELECT 1 FROM vault.audit_log) THEN 'audit_log' END,
    CASE WHEN EXISTS (SELECT 1 FROM vault.audit_checkpoints) THEN 'audit_checkpoints' END,
    CASE WHEN EXISTS (SELECT 1 FROM vault.keyrings) THEN 'keyrings' END,
    CASE WHEN EXISTS (SELECT 1 FROM vault.actors) THEN 'actors' END,
    CASE WHEN EXISTS (SELECT 1 FROM vault.statements) THEN 'statements' END,
    CASE WHEN EXISTS (SELECT 1 FROM vault.documents) THEN 'documents' END,
    CASE WHEN EXISTS (SELECT 1 FROM vault.document_chunks) THEN 'document_chunks' END
], NULL)"""


class PostgresBackend(Backend):
    """A vault stored in the PostgreSQL database named by ``location``."""

    def __init__(self, location: str) -> None:
        self.db = Database.get(location)
        self.location = self.db.location  # without the password

    def __repr__(self) -> str:
        return f"PostgresBackend({self.location!r})"

    # -- helpers -------------------------------------------------------------

    def _one(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> Any:
        """First column of the first row, or None."""
        with storage_errors(what, self.db), self.db.connection() as conn:
            row = conn.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def _column(self, what: str, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with storage_errors(what, self.db), self.db.connection() as conn:
            return [r[0] for r in conn.execute(sql, args).fetchall()]

    def _insert(self, what: str, sql: str, args: tuple[Any, ...]) -> bool:
        """Run an ``INSERT ... ON CONFLICT DO NOTHING``; did it insert?"""
        with storage_errors(what, self.db), self.db.connection() as conn:
            return conn.execute(sql, args).rowcount == 1

    # -- lifecycle ---------------------------------------------------------

    def schema_version(self) -> int:
        with storage_errors(f"cannot read the vault schema of {self.location}", self.db), \
                self.db.connection() as conn:
            return _pg_schema.current_version(conn)

    def _ready(self) -> bool:
        """Is the vault schema there, at this version? (False: no schema.)"""
        if self.db.schema_checked:
            return True
        version = self.schema_version()
        if version == 0:
            return False
        if version < _pg_schema.FIRST:
            raise UsageError(f"{self.location} holds a vault of an earlier format",
                             hint="open its documents with the recovery identity and stock "
                                  "'age -d', then seal them into a new vault")
        if version != _pg_schema.VERSION:
            newer = version > _pg_schema.VERSION
            raise StorageError(
                f"the vault schema of {self.location} is version {version}; this version of "
                f"vault uses version {_pg_schema.VERSION}",
                hint="upgrade vault on this machine" if newer else _HINT_MIGRATE)
        self.db.schema_checked = True
        return True

    def exists(self) -> bool:
        if not self._ready():
            return False
        return bool(self._one("cannot read the manifest",
                              "SELECT EXISTS (SELECT 1 FROM vault.manifest)"))

    def unfinished(self) -> bool:
        return self._ready() and not self.exists() \
            and bool(self._one("cannot read the database", _NOT_EMPTY))

    def create(self) -> None:
        """Make the schema if need be, and check that nothing is in it yet."""
        if not self._ready():
            try:
                with self.db.connection() as conn:
                    _pg_schema.upgrade(conn)
            except psycopg.errors.InsufficientPrivilege:
                raise UsageError(f"{self.location} has no vault schema, and this role may not "
                                 "create it", hint=_HINT_MIGRATE) from None
            except psycopg.Error as e:
                raise StorageError(f"cannot create the vault schema: {describe(e)}") \
                    from driver_cause(e)
            self._ready()
        if self.exists():
            raise UsageError(f"a vault already exists in {self.location}")
        # Every table a vault starts empty: a row the application role put in
        # one before the vault was made (a checkpoint key, a keyring entry, a
        # statement) would be taken over by it, or stop it for good.
        used = self._one("cannot read the database", _NOT_EMPTY)
        if used:
            raise UsageError(f"{self.location} holds vault data but no manifest (in "
                             f"{', '.join(used)}: an interrupted init, or rows put there "
                             "before the vault was made)",
                             hint="use a new database (createdb), then 'vault migrate'")

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return self._advisory(shared=False)

    def shared_lock(self) -> contextlib.AbstractContextManager[None]:
        # Sealers share it; the exclusive lock (rotation, rewrites) waits
        # for them, and they for it.
        return self._advisory(shared=True)

    @contextlib.contextmanager
    def _advisory(self, *, shared: bool) -> Iterator[None]:
        take, give = ("pg_advisory_lock_shared", "pg_advisory_unlock_shared") if shared \
            else ("pg_advisory_lock", "pg_advisory_unlock")
        attempt = take.replace("pg_advisory_lock", "pg_try_advisory_lock")
        with self.db.connection() as conn:
            with storage_errors("cannot take the vault's write lock", self.db):
                row = conn.execute(f"SELECT {attempt}(%s)", (WRITE_LOCK,)).fetchone()
                if not (row and row[0]):
                    self.waiting(shared)
                    conn.execute(f"SELECT {take}(%s)", (WRITE_LOCK,))
            ok = False
            try:
                yield
                ok = True
            finally:
                released = False
                with contextlib.suppress(psycopg.Error):
                    row = conn.execute(f"SELECT {give}(%s)",
                                       (WRITE_LOCK,)).fetchone()
                    released = bool(row and row[0])
                if ok and not released:
                    # The session died while we held the lock: another writer
                    # may have run meanwhile.
                    raise StorageError("the database session holding the vault's write lock "
                                       "was lost", hint="run 'vault doctor' to check the vault")

    def layout_problems(self) -> list[str]:
        # What differs from the schema the migrations made: functions,
        # triggers, privileges, ownership; and prepared transactions
        # (docs/DEPLOYMENT.md §5).
        with storage_errors(f"cannot read the vault schema of {self.location}", self.db), \
                self.db.connection() as conn:
            return _pg_schema.schema_problems(conn)

    def leftovers(self) -> list[Leftover]:
        return []  # every write is one transaction: a crash leaves nothing behind

    def tidy(self) -> list[Leftover]:
        return []

    # -- manifest, log key, policy versions --------------------------------

    def read_manifest(self) -> bytes:
        data = self._one("cannot read the manifest", "SELECT data FROM vault.manifest")
        if data is None:
            raise FileNotFoundError(f"no manifest in {self.location}")
        return bytes(data)

    def write_manifest(self, data: bytes) -> None:
        if not self._insert("cannot write the manifest", "INSERT INTO vault.manifest (data)"
                            " VALUES (%s) ON CONFLICT DO NOTHING", (data,)):
            raise FileExistsError("the manifest exists")

    def read_log_key(self) -> bytes:
        try:
            with self.db.connection() as conn:
                row = conn.execute("SELECT data FROM vault.log_key").fetchone()
        except psycopg.errors.InsufficientPrivilege:
            raise PermissionError("this database role may not read the checkpoint key") \
                from None
        except psycopg.Error as e:
            raise StorageError(f"cannot read the checkpoint key: {describe(e)}") \
                from driver_cause(e)
        if row is None:
            raise FileNotFoundError("no checkpoint key")
        return bytes(row[0])

    def write_log_key(self, data: bytes) -> None:
        # A plain INSERT: roles that may add the key need not be able to read it.
        with storage_errors("cannot store the checkpoint key", self.db):
            try:
                with self.db.connection() as conn:
                    conn.execute("INSERT INTO vault.log_key (data) VALUES (%s)", (data,))
            except psycopg.errors.UniqueViolation:
                raise FileExistsError("the checkpoint key exists") from None

    # -- keyrings ----------------------------------------------------------

    def _pairs(self, what: str, query: str) -> Iterator[tuple[str, str]]:
        """Rows of two columns through a server-side cursor, a batch at a
        time: the application role can insert millions of rows."""
        with storage_errors(what, self.db), self.db.snapshot() as conn, \
                conn.cursor(name="vault_pairs") as cur:
            cur.itersize = 2000
            cur.execute(query)
            for a, b in cur:
                yield str(a), str(b)

    def iter_keyring_files(self) -> Iterator[tuple[str, str]]:
        return self._pairs("cannot read the keyrings", "SELECT okey, key_id FROM vault.keyrings")

    def read_keyring_entry(self, owner: str, key_id: str) -> bytes | None:
        data = self._one("cannot read a keyring entry", "SELECT substring(data FROM 1 FOR %s)"
                         " FROM vault.keyrings WHERE okey = %s AND key_id = %s",
                         (MAX_KEYRING_ENTRY + 1, owner_key(_check("owner", owner)),
                          _check("key", key_id)))
        return None if data is None else bytes(data)

    def write_keyring_entry(self, owner: str, key_id: str, data: bytes) -> None:
        with storage_errors("cannot write a keyring entry", self.db), self.db.connection() as conn:
            conn.execute("INSERT INTO vault.keyrings (okey, key_id, data) VALUES (%s, %s, %s)"
                         " ON CONFLICT (okey, key_id) DO UPDATE SET data = excluded.data",
                         (owner_key(_check("owner", owner)), _check("key", key_id), data))

    def read_keyring_file(self, owner_key: str, key_id: str) -> bytes | None:
        data = self._one("cannot read a keyring entry", "SELECT substring(data FROM 1 FOR %s)"
                         " FROM vault.keyrings WHERE okey = %s AND key_id = %s",
                         (MAX_KEYRING_ENTRY + 1, _check("key", owner_key),
                          _check("key", key_id)))
        return None if data is None else bytes(data)

    def delete_keyring_entry(self, owner_key: str, key_id: str, *, wait: bool = True) -> None:
        okey, key_id = _check("key", owner_key), _check("key", key_id)
        with storage_errors("cannot delete a keyring entry", self.db, waited=wait), \
                self.db.transaction() as conn:
            if not wait:  # the row locked at once, or an error (LockNotAvailable)
                conn.execute("SELECT 1 FROM vault.keyrings WHERE okey = %s AND key_id = %s"
                             " FOR UPDATE NOWAIT", (okey, key_id))
            conn.execute("DELETE FROM vault.keyrings WHERE okey = %s AND key_id = %s",
                         (okey, key_id))

    # -- documents -----------------------------------------------------------

    def iter_document_files(self) -> Iterator[tuple[str, str]]:
        return self._pairs("cannot list the documents", "SELECT id, tag FROM vault.documents")

    def has_document(self, doc_id: str, version: str) -> bool:
        return self._one("cannot read the documents", "SELECT 1 FROM vault.documents"
                         " WHERE id = %s AND tag = %s",
                         (_check("doc", doc_id), _check("version", version))) is not None

    def open_document(self, doc_id: str, version: str) -> BinaryIO:
        return cast(BinaryIO, _pg_stream.open_document(self.db, _check("doc", doc_id),
                                                       _check("version", version)))

    def write_document(self, doc_id: str,
                       version: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return cast(contextlib.AbstractContextManager[BinaryIO], _pg_stream.write_document(
            self.db, _check("doc", doc_id), _check("version", version)))

    def delete_document(self, doc_id: str, version: str, *, wait: bool = True) -> None:
        _pg_stream.delete_document(self.db, _check("doc", doc_id), _check("version", version),
                                   wait=wait)

    def shred_document(self, doc_id: str, version: str, header_size: int, *,
                       stray: bool = False, decided: Callable[[], None] | None = None) -> None:
        # One transaction: the row and its chunks are found and locked
        # before the record (a lock the role holds on any of them is a wait
        # that runs out before anything is recorded), and the row locked is
        # the row deleted, by its version number, which nobody can change;
        # its id and tag neither (schema version 21). Found is deleted, or
        # it is an error naming it.
        doc_id, version = _check("doc", doc_id), _check("version", version)
        with storage_errors(f"cannot delete document {doc_id}", self.db), \
                self.db.transaction() as conn:
            vid = _pg_stream.lock_version(conn, doc_id, version)
            if vid is None:
                raise FileNotFoundError(f"no document {doc_id} version {version}")
            if decided is not None:
                decided()
            _pg_stream.destroy_version(conn, doc_id, version, vid)

    # -- actors ----------------------------------------------------------------

    def register_actor(self, key_hash: str, public_key: bytes) -> None:
        # The table refuses a row whose hash is not its key's (schema
        # version 13), so a row already there under this hash is this key.
        self._insert("cannot register an audit actor", "INSERT INTO vault.actors (key_hash,"
                     " public_key) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (_self_certified(key_hash, public_key), public_key))

    def actor_key(self, key_hash: str) -> bytes | None:
        data = self._one("cannot read an audit actor", "SELECT public_key FROM vault.actors"
                         " WHERE key_hash = %s", (_check("hash", key_hash),))
        # Believed only if it is a key (32 bytes) and the one its hash names.
        if data is None or len(data) != 32 or hashlib.sha256(data).hexdigest() != key_hash:
            return None
        return bytes(data)

    def actor_keys(self) -> list[str]:
        return [str(k) for k in self._column("cannot read the audit actors",
                                             "SELECT key_hash FROM vault.actors ORDER BY 1")]

    def registered_keys(self, key_hashes: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        # One query for them all, streamed: a log can name many keys.
        wanted = sorted({_check("hash", h) for h in key_hashes})
        if not wanted:
            return
        with storage_errors("cannot read the audit actors", self.db), \
                self.db.snapshot() as conn, \
                conn.cursor(name="vault_actors", binary=True) as cur:
            cur.itersize = 2000
            cur.execute("SELECT key_hash, public_key FROM vault.actors"
                        " WHERE key_hash = ANY(%s) ORDER BY key_hash", (wanted,))
            for key_hash, data in cur:
                # Believed as actor_key believes one.
                if len(data) == 32 and hashlib.sha256(data).hexdigest() == key_hash:
                    yield str(key_hash), bytes(data)

    def put_statement(self, kind: str, data: bytes) -> None:
        assert kind in ("request", "approval")
        self._insert("cannot leave the statement in the vault", "INSERT INTO vault.statements"
                     " (kind, name, data) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                     (kind, hashlib.sha256(data).hexdigest(), data))

    def statements(self, kind: str) -> Iterator[tuple[str, bytes]]:
        # Streamed, a few rows per round trip and in binary (bytea is not
        # doubled as hex): anyone with the role can add any number of rows
        # of up to 1 MiB, and every approver reads them all -- their memory
        # must not grow with the table.
        assert kind in ("request", "approval")
        with storage_errors("cannot read the statements", self.db), \
                self.db.snapshot() as conn, \
                conn.cursor(name="vault_statements", binary=True) as cur:
            cur.itersize = _STATEMENTS_PER_FETCH
            cur.execute("SELECT name, data FROM vault.statements WHERE kind = %s"
                        " ORDER BY name", (kind,))
            for name, data in cur:
                yield str(name), bytes(data)

    # -- the audit log -------------------------------------------------------

    def audit_log(self, signer: NoteSigner | None, origin: str) -> AuditLog:
        from vault.audit import AuditLog
        from vault.store._pg_log import PostgresLogStorage

        return AuditLog(PostgresLogStorage(self.db), checkpoint_signer=signer, origin=origin)

    def close(self) -> None:
        pass  # the connections are shared by the process (vault.store._pg_conn)


def migrate_schema(location: str, *, grant: Sequence[str] = (),
                   checkpoint_key: bool | None = None,
                   target: int | None = None) -> tuple[int, int]:
    """Bring the vault schema of the database at ``location`` (connecting as
    its owner) to ``target`` (default: the latest version), then give each
    role in ``grant`` an application role's privileges -- with
    ``checkpoint_key`` True, including reading the checkpoint signing key;
    False takes that away; None (the default) leaves a role granted before
    as it was, and gives a new role no key (:func:`granted_roles` tells).
    Returns the schema versions ``(before, after)``."""
    target = _pg_schema.VERSION if target is None else target
    if grant and target != _pg_schema.VERSION:
        raise ValueError("grants need the latest schema version")
    db = Database.get(location)
    with storage_errors(f"cannot migrate the vault schema of {db.location}", db), \
            db.connection() as conn:
        before, after = _pg_schema.upgrade(conn, target=target)
        with conn.transaction():
            for role in grant:
                _pg_schema.grant(conn, role, checkpoints=checkpoint_key)
    db.schema_checked = False
    return before, after


def granted_roles(location: str) -> dict[str, bool]:
    """The application roles granted so far (connecting as the database's
    owner), each with whether it can read the checkpoint signing key --
    in effect, through any role it is a member of or PUBLIC, not only as
    granted by name."""
    db = Database.get(location)
    with storage_errors(f"cannot read the roles of {db.location}", db), \
            db.connection() as conn:
        # Any column, through any role it may become (SET ROLE works for a
        # NOINHERIT member too), or as a superuser: each reads the key.
        rows = conn.execute(
            "SELECT a.role, EXISTS (SELECT 1 FROM pg_roles r"
            "  WHERE pg_has_role(a.role, r.oid, 'MEMBER')"
            "  AND (r.rolsuper OR has_any_column_privilege(r.oid, 'vault.log_key', 'SELECT')))"
            " FROM vault.app_roles a WHERE a.role IN (SELECT rolname FROM pg_roles)"
            " ORDER BY a.role").fetchall()
    return {str(role): bool(may) for role, may in rows}
