"""The embedded backend: a vault in one folder (docs/DESIGN.md §7,
docs/FORMAT.md §13.7).

Layout::

    vault.json                     manifest: vault id, officer key, pins (signed)
    lock                           flock(2) target serialising writers
    keyrings/<owner>/<key id>.age  class identities, encrypted to one user
    docs/<id>.<version>.age        sealed documents (standard age files)
    actors/<sha256>.pub            public keys of audit actors unknown to the policy
    requests/<sha256>.json         two-person requests left for approvers
    approvals/<sha256>.json        approvals left for requesters
    .shred-<id>.<version>.age      a document being shredded (only while it is)
    audit/                         the audit log (vault.audit), which holds the
                                   policy versions, class keys and document states
    audit/log.key                  its checkpoint signing key (0600)

``<owner>`` is :func:`vault.store.base.owner_key` of the user's recipient.
Every write goes through :mod:`vault._atomic`. Files are opened with
``O_NOFOLLOW | O_NONBLOCK`` and must be regular files, and the layout's
directories (each user's keyring folder too) must be directories, not
symbolic links: someone who can plant links in the folder must not
redirect the vault's reads or writes elsewhere, nor hang every command
with a named pipe.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, BinaryIO

from vault import _atomic
from vault._atomic import NotRegularFile, open_regular, real_directory
from vault.errors import IntegrityError, StorageError, UsageError
from vault.store.base import (
    DOC_ID,
    HASH,
    KEY_ID,
    MAX_KEYRING_ENTRY,
    VERSION,
    Backend,
    Leftover,
    owner_key,
)

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit import AuditLog, NoteSigner
    from vault.store._batch import DocumentBatch

__all__ = ["FolderBackend"]

_DIRS = ("keyrings", "docs", "actors", "requests", "approvals", "audit")
_PUBLIC = 0o644  # non-secret records (manifest, public keys, statements)
_SHRED = re.compile(r"\A\.shred-([a-z2-7]{16})\.([0-9a-f]{8})\.age\Z")
_DOC = re.compile(r"\A([a-z2-7]{16})\.([0-9a-f]{8})\.age\Z")
_MAX_HEADER = 1 << 20  # an age header ends within 1 MiB (docs/FORMAT.md §2.4)
MAX_STATEMENT = 1 << 20  # a request or approval, as the database bounds it (FORMAT.md §13.7)
_SECRET = 0o600  # anything holding (even wrapped) key material
_KINDS = ("request", "approval")


_ALTERED = "someone altered the vault folder; treat it as an incident"
#: Why a file or folder of the layout cannot be read that is its own (its
#: mode, which anyone who writes the folder can change; its blocks), not
#: the process's or the system's (no descriptors or memory left, a stale
#: network handle): what it holds is then damaged, as something planted
#: in its place is.
_ITS_OWN = (errno.EACCES, errno.EPERM, errno.EIO)


def _planted(name: str, kind: str = "a symbolic link", expected: str = "") -> IntegrityError:
    return IntegrityError(f"{name} in the vault folder is {kind}"
                          + (f", not {expected}" if expected else ""), hint=_ALTERED)


def _unreadable(name: str, e: OSError) -> IntegrityError:
    why = (e.strerror or "").lower() or errno.errorcode.get(e.errno or 0, "unreadable")
    return IntegrityError(f"{name} in the vault folder cannot be read ({why})",
                          hint="the vault's account reads every file of its folder: someone "
                               "changed who may; treat it as an incident")


def _check(pattern_name: str, value: str) -> str:
    patterns = {"doc": DOC_ID, "key": KEY_ID, "hash": HASH, "version": VERSION}
    if not isinstance(value, str) or not patterns[pattern_name].match(value):
        raise UsageError(f"not a valid {pattern_name} id: {str(value)[:40]!r}")
    return value


class FolderBackend(Backend):
    """A vault stored in the folder ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.location = self.path
        self._made_folder: bool | None = None  # by create(): the folder was new
        self._notices: list[str] = []

    def _p(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    # -- lifecycle ---------------------------------------------------------

    def exists(self) -> bool:
        return os.path.lexists(self._p("vault.json"))

    def unfinished(self) -> bool:
        return not self.exists() and any(os.path.lexists(self._p(d)) for d in _DIRS)

    def create(self) -> None:
        if self.exists():
            raise UsageError(f"a vault already exists in {self.path}",
                             hint="'vault doctor' checks it; choose another folder for a new one")
        try:
            self._made_folder = not os.path.lexists(self.path)
            _atomic.make_folders(self.path)  # each missing level 0700, not 0777 less the umask
            if any(not n.startswith(".") for n in os.listdir(self.path)):
                raise UsageError(f"{self.path} is not empty",
                                 hint="choose a new or empty folder for the vault")
            for d in _DIRS:
                os.mkdir(self._p(d), 0o700)
            _atomic.fsync_dir(self.path)
        except OSError as e:
            raise StorageError(f"cannot create the vault folder: {e.strerror}") from e

    def abandon(self) -> None:
        # create() found the folder new or without entries but dot-files,
        # and vault.json (written last) is not there: every other entry is
        # what the failed init made.
        if self.exists() or self._made_folder is None:
            return
        for name in os.listdir(self.path):
            if not name.startswith("."):
                where = self._p(name)
                if os.path.isdir(where) and not os.path.islink(where):
                    shutil.rmtree(where, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(where)
        if self._made_folder:
            with contextlib.suppress(OSError):
                os.rmdir(self.path)

    def _check_layout(self) -> None:
        for d in _DIRS:
            try:
                st = os.lstat(self._p(d))
            except FileNotFoundError:
                if d in ("requests", "approvals"):
                    continue  # made when first needed
                raise IntegrityError(f"vault folder is missing {d}/") from None
            if not stat.S_ISDIR(st.st_mode):
                raise IntegrityError(
                    f"vault folder entry {d}/ is not a directory (a symbolic link?)",
                    hint="someone altered the vault folder; treat it as an incident",
                )

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return self._flock(fcntl.LOCK_EX)

    def shared_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._flock(fcntl.LOCK_SH)

    @contextlib.contextmanager
    def _flock(self, kind: int) -> Iterator[None]:
        try:
            fd = open_regular(self._p("lock"), os.O_RDWR | os.O_CREAT, _PUBLIC)
        except NotRegularFile as e:
            raise _planted("lock", e.kind, "a regular file") from None
        try:
            try:
                fcntl.flock(fd, kind | fcntl.LOCK_NB)
            except BlockingIOError:
                self.waiting(kind == fcntl.LOCK_SH)
                fcntl.flock(fd, kind)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _temp_dirs(self) -> list[str]:
        dirs = [self.path, *(self._p(d) for d in _DIRS)]
        with contextlib.suppress(IntegrityError):  # a linked one is never swept through
            if self._folder("audit", "checkpoints"):
                dirs.append(self._p("audit", "checkpoints"))
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            dirs += [e.path for e in os.scandir(self._p("keyrings"))
                     if e.is_dir(follow_symlinks=False)]
        return dirs

    def leftovers(self) -> list[Leftover]:
        found = []
        for d in self._temp_dirs():
            rel = os.path.relpath(d, self.path)
            secret = not rel.startswith(("actors", "requests", "approvals"))
            try:
                temps = _atomic.stale_temps(d)
            except OSError as e:  # a folder that cannot be listed: layout_problems names it
                if e.errno not in _ITS_OWN:
                    raise
                continue
            for name, size in temps:
                where = os.path.normpath(os.path.join(rel, name))
                found.append(Leftover(where, size, secret, "a temporary file an interrupted "
                                      "write left"))
        return found  # tombstones: shred_leftover, checked against the audit log

    def tidy(self) -> list[Leftover]:
        found = self.leftovers()
        for d in self._temp_dirs():
            try:
                _atomic.remove_stale_temps(d)
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as e:  # cannot be listed: named, as by leftovers()
                if e.errno not in _ITS_OWN:
                    raise
        return found

    # -- small files ---------------------------------------------------------

    def _open(self, *parts: str) -> int:
        """A descriptor of the regular file ``parts``; anything else there
        (a link, a named pipe, a folder) is refused, never followed or
        waited on (IntegrityError)."""
        try:
            return open_regular(self._p(*parts))
        except NotRegularFile as e:
            raise _planted("/".join(parts), e.kind, "a regular file") from None

    def _read(self, *parts: str, limit: int = -1) -> bytes:
        with os.fdopen(self._open(*parts), "rb") as f:
            return f.read(limit)

    def _open_item(self, *parts: str) -> int:
        """:meth:`_open` for the file of one item -- a document, a keyring
        entry, a statement, an actor's key. One the vault's account cannot
        read (made mode 000 by anyone who writes the folder) is that item
        damaged (IntegrityError naming it), as a file planted in its place
        is: only what needs it fails, never everyone's command."""
        try:
            return self._open(*parts)
        except OSError as e:
            if e.errno not in _ITS_OWN:
                raise
            raise _unreadable("/".join(parts), e) from None

    def _read_item(self, *parts: str, limit: int) -> bytes:
        with os.fdopen(self._open_item(*parts), "rb") as f:
            try:
                return f.read(limit)
            except OSError as e:  # a bad block
                if e.errno not in _ITS_OWN:
                    raise
                raise _unreadable("/".join(parts), e) from None

    def _folder(self, *parts: str) -> bool:
        """Is the layout's folder ``parts`` there (False when absent)? A
        link or anything else in its place is refused (IntegrityError)."""
        try:
            return real_directory(self._p(*parts))
        except NotRegularFile as e:
            raise _planted("/".join(parts) + "/", e.kind, "a directory") from None

    def layout_problems(self) -> list[str]:
        problems = []
        for parts in [("audit", "checkpoints"), *(("keyrings", n) for n in self._names("keyrings")
                                                  if KEY_ID.match(n))]:
            try:
                if not self._folder(*parts) or parts[0] != "keyrings":
                    continue
            except IntegrityError as e:
                problems.append(f"{e.message}: it is not used")
                continue
            try:
                next(iter(self._scan(*parts)), None)  # can it be listed?
            except IntegrityError as e:
                problems.append(f"{e.message}: none of its entries is used")
        return problems + self._statement_problems()

    def _statement_problems(self) -> list[str]:
        """Statements that cannot be read (made unreadable, or not a file),
        which every reader skips: the first hundred named, the rest counted."""
        problems, more = [], 0
        for kind in _KINDS:
            try:
                names = self._names(kind + "s")
            except IntegrityError as e:
                problems.append(f"{e.message}: no {kind} left there is seen")
                continue
            for n in names:
                if not (n.endswith(".json") and HASH.match(n[:-5])):
                    continue
                try:
                    os.close(self._open_item(kind + "s", n))
                except FileNotFoundError:
                    continue
                except IntegrityError as e:
                    if len(problems) < 100:
                        problems.append(f"{e.message}: it is not used")
                    else:
                        more += 1
        if more:
            problems.append(f"{more:,} more requests and approvals left that cannot be read; "
                            "not used")
        return problems

    def notices(self) -> list[str]:
        return list(self._notices)

    def _write(self, parts: tuple[str, ...], data: bytes, *, mode: int, replace: bool) -> None:
        _atomic.write_atomic(self._p(*parts), data, mode=mode, replace=replace)

    def _names(self, *parts: str) -> list[str]:
        """The names in a folder of the layout, sorted; none when it is
        absent. One that cannot be listed is named (IntegrityError)."""
        try:
            return sorted(n for n in os.listdir(self._p(*parts)) if not n.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            if e.errno not in _ITS_OWN:
                raise
            raise _unreadable("/".join(parts) + "/", e) from None

    def _scan(self, *parts: str) -> Iterator[str]:
        """The names in a folder as the kernel hands them out, unsorted and
        never all at once (:meth:`_names` for the folders that stay small)."""
        try:
            with os.scandir(self._p(*parts)) as entries:
                for e in entries:
                    if not e.name.startswith("."):
                        yield e.name
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            if e.errno not in _ITS_OWN:
                raise
            raise _unreadable("/".join(parts) + "/", e) from None

    def read_manifest(self) -> bytes:
        self._check_layout()
        return self._read("vault.json")

    def write_manifest(self, data: bytes) -> None:
        self._write(("vault.json",), data, mode=_PUBLIC, replace=False)

    def read_log_key(self) -> bytes:
        return self._read("audit", "log.key")

    def write_log_key(self, data: bytes) -> None:
        self._write(("audit", "log.key"), data, mode=_SECRET, replace=False)

    # -- keyrings ------------------------------------------------------------

    def iter_keyring_files(self) -> Iterator[tuple[str, str]]:
        for owner in self._names("keyrings"):  # owners are few: one per person
            try:
                if not KEY_ID.match(owner) or not self._folder("keyrings", owner):
                    continue
                for n in self._scan("keyrings", owner):
                    if n.endswith(".age") and KEY_ID.match(n[:-4]):
                        yield owner, n[:-4]
            except IntegrityError:  # not a folder, or one that cannot be listed:
                continue  # layout_problems names it

    def read_keyring_entry(self, owner: str, key_id: str) -> bytes | None:
        name = f"{_check('key', key_id)}.age"
        if not self._folder("keyrings", owner_key(owner)):
            return None
        try:
            return self._read_item("keyrings", owner_key(owner), name,
                                   limit=MAX_KEYRING_ENTRY + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_keyring_entry(self, owner: str, key_id: str, data: bytes) -> None:
        _check("key", key_id)
        d = self._p("keyrings", owner_key(owner))
        if not self._folder("keyrings", owner_key(owner)):
            with contextlib.suppress(FileExistsError):
                os.mkdir(d, 0o700)
                _atomic.fsync_dir(self._p("keyrings"))
            self._folder("keyrings", owner_key(owner))  # made, or planted meanwhile?
        self._write(("keyrings", owner_key(owner), f"{_check('key', key_id)}.age"), data,
                    mode=_SECRET, replace=True)

    def read_keyring_file(self, owner_key: str, key_id: str) -> bytes | None:
        if not self._folder("keyrings", _check("key", owner_key)):
            return None
        try:
            return self._read_item("keyrings", owner_key, f"{_check('key', key_id)}.age",
                                   limit=MAX_KEYRING_ENTRY + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete_keyring_entry(self, owner_key: str, key_id: str, *, wait: bool = True) -> None:
        path = self._p("keyrings", _check("key", owner_key), f"{_check('key', key_id)}.age")
        if not self._folder("keyrings", owner_key):
            return
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except IsADirectoryError:  # planted at its name: named, never an OS error
            raise _planted(f"keyrings/{owner_key}/{key_id}.age", "a directory",
                           "a regular file") from None
        _atomic.fsync_dir(os.path.dirname(path))

    # -- documents -----------------------------------------------------------

    def _doc(self, doc_id: str, version: str) -> str:
        return self._p("docs", f"{_check('doc', doc_id)}.{_check('version', version)}.age")

    def iter_document_files(self) -> Iterator[tuple[str, str]]:
        for n in self._scan("docs"):
            if m := _DOC.match(n):
                yield m.group(1), m.group(2)

    def has_document(self, doc_id: str, version: str) -> bool:
        # A regular file: a folder or link planted at the name is none.
        try:
            return stat.S_ISREG(os.lstat(self._doc(doc_id, version)).st_mode)
        except FileNotFoundError:
            return False

    def open_document(self, doc_id: str, version: str) -> BinaryIO:
        self._doc(doc_id, version)  # checks the ids
        return os.fdopen(self._open_item("docs", f"{doc_id}.{version}.age"), "rb")

    def write_document(self, doc_id: str,
                       version: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return _atomic.atomic_writer(self._doc(doc_id, version), mode=_SECRET, replace=False)

    def document_batch(self, count: int) -> DocumentBatch:
        from vault.store._batch import FolderBatch

        return FolderBatch(self, self._doc, _SECRET, count)

    def delete_document(self, doc_id: str, version: str, *, wait: bool = True) -> None:
        # Nothing here waits: nobody locks a stored file (``wait`` is moot).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._doc(doc_id, version))
            _atomic.fsync_dir(self._p("docs"))

    def _tomb(self, doc_id: str, version: str) -> str:
        return self._p(f".shred-{_check('doc', doc_id)}.{_check('version', version)}.age")

    def shred_document(self, doc_id: str, version: str, header_size: int, *,
                       stray: bool = False, decided: Callable[[], None] | None = None) -> None:
        # Every check that can refuse runs before ``decided`` (the shred's
        # record); what follows depends on no name a folder writer can
        # occupy: the header is overwritten through the descriptor opened
        # here, whatever the names hold by then (docs/DESIGN.md §6.5).
        path, tomb = self._doc(doc_id, version), self._tomb(doc_id, version)
        fd = self._open_to_destroy(path, f"document {doc_id}", tomb, alone=stray)
        try:
            if decided is not None:
                decided()
            st = os.fstat(fd)
            self._leave_listing(path, tomb, st)
            self._overwrite(fd, header_size)
        finally:
            os.close(fd)
        # Destroyed: what a failure leaves now holds no key, and doctor's
        # repair removes it -- the tombstone, or the file under its own name
        # (a hard link planted at the tombstone's name is the same file:
        # rename(2) then leaves both names).
        self._unlink_tomb(tomb, st)
        with contextlib.suppress(OSError):
            if _is_file(path, st):
                os.unlink(path)
                _atomic.fsync_dir(os.path.dirname(path))

    def _leave_listing(self, path: str, tomb: str, st: os.stat_result) -> None:
        """Rename the file about to be overwritten to its tombstone, in one
        durable step, when it still has its own name: killed after, the
        vault holds no document with a destroyed header, only a tombstone
        that finish_shreds completes. Anything at the tombstone's name that
        rename(2) cannot replace (a folder someone planted there) is left
        alone, and the file is overwritten under its own name instead."""
        with contextlib.suppress(OSError):
            if _is_file(path, st):
                os.rename(path, tomb)
                _atomic.fsync_dir(os.path.dirname(path))
                _atomic.fsync_dir(self.path)

    def _open_to_destroy(self, path: str, what: str, tomb: str = "", *,
                         alone: bool = False) -> int:
        """A descriptor to overwrite ``path`` through, once it is known to
        be a regular file that is no other file of the vault (a hard link
        to the audit log, a keyring entry or another document must not be
        destroyed). ``alone``: one with any other name at all is refused --
        for what nobody counts (an interrupted write), where looking for
        each of many planted links' other names would cost without bound."""
        try:
            fd = open_regular(path, os.O_WRONLY)
        except NotRegularFile as e:
            raise IntegrityError(f"{what}: its file in the vault folder is {e.kind}, not a "
                                 "regular file; it was not destroyed", hint=_ALTERED) from None
        links = os.fstat(fd).st_nlink
        if alone and links != 1:
            os.close(fd)
            raise IntegrityError(f"{what}: its file has {links} names in the file system (a "
                                 "hard link); it was not destroyed", hint=_ALTERED)
        other = self._same_as(os.fstat(fd), path, tomb)
        if other is not None:
            os.close(fd)
            raise IntegrityError(f"{what}: its file in the vault folder is also {other} (a "
                                 "hard link); it was not destroyed", hint=_ALTERED)
        return fd

    def _same_as(self, st: os.stat_result, *paths: str) -> str | None:
        """Which other file of the vault (documents, the audit folder, the
        manifest) is the file ``st`` under another name than ``paths``."""
        if st.st_nlink == 1:
            return None  # no other name anywhere
        folders = [self.path, self._p("docs"), self._p("audit"), self._p("audit", "checkpoints")]
        with contextlib.suppress(OSError), os.scandir(self._p("keyrings")) as owners:
            folders += [e.path for e in owners if e.is_dir(follow_symlinks=False)]
        for d in folders:
            with contextlib.suppress(OSError), os.scandir(d) as it:
                for e in it:
                    if e.inode() == st.st_ino and e.path not in paths and e.name != "checkpoints" \
                            and e.stat(follow_symlinks=False).st_dev == st.st_dev:
                        return os.path.relpath(e.path, self.path)
        return None

    @staticmethod
    def _overwrite(fd: int, header_size: int) -> None:
        # Overwrite the header in place (same blocks, on file systems that
        # do not copy on write): every wrapped file key goes first.
        os.pwrite(fd, os.urandom(header_size), 0)
        os.fsync(fd)

    def _unlink_tomb(self, tomb: str, st: os.stat_result) -> None:
        # Only the file just overwritten: whatever else is at the name by
        # now (a folder, another file) was put there by someone else.
        with contextlib.suppress(OSError):
            if _is_file(tomb, st):
                os.unlink(tomb)
                _atomic.fsync_dir(self.path)

    def interrupted_shreds(self) -> list[tuple[str, str]]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted((m.group(1), m.group(2)) for n in names if (m := _SHRED.match(n)))

    def shred_leftover(self, doc_id: str, version: str, content: object = None, *,
                       known: Callable[[str], bool] | None = None
                       ) -> tuple[Leftover, str | None]:
        tomb = self._tomb(doc_id, version)
        item = Leftover(os.path.basename(tomb), os.lstat(tomb).st_size, True,
                        f"an interrupted shred of {doc_id}")
        try:
            fd = open_regular(tomb)
        except NotRegularFile as e:
            return item, f"it is {e.kind}"
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        other = self._same_as(st, tomb)
        if other is not None:
            return item, f"it is also {other} (a hard link)"
        if st.st_nlink != 1:  # a shred's tombstone has no other name
            return item, f"it has {st.st_nlink} names in the file system (a hard link)"
        if not _could_be_document(tomb):
            return item, "it is an age file but no document (a keyring entry, renamed?)"
        if content is not None:
            from vault._sealed.reading import holds_payload

            with open(open_regular(tomb), "rb") as f:
                if not holds_payload(f, content):
                    return item, "it is not what is left of that document (not its payload)"
        elif known is not None and not _left_of_a_seal(tomb, known):
            return item, "it is not what is left of an interrupted seal's file"
        return item, None

    def finish_shreds(self, shreds: Iterable[tuple[str, str]],
                      payloads: Mapping[tuple[str, str], int] | None = None
                      ) -> list[tuple[str, str]]:
        done = []
        for doc_id, version in shreds:
            tomb = self._tomb(doc_id, version)
            try:
                fd = self._open_to_destroy(tomb, f"the shred of {doc_id}")
            except (FileNotFoundError, IntegrityError):
                continue  # gone, or not a tombstone: left alone (doctor names it)
            try:
                st = os.fstat(fd)
                if st.st_nlink != 1:
                    continue
                # What precedes the payload, when its size is on record (so
                # that a repair killed here leaves a tombstone that still
                # ends with it); else as much as any header may take
                # (docs/FORMAT.md §2.4), or the whole file.
                end, keep = os.fstat(fd).st_size, (payloads or {}).get((doc_id, version))
                self._overwrite(fd, min(end - keep, _MAX_HEADER)
                                if keep is not None and keep <= end else min(end, _MAX_HEADER))
            finally:
                os.close(fd)
            self._unlink_tomb(tomb, st)
            done.append((doc_id, version))
        return done

    # -- actors and statements ---------------------------------------------------

    def register_actor(self, key_hash: str, public_key: bytes) -> None:
        if hashlib.sha256(public_key).hexdigest() != _check("hash", key_hash):
            raise UsageError("an audit actor's key hash must be the SHA-256 of its key")
        name = ("actors", f"{key_hash}.pub")
        try:
            self._write(name, public_key, mode=_PUBLIC, replace=False)
        except FileExistsError:
            try:
                kept = self.actor_key(key_hash)
            except IntegrityError:  # not a regular file: a link is replaced as such
                kept = None
            if kept is None:
                # Planted under this hash, and not the key it names: the
                # real key takes its place, or its records would not verify.
                with contextlib.suppress(IsADirectoryError):  # a folder cannot be
                    self._write(name, public_key, mode=_PUBLIC, replace=True)

    def actor_key(self, key_hash: str) -> bytes | None:
        try:
            data = self._read_item("actors", f"{_check('hash', key_hash)}.pub", limit=33)
        except (FileNotFoundError, IntegrityError):  # or nothing it can read: no key
            return None
        # Self-certifying: believed only if it is the key its name hashes,
        # and a key: 32 bytes (a planted file of any other length, named by
        # its own hash, was an internal error for every reader of the keys).
        return data if len(data) == 32 and hashlib.sha256(data).hexdigest() == key_hash \
            else None

    def actor_keys(self) -> list[str]:
        return [n[:-4] for n in self._names("actors") if n.endswith(".pub")
                and HASH.match(n[:-4])]

    def put_statement(self, kind: str, data: bytes) -> None:
        assert kind in _KINDS
        folder = self._p(kind + "s")
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        name = hashlib.sha256(data).hexdigest()
        with contextlib.suppress(FileExistsError):
            self._write((kind + "s", f"{name}.json"), data, mode=_PUBLIC, replace=False)

    def statements(self, kind: str) -> Iterable[tuple[str, bytes]]:
        assert kind in _KINDS
        try:
            names = self._names(kind + "s")
        except IntegrityError as e:  # as if empty, and said: doctor names it too
            notice = f"{e.message}: no {kind} left there is seen"
            if notice not in self._notices:
                self._notices.append(notice)
            return
        for n in names:
            if n.endswith(".json") and HASH.match(n[:-5]):
                try:
                    # As the database holds them: at most 1 MiB. A larger
                    # file (planted) is never one, and is never held whole.
                    data = self._read_item(kind + "s", n, limit=MAX_STATEMENT + 1)
                except (FileNotFoundError, IntegrityError):
                    continue  # gone; planted or unreadable (doctor names it)
                if len(data) <= MAX_STATEMENT:
                    yield n[:-5], data

    # -- the audit log ---------------------------------------------------------

    def audit_log(self, signer: NoteSigner | None, origin: str) -> AuditLog:
        from vault.audit import AuditLog

        return AuditLog(self._p("audit"), checkpoint_signer=signer, origin=origin)


def _is_file(path: str, st: os.stat_result) -> bool:
    """Is the entry at ``path`` (not followed) the file ``st`` describes?"""
    try:
        return os.path.samestat(os.lstat(path), st)
    except FileNotFoundError:
        return False


def _could_be_document(path: str) -> bool:
    """Could this tombstone be (what is left of) a document? Its header was
    either overwritten with random bytes or is still a document's, with its
    label stanza (docs/FORMAT.md §11); an age file without one -- a keyring
    entry renamed -- is not, and finishing its "shred" would destroy it."""
    try:
        fd = open_regular(path)
    except (OSError, NotRegularFile):
        return False
    try:
        head = os.pread(fd, _MAX_HEADER, 0)
    finally:
        os.close(fd)
    if not head.startswith(b"age-encryption.org/v1\n"):
        return True  # overwritten (or never an age file: nothing of the vault's)
    end = head.find(b"\n--- ")
    if end < 0:
        return True  # no whole header: overwritten in part
    return b"\n-> vault/v2/label\n" in head[:end + 1]


def _left_of_a_seal(path: str, known: Callable[[str], bool]) -> bool:
    """What a repair killed while destroying an interrupted seal's file
    leaves: that file (a document header no record names) or, overwritten,
    bytes that are neither an age file nor text (a checkpoint, a statement
    or the log renamed here are text; a keyring entry has no label)."""
    from vault._sealed.reading import labelled_header_sha

    try:
        with open(open_regular(path), "rb") as f:
            head = f.read(4096)
            if not head.startswith(b"age-encryption.org/v1\n"):
                try:
                    head.decode("utf-8")
                except UnicodeDecodeError:
                    return True  # random: overwritten
                return False
            f.seek(0)
            sha = labelled_header_sha(f)
    except (OSError, NotRegularFile):
        return False
    return sha is not None and not known(sha)
