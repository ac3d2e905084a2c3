"""A second reader of the vault's formats, written from docs/FORMAT.md alone.

Nothing here comes from ``vault``: the age header grammar (§2), X25519 and
mlkem768x25519 unwrapping (§5.1, §5.3), the STREAM payload (§4), Bech32
keys (§6), the sealed document's stanzas (§11), canonical JSON and
signatures (§13.1, §13.2), identities (§12), class and key ids (§13.3,
§13.5) are each re-derived from the document with ``hashlib``, ``hmac``,
``json`` and the primitives of ``cryptography``. tests/test_format_vectors.py
checks the stored vectors with this module *and* with the library, so that
neither the document nor the code can drift from the other.

Error handling is minimal on purpose: a vector that does not parse is a
failed assertion, not a category to report.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION_LINE = b"age-encryption.org/v1\n"
CHUNK = 64 * 1024


# -- notation -------------------------------------------------------------------------


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA-256, 32 bytes; an empty salt is RFC 5869's default."""
    return HKDF(hashes.SHA256(), 32, salt or None, info).derive(ikm)


def b64_unpadded(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64_unpadded(text: str) -> bytes:
    data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    assert b64_unpadded(data) == text, "not canonical unpadded base64"
    return data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    data = base64.b64decode(text, validate=True)
    assert b64(data) == text, "not canonical padded base64"
    return data


def canonical_json(obj: Any) -> bytes:
    """§13.1: sorted keys, no white space, UTF-8, no floats."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def parse_canonical(data: bytes) -> dict[str, Any]:
    obj = json.loads(data.decode("utf-8"))
    assert isinstance(obj, dict) and canonical_json(obj) == data, "not canonical JSON"
    return obj


# -- Bech32 (§6) ----------------------------------------------------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32_decode(text: str) -> tuple[str, bytes]:
    assert text in (text.lower(), text.upper())
    low = text.lower()
    pos = low.rindex("1")
    hrp, values = low[:pos], [_CHARSET.index(c) for c in low[pos + 1:]]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    assert _polymod(expanded + values) == 1, "bad Bech32 checksum"
    acc, bits, out = 0, 0, bytearray()
    for v in values[:-6]:
        acc, bits = (acc << 5) | v, bits + 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    assert bits < 5 and not acc & ((1 << bits) - 1), "bad padding"
    return hrp, bytes(out)


def x25519_secret(identity: str) -> bytes:
    hrp, data = bech32_decode(identity)
    assert hrp == "age-secret-key-" and len(data) == 32
    return data


def pq_seed(identity: str) -> bytes:
    hrp, data = bech32_decode(identity)
    assert hrp == "age-secret-key-pq-" and len(data) == 32
    return data


def x25519_recipient_bytes(recipient: str) -> bytes:
    hrp, data = bech32_decode(recipient)
    assert hrp == "age" and len(data) == 32
    return data


def identity_secret(identity: str) -> bytes:
    """The 32 secret bytes of either identity type (§12.2)."""
    if identity.startswith("AGE-SECRET-KEY-PQ-1"):
        return pq_seed(identity)
    return x25519_secret(identity)


# -- the age file (§1-§5) ---------------------------------------------------------------


@dataclass(frozen=True)
class Stanza:
    type: str
    args: list[str]
    body: bytes


@dataclass(frozen=True)
class AgeFile:
    header: bytes  # up to and including the MAC line
    mac_input: bytes  # up to and including "---"
    mac: bytes
    stanzas: list[Stanza]
    payload: bytes


def parse_age(data: bytes) -> AgeFile:
    assert data.startswith(VERSION_LINE)
    pos = len(VERSION_LINE)
    stanzas: list[Stanza] = []

    def line() -> bytes:
        nonlocal pos
        end = data.index(b"\n", pos)
        out, pos = data[pos:end], end + 1
        return out

    while True:
        start = pos
        first = line()
        if first.startswith(b"---"):
            assert first[:4] == b"--- " and stanzas
            mac = unb64_unpadded(first[4:].decode("ascii"))
            assert len(mac) == 32
            return AgeFile(data[:pos], data[:start + 3], mac, stanzas, data[pos:])
        assert first.startswith(b"-> ")
        words = first[3:].decode("ascii").split(" ")
        assert all(words)
        body = ""
        while True:
            piece = line().decode("ascii")
            assert len(piece) <= 64
            body += piece
            if len(piece) < 64:
                break
        stanzas.append(Stanza(words[0], words[1:], unb64_unpadded(body)))


def encode_stanza(s: Stanza) -> bytes:
    text = b64_unpadded(s.body)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append("")
    return ("-> " + " ".join([s.type, *s.args]) + "\n" + "".join(x + "\n" for x in lines)
            ).encode("ascii")


def header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac.new(hkdf(file_key, b"", b"header"), mac_input, hashlib.sha256).digest()


def x25519_wrap(file_key: bytes, recipient: bytes, ephemeral: bytes) -> Stanza:
    """§5.1 for a given ephemeral secret."""
    eph = X25519PrivateKey.from_private_bytes(ephemeral)
    share = eph.public_key().public_bytes_raw()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient))
    key = hkdf(shared, share + recipient, b"age-encryption.org/v1/X25519")
    body = ChaCha20Poly1305(key).encrypt(bytes(12), file_key, None)
    return Stanza("X25519", [b64_unpadded(share)], body)


def bound_ephemeral(file_key: bytes, recipient: bytes) -> bytes:
    """§11.1: the vault's derived ephemeral secret."""
    return hkdf(file_key, recipient, b"vault/v1 X25519 ephemeral")


def x25519_unwrap(secret: bytes, stanzas: list[Stanza]) -> bytes | None:
    ours = X25519PrivateKey.from_private_bytes(secret)
    recipient = ours.public_key().public_bytes_raw()
    for s in stanzas:
        if s.type != "X25519":
            continue
        share = unb64_unpadded(s.args[0])
        shared = ours.exchange(X25519PublicKey.from_public_bytes(share))
        key = hkdf(shared, share + recipient, b"age-encryption.org/v1/X25519")
        try:
            return ChaCha20Poly1305(key).decrypt(bytes(12), s.body, None)
        except InvalidTag:  # not for this identity
            continue
    return None


def _pq_keys(seed: bytes) -> hpke.MLKEM768X25519PrivateKey:
    shake = hashes.Hash(hashes.SHAKE256(96))
    shake.update(seed)
    full = shake.finalize()
    return hpke.MLKEM768X25519PrivateKey(MLKEM768PrivateKey.from_seed_bytes(full[:64]),
                                         X25519PrivateKey.from_private_bytes(full[64:]))


def pq_unwrap(seed: bytes, stanzas: list[Stanza]) -> bytes | None:
    """§5.3: HPKE.OpenBase with the MLKEM768-X25519 suite."""
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256,
                       hpke.AEAD.CHACHA20_POLY1305)
    key = _pq_keys(seed)
    for s in stanzas:
        if s.type != "mlkem768x25519":
            continue
        enc = unb64_unpadded(s.args[0])
        assert len(enc) == 1120 and len(s.body) == 32
        try:
            return suite.decrypt(enc + s.body, key, info=b"age-encryption.org/mlkem768x25519")
        except InvalidTag:  # not for this identity
            continue
    return None


def payload_key(file_key: bytes, payload: bytes) -> bytes:
    return hkdf(file_key, payload[:16], b"payload")


def decrypt_payload(file_key: bytes, payload: bytes) -> bytes:
    """§4: STREAM, 64 KiB chunks, counter || last-chunk flag."""
    aead = ChaCha20Poly1305(payload_key(file_key, payload))
    rest, out, i = payload[16:], bytearray(), 0
    while True:
        piece, rest = rest[:CHUNK + 16], rest[CHUNK + 16:]
        last = not rest
        out += aead.decrypt(i.to_bytes(11, "big") + bytes([last]), piece, None)
        if last:
            return bytes(out)
        i += 1


# -- the vault's own records ---------------------------------------------------------------


def signed_message(context: str, payload: bytes) -> bytes:
    """§13.2: what an Ed25519 signature of the vault covers."""
    return b"vault/v1 " + context.encode("ascii") + b"\n" + payload


def public_key(signing_key: str) -> Ed25519PublicKey:
    assert signing_key.startswith("ed25519:")
    raw = unb64(signing_key[len("ed25519:"):])
    assert len(raw) == 32
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(signing_key: str, context: str, payload: bytes, sig: bytes) -> None:
    public_key(signing_key).verify(sig, signed_message(context, payload))  # raises if bad


def signing_key_of(identity: str) -> Ed25519PrivateKey:
    """§12.2: the Ed25519 key derived from an identity's 32 secret bytes."""
    seed = hkdf(identity_secret(identity), b"", b"vault/v1 signing key")
    return Ed25519PrivateKey.from_private_bytes(seed)


def signing_key_text(key: Ed25519PrivateKey) -> str:
    return "ed25519:" + b64(key.public_key().public_bytes_raw())


def fingerprint(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes_raw()
    return "SHA256:" + b64_unpadded(hashlib.sha256(raw).digest())


def class_id(level: str, compartments: list[str]) -> str:
    """§13.3."""
    body = canonical_json({"level": level, "compartments": sorted(set(compartments))})
    return hashlib.sha256(b"vault/v1 class\n" + body).hexdigest()[:32]


def short_id(recipient: str) -> str:
    """§13.5 and §13.6: key ids and owner keys."""
    return hashlib.sha256(recipient.encode("ascii")).hexdigest()[:32]


def label_binding(file_key: bytes, statement: dict[str, Any]) -> bytes:
    """§11.2."""
    key = hkdf(file_key, b"", b"vault/v1 label binding")
    return hmac.new(key, canonical_json(statement), hashlib.sha256).digest()


def meta_key(file_key: bytes) -> bytes:
    return hkdf(file_key, b"", b"vault/v1 metadata")


def meta_aad(doc_id: str) -> bytes:
    return b"vault/v1 metadata\n" + doc_id.encode("ascii")


def open_meta(file_key: bytes, doc_id: str, body: bytes) -> tuple[bytes, dict[str, Any]]:
    """§11.3: the padded plaintext and the metadata object."""
    plain = ChaCha20Poly1305(meta_key(file_key)).decrypt(body[:12], body[12:], meta_aad(doc_id))
    assert len(plain) % 256 == 0
    return plain, parse_canonical(plain.rstrip(b" "))
