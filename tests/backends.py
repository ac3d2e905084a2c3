"""The two storage backends, as the behavioural tests see them.

A :class:`Kind` makes new vault locations (a folder, or a fresh PostgreSQL
database). A :class:`Raw` reaches what a vault stores *without* the
library, the way someone with write access to the storage would: files in
the folder, or SQL as the cluster's superuser (who can even switch the
audit tables' triggers off). Tamper tests use it to attack; security
tests use it to look at every stored byte.
"""

from __future__ import annotations

import abc
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pg_support import SUPER, Cluster, dbname_of

# --------------------------------------------------------------------------
# Raw access


class Raw(abc.ABC):
    """What a vault stores, reached around the library."""

    @abc.abstractmethod
    def doc_ids(self) -> list[str]: ...
    @abc.abstractmethod
    def doc_bytes(self, doc_id: str) -> bytes: ...
    @abc.abstractmethod
    def set_doc_bytes(self, doc_id: str, data: bytes) -> None:
        """Overwrite (or plant) a document's stored bytes."""
    @abc.abstractmethod
    def delete_doc(self, doc_id: str) -> None: ...
    @abc.abstractmethod
    def blobs(self) -> Iterator[tuple[str, bytes]]:
        """Every stored object, with a name: files, or column values."""
    @abc.abstractmethod
    def class_keys(self) -> list[tuple[str, int]]: ...
    @abc.abstractmethod
    def class_key(self, class_id: str, gen: int) -> bytes: ...
    @abc.abstractmethod
    def set_class_key(self, class_id: str, gen: int, data: bytes) -> None: ...
    @abc.abstractmethod
    def policy(self, version: int) -> bytes: ...
    @abc.abstractmethod
    def set_policy(self, version: int, yaml: bytes, sig: bytes | None = None) -> None:
        """Replace (or add, with ``sig``) a policy version."""
    @abc.abstractmethod
    def manifest(self) -> bytes: ...
    @abc.abstractmethod
    def set_manifest(self, data: bytes) -> None: ...
    @abc.abstractmethod
    def keyring_entries(self, owner: str) -> list[str]: ...
    @abc.abstractmethod
    def set_keyring_entry(self, owner: str, key_id: str, data: bytes) -> None: ...
    @abc.abstractmethod
    def audit_lines(self) -> list[bytes]: ...
    @abc.abstractmethod
    def set_audit_line(self, seq: int, line: bytes) -> None: ...
    @abc.abstractmethod
    def audit_unwritable(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, appending to the audit log fails."""
    @abc.abstractmethod
    def index_rows(self) -> list[tuple[Any, ...]]: ...
    @abc.abstractmethod
    def index_update(self, values: dict[str, str], doc_id: str | None = None) -> None: ...
    @abc.abstractmethod
    def index_drop(self) -> None:
        """Lose every index row (as if each write died before its row)."""
    @abc.abstractmethod
    def index_garbage(self) -> None:
        """Make the index unreadable."""

    def doc_file(self, doc_id: str, tmp: Path) -> Path:
        """The document as a file, for stock ``age``."""
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / f"{doc_id}.age"
        path.write_bytes(self.doc_bytes(doc_id))
        return path

    def has_doc(self, doc_id: str) -> bool:
        return doc_id in self.doc_ids()


class RawFolder(Raw):
    def __init__(self, path: Path) -> None:
        self.path = path

    def _doc(self, doc_id: str) -> Path:
        return self.path / "docs" / f"{doc_id}.age"

    def doc_ids(self) -> list[str]:
        return sorted(p.stem for p in (self.path / "docs").glob("*.age"))

    def doc_bytes(self, doc_id: str) -> bytes:
        return self._doc(doc_id).read_bytes()

    def set_doc_bytes(self, doc_id: str, data: bytes) -> None:
        self._doc(doc_id).write_bytes(data)

    def delete_doc(self, doc_id: str) -> None:
        self._doc(doc_id).unlink()

    def doc_file(self, doc_id: str, tmp: Path) -> Path:
        return self._doc(doc_id)

    def blobs(self) -> Iterator[tuple[str, bytes]]:
        for p in sorted(self.path.rglob("*")):
            if p.is_file() and p.name != "lock":
                yield str(p.relative_to(self.path)), p.read_bytes()

    def class_keys(self) -> list[tuple[str, int]]:
        names = (p.name.split(".") for p in (self.path / "classes").glob("*.json"))
        return sorted((c, int(g)) for c, g, _ in names)

    def class_key(self, class_id: str, gen: int) -> bytes:
        return (self.path / "classes" / f"{class_id}.{gen}.json").read_bytes()

    def set_class_key(self, class_id: str, gen: int, data: bytes) -> None:
        (self.path / "classes" / f"{class_id}.{gen}.json").write_bytes(data)

    def policy(self, version: int) -> bytes:
        return (self.path / "policy" / f"{version:06d}.yaml").read_bytes()

    def set_policy(self, version: int, yaml: bytes, sig: bytes | None = None) -> None:
        (self.path / "policy" / f"{version:06d}.yaml").write_bytes(yaml)
        if sig is not None:
            (self.path / "policy" / f"{version:06d}.sig").write_bytes(sig)

    def manifest(self) -> bytes:
        return (self.path / "vault.json").read_bytes()

    def set_manifest(self, data: bytes) -> None:
        (self.path / "vault.json").write_bytes(data)

    def keyring_entries(self, owner: str) -> list[str]:
        return sorted(p.stem for p in (self.path / "keyrings" / owner).glob("*.age"))

    def set_keyring_entry(self, owner: str, key_id: str, data: bytes) -> None:
        (self.path / "keyrings" / owner / f"{key_id}.age").write_bytes(data)

    def audit_lines(self) -> list[bytes]:
        return (self.path / "audit" / "log").read_bytes().split(b"\n")[:-1]

    def set_audit_line(self, seq: int, line: bytes) -> None:
        lines = self.audit_lines()
        lines[seq] = line
        (self.path / "audit" / "log").write_bytes(b"".join(x + b"\n" for x in lines))

    @contextlib.contextmanager
    def audit_unwritable(self) -> Iterator[None]:
        log = self.path / "audit" / "log"
        saved = log.read_bytes()
        log.unlink()
        log.mkdir()  # the log can no longer be written
        try:
            yield
        finally:
            log.rmdir()
            log.write_bytes(saved)

    def _index(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path / "index.sqlite")

    def index_rows(self) -> list[tuple[Any, ...]]:
        with contextlib.closing(self._index()) as db:
            return sorted(tuple(r) for r in db.execute("SELECT * FROM documents").fetchall())

    def index_update(self, values: dict[str, str], doc_id: str | None = None) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        where, args = (" WHERE id = ?", [doc_id]) if doc_id else ("", [])
        with contextlib.closing(self._index()) as db, db:
            db.execute(f"UPDATE documents SET {sets}{where}", [*values.values(), *args])

    def index_drop(self) -> None:
        import gc

        gc.collect()  # close SQLite connections of Vault objects already gone
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path / "index.sqlite") + suffix).unlink(missing_ok=True)

    def index_garbage(self) -> None:
        self.index_drop()
        (self.path / "index.sqlite").write_bytes(b"not a database" * 100)


class RawPostgres(Raw):
    """SQL as the cluster's superuser, on the vault's database."""

    def __init__(self, cluster: Cluster, dbname: str) -> None:
        self.cluster = cluster
        self.dbname = dbname

    def _sql(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.cluster.execute(sql, params, dbname=self.dbname, user=SUPER)

    def doc_ids(self) -> list[str]:
        return [r[0] for r in self._sql("SELECT id FROM vault.documents ORDER BY id")]

    def doc_bytes(self, doc_id: str) -> bytes:
        rows = self._sql("SELECT c.data FROM vault.documents d JOIN vault.document_chunks c"
                         " ON c.version = d.version WHERE d.id = %s ORDER BY c.n", doc_id)
        if not rows and not self.has_doc(doc_id):
            raise FileNotFoundError(doc_id)
        return b"".join(bytes(r[0]) for r in rows)

    def set_doc_bytes(self, doc_id: str, data: bytes) -> None:
        with self.cluster.connect(SUPER, self.dbname) as conn, conn.transaction():
            row = conn.execute("SELECT version FROM vault.documents WHERE id = %s",
                               (doc_id,)).fetchone()
            if row is None:
                row = conn.execute("INSERT INTO vault.documents (id, version, size) VALUES"
                                   " (%s, nextval('vault.document_versions'), 0)"
                                   " RETURNING version", (doc_id,)).fetchone()
            conn.execute("DELETE FROM vault.document_chunks WHERE version = %s", (row[0],))
            conn.execute("INSERT INTO vault.document_chunks (version, n, data)"
                         " VALUES (%s, 0, %s)", (row[0], data))
            conn.execute("UPDATE vault.documents SET size = %s WHERE id = %s",
                         (len(data), doc_id))

    def delete_doc(self, doc_id: str) -> None:
        self._sql("DELETE FROM vault.documents WHERE id = %s", doc_id)

    def blobs(self) -> Iterator[tuple[str, bytes]]:
        for doc_id in self.doc_ids():
            yield f"documents/{doc_id}", self.doc_bytes(doc_id)
        tables = self._sql("SELECT table_name FROM information_schema.tables"
                           " WHERE table_schema = 'vault' AND table_name <> 'document_chunks'")
        for (table,) in tables:
            for i, row in enumerate(self._sql(f"SELECT * FROM vault.{table}")):
                for value in row:
                    data = bytes(value) if isinstance(value, bytes | memoryview) else \
                        str(value).encode()
                    yield f"{table}/{i}", data

    def class_keys(self) -> list[tuple[str, int]]:
        return [(c, int(g)) for c, g in self._sql("SELECT class_id, generation FROM"
                                                   " vault.class_keys ORDER BY 1, 2")]

    def class_key(self, class_id: str, gen: int) -> bytes:
        return bytes(self._sql("SELECT data FROM vault.class_keys WHERE class_id = %s AND"
                               " generation = %s", class_id, gen)[0][0])

    def set_class_key(self, class_id: str, gen: int, data: bytes) -> None:
        self._sql("UPDATE vault.class_keys SET data = %s WHERE class_id = %s AND"
                  " generation = %s", data, class_id, gen)

    def policy(self, version: int) -> bytes:
        return bytes(self._sql("SELECT policy FROM vault.policies WHERE version = %s",
                               version)[0][0])

    def set_policy(self, version: int, yaml: bytes, sig: bytes | None = None) -> None:
        if sig is None:
            self._sql("UPDATE vault.policies SET policy = %s WHERE version = %s", yaml, version)
        else:
            self._sql("INSERT INTO vault.policies VALUES (%s, %s, %s)", version, yaml, sig)

    def manifest(self) -> bytes:
        return bytes(self._sql("SELECT data FROM vault.manifest")[0][0])

    def set_manifest(self, data: bytes) -> None:
        self._sql("UPDATE vault.manifest SET data = %s", data)

    def keyring_entries(self, owner: str) -> list[str]:
        return [r[0] for r in self._sql("SELECT key_id FROM vault.keyrings WHERE owner = %s"
                                        " ORDER BY 1", owner)]

    def set_keyring_entry(self, owner: str, key_id: str, data: bytes) -> None:
        self._sql("INSERT INTO vault.keyrings VALUES (%s, %s, %s) ON CONFLICT (owner, key_id)"
                  " DO UPDATE SET data = excluded.data", owner, key_id, data)

    def audit_lines(self) -> list[bytes]:
        return [bytes(r[0]) for r in self._sql("SELECT line FROM vault.audit_log ORDER BY seq")]

    def set_audit_line(self, seq: int, line: bytes) -> None:
        # Only a superuser switching the append-only triggers off gets here.
        with self.cluster.connect(SUPER, self.dbname) as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("UPDATE vault.audit_log SET line = %s WHERE seq = %s", (line, seq))

    @contextlib.contextmanager
    def audit_unwritable(self) -> Iterator[None]:
        self._sql("REVOKE INSERT ON vault.audit_log FROM vault_app")
        try:
            yield
        finally:
            self._sql("GRANT INSERT ON vault.audit_log TO vault_app")

    def index_rows(self) -> list[tuple[Any, ...]]:
        return sorted(self._sql("SELECT * FROM vault.document_index"))

    def index_update(self, values: dict[str, str], doc_id: str | None = None) -> None:
        sets = ", ".join(f"{k} = %s" for k in values)
        where, args = (" WHERE id = %s", [doc_id]) if doc_id else ("", [])
        self._sql(f"UPDATE vault.document_index SET {sets}{where}", *values.values(), *args)

    def index_drop(self) -> None:
        self._sql("DELETE FROM vault.document_index")

    def index_garbage(self) -> None:
        self._sql("UPDATE vault.document_index SET label = 'not a database'")


# --------------------------------------------------------------------------
# Kinds of location


class Kind(abc.ABC):
    name: str

    @abc.abstractmethod
    def new_location(self, root: Path) -> str: ...

    @abc.abstractmethod
    def raw(self, location: str) -> Raw: ...

    def __repr__(self) -> str:
        return self.name


class FolderKind(Kind):
    name = "folder"

    def new_location(self, root: Path) -> str:
        return str(root / "vault")

    def raw(self, location: str) -> Raw:
        return RawFolder(Path(location))


class PostgresKind(Kind):
    name = "postgres"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def new_location(self, root: Path) -> str:
        return self.cluster.new_database()

    def raw(self, location: str) -> Raw:
        return RawPostgres(self.cluster, dbname_of(location))
