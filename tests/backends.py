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
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pg_support import SUPER, Cluster, dbname_of

# --------------------------------------------------------------------------
# Raw access


class Raw(abc.ABC):
    """What a vault stores, reached around the library."""

    @abc.abstractmethod
    def doc_files(self) -> list[tuple[str, str]]:
        """``(doc id, version)`` of every stored document file."""
    @abc.abstractmethod
    def doc_version_bytes(self, doc_id: str, version: str) -> bytes: ...
    @abc.abstractmethod
    def set_doc_version_bytes(self, doc_id: str, version: str, data: bytes) -> None:
        """Overwrite (or plant) one stored version's bytes."""
    @abc.abstractmethod
    def delete_doc_version(self, doc_id: str, version: str) -> None: ...
    @abc.abstractmethod
    def blobs(self) -> Iterator[tuple[str, bytes]]:
        """Every stored object, with a name: files, or column values."""
    @abc.abstractmethod
    def manifest(self) -> bytes: ...
    @abc.abstractmethod
    def set_manifest(self, data: bytes) -> None: ...
    @abc.abstractmethod
    def keyring_files(self) -> list[tuple[str, str]]:
        """``(owner key, key id)`` of every entry."""
    @abc.abstractmethod
    def keyring_entry(self, owner_key: str, key_id: str) -> bytes: ...
    @abc.abstractmethod
    def set_keyring_entry(self, owner_key: str, key_id: str, data: bytes) -> None: ...
    @abc.abstractmethod
    def plant_many(self, docs: int, entries: int, owner_key: str) -> None:
        """``docs`` empty documents under ids the log never saw, and
        ``entries`` empty keyring entries for ``owner_key``, cheaply."""
    @abc.abstractmethod
    def audit_lines(self) -> list[bytes]: ...
    @abc.abstractmethod
    def set_audit_line(self, seq: int, line: bytes) -> None: ...
    @abc.abstractmethod
    def append_audit_line(self, line: bytes) -> None:
        """Add a line at the end, as an insider with the application's rights."""
    @abc.abstractmethod
    def truncate_audit(self, size: int) -> None:
        """Keep only the first ``size`` lines (someone with the rights to)."""
    @abc.abstractmethod
    def audit_unwritable(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, appending to the audit log fails."""

    # -- conveniences over the primitives above ---------------------------------

    def doc_ids(self) -> list[str]:
        return sorted({d for d, _ in self.doc_files()})

    def versions(self, doc_id: str) -> list[str]:
        return sorted(v for d, v in self.doc_files() if d == doc_id)

    def current(self, doc_id: str) -> str:
        """The version the audit log counts (the newest document state)."""
        for line in reversed(self.audit_lines()):
            rec = json.loads(line)
            st = (rec.get("state") or {}).get("document")
            if st and st["doc"] == doc_id:
                return str(st["version"])
        raise FileNotFoundError(doc_id)

    def doc_bytes(self, doc_id: str) -> bytes:
        return self.doc_version_bytes(doc_id, self.current(doc_id))

    def set_doc_bytes(self, doc_id: str, data: bytes) -> None:
        self.set_doc_version_bytes(doc_id, self.current(doc_id), data)

    def delete_doc(self, doc_id: str) -> None:
        self.delete_doc_version(doc_id, self.current(doc_id))

    def doc_file(self, doc_id: str, tmp: Path) -> Path:
        """The document as a file, for stock ``age``."""
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / f"{doc_id}.age"
        path.write_bytes(self.doc_bytes(doc_id))
        return path

    def has_doc(self, doc_id: str) -> bool:
        return doc_id in self.doc_ids()


# Hex digits a document id may not hold, as letters it may (ids are base32).
_B32 = str.maketrans("0189", "wxyz")


class RawFolder(Raw):
    def __init__(self, path: Path) -> None:
        self.path = path

    def _doc(self, doc_id: str, version: str) -> Path:
        return self.path / "docs" / f"{doc_id}.{version}.age"

    def doc_files(self) -> list[tuple[str, str]]:
        out = []
        for p in (self.path / "docs").glob("*.age"):
            doc_id, _, version = p.stem.partition(".")
            out.append((doc_id, version))
        return sorted(out)

    def doc_version_bytes(self, doc_id: str, version: str) -> bytes:
        return self._doc(doc_id, version).read_bytes()

    def set_doc_version_bytes(self, doc_id: str, version: str, data: bytes) -> None:
        self._doc(doc_id, version).write_bytes(data)

    def delete_doc_version(self, doc_id: str, version: str) -> None:
        self._doc(doc_id, version).unlink()

    def doc_file(self, doc_id: str, tmp: Path) -> Path:
        return self._doc(doc_id, self.current(doc_id))

    def blobs(self) -> Iterator[tuple[str, bytes]]:
        for p in sorted(self.path.rglob("*")):
            if p.is_file() and p.name != "lock":
                yield str(p.relative_to(self.path)), p.read_bytes()

    def manifest(self) -> bytes:
        return (self.path / "vault.json").read_bytes()

    def set_manifest(self, data: bytes) -> None:
        (self.path / "vault.json").write_bytes(data)

    def keyring_files(self) -> list[tuple[str, str]]:
        return sorted((p.parent.name, p.stem) for p in (self.path / "keyrings").glob("*/*.age"))

    def keyring_entry(self, owner_key: str, key_id: str) -> bytes:
        return (self.path / "keyrings" / owner_key / f"{key_id}.age").read_bytes()

    def set_keyring_entry(self, owner_key: str, key_id: str, data: bytes) -> None:
        folder = self.path / "keyrings" / owner_key
        folder.mkdir(exist_ok=True)
        (folder / f"{key_id}.age").write_bytes(data)

    def plant_many(self, docs: int, entries: int, owner_key: str) -> None:
        for i in range(docs):
            doc_id = f"zz{i:014x}".translate(_B32)
            (self.path / "docs" / f"{doc_id}.0000000a.age").touch()
        folder = self.path / "keyrings" / owner_key
        folder.mkdir(exist_ok=True)
        for i in range(entries):
            (folder / f"{i:032x}.age").touch()

    def audit_lines(self) -> list[bytes]:
        return (self.path / "audit" / "log").read_bytes().split(b"\n")[:-1]

    def _write_lines(self, lines: list[bytes]) -> None:
        (self.path / "audit" / "log").write_bytes(b"".join(x + b"\n" for x in lines))

    def set_audit_line(self, seq: int, line: bytes) -> None:
        lines = self.audit_lines()
        lines[seq] = line
        self._write_lines(lines)

    def append_audit_line(self, line: bytes) -> None:
        with (self.path / "audit" / "log").open("ab") as f:
            f.write(line + b"\n")

    def truncate_audit(self, size: int) -> None:
        self._write_lines(self.audit_lines()[:size])

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


class RawPostgres(Raw):
    """SQL as the cluster's superuser, on the vault's database."""

    def __init__(self, cluster: Cluster, dbname: str) -> None:
        self.cluster = cluster
        self.dbname = dbname

    def _sql(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.cluster.execute(sql, params, dbname=self.dbname, user=SUPER)

    def doc_files(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._sql("SELECT id, tag FROM vault.documents"
                                                " ORDER BY 1, 2")]

    def doc_version_bytes(self, doc_id: str, version: str) -> bytes:
        rows = self._sql("SELECT c.data FROM vault.documents d JOIN vault.document_chunks c"
                         " ON c.vid = d.vid WHERE d.id = %s AND d.tag = %s ORDER BY c.n",
                         doc_id, version)
        if not rows and (doc_id, version) not in self.doc_files():
            raise FileNotFoundError(doc_id)
        return b"".join(bytes(r[0]) for r in rows)

    def set_doc_version_bytes(self, doc_id: str, version: str, data: bytes) -> None:
        with self.cluster.connect(SUPER, self.dbname) as conn, conn.transaction():
            row = conn.execute("SELECT vid FROM vault.documents WHERE id = %s AND tag = %s",
                               (doc_id, version)).fetchone()
            if row is None:
                row = conn.execute("INSERT INTO vault.documents (id, tag, vid, size) VALUES"
                                   " (%s, %s, nextval('vault.document_versions'), 0)"
                                   " RETURNING vid", (doc_id, version)).fetchone()
            conn.execute("DELETE FROM vault.document_chunks WHERE vid = %s", (row[0],))
            conn.execute("INSERT INTO vault.document_chunks (vid, n, data)"
                         " VALUES (%s, 0, %s)", (row[0], data))
            conn.execute("UPDATE vault.documents SET size = %s WHERE vid = %s",
                         (len(data), row[0]))

    def delete_doc_version(self, doc_id: str, version: str) -> None:
        self._sql("DELETE FROM vault.documents WHERE id = %s AND tag = %s", doc_id, version)

    def blobs(self) -> Iterator[tuple[str, bytes]]:
        for doc_id, version in self.doc_files():
            yield f"documents/{doc_id}.{version}", self.doc_version_bytes(doc_id, version)
        tables = self._sql("SELECT table_name FROM information_schema.tables"
                           " WHERE table_schema = 'vault' AND table_name <> 'document_chunks'")
        for (table,) in tables:
            for i, row in enumerate(self._sql(f"SELECT * FROM vault.{table}")):
                for value in row:
                    data = bytes(value) if isinstance(value, bytes | memoryview) else \
                        str(value).encode()
                    yield f"{table}/{i}", data

    def manifest(self) -> bytes:
        return bytes(self._sql("SELECT data FROM vault.manifest")[0][0])

    def set_manifest(self, data: bytes) -> None:
        self._sql("UPDATE vault.manifest SET data = %s", data)

    def keyring_files(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._sql("SELECT okey, key_id FROM vault.keyrings"
                                                " ORDER BY 1, 2")]

    def keyring_entry(self, owner_key: str, key_id: str) -> bytes:
        return bytes(self._sql("SELECT data FROM vault.keyrings WHERE okey = %s AND"
                               " key_id = %s", owner_key, key_id)[0][0])

    def set_keyring_entry(self, owner_key: str, key_id: str, data: bytes) -> None:
        self._sql("INSERT INTO vault.keyrings VALUES (%s, %s, %s) ON CONFLICT (okey, key_id)"
                  " DO UPDATE SET data = excluded.data", owner_key, key_id, data)

    def plant_many(self, docs: int, entries: int, owner_key: str) -> None:
        # As the application role could: each version number drawn first.
        self._sql("INSERT INTO vault.documents (id, tag, vid, size) SELECT 'zz' ||"
                  " translate(lpad(to_hex(g), 14, '0'), '0189', 'wxyz'), '0000000a',"
                  " nextval('vault.document_versions'), 0 FROM generate_series(0, %s - 1) g",
                  docs)
        self._sql("INSERT INTO vault.keyrings SELECT %s, lpad(to_hex(g), 32, '0'), ''::bytea"
                  " FROM generate_series(0, %s - 1) g", owner_key, entries)

    def audit_lines(self) -> list[bytes]:
        return [bytes(r[0]) for r in self._sql("SELECT line FROM vault.audit_log ORDER BY seq")]

    def set_audit_line(self, seq: int, line: bytes) -> None:
        # Only a superuser switching the append-only triggers off gets here.
        with self.cluster.connect(SUPER, self.dbname) as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("UPDATE vault.audit_log SET line = %s WHERE seq = %s", (line, seq))

    def append_audit_line(self, line: bytes) -> None:
        n = len(self.audit_lines())
        self.cluster.execute("INSERT INTO vault.audit_log (seq, line) VALUES (%s, %s)",
                             (n, line), dbname=self.dbname, user="vault_app")

    def truncate_audit(self, size: int) -> None:
        with self.cluster.connect(SUPER, self.dbname) as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("DELETE FROM vault.audit_log WHERE seq >= %s", (size,))

    @contextlib.contextmanager
    def audit_unwritable(self) -> Iterator[None]:
        self._sql("REVOKE INSERT ON vault.audit_log FROM vault_app")
        try:
            yield
        finally:
            self._sql("GRANT INSERT ON vault.audit_log TO vault_app")


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
