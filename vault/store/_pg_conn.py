"""Connections to a vault's PostgreSQL database (docs/DEPLOYMENT.md §3).

Every :class:`~vault.store.postgres.PostgresBackend` of a process that names
the same database shares one :class:`Database`: a few idle connections kept
for reuse, because a vault object is cheap and short-lived (one per request
or per command) while a new PostgreSQL session costs a process on the
server. A unit of work checks a connection out, uses it alone, and gives it
back.

Four rules keep this safe:

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
  (the audit log's fail-closed contract depends on it);
* no wait for a lock is endless: any session of the application role can
  take the vault's advisory locks or lock a table and keep it, so every
  session gets a ``lock_timeout`` (:data:`LOCK_TIMEOUT` seconds, or
  ``VAULT_PG_LOCK_TIMEOUT``, whatever the role's defaults say; a shorter
  limit the location's own options set is kept, a longer one cut), and a
  wait that runs out is a :class:`StorageError` naming the sessions, and
  the prepared transactions, that hold the vault's locks.

Errors: psycopg's exceptions never leave this package. :func:`storage_errors`
turns them into :class:`~vault.errors.StorageError` (permission problems
get a hint naming the grant), without ever quoting the connection string,
and without the driver's message where it may quote a password
(:mod:`vault.store._pg_location`: a location libpq would read otherwise
than meant is refused before it connects).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import select
import threading
import urllib.parse
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import conninfo as _conninfo

from vault.errors import StorageError, UsageError, VaultError
from vault.store._pg_location import (
    ENCODE_HINT,
    SCHEMES,
    check_location,
    quotes_a_secret,
    remember_secrets,
    secrets_of,
)

__all__ = ["LOCK_TIMEOUT", "PINNED", "SCHEMES", "Connection", "Database", "driver_cause",
           "lock_wait_error", "redact", "storage_errors"]

MAX_IDLE = 8  # idle sessions kept per database and process
CONNECT_TIMEOUT = 10  # seconds, unless the location says otherwise
LOCK_TIMEOUT = 30  # seconds a statement waits for a lock (see module doc)
LOCK_TIMEOUT_ENV = "VAULT_PG_LOCK_TIMEOUT"
IDLE_FLOOR = 300  # seconds: the least idle_in_transaction_session_timeout kept
# What every session sets whatever the role's defaults say (anyone who holds
# the role can give it defaults, with ALTER ROLE CURRENT_USER SET, that stop
# every workstation: read-only transactions, time limits, serializable
# transactions that fail, strings whose backslashes escape, an encoding that
# turns every text column into bytes -- doctor then found every document
# missing; a library to load that does not exist, which failed every new
# session at its start -- session_preload_libraries, and the other settings
# that load code or skip triggers, are for superusers alone). A limit on an
# idle transaction is raised to IDLE_FLOOR instead (one of 1 ms ended every
# replay and long read): the administrator's own limit, for sessions that
# hang holding locks, is kept if it is longer. Names are looked up in
# pg_catalog, then the session's own temporary schema: never first in a
# schema the role's defaults name, where a role able to create objects
# there (PUBLIC may in "public" before PostgreSQL 15) could plant a function
# that matches the vault's arguments better than pg_catalog's. Identifiers
# are quoted only where they must be: with quote_all_identifiers on, the
# catalog's own texts that doctor compares (trigger definitions, a function's
# SQL body) are written otherwise, and an intact schema looked changed.
_SESSION = ("-c default_transaction_read_only=off"
            " -c default_transaction_isolation=read\\ committed"
            " -c statement_timeout=0 -c idle_session_timeout=0"
            " -c standard_conforming_strings=on -c client_encoding=UTF8"
            " -c local_preload_libraries= -c search_path=pg_catalog,pg_temp"
            " -c quote_all_identifiers=off -c bytea_output=hex"
            " -c exit_on_error=off -c client_min_messages=notice")
# How the server plans the vault's statements, pinned for the same reason:
# JIT compilation from a cost of 0, parallel plans forced onto every query,
# index scans switched off made every operation of every workstation about
# 75 times slower, for good. The vault's statements are short lookups by
# key: no JIT, no parallel workers (with none per gather, no plan is made
# parallel, whatever force_parallel_mode or debug_parallel_query say), every
# kind of plan allowed, PostgreSQL's own costs and plan-cache choice. Only
# names PostgreSQL 15 knows: the startup packet fails on any other.
_PLANNER = (" -c jit=off -c max_parallel_workers_per_gather=0"
            " -c seq_page_cost=1 -c random_page_cost=4 -c cpu_tuple_cost=0.01"
            " -c cpu_index_tuple_cost=0.005 -c cpu_operator_cost=0.0025"
            " -c plan_cache_mode=auto -c geqo=on -c constraint_exclusion=partition"
            " -c from_collapse_limit=8 -c join_collapse_limit=8"
            + "".join(f" -c enable_{kind}=on" for kind in (
                "async_append", "bitmapscan", "gathermerge", "hashagg", "hashjoin",
                "incremental_sort", "indexonlyscan", "indexscan", "material", "memoize",
                "mergejoin", "nestloop", "parallel_append", "parallel_hash",
                "partition_pruning", "seqscan", "sort", "tidscan")))

Connection = psycopg.Connection[Any]

#: The settings every session of the library sets itself, whatever a role's
#: or a database's defaults say (doctor names the others, _pg_schema).
PINNED = frozenset(re.findall(r"-c (\w+)=", _SESSION + _PLANNER)) | {
    "lock_timeout", "synchronous_commit", "idle_in_transaction_session_timeout",
    "transaction_timeout", "force_parallel_mode", "debug_parallel_query"}

# The location's own lock_timeout among its options (-c name=value or
# --name=value): a name that only ends so, deadlock_timeout, is not it.
_OWN_LOCK_TIMEOUT = re.compile(r"(?:^|\s)(?:-c\s*|--)lock[_-]timeout\s*=")

# Sessions holding a lock a vault operation may wait for: the vault's
# advisory locks (a bigint key is classid << 32 | objid), a table lock
# stronger than reading or writing rows, or an open write to a vault table
# or rows of one locked (SELECT ... FOR KEY SHARE, as a reference inserted
# takes: a row lock is in no view, its table's lock names its holder) --
# never this process's own sessions (_OWN): the waiting command's write
# lock is one of them, and "end it" once pointed there.
_HOLDERS = (
    "SELECT l.pid, coalesce(a.application_name, ''), min(CASE WHEN l.locktype = 'advisory'"
    " THEN 0 WHEN l.mode NOT IN ('RowExclusiveLock', 'RowShareLock') THEN 1 ELSE 2 END)"
    " AS rank FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.granted AND l.pid <> pg_backend_pid() AND l.pid <> ALL(%s::int[])"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND ((l.locktype = 'advisory' AND l.objsubid = 1"
    "       AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY(%s))"
    "   OR (l.locktype = 'relation' AND l.mode <> 'AccessShareLock'"
    "       AND l.relation IN (SELECT oid FROM pg_class"
    "                          WHERE relnamespace = 'vault'::regnamespace)))"
    " GROUP BY 1, 2 ORDER BY 3, 1 LIMIT 3"
)

_GRANT_HINT = (
    "the database role lacks a privilege: have the database owner run "
    "'vault migrate LOCATION --grant ROLE' (docs/DEPLOYMENT.md §2)"
)


# Connection parameters that hold a secret: the password, and the one
# that unlocks a client certificate's key.
_SECRET_PARAMS = frozenset(("password", "sslpassword"))


def redact(location: str) -> str:
    """``location`` without its secrets, for messages and ``repr``: a URI's
    password, in its user part or its query (``?password=``), and
    ``sslpassword``, wherever they are written."""
    try:
        _conninfo.conninfo_to_dict(location)
    except psycopg.ProgrammingError:
        raise UsageError("not a valid PostgreSQL connection string",
                         hint="write it as postgresql://[user[:password]@]host[:port]/database;"
                              f" {ENCODE_HINT}") from None
    # What a person means as the password -- between the first ':' of the
    # user part and its last '@' -- is masked first, whatever libpq makes of
    # it: it ends the user part at a '/', and takes "app:Pa55/word@db" for a
    # host and a port, no password at all.
    location = _mask_userinfo(location)
    try:
        params = _conninfo.conninfo_to_dict(location)
    except psycopg.ProgrammingError:
        return location.partition("://")[0] + "://***"
    if not _SECRET_PARAMS & set(params):
        return location
    for key in _SECRET_PARAMS & set(params):
        params[key] = "***"
    scheme, sep, _ = location.partition("://")
    if sep and scheme in ("postgresql", "postgres"):  # the user part is masked already
        parts = urllib.parse.urlsplit(location)
        query = "&".join(
            f"{key}=***" if urllib.parse.unquote(key).lower() in _SECRET_PARAMS else pair
            for pair in parts.query.split("&") if pair
            for key in (pair.split("=", 1)[0],))
        masked = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query,
                                          parts.fragment))
        # libpq takes '#' and '?' raw where a URL parser cuts: shown only if
        # libpq reads back exactly the location, its secrets masked.
        with contextlib.suppress(psycopg.ProgrammingError):
            if _conninfo.conninfo_to_dict(masked) == params:
                return masked
    return _conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def _mask_userinfo(location: str) -> str:
    scheme, sep, rest = location.partition("://")
    head = rest.split("?", 1)[0]
    if not sep or "@" not in head:
        return location
    cut = head.rfind("@")
    user, colon, _ = head[:cut].partition(":")
    return f"{scheme}://{user}:***{rest[cut:]}" if colon else location


_WITHHELD = "the database driver's message is not shown, as it may quote a password"


def describe(e: BaseException) -> str:
    """One line saying what went wrong -- not the driver's message where it
    may quote a password: libpq quotes the host, port or database it read,
    and where it read them from a password written otherwise than it reads
    one, they are pieces of it."""
    if driver_cause(e) is None:
        return _WITHHELD
    diag = getattr(e, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or str(e) or type(e).__name__
    return text.strip().splitlines()[0]


def driver_cause(e: BaseException) -> BaseException | None:
    """``e``, to chain to the error made of it -- or None where its text
    may quote a password (a program that logs the chain would print it)."""
    diag = getattr(e, "diag", None)
    texts = [str(e), *(str(getattr(diag, field, None) or "") for field in
                       ("message_primary", "message_detail", "message_hint"))]
    return None if quotes_a_secret(texts) else e


def lock_wait_error(db: Database | None, what: str, cls: type[VaultError] = StorageError,
                    hint: str = "", *, waited: bool = True) -> VaultError:
    """A wait for a lock ran out (``lock_timeout``), or with ``waited``
    False a lock was not to be waited for (``NOWAIT``): say who holds the
    vault's locks."""
    holders, limit = db.lock_holders() if db is not None else ([], "")
    prepared = db.prepared_transactions() if db is not None else []
    # The application name is the holder's to set: quoted, so that it can
    # never read as another pid to end.
    who = [f"pid {pid} (application {app!r})" for pid, app in holders] + \
        [f"prepared transaction '{gid.replace(chr(39), chr(39) * 2)}'" for gid in prepared]
    end = ("if that session is stuck or hostile, the database administrator can end it "
           "(pg_terminate_backend)") if holders or not prepared else ""
    if prepared:  # it belongs to no session: no restart or termination ends it
        end += ("; " if end else "") + "a prepared transaction outlives every session: the " \
            "database administrator ends it with ROLLBACK PREPARED (docs/DEPLOYMENT.md §1.2)"
    held = (f"gave up after {limit or 'the lock timeout'} waiting for a lock that another "
            "database session holds") if waited else \
        "another database session holds a lock it needs (not waited for)"
    return cls(f"{what}: {held}" + (f": {', '.join(who)}" if who else ""),
               hint=(hint + "; " if hint else "") + end + "; "
               f"{LOCK_TIMEOUT_ENV} sets the wait (docs/DEPLOYMENT.md §1.2)")


@contextlib.contextmanager
def storage_errors(what: str, db: Database | None = None, *,
                   waited: bool = True) -> Iterator[None]:
    """Turn psycopg's exceptions into :class:`StorageError` ``what: reason``
    (with ``db``, a lock wait that ran out names who holds the locks;
    ``waited`` False: the step asked for its locks ``NOWAIT``)."""
    try:
        yield
    except psycopg.errors.LockNotAvailable as e:
        raise lock_wait_error(db, what, hint="nothing was changed by the failed step",
                              waited=waited) from e
    except psycopg.errors.InsufficientPrivilege as e:
        raise StorageError(f"{what}: {describe(e)}", hint=_GRANT_HINT) from driver_cause(e)
    except psycopg.Error as e:
        raise StorageError(f"{what}: {describe(e)}",
                           hint="check the database server and the connection; "
                                "nothing was changed by the failed step") from driver_cause(e)


def _forced_parallel(version: int) -> str:
    """The setting that forces parallel plans: renamed in PostgreSQL 16, so
    set after the session starts (see _PLANNER)."""
    return "debug_parallel_query" if version >= 160000 else "force_parallel_mode"


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
        check_location(conninfo)
        self.conninfo = conninfo
        self.location = redact(conninfo)
        remember_secrets(secrets_of(conninfo))
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
        given = _conninfo.conninfo_to_dict(self.conninfo)
        if "connect_timeout" not in given:
            extra["connect_timeout"] = CONNECT_TIMEOUT
        # Settings in the startup packet take precedence over the role's own
        # defaults, from the first moment of the session (an idle-session
        # limit of 1 ms would end it before any SET).
        wait = _lock_timeout()
        # The wait for a lock too, unless the location sets its own: a role
        # default of 1 ms failed honest work wherever two workstations met
        # on a lock, for good and with no one present.
        own = _OWN_LOCK_TIMEOUT.search(str(given.get("options") or "")) is not None
        pinned = "" if own else f" -c lock_timeout={wait or f'{LOCK_TIMEOUT}s'}"
        extra["options"] = f"{given.get('options', '')} {_SESSION}{_PLANNER}{pinned}".strip()
        with storage_errors(f"cannot connect to the vault database {self.location}"):
            conn = psycopg.connect(self.conninfo, autocommit=True, **extra)
            try:
                # One round trip: keep commits durable if the server made them
                # lazy, and bound every wait for a lock (see module doc): a
                # role's default of a day is cut too (see _SESSION); and no
                # plan forced parallel (see _PLANNER).
                conn.execute(
                    "SELECT CASE WHEN current_setting('synchronous_commit') = 'off'"
                    " THEN set_config('synchronous_commit', 'local', false) END,"
                    " set_config('lock_timeout', coalesce(%s, CASE WHEN"
                    " current_setting('lock_timeout') = '0' OR"
                    " current_setting('lock_timeout')::interval > %s::interval THEN %s"
                    " ELSE current_setting('lock_timeout') END), false),"
                    " CASE WHEN current_setting('idle_in_transaction_session_timeout') <> '0'"
                    " AND current_setting('idle_in_transaction_session_timeout')::interval"
                    " < %s::interval THEN set_config('idle_in_transaction_session_timeout',"
                    " %s, false) END, set_config(%s, 'off', false)",
                    (wait, f"{LOCK_TIMEOUT}s", f"{LOCK_TIMEOUT}s", f"{IDLE_FLOOR}s",
                     f"{IDLE_FLOOR}s", _forced_parallel(conn.info.server_version)))
                if conn.info.server_version >= 170000:
                    # Unknown before version 17 (where the startup packet
                    # could not name it): a role default of 1 ms there would
                    # end every transaction of more than one statement.
                    conn.execute("SELECT set_config('transaction_timeout', '0', false)")
            except BaseException:
                conn.close()
                raise
        _OWN.add(conn)
        return conn

    def lock_holders(self) -> tuple[list[tuple[int, str]], str]:
        """Up to three ``(pid, application_name)`` of other processes'
        sessions holding the vault's locks (advisory ones first), and the
        ``lock_timeout``; nothing when even that cannot be read."""
        from vault.store._pg_schema import AUDIT_LOCK, MIGRATE_LOCK, WRITE_LOCK

        mine = [c.info.backend_pid for c in list(_OWN) if not c.closed]
        try:
            with self.connection() as conn:
                found = conn.execute(_HOLDERS, (mine, [WRITE_LOCK, AUDIT_LOCK,
                                                       MIGRATE_LOCK])).fetchall()
                limit = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
        except (psycopg.Error, VaultError):
            return [], ""
        return [(int(r[0]), str(r[1])) for r in found], str(limit[0]) if limit else ""

    def prepared_transactions(self) -> list[str]:
        """Up to three prepared transactions of this database (``PREPARE
        TRANSACTION``: held locks that no session owns, and that survive a
        restart), by their whole ids (at most 200 characters: one cut short
        would make the ROLLBACK PREPARED the error suggests end another, or
        nothing); nothing when that cannot be read."""
        try:
            with self.connection() as conn:
                found = conn.execute(
                    "SELECT gid FROM pg_catalog.pg_prepared_xacts"
                    " WHERE database = current_database() ORDER BY prepared LIMIT 3").fetchall()
        except (psycopg.Error, VaultError):
            return []
        return [str(r[0]) for r in found]

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


def _lock_timeout() -> str | None:
    """``lock_timeout`` from the environment (seconds; 0: wait for ever),
    or None: the session's own, if it has one, else :data:`LOCK_TIMEOUT`."""
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
        if not 0 <= seconds <= 86400:
            raise ValueError(text)
    except ValueError:
        raise UsageError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds from 0 to 86400",
                         hint="0 waits for ever; unset, a wait for a lock lasts at most "
                              f"{LOCK_TIMEOUT} s") from None
    return f"{max(1, round(seconds * 1000)) if seconds else 0}ms"


# Every Database of this process, by connection string.
_registry: dict[str, Database] = {}
# Every session this process opened and has not dropped (closed ones are
# skipped: their pids may be another's by now).
_OWN: weakref.WeakSet[Connection] = weakref.WeakSet()
_registry_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for db in list(_registry.values()):
        db._forget_inherited()


def _close_all() -> None:
    for db in list(_registry.values()):
        db.close()


# psycopg logs the errors it ignores (such as a pipeline left when the
# server cut the session); with no logging configured Python would print
# them on stderr ahead of the vault's own message. A program that sets up
# logging still receives them.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)
