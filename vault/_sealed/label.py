"""The label and metadata stanzas of a sealed document (docs/FORMAT.md
§11.2 and §11.3).

Both are custom stanzas in the document's age header, so the header MAC
covers them and stock age ignores them.

``-> vault/v1/label`` carries, in clear, a canonical JSON object::

    {"statement": {...}, "binding": B64, "sig": B64[, "approval": {...}]}

``statement`` names the vault, the document, the label, who sealed it when,
who signed it under which policy version. ``binding`` is
``HMAC-SHA-256(HKDF(file key, "vault/v1 label binding"), statement)`` and
``sig`` the signer's Ed25519 signature over ``binding || statement``. The
signature stops anyone without the signer's key from changing the label;
the binding ties it to this document's file key, so a valid label cannot be
moved onto another document, even by someone who can open both.

``-> vault/v1/meta`` carries the file name, title, content type, size and
plaintext SHA-256, encrypted with ChaCha20-Poly1305 under a key derived from
the file key: readable only by whoever can open the document.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault._primitives import (
    b64,
    canonical_json,
    hkdf32,
    parse_canonical_json,
    parse_signing_key,
    sign,
    unb64,
    verify,
)
from vault._trust.keys import LabelClass
from vault.age import Stanza
from vault.errors import LabelError

if TYPE_CHECKING:  # pragma: no cover
    from vault._trust.chain import PolicyChain
    from vault.identity import UserIdentity
    from vault.policy import Label

__all__ = ["LABEL_STANZA", "META_STANZA", "Metadata", "SignedLabel", "VaultStanzas"]

LABEL_STANZA = "vault/v1/label"
META_STANZA = "vault/v1/meta"
_BINDING_INFO = b"vault/v1 label binding"
_META_INFO = b"vault/v1 metadata"
_META_PAD = 256  # metadata plaintext is padded to a multiple of this (hides name lengths)
_STATEMENT_KEYS = {"vault", "doc", "label", "sealed_at", "sealed_by", "signer", "policy", "action"}


def _binding(file_key: bytes, statement: bytes) -> bytes:
    return hmac.new(hkdf32(file_key, _BINDING_INFO), statement, hashlib.sha256).digest()


@dataclass(frozen=True)
class SignedLabel:
    """A label stanza whose signature and signer were verified against the
    vault's policy chain; its binding to the file key is checked separately
    (:meth:`verify_binding`) once the key is known."""

    statement: dict[str, Any]
    label: Label
    binding: bytes
    stanza: Stanza = field(repr=False)

    @property
    def doc_id(self) -> str:
        return str(self.statement["doc"])

    @property
    def cls(self) -> LabelClass:
        return LabelClass.of(self.label)

    @property
    def signer(self) -> str:
        return str(self.statement["signer"]["name"])

    def verify_binding(self, file_key: bytes) -> None:
        want = _binding(file_key, canonical_json(self.statement))
        if not hmac.compare_digest(want, self.binding):
            raise LabelError(f"document {self.doc_id}: the label is not bound to this document")

    @classmethod
    def verify(cls, stanza: Stanza, chain: PolicyChain, doc_id: str) -> SignedLabel:
        """Parse and verify the label stanza of document ``doc_id``: it must
        name this vault and this document and carry a valid signature by a
        user of the policy version it names. No file key is needed."""
        try:
            if stanza.args:
                raise ValueError
            outer = parse_canonical_json(stanza.body)
            st = outer["statement"]
            if not isinstance(st, dict) or set(st) != _STATEMENT_KEYS:
                raise ValueError
            binding, sig = unb64(outer["binding"], 32), unb64(outer["sig"], 64)
            from vault.policy import Label

            label = Label.from_dict(st["label"])
            if canonical_json(label.to_dict()) != canonical_json(st["label"]):
                raise ValueError
            signer, approval = st["signer"], outer.get("approval")
            if set(outer) - {"statement", "binding", "sig", "approval"}:
                raise ValueError
        except (ValueError, TypeError, KeyError):
            raise LabelError("the label stanza is malformed") from None
        if st["vault"] != chain.manifest.vault_id:
            raise LabelError(
                f"document {doc_id} belongs to another vault",
                hint="it was copied in from elsewhere; import it through its own vault",
            )
        if st["doc"] != doc_id:
            raise LabelError(f"document {doc_id} carries the label of another document")
        payload = binding + canonical_json(st)
        _check_signer(chain, signer, st["policy"], label, payload, sig, "label")
        if approval is not None:
            if not isinstance(approval, dict):
                raise LabelError("the label's approval is malformed")
            try:
                asig = unb64(approval.get("sig"), 64)
            except ValueError:
                raise LabelError("the label's approval is malformed") from None
            _check_signer(chain, approval, st["policy"], None, payload, asig, "label approval")
        return cls(st, label, binding, stanza)


def _check_signer(chain: PolicyChain, signer: Any, policy_hash: Any, label: Label | None,
                  payload: bytes, sig: bytes, context: str) -> None:
    members = {"name", "signing_key"} | ({"sig"} if label is None else set())
    if not isinstance(signer, dict) or set(signer) != members:
        raise LabelError(f"the {context} names no valid signer")
    name, key = signer.get("name"), signer.get("signing_key")
    if not isinstance(name, str) or not isinstance(key, str) or not isinstance(policy_hash, str):
        raise LabelError(f"the {context} names no valid signer")
    if label is not None and label.classified_by != name:
        raise LabelError("the label's signer is not its classifier")
    if chain.user(name, key, policy_hash) is None:
        raise LabelError(
            f"the {context} is signed by a key the vault's policy does not authorise",
            hint="the document was signed outside this vault, or its label was forged",
        )
    try:
        ok = verify(parse_signing_key(key), context, payload, sig)
    except ValueError:
        ok = False
    if not ok:
        raise LabelError(f"the {context} signature does not verify")


@dataclass(frozen=True)
class Metadata:
    """What only a reader of the document may learn about it."""

    filename: str | None
    title: str | None
    content_type: str | None
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "title": self.title,
                "content_type": self.content_type, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, d: Any) -> Metadata:
        if not isinstance(d, dict) or set(d) != {"filename", "title", "content_type", "size",
                                                 "sha256"}:
            raise ValueError("bad metadata")
        for k in ("filename", "title", "content_type"):
            if d[k] is not None and not isinstance(d[k], str):
                raise ValueError("bad metadata")
        if not isinstance(d["size"], int) or not isinstance(d["sha256"], str):
            raise ValueError("bad metadata")
        return cls(d["filename"], d["title"], d["content_type"], d["size"], d["sha256"])

    def seal(self, file_key: bytes, doc_id: str) -> Stanza:
        plain = canonical_json(self.to_dict())
        plain += b" " * (-len(plain) % _META_PAD)
        nonce = os.urandom(12)
        aead = ChaCha20Poly1305(hkdf32(file_key, _META_INFO))
        return Stanza(META_STANZA, [], nonce + aead.encrypt(nonce, plain, _meta_aad(doc_id)))

    @classmethod
    def open(cls, stanza: Stanza, file_key: bytes, doc_id: str) -> Metadata:
        body = stanza.body
        try:
            if stanza.args or len(body) < 12 + 16:
                raise ValueError
            aead = ChaCha20Poly1305(hkdf32(file_key, _META_INFO))
            plain = aead.decrypt(body[:12], body[12:], _meta_aad(doc_id))
            return cls.from_dict(parse_canonical_json(plain.rstrip(b" ")))
        except (InvalidTag, ValueError):
            raise LabelError(f"document {doc_id}: the metadata stanza is damaged") from None


def _meta_aad(doc_id: str) -> bytes:
    return b"vault/v1 metadata\n" + doc_id.encode("ascii")


class VaultStanzas:
    """An age ``Recipient`` adding the label and metadata stanzas, computed
    from the file key when the header is built (seal, reclassify, rewrap).

    ``meta`` is either plaintext :class:`Metadata` (a new document) or the
    existing metadata stanza, carried over byte for byte."""

    def __init__(self, statement: dict[str, Any], signer: UserIdentity,
                 meta: Metadata | Stanza, approver: UserIdentity | None = None,
                 keep: SignedLabel | None = None) -> None:
        self.statement = statement
        self._signer = signer
        self._approver = approver
        self._meta = meta
        self._keep = keep

    @classmethod
    def carry(cls, label: SignedLabel, meta: Stanza) -> VaultStanzas:
        """Re-emit an existing label stanza unchanged (rewrapping)."""
        return cls(label.statement, None, meta, keep=label)  # type: ignore[arg-type]

    def wrap(self, file_key: bytes) -> list[Stanza]:
        doc_id = str(self.statement["doc"])
        meta = self._meta if isinstance(self._meta, Stanza) else self._meta.seal(file_key, doc_id)
        if self._keep is not None:
            return [self._keep.stanza, meta]
        st = canonical_json(self.statement)
        binding = _binding(file_key, st)
        outer: dict[str, Any] = {
            "statement": self.statement, "binding": b64(binding),
            "sig": b64(sign(self._signer.signing_key, "label", binding + st)),
        }
        if self._approver is not None:
            a = self._approver
            outer["approval"] = {"name": a.name, "signing_key": a.signing_public,
                                 "sig": b64(sign(a.signing_key, "label approval", binding + st))}
        return [Stanza(LABEL_STANZA, [], canonical_json(outer)), meta]
