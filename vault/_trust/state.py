"""The trusted state: what the verified audit log says the vault holds
(docs/DESIGN.md §8).

The vault's state -- the policy version in force, the class keys and who
holds them, every document's current version and label -- is the replay of
the audit log's state records (:mod:`vault._trust.journal`). This module
keeps that replay in a small SQLite database **outside the vault**, one per
vault and machine user (``$VAULT_STATE_DIR``, else
``$XDG_STATE_HOME/vault``, else ``~/.local/state/vault``; 0700/0600), the
way a TUF client keeps the metadata it verified: someone who can write the
vault folder cannot write it, so it is the reference the folder is checked
against. It remembers where in the log it stopped (a trusted tip: size, end
offset and the Merkle tree's right edge), so each command replays only the
records appended since; a log that no longer extends that tip was rolled
back or rewritten, and says so.

It is a cache of the log, never more: deleting it costs one full replay.
Without a writable state folder the replay is kept in memory for the life
of the process.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vault._atomic import make_folders
from vault._primitives import canonical_json, loads_json
from vault.errors import StorageError

__all__ = ["DocRow", "StateStore", "check_own_files", "due_text", "state_base", "state_path"]

_SCHEMA_VERSION = 11


def due_text(when: datetime) -> str:
    """A document's due instant as the ``due`` column keeps it: UTC to the
    microsecond, always as wide (four-digit year, six-digit fraction), so
    that text order is time order and ``due <= due_text(now)`` is exactly
    "due now" (POLICY.md §5.3) -- never a day early, as a date alone was."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _add_listing_entries(db: sqlite3.Connection) -> None:
    """Schema 5 -> 6: each document's label and listing entry, made once
    from the statements already verified."""
    from vault._results import listing_entry

    db.execute("ALTER TABLE docs ADD COLUMN label TEXT")
    db.execute("ALTER TABLE docs ADD COLUMN listed TEXT")
    rows = db.execute("SELECT doc_id, statement FROM docs").fetchall()
    for doc_id, text in rows:
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            db.execute("UPDATE docs SET label = ?, listed = ? WHERE doc_id = ?",
                       (*listing_entry(loads_json(text)), doc_id))


def _add_pins(db: sqlite3.Connection) -> None:
    """Schema 6 -> 7: each document's recipient stanza digests, filled by
    the replay under rules 4 (the rules version changed with it)."""
    db.execute("ALTER TABLE docs ADD COLUMN pins TEXT")


def _add_decision_times(db: sqlite3.Connection) -> None:
    """Schema 7 -> 8: when each open decision was made, filled by the replay
    under rules 7 (a completion dated before its decision does not count)."""
    db.execute("ALTER TABLE pending ADD COLUMN time TEXT")


_ORIGINALS = """CREATE TABLE original_leaves (seq INTEGER PRIMARY KEY, leaf BLOB NOT NULL,
    incident INTEGER NOT NULL)"""


def _add_original_leaves(db: sqlite3.Connection) -> None:
    """Schema 8 -> 9: the leaf hashes incident records carry for the lines
    they seal off (FORMAT.md §14.8). No earlier release wrote them: an
    incident replayed already carries none."""
    db.execute(_ORIGINALS)


_TIP_LEAVES = "CREATE TABLE tip_leaves (seq INTEGER PRIMARY KEY, leaf BLOB NOT NULL)"


def _add_tip_leaves(db: sqlite3.Connection) -> None:
    """Schema 9 -> 10: the leaf the trusted tip's tree holds at each
    sealed-off line below it, told from the lines at the next catch-up
    while they still reproduce the tip (docs/AUDIT.md §11.3)."""
    db.execute(_TIP_LEAVES)


def _due_instants(db: sqlite3.Connection) -> None:
    """Schema 10 -> 11: each document's due instant, made from the label
    its verified statement holds, where the versions before kept only the
    day (``declassify --due`` then took a document due at 23:59 from
    midnight on). A label that cannot be read here has the whole log
    replayed again, which makes every row as the journal does."""
    from vault.policy import Label

    rows = db.execute("SELECT doc_id, statement FROM docs WHERE due IS NOT NULL").fetchall()
    for doc_id, text in rows:
        try:
            when = Label.from_dict(loads_json(text)["label"]).declassify_at()
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            db.execute("UPDATE docs SET due = NULL WHERE doc_id = ?", (doc_id,))
            db.execute("DELETE FROM meta WHERE key = 'rules'")  # replayed at the catch-up
            continue
        db.execute("UPDATE docs SET due = ? WHERE doc_id = ?",
                   (None if when is None else due_text(when), doc_id))


def _from_8(db: sqlite3.Connection) -> None:
    _add_original_leaves(db)
    _from_9(db)


def _from_9(db: sqlite3.Connection) -> None:
    _add_tip_leaves(db)
    _due_instants(db)


def _from_5(db: sqlite3.Connection) -> None:
    _add_listing_entries(db)
    _from_6(db)


def _from_6(db: sqlite3.Connection) -> None:
    _add_pins(db)
    _from_7(db)


def _from_7(db: sqlite3.Connection) -> None:
    _add_decision_times(db)
    _from_8(db)


# Steps from an older schema to this one that keep what was verified.
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    5: _from_5, 6: _from_6, 7: _from_7, 8: _from_8, 9: _from_9, 10: _due_instants}
_LISTING = ("SELECT doc_id, statement, label, listed FROM docs "
            "WHERE shredded = 0 ORDER BY sealed_at, doc_id")
_LISTING_ENTRIES = ("SELECT doc_id, CASE WHEN listed IS NULL THEN statement END, label, listed "
                    "FROM docs WHERE shredded = 0 ORDER BY sealed_at, doc_id")
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE policies (version INTEGER PRIMARY KEY, sha256 TEXT NOT NULL,
    text TEXT NOT NULL, seq INTEGER NOT NULL, applied_by TEXT NOT NULL,
    applied_at TEXT NOT NULL);
CREATE TABLE class_keys (class_id TEXT NOT NULL, generation INTEGER NOT NULL,
    class TEXT NOT NULL, recipient TEXT NOT NULL, key_id TEXT NOT NULL UNIQUE,
    creator TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (class_id, generation));
CREATE TABLE holders (key_id TEXT NOT NULL, name TEXT, recipient TEXT NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (key_id, recipient));
CREATE TABLE entries (key_id TEXT NOT NULL, owner TEXT NOT NULL, sha256 TEXT NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (key_id, owner));
CREATE TABLE docs (doc_id TEXT PRIMARY KEY, version TEXT NOT NULL, header TEXT NOT NULL,
    statement TEXT NOT NULL, key_id TEXT NOT NULL, class_id TEXT NOT NULL,
    level TEXT NOT NULL, sealed_at TEXT NOT NULL, sealed_by TEXT NOT NULL,
    due TEXT, seq INTEGER NOT NULL, shredded INTEGER NOT NULL DEFAULT 0,
    label TEXT, listed TEXT, pins TEXT);
CREATE INDEX docs_due ON docs (due) WHERE due IS NOT NULL AND shredded = 0;
CREATE INDEX docs_key ON docs (key_id) WHERE shredded = 0;
CREATE TABLE findings (n INTEGER PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL);
CREATE TABLE sealed_off (seq INTEGER PRIMARY KEY, incident INTEGER NOT NULL);
""" + _ORIGINALS + ";\n" + _TIP_LEAVES + """;
CREATE TABLE used (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE requests (digest TEXT PRIMARY KEY, id TEXT NOT NULL, requester TEXT NOT NULL,
    expires TEXT NOT NULL, seq INTEGER NOT NULL, statement TEXT NOT NULL);
CREATE TABLE answers (id TEXT PRIMARY KEY, request TEXT NOT NULL, approver TEXT NOT NULL,
    decision TEXT NOT NULL, reason TEXT, seq INTEGER NOT NULL);
CREATE INDEX answers_request ON answers (request);
CREATE TABLE approved (request TEXT PRIMARY KEY, actor TEXT NOT NULL, seq INTEGER NOT NULL,
    approvers TEXT NOT NULL, expect TEXT NOT NULL);
CREATE TABLE pending (request TEXT PRIMARY KEY, seq INTEGER NOT NULL, action TEXT NOT NULL,
    doc TEXT, actor TEXT, host TEXT NOT NULL, pid INTEGER NOT NULL, time TEXT);
"""


def state_path(vault_id: str) -> str | None:
    """Where this user keeps the replay of vault ``vault_id`` (None: keep
    it in memory, when no folder is set or can be made)."""
    base = state_base()
    return None if base is None else os.path.join(base, f"{vault_id}.sqlite")


def state_base() -> str | None:
    """This user's private folder of trusted states (None: none usable)."""
    return _state_folder()[0]


def state_problem() -> str | None:
    """Why this user's folder of trusted states, which exists or was named,
    cannot be used -- the replay is then kept in memory, and a log rolled
    back or a vault replaced in its place goes unnoticed -- or None."""
    return _state_folder()[1]


def _state_folder() -> tuple[str | None, str | None]:
    base = os.environ.get("VAULT_STATE_DIR")
    if not base:
        xdg = os.environ.get("XDG_STATE_HOME")
        home = os.path.expanduser("~")
        if not xdg and home in ("~", "/"):
            return None, None  # no home: nothing was asked for (DEPLOYMENT.md §12)
        base = os.path.join(xdg or os.path.join(home, ".local", "state"), "vault")
    try:
        _refuse_swappable(base)  # before anything is made on the way
        make_folders(base)  # each level 0700: ~/.local/state too, where it is missing
        st = os.stat(base)
    except FileExistsError:  # a file, or a link, by that name
        return None, "its folder is not a folder"
    except OSError as e:
        return None, f"its folder cannot be made ({e.strerror})"
    if not stat.S_ISDIR(st.st_mode):
        return None, "its folder is not a folder"
    if st.st_uid != os.getuid():
        return None, "its folder belongs to another user"
    if st.st_mode & 0o022:  # a folder others may write is no place for a trusted state
        return None, "its folder is writable by others"
    return base, None


def _refuse_swappable(base: str) -> None:
    """Refuse a state folder that another user could swap for another: one
    reached through a symbolic link they made (at ``$VAULT_STATE_DIR`` in
    ``/tmp``, made before the user's first command), or lying in a folder
    of theirs or one they may write -- unless sticky, as ``/tmp`` is: there
    others cannot rename or remove what is not theirs. They would choose
    where the record is kept, or move it away between two commands: the
    next one would make a new folder and start from nothing, the pins and
    trusted tip gone without a word. So it is refused (StorageError), never
    rebuilt in memory nor anew: the user moves it, record and all. Every
    folder it lies in is looked at where it really is, up to ``/``, as
    sshd's StrictModes looks at the way to ``authorized_keys``."""
    from vault._inputs import check_own, refuse_planted_links
    from vault.errors import UsageError

    hint = (f"it is {base}: keep it in a folder of your own that lies in none another user "
            "owns or may write (/tmp is sticky: it may lie there), move the record's files "
            "with it, and set VAULT_STATE_DIR to it")
    what = "cannot use this machine's record of the vault:"
    try:
        refuse_planted_links(base, hint, new=True)
    except UsageError:
        raise StorageError(f"{what} the way to its folder goes through a symbolic link that "
                           "another user made", hint=hint) from None
    above = os.path.dirname(os.path.realpath(base))
    while True:
        try:
            info = os.stat(above)
        except FileNotFoundError:
            pass  # a level still to be made (0700)
        else:
            if stat.S_ISDIR(info.st_mode):  # else none can be made: said as before
                check_own(f"{what} a folder it lies in", info, StorageError, hint,
                          folder=True, sticky=True)
        if above == os.path.dirname(above):  # "/"
            return
        above = os.path.dirname(above)


# SQLite's files of one record: the database, its write-ahead log and its
# index, and the rollback journal of a database not in WAL mode.
_SQLITE_FILES = {"": "", "-wal": " (its -wal file)", "-shm": " (its -shm file)",
                 "-journal": " (its -journal file)"}


def check_own_files(path: str) -> None:
    """Refuse the record at ``path`` if another user may have written any of
    its files: one planted while the state folder was open to others (its
    warning said so, and the user then closed it) would choose the trusted
    tip and everything the replay decides, unseen. Set aside and rebuilt
    from the log, it would drop the rollback check it is there for, so it is
    refused: StorageError naming what to do.

    Looked at with ``lstat``, not on a descriptor: any descriptor of the
    file this process closed would drop the locks SQLite holds on it. The
    folder is the user's alone (:func:`state_problem`), so no one else can
    put another file under these names meanwhile, nor change the mode of a
    file of the user's own."""
    from vault._inputs import check_own

    hint = ("another user may have written it while the state folder was open to them: "
            "treat it as an incident; once looked into, remove it with its -wal, -shm and "
            f"-journal files (it is {path}; rebuilt from the audit log) and give the vault's "
            "id, checked out of band, with --vault-id ID (env VAULT_ID) once")
    for suffix, which in _SQLITE_FILES.items():
        try:
            info = os.lstat(path + suffix)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
            continue  # the user's own mistake, not another's doing: SQLite says it cannot
        check_own(f"cannot use this machine's record of the vault{which}: it", info,
                  StorageError, hint)


def _not_updated(e: sqlite3.Error) -> StorageError:
    return StorageError(f"cannot update this machine's record of the vault: {e}",
                        hint="nothing was changed; check the disk and the folder that holds "
                             "it: $VAULT_STATE_DIR (or ~/.local/state/vault)")


def _unusable(path: str, e: sqlite3.DatabaseError) -> StorageError:
    return StorageError(
        f"cannot use this machine's record of the vault: {e}",
        hint=f"it is {path}: make its folder writable by you, or remove the file (it is "
             "rebuilt from the audit log), or set VAULT_STATE_DIR to a folder of yours")


@dataclass(frozen=True)
class DocRow:
    """One document as the verified log last recorded it."""

    doc_id: str
    version: str  # which stored file holds this version (8 hex digits)
    header: str  # SHA-256 (hex) of its header
    statement: dict[str, Any]  # the signed label statement
    key_id: str  # the class key generation it is wrapped to
    class_id: str
    level: str
    sealed_at: str
    sealed_by: str
    due: str | None  # when its declassify-on falls due (due_text), if known
    seq: int  # the record that made this state
    shredded: bool
    #: the statement as stored: its canonical JSON (empty when not read from the store)
    statement_text: str = field(default="", repr=False, compare=False)
    #: SHA-256 of its recipient stanzas -- ``class``, ``recovery`` -- and ``set``,
    #: the recovery recipients they were made for (FORMAT.md §14.6); None for a
    #: version recorded without them
    pins: dict[str, Any] | None = field(default=None, compare=False)


class StateStore:
    """The replay database. Callers write only inside :meth:`transaction`."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        try:
            self._db = self._open(path)
        except sqlite3.OperationalError as e:
            # Cannot be opened or written (a read-only folder, a folder in
            # its place, a lock held too long): nothing says it is damaged,
            # so it is kept -- its trusted tip is what tells a cut log.
            if path is None:
                raise
            if os.path.lexists(path):
                raise _unusable(path, e) from e
            # No record yet, and none can be made: kept in memory, as
            # without a state folder (state_path).
            self.path = None
            self._db = self._open(None)
        except sqlite3.DatabaseError:
            # A damaged cache is rebuilt from the log, never trusted.
            if path is None:
                raise
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + suffix)
            try:
                self._db = self._open(path)
            except sqlite3.DatabaseError as e:
                raise _unusable(path, e) from e

    @staticmethod
    def _open(path: str | None) -> sqlite3.Connection:
        if path is not None:
            check_own_files(path)
        # Never open the file outside SQLite: closing any descriptor of it
        # would drop the locks SQLite holds for this process's other
        # connections (and corrupt it). So SQLite creates it, under a umask
        # that makes it 0600 from the start (its -wal and -shm files take the
        # same mode); the folder is 0700 anyway. A narrower umask meanwhile
        # can only make another thread's new file more private, never less.
        old = os.umask(0o077)
        try:
            db = sqlite3.connect(path or ":memory:", isolation_level=None,
                                 check_same_thread=False, timeout=60)
        finally:
            os.umask(old)
        db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        db.execute("PRAGMA synchronous=NORMAL")  # a cache of the log: rebuilt if lost
        if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")  # two processes may start at once: check again
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version in _MIGRATIONS:
                # In place: the pin and the trusted tip survive an upgrade.
                # Rebuilt from the log, this machine would be new to the vault
                # and could no longer tell a cut tail (THREAT-MODEL.md §5.5).
                _MIGRATIONS[version](db)
            elif version != _SCHEMA_VERSION:
                for (name,) in db.execute(
                        "SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                    db.execute(f'DROP TABLE IF EXISTS "{name}"')
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            db.execute("COMMIT")
        return db

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One writer at a time (across processes); all or nothing."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise _not_updated(e) from e
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as e:
            # A full disk (or a failing one) fails a write or the commit:
            # nothing of it counts, and it is said as such, not as a bug.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise _not_updated(e) from e
            raise

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a transaction: what is done in it is undone if it raises."""
        self._db.execute("SAVEPOINT replay_again")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO replay_again")
            self._db.execute("RELEASE replay_again")
            raise
        self._db.execute("RELEASE replay_again")

    def reset(self) -> None:
        """Forget everything (inside a transaction): the next replay starts
        over -- except the original leaves this machine confirmed itself."""
        for table in ("meta", "policies", "class_keys", "holders", "entries", "docs",
                      "findings", "sealed_off", "used", "pending",
                      "requests", "answers", "approved"):
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        # What this machine confirmed itself is no product of the replay.
        self._db.execute("DELETE FROM original_leaves WHERE incident >= 0")

    # -- small values ----------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def metas(self, *keys: str) -> dict[str, str]:
        """Several values read in one statement (one consistent snapshot)."""
        marks = ", ".join("?" * len(keys))
        return {str(k): str(v) for k, v in self._db.execute(
            f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)}  # noqa: S608

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- policies --------------------------------------------------------------

    def policies(self) -> list[tuple[int, str, int, str, str]]:
        """``(version, sha256, seq, applied by, applied at)``, ascending."""
        return [tuple(r) for r in self._db.execute(
            "SELECT version, sha256, seq, applied_by, applied_at FROM policies ORDER BY version")]

    def policy_seq(self) -> int:
        """The audit record that installed the policy version in force."""
        row = self._db.execute("SELECT seq FROM policies ORDER BY version DESC LIMIT 1").fetchone()
        return -1 if row is None else int(row[0])

    def policy_text(self, sha256: str) -> str | None:
        row = self._db.execute("SELECT text FROM policies WHERE sha256 = ? LIMIT 1",
                               (sha256,)).fetchone()
        return None if row is None else str(row[0])

    def add_policy(self, version: int, sha256: str, text: str, seq: int, by: str,
                   at: str) -> None:
        self._db.execute("INSERT INTO policies VALUES (?, ?, ?, ?, ?, ?)",
                         (version, sha256, text, seq, by, at))

    # -- class keys, holders and keyring entries --------------------------------

    def class_keys(self) -> list[tuple[str, int, str, str, str, int]]:
        """``(class id, generation, class JSON, recipient, creator, seq)``."""
        return [tuple(r) for r in self._db.execute(
            "SELECT class_id, generation, class, recipient, creator, seq FROM class_keys "
            "ORDER BY class_id, generation")]

    def class_of_key(self, key_id: str) -> str | None:
        """The class JSON of class key ``key_id``, if there is one."""
        row = self._db.execute("SELECT class FROM class_keys WHERE key_id = ?",
                               (key_id,)).fetchone()
        return None if row is None else str(row[0])

    def add_class_key(self, class_id: str, generation: int, cls: dict[str, Any],
                      recipient: str, key_id: str, creator: str, seq: int) -> None:
        self._db.execute("INSERT INTO class_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (class_id, generation, json.dumps(cls, sort_keys=True), recipient,
                          key_id, creator, seq))

    def holders(self) -> list[tuple[str, str | None, str]]:
        """``(key id, user name or None, recipient)``."""
        return [tuple(r) for r in self._db.execute(
            "SELECT key_id, name, recipient FROM holders")]

    def holders_of(self, key_id: str) -> list[tuple[str | None, str]]:
        """``(user name or None, recipient)`` of everyone who could know ``key_id``."""
        return [(n, r) for n, r in self._db.execute(
            "SELECT name, recipient FROM holders WHERE key_id = ?", (key_id,))]

    def add_holder(self, key_id: str, name: str | None, recipient: str, seq: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO holders VALUES (?, ?, ?, ?)",
                         (key_id, name, recipient, seq))

    def entries(self) -> dict[tuple[str, str], str]:
        """``(key id, owner recipient) -> SHA-256 of the entry file``."""
        return {(k, o): h for k, o, h in self._db.execute(
            "SELECT key_id, owner, sha256 FROM entries")}

    def entry(self, key_id: str, owner: str) -> str | None:
        row = self._db.execute("SELECT sha256 FROM entries WHERE key_id = ? AND owner = ?",
                               (key_id, owner)).fetchone()
        return None if row is None else str(row[0])

    def set_entry(self, key_id: str, owner: str, sha256: str, seq: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                         (key_id, owner, sha256, seq))

    def remove_entry(self, key_id: str, owner: str) -> None:
        self._db.execute("DELETE FROM entries WHERE key_id = ? AND owner = ?", (key_id, owner))

    # -- documents ----------------------------------------------------------------

    _DOC = ("SELECT doc_id, version, header, statement, key_id, class_id, level, sealed_at, "
            "sealed_by, due, seq, shredded, pins FROM docs")

    @staticmethod
    def _doc(r: Any) -> DocRow:
        return DocRow(r[0], r[1], r[2], loads_json(r[3]), r[4], r[5], r[6], r[7], r[8], r[9],
                      r[10], bool(r[11]), r[3], None if r[12] is None else loads_json(r[12]))

    def doc(self, doc_id: str) -> DocRow | None:
        row = self._db.execute(self._DOC + " WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if row is None else self._doc(row)

    def docs(self, *, live: bool = True, key_id: str | None = None,
             due_by: datetime | None = None) -> list[DocRow]:
        """Documents ordered by sealing time then id; with ``due_by``, only
        those whose declassify-on falls due at that instant or before."""
        where, args = ["shredded = 0"] if live else [], []
        if key_id is not None:
            where.append("key_id = ?")
            args.append(key_id)
        if due_by is not None:
            where.append("due IS NOT NULL AND due <= ?")
            args.append(due_text(due_by))
        sql = self._DOC + (" WHERE " + " AND ".join(where) if where else "")
        return [self._doc(r) for r in self._db.execute(sql + " ORDER BY sealed_at, doc_id",
                                                       args)]

    def listing(self) -> Iterator[tuple[str, str, str | None, str | None]]:
        """``(doc id, statement JSON text, label JSON, listing entry JSON)``
        of live documents, left encoded (a listing of many documents); the
        last two are None where :func:`vault._results.listing_entry` failed."""
        yield from self._db.execute(_LISTING)

    def listing_entries(self) -> Iterator[tuple[str, str | None, str | None, str | None]]:
        """As :meth:`listing`, with the statement only where the entry is None."""
        yield from self._db.execute(_LISTING_ENTRIES)

    def put_doc(self, row: DocRow) -> None:
        from vault._results import listing_entry

        label: str | None = None
        listed: str | None = None
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            label, listed = listing_entry(row.statement)
        self._db.execute(
            "INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.doc_id, row.version, row.header,
             canonical_json(row.statement).decode("utf-8"),
             row.key_id, row.class_id, row.level, row.sealed_at, row.sealed_by, row.due,
             row.seq, int(row.shredded), label, listed,
             None if row.pins is None else canonical_json(row.pins).decode("utf-8")))

    def shred(self, doc_id: str, seq: int) -> None:
        self._db.execute("UPDATE docs SET shredded = 1, seq = ? WHERE doc_id = ?", (seq, doc_id))

    # -- findings, incidents, single-use statements, pending operations ------------

    def add_finding(self, seq: int, kind: str, message: str) -> None:
        self._db.execute("INSERT INTO findings (seq, kind, message) VALUES (?, ?, ?)",
                         (seq, kind, message))

    def findings(self) -> list[tuple[int, str, str]]:
        return [tuple(r) for r in self._db.execute(
            "SELECT seq, kind, message FROM findings ORDER BY n")]

    def drop_findings(self, kind: str, start: int) -> None:
        """Forget the findings of that kind from line ``start`` on (a replay
        from there finds them again while they stand)."""
        self._db.execute("DELETE FROM findings WHERE kind = ? AND seq >= ?", (kind, start))

    def findings_of(self, kind: str) -> list[tuple[int, str]]:
        """The line and message of each finding of that kind, in order."""
        return [(int(seq), str(message)) for seq, message in self._db.execute(
            "SELECT seq, message FROM findings WHERE kind = ? ORDER BY n", (kind,))]

    def has_header(self, sha256: str) -> bool:
        """Does a document's recorded version (live or shredded) have this
        header?"""
        return self._db.execute("SELECT 1 FROM docs WHERE header = ? LIMIT 1",
                                (sha256,)).fetchone() is not None

    def first_finding(self, kind: str) -> str | None:
        """The message of the first finding of that kind, if any."""
        row = self._db.execute("SELECT message FROM findings WHERE kind = ? ORDER BY n LIMIT 1",
                               (kind,)).fetchone()
        return None if row is None else str(row[0])

    def seal_off(self, seq: int, incident: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO sealed_off VALUES (?, ?)", (seq, incident))

    def sealed_off(self) -> dict[int, int]:
        return dict(self._db.execute("SELECT seq, incident FROM sealed_off"))

    def keep_original(self, seq: int, leaf: bytes, incident: int) -> None:
        """The leaf hash line ``seq`` had when written, as incident record
        ``incident`` carries it: a later record's replaces an earlier one's
        (an administrator correcting a declaration, FORMAT.md §14.8)."""
        self._db.execute("INSERT OR REPLACE INTO original_leaves VALUES (?, ?, ?)",
                         (seq, leaf, incident))

    def keep_own_original(self, seq: int, leaf: bytes) -> None:
        """The leaf hash line ``seq`` had when written, as this machine
        confirmed it (the derived data's, reproducing its own trusted tip):
        marked as its own (incident -1), never replacing one an incident
        record carries, and kept when the state is replayed again."""
        self._db.execute("INSERT OR IGNORE INTO original_leaves VALUES (?, ?, -1)",
                         (seq, leaf))

    def original_leaves(self) -> dict[int, bytes]:
        return {int(seq): bytes(leaf) for seq, leaf in
                self._db.execute("SELECT seq, leaf FROM original_leaves")}

    def tip_leaves(self) -> dict[int, bytes]:
        """The leaf the stored tip's tree holds at sealed-off lines below
        it, as far as this machine told them (kept through :meth:`reset`:
        the tip is too, until a replay from the start replaces it)."""
        return {int(seq): bytes(leaf) for seq, leaf in
                self._db.execute("SELECT seq, leaf FROM tip_leaves")}

    def set_tip_leaves(self, leaves: dict[int, bytes]) -> None:
        self._db.execute("DELETE FROM tip_leaves")
        self._db.executemany("INSERT INTO tip_leaves VALUES (?, ?)", sorted(leaves.items()))

    def use(self, item: str, seq: int) -> None:
        self._db.execute("INSERT INTO used VALUES (?, ?)", (item, seq))

    def used(self, item: str) -> int | None:
        row = self._db.execute("SELECT seq FROM used WHERE id = ?", (item,)).fetchone()
        return None if row is None else int(row[0])

    # -- requests, their answers, and approvals waiting for their completion ----
    # (docs/AUDIT.md §17)

    def add_request(self, digest: str, request_id: str, requester: str, expires: str,
                    seq: int, statement: dict[str, Any]) -> None:
        self._db.execute("INSERT OR IGNORE INTO requests VALUES (?, ?, ?, ?, ?, ?)",
                         (digest, request_id, requester, expires, seq,
                          json.dumps(statement, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False)))

    def request_seq(self, digest: str) -> int | None:
        """The audit record that first recorded a request (by digest)."""
        row = self._db.execute("SELECT seq FROM requests WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else int(row[0])

    def requests(self) -> list[tuple[str, int, dict[str, Any]]]:
        """``(digest, seq, signed request)`` of every recorded request."""
        return [(r[0], r[1], loads_json(r[2])) for r in self._db.execute(
            "SELECT digest, seq, statement FROM requests ORDER BY seq")]

    def add_answer(self, answer_id: str, request: str, approver: str, decision: str,
                   reason: str | None, seq: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                         (answer_id, request, approver, decision, reason, seq))

    def answers(self, request: str) -> list[tuple[str, str, str | None, int]]:
        """``(approver, decision, reason, seq)`` recorded for a request digest."""
        return [tuple(r) for r in self._db.execute(
            "SELECT approver, decision, reason, seq FROM answers WHERE request = ? ORDER BY seq",
            (request,))]

    def put_approved(self, request: str, actor: str, seq: int, approvers: list[str],
                     expect: dict[str, Any]) -> bool:
        """Remember the verified approvers of a decision until its
        completion; False if that request id already has some."""
        cur = self._db.execute("INSERT OR IGNORE INTO approved VALUES (?, ?, ?, ?, ?)",
                               (request, actor, seq, json.dumps(approvers),
                                json.dumps(expect, sort_keys=True)))
        return cur.rowcount == 1

    def approved(self, request: str) -> tuple[str, list[str], dict[str, Any]] | None:
        """``(actor, approvers, expected outcome)`` of a decision's approvals."""
        row = self._db.execute("SELECT actor, approvers, expect FROM approved WHERE request = ?",
                               (request,)).fetchone()
        return None if row is None else (row[0], loads_json(row[1]), loads_json(row[2]))

    def end_approved(self, request: str) -> None:
        self._db.execute("DELETE FROM approved WHERE request = ?", (request,))

    def add_pending(self, request: str, seq: int, action: str, doc: str | None,
                    actor: str | None, host: str, pid: int, time: str | None = None) -> None:
        self._db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (request, seq, action, doc, actor, host, pid, time))

    def decided_at(self, request: str) -> str | None:
        """When the open decision of ``request`` was recorded (its record's
        time), if known."""
        row = self._db.execute("SELECT time FROM pending WHERE request = ?",
                               (request,)).fetchone()
        return None if row is None else row[0]

    def end_pending(self, request: str) -> None:
        self._db.execute("DELETE FROM pending WHERE request = ?", (request,))

    def pending(self) -> list[tuple[str, int, str, str | None, str | None, str, int]]:
        """Allowed state-changing decisions without their completion yet:
        ``(request, seq, action, doc, actor, host, pid)``."""
        return [tuple(r) for r in self._db.execute(
            "SELECT request, seq, action, doc, actor, host, pid FROM pending ORDER BY seq")]
