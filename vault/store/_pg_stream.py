"""Sealed documents in PostgreSQL, streamed both ways (docs/DEPLOYMENT.md §1.3).

A stored document version is one row of ``vault.documents`` (id, tag,
vid, size) and its bytes in ``vault.document_chunks``: chunks of
:data:`CHUNK` bytes numbered 0, 1, 2, ... under the row's *vid*, a number
drawn from a sequence for every write (the *tag* is the vault's 8-hex-digit
version name). Neither direction ever holds more than a chunk in memory.

* Writing (:func:`write_document`): the ``documents`` row is inserted
  (exclusive create) by the statement that draws its vid, then the chunks
  go out one by one, and its size is set at the end, all in one
  transaction. A crash or a dropped connection before the commit leaves
  nothing; after it, the whole version. (A document of one chunk is created
  by a single statement: the same, in one round trip.) Drawing and taking
  the number in one statement leaves no moment in which another role could
  take it first; the database refuses a number not yet drawn (schema 14).
* Reading (:class:`DocumentReader`): the row and the first bytes come in
  one query; a longer document is read in a REPEATABLE READ transaction
  that pins the version found at open, each read fetching ``substring()``
  of one chunk.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import psycopg

from vault.errors import IntegrityError
from vault.store._pg_conn import Connection, Database, storage_errors

__all__ = ["CHUNK", "DocumentReader", "delete_document", "destroy_version", "is_reader",
           "lock_version", "open_document", "write_document"]

CHUNK = 1 << 20  # bytes per row: large enough to amortise, small in memory
HEAD = 1 << 18  # bytes fetched with the document's row (most documents whole)
READ_BUFFER = 1 << 18

# One statement, so one snapshot: the document's row and its first bytes.
_OPEN = ("SELECT d.vid, d.size, coalesce(substring(c.data FROM 1 FOR %s), ''::bytea)"
         " FROM vault.documents d LEFT JOIN vault.document_chunks c"
         " ON c.vid = d.vid AND c.n = 0 WHERE d.id = %s AND d.tag = %s")
# A document of at most one chunk, created in one statement (exclusive:
# nothing is inserted when the id exists; the count says which).
_CREATE_SMALL = (
    "WITH doc AS (INSERT INTO vault.documents (id, tag, vid, size)"
    " VALUES (%s, %s, nextval('vault.document_versions'), %s)"
    " ON CONFLICT (id, tag) DO NOTHING RETURNING vid),"
    " chunk AS (INSERT INTO vault.document_chunks (vid, n, data)"
    " SELECT vid, 0, %b FROM doc WHERE %s > 0 RETURNING n)"
    " SELECT count(*) FROM doc"
)

# One stored version's row and chunks, locked for their deletion (waiting
# for the locks, or not).
_LOCK_ROW = "SELECT vid FROM vault.documents WHERE id = %s AND tag = %s FOR UPDATE"
_LOCK_ROW_NOWAIT = "SELECT vid FROM vault.documents WHERE id = %s AND tag = %s FOR UPDATE NOWAIT"
_LOCK_CHUNKS = "SELECT n FROM vault.document_chunks WHERE vid = %s FOR UPDATE"
_LOCK_CHUNKS_NOWAIT = "SELECT n FROM vault.document_chunks WHERE vid = %s FOR UPDATE NOWAIT"


def _damaged(doc_id: str, n: int) -> IntegrityError:
    return IntegrityError(f"document {doc_id} is damaged in the database: chunk {n} is "
                          "missing or short",
                          hint="restore the document from a backup, or shred it")


class DocumentReader(io.RawIOBase):
    """One version of a document, read chunk by chunk (seekable).

    Opening fetches the row and the first :data:`HEAD` bytes in one query;
    a document that fits is then read from memory, and its connection is
    already back in the pool. A longer one keeps a connection in a
    REPEATABLE READ transaction that pins the version for the later reads.
    """

    def __init__(self, db: Database, doc_id: str, tag: str) -> None:
        super().__init__()
        self.doc_id = doc_id
        self.tag = tag
        self._db = db
        self._stack = contextlib.ExitStack()
        self._conn: Connection | None = None
        self._pos = 0
        with storage_errors(f"cannot read document {doc_id}", db):
            with db.connection() as conn:
                row = conn.execute(_OPEN, (HEAD, doc_id, tag)).fetchone()
            if row is not None and int(row[1]) > len(row[2]):
                row = self._pin(db)
        if row is None:
            self._stack.close()
            raise FileNotFoundError(f"no document {doc_id}")
        self.version, self.size, self._head = int(row[0]), int(row[1]), bytes(row[2])
        if len(self._head) != min(self.size, HEAD):
            self._stack.close()
            raise _damaged(doc_id, 0)

    def _pin(self, db: Database) -> Any:
        """Re-read the row inside a snapshot that the later reads share."""
        try:
            self._conn = conn = self._stack.enter_context(db.connection())
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._stack.callback(conn.execute, "ROLLBACK")  # read-only: nothing to keep
            return conn.execute(_OPEN, (HEAD, self.doc_id, self.tag)).fetchone()
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                self._stack.close()
            raise

    # -- io.RawIOBase --------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.closed:
            raise ValueError("read from a closed document")
        if self._pos >= self.size or not len(view):
            return 0
        if self._pos < len(self._head):
            data = self._head[self._pos : self._pos + len(view)]
        else:
            data = self._fetch(len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _fetch(self, size: int) -> bytes:
        n, offset = divmod(self._pos, CHUNK)
        want = min(size, CHUNK - offset, self.size - self._pos)
        assert self._conn is not None  # longer than its head: pinned at open
        with storage_errors(f"cannot read document {self.doc_id}", self._db):
            row = self._conn.execute(
                "SELECT substring(data FROM %s FOR %s) FROM vault.document_chunks"
                " WHERE vid = %s AND n = %s", (offset + 1, want, self.version, n)
            ).fetchone()
        data = bytes(row[0]) if row is not None else b""
        if len(data) != want:
            raise _damaged(self.doc_id, n)
        return data

    def close(self) -> None:
        if not self.closed:
            try:
                # Ending a read-only transaction: a failure loses nothing.
                with contextlib.suppress(psycopg.Error):
                    self._stack.close()
            finally:
                super().close()


def open_document(db: Database, doc_id: str, tag: str) -> io.BufferedReader:
    """A buffered, seekable reader; :class:`FileNotFoundError` if absent."""
    return io.BufferedReader(DocumentReader(db, doc_id, tag), buffer_size=READ_BUFFER)


class _ChunkWriter(io.RawIOBase):
    """Collects writes into chunks. The transaction starts with the first
    full chunk; a document of at most one chunk needs none (see
    :data:`_CREATE_SMALL`)."""

    def __init__(self, conn: Connection, doc_id: str, tag: str) -> None:
        super().__init__()
        self._conn = conn
        self._doc = (doc_id, tag)
        self.version = -1  # drawn when the transaction starts
        self.size = 0
        self._n = 0
        self._buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buf += view
        self.size += len(view)
        while len(self._buf) > CHUNK:  # keep the last chunk: it may be the only one
            self._insert(bytes(self._buf[:CHUNK]))
            del self._buf[:CHUNK]
        return len(view)

    @property
    def started(self) -> bool:
        return self.version >= 0

    def _begin(self) -> None:
        self._conn.execute("BEGIN")
        row = self._conn.execute(
            "INSERT INTO vault.documents (id, tag, vid, size)"
            " VALUES (%s, %s, nextval('vault.document_versions'), 0)"
            " ON CONFLICT (id, tag) DO NOTHING RETURNING vid", self._doc).fetchone()
        if row is None:
            raise FileExistsError(f"document {self._doc[0]} version {self._doc[1]} exists")
        self.version = int(row[0])

    def _insert(self, chunk: bytes) -> None:
        if not self.started:
            self._begin()
        self._conn.execute("INSERT INTO vault.document_chunks (vid, n, data)"
                           " VALUES (%s, %s, %b)", (self.version, self._n, chunk))
        self._n += 1

    def commit(self) -> None:
        doc_id, tag = self._doc
        if not self.started:
            row = self._conn.execute(_CREATE_SMALL, (doc_id, tag, self.size, bytes(self._buf),
                                                     self.size)).fetchone()
            if row is None or int(row[0]) != 1:
                raise FileExistsError(f"document {doc_id} version {tag} exists")
            return
        if self._buf:
            self._insert(bytes(self._buf))
            self._buf.clear()
        self._conn.execute("UPDATE vault.documents SET size = %s WHERE vid = %s",
                           (self.size, self.version))
        self._conn.execute("COMMIT")

    def abort(self) -> None:
        if self.started:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("ROLLBACK")


@contextlib.contextmanager
def write_document(db: Database, doc_id: str, tag: str) -> Iterator[io.RawIOBase]:
    """Yield a stream; the version appears atomically when the block ends
    without error. :class:`FileExistsError` if it exists."""
    with storage_errors(f"cannot write document {doc_id}", db), db.connection() as conn:
        writer = _ChunkWriter(conn, doc_id, tag)
        try:
            yield writer
            writer.commit()
        except BaseException:
            writer.abort()
            raise


def delete_document(db: Database, doc_id: str, tag: str, *, wait: bool = True) -> None:
    """Delete one stored version, if it is stored -- its header, every
    wrapped copy of its file key, first -- in one transaction. PostgreSQL
    never overwrites a row in place (an UPDATE writes a new row version), so
    the bytes are reclaimed by VACUUM, not by an overwrite;
    docs/DEPLOYMENT.md §1.3 says what that means for backups and WAL.
    ``wait`` False: a row another session holds locked is an error at once."""
    with storage_errors(f"cannot delete document {doc_id}", db, waited=wait), \
            db.transaction() as conn:
        vid = lock_version(conn, doc_id, tag, wait=wait)
        if vid is not None:
            destroy_version(conn, doc_id, tag, vid)


def lock_version(conn: Connection, doc_id: str, tag: str, *, wait: bool = True) -> int | None:
    """Lock one stored version's row and each of its chunks (``FOR
    UPDATE``; ``wait`` False: ``NOWAIT``) in the caller's transaction, and
    give its number; None when it is not stored. The chunks too: deleting
    the row deletes them, and a chunk the application role held locked once
    made a shred's delete wait, and give up, after its record."""
    # This one row, not the whole table: the role can fill the table.
    row = conn.execute(_LOCK_ROW if wait else _LOCK_ROW_NOWAIT, (doc_id, tag)).fetchone()
    if row is None:
        return None
    # A chunk inserted from now on waits for this transaction: its reference
    # to the row takes a lock that conflicts with this one.
    conn.execute(_LOCK_CHUNKS if wait else _LOCK_CHUNKS_NOWAIT, (int(row[0]),))
    return int(row[0])


def destroy_version(conn: Connection, doc_id: str, tag: str, vid: int) -> None:
    """Delete the version ``vid``, whose row the caller's transaction holds
    locked, and its chunks: :class:`IntegrityError` naming it if its row is
    not deleted -- the caller found it, so it must be (a row renamed
    meanwhile once made a shred's DELETE match nothing, and the shred say
    done; schema version 21 refuses the rename)."""
    row = conn.execute("DELETE FROM vault.documents WHERE vid = %s AND id = %s AND tag = %s"
                       " RETURNING vid", (vid, doc_id, tag)).fetchone()
    if row is None:
        raise IntegrityError(f"document {doc_id}: its stored version {tag} was not deleted"
                             " (its row was changed meanwhile)",
                             hint="'vault doctor' names what is still stored; treat it as"
                                  " an incident")
    # ON DELETE CASCADE removes the chunks; deleting them explicitly
    # (the header's chunk first) does not depend on the constraint.
    conn.execute("DELETE FROM vault.document_chunks WHERE vid = %s", (vid,))


def is_reader(f: object) -> DocumentReader | None:
    """The :class:`DocumentReader` behind a stream :func:`open_document` made."""
    raw = getattr(f, "raw", None)
    return raw if isinstance(raw, DocumentReader) else None
