"""Changing documents: reclassify, declassify, shred (docs/DESIGN.md §6.4).

Reclassifying writes a new label stanza signed by the reclassifier (and
countersigned by the approver under a two-person rule) and rewraps the file
key to the key of the new label class. The payload is never re-encrypted:
``rewrap`` copies it byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

from vault._ops.read import identities_for, sync_index
from vault._ops.seal import class_key_for, current_key, grant_missing, wrap_recipients
from vault._sealed.label import VaultStanzas
from vault._sealed.reading import Sealed, read_sealed, unlock
from vault._trust.keys import LabelClass
from vault.age import rewrap
from vault.errors import DeniedError, NoKeyError, StorageError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._results import DocumentInfo
    from vault._vault import Vault
    from vault.identity import UserIdentity
    from vault.policy import Label

__all__ = ["declassify", "reclassify", "relabel", "shred"]


def _summary(v: Vault, label: Label) -> str:
    return v.policy.format_label(label)


def relabel(v: Vault, sealed: Sealed, f: BinaryIO, file_key: bytes, new: Label, action: str,
            approver: UserIdentity | None = None) -> Sealed:
    """Write ``sealed`` again with label ``new`` signed by the caller,
    wrapped to the current key of its class; returns the new header."""
    me = v.me()
    cls = LabelClass.of(new)
    grant_missing(v, class_key_for(v, cls, new.to_dict()["created"]))
    with v.lock():  # the class key stays current until the header is in place
        ck = current_key(v, cls)
        old = sealed.label.statement
        statement = {"vault": v.id, "doc": sealed.doc_id, "label": new.to_dict(),
                     "sealed_at": old["sealed_at"], "sealed_by": old["sealed_by"],
                     "signer": {"name": me.name, "signing_key": me.signing_public},
                     "policy": v.chain.head.sha256, "action": action}
        stanzas = VaultStanzas(statement, me, sealed.meta, approver=approver)
        return rewrap_document(v, sealed, f, file_key, [*wrap_recipients(v, ck), stanzas])


def rewrap_document(v: Vault, sealed: Sealed, f: BinaryIO, file_key: bytes,
                    recipients: list[Any]) -> Sealed:
    """Replace the document's header, under the vault lock, provided nobody
    changed it since ``sealed`` was read."""
    with v.lock():
        check_unchanged(v, sealed)
        f.seek(0)
        with v.backend.write_document(sealed.doc_id, replace=True) as out:
            rewrap(f, out, file_key, recipients)
        new, g = read_sealed(v.backend, v.chain, sealed.doc_id)
        g.close()
        with contextlib.suppress(StorageError):  # a cache; 'ls' catches up (DESIGN.md §8)
            v.backend.index.put(new.index_row())
    return new


def check_unchanged(v: Vault, sealed: Sealed) -> None:
    """Under the vault lock: the document still exists with the header read
    before the decision. Another process may have shredded or relabelled it
    meanwhile; each is a clear answer, never an OSError."""
    try:
        current = v.backend.open_document(sealed.doc_id)
    except FileNotFoundError:
        raise UsageError(f"document {sealed.doc_id} was shredded while this operation ran",
                         hint="'vault ls' lists the documents you may see") from None
    with current:
        head = current.read(sealed.header_size)
    if head != sealed.header.encode():
        raise StorageError(f"document {sealed.doc_id} changed while this operation ran",
                           hint="run the command again")


def reclassify(v: Vault, doc_id: str, *, level: str | None, compartments: Sequence[str] | None,
               caveats: Sequence[str] | None, justification: str,
               approver: UserIdentity | None, declassify_on: Any,
               embargo_until: Any) -> DocumentInfo:
    me = v.me()
    if approver is not None and approver.name == me.name:
        raise UsageError("the approver must be someone else", hint="ask a second person")
    with v.attempt("reclassify", doc_id) as att:
        sealed, f = read_sealed(v.backend, v.chain, doc_id)
        with f:
            old = att.label = sealed.label.label
            new = v.policy.make_label(
                actor=me.name, level=level or old.level,
                compartments=old.compartments if compartments is None else compartments,
                caveats=old.caveats if caveats is None else caveats,
                classified_by=me.name, reason=justification or None,
                created=datetime.now(UTC),
                declassify_on=declassify_on if declassify_on is not None else old.declassify_on,
                embargo_until=embargo_until if embargo_until is not None else old.embargo_until)
            inputs = {"new_label": new, "justification": justification,
                      "approver": approver.name if approver is not None else None}
            note = f"new label {_summary(v, new)}; justification: {justification}" + (
                f"; approved by {approver.name}" if approver is not None else "")
            v.authorise(att, "reclassify", old, inputs=inputs, note=note)
            file_key, meta = unlock(sealed, identities_for(v, sealed), v.class_keys, v.chain)
            new_sealed = relabel(v, sealed, f, file_key, new, "reclassify", approver)
    return new_sealed.info(meta)


def declassify(v: Vault, doc_ids: Sequence[str] | None, *, due: bool,
               justification: str) -> list[DocumentInfo]:
    """Declassify the given documents, or with ``due`` every document whose
    declassify-on has passed (then documents the caller may not or cannot
    declassify are skipped; each attempt is still recorded)."""
    if due == (doc_ids is not None):
        raise UsageError("name documents to declassify, or ask for those that are due")
    if due:
        today = datetime.now(UTC).date().isoformat()
        sync_index(v)
        doc_ids = [r.doc_id for r in v.backend.index.due(today)]
    assert doc_ids is not None
    done = []
    for doc_id in doc_ids:
        try:
            done.append(_declassify_one(v, doc_id, justification))
        except (DeniedError, NoKeyError):
            if not due:
                raise
    return done


def _declassify_one(v: Vault, doc_id: str, justification: str) -> DocumentInfo:
    me = v.me()
    with v.attempt("declassify", doc_id) as att:
        sealed, f = read_sealed(v.backend, v.chain, doc_id)
        with f:
            old = att.label = sealed.label.label
            new = v.policy.declassified_label(old).replace(
                classified_by=me.name, reason=justification or None, created=datetime.now(UTC))
            inputs = {"new_label": new, "justification": justification}
            note = f"new label {_summary(v, new)}; justification: {justification}"
            v.authorise(att, "declassify", old, inputs=inputs, note=note)
            file_key, meta = unlock(sealed, identities_for(v, sealed), v.class_keys, v.chain)
            new_sealed = relabel(v, sealed, f, file_key, new, "declassify")
    return new_sealed.info(meta)


def shred(v: Vault, doc_id: str, *, justification: str) -> None:
    """Crypto-shredding (docs/DESIGN.md §6.5): the header -- every wrapped
    copy of the file key -- is overwritten in place and synced, then the
    file is deleted, then its index row."""
    with v.attempt("shred", doc_id) as att:
        if doc_id in v.backend.interrupted_shreds():
            # Asked again after a shred was killed half way: its allowed
            # record is in the log already; destroying the rest grants nothing.
            v.record([att], "allowed", [], "finished an interrupted shred | justification: "
                     f"{justification}")
            with v.lock():
                v.backend.finish_shreds()
            with contextlib.suppress(StorageError):  # a cache; 'ls' catches up
                v.backend.index.remove(doc_id)
            return
        sealed, f = read_sealed(v.backend, v.chain, doc_id)
        f.close()
        att.label = sealed.label.label
        v.authorise(att, "shred", sealed.label.label,
                    inputs={"justification": justification},
                    note=f"justification: {justification}; header sha256 "
                         f"{hashlib.sha256(sealed.header.encode()).hexdigest()}")
        with v.lock():
            check_unchanged(v, sealed)  # the header size to destroy is this one's
            v.backend.shred_document(doc_id, sealed.header_size)
        with contextlib.suppress(StorageError):  # a cache; 'ls' catches up
            v.backend.index.remove(doc_id)
