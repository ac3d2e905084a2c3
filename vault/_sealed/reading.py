"""Reading a sealed document, checked in two steps (docs/DESIGN.md §4.2).

:func:`read_sealed` needs no key. It opens the version of the document the
verified audit log records, and checks that its header is byte for byte
the one recorded (SHA-256): a document rolled back to an earlier copy,
replaced, or deleted is an integrity failure, whatever its signatures say
-- unless the log moved on meanwhile: a version another process removed
after relabelling, rewrapping or shredding the document, or whose header a
shred overwrote under the reader, is followed to the one the log records
now, before the decision is made (``current``).
Then it checks the header's shape (one label stanza, one metadata stanza,
otherwise only recipient stanzas) and the label's signature. That is all
``info``/``shred`` need, and it happens before the audit record is written.

:func:`unlock` runs after the record. It unwraps the file key with the
caller's class identities, which also verifies the header MAC, then checks
what only the file key can show: the label's binding, the metadata stanza
the label was signed over, and that every recipient stanza is one the vault
makes for the document's class key or a recovery recipient. The payload is
checked against the label's content digest as it is read
(:class:`PayloadDigest`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from vault._sealed.label import LABEL_STANZA, SignedLabel
from vault._sealed.meta import META_STANZA, Metadata
from vault._sealed.recipients import PQ_STANZA, match_stanzas, pins_match, recipient_stanzas
from vault.age import Header, Stanza, read_header
from vault.age import PayloadDigest as _PayloadSink
from vault.age import unwrap_file_key as _unwrap
from vault.errors import (
    HeaderError,
    IntegrityError,
    LabelError,
    NoIdentityMatchError,
    NoKeyError,
    StateError,
    StorageError,
    UsageError,
    VaultError,
)
from vault.store.base import DOC_ID

if TYPE_CHECKING:  # pragma: no cover
    from vault._trust.state import DocRow
    from vault._trust.trusted import TrustedState
    from vault.identity import AgeKeyPair
    from vault.store.base import Backend

__all__ = ["PayloadDigest", "Sealed", "check_doc_id", "check_payload", "read_sealed", "unlock"]


def check_doc_id(doc_id: str) -> str:
    if not isinstance(doc_id, str):
        # Its type only: the object (a DocumentInfo) may hold a title.
        raise UsageError(f"a document id is a string, not {type(doc_id).__name__}",
                         hint="pass the document's id: DocumentInfo.id, as 'vault ls' shows")
    if not DOC_ID.match(doc_id):
        raise UsageError(f"{doc_id[:40]!r} is not a document id",
                         hint="document ids are 16 letters and digits, as 'vault ls' shows")
    return doc_id


@dataclass(frozen=True)
class Sealed:
    """A document whose header is the recorded one and whose label verified
    (file key unknown)."""

    row: DocRow
    header: Header  # MAC unverified until unlock()
    header_size: int
    label: SignedLabel
    meta: Stanza

    @property
    def doc_id(self) -> str:
        return self.row.doc_id


def check_shape(stanzas: Sequence[Stanza], doc_id: str) -> tuple[Stanza, Stanza]:
    """The label and metadata stanzas; LabelError if the header has any
    stanza the vault does not write."""
    labels = [s for s in stanzas if s.type == LABEL_STANZA]
    metas = [s for s in stanzas if s.type == META_STANZA]
    others = [s for s in stanzas
              if s.type not in (LABEL_STANZA, META_STANZA, "X25519", PQ_STANZA)]
    if len(labels) != 1 or len(metas) != 1:
        raise LabelError(f"document {doc_id} does not carry exactly one label and one "
                         "metadata stanza")
    if others or len(metas) + len(labels) == len(stanzas):
        raise LabelError(f"document {doc_id} has recipient stanzas the vault did not write")
    return labels[0], metas[0]


# How many times a read before the decision follows a document another
# process changed meanwhile before it gives up (see read_sealed).
READ_TRIES = 3


def _recorded(trusted: TrustedState, doc_id: str) -> DocRow:
    row = trusted.doc(doc_id)
    if row is None:
        raise UsageError(f"no document {doc_id} in this vault",
                         hint="'vault ls' lists the documents you may see")
    if row.shredded:
        raise UsageError(f"document {doc_id} was shredded", hint="'vault audit log --doc "
                         f"{doc_id}' shows when and by whom")
    return row


def _missing(doc_id: str) -> StateError:
    return StateError(f"document {doc_id} is missing from the vault, although the audit log "
                      "records it", hint="someone deleted it; restore it from a backup, and "
                      "treat it as an incident")


def _overtaken(trusted: TrustedState, row: DocRow, gone: VaultError) -> None:
    """After the recorded version ``row`` could not be read (gone, or not
    its recorded header any more): catch the state up with the log. The
    writer that relabelled, rewrapped or shredded the document recorded the
    new state before it removed or overwrote the old version, so the log
    tells; if it still records ``row``'s version, raise ``gone``: the alarm.
    Unless the catch-up met records out of place (OutOfPlace): the change
    may be among the records they moved, which do not count here -- what
    the state says of the document then, or of the policy the caller
    decides under, is no ground for an alarm or a decision."""
    trusted.catch_up()
    trusted.refuse_out_of_place()
    now = trusted.doc(row.doc_id)
    if now is not None and not now.shredded and now.version == row.version:
        raise gone


def _header_of(f: BinaryIO, row: DocRow) -> tuple[Header, bytes]:
    """The header ``f`` starts with and its bytes, if they are the ones
    ``row`` records (else StateError); ``f`` is left at the payload."""
    header = read_header(f)
    raw = header.encode()
    if hashlib.sha256(raw).hexdigest() != row.header:
        raise StateError(f"document {row.doc_id} is not the version the audit log records: it "
                         "was rolled back or replaced", hint="restore it from a backup; treat "
                         "it as an incident")
    return header, raw


def _recorded_header(backend: Backend, trusted: TrustedState, doc_id: str,
                     current: bool) -> tuple[DocRow, BinaryIO, Header, bytes]:
    """The version of ``doc_id`` the trusted state records, opened, and its
    header, byte for byte the recorded one; the file is positioned at the
    payload. Once open, a version stays readable whoever removes it (a
    folder's open file; a PostgreSQL snapshot), but a folder's shred
    overwrites its header in place, through the same file. With
    ``current``, a version removed or shredded before its header was read
    is followed to the one the log records now (read_sealed)."""
    for _ in range(READ_TRIES):
        row = _recorded(trusted, doc_id)
        try:
            f = backend.open_document(doc_id, row.version)
        except FileNotFoundError:
            gone: VaultError = _missing(doc_id)
        else:
            try:
                header, raw = _header_of(f, row)
            except BaseException as e:
                f.close()
                if not isinstance(e, HeaderError | StateError):
                    raise
                # Random bytes where the header was: a shred, if the log
                # says so (it leaves the rest of the file, the payload).
                gone = e
            else:
                return row, f, header, raw
        if not current:
            raise gone
        _overtaken(trusted, row, gone)
    _recorded(trusted, doc_id)  # shredded at the last: say so
    raise StorageError(f"document {doc_id} changed again and again while it was being read",
                       hint="run the command again")


def read_sealed(backend: Backend, trusted: TrustedState, doc_id: str, *,
                current: bool = False) -> tuple[Sealed, BinaryIO]:
    """Open the recorded version of a document and verify what needs no
    key. Returns the checked header and the file, positioned at the
    payload (the caller closes it).

    ``current``: the caller reads before its decision, which it makes on
    the label read here. Another process may relabel, rewrap or shred the
    document between the moment this state was read and its header read,
    removing the version read or overwriting its header: then the state is
    caught up with the log and the version it records now is read
    (shredded: UsageError; changed every time, :data:`READ_TRIES` times:
    StorageError, run again); records out of place met on catching up
    stop it (OutOfPlace: nothing may be decided). Only a version the log
    still records, gone or not its recorded header, is the integrity
    alarm. Without ``current``
    (a caller that already decided on what it read, or holds the vault's
    lock), it is that alarm at once. The caller decides under the policy
    the state holds after this returns: catching up may have installed a
    new version of it."""
    check_doc_id(doc_id)
    row, f, header, raw = _recorded_header(backend, trusted, doc_id, current)
    try:
        label_stanza, meta = check_shape(header.stanzas, doc_id)
        if row.pins is not None and not pins_match(recipient_stanzas(header), row.pins):
            # FORMAT.md §14.6: the header is the one recorded, but the record
            # named other stanzas than it holds. Needs no key: doctor sees it.
            raise LabelError(
                f"document {doc_id} holds recipient stanzas other than those its record "
                "names", hint="someone who could open it re-encrypted it for another key; "
                "treat as an incident")
        from vault._primitives import canonical_json

        label = SignedLabel.verify(label_stanza, trusted.manifest.vault_id, doc_id)
        recorded = (row.statement_text.encode("utf-8") if row.statement_text
                    else canonical_json(row.statement))  # the store keeps it canonical
        if label.statement_bytes != recorded:
            raise LabelError(f"document {doc_id} carries a label other than the one recorded")
    except BaseException:
        f.close()
        raise
    return Sealed(row, header, len(raw), label, meta), f


def unlock(sealed: Sealed, identities: Sequence[AgeKeyPair],
           trusted: TrustedState) -> tuple[bytes, Metadata]:
    """Unwrap the file key and verify everything bound to it.

    Raises NoKeyError (none of ``identities`` opens it), HMACError (header
    modified) or LabelError (label not bound to this key, stanza added)."""
    ck = trusted.key(sealed.row.key_id)
    if not identities:
        raise NoKeyError(f"you hold no key for documents of class {sealed.label.cls}",
                         hint="ask the officer whether your clearance covers it")
    try:
        file_key = _unwrap(sealed.header, list(identities))
    except NoIdentityMatchError:
        held = {str(i.recipient) for i in identities}
        if ck is not None and ck.recipient in held:
            raise LabelError(
                f"document {sealed.doc_id} is not wrapped to the key of its label class",
                hint="its header was altered; restore it from a backup or the recovery key",
            ) from None
        raise
    sealed.label.verify_binding(file_key)
    sealed.label.check_meta(sealed.meta)
    # The class key first: one of the caller's class identities opened the
    # file, so a stanza for it is there, and post-quantum stanzas are
    # matched by count, in this order (a recovery recipient added since the
    # document was sealed has no stanza in it).
    allowed = ([ck.recipient] if ck is not None else []) + sorted(trusted.recovery_ever())
    matched, strangers = match_stanzas(sealed.header.stanzas, file_key, allowed)
    if strangers:
        raise LabelError(
            f"document {sealed.doc_id} has a recipient stanza added by someone the vault "
            "does not authorise",
            hint="someone who could open it re-encrypted it for another key; treat as an incident",
        )
    if ck is None or ck.recipient not in matched:
        raise LabelError(f"document {sealed.doc_id} is not wrapped to its class key")
    return file_key, Metadata.open(sealed.meta, file_key, sealed.doc_id)


class PayloadDigest(_PayloadSink):
    """SHA-256 and length of the payload bytes (a payload sink of
    :func:`vault.age.decrypt_payload`), checked against the label's content
    commitment once all of them went by."""

    __slots__ = ()

    def check(self, sealed: Sealed) -> None:
        check_payload(sealed, self.hexdigest(), self.size)


def holds_payload(f: BinaryIO, content: object) -> bool:
    """Does the stored file ``f`` end with the payload a label's ``content``
    commits to (its SHA-256 and size, §11.4)? Every version of a document,
    and what a shred leaves of one (its header overwritten), does; a file of
    anything else renamed to its name does not. ``f`` must be seekable."""
    from vault.age import hash_payload

    if not isinstance(content, dict) or type(content.get("size")) is not int \
            or not isinstance(content.get("payload"), str):
        return False
    size = content["size"]
    end = f.seek(0, 2)
    if size > end:
        return False
    f.seek(end - size)
    sha, got = hash_payload(f)
    return got == size and hmac.compare_digest(sha, content["payload"])


def labelled_header_sha(f: BinaryIO) -> str | None:
    """SHA-256 (hex) of the age header ``f`` starts with, as records name
    it, if it is a document's -- it carries a label stanza (§11) -- else
    None: a keyring entry, another file or bytes that are no age header."""
    try:
        header = read_header(f)
    except (OSError, VaultError, ValueError):
        return None
    if not any(st.type == LABEL_STANZA for st in header.stanzas):
        return None
    return hashlib.sha256(header.encode()).hexdigest()


def check_payload(sealed: Sealed, sha256_hex: str, size: int) -> None:
    """Refuse a payload whose SHA-256 or size is not what the label committed to."""
    content = sealed.label.content
    if size != content["size"] or not hmac.compare_digest(sha256_hex, content["payload"]):
        raise IntegrityError(f"document {sealed.doc_id}: its content is not the one its "
                             "label was signed over", hint="someone replaced it; restore it "
                             "from a backup, and treat it as an incident")
