"""Bech32 (BIP 173) without the 90-character length limit, as age uses it.

age encodes recipients (``age1…``) and identities (``AGE-SECRET-KEY-1…``)
as Bech32 strings (docs/FORMAT.md §6). Strings are all-lowercase or
all-uppercase; the checksum is always computed over the lowercase form.
This is an encoding, not cryptography, so it is written out here.
"""

from __future__ import annotations

import functools
from typing import ClassVar

__all__ = ["PublicKeyText", "decode", "decode_key", "encode"]

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_VALUES = {c: i for i, c in enumerate(_CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i, g in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= g
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    max_v = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_v)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_v)
    elif bits >= from_bits or (acc << (to_bits - bits)) & max_v:
        # Leftover bits must be fewer than a whole input group and all zero,
        # otherwise the string is not the canonical encoding of any bytes.
        raise ValueError("non-zero or excess padding bits")
    return out


def encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` under the lowercase human-readable part ``hrp``."""
    hrp = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


def decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string into (lowercase hrp, data).

    Raises ValueError, with a message free of the input (it may be a secret
    key), when the string is not valid Bech32.
    """
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed case")
    if any(not 33 <= ord(c) <= 126 for c in text):
        raise ValueError("invalid character")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise ValueError("missing separator or checksum")
    hrp, rest = text[:pos], text[pos + 1 :]
    try:
        values = [_VALUES[c] for c in rest]
    except KeyError:
        raise ValueError("invalid data character") from None
    if _polymod(_hrp_expand(hrp) + values) != 1:
        raise ValueError("bad checksum")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))


@functools.lru_cache(maxsize=1024)
def decode_key(text: str, hrp: str, size: int, what: str) -> bytes:
    """The ``size``-byte key a lowercase ``hrp1…`` string encodes; raises
    ValueError("not <what>") otherwise. Bech32 in pure Python is slow (a
    hybrid recipient is ~1950 characters) and the vault parses the same
    public recipients on every operation, so results are remembered: call
    this for public keys only, never identities."""
    got, data = decode(text)
    if got != hrp or len(data) != size or text != text.lower():
        raise ValueError(f"not {what}")
    return data


class PublicKeyText:
    """What every recipient type shares: its Bech32 text form (computed
    once), and equality and hashing by its raw bytes."""

    _hrp: ClassVar[str]
    _raw: bytes
    _text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = encode(self._hrp, self._raw)
        return self._text

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)
