"""Record signatures that commit to what came before (docs/AUDIT.md §4).

A signed record at line k covers the *run* s..k: s is the first line of the
maximal run of unsigned records right before k that carry k's ``actor.key``
(s = k when line k-1 is not such a record). With leaf(i) the RFC 6962 leaf
hash of line i and leaf(-1) 32 zero bytes::

    chain(k) = SHA-256( leaf(s-1) || leaf(s) || ... || leaf(k-1) )

and the actor signs ``SIGNING_CONTEXT || chain(k) || canonical JSON of the
record without "sig"``. Replacing, removing or reordering any line breaks
the signature of the next signed record, so rewriting history means forging
the signature of whoever appended after it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault.audit._record import AuditRecord, fingerprint

__all__ = ["SIGNING_CONTEXT", "ZERO_LEAF", "KeyLookup", "chain_digest", "signed_body",
           "verify_record"]

SIGNING_CONTEXT = b"vault audit record v2\n"
#: ``key_lookup(name, fingerprint, seq)``: the key that must have signed the
#: record at line ``seq`` (the policy in force there), or None.
KeyLookup = Callable[[str | None, str, int], Ed25519PublicKey | None]
ZERO_LEAF = bytes(32)  # leaf(-1): what the first line of a log commits to


def chain_digest(before: bytes, run: Sequence[bytes]) -> bytes:
    """``chain(k)``: ``before`` is leaf(s-1), ``run`` the leaves s..k-1."""
    h = hashlib.sha256(before)
    for leaf in run:
        h.update(leaf)
    return h.digest()


def signed_body(record: AuditRecord) -> bytes:
    """The canonical JSON of a signed record without ``sig``.

    The line is canonical and ``sig`` sorts between ``seq`` and ``state``,
    so this is the line without ``,"sig":"<base64>"``; that byte string can
    occur nowhere earlier in a line (strings escape their quotes, and the
    objects before it have fixed members), so its first occurrence is it.
    """
    if record.signature is None:
        raise ValueError("an unsigned record has no signed body")
    member = b',"sig":"' + base64.b64encode(record.signature) + b'"'
    at = record.line.find(member)
    if at < 0:
        raise ValueError("the record's line does not carry its signature")
    return record.line[:at] + record.line[at + len(member) :]


def verify_record(record: AuditRecord, chain: bytes, public_key: Ed25519PublicKey) -> bool:
    """Does ``public_key`` (whose fingerprint must be ``actor.key``) sign
    ``record`` over ``chain`` -- the digest of the lines it covers (§4)?"""
    if record.signature is None or fingerprint(public_key) != record.actor_key:
        return False
    try:
        public_key.verify(record.signature, SIGNING_CONTEXT + chain + signed_body(record))
    except (InvalidSignature, ValueError):
        return False
    return True
