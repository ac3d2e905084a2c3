"""Reading operations: ls, info, open, export (docs/DESIGN.md §6.3)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from vault._atomic import atomic_writer
from vault._ops.listing import listing_json
from vault._results import DocumentInfo
from vault._sealed.label import Metadata
from vault._sealed.reading import Sealed, read_sealed, unlock
from vault._sealed.writing import PlaintextDigest
from vault.age import decrypt_payload
from vault.errors import IntegrityError, UsageError, VaultError

if TYPE_CHECKING:  # pragma: no cover
    from vault._vault import Destination, Vault
    from vault.age import X25519Identity
    from vault.store.base import IndexRow

__all__ = ["export", "info", "ls", "ls_json", "open_document", "refresh_index", "sync_index"]

_DOCUMENTS_VERSION = "documents version"  # index note: see refresh_index


def sync_index(v: Vault) -> list[IndexRow]:
    """The index rows, brought up to date with the documents first
    (:func:`refresh_index`)."""
    refresh_index(v)
    return v.backend.index.rows()


def refresh_index(v: Vault) -> None:
    """Bring the index up to date with the documents.

    The document file is written before its index row, so an interrupted
    seal, reclassify or shred leaves a row missing, out of date or left
    over; the stamp each row keeps (docs/DESIGN.md §8) tells which. Only
    those rows are refreshed, from the verified header; a document whose
    header fails to verify loses its row (``doctor`` reports it).

    The store's documents version, read before the comparison, is noted
    with the index afterwards: while it stays the same, no document was
    added, removed or replaced since, and the comparison is skipped."""
    index = v.backend.index
    version = v.backend.documents_version()
    if version is not None and index.note(_DOCUMENTS_VERSION) == version:
        return
    stamps = v.backend.document_stamps()
    have = index.stamps()
    for doc_id in set(have) - set(stamps):
        index.remove(doc_id)
    for doc_id in sorted(d for d, stamp in stamps.items() if have.get(d) != stamp):
        try:
            sealed, f = read_sealed(v.backend, v.chain, doc_id)
            f.close()
            index.put(sealed.index_row())
        except (VaultError, OSError):
            index.remove(doc_id)
    if version is not None:
        index.set_note(_DOCUMENTS_VERSION, version)


def _row_info(row: IndexRow) -> DocumentInfo:
    from vault.policy import Label

    st = row.label
    return DocumentInfo(id=row.doc_id, label=Label.from_dict(st["label"]),
                        sealed_at=row.sealed_at, sealed_by=row.sealed_by, size=row.size,
                        classified_by=st["label"].get("classified_by"), policy=st.get("policy"))


def ls(v: Vault) -> list[DocumentInfo]:
    me = v.me()
    with v.attempt("ls") as att:
        if me.name not in v.policy.users:
            v.authorise(att, "list", _lowest_label(v))  # records the denial and raises
        infos = []
        allowed = v.policy.decider(me.name, "list")  # one moment for the whole listing
        for row in sync_index(v):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                info = _row_info(row)
                if allowed(row.label["label"]):
                    infos.append(info)
        v.record([att], "allowed", [], f"{len(infos)} documents listed")
    return infos


def ls_json(v: Vault) -> str:
    """What :func:`ls` lists, as the JSON text of ``[d.to_dict() for d in
    ls(v)]`` (keys sorted, compact, UTF-8), without building an object per
    document (:mod:`vault._ops.listing`): each row's label is shown as the
    index stores it (the canonical form the vault wrote), and the policy
    decides once per distinct combination of deciding label fields
    (``Policy.decider``)."""
    me = v.me()
    with v.attempt("ls") as att:
        if me.name not in v.policy.users:
            v.authorise(att, "list", _lowest_label(v))  # records the denial and raises
        refresh_index(v)
        allowed = v.policy.decider(me.name, "list")
        text, count = listing_json(v.backend.index.listing(), allowed)
        v.record([att], "allowed", [], f"{count} documents listed")
    return text


def _lowest_label(v: Vault) -> Any:
    from vault.policy import Label

    return Label(level=v.policy.levels[0].name)


def identities_for(v: Vault, sealed: Sealed) -> list[X25519Identity]:
    # Another process may have rotated the class key since this vault
    # object read the records: a listing of the class keys tells.
    v.class_keys.refresh_if_changed()
    return v.keyring.identities(v.class_keys.generations(sealed.label.cls))


def info(v: Vault, doc_id: str) -> DocumentInfo:
    me = v.me()
    with v.attempt("info", doc_id) as att:
        sealed, f = read_sealed(v.backend, v.chain, doc_id)
        f.close()
        att.label = label = sealed.label.label
        v.authorise(att, "list", label)
        meta: Metadata | None = None
        if v.policy.decide(me.name, "open", label).allowed:
            ids = identities_for(v, sealed)
            if ids:
                _, meta = unlock(sealed, ids, v.class_keys, v.chain)
    return sealed.info(meta)


@contextlib.contextmanager
def _destination(dst: Destination, overwrite: bool, mode: int) -> Iterator[BinaryIO]:
    if not isinstance(dst, str | os.PathLike):
        yield dst
        return
    path = os.fspath(dst)
    if not overwrite and os.path.lexists(path):
        raise UsageError(f"{path} already exists", hint="choose another name, or overwrite it")
    try:
        # sweep: a killed earlier run may have left its partial plaintext in
        # that folder (docs/THREAT-MODEL.md, "Temporary files").
        with atomic_writer(path, mode=mode, replace=overwrite, sweep=True) as out:
            yield out
    except FileExistsError:
        raise UsageError(f"{path} already exists",
                         hint="choose another name, or overwrite it") from None


def _check_destination(dst: Destination, overwrite: bool) -> None:
    # Before anything is recorded or decrypted: refuse an impossible request.
    if isinstance(dst, str | os.PathLike) and not overwrite and os.path.lexists(dst):
        raise UsageError(f"{os.fspath(dst)} already exists",
                         hint="choose another name, or overwrite it")


@contextlib.contextmanager
def _authorised(v: Vault, action: str, doc_id: str, dst: Destination,
                overwrite: bool) -> Iterator[tuple[Sealed, BinaryIO]]:
    """The first steps of open and export, in the order that keeps the
    promise "recorded before anything leaves" (docs/DESIGN.md §6): the
    destination is checked, the header verified, the decision recorded;
    only then does the caller get the document."""
    with v.attempt(action, doc_id) as att:
        _check_destination(dst, overwrite)
        sealed, f = read_sealed(v.backend, v.chain, doc_id)
        with f:
            att.label = sealed.label.label
            v.authorise(att, action, sealed.label.label)
            yield sealed, f


def open_document(v: Vault, doc_id: str, dst: Destination, *, overwrite: bool) -> DocumentInfo:
    with _authorised(v, "open", doc_id, dst, overwrite) as (sealed, f):
        file_key, meta = unlock(sealed, identities_for(v, sealed), v.class_keys, v.chain)
        with _destination(dst, overwrite, 0o600) as out:
            # Hashed in a thread of its own while the next chunks are
            # opened and written (vault.age's plaintext sink).
            digest = PlaintextDigest()
            decrypt_payload(f, out, file_key, plaintext_sink=digest)
            if (digest.size, digest.sha256.hexdigest()) != (meta.size, meta.sha256):
                raise IntegrityError(f"document {doc_id}: the plaintext does not match "
                                     "its sealed size and SHA-256")
    return sealed.info(meta)


def export(v: Vault, doc_id: str, dst: Destination, *, overwrite: bool) -> DocumentInfo:
    with _authorised(v, "export", doc_id, dst, overwrite) as (sealed, f):
        meta = None
        ids = identities_for(v, sealed)
        if ids:  # verify all that the file key shows before it leaves the vault
            _, meta = unlock(sealed, ids, v.class_keys, v.chain)
        f.seek(0)
        with _destination(dst, overwrite, 0o600) as out:
            shutil.copyfileobj(f, out, 1 << 20)
    return sealed.info(meta)

