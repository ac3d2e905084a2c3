"""X25519 stanzas whose ephemeral key is derived from the file key
(docs/FORMAT.md §11.1, docs/DESIGN.md §4.1).

The stanzas are standard age X25519 stanzas (C2SP age.md, "X25519 recipient
stanza"): stock ``age`` unwraps them like any other. The one difference is
where the ephemeral secret comes from::

    ephemeral secret = HKDF-SHA-256(ikm = file key, salt = recipient,
                                    info = "vault/v1 X25519 ephemeral")

It is fresh for every file (file keys are fresh CSPRNG output) and distinct
for every recipient, which is what age.md's "new ephemeral secret for each
stanza and each file" protects: the wrap key never seals two different file
keys. Rewrapping the same file key to the same recipient reproduces the same
stanza byte for byte.

That determinism is the point: anyone holding the file key can recompute the
stanza each authorised recipient must have, and so detect a stanza added by
someone else -- even by another holder of the file key, who can recompute
the header MAC but cannot make an X25519 stanza for an outsider look like
one for the class key.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vault._primitives import hkdf32
from vault.age import Stanza, X25519Recipient

__all__ = ["BoundX25519Recipient", "match_stanzas"]

_EPHEMERAL_INFO = b"vault/v1 X25519 ephemeral"
_AGE_INFO = b"age-encryption.org/v1/X25519"  # C2SP age.md, X25519 stanza
_ZERO_NONCE = bytes(12)


def _b64_unpadded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


class BoundX25519Recipient:
    """An age ``Recipient`` for an X25519 public key whose stanza is a
    deterministic function of (file key, recipient)."""

    def __init__(self, recipient: X25519Recipient) -> None:
        self.recipient = recipient
        self._raw = recipient.to_bytes()

    def wrap(self, file_key: bytes) -> list[Stanza]:
        secret = hkdf32(file_key, _EPHEMERAL_INFO, salt=self._raw)
        ephemeral = X25519PrivateKey.from_private_bytes(secret)
        share = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self._raw))
        wrap_key = hkdf32(shared, _AGE_INFO, salt=share + self._raw)
        body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
        return [Stanza("X25519", [_b64_unpadded(share)], body)]

    def __repr__(self) -> str:
        return f"BoundX25519Recipient({str(self.recipient)!r})"


def match_stanzas(
    stanzas: Sequence[Stanza], file_key: bytes, allowed: Iterable[X25519Recipient]
) -> tuple[list[X25519Recipient], list[int]]:
    """Pair each X25519 stanza with the authorised recipient it was made for.

    Returns ``(matched recipients, indexes of unmatched X25519 stanzas)``.
    A stanza matches a recipient only if it is byte-identical to the one
    :class:`BoundX25519Recipient` makes for that recipient and file key.
    """
    expected = {}
    for r in allowed:
        (stanza,) = BoundX25519Recipient(r).wrap(file_key)
        expected[stanza.args[0]] = (stanza.body, r)
    matched: list[X25519Recipient] = []
    strangers: list[int] = []
    for i, s in enumerate(stanzas):
        if s.type != "X25519":
            continue
        want = expected.get(s.args[0]) if len(s.args) == 1 else None
        if want is not None and hmac.compare_digest(want[0], s.body):
            matched.append(want[1])
        else:
            strangers.append(i)
    return matched, strangers
