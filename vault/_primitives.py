"""The one home of the library's small cryptographic helpers, used by the
age engine (:mod:`vault.age`) and the vault alike. Every primitive comes
from ``cryptography``; nothing here is a cipher of its own.

* HKDF-SHA-256 (RFC 5869), ``hkdf(ikm, salt, info)`` -- the argument order
  of age's spec (docs/FORMAT.md §2.2);
* base64: age's canonical unpadded form (docs/FORMAT.md §2.1) and the
  padded form the vault's JSON uses (docs/FORMAT.md §11, notation);
* canonical JSON: the one byte string a signed object is encoded as (keys
  sorted, no insignificant white space, UTF-8). Parsers re-encode what they
  read and refuse anything that is not already canonical, so a signed
  record has exactly one encoding (docs/FORMAT.md §13.1);
* Ed25519 signatures with domain separation (docs/FORMAT.md §13.2): every signature covers
  ``"vault/v1 " || context || LF || payload``, so that a signature made for
  one purpose (a label) can never be replayed as another (a manifest);
* signing public keys written ``ed25519:<base64 of the 32 raw bytes>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import sys
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "INT_BOUND",
    "MAX_INT_DIGITS",
    "b64",
    "b64decode",
    "b64encode",
    "canonical_json",
    "format_signing_key",
    "hkdf",
    "int_text",
    "loads_json",
    "parse_canonical_json",
    "parse_signing_key",
    "raw_public",
    "sha256_hex",
    "sign",
    "unb64",
    "verify",
]

SIGNING_KEY_PREFIX = "ed25519:"
# The base64 alphabet, for bytes.translate: it deletes these bytes in C,
# where a set test looked at one byte at a time (a hybrid stanza's argument
# is 1,500 of them).
B64_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA-256. An empty ``salt`` is the RFC's default (zero bytes)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None,
                info=info).derive(ikm)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- base64 --------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Standard base64 without padding (age's form, docs/FORMAT.md §2.1)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").decode("ascii")


def b64decode(text: str | bytes) -> bytes:
    """Decode canonical unpadded base64, raising ValueError otherwise.

    Canonical means no padding, no characters outside the alphabet, and
    zero unused bits in the last character (RFC 4648 §3.5).
    """
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    if raw.translate(None, B64_BYTES) or len(raw) % 4 == 1:
        raise ValueError("invalid base64")
    data = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)
    if binascii.b2a_base64(data, newline=False).rstrip(b"=") != raw:
        raise ValueError("non-canonical base64")
    return data


def b64(data: bytes) -> str:
    """Standard base64 with padding (the vault's JSON)."""
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


# -- canonical JSON --------------------------------------------------------------


# Objects and arrays nested at most this deep, the outermost at depth 1
# (docs/AUDIT.md §3). Python's parser gives up at a depth that depends on
# how deep its caller already is: without a bound of its own, one record,
# label or statement could be valid on one machine, or in one command, and
# not in another.
MAX_DEPTH = 64
# A string, or what is left of an unterminated one: possessive, so that every
# match that starts runs to its end once and the scan stays linear (a line
# of escaped quotes that never closes made the plain pattern retry from
# every quote: minutes for one planted line).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"{}[]")


def too_deep(line: bytes) -> bool:
    """Are objects and arrays nested deeper than :data:`MAX_DEPTH` in
    ``line`` (brackets inside strings aside)? Cheap for every honest line:
    the brackets are counted first, and only a line holding more of them
    than the bound is looked at closer."""
    if line.count(b"{") + line.count(b"[") <= MAX_DEPTH:
        return False
    depth = 0
    for byte in _STRING.sub(b"", line).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in (0x7B, 0x5B) else -1
        if depth > MAX_DEPTH:
            return True
    return False



_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)

#: The most decimal digits (a sign aside) of an integer in JSON the vault
#: reads (docs/AUDIT.md §3): Python's default ``sys.int_max_str_digits``,
#: fixed here rather than taken from the interpreter, which
#: PYTHONINTMAXSTRDIGITS or ``-X int_max_str_digits`` set otherwise on one
#: machine -- and a signed line would be a record there and junk elsewhere.
MAX_INT_DIGITS = 4300
# Integers of at most this many digits convert under any interpreter
# setting (sys.int_info.str_digits_check_threshold, the lowest limit one
# can set); longer ones are converted this many digits at a time.
_FREE_DIGITS = 640
_FREE_UNIT = 10**_FREE_DIGITS
INT_BOUND = 10**MAX_INT_DIGITS  # an integer has at most MAX_INT_DIGITS digits below it


def _int_of(text: str) -> int:
    """A JSON integer's value, whatever the interpreter's limit (``parse_int``)."""
    negative = text[:1] == "-"
    digits = text[1:] if negative else text
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
    if len(digits) <= _FREE_DIGITS:
        return int(text)
    value = 0
    for at in range(0, len(digits), _FREE_DIGITS):
        chunk = digits[at : at + _FREE_DIGITS]
        value = value * 10 ** len(chunk) + int(chunk)
    return -value if negative else value


def int_text(n: int) -> str:
    """Decimal text of an integer of at most MAX_INT_DIGITS digits, whatever
    the interpreter's limit; ValueError for a longer one."""
    if -_FREE_UNIT < n < _FREE_UNIT:
        return int.__repr__(n)
    if not -INT_BOUND < n < INT_BOUND:
        raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
    parts: list[int] = []
    rest = abs(n)
    while rest:
        rest, part = divmod(rest, _FREE_UNIT)
        parts.append(part)
    return ("-" if n < 0 else "") + str(parts[-1]) + "".join(
        f"{p:0{_FREE_DIGITS}d}" for p in reversed(parts[:-1]))


def loads_json(data: str | bytes) -> Any:
    """``json.loads`` with integers read by vault's own bound (MAX_INT_DIGITS),
    never by the interpreter's: every reader of signed or stored JSON uses
    it. Raises ValueError (JSONDecodeError, or an integer too long)."""
    return json.loads(data, parse_int=_int_of)


def _canonical_long(obj: Any) -> str:
    """What :data:`_CANONICAL` writes, integers converted by :func:`int_text`:
    Python's encoder converts them under the interpreter's limit. Each long
    integer is written first as a string no value holds (a fresh random
    tag and its place), which is then replaced by its digits."""
    tag = secrets.token_hex(16)
    digits: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: swap(v) for key, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [swap(v) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and not (
                -_FREE_UNIT < value < _FREE_UNIT):
            digits.append(int_text(value))
            return f"{tag}{len(digits) - 1}"
        return value

    encoded: str = _CANONICAL.encode(swap(obj))
    return re.sub(f'"{tag}([0-9]+)"', lambda m: digits[int(m.group(1))], encoded)


def canonical_json(obj: Any) -> bytes:
    """The canonical encoding of a JSON value (one encoder for every call:
    what ``json.dumps`` with these options builds each time). An integer
    of more digits than the interpreter converts is written all the same,
    and one of more than MAX_INT_DIGITS, which no reader takes, is refused
    (ValueError) whatever the interpreter converts."""
    if not 0 < sys.get_int_max_str_digits() <= MAX_INT_DIGITS:
        # A limit lifted on this machine would write what no reader takes.
        return _canonical_long(obj).encode("utf-8")
    try:
        return _CANONICAL.encode(obj).encode("utf-8")
    except ValueError as e:
        if "integer string conversion" not in str(e):
            raise  # NaN or infinity
        return _canonical_long(obj).encode("utf-8")


def parse_canonical_json(data: bytes) -> dict[str, Any]:
    """Parse a JSON object, refusing any encoding but the canonical one.

    Raises ValueError (the callers turn it into the right IntegrityError).
    """
    if too_deep(data):
        raise ValueError("nested too deep")
    try:
        obj = loads_json(data.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, an integer too long
        raise ValueError("not JSON") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    try:
        again = canonical_json(obj)
    except (ValueError, UnicodeEncodeError):  # NaN, lone surrogates
        raise ValueError("not in canonical form") from None
    if again != data:
        raise ValueError("not in canonical form")
    return obj


# -- Ed25519 -----------------------------------------------------------------------


def raw_public(key: Ed25519PublicKey) -> bytes:
    # public_bytes_raw, not serialization's encodings: that package loads
    # every key format cryptography knows (about 1 MB of memory per process).
    return key.public_bytes_raw()


def format_signing_key(key: Ed25519PublicKey) -> str:
    return SIGNING_KEY_PREFIX + b64(raw_public(key))


def parse_signing_key(text: Any) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64>``; ValueError if it is anything else."""
    if not isinstance(text, str) or not text.startswith(SIGNING_KEY_PREFIX):
        raise ValueError("a signing key is written ed25519:<base64>")
    return Ed25519PublicKey.from_public_bytes(unb64(text[len(SIGNING_KEY_PREFIX):], 32))


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
