"""vault.age: the age v1 file format (C2SP age.md), the vault's low-level layer.

Most code should use :class:`vault.Vault`, which adds policy, labels and the
audit log on top. This module is the engine underneath: standard age v1
files that stock ``age`` reads and writes, with X25519, post-quantum hybrid
(mlkem768x25519, ``age1pq1…``) and scrypt (passphrase) recipients, strict
ASCII armor, streaming in constant memory, and the split operations the
vault needs (read a header, unwrap the file key, decrypt the payload,
encrypt a payload before its header is known, hash a payload as stored
while writing or reading it or afterwards, rewrap a file for new recipients
without touching its payload). The format as used here is specified in
docs/FORMAT.md.

Example (``encrypt_file``/``decrypt_file`` do the same between files,
all or nothing)::

    >>> import io
    >>> from vault.age import MLKEM768X25519Identity, decrypt, encrypt
    >>> identity = MLKEM768X25519Identity.generate()  # age-keygen -pq
    >>> sealed, opened = io.BytesIO(), io.BytesIO()
    >>> encrypt(io.BytesIO(b"board minutes"), sealed, [identity.recipient])
    >>> decrypt(io.BytesIO(sealed.getvalue()), opened, [identity])
    >>> opened.getvalue()
    b'board minutes'

Errors are :mod:`vault.errors` classes, one per failure category:
HeaderError, HMACError, NoIdentityMatchError, PayloadError, ArmorError.
"""

from __future__ import annotations

from vault.age._armor import ArmorWriter, dearmor
from vault.age._core import (
    Identity,
    Recipient,
    decrypt,
    decrypt_file,
    encrypt,
    encrypt_file,
    rewrap,
    unwrap_file_key,
)
from vault.age._digest import PayloadDigest, hash_payload
from vault.age._format import Header, Stanza, read_header
from vault.age._identities import (
    load_identities,
    parse_identities,
    parse_recipient,
    parse_recipients,
)
from vault.age._mlkem import MLKEM768X25519Identity, MLKEM768X25519Recipient
from vault.age._scrypt import MAX_WORK_FACTOR, ScryptIdentity, ScryptRecipient
from vault.age._stream import decrypt_payload, encrypt_payload
from vault.age._x25519 import X25519Identity, X25519Recipient

__all__ = [
    "MAX_WORK_FACTOR",
    "ArmorWriter",
    "Header",
    "Identity",
    "MLKEM768X25519Identity",
    "MLKEM768X25519Recipient",
    "PayloadDigest",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "dearmor",
    "decrypt",
    "decrypt_file",
    "decrypt_payload",
    "encrypt",
    "encrypt_file",
    "encrypt_payload",
    "hash_payload",
    "load_identities",
    "parse_identities",
    "parse_recipient",
    "parse_recipients",
    "read_header",
    "rewrap",
    "unwrap_file_key",
]
