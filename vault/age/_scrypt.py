"""The scrypt passphrase recipient type (docs/FORMAT.md §5.2).

Stanza: ``-> scrypt <base64 16-byte salt> <log2 N>`` with a 32-byte body,
the file key sealed by ChaCha20-Poly1305 (zero nonce) under
``scrypt(N=2**log2N, r=8, p=1, dkLen=32,
S="age-encryption.org/v1/scrypt" || salt, P=passphrase)``.

An scrypt stanza must be the only stanza of its header, so a passphrase-
encrypted file cannot also be opened by some other key the sender did not
mean to trust.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vault.age._format import FILE_KEY_SIZE, Stanza, b64decode, b64encode
from vault.errors import HeaderError

__all__ = ["MAX_WORK_FACTOR", "ScryptIdentity", "ScryptRecipient"]

STANZA_TYPE = "scrypt"
# docs/FORMAT.md §5.2: work factors above 22 (4 GiB of memory, many seconds of
# CPU) are refused on decryption, as stock age does by default, so that a
# hostile file cannot make us burn minutes of CPU or exhaust memory.
MAX_WORK_FACTOR = 22
DEFAULT_WORK_FACTOR = 18
_SALT_LABEL = b"age-encryption.org/v1/scrypt"
_SALT_SIZE = 16
_ZERO_NONCE = bytes(12)
_WRAPPED_SIZE = FILE_KEY_SIZE + 16
_DECIMAL = re.compile(r"[1-9][0-9]*")


def _check_passphrase(passphrase: str) -> bytes:
    if not isinstance(passphrase, str) or not passphrase:
        raise ValueError("the passphrase must be a non-empty string")
    return passphrase.encode("utf-8")


def _wrap_key(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=_SALT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
    return kdf.derive(passphrase)


class ScryptRecipient:
    """Encrypts to a passphrase. Must be the only recipient of a file."""

    stanza_type = STANZA_TYPE

    def __init__(self, passphrase: str, work_factor: int = DEFAULT_WORK_FACTOR) -> None:
        self._passphrase = _check_passphrase(passphrase)
        if not isinstance(work_factor, int) or not 1 <= work_factor <= MAX_WORK_FACTOR:
            raise ValueError(f"work_factor must be an integer from 1 to {MAX_WORK_FACTOR}")
        self.work_factor = work_factor

    def wrap(self, file_key: bytes) -> list[Stanza]:
        salt = os.urandom(_SALT_SIZE)
        key = _wrap_key(self._passphrase, salt, self.work_factor)
        body = ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)
        return [Stanza(STANZA_TYPE, [b64encode(salt), str(self.work_factor)], body)]

    def __repr__(self) -> str:
        return f"ScryptRecipient(work_factor={self.work_factor})"


class ScryptIdentity:
    """Decrypts files encrypted to a passphrase.

    ``max_work_factor`` bounds the work a file may demand (default
    MAX_WORK_FACTOR); a stanza asking for more is a HeaderError.
    """

    stanza_type = STANZA_TYPE

    def __init__(self, passphrase: str, max_work_factor: int = MAX_WORK_FACTOR) -> None:
        self._passphrase = _check_passphrase(passphrase)
        if not isinstance(max_work_factor, int) or not 1 <= max_work_factor <= 30:
            raise ValueError("max_work_factor must be an integer from 1 to 30")
        self.max_work_factor = max_work_factor

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        ours = [s for s in stanzas if s.type == STANZA_TYPE]
        if not ours:
            return None
        if len(stanzas) != 1:
            raise HeaderError("an scrypt stanza must be the only stanza in the header")
        stanza = ours[0]
        salt, work_factor = self._parse(stanza)
        key = _wrap_key(self._passphrase, salt, work_factor)
        try:
            return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, stanza.body, None)
        except InvalidTag:
            return None  # wrong passphrase

    def _parse(self, stanza: Stanza) -> tuple[bytes, int]:
        if len(stanza.args) != 2:
            raise HeaderError("scrypt stanza must have exactly two arguments")
        try:
            salt = b64decode(stanza.args[0])
        except ValueError:
            raise HeaderError("scrypt salt is not canonical base64") from None
        if len(salt) != _SALT_SIZE:
            raise HeaderError("scrypt salt has the wrong length")
        text = stanza.args[1]
        if not _DECIMAL.fullmatch(text):
            raise HeaderError("scrypt work factor is not a plain decimal number")
        # Length first: int() of a hostile 10,000-digit string is itself slow.
        if len(text) > 2 or int(text) > self.max_work_factor:
            raise HeaderError(f"scrypt work factor is above the limit {self.max_work_factor}")
        work_factor = int(text)
        if len(stanza.body) != _WRAPPED_SIZE:
            raise HeaderError("scrypt stanza body has the wrong length")
        return salt, work_factor

    def __repr__(self) -> str:
        return f"ScryptIdentity(max_work_factor={self.max_work_factor})"
