"""A throwaway PostgreSQL cluster for the tests and benchmarks.

``initdb`` into a temporary folder, then ``pg_ctl`` serving only a Unix
socket in that folder (no TCP). PostgreSQL refuses to run as root, so when
the tests run as root the server runs as an unprivileged system user
(``postgres`` when the Debian package created it, else ``nobody``) that
owns the folder.

Roles, as in docs/DEPLOYMENT.md §2: ``vault_super`` (the cluster's
superuser: creates databases, plays the attacker with every privilege),
``vault_owner`` (owns each vault database and its schema, runs migrations)
and ``vault_app`` (the workstations: the application grants only).
Each vault gets a database of its own.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INSTALL_HINT = ("PostgreSQL 15 server binaries (initdb, pg_ctl) are required: install them "
                "with 'apt-get install postgresql-15' (or point VAULT_PG_BINDIR at them)")
APP, OWNER, SUPER = "vault_app", "vault_owner", "vault_super"


def find_bindir() -> str | None:
    """Where initdb and pg_ctl live: $VAULT_PG_BINDIR, PATH, or Debian's layout."""
    candidates = [os.environ.get("VAULT_PG_BINDIR", "")]
    on_path = shutil.which("initdb")
    candidates.append(os.path.dirname(on_path) if on_path else "")
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for d in candidates:
        if d and os.path.exists(os.path.join(d, "initdb")) and \
                os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    return None


def _server_user() -> str | None:
    """The account the server runs as (None: this one)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root, and there is no unprivileged user to run PostgreSQL")


class Cluster:
    """One running throwaway PostgreSQL cluster."""

    def __init__(self, bindir: str, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable  # fsync on, as in production (the benchmarks)
        self.user = _server_user()
        self.dir = Path(tempfile.mkdtemp(prefix="vault-pg-"))
        self.data = self.dir / "data"
        self.port = 5432  # the socket is private to self.dir, so no clash
        self._names = itertools.count()
        if self.user is not None:
            info = pwd.getpwnam(self.user)
            os.chown(self.dir, info.pw_uid, info.pw_gid)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120,
                              cwd=self.dir)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SUPER, "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")
        options = (f"-c listen_addresses='' -c unix_socket_directories='{self.dir}'"
                   f" -c port={self.port} -c max_connections=200"
                   # a few, so that a test can leave one behind as an insider would
                   " -c max_prepared_transactions=4")
        if not self.durable:
            # a throwaway cluster for tests: nothing to keep across a crash
            # of the machine, so no fsync (shutdown checkpoints stay quick)
            options += " -c fsync=off -c full_page_writes=off"
        self._pg_ctl("start", "-o", options)
        for sql in (f"CREATE ROLE {OWNER} LOGIN", f"CREATE ROLE {APP} LOGIN"):
            self.execute(sql)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        r = self._run("pg_ctl", action, "-D", str(self.data), "-l", str(self.dir / "server.log"),
                      "-w", "-t", "60", *extra, check=False)
        if r.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl {action} failed: {r.stdout}{r.stderr}\n{log}")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every session is cut."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._pg_ctl("stop", "-m", "immediate")  # throwaway: no checkpoint needed
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, user: str = APP, dbname: str = "postgres") -> str:
        return f"postgresql://{user}@/{dbname}?host={self.dir}&port={self.port}"

    @contextlib.contextmanager
    def connect(self, user: str = SUPER, dbname: str = "postgres") -> Iterator[Any]:
        import psycopg

        with psycopg.connect(self.dsn(user, dbname), autocommit=True) as conn:
            yield conn

    def execute(self, sql: str, params: tuple[Any, ...] = (), *, dbname: str = "postgres",
                user: str = SUPER) -> list[tuple[Any, ...]]:
        with self.connect(user, dbname) as conn:
            cur = conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def new_database(self, *, schema: bool = True, checkpoint_key: bool = True) -> str:
        """A fresh database owned by ``vault_owner``; with ``schema`` the vault
        schema installed and ``vault_app`` granted. Returns the app's DSN."""
        name = f"vault_{os.getpid()}_{next(self._names)}"
        self.execute(f"CREATE DATABASE {name} OWNER {OWNER}")
        if schema:
            from vault.store.postgres import migrate_schema

            migrate_schema(self.dsn(OWNER, name), grant=[APP], checkpoint_key=checkpoint_key)
        return self.dsn(APP, name)


def dbname_of(dsn: str) -> str:
    return dsn.split("/", 3)[3].split("?", 1)[0]
