"""The embedded backend: a vault in one folder (docs/DESIGN.md §7).

Layout::

    vault.json              manifest: vault id, officer key, pins (signed)
    lock                    flock(2) target serialising writers
    policy/NNNNNN.yaml      policy versions, exact bytes as signed
    policy/NNNNNN.sig       their signatures (the .sig is the commit point)
    classes/<class>.<gen>.json   label-class public keys (signed records)
    keyrings/<age1...>/<key>.age class identities, encrypted to one user
    actors/<sha256>.pub     public keys of audit actors unknown to the policy
    docs/<id>.age           sealed documents (standard age files)
    .shred-<id>.age         a document being shredded (only while it is)
    index.sqlite            the index (a cache, rebuilt by doctor --repair)
    audit/                  the audit log (vault.audit)
    audit/log.key           its checkpoint signing key (0600), where
                            vault.audit.AuditLog.open looks for it

Every write goes through :mod:`vault.store._atomic`. Files are opened with
``O_NOFOLLOW`` and the layout's directories must not be symbolic links:
someone who can plant links in the folder must not be able to redirect the
vault's reads or writes elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from vault import _atomic
from vault.errors import IntegrityError, StorageError, UsageError
from vault.store.base import DOC_ID, HASH, KEY_ID, OWNER, Backend, Index
from vault.store.index import SQLiteIndex

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit import AuditLog, NoteSigner
    from vault.store._batch import DocumentBatch

__all__ = ["FolderBackend"]

_DIRS = ("policy", "classes", "keyrings", "docs", "actors", "audit")
_PUBLIC = 0o644  # non-secret records (manifest, policy, class public keys)
_SHRED_PREFIX = ".shred-"
_SHRED_NAME = re.compile(r"\A\.shred-([a-z2-7]{16})\.age\Z")
_MAX_HEADER = 1 << 20  # an age header ends within 1 MiB (docs/FORMAT.md §2.4)
_SECRET = 0o600  # anything holding (even wrapped) key material
_SETTLED = 2 * 10**9  # ns after which a folder's change time can be trusted


def _planted(name: str) -> IntegrityError:
    return IntegrityError(f"{name} in the vault folder is a symbolic link",
                          hint="someone altered the vault folder; treat it as an incident")


def _check(pattern_name: str, value: str) -> str:
    patterns = {"doc": DOC_ID, "key": KEY_ID, "owner": OWNER, "hash": HASH}
    if not patterns[pattern_name].match(value):
        raise UsageError(f"not a valid {pattern_name} id: {value!r}")
    return value


class FolderBackend(Backend):
    """A vault stored in the folder ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.location = self.path
        self._index: SQLiteIndex | None = None

    def _p(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    # -- lifecycle ---------------------------------------------------------

    def exists(self) -> bool:
        return os.path.lexists(self._p("vault.json"))

    def create(self) -> None:
        if self.exists():
            raise UsageError(f"a vault already exists in {self.path}")
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            if any(not n.startswith(".") for n in os.listdir(self.path)):
                raise UsageError(
                    f"{self.path} is not empty", hint="choose a new or empty folder for the vault"
                )
            for d in _DIRS:
                os.mkdir(self._p(d), 0o700)
            _atomic.fsync_dir(self.path)
        except OSError as e:
            raise StorageError(f"cannot create the vault folder: {e.strerror}") from e

    def _check_layout(self) -> None:
        for d in _DIRS:
            try:
                st = os.lstat(self._p(d))
            except FileNotFoundError:
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
            fd = os.open(self._p("lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, _PUBLIC)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _planted("lock") from None
            raise
        try:
            fcntl.flock(fd, kind)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def tidy(self) -> list[str]:
        removed: list[str] = []
        dirs = [self.path, *(self._p(d) for d in _DIRS if d != "audit")]
        dirs += [self._p("keyrings", o) for o in self.keyring_owners()]
        for d in dirs:
            removed += [os.path.relpath(os.path.join(d, n), self.path)
                        for n in _atomic.remove_stale_temps(d)]
        for v in self._unsigned_policy_files():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._p("policy", v))
            removed.append(f"policy/{v}")
        removed += [f"{_SHRED_PREFIX}{d}.age (an interrupted shred of {d}, now finished)"
                    for d in self.finish_shreds()]
        return removed

    # -- small files ---------------------------------------------------------

    def _read(self, *parts: str) -> bytes:
        try:
            fd = os.open(self._p(*parts), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno == 40:  # ELOOP: a symbolic link where a file belongs
                raise IntegrityError(f"{'/'.join(parts)} is a symbolic link") from None
            raise
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def _write(self, parts: tuple[str, ...], data: bytes, *, mode: int, replace: bool) -> None:
        _atomic.write_atomic(self._p(*parts), data, mode=mode, replace=replace)

    def read_manifest(self) -> bytes:
        self._check_layout()
        return self._read("vault.json")

    def write_manifest(self, data: bytes) -> None:
        self._write(("vault.json",), data, mode=_PUBLIC, replace=False)

    def read_log_key(self) -> bytes:
        return self._read("audit", "log.key")

    def write_log_key(self, data: bytes) -> None:
        self._write(("audit", "log.key"), data, mode=_SECRET, replace=False)

    # -- policy versions -----------------------------------------------------

    def _names(self, *parts: str) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self._p(*parts)) if not n.startswith("."))
        except FileNotFoundError:
            return []

    def _unsigned_policy_files(self) -> list[str]:
        names = set(self._names("policy"))
        return [n for n in names if n.endswith(".yaml") and n[:-5] + ".sig" not in names]

    def policy_versions(self) -> list[int]:
        return sorted(int(n[:-4]) for n in self._names("policy")
                      if n.endswith(".sig") and n[:-4].isdigit())

    def read_policy(self, version: int) -> tuple[bytes, bytes]:
        name = f"{int(version):06d}"
        return self._read("policy", name + ".yaml"), self._read("policy", name + ".sig")

    def add_policy(self, version: int, policy: bytes, signature: bytes) -> None:
        if version in self.policy_versions():
            raise FileExistsError(f"policy version {version} exists")
        self._write(("policy", f"{version:06d}.yaml"), policy, mode=_PUBLIC, replace=True)
        self._write(("policy", f"{version:06d}.sig"), signature, mode=_PUBLIC, replace=False)

    # -- class keys ----------------------------------------------------------

    def class_keys(self) -> list[tuple[str, int]]:
        out = []
        for n in self._names("classes"):
            class_id, _, rest = n.partition(".")
            gen = rest.removesuffix(".json")
            if KEY_ID.match(class_id) and rest.endswith(".json") and gen.isdigit():
                out.append((class_id, int(gen)))
        return sorted(out)

    def read_class_key(self, class_id: str, generation: int) -> bytes:
        return self._read("classes", f"{_check('key', class_id)}.{int(generation)}.json")

    def add_class_key(self, class_id: str, generation: int, data: bytes) -> bool:
        name = f"{_check('key', class_id)}.{int(generation)}.json"
        try:
            self._write(("classes", name), data, mode=_PUBLIC, replace=False)
        except FileExistsError:
            return False
        return True

    # -- keyrings ------------------------------------------------------------

    def keyring_owners(self) -> list[str]:
        return [n for n in self._names("keyrings") if OWNER.match(n)]

    def keyring_entries(self, owner: str) -> list[str]:
        names = self._names("keyrings", _check("owner", owner))
        return [n[:-4] for n in names if n.endswith(".age") and KEY_ID.match(n[:-4])]

    def read_keyring_entry(self, owner: str, key_id: str) -> bytes | None:
        try:
            return self._read("keyrings", _check("owner", owner), f"{_check('key', key_id)}.age")
        except FileNotFoundError:
            return None

    def write_keyring_entry(self, owner: str, key_id: str, data: bytes) -> None:
        d = self._p("keyrings", _check("owner", owner))
        if not os.path.isdir(d):
            with contextlib.suppress(FileExistsError):
                os.mkdir(d, 0o700)
                _atomic.fsync_dir(self._p("keyrings"))
        self._write(("keyrings", owner, f"{_check('key', key_id)}.age"), data,
                    mode=_SECRET, replace=True)

    def delete_keyring_entry(self, owner: str, key_id: str) -> None:
        path = self._p("keyrings", _check("owner", owner), f"{_check('key', key_id)}.age")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            _atomic.fsync_dir(os.path.dirname(path))

    # -- documents -----------------------------------------------------------

    def _doc(self, doc_id: str) -> str:
        return self._p("docs", f"{_check('doc', doc_id)}.age")

    def document_ids(self) -> list[str]:
        return [n[:-4] for n in self._names("docs") if n.endswith(".age") and DOC_ID.match(n[:-4])]

    def document_stamps(self) -> dict[str, str]:
        # One directory scan, one lstat per entry relative to it: listing a
        # vault of 100,000 documents starts here.
        stamps = {}
        try:
            with os.scandir(self._p("docs")) as entries:
                for entry in entries:
                    name = entry.name
                    if not name.endswith(".age") or not DOC_ID.match(name[:-4]):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat(follow_symlinks=False)
                        stamps[name[:-4]] = f"{st.st_ino}:{st.st_ctime_ns}"
        except FileNotFoundError:
            return {}
        return stamps

    def documents_version(self) -> str | None:
        # Every change to docs/ (a new document, a rewrite, a shred) links,
        # renames or unlinks a name there, which moves the folder's change
        # time. File system clocks are coarse (a tick may be several ms), so
        # two changes within one tick may leave it unchanged: a time less
        # than _SETTLED old is not trusted (None), like git's "racy" index.
        try:
            st = os.lstat(self._p("docs"))
        except FileNotFoundError:
            return None
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < _SETTLED:
            return None
        return f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}"

    def open_document(self, doc_id: str) -> BinaryIO:
        try:
            fd = os.open(self._doc(doc_id), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno == 40:
                raise IntegrityError(f"document {doc_id} is a symbolic link") from None
            raise
        return os.fdopen(fd, "rb")

    def document_version(self, f: BinaryIO) -> tuple[int, str]:
        # Every write is a new inode (atomic rename), so the inode number and
        # change time identify one version of the file.
        st = os.fstat(f.fileno())
        return st.st_size, f"{st.st_ino}:{st.st_ctime_ns}"

    def write_document(
        self, doc_id: str, *, replace: bool = False
    ) -> contextlib.AbstractContextManager[BinaryIO]:
        return _atomic.atomic_writer(self._doc(doc_id), mode=_SECRET, replace=replace)

    def document_batch(self) -> DocumentBatch:
        from vault.store._batch import FolderBatch

        return FolderBatch(self, self._doc, _SECRET)

    def _tomb(self, doc_id: str) -> str:
        return self._p(f"{_SHRED_PREFIX}{_check('doc', doc_id)}.age")

    def shred_document(self, doc_id: str, header_size: int) -> None:
        # First the document leaves its name, in one durable rename: killed
        # after this, the vault holds no document with a destroyed header
        # (which would look like tampering), only a tombstone that
        # finish_shreds completes (docs/THREAT-MODEL.md, "Shredding").
        path, tomb = self._doc(doc_id), self._tomb(doc_id)
        os.rename(path, tomb)
        _atomic.fsync_dir(os.path.dirname(path))
        _atomic.fsync_dir(self.path)
        self._destroy(tomb, header_size)

    def _destroy(self, tomb: str, header_size: int) -> None:
        try:
            fd = os.open(tomb, os.O_WRONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno != 40:  # ELOOP: a planted link; remove the link only
                raise
        else:
            try:
                # Overwrite the header in place (same blocks, on file systems
                # that do not copy on write): every wrapped file key goes first.
                os.pwrite(fd, os.urandom(header_size), 0)
                os.fsync(fd)
            finally:
                os.close(fd)
        os.unlink(tomb)
        _atomic.fsync_dir(self.path)

    def interrupted_shreds(self) -> list[str]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(m.group(1) for n in names if (m := _SHRED_NAME.match(n)))

    def finish_shreds(self) -> list[str]:
        done = []
        for doc_id in self.interrupted_shreds():
            tomb = self._tomb(doc_id)
            with contextlib.suppress(FileNotFoundError):
                # The header size is unknown now: overwrite as much as any
                # header may take (docs/FORMAT.md §2.4), or the whole file.
                self._destroy(tomb, min(os.lstat(tomb).st_size, _MAX_HEADER))
                done.append(doc_id)
        return done

    # -- actors ----------------------------------------------------------------

    def register_actor(self, key_hash: str, public_key: bytes) -> None:
        with contextlib.suppress(FileExistsError):
            self._write(("actors", f"{_check('hash', key_hash)}.pub"), public_key,
                        mode=_PUBLIC, replace=False)

    def actor_key(self, key_hash: str) -> bytes | None:
        try:
            return self._read("actors", f"{_check('hash', key_hash)}.pub")
        except FileNotFoundError:
            return None

    # -- index and audit log -------------------------------------------------

    @property
    def index(self) -> Index:
        if self._index is None:
            # SQLite follows symbolic links (and creates their targets): a
            # planted link would make the vault write outside its folder.
            for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm",
                         "index.sqlite-journal"):
                if os.path.islink(self._p(name)):
                    raise _planted(name)
            self._index = SQLiteIndex(self._p("index.sqlite"))
        return self._index

    def audit_log(self, signer: NoteSigner | None, origin: str) -> AuditLog:
        from vault.audit import AuditLog

        return AuditLog(self._p("audit"), checkpoint_signer=signer, origin=origin)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
