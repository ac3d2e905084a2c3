"""The label stanza of a sealed document (docs/FORMAT.md §11.2).

``-> vault/v2/label`` carries, in clear, the canonical JSON object::

    {"binding": B64, "sig": B64, "statement": {...}}

The *statement* names the vault, the document, the label, who sealed it
when, who signed it under which policy version, and the **content**: the
SHA-256 and length of the payload as stored, and the SHA-256 of the
metadata stanza's body. ``binding`` is ``HMAC-SHA-256(HKDF(file key, "vault/v1
label binding"), statement)`` and ``sig`` the signer's Ed25519 signature over
``binding || statement``.

So nobody -- not even a reader who holds the file key -- changes the label,
the plaintext, the metadata or the payload under a signed label unseen: the
signature covers the content digests, and the payload is checked against
them as it is read. The digests are over ciphertext, so they reveal nothing
about the plaintext to people without the key, cost no second pass (the
payload is hashed while it is written or read), and stay valid when the
document is rewrapped (the payload and metadata are carried byte for byte).
Whether the signer was *entitled* to make the label is decided from the
audit log (:mod:`vault._trust.journal`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vault._primitives import (
    b64,
    canonical_json,
    hkdf,
    parse_canonical_json,
    parse_signing_key,
    sign,
    unb64,
    verify,
)
from vault._trust.classes import LabelClass
from vault.age import Stanza
from vault.errors import LabelError

if TYPE_CHECKING:  # pragma: no cover
    from vault.identity import UserIdentity
    from vault.policy import Label

__all__ = ["LABEL_STANZA", "LabelStanza", "SignedLabel", "content_of"]

LABEL_STANZA = "vault/v2/label"
_BINDING_INFO = b"vault/v1 label binding"
STATEMENT_KEYS = frozenset({"vault", "doc", "label", "sealed_at", "sealed_by", "signer",
                            "policy", "action", "content"})


def _binding(file_key: bytes, statement: bytes) -> bytes:
    return hmac.new(hkdf(file_key, b"", _BINDING_INFO), statement, hashlib.sha256).digest()


def _well_formed_content(content: Any) -> bool:
    """What :func:`content_of` makes (docs/FORMAT.md §11.4): two lowercase
    SHA-256 hex digests and an integer size of at least 16."""
    return (isinstance(content, dict) and set(content) == {"payload", "size", "meta"}
            and all(isinstance(content[k], str) and len(content[k]) == 64
                    and not content[k].strip("0123456789abcdef")
                    for k in ("payload", "meta"))
            and type(content["size"]) is int and content["size"] >= 16)


def content_of(payload_sha256: str, payload_size: int, meta: Stanza) -> dict[str, Any]:
    """The ``content`` member: what the label commits to."""
    return {"payload": payload_sha256, "size": payload_size,
            "meta": hashlib.sha256(meta.body).hexdigest()}


@dataclass(frozen=True)
class SignedLabel:
    """A label stanza whose signature verified; its binding to the file
    key is checked once the key is known (:meth:`verify_binding`)."""

    statement: dict[str, Any]
    label: Label
    binding: bytes
    stanza: Stanza = field(repr=False)
    #: the statement's canonical JSON, as signed
    statement_bytes: bytes = field(default=b"", repr=False, compare=False)

    @property
    def doc_id(self) -> str:
        return str(self.statement["doc"])

    @property
    def cls(self) -> LabelClass:
        return LabelClass.of(self.label)

    @property
    def signer(self) -> str:
        return str(self.statement["signer"]["name"])

    @property
    def content(self) -> dict[str, Any]:
        return dict(self.statement["content"])

    def verify_binding(self, file_key: bytes) -> None:
        want = _binding(file_key, canonical_json(self.statement))
        if not hmac.compare_digest(want, self.binding):
            raise LabelError(f"document {self.doc_id}: the label is not bound to this document")

    def check_meta(self, meta: Stanza) -> None:
        if hashlib.sha256(meta.body).hexdigest() != self.content["meta"]:
            raise LabelError(f"document {self.doc_id}: its metadata is not the one its label "
                             "was signed over")

    @classmethod
    def verify(cls, stanza: Stanza, vault_id: str, doc_id: str) -> SignedLabel:
        """Parse the label stanza of document ``doc_id`` and check its
        signature against the signing key it names. No file key is needed."""
        from vault.policy import Label

        try:
            if stanza.args:
                raise ValueError
            outer = parse_canonical_json(stanza.body)
            st = outer["statement"]
            if set(outer) != {"statement", "binding", "sig"} or not isinstance(st, dict) \
                    or set(st) != STATEMENT_KEYS:
                raise ValueError
            binding, sig = unb64(outer["binding"], 32), unb64(outer["sig"], 64)
            label = Label.from_dict(st["label"])
            if canonical_json(label.to_dict()) != canonical_json(st["label"]):
                raise ValueError
            if not _well_formed_content(st["content"]):
                raise ValueError
            signer = st["signer"]
            if not isinstance(signer, dict) or set(signer) != {"name", "signing_key"}:
                raise ValueError
            key = parse_signing_key(signer["signing_key"])
        except (ValueError, TypeError, KeyError):
            raise LabelError(f"document {doc_id}: the label stanza is malformed") from None
        if st["vault"] != vault_id:
            raise LabelError(f"document {doc_id} belongs to another vault",
                             hint="it was copied in from elsewhere; import it through its own "
                                  "vault")
        if st["doc"] != doc_id:
            raise LabelError(f"document {doc_id} carries the label of another document")
        if label.classified_by != signer["name"]:
            raise LabelError(f"document {doc_id}: the label's signer is not its classifier")
        signed = canonical_json(st)
        if not verify(key, "label", binding + signed, sig):
            raise LabelError(f"document {doc_id}: the label signature does not verify")
        return cls(st, label, binding, stanza, signed)


class LabelStanza:
    """An age ``Recipient``-like maker of the label stanza, computed from the
    file key when the header is built; or an existing one, carried over."""

    def __init__(self, statement: dict[str, Any], signer: UserIdentity | None = None,
                 keep: SignedLabel | None = None) -> None:
        self.statement = statement
        self._signer = signer
        self._keep = keep

    @classmethod
    def carry(cls, label: SignedLabel) -> LabelStanza:
        return cls(label.statement, keep=label)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        if self._keep is not None:
            return [self._keep.stanza]
        assert self._signer is not None
        st = canonical_json(self.statement)
        binding = _binding(file_key, st)
        outer = {"statement": self.statement, "binding": b64(binding),
                 "sig": b64(sign(self._signer.signing_key, "label", binding + st))}
        return [Stanza(LABEL_STANZA, [], canonical_json(outer))]
