"""Sealing documents (docs/DESIGN.md §6.2).

A document's header carries, in this order: one X25519 stanza for the
current key of its label class, one per recovery recipient (both made by
:class:`~vault._wrap.BoundX25519Recipient`), the signed label stanza and the
encrypted metadata stanza. The metadata holds the plaintext's size and
SHA-256, which must be known before the header is written: a file is read
twice (hash, then encrypt); a stream that cannot seek is encrypted once to a
temporary age file and then given its final header with ``rewrap``, which
copies the payload unchanged. Plaintext never touches the disk.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import mimetypes
import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from vault._document import read_sealed
from vault._info import DocumentInfo
from vault._keyring import ClassKey, LabelClass, cleared_users, write_entry
from vault._label import Metadata, VaultStanzas
from vault._wrap import BoundX25519Recipient
from vault.age import Stanza, X25519Recipient, encrypt, rewrap
from vault.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._vault import Attempt, Source, Vault
    from vault.age import Recipient
    from vault.policy import Label

__all__ = ["class_key_for", "grant_missing", "new_doc_id", "seal_many", "wrap_recipients"]


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


def grant_missing(v: Vault, ck: ClassKey) -> list[str]:
    """Write ``ck``'s entry for every cleared user lacking it, if we hold it.
    Granting needs only the users' public recipients from the policy."""
    identity = v.keyring.identity(ck)
    if identity is None:
        return []
    granted = []
    for user in cleared_users(v.policy, ck.cls):
        if v.backend.read_keyring_entry(user.recipient, ck.key_id) is None:
            write_entry(v.backend, user.recipient, ck, identity, v.id)
            granted.append(f"{user.name}: {ck.cls}")
    return granted


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
        ck = class_key_for(v, LabelClass.of(label), label.to_dict()["created"])
        grant_missing(v, ck)
        return [_seal_one(v, stream, name, att, label, ck, title, content_type)
                for (stream, name), att in zip(sources, attempts, strict=True)]


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


def _seal_one(v: Vault, stream: BinaryIO, filename: str | None, att: Attempt, label: Label,
              ck: ClassKey, title: str | None, content_type: str | None) -> DocumentInfo:
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
    recipients = wrap_recipients(v, ck)
    if _seekable(stream):
        start = stream.tell()
        size, digest = _hash(stream)
        stream.seek(start)
        meta = Metadata(filename, title, content_type, size, digest)
        with v.backend.write_document(doc_id) as out:
            encrypt(stream, out, [*recipients, VaultStanzas(statement, me, meta)])
    else:
        meta = _seal_stream(v, stream, doc_id, recipients, statement,
                            Metadata(filename, title, content_type, 0, ""))
    sealed, f = read_sealed(v.backend, v.chain, doc_id)
    f.close()
    v.backend.index.put(sealed.index_row())
    return sealed.info(meta)


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _hash(f: BinaryIO) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    while chunk := f.read(1 << 20):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


class _HashingReader:
    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data


class _CaptureKey:
    """A recipient that only remembers the file key (for the spool file)."""

    file_key = b""

    def wrap(self, file_key: bytes) -> list[Stanza]:
        self.file_key = file_key
        return [Stanza("vault/v1/spool")]


def _seal_stream(v: Vault, stream: BinaryIO, doc_id: str, recipients: list[Recipient],
                 statement: dict[str, Any], template: Metadata) -> Metadata:
    capture = _CaptureKey()
    reader = _HashingReader(stream)
    with tempfile.TemporaryFile() as spool:  # holds ciphertext only
        encrypt(reader, spool, [capture])  # type: ignore[arg-type]
        spool.seek(0)
        meta = dataclasses.replace(template, size=reader.size, sha256=reader.sha256.hexdigest())
        with v.backend.write_document(doc_id) as out:
            rewrap(spool, out, capture.file_key, [*recipients,
                                                  VaultStanzas(statement, v.me(), meta)])
    return meta
