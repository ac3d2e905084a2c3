"""Connections to a vault's PostgreSQL database (docs/DEPLOYMENT.md §3).

Every :class:`~vault.store.postgres.PostgresBackend` of a process that names
the same database shares one :class:`Database`: a few idle connections kept
for reuse, because a vault object is cheap and short-lived (one per request
or per command) while a new PostgreSQL session costs a process on the
server. A unit of work checks a connection out, uses it alone, and gives it
back.

Three rules keep this safe:

* a connection whose server side went away (a restart, an administrator's
  ``pg_terminate_backend``) is noticed *before* it is reused: a dead
  session's socket is readable (end of file, or the server's last error
  message) although no query is running, so it is dropped without a round
  trip and a new one is made;
* a forked child never touches its parent's sessions: their sockets are
  pointed at ``/dev/null`` in the child, so even closing them cannot send
  anything on the parent's behalf;
* commits are durable when they return: a session that the server
  configured with ``synchronous_commit = off`` is switched to ``local``
  (the audit log's fail-closed contract depends on it).

Errors: psycopg's exceptions never leave this package. :func:`storage_errors`
turns them into :class:`~vault.errors.StorageError` (permission problems
get a hint naming the grant), without ever quoting the connection string.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import conninfo as _conninfo

from vault.errors import StorageError, UsageError

__all__ = ["SCHEMES", "Connection", "Database", "redact", "storage_errors"]

SCHEMES = ("postgresql://", "postgres://")
MAX_IDLE = 8  # idle sessions kept per database and process
CONNECT_TIMEOUT = 10  # seconds, unless the location says otherwise

Connection = psycopg.Connection[Any]

_GRANT_HINT = (
    "the database role lacks a privilege: have the database owner run "
    "'vault migrate LOCATION --grant ROLE' (docs/DEPLOYMENT.md §2)"
)


def redact(location: str) -> str:
    """``location`` without its password, for messages and ``repr``."""
    try:
        params = _conninfo.conninfo_to_dict(location)
    except psycopg.ProgrammingError:
        raise UsageError("not a valid PostgreSQL connection string",
                         hint="write it as postgresql://[user@]host[:port]/database") from None
    if "password" not in params:
        return location
    scheme, _, rest = location.partition("://")
    if rest and "@" in rest.split("/", 1)[0]:
        userinfo, _, host = rest.partition("@")
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    params["password"] = "***"  # noqa: S105 - the mask, not a password
    return _conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def describe(e: BaseException) -> str:
    """One line saying what went wrong (psycopg messages quote no password)."""
    diag = getattr(e, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(e) or type(e).__name__
    return text.strip().splitlines()[0]


@contextlib.contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn psycopg's exceptions into :class:`StorageError` ``what: reason``."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as e:
        raise StorageError(f"{what}: {describe(e)}", hint=_GRANT_HINT) from e
    except psycopg.Error as e:
        raise StorageError(f"{what}: {describe(e)}",
                           hint="check the database server and the connection; "
                                "nothing was changed by the failed step") from e


def _dead(conn: Connection) -> bool:
    """Did the server end this idle session? Its socket then has something
    to read although we sent nothing."""
    if conn.closed or conn.broken:
        return True
    try:
        # poll, not select: select refuses descriptors past 1024, and a
        # program with many files open would then never reuse a session.
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class Database:
    """The connections of this process to one database (see module doc)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.location = redact(conninfo)
        self._idle: list[Connection] = []
        self._mutex = threading.Lock()
        self.schema_checked = False

    @classmethod
    def get(cls, conninfo: str) -> Database:
        """The shared :class:`Database` for ``conninfo`` in this process."""
        with _registry_lock:
            db = _registry.get(conninfo)
            if db is None:
                db = _registry[conninfo] = cls(conninfo)
            return db

    # -- sessions ------------------------------------------------------------

    def _connect(self) -> Connection:
        extra: dict[str, Any] = {"application_name": "vault"}
        if "connect_timeout" not in _conninfo.conninfo_to_dict(self.conninfo):
            extra["connect_timeout"] = CONNECT_TIMEOUT
        with storage_errors(f"cannot connect to the vault database {self.location}"):
            conn = psycopg.connect(self.conninfo, autocommit=True, **extra)
            try:
                # One round trip: keep commits durable if the server made them lazy.
                conn.execute("SELECT set_config('synchronous_commit', 'local', false)"
                             " WHERE current_setting('synchronous_commit') = 'off'")
            except BaseException:
                conn.close()
                raise
        return conn

    def _checkout(self) -> Connection:
        while True:
            with self._mutex:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if not _dead(conn):
                return conn
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()

    def _checkin(self, conn: Connection) -> None:
        reusable = (not conn.closed and not conn.broken
                    and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE)
        if reusable:
            with self._mutex:
                if len(self._idle) < MAX_IDLE:
                    self._idle.append(conn)
                    return
        with contextlib.suppress(psycopg.Error, OSError):
            conn.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """A session for this unit of work alone (autocommit mode)."""
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._checkin(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A session inside one transaction, committed when the block ends."""
        with self.connection() as conn, conn.transaction():
            yield conn

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction that sees one consistent state of the
        database however long it lasts (REPEATABLE READ)."""
        with self.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def close(self) -> None:
        with self._mutex:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()

    # -- process life ----------------------------------------------------------

    def _forget_inherited(self) -> None:
        # In a forked child: the parent's sessions must stay the parent's.
        # Closing them here would send a Terminate message on the parent's
        # behalf, so their sockets are first replaced by /dev/null.
        self._mutex = threading.Lock()
        idle, self._idle = self._idle, []
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for conn in idle:
                with contextlib.suppress(psycopg.Error, OSError, ValueError):
                    os.dup2(devnull, conn.fileno())
                    conn.close()
        finally:
            os.close(devnull)


# Every Database of this process, by connection string.
_registry: dict[str, Database] = {}
_registry_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for db in list(_registry.values()):
        db._forget_inherited()


def _close_all() -> None:
    for db in list(_registry.values()):
        db.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)
