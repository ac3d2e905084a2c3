"""The document index in PostgreSQL (docs/DESIGN.md §8): the same rows as
the folder backend's SQLite index, in ``vault.document_index``. A cache like
there: every row is derived from one document header, and
``Vault.doctor(repair=True)`` rebuilds the table from the headers alone."""

from __future__ import annotations

from collections.abc import Iterable

from vault.errors import StorageError
from vault.store._pg_conn import Database, storage_errors
from vault.store.base import Index, IndexRow
from vault.store.index import _to_row, _values

__all__ = ["PostgresIndex"]

_COLUMNS = ("id, class_id, level, label, sealed_at, sealed_by, declassify_on, size,"
            " header_sha256, stamp")
_SELECT = f"SELECT {_COLUMNS} FROM vault.document_index"  # noqa: S608 - constants only
_UPSERT = (
    f"INSERT INTO vault.document_index ({_COLUMNS})"  # noqa: S608 - constants only
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET class_id = excluded.class_id, level = excluded.level,"
    " label = excluded.label, sealed_at = excluded.sealed_at, sealed_by = excluded.sealed_by,"
    " declassify_on = excluded.declassify_on, size = excluded.size,"
    " header_sha256 = excluded.header_sha256, stamp = excluded.stamp"
)
_HINT = "run 'vault doctor --repair' to rebuild the index from the documents"


class PostgresIndex(Index):
    """An :class:`~vault.store.base.Index` in the vault's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[IndexRow]:
        with storage_errors("index read failed"), self._db.connection() as conn:
            found = conn.execute(sql, args).fetchall()
        try:
            return [_to_row(tuple(r)) for r in found]
        except (ValueError, TypeError) as e:  # a row edited into nonsense
            raise StorageError("index read failed: a row is malformed", hint=_HINT) from e

    def put(self, row: IndexRow) -> None:
        with storage_errors("index write failed"), self._db.connection() as conn:
            conn.execute(_UPSERT, _values(row))

    def remove(self, doc_id: str) -> None:
        with storage_errors("index write failed"), self._db.connection() as conn:
            conn.execute("DELETE FROM vault.document_index WHERE id = %s", (doc_id,))

    def get(self, doc_id: str) -> IndexRow | None:
        found = self._query(_SELECT + " WHERE id = %s", (doc_id,))
        return found[0] if found else None

    def rows(self) -> list[IndexRow]:
        return self._query(_SELECT + " ORDER BY sealed_at, id")

    def due(self, day: str) -> list[IndexRow]:
        return self._query(_SELECT + " WHERE declassify_on IS NOT NULL AND declassify_on <= %s"
                           " ORDER BY sealed_at, id", (day,))

    def put_many(self, rows: Iterable[IndexRow]) -> None:
        values = [_values(r) for r in rows]
        if len(values) <= 1:  # one statement is its own transaction
            for value in values:
                with storage_errors("index write failed"), self._db.connection() as conn:
                    conn.execute(_UPSERT, value)
            return
        with storage_errors("index write failed"), self._db.transaction() as conn, \
                conn.cursor() as cur:
            cur.executemany(_UPSERT, values)

    def stamps(self) -> dict[str, str]:
        with storage_errors("index read failed"), self._db.connection() as conn:
            rows = conn.execute("SELECT id, stamp FROM vault.document_index").fetchall()
        return {str(d): str(s) for d, s in rows}

    def listing(self) -> Iterable[tuple[str, str, str, str, int]]:
        with storage_errors("index read failed"), self._db.connection() as conn:
            rows = conn.execute("SELECT id, label, sealed_at, sealed_by, size FROM"
                                " vault.document_index ORDER BY sealed_at, id").fetchall()
        return [(str(d), str(label), str(at), str(by), int(size))
                for d, label, at, by, size in rows]

    def note(self, key: str) -> str | None:
        with storage_errors("index read failed"), self._db.connection() as conn:
            row = conn.execute("SELECT value FROM vault.index_notes WHERE key = %s",
                               (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_note(self, key: str, value: str) -> None:
        with storage_errors("index write failed"), self._db.connection() as conn:
            conn.execute("INSERT INTO vault.index_notes (key, value) VALUES (%s, %s)"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (key, value))

    def rebuild(self, rows: Iterable[IndexRow]) -> None:
        values = [_values(r) for r in rows]
        with storage_errors("index rebuild failed"), self._db.transaction() as conn:
            conn.execute("DELETE FROM vault.document_index")
            conn.execute("DELETE FROM vault.index_notes")
            with conn.cursor() as cur:
                cur.executemany(_UPSERT, values)
