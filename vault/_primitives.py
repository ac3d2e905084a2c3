"""Small cryptographic helpers shared by the vault's formats (docs/DESIGN.md §3).

* Canonical JSON: the one byte string a signed object is encoded as (keys
  sorted, no insignificant white space, UTF-8). Parsers re-encode what they
  read and refuse anything that is not already canonical, so a signed record
  has exactly one encoding.
* Ed25519 signatures with domain separation: every signature covers
  ``"vault/v1 " || context || LF || payload``, so that a signature made for
  one purpose (a label) can never be replayed as another (a policy).
* Signing public keys are written ``ed25519:<base64 of the 32 raw bytes>``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "b64",
    "canonical_json",
    "format_signing_key",
    "hkdf32",
    "parse_canonical_json",
    "parse_signing_key",
    "sign",
    "unb64",
    "verify",
]

SIGNING_KEY_PREFIX = "ed25519:"


def canonical_json(obj: Any) -> bytes:
    """The canonical encoding of a JSON value."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def parse_canonical_json(data: bytes) -> dict[str, Any]:
    """Parse a JSON object, refusing any encoding but the canonical one.

    Raises ValueError (the callers turn it into the right IntegrityError).
    """
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    if canonical_json(obj) != data:
        raise ValueError("not in canonical form")
    return obj


def b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, size: int | None = None) -> bytes:
    """Strict inverse of :func:`b64`; ValueError if malformed or of the
    wrong ``size``."""
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("invalid base64") from None
    if b64(data) != text or (size is not None and len(data) != size):
        raise ValueError("invalid base64")
    return data


def hkdf32(ikm: bytes, info: bytes, salt: bytes = b"") -> bytes:
    """HKDF-SHA-256 (RFC 5869) with a 32-byte output."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(ikm)


def format_signing_key(key: Ed25519PublicKey) -> str:
    return SIGNING_KEY_PREFIX + b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_signing_key(text: Any) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64>``; ValueError if it is anything else."""
    if not isinstance(text, str) or not text.startswith(SIGNING_KEY_PREFIX):
        raise ValueError("a signing key is written ed25519:<base64>")
    return Ed25519PublicKey.from_public_bytes(unb64(text[len(SIGNING_KEY_PREFIX) :], 32))


def _message(context: str, payload: bytes) -> bytes:
    return b"vault/v1 " + context.encode("ascii") + b"\n" + payload


def sign(key: Ed25519PrivateKey, context: str, payload: bytes) -> bytes:
    return key.sign(_message(context, payload))


def verify(key: Ed25519PublicKey, context: str, payload: bytes, signature: bytes) -> bool:
    """True if ``signature`` is ``key``'s signature of ``payload`` in ``context``."""
    try:
        key.verify(signature, _message(context, payload))
    except InvalidSignature:
        return False
    return True
