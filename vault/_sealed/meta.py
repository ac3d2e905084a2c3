"""The metadata stanza: what only a reader may learn (docs/FORMAT.md §11.3).

``-> vault/v2/meta`` carries the file name, title, content type and
plaintext size, encrypted with ChaCha20-Poly1305 under a key derived from
the file key, padded so that its length reveals little about the names.
The label commits to this stanza's body (its SHA-256), so not even another
holder of the file key can change it unseen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault._primitives import canonical_json, hkdf, parse_canonical_json
from vault._text import free_character, is_text
from vault.age import Stanza
from vault.errors import LabelError, UsageError

__all__ = ["MAX_TITLE", "META_STANZA", "Metadata"]

META_STANZA = "vault/v2/meta"
_META_INFO = b"vault/v1 metadata"
_META_PAD = 256  # the plaintext is padded to a multiple of this (hides name lengths)
MAX_TITLE = 1000  # characters
MAX_NAME = 255  # characters of a file name or content type
_FIELDS = {"filename", "title", "content_type", "size"}


def _text_ok(value: Any, limit: int, *, free: bool = False, read: bool = False) -> bool:
    # Read, a title's joiner may stand anywhere, as an earlier release wrote
    # it: refusing it would make the document unreadable, and it is shown
    # escaped where it joins nothing (vault/_text.py).
    return value is None or (isinstance(value, str) and 0 < len(value) <= limit
                             and (all(map(free_character, value)) if read and free
                                  else is_text(value, free=free)))


@dataclass(frozen=True)
class Metadata:
    """What only a reader of the document may learn about it."""

    filename: str | None
    title: str | None
    content_type: str | None
    size: int  # plaintext bytes

    def check(self) -> Metadata:
        """UsageError for a value that is out of bounds (docs/FORMAT.md §11.3)."""
        # A title is free text (a no-break space, a joiner: vault/_text.py);
        # a file name and a content type are names, the stricter rule.
        if not _text_ok(self.title, MAX_TITLE, free=True):
            raise UsageError(f"a title is 1 to {MAX_TITLE} printable characters")
        for what, value in (("file name", self.filename), ("content type", self.content_type)):
            if not _text_ok(value, MAX_NAME):
                raise UsageError(f"a {what} is 1 to {MAX_NAME} printable characters")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "title": self.title,
                "content_type": self.content_type, "size": self.size}

    @classmethod
    def from_dict(cls, d: Any) -> Metadata:
        if not isinstance(d, dict) or set(d) != _FIELDS:
            raise ValueError("bad metadata")
        size = d["size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 1 << 62:
            raise ValueError("bad metadata")
        meta = cls(d["filename"], d["title"], d["content_type"], size)
        if not _text_ok(meta.title, MAX_TITLE, free=True, read=True) or not all(
                _text_ok(v, MAX_NAME) for v in (meta.filename, meta.content_type)):
            raise ValueError("bad metadata")
        return meta

    def seal(self, file_key: bytes, doc_id: str) -> Stanza:
        plain = canonical_json(self.to_dict())
        plain += b" " * (-len(plain) % _META_PAD)
        nonce = os.urandom(12)
        aead = ChaCha20Poly1305(hkdf(file_key, b"", _META_INFO))
        return Stanza(META_STANZA, [], nonce + aead.encrypt(nonce, plain, _aad(doc_id)))

    @classmethod
    def open(cls, stanza: Stanza, file_key: bytes, doc_id: str) -> Metadata:
        body = stanza.body
        try:
            if stanza.args or len(body) < 12 + 16:
                raise ValueError
            aead = ChaCha20Poly1305(hkdf(file_key, b"", _META_INFO))
            plain = aead.decrypt(body[:12], body[12:], _aad(doc_id))
            return cls.from_dict(parse_canonical_json(plain.rstrip(b" ")))
        except (InvalidTag, ValueError):
            raise LabelError(f"document {doc_id}: the metadata stanza is damaged") from None


def _aad(doc_id: str) -> bytes:
    return b"vault/v1 metadata\n" + doc_id.encode("ascii")
