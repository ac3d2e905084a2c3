"""Reading a sealed document: its header checked in two steps
(docs/DESIGN.md §4).

:func:`read_sealed` needs no key. It parses the header and checks its shape
(one label stanza, one metadata stanza, otherwise only X25519 stanzas) and
the label (this vault, this document, a signature by a user the policy
knows). That is all ``ls``/``info``/``shred`` need, and it happens before
the audit record is written.

:func:`unlock` runs after the record. It unwraps the file key with the
caller's class identities, which also verifies the header MAC, then checks
what only the file key can show: the label's binding to this file key, and
that every X25519 stanza is the one the vault itself makes for the
document's class key or a recovery recipient -- nobody slipped in a
recipient of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from vault._results import DocumentInfo
from vault._sealed.label import LABEL_STANZA, META_STANZA, Metadata, SignedLabel
from vault._sealed.recipients import match_stanzas
from vault.age import Header, Stanza, X25519Identity, X25519Recipient, read_header
from vault.age import unwrap_file_key as _unwrap
from vault.errors import LabelError, NoIdentityMatchError, StorageError, UsageError
from vault.store.base import DOC_ID, IndexRow

if TYPE_CHECKING:  # pragma: no cover
    from vault._trust.chain import PolicyChain
    from vault._trust.keys import ClassKeys
    from vault.store.base import Backend

__all__ = ["Sealed", "check_doc_id", "read_sealed", "unlock"]


def check_doc_id(doc_id: str) -> str:
    if not isinstance(doc_id, str) or not DOC_ID.match(doc_id):
        raise UsageError(f"{doc_id!r} is not a document id",
                         hint="document ids are 16 letters and digits, as 'vault ls' shows")
    return doc_id


@dataclass(frozen=True)
class Sealed:
    """A document whose header shape and label verified (file key unknown)."""

    doc_id: str
    header: Header  # unverified until unlock()
    header_size: int
    label: SignedLabel
    meta: Stanza
    size: int  # ciphertext bytes
    stamp: str  # version of the file read (Backend.document_version)

    def info(self, meta: Metadata | None = None) -> DocumentInfo:
        st = self.label.statement
        return DocumentInfo(
            id=self.doc_id, label=self.label.label, sealed_at=st["sealed_at"],
            sealed_by=st["sealed_by"], size=self.size,
            title=meta.title if meta else None, filename=meta.filename if meta else None,
            content_type=meta.content_type if meta else None,
            plaintext_size=meta.size if meta else None, sha256=meta.sha256 if meta else None,
            classified_by=self.label.label.classified_by, policy=st["policy"],
        )

    def index_row(self) -> IndexRow:
        st = self.label.statement
        return IndexRow(
            doc_id=self.doc_id, class_id=self.label.cls.id, level=self.label.label.level,
            label=st, sealed_at=st["sealed_at"], sealed_by=st["sealed_by"],
            declassify_on=_due_day(self.label), size=self.size,
            header_sha256=hashlib.sha256(self.header.encode()).hexdigest(), stamp=self.stamp,
        )


def _due_day(label: SignedLabel) -> str | None:
    when = label.label.declassify_at()
    return None if when is None else when.date().isoformat()


def check_shape(stanzas: Sequence[Stanza], doc_id: str) -> tuple[Stanza, Stanza]:
    """The label and metadata stanzas; LabelError if the header has any
    stanza the vault does not write."""
    labels = [s for s in stanzas if s.type == LABEL_STANZA]
    metas = [s for s in stanzas if s.type == META_STANZA]
    others = [s for s in stanzas if s.type not in (LABEL_STANZA, META_STANZA, "X25519")]
    if len(labels) != 1 or len(metas) != 1:
        raise LabelError(f"document {doc_id} does not carry exactly one label and one "
                         "metadata stanza")
    if others or len(metas) + len(labels) == len(stanzas):
        raise LabelError(f"document {doc_id} has recipient stanzas the vault did not write")
    return labels[0], metas[0]


def read_sealed(backend: Backend, chain: PolicyChain, doc_id: str) -> tuple[Sealed, BinaryIO]:
    """Open a document and verify what needs no key. Returns the checked
    header and the file, positioned at the payload (the caller closes it)."""
    check_doc_id(doc_id)
    try:
        f = backend.open_document(doc_id)
    except FileNotFoundError:
        raise UsageError(f"no document {doc_id} in this vault",
                         hint="'vault ls' lists the documents you may see") from None
    try:
        header = read_header(f)
        label_stanza, meta = check_shape(header.stanzas, doc_id)
        label = SignedLabel.verify(label_stanza, chain, doc_id)
        size, stamp = backend.document_version(f)
    except BaseException:
        f.close()
        raise
    return Sealed(doc_id, header, len(header.encode()), label, meta, size, stamp), f


def unlock(sealed: Sealed, identities: Sequence[X25519Identity], class_keys: ClassKeys,
           chain: PolicyChain) -> tuple[bytes, Metadata]:
    """Unwrap the file key and verify everything bound to it.

    Raises NoKeyError (none of ``identities`` opens it), HMACError (header
    modified) or LabelError (label not bound to this key, stanza added)."""
    if not identities:
        from vault.errors import NoKeyError

        raise NoKeyError(f"you hold no key for documents of class {sealed.label.cls}",
                         hint="ask the officer whether your clearance covers it")
    try:
        file_key = _unwrap(sealed.header, list(identities))
    except NoIdentityMatchError:
        # Holding every key of the label's class and still opening nothing
        # means the stanza wrapping the file key to the class was damaged or
        # replaced: that is tampering, not a missing grant.
        held = {str(i.recipient) for i in identities}
        generations = {str(ck.recipient) for ck in class_keys.generations(sealed.label.cls)}
        if generations and generations <= held:
            _changed_meanwhile(sealed, class_keys)
            raise LabelError(
                f"document {sealed.doc_id} is not wrapped to any key of its label class",
                hint="its header was altered; restore it from a backup or the recovery key",
            ) from None
        raise
    sealed.label.verify_binding(file_key)
    check_recipients(sealed, file_key, class_keys, chain)
    return file_key, Metadata.open(sealed.meta, file_key, sealed.doc_id)


def authorised_recipients(sealed: Sealed, class_keys: ClassKeys,
                          chain: PolicyChain) -> tuple[list[X25519Recipient], set[str]]:
    classes = [ck.recipient for ck in class_keys.generations(sealed.label.cls)]
    return classes, recovery_recipients(chain)


def recovery_recipients(chain: PolicyChain) -> set[str]:
    return chain.recovery() | set(chain.manifest.recovery)


def check_recipients(sealed: Sealed, file_key: bytes, class_keys: ClassKeys,
                     chain: PolicyChain) -> None:
    classes, recovery = authorised_recipients(sealed, class_keys, chain)
    allowed = classes + [X25519Recipient.from_string(r) for r in sorted(recovery)]
    matched, strangers = match_stanzas(sealed.header.stanzas, file_key, allowed)
    if strangers or sum(1 for r in matched if r in classes) != 1:
        _changed_meanwhile(sealed, class_keys)
    if strangers:
        raise LabelError(
            f"document {sealed.doc_id} has a recipient stanza added by someone the vault "
            "does not authorise",
            hint="someone who could open it re-encrypted it for another key; treat as an incident",
        )
    if sum(1 for r in matched if r in classes) != 1:
        raise LabelError(f"document {sealed.doc_id} is not wrapped to exactly one key of its "
                         "label class")


def _changed_meanwhile(sealed: Sealed, class_keys: ClassKeys) -> None:
    """Before calling a header tampered with: were the class keys or the
    policy read before another process rotated a key or installed a
    version? Then the document may simply be newer than what this process
    knows -- a retry, not an incident."""
    if class_keys.refresh_if_changed():
        raise StorageError(f"document {sealed.doc_id} changed while this operation ran",
                           hint="run the command again")
