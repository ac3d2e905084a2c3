"""Sealing documents (docs/DESIGN.md §6.2).

A document's header carries, in this order: one X25519 stanza for the
current key of its label class, one per recovery recipient (both made by
:class:`~vault._sealed.recipients.BoundX25519Recipient`), the signed label stanza and the
encrypted metadata stanza. The metadata holds the plaintext's size and
SHA-256, known only once the plaintext was read: the payload is written
first and the header last (:mod:`vault._sealed.writing`), so the plaintext is
read once. Plaintext never touches the disk.

Sealing several files (``seal_many``) makes one decision and appends their
audit records in one batch, durable before any document is written; the
documents are then written through the store's document batch (each one
fsynced; the folder store overlaps those fsyncs and syncs the directory
once), and indexed in one transaction once all are in place.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import mimetypes
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from vault._results import DocumentInfo
from vault._sealed.label import META_STANZA, Metadata, SignedLabel, VaultStanzas
from vault._sealed.reading import Sealed
from vault._sealed.recipients import BoundX25519Recipient
from vault._sealed.writing import size_hint, write_payload_first
from vault._trust.keys import ClassKey, LabelClass, cleared_users, write_entry
from vault.age import Header, Stanza, X25519Recipient
from vault.errors import StorageError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._vault import Attempt, Source, Vault
    from vault.age import Recipient
    from vault.policy import Label, User
    from vault.store._batch import DocumentBatch

__all__ = ["class_key_for", "current_key", "grant_missing", "new_doc_id", "seal_many",
           "wrap_recipients"]


def new_doc_id() -> str:
    """80 random bits, base32: 16 lowercase letters and digits."""
    return base64.b32encode(os.urandom(10)).decode("ascii").lower()


def make_label(v: Vault, fields: dict[str, Any]) -> Label:
    """A label from user input, checked and canonicalised by the policy
    (which applies its default label, or refuses under mandatory labelling)."""
    return v.policy.make_label(actor=v.me().name,
                               **{k: val for k, val in fields.items() if val is not None})


def class_key_for(v: Vault, cls: LabelClass, created: str) -> ClassKey:
    """The current key of ``cls``, created (by this sealer) when first needed."""
    ck = v.class_keys.current(cls)
    if ck is not None:
        return ck
    with v.lock():
        v.chain.catch_up()  # entries go to whom the latest version clears (DESIGN.md §3.5)
        v.class_keys.refresh()
        ck = v.class_keys.current(cls)
        if ck is None:
            made = v.class_keys.create(cls, v.me(), v.policy, created)
            if made is not None:
                v.keyring.remember(made[0], made[1])
            v.class_keys.refresh()
            ck = v.class_keys.current(cls)
    assert ck is not None
    return ck


def current_key(v: Vault, cls: LabelClass) -> ClassKey:
    """The current key of ``cls`` as stored now, with the policy version now
    in force (another process may have rotated it or installed a version
    since this vault object read them). Call under a lock."""
    v.chain.catch_up()
    v.class_keys.refresh_if_changed()
    ck = v.class_keys.current(cls)
    assert ck is not None, "class keys are only ever added"
    return ck


def grant_missing(v: Vault, ck: ClassKey) -> list[str]:
    """Write ``ck``'s entry for every cleared user lacking it, if we hold it.
    Granting needs only the users' public recipients from the policy."""
    identity = v.keyring.identity(ck)
    if identity is None or not _lacking(v, ck):
        return []  # the usual case: no lock taken
    with v.lock():
        # Whom to grant is decided again under the lock policy installs take,
        # against the latest version: another process may have revoked a user
        # since this object read the policy, and a revoked user must never
        # receive a key (docs/DESIGN.md §3.5).
        v.chain.catch_up()
        granted = []
        for user in _lacking(v, ck):
            write_entry(v.backend, user.recipient, ck, identity, v.id)
            granted.append(f"{user.name}: {ck.cls}")
    return granted


def _lacking(v: Vault, ck: ClassKey) -> list[User]:
    """Users the policy this object holds clears for ``ck``'s class, who
    have no entry for it."""
    users = cleared_users(v.policy, ck.cls)
    holders = v.backend.keyring_holders(ck.key_id, [u.recipient for u in users])
    return [u for u in users if u.recipient not in holders]


def wrap_recipients(v: Vault, ck: ClassKey) -> list[Recipient]:
    recovery = sorted(set(v.policy.recovery) | set(v.manifest.recovery))
    return [BoundX25519Recipient(ck.recipient),
            *(BoundX25519Recipient(X25519Recipient.from_string(r)) for r in recovery)]


def seal_many(v: Vault, srcs: list[Source], *, level: str | None = None,
              compartments: Sequence[str] = (), caveats: Sequence[str] = (),
              title: str | None = None, filename: str | None = None,
              declassify_on: Any = None, embargo_until: Any = None,
              justification: str | None = None, reason: str | None = None,
              content_type: str | None = None) -> list[DocumentInfo]:
    if not srcs:
        raise ValueError("give at least one file or stream to seal")
    me = v.me()
    from vault._vault import now

    created = now()
    with v.attempts("seal", [new_doc_id() for _ in srcs]) as attempts, \
            contextlib.ExitStack() as stack:
        # Sources are opened before the decision: an unreadable file is an
        # error on the record, never an "allowed" that did nothing.
        sources = [_open_source(stack, src, filename) for src in srcs]
        label = make_label(v, {
            "level": level, "compartments": list(compartments), "caveats": list(caveats),
            "classified_by": me.name, "reason": reason or justification, "created": created,
            "declassify_on": declassify_on, "embargo_until": embargo_until})
        inputs = {"justification": justification} if justification else {}
        v.authorise(attempts, "seal", label, inputs=inputs)
        cls = LabelClass.of(label)
        grant_missing(v, class_key_for(v, cls, label.to_dict()["created"]))
        # No rotation runs while the documents are written: each is wrapped
        # to the key that is current when it appears, never to one a
        # rotation has just retired (docs/DESIGN.md §3.5).
        with v.shared_lock():
            recipients = wrap_recipients(v, current_key(v, cls))
            with v.backend.document_batch() as batch:
                written = [_seal_one(v, batch, stream, name, att, label, recipients, title,
                                     content_type)
                           for (stream, name), att in zip(sources, attempts, strict=True)]
        return _index(v, written)


def _open_source(stack: contextlib.ExitStack, src: Source,
                 filename: str | None) -> tuple[BinaryIO, str | None]:
    if not isinstance(src, str | os.PathLike):
        return src, filename
    path = os.fspath(src)
    try:
        stream = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - the stack closes it
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    return stream, filename if filename is not None else os.path.basename(path)


def _seal_one(v: Vault, batch: DocumentBatch, stream: BinaryIO, filename: str | None,
              att: Attempt, label: Label, recipients: list[Recipient], title: str | None,
              content_type: str | None) -> tuple[Sealed, Metadata]:
    assert att.doc is not None
    doc_id = att.doc
    if content_type is None and filename:
        content_type = mimetypes.guess_type(filename)[0]
    content_type = content_type or "application/octet-stream"
    me = v.me()
    stamp = label.to_dict()["created"]
    statement = {"vault": v.id, "doc": doc_id, "label": label.to_dict(), "sealed_at": stamp,
                 "sealed_by": me.name, "signer": {"name": me.name,
                                                  "signing_key": me.signing_public},
                 "policy": v.chain.head.sha256, "action": "seal"}
    template = Metadata(filename, title, content_type, 0, "")
    file_key = os.urandom(16)
    # The recipient stanzas and the signed label do not depend on the
    # metadata: made once, whatever header is built with them.
    stanzas = [s for r in recipients for s in r.wrap(file_key)]
    label_stanza = VaultStanzas(statement, me, Stanza(META_STANZA)).wrap(file_key)[0]

    def header_for(meta: Metadata) -> Header:
        return Header.seal([*stanzas, label_stanza, meta.seal(file_key, doc_id)], file_key)

    with batch.write(doc_id, size_hint(stream)) as out:
        meta, header = write_payload_first(stream, out, file_key, header_for, template)
    outer = json.loads(label_stanza.body)
    signed = SignedLabel(statement, label, base64.b64decode(outer["binding"]), label_stanza)
    encoded = len(header.encode())
    return Sealed(doc_id, header, encoded, signed, header.stanzas[-1], 0, ""), meta


def _index(v: Vault, written: list[tuple[Sealed, Metadata]]) -> list[DocumentInfo]:
    """Index the documents, now in place, in one transaction: each row with
    the stamp of the file as written (docs/DESIGN.md §8)."""
    done = []
    for sealed, meta in written:
        with v.backend.open_document(sealed.doc_id) as f:
            size, stamp = v.backend.document_version(f)
        done.append((dataclasses.replace(sealed, size=size, stamp=stamp), meta))
    # The documents are sealed and durable whatever happens now: an index
    # that cannot be written (a full disk) is a cache the next 'ls' or
    # 'doctor' brings up to date (docs/DESIGN.md §8), not a failed seal.
    with contextlib.suppress(StorageError):
        v.backend.index.put_many([s.index_row() for s, _ in done])
    return [s.info(m) for s, m in done]
