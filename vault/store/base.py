"""The storage backend interface (docs/DESIGN.md §7).

A vault keeps: its manifest (``vault.json``), the key that signs its audit
checkpoints, the users' keyring entries, the sealed documents (one stored
file per version), the public keys of audit actors the policy does not
know, requests and approvals waiting to be picked up -- and the audit log,
which holds everything else (policy versions, class keys, who holds what,
which version of each document is current: docs/DESIGN.md §8).
:class:`Backend` is everything the vault needs from a place to keep them.

Contract for every implementation (the folder backend and PostgreSQL):

* every write is atomic: a reader sees the old content or the new, never a
  mixture, and a crash leaves no partial object in place;
* ``write_document`` and ``write_manifest``/``write_log_key`` are exclusive
  creates: of two concurrent writers exactly one succeeds;
* nothing here interprets or verifies content: the backend is untrusted
  storage, and every byte read from it is checked by the caller against
  the verified audit log;
* secrets (the log key, keyring entries, documents) are stored readable by
  the vault's owner only.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit import AuditLog, NoteSigner
    from vault.store._batch import DocumentBatch

__all__ = ["DOC_ID", "HASH", "KEY_ID", "MAX_KEYRING_ENTRY", "OWNER", "VERSION", "Backend",
           "Leftover", "owner_key"]

# Names that reach file names or SQL are checked against these before use,
# so a hostile id can never address anything outside its place.
HASH = re.compile(r"\A[0-9a-f]{64}\Z")  # a full SHA-256 in hex
DOC_ID = re.compile(r"\A[a-z2-7]{16}\Z")  # base32 of 80 random bits
KEY_ID = re.compile(r"\A[0-9a-f]{32}\Z")  # truncated SHA-256 (class and key ids)
VERSION = re.compile(r"\A[0-9a-f]{8}\Z")  # one stored version of a document
# A keyring entry is one class key wrapped to one person: a few KB. A reader
# takes no more than this of one, so an entry bloated in the store (the
# PostgreSQL role may UPDATE them) costs nobody memory; a longer one is not
# the granted entry (its digest differs) and is not used.
MAX_KEYRING_ENTRY = 64 * 1024
OWNER = re.compile(r"\Aage1(pq1)?[02-9ac-hj-np-z]{58,4000}\Z")  # a user's age recipient


def owner_key(recipient: str) -> str:
    """Where a user's keyring entries are filed: 32 hex digits of SHA-256
    of their recipient (post-quantum recipients are too long for a file
    name; docs/FORMAT.md §13.6)."""
    return hashlib.sha256(recipient.encode("ascii")).hexdigest()[:32]


@dataclass(frozen=True)
class Leftover:
    """Something an interrupted write left behind (``doctor`` names each)."""

    where: str  # a path relative to the vault, or a table and key
    size: int  # bytes
    secret: bool  # could hold key material or ciphertext (never plaintext)
    what: str  # for people: "an interrupted write of a document", ...


class Backend(abc.ABC):
    """Where a vault lives. See the module docstring for the contract."""

    location: str
    # Called (with what is awaited) when taking a lock has to wait for
    # another process: a person should know why nothing happens.
    on_wait: Callable[[str], None] | None = None

    def waiting(self, shared: bool) -> None:
        if self.on_wait is not None:
            self.on_wait("another command is changing the vault (a rotation, a policy "
                         "change, a relabelling)" if shared else
                         "other commands are writing to the vault (a seal still running, a "
                         "rotation, a relabelling)")

    # -- lifecycle ---------------------------------------------------------

    @abc.abstractmethod
    def create(self) -> None:
        """Create an empty store; :class:`~vault.errors.UsageError` if a
        vault is already there."""

    @abc.abstractmethod
    def exists(self) -> bool: ...

    def unfinished(self) -> bool:
        """Does the place hold vault data but no manifest -- what an init or
        a move killed before its commit point leaves? (False by default.)"""
        return False

    def abandon(self) -> None:
        """Undo a :meth:`create` whose init failed before the manifest was
        written, so that the same init can simply be run again. Nothing
        here by default: a database keeps its append-only rows (and says
        so when init is tried again)."""
        return

    @abc.abstractmethod
    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock serialising the vault's writers (between
        processes). Readers never need it."""

    def shared_lock(self) -> contextlib.AbstractContextManager[None]:
        """A lock any number of holders share, excluding :meth:`lock`.
        Sealers hold it while they write new documents to the current class
        keys, so that no rotation runs in between (docs/DESIGN.md §7). A
        backend without shared locks may take the exclusive one."""
        return self.lock()

    @abc.abstractmethod
    def leftovers(self) -> list[Leftover]:
        """What killed writers left: temporary files whose writer is dead."""

    @abc.abstractmethod
    def tidy(self) -> list[Leftover]:
        """Remove :meth:`leftovers`; call with :meth:`lock` held."""

    # -- manifest and log key ----------------------------------------------

    @abc.abstractmethod
    def read_manifest(self) -> bytes: ...

    @abc.abstractmethod
    def write_manifest(self, data: bytes) -> None:
        """Exclusive create."""

    @abc.abstractmethod
    def read_log_key(self) -> bytes: ...

    @abc.abstractmethod
    def write_log_key(self, data: bytes) -> None:
        """Exclusive create, readable by the owner only."""

    # -- keyrings: one entry per (owner recipient, class key id) -----------

    @abc.abstractmethod
    def iter_keyring_files(self) -> Iterator[tuple[str, str]]:
        """``(owner key, key id)`` of every stored entry (:func:`owner_key`),
        in no set order, a batch at a time (as :meth:`iter_document_files`)."""

    def keyring_files(self) -> list[tuple[str, str]]:
        """:meth:`iter_keyring_files`, sorted (for a few; tests)."""
        return sorted(self.iter_keyring_files())

    @abc.abstractmethod
    def read_keyring_entry(self, owner: str, key_id: str) -> bytes | None:
        """The entry of ``owner`` (an age recipient) for ``key_id``."""

    @abc.abstractmethod
    def write_keyring_entry(self, owner: str, key_id: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def read_keyring_file(self, owner_key: str, key_id: str) -> bytes | None:
        """The entry filed under :func:`owner_key` ``owner_key`` (whoever's it
        is), at most MAX_KEYRING_ENTRY + 1 bytes; None when absent."""

    @abc.abstractmethod
    def delete_keyring_entry(self, owner_key: str, key_id: str, *, wait: bool = True) -> None:
        """Remove an entry by :func:`owner_key` (no error when absent).
        ``wait`` False: one that another session holds (its row locked) is
        an error at once, not after the lock timeout."""

    # -- documents: one stored file per (id, version) -----------------------

    @abc.abstractmethod
    def iter_document_files(self) -> Iterator[tuple[str, str]]:
        """``(doc id, version)`` of every stored document file, in no set
        order, read a batch at a time: whoever can write the store can put
        millions there, and a reader holds none of them for long."""

    def document_files(self) -> list[tuple[str, str]]:
        """:meth:`iter_document_files`, sorted (for a few; tests)."""
        return sorted(self.iter_document_files())

    def has_document(self, doc_id: str, version: str) -> bool:
        """Is that one version stored?"""
        try:
            self.open_document(doc_id, version).close()
        except FileNotFoundError:
            return False
        return True

    @abc.abstractmethod
    def open_document(self, doc_id: str, version: str) -> BinaryIO:
        """Open for reading; :class:`FileNotFoundError` if absent."""

    @abc.abstractmethod
    def write_document(self, doc_id: str,
                       version: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """Yield a stream; the document version appears atomically (and
        durably) when the block ends without error. Exclusive."""

    def document_batch(self, count: int) -> DocumentBatch:
        """A context manager for writing ``count`` new documents together;
        when it ends without error, every one is durable and in place
        (:mod:`vault.store._batch`; a store may overlap their commits)."""
        from vault.store._batch import DocumentBatch

        return DocumentBatch(self)

    @abc.abstractmethod
    def delete_document(self, doc_id: str, version: str, *, wait: bool = True) -> None:
        """Remove a stored version (no error when it is absent). ``wait``
        False: one that another session holds (its row locked) is an error
        at once, not after the lock timeout."""

    @abc.abstractmethod
    def shred_document(self, doc_id: str, version: str, header_size: int, *,
                       stray: bool = False, decided: Callable[[], None] | None = None) -> None:
        """Overwrite the first ``header_size`` bytes (every wrapped copy of
        the file key) in place, make that durable, then delete the file. It
        leaves the listing first, in one atomic step, where nothing planted
        stops that: an interrupted shred leaves only work that
        :meth:`finish_shreds` or doctor's repair completes. ``stray``: a
        version nobody counts, refused (:class:`IntegrityError`) if its
        file has any other name. ``decided`` (the shred's record) is called
        once every check that can refuse has passed, before anything is
        changed; :class:`FileNotFoundError` (nothing stored) is raised
        before it."""

    def interrupted_shreds(self) -> list[tuple[str, str]]:
        """``(doc id, version)`` of what is named like a shred a killed
        writer left half done. Names only: anyone who can write the store
        can plant such a name, so the caller checks each against the audit
        log and :meth:`shred_leftover` before :meth:`finish_shreds`."""
        return []

    def shred_leftover(self, doc_id: str, version: str, content: object = None, *,
                       known: Callable[[str], bool] | None = None
                       ) -> tuple[Leftover, str | None]:
        """What an interrupted shred left, and why it cannot be one (a link,
        not a regular file, another name of a file still in use, not ending
        with the payload ``content`` commits to, when given), None when it
        can; :class:`FileNotFoundError` when it is gone. ``known``: for an
        interrupted seal's (nothing on record), whether a header SHA-256 is
        a recorded document's: it must be a document header none records, or
        overwritten (no age file, no text)."""
        raise FileNotFoundError(f"no interrupted shred of {doc_id}")

    def finish_shreds(self, shreds: Iterable[tuple[str, str]],
                      payloads: Mapping[tuple[str, str], int] | None = None
                      ) -> list[tuple[str, str]]:
        """Complete the interrupted shreds named (each one the audit log
        records), leaving alone anything that is not one; return those done.
        ``payloads``: the payload size of those whose size is on record (all
        but their last that many bytes are overwritten). Call with
        :meth:`lock` held."""
        return []

    def layout_problems(self) -> list[str]:
        """What is wrong with the store's own structure (a folder replaced
        by a link or a file, one that cannot be listed), and the statements
        left that cannot be read, for ``doctor``: each is refused or skipped
        where used."""
        return []

    def notices(self) -> list[str]:
        """What reading the store passed over that the command must say (a
        folder of statements that cannot be listed, taken as empty)."""
        return []

    # -- public keys of audit actors the policy does not know -------------

    @abc.abstractmethod
    def register_actor(self, key_hash: str, public_key: bytes) -> None:
        """Keep an Ed25519 public key under the hex SHA-256 of its bytes
        (self-certifying: a reader checks the hash). Idempotent."""

    @abc.abstractmethod
    def actor_key(self, key_hash: str) -> bytes | None: ...

    @abc.abstractmethod
    def actor_keys(self) -> list[str]:
        """Hashes of every registered key."""

    def registered_keys(self, key_hashes: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """``(hash, key)`` of each of ``key_hashes`` registered as the key
        its hash names (:meth:`actor_key`), in the order of the hashes --
        never the whole table, which anyone who may write the store can
        fill (docs/AUDIT.md §15)."""
        for key_hash in sorted(set(key_hashes)):
            key = self.actor_key(key_hash)
            if key is not None:
                yield key_hash, key

    # -- requests and approvals waiting to be picked up --------------------

    @abc.abstractmethod
    def put_statement(self, kind: str, data: bytes) -> None:
        """Leave a signed statement (``kind`` is ``request`` or
        ``approval``) for others to pick up, named by the SHA-256 of its
        bytes (docs/FORMAT.md §13.7): they hold its signature, so nobody
        else can take the name first with something else."""

    @abc.abstractmethod
    def statements(self, kind: str) -> Iterable[tuple[str, bytes]]:
        """``(name, bytes)`` of every statement of ``kind`` left here."""

    # -- the audit log -----------------------------------------------------

    @abc.abstractmethod
    def audit_log(self, signer: NoteSigner | None, origin: str) -> AuditLog: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
