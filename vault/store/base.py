"""The storage backend interface (docs/DESIGN.md §7).

A vault keeps six kinds of things: its manifest (``vault.json``), the signed
policy versions, the public keys of the label classes, the users' keyring
entries, the sealed documents and an index of them -- plus the audit log
and the key that signs its checkpoints. :class:`Backend` is everything the
vault needs from a place to keep them; :class:`Index` is the query side.

Contract for every implementation (the folder backend, and a database
backend later):

* every write is atomic: a reader sees the old content or the new, never
  a mixture, and a crash leaves no partial object;
* ``add_*`` and ``write_document(replace=False)`` are exclusive creates: of
  two concurrent writers exactly one succeeds, the other is told so;
* nothing here interprets or verifies content: the backend is untrusted
  storage, and every byte read from it is verified by the caller;
* secrets (the log key) are stored readable by the vault's owner only.
"""

from __future__ import annotations

import abc
import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit import AuditLog, NoteSigner
    from vault.store._batch import DocumentBatch

__all__ = ["DOC_ID", "HASH", "KEY_ID", "OWNER", "Backend", "Index", "IndexRow"]

# Names that reach file names or SQL are checked against these before use,
# so a hostile id can never address anything outside its place.
HASH = re.compile(r"\A[0-9a-f]{64}\Z")  # a full SHA-256 in hex
DOC_ID = re.compile(r"\A[a-z2-7]{16}\Z")  # base32 of 80 random bits
KEY_ID = re.compile(r"\A[0-9a-f]{32}\Z")  # truncated SHA-256 (class and key ids)
OWNER = re.compile(r"\Aage1[02-9ac-hj-np-z]{58}\Z")  # a user's age recipient


@dataclass(frozen=True)
class IndexRow:
    """One document as the index knows it: only what its header shows in
    clear (docs/DESIGN.md §8). Never a title, file name or digest of the
    plaintext."""

    doc_id: str
    class_id: str
    level: str
    label: dict[str, Any]  # the label statement, as signed in the header
    sealed_at: str
    sealed_by: str
    declassify_on: str | None
    size: int  # ciphertext bytes
    header_sha256: str
    stamp: str  # the document file's version (see Backend.document_version)


class Index(abc.ABC):
    """Query side of the vault. A cache: everything in it can be rebuilt from
    the document headers (``Vault.doctor(repair=True)``)."""

    @abc.abstractmethod
    def put(self, row: IndexRow) -> None:
        """Insert or replace the row of ``row.doc_id``."""

    def put_many(self, rows: Iterable[IndexRow]) -> None:
        """:meth:`put` several rows (an index may do it in one transaction)."""
        for row in rows:
            self.put(row)

    @abc.abstractmethod
    def remove(self, doc_id: str) -> None:
        """Forget a document (no error when it is unknown)."""

    @abc.abstractmethod
    def get(self, doc_id: str) -> IndexRow | None: ...

    @abc.abstractmethod
    def rows(self) -> list[IndexRow]:
        """Every row, ordered by sealing time then id."""

    def stamps(self) -> dict[str, str]:
        """``doc id -> stamp`` of every row (what bringing the index up to
        date compares, without decoding any label)."""
        return {r.doc_id: r.stamp for r in self.rows()}

    def note(self, key: str) -> str | None:
        """A short value the vault keeps with the index (see :meth:`set_note`)."""
        return None

    def set_note(self, key: str, value: str) -> None:  # noqa: B027 - optional
        """Keep ``value`` under ``key`` with the index; an index that keeps
        no notes ignores it (callers then redo the work a note would save)."""

    def listing(self) -> Iterable[tuple[str, str, str, str, int]]:
        """``(doc id, label statement as canonical JSON text, sealed at,
        sealed by, size)`` of every row, ordered like :meth:`rows`: what a
        listing shows, left encoded (an index may hand its stored text over
        as it is)."""
        return [(r.doc_id, json.dumps(r.label, sort_keys=True, separators=(",", ":"),
                                      ensure_ascii=False), r.sealed_at, r.sealed_by, r.size)
                for r in self.rows()]

    @abc.abstractmethod
    def due(self, day: str) -> list[IndexRow]:
        """Rows whose ``declassify_on`` (ISO date) is on or before ``day``."""

    @abc.abstractmethod
    def rebuild(self, rows: Iterable[IndexRow]) -> None:
        """Replace the whole index by ``rows``, even if it is corrupt."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class Backend(abc.ABC):
    """Where a vault lives. See the module docstring for the contract."""

    location: str

    # -- lifecycle ---------------------------------------------------------

    @abc.abstractmethod
    def create(self) -> None:
        """Create an empty store; :class:`~vault.errors.UsageError` if a
        vault is already there."""

    @abc.abstractmethod
    def exists(self) -> bool: ...

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
    def tidy(self) -> list[str]:
        """Remove leftovers of crashed writers; call with :meth:`lock` held.
        Returns what was removed, for the doctor's report."""

    # -- manifest, log key, policy versions --------------------------------

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

    @abc.abstractmethod
    def policy_versions(self) -> list[int]:
        """Installed versions, ascending (only completely written ones)."""

    @abc.abstractmethod
    def read_policy(self, version: int) -> tuple[bytes, bytes]:
        """``(policy file bytes, signature bytes)`` of one version."""

    @abc.abstractmethod
    def add_policy(self, version: int, policy: bytes, signature: bytes) -> None:
        """Install a version; :class:`FileExistsError` if it exists."""

    # -- label-class public keys -------------------------------------------

    @abc.abstractmethod
    def class_keys(self) -> list[tuple[str, int]]:
        """``(class id, generation)`` of every stored class key record."""

    @abc.abstractmethod
    def read_class_key(self, class_id: str, generation: int) -> bytes: ...

    @abc.abstractmethod
    def add_class_key(self, class_id: str, generation: int, data: bytes) -> bool:
        """Exclusive create; ``False`` when another writer got there first."""

    # -- keyrings: one entry per (owner recipient, class key id) -----------

    @abc.abstractmethod
    def keyring_owners(self) -> list[str]: ...

    @abc.abstractmethod
    def keyring_entries(self, owner: str) -> list[str]:
        """Key ids of the entries held for ``owner``."""

    @abc.abstractmethod
    def read_keyring_entry(self, owner: str, key_id: str) -> bytes | None: ...

    @abc.abstractmethod
    def write_keyring_entry(self, owner: str, key_id: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def delete_keyring_entry(self, owner: str, key_id: str) -> None: ...

    def keyring_holders(self, key_id: str, owners: Iterable[str]) -> set[str]:
        """Those of ``owners`` that hold an entry for ``key_id`` (a store
        may answer in one query)."""
        return {o for o in owners if self.read_keyring_entry(o, key_id) is not None}

    # -- documents ---------------------------------------------------------

    @abc.abstractmethod
    def document_ids(self) -> list[str]: ...

    @abc.abstractmethod
    def document_stamps(self) -> dict[str, str]:
        """The stamp (see :meth:`document_version`) of every document."""

    @abc.abstractmethod
    def open_document(self, doc_id: str) -> BinaryIO:
        """Open for reading; :class:`FileNotFoundError` if absent."""

    @abc.abstractmethod
    def document_version(self, f: BinaryIO) -> tuple[int, str]:
        """``(size, stamp)`` of the document open as ``f``. The stamp is a
        short string that changes whenever the document is rewritten; the
        index keeps it to tell a row that is merely out of date (an
        interrupted write) from one that was edited."""

    @abc.abstractmethod
    def write_document(
        self, doc_id: str, *, replace: bool = False
    ) -> contextlib.AbstractContextManager[BinaryIO]:
        """Yield a stream; the document appears (or is replaced) atomically
        when the block ends without error."""

    def documents_version(self) -> str | None:
        """A token that changes whenever a document is added, removed or
        replaced, or None when the store cannot tell (or not yet: see the
        folder backend). Equal tokens mean the set of documents and their
        stamps are unchanged, so the index need not be compared with them."""
        return None

    def document_batch(self) -> DocumentBatch:
        """A context manager for writing several new documents together;
        when it ends without error, every one is durable and in place
        (:mod:`vault.store._batch`; a store may overlap their commits)."""
        from vault.store._batch import DocumentBatch

        return DocumentBatch(self)

    @abc.abstractmethod
    def shred_document(self, doc_id: str, header_size: int) -> None:
        """Overwrite the first ``header_size`` bytes (every wrapped copy of
        the file key) in place, make that durable, then delete the document.
        The document leaves the store's listing first, in one atomic step:
        an interrupted shred never leaves a listed document with a destroyed
        header, only work that :meth:`finish_shreds` completes."""

    def interrupted_shreds(self) -> list[str]:
        """Ids of documents whose shredding was interrupted (a killed
        writer): no longer listed, but wrapped keys may remain."""
        return []

    def finish_shreds(self) -> list[str]:
        """Complete interrupted shreds; call with :meth:`lock` held.
        Returns the ids finished."""
        return []

    # -- public keys of audit actors the policy does not know -------------

    @abc.abstractmethod
    def register_actor(self, key_hash: str, public_key: bytes) -> None:
        """Keep an Ed25519 public key under the hex SHA-256 of its bytes
        (self-certifying: a reader checks the hash). Idempotent."""

    @abc.abstractmethod
    def actor_key(self, key_hash: str) -> bytes | None: ...

    # -- index and audit log -----------------------------------------------

    @property
    @abc.abstractmethod
    def index(self) -> Index: ...

    @abc.abstractmethod
    def audit_log(self, signer: NoteSigner | None, origin: str) -> AuditLog: ...

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_chunks(f: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    """Read ``f`` to the end in chunks (used to stream documents)."""
    while chunk := f.read(size):
        yield chunk
