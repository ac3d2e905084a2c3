"""C2SP signed notes with Ed25519 keys (c2sp.org/signed-note; docs/AUDIT.md §7).

A note is UTF-8 text ending in a newline, a blank line, and one or more
signature lines ``— <key name> base64(key ID || signature)``. The key ID of
an Ed25519 key is the first four bytes, big-endian, of
``SHA-256(name || 0x0A || 0x01 || public key)``.

Keys are written the way other signed-note implementations (for example
Go's golang.org/x/mod/sumdb/note) read them:

* verifier key: ``<name>+<key ID as 8 hex digits>+base64(0x01 || public key)``
* signer key:   ``PRIVATE+KEY+<name>+<key ID>+base64(0x01 || 32-byte seed)``
  (secret; only ever stored in a 0600 file).

Opening a note follows the spec: signatures from unknown keys are ignored;
a signature from a known key that fails rejects the whole note; a note
without any verified signature is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault.errors import CheckpointError

__all__ = ["Note", "NoteSignature", "NoteSigner", "NoteVerifier", "open_note", "sign_note"]

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100  # the spec asks for at least 16; Go's note package allows 100
_SIG_PREFIX = "\u2014 "  # em dash, space
_PRIVATE_PREFIX = "PRIVATE+KEY+"


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes_raw()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("a key name must be a non-empty string")
    if "+" in name or any(c.isspace() or ord(c) < 0x20 for c in name):
        raise ValueError("a key name must not contain spaces, control characters or '+'")


def key_id(name: str, public_key: Ed25519PublicKey) -> int:
    """``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(
        name.encode() + b"\n" + bytes([ALG_ED25519]) + _raw_public(public_key)
    ).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _parse_key_text(text: str) -> tuple[str, int, bytes]:
    """Split ``name+hash+base64`` into its parts (shared by both key forms)."""
    try:
        name, hash_hex, b64 = text.strip().split("+", 2)  # base64 may hold "+"
        _check_name(name)
        if len(hash_hex) != 8 or hash_hex != hash_hex.lower():
            raise ValueError
        kid = int(hash_hex, 16)
        data = _b64decode(b64)
    except (ValueError, UnicodeError, binascii.Error):
        raise ValueError("not a signed-note key of the form name+hash+base64") from None
    if len(data) != 33 or data[0] != ALG_ED25519:
        raise ValueError("not an Ed25519 signed-note key")
    return name, kid, data[1:]


class NoteVerifier:
    """An Ed25519 public key with the name it signs under."""

    __slots__ = ("key_id", "name", "public_key")

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        _check_name(name)
        if not isinstance(public_key, Ed25519PublicKey):
            raise TypeError("public_key must be an Ed25519PublicKey")
        self.name = name
        self.public_key = public_key
        self.key_id = key_id(name, public_key)

    @classmethod
    def from_key(cls, text: str) -> NoteVerifier:
        """Parse a verifier key ``name+hash+base64`` (ValueError if malformed or
        if the hash does not match the name and key)."""
        name, kid, raw = _parse_key_text(text)
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(raw))
        if verifier.key_id != kid:
            raise ValueError("verifier key hash does not match its name and key")
        return verifier

    def verifier_key(self) -> str:
        raw = bytes([ALG_ED25519]) + _raw_public(self.public_key)
        return f"{self.name}+{self.key_id:08x}+{base64.b64encode(raw).decode()}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoteVerifier) and other.verifier_key() == self.verifier_key()

    def __hash__(self) -> int:
        return hash(self.verifier_key())

    def __repr__(self) -> str:
        return f"NoteVerifier({self.verifier_key()!r})"


class NoteSigner:
    """An Ed25519 private key with the name it signs under."""

    __slots__ = ("_key", "verifier")

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("key must be an Ed25519PrivateKey")
        self._key = key
        self.verifier = NoteVerifier(name, key.public_key())

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key(cls, text: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+name+hash+base64(0x01 || seed)``."""
        if not text.startswith(_PRIVATE_PREFIX):
            raise ValueError("not a signed-note private key (PRIVATE+KEY+...)")
        name, kid, seed = _parse_key_text(text[len(_PRIVATE_PREFIX) :])
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != kid:
            raise ValueError("private key hash does not match its name and key")
        return signer

    def private_key(self) -> str:
        """The secret key text (store it only in a file created 0600)."""
        seed = self._key.private_bytes_raw()
        data = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+{data}"

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def key_id(self) -> int:
        return self.verifier.key_id

    def verifier_key(self) -> str:
        return self.verifier.verifier_key()

    def sign(self, text: str) -> bytes:
        """Return ``text`` as a note signed by this key alone."""
        return sign_note(text, [self])

    def signature_line(self, message: bytes) -> str:
        sig = self.key_id.to_bytes(4, "big") + self._key.sign(message)
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(sig).decode()}\n"

    def __repr__(self) -> str:  # never the key itself
        return f"NoteSigner(name={self.name!r}, key_id={self.key_id:08x})"


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes  # without the 4-byte key ID


@dataclass(frozen=True)
class Note:
    """An opened note: ``text`` is trustworthy only because ``signatures``
    (from known keys) verified; ``unverified`` lists the ignored ones."""

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...] = ()


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise ValueError("note text must not contain control characters other than newline")


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """Sign ``text`` (ending in a newline) with every signer, in order."""
    _check_text(text)
    if not signers:
        raise ValueError("a note needs at least one signer")
    message = text.encode("utf-8")
    return message + b"\n" + "".join(s.signature_line(message) for s in signers).encode()


def _parse_signature(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise CheckpointError("malformed note: bad signature line")
    name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    try:
        _check_name(name)
        raw = _b64decode(b64)
    except (ValueError, binascii.Error):
        raise CheckpointError("malformed note: bad signature line") from None
    if len(raw) < 5:
        raise CheckpointError("malformed note: signature too short")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def parse_note(data: bytes) -> tuple[str, list[NoteSignature]]:
    """Split a note into its (unverified) text and signatures."""
    try:
        msg = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError("malformed note: not UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in msg):
        raise CheckpointError("malformed note: control character")
    split = msg.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no signature block")
    text, block = msg[: split + 1], msg[split + 2 :]
    if not block.endswith("\n"):
        raise CheckpointError("malformed note: no signature block")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError("malformed note: too many signatures")
    return text, [_parse_signature(line) for line in lines]


def open_note(data: bytes, verifiers: Sequence[NoteVerifier]) -> Note:
    """Verify a signed note against the trusted ``verifiers``.

    Raises :class:`CheckpointError` if the note is malformed, if a signature
    by a known key fails, or if no known key signed it.
    """
    text, sigs = parse_note(data)
    known = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode("utf-8")
    good: list[NoteSignature] = []
    ignored: list[NoteSignature] = []
    for sig in sigs:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            ignored.append(sig)
        elif not verifier.verify(message, sig.signature):
            raise CheckpointError(f"invalid signature by {sig.name}+{sig.key_id:08x}")
        elif not any(hmac.compare_digest(g.signature, sig.signature) for g in good):
            good.append(sig)
    if not good:
        raise CheckpointError(
            "note is not signed by a trusted key",
            hint="check that you use the log's verifier key (vault audit key)",
        )
    return Note(text, tuple(good), tuple(ignored))
