"""The SQLite document index of the folder backend (docs/DESIGN.md §8).

The index is a cache for listing and for ``declassify --due``: every row is
derived from one document header, so ``Vault.doctor(repair=True)`` can throw
the file away and rebuild it. It holds only what the header shows in clear
(the signed label statement, sizes, a digest of the header) -- never a title,
file name, content type or plaintext digest.

Access decisions never rest on it alone: ``open``, ``info``, ``export`` and
``reclassify`` re-read and verify the document's own header.

``notes`` keeps what the vault noted when it last brought the index up to
date (the store's documents version: ``vault._ops.read.refresh_index``).
Triggers drop the notes whenever a row is inserted, changed or deleted, by
the vault or by anyone else, so a note never vouches for rows it did not see.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import cast

from vault.errors import StorageError
from vault.store.base import Index, IndexRow

__all__ = ["SQLiteIndex"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id            TEXT PRIMARY KEY,
    class_id      TEXT NOT NULL,
    level         TEXT NOT NULL,
    label         TEXT NOT NULL,
    sealed_at     TEXT NOT NULL,
    sealed_by     TEXT NOT NULL,
    declassify_on TEXT,
    size          INTEGER NOT NULL,
    header_sha256 TEXT NOT NULL,
    stamp         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_declassify ON documents (declassify_on);
CREATE INDEX IF NOT EXISTS documents_sealed ON documents (sealed_at, id);
CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS documents_insert AFTER INSERT ON documents
    BEGIN DELETE FROM notes; END;
CREATE TRIGGER IF NOT EXISTS documents_update AFTER UPDATE ON documents
    BEGIN DELETE FROM notes; END;
CREATE TRIGGER IF NOT EXISTS documents_delete AFTER DELETE ON documents
    BEGIN DELETE FROM notes; END;
"""

# Whole statements as constants: nothing is ever formatted into SQL.
_SELECT = (
    "SELECT id, class_id, level, label, sealed_at, sealed_by, declassify_on, size, header_sha256,"
    " stamp FROM documents"
)
_INSERT = (
    "INSERT OR REPLACE INTO documents"
    " (id, class_id, level, label, sealed_at, sealed_by, declassify_on, size, header_sha256,"
    " stamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _to_row(r: tuple[object, ...]) -> IndexRow:
    doc_id, class_id, level, label, sealed_at, sealed_by, due, size, digest, stamp = r
    return IndexRow(
        doc_id=str(doc_id),
        class_id=str(class_id),
        level=str(level),
        label=json.loads(str(label)),
        sealed_at=str(sealed_at),
        sealed_by=str(sealed_by),
        declassify_on=None if due is None else str(due),
        size=int(str(size)),
        header_sha256=str(digest),
        stamp=str(stamp),
    )


def _values(row: IndexRow) -> tuple[object, ...]:
    label = json.dumps(row.label, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (
        row.doc_id,
        row.class_id,
        row.level,
        label,
        row.sealed_at,
        row.sealed_by,
        row.declassify_on,
        row.size,
        row.header_sha256,
        row.stamp,
    )


class SQLiteIndex(Index):
    """An :class:`~vault.store.base.Index` in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, SCHEMA_VERSION):
                    db.close()
                    raise StorageError(
                        f"index schema version {version} is not supported",
                        hint="run 'vault doctor --repair' to rebuild the index",
                    )
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except sqlite3.Error as e:
                if not os.access(os.path.dirname(self.path) or ".", os.W_OK):
                    # A read-only vault (a mounted backup, a CD): read the
                    # index as it is; it cannot change under us.
                    db = self._connect_read_only(e)
                else:
                    raise StorageError(
                        f"cannot open the index: {e}",
                        hint="run 'vault doctor --repair' to rebuild it from the documents",
                    ) from e
            self._db = db
        return self._db

    def _connect_read_only(self, cause: sqlite3.Error) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro&immutable=1"
        try:
            return sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the index read-only: {e}") from cause

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StorageError(
                f"index write failed: {e}", hint="run 'vault doctor --repair'"
            ) from e

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return list(self._connect().execute(sql, args).fetchall())
        except sqlite3.Error as e:
            raise StorageError(
                f"index read failed: {e}", hint="run 'vault doctor --repair'"
            ) from e

    def put(self, row: IndexRow) -> None:
        with self._tx() as db:
            db.execute(_INSERT, _values(row))

    def put_many(self, rows: Iterable[IndexRow]) -> None:
        with self._tx() as db:
            db.executemany(_INSERT, [_values(r) for r in rows])

    def remove(self, doc_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def get(self, doc_id: str) -> IndexRow | None:
        found = self._query(_SELECT + " WHERE id = ?", (doc_id,))
        return _to_row(found[0]) if found else None

    def rows(self) -> list[IndexRow]:
        found = self._query(_SELECT + " ORDER BY sealed_at, id")
        return [_to_row(r) for r in found]

    def note(self, key: str) -> str | None:
        found = self._query("SELECT value FROM notes WHERE key = ?", (key,))
        return str(found[0][0]) if found else None

    def set_note(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO notes (key, value) VALUES (?, ?)", (key, value))

    def stamps(self) -> dict[str, str]:
        return {str(i): str(s) for i, s in self._query("SELECT id, stamp FROM documents")}

    def listing(self) -> Iterator[tuple[str, str, str, str, int]]:
        # The label column already holds the statement's canonical JSON
        # (_values). Streamed: a large vault's rows are never all in memory.
        try:
            cursor = self._connect().execute(
                "SELECT id, label, sealed_at, sealed_by, size FROM documents"
                " ORDER BY sealed_at, id")
            while batch := cursor.fetchmany(1000):
                yield from cast("list[tuple[str, str, str, str, int]]", batch)  # caller checks
        except sqlite3.Error as e:
            raise StorageError(f"index read failed: {e}", hint="run 'vault doctor --repair'") from e

    def due(self, day: str) -> list[IndexRow]:
        found = self._query(
            _SELECT + " WHERE declassify_on IS NOT NULL AND declassify_on <= ?"
            " ORDER BY sealed_at, id",
            (day,),
        )
        return [_to_row(r) for r in found]

    def rebuild(self, rows: Iterable[IndexRow]) -> None:
        rows = list(rows)
        try:
            with self._tx() as db:
                db.execute("DELETE FROM documents")
                db.executemany(_INSERT, [_values(r) for r in rows])
            return
        except StorageError:
            pass
        # The file itself is damaged: start a fresh one (the caller holds the
        # vault's write lock, so no other writer is using it).
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path + suffix)
        with self._tx() as db:
            db.executemany(_INSERT, [_values(r) for r in rows])

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
