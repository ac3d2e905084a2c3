"""Whole-file operations: wrap and unwrap the file key, seal and open files.

docs/FORMAT.md §1 gives the overall layout (header, then payload); this
module ties the header (``_format``), the payload (``_stream``), armor and
the recipient types together behind the two small protocols below.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import BinaryIO, Protocol, runtime_checkable

from vault.age._armor import ArmorWriter, dearmor
from vault.age._files import atomic_output
from vault.age._format import FILE_KEY_SIZE, Header, Stanza, read_header
from vault.age._stream import decrypt_payload, encrypt_payload
from vault.errors import HeaderError, NoIdentityMatchError

__all__ = [
    "Identity",
    "Recipient",
    "decrypt",
    "decrypt_file",
    "encrypt",
    "encrypt_file",
    "rewrap",
    "unwrap_file_key",
]

_SCRYPT = "scrypt"
# docs/FORMAT.md §5.3 (age.md: a file SHOULD NOT be encrypted both to a
# post-quantum recipient and to one a quantum computer could break, which
# would void the protection). Writers refuse; readers accept such files.
_POST_QUANTUM = frozenset({"mlkem768x25519", "mlkem768p256tag"})
_CLASSICAL = frozenset({"X25519", "p256tag", "ssh-ed25519", "ssh-rsa"})
_COPY_SIZE = 1 << 20


@runtime_checkable
class Recipient(Protocol):
    """Something a file key can be wrapped for.

    ``wrap`` returns the stanzas to put in the header; it may return stanzas
    of any type, which is how callers add their own stanzas to a file.
    """

    def wrap(self, file_key: bytes) -> list[Stanza]: ...


@runtime_checkable
class Identity(Protocol):
    """Something that can unwrap a file key from a header's stanzas.

    ``unwrap`` returns None when no stanza is addressed to it, and raises
    HeaderError when a stanza of its own type is malformed.
    """

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None: ...


def _seal_header(file_key: bytes, recipients: Sequence[Recipient]) -> Header:
    if not recipients:
        raise ValueError("give at least one recipient")
    stanzas = [stanza for r in recipients for stanza in r.wrap(file_key)]
    if len(stanzas) > 1 and any(s.type == _SCRYPT for s in stanzas):
        raise ValueError("a passphrase (scrypt) recipient must be the file's only recipient")
    types = {s.type for s in stanzas}
    if types & _POST_QUANTUM and types & _CLASSICAL:
        raise ValueError(
            "post-quantum (age1pq1…) and classical (age1…) recipients cannot be mixed in one file"
        )
    return Header.seal(stanzas, file_key)


def encrypt(
    src: BinaryIO, dst: BinaryIO, recipients: Sequence[Recipient], *, armor: bool = False
) -> None:
    """Encrypt everything readable from ``src`` to ``recipients``, into ``dst``."""
    file_key = os.urandom(FILE_KEY_SIZE)
    header = _seal_header(file_key, recipients)
    if not armor:
        dst.write(header.encode())
        encrypt_payload(src, dst, file_key)
        return
    armored = ArmorWriter(dst)
    armored.write(header.encode())
    encrypt_payload(src, armored, file_key)
    armored.close()


def _reasons(stanzas: Sequence[Stanza], identities: Sequence[Identity]) -> list[str]:
    handled = {getattr(i, "stanza_type", None) for i in identities}
    reasons = []
    for s in stanzas:
        kind = s.type if len(s.type) <= 40 else s.type[:40] + "…"
        if s.type == _SCRYPT and _SCRYPT in handled:
            reasons.append("scrypt stanza: wrong passphrase")
        elif s.type in handled:
            reasons.append(f"{kind} stanza: not addressed to any of the given identities")
        else:
            reasons.append(f"{kind} stanza: no identity of this type was given")
    return reasons


def unwrap_file_key(unverified_header: Header, identities: Sequence[Identity]) -> bytes:
    """Find the file key with ``identities`` and verify the header MAC with it.

    Raises HeaderError (malformed stanza), NoIdentityMatchError (no identity
    unwrapped a stanza; ``reasons`` says why for each stanza) or HMACError.
    """
    identities = list(identities)
    if not identities:
        raise ValueError("give at least one identity")
    stanzas = unverified_header.stanzas
    if len(stanzas) > 1 and any(s.type == _SCRYPT for s in stanzas):
        raise HeaderError("an scrypt stanza must be the only stanza in the header")
    for identity in identities:
        file_key = identity.unwrap(stanzas)
        if file_key is None:
            continue
        if len(file_key) != FILE_KEY_SIZE:
            raise HeaderError("unwrapped file key has the wrong length")
        unverified_header.verify_mac(file_key)
        return file_key
    raise NoIdentityMatchError(
        "no identity matched any of the file's recipients",
        reasons=_reasons(stanzas, identities),
        hint="check that you use the key (or passphrase) the file was encrypted to",
    )


def decrypt(src: BinaryIO, dst: BinaryIO, identities: Sequence[Identity]) -> None:
    """Decrypt the age file (binary or armored) in ``src`` into ``dst``.

    Plaintext is written only after its chunk verified; if the payload
    fails later, what was written before stays written and PayloadError is
    raised. Use :func:`decrypt_file` to get all or nothing.
    """
    src = dearmor(src)
    header = read_header(src)
    file_key = unwrap_file_key(header, identities)
    decrypt_payload(src, dst, file_key)


def rewrap(
    src: BinaryIO, dst: BinaryIO, file_key: bytes, recipients: Sequence[Recipient]
) -> None:
    """Write ``src`` with a new header for ``recipients``, copying the payload.

    The old header's MAC must verify under ``file_key`` (HMACError
    otherwise). The payload bytes are copied unchanged: nonce and chunks
    depend only on the file key, which stays the same.
    """
    read_header(src).verify_mac(file_key)
    dst.write(_seal_header(file_key, recipients).encode())
    shutil.copyfileobj(src, dst, _COPY_SIZE)


def encrypt_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    recipients: Sequence[Recipient],
    *,
    armor: bool = False,
) -> None:
    """Encrypt a file; ``dst_path`` appears atomically once complete."""
    with open(src_path, "rb") as src, atomic_output(dst_path, 0o666) as dst:
        encrypt(src, dst, recipients, armor=armor)


def decrypt_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    identities: Sequence[Identity],
) -> None:
    """Decrypt a file; ``dst_path`` (mode 0600) appears only if all of it verified."""
    with open(src_path, "rb") as src, atomic_output(dst_path, 0o600) as dst:
        decrypt(src, dst, identities)
