"""The X25519 recipient type (docs/FORMAT.md §5.1, C2SP age.md "X25519").

Stanza: ``-> X25519 <base64 ephemeral share>`` with a 32-byte body, the file
key sealed by ChaCha20-Poly1305 (zero nonce) under
``HKDF-SHA-256(ikm=shared secret, salt=share || recipient,
info="age-encryption.org/v1/X25519")``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault.age import _bech32
from vault.age._format import FILE_KEY_SIZE, Stanza, b64encode, hkdf, recipient_arg
from vault.errors import HeaderError

__all__ = ["X25519Identity", "X25519Recipient"]

STANZA_TYPE = "X25519"
_INFO = b"age-encryption.org/v1/X25519"
_RECIPIENT_HRP = "age"
_IDENTITY_HRP = "age-secret-key-"
_ZERO_NONCE = bytes(12)
_KEY_SIZE = 32
_WRAPPED_SIZE = FILE_KEY_SIZE + 16


class X25519Recipient(_bech32.PublicKeyText):
    """An ``age1…`` public key: anyone can encrypt to it."""

    stanza_type = STANZA_TYPE
    _hrp = _RECIPIENT_HRP

    def __init__(self, public_key: X25519PublicKey) -> None:
        self._key = public_key
        self._raw = public_key.public_bytes_raw()
        self._text = None  # the age1… form, computed once

    @classmethod
    def from_bytes(cls, raw: bytes) -> X25519Recipient:
        """From the 32-byte Montgomery u-coordinate."""
        if len(raw) != _KEY_SIZE:
            raise ValueError("an X25519 public key is 32 bytes")
        return cls(X25519PublicKey.from_public_bytes(raw))

    @classmethod
    def from_string(cls, text: str) -> X25519Recipient:
        """Parse ``age1…``; raises ValueError if it is not an X25519 recipient."""
        return cls.from_bytes(_bech32.decode_key(text, _RECIPIENT_HRP, _KEY_SIZE,
                                                  "an X25519 recipient (age1…)"))

    def to_bytes(self) -> bytes:
        return self._raw

    def wrap(self, file_key: bytes) -> list[Stanza]:
        return self.wrap_with(file_key, X25519PrivateKey.generate())

    def wrap_with(self, file_key: bytes, ephemeral: X25519PrivateKey) -> list[Stanza]:
        """The stanza for a given ephemeral secret. age requires a fresh one
        per stanza and file; the vault derives it from the file key, which
        is fresh per file (docs/FORMAT.md §11.1)."""
        share = ephemeral.public_key().public_bytes_raw()
        shared = ephemeral.exchange(self._key)
        wrap_key = hkdf(shared, share + self._raw, _INFO)
        body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
        return [Stanza(STANZA_TYPE, [b64encode(share)], body)]


    def __repr__(self) -> str:
        return f"X25519Recipient({str(self)!r})"



class X25519Identity:
    """An ``AGE-SECRET-KEY-1…`` secret key, which unwraps X25519 stanzas."""

    stanza_type = STANZA_TYPE

    def __init__(self, private_key: X25519PrivateKey) -> None:
        self._key = private_key
        self.recipient = X25519Recipient(private_key.public_key())

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_bytes(cls, raw: bytes) -> X25519Identity:
        """From the 32 secret bytes (low level: keep them secret)."""
        if len(raw) != _KEY_SIZE:
            raise ValueError("an X25519 secret key is 32 bytes")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def from_string(cls, text: str) -> X25519Identity:
        """Parse ``AGE-SECRET-KEY-1…``; raises ValueError (without echoing it)."""
        hrp, data = _bech32.decode(text)
        if hrp != _IDENTITY_HRP or len(data) != _KEY_SIZE or text != text.upper():
            raise ValueError("not an X25519 identity (AGE-SECRET-KEY-1…)")
        return cls.from_bytes(data)

    def to_bytes(self) -> bytes:
        """The 32 secret bytes (low level: keep them secret)."""
        return self._key.private_bytes_raw()

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue
            file_key = self._unwrap_one(stanza)
            if file_key is not None:
                return file_key
        return None

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        share = recipient_arg(stanza, "share", _KEY_SIZE, _WRAPPED_SIZE)
        try:
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(share))
        except ValueError:
            # cryptography refuses an all-zero shared secret (low-order share).
            raise HeaderError("X25519 share is a low-order point") from None
        wrap_key = hkdf(shared, share + self.recipient.to_bytes(), _INFO)
        try:
            return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            return None  # addressed to someone else

    def __str__(self) -> str:
        return _bech32.encode(_IDENTITY_HRP, self.to_bytes()).upper()

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={str(self.recipient)!r})"
