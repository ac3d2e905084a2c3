"""The post-quantum hybrid recipient type (docs/FORMAT.md §5.3, C2SP age.md
"The MLKEM768-X25519 (i.e. X-Wing) hybrid post-quantum recipient type").

Stanza: ``-> mlkem768x25519 <base64 enc>`` with a 32-byte body, where
``enc || body = HPKE.SealBase(pkR = recipient, info =
"age-encryption.org/mlkem768x25519", aad = "", pt = file key)`` with the
MLKEM768-X25519 KEM, HKDF-SHA256 and ChaCha20Poly1305. The KEM and HPKE are
``cryptography``'s; this module only encodes keys and checks stanzas.

An identity is a 32-byte seed. The KEM's key pair is expanded from it as
filippo.io/hpke-pq specifies (``expandKey``): ``SHAKE256(seed, 96)``, of which
the first 64 bytes are the ML-KEM-768 seed and the last 32 the X25519 secret.
The recipient is the 1184-byte ML-KEM encapsulation key followed by the
32-byte X25519 public key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from vault.age import _bech32
from vault.age._format import FILE_KEY_SIZE, Stanza, b64encode, recipient_arg
from vault.errors import HeaderError

__all__ = ["MLKEM768X25519Identity", "MLKEM768X25519Recipient"]

STANZA_TYPE = "mlkem768x25519"
_INFO = b"age-encryption.org/mlkem768x25519"
_RECIPIENT_HRP = "age1pq"
_IDENTITY_HRP = "age-secret-key-pq-"
_SEED_SIZE = 32  # Nsk
_MLKEM_SEED_SIZE = 64  # ML-KEM-768 d || z
_MLKEM_EK_SIZE = 1184
_MLKEM_CT_SIZE = 1088
_X25519_SIZE = 32
_PUBLIC_SIZE = _MLKEM_EK_SIZE + _X25519_SIZE  # Npk = 1216
_ENC_SIZE = _MLKEM_CT_SIZE + _X25519_SIZE  # Nenc = 1120
_WRAPPED_SIZE = FILE_KEY_SIZE + 16
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class MLKEM768X25519Recipient(_bech32.PublicKeyText):
    """An ``age1pq1…`` public key: anyone can encrypt to it, quantum-safely."""

    stanza_type = STANZA_TYPE
    _hrp = _RECIPIENT_HRP

    def __init__(self, mlkem: MLKEM768PublicKey, x25519: X25519PublicKey) -> None:
        self._raw = mlkem.public_bytes_raw() + x25519.public_bytes_raw()
        self._key = hpke.MLKEM768X25519PublicKey(mlkem, x25519)
        self._text = None  # the age1pq1… form, computed once

    @classmethod
    def from_bytes(cls, raw: bytes) -> MLKEM768X25519Recipient:
        """From the 1216-byte encoding: ML-KEM-768 encapsulation key || X25519 key."""
        if len(raw) != _PUBLIC_SIZE:
            raise ValueError("an mlkem768x25519 public key is 1216 bytes")
        try:
            mlkem = MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM_EK_SIZE])
        except ValueError:
            # FIPS 203 input check: coefficients must be reduced modulo q.
            raise ValueError("not a valid ML-KEM-768 encapsulation key") from None
        return cls(mlkem, X25519PublicKey.from_public_bytes(raw[_MLKEM_EK_SIZE:]))

    @classmethod
    def from_string(cls, text: str) -> MLKEM768X25519Recipient:
        """Parse ``age1pq1…``; raises ValueError if it is not such a recipient."""
        return cls.from_bytes(_bech32.decode_key(text, _RECIPIENT_HRP, _PUBLIC_SIZE,
                                                  "an mlkem768x25519 recipient (age1pq1…)"))

    def to_bytes(self) -> bytes:
        return self._raw

    def wrap(self, file_key: bytes) -> list[Stanza]:
        # Suite.encrypt returns enc || ciphertext; the KEM draws fresh
        # randomness for every call, so every stanza has its own enc.
        sealed = _SUITE.encrypt(file_key, self._key, info=_INFO)
        enc, body = sealed[:_ENC_SIZE], sealed[_ENC_SIZE:]
        return [Stanza(STANZA_TYPE, [b64encode(enc)], body)]


    def __repr__(self) -> str:
        return f"MLKEM768X25519Recipient({str(self)[:24]!r}…)"



def _expand(seed: bytes) -> tuple[MLKEM768PrivateKey, X25519PrivateKey]:
    # filippo.io/hpke-pq expandKey: SHAKE256(seed, KEM.Nseed + Group.Nseed).
    shake = hashes.Hash(hashes.SHAKE256(_MLKEM_SEED_SIZE + _X25519_SIZE))
    shake.update(seed)
    full = shake.finalize()
    return (
        MLKEM768PrivateKey.from_seed_bytes(full[:_MLKEM_SEED_SIZE]),
        X25519PrivateKey.from_private_bytes(full[_MLKEM_SEED_SIZE:]),
    )


class MLKEM768X25519Identity:
    """An ``AGE-SECRET-KEY-PQ-1…`` secret key, which unwraps mlkem768x25519 stanzas."""

    stanza_type = STANZA_TYPE

    def __init__(self, seed: bytes) -> None:
        if len(seed) != _SEED_SIZE:
            raise ValueError("an mlkem768x25519 secret key is a 32-byte seed")
        self._seed = bytes(seed)
        mlkem, x25519 = _expand(self._seed)
        self._x25519 = x25519
        self._key = hpke.MLKEM768X25519PrivateKey(mlkem, x25519)
        self.recipient = MLKEM768X25519Recipient(mlkem.public_key(), x25519.public_key())

    @classmethod
    def generate(cls) -> MLKEM768X25519Identity:
        return cls(os.urandom(_SEED_SIZE))

    @classmethod
    def from_bytes(cls, seed: bytes) -> MLKEM768X25519Identity:
        """From the 32-byte seed (low level: keep it secret)."""
        return cls(seed)

    @classmethod
    def from_string(cls, text: str) -> MLKEM768X25519Identity:
        """Parse ``AGE-SECRET-KEY-PQ-1…``; raises ValueError (without echoing it)."""
        hrp, data = _bech32.decode(text)
        if hrp != _IDENTITY_HRP or len(data) != _SEED_SIZE or text != text.upper():
            raise ValueError("not an mlkem768x25519 identity (AGE-SECRET-KEY-PQ-1…)")
        return cls(data)

    def to_bytes(self) -> bytes:
        """The 32-byte seed (low level: keep it secret)."""
        return self._seed

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != STANZA_TYPE:
                continue  # including "MLKEM768X25519": types are case-sensitive
            file_key = self._unwrap_one(stanza)
            if file_key is not None:
                return file_key
        return None

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        enc = recipient_arg(stanza, "enc", _ENC_SIZE, _WRAPPED_SIZE)
        try:
            # The HPKE open below would only fail its tag on an all-zero X25519
            # secret; age (and the CCTV vectors) make that a header failure, as
            # for X25519 stanzas, so ask cryptography about the share first.
            self._x25519.exchange(X25519PublicKey.from_public_bytes(enc[_MLKEM_CT_SIZE:]))
        except ValueError:
            raise HeaderError("mlkem768x25519 X25519 share is a low-order point") from None
        try:
            return _SUITE.decrypt(enc + stanza.body, self._key, info=_INFO)
        except InvalidTag:
            return None  # addressed to someone else (ML-KEM decapsulation is implicit-reject)

    def __str__(self) -> str:
        return _bech32.encode(_IDENTITY_HRP, self._seed).upper()

    def __repr__(self) -> str:
        return f"MLKEM768X25519Identity(recipient={str(self.recipient)[:24]!r}…)"
