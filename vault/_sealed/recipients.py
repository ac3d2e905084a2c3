"""Recipient stanzas of a sealed document (docs/FORMAT.md §11.1).

X25519 stanzas are standard age stanzas (C2SP age.md, "X25519 recipient
stanza"), made by the engine's own wrap, with one difference: the
ephemeral secret is derived instead of drawn at random::

    ephemeral secret = HKDF-SHA-256(ikm = file key, salt = recipient,
                                    info = "vault/v1 X25519 ephemeral")

It is fresh for every file (file keys are fresh CSPRNG output) and distinct
for every recipient, which is what age.md's "new ephemeral secret for each
stanza and each file" protects. The point is verifiability: whoever holds
the file key recomputes the stanza each authorised recipient must have, and
so detects a stanza added by anyone else -- even by another holder of the
file key, who can recompute the header MAC.

Post-quantum (``mlkem768x25519``) stanzas are the engine's, with the
randomness HPKE draws: they cannot be recomputed, so a document may carry
no more of them than it has authorised post-quantum recipients; which
recipients they are is fixed by the header's SHA-256 in the audit log
(docs/DESIGN.md §4.3).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vault._primitives import hkdf
from vault.age import Header, MLKEM768X25519Recipient, Recipient, Stanza, X25519Recipient

__all__ = ["PQ_STANZA", "BoundX25519Recipient", "match_stanzas", "pins_match", "pins_of",
           "recipient_stanzas", "recovery_set", "vault_recipient"]

_EPHEMERAL_INFO = b"vault/v1 X25519 ephemeral"
PQ_STANZA = "mlkem768x25519"


class BoundX25519Recipient:
    """An age ``Recipient`` for an X25519 public key whose stanza is a
    deterministic function of (file key, recipient)."""

    def __init__(self, recipient: X25519Recipient) -> None:
        self.recipient = recipient

    def wrap(self, file_key: bytes) -> list[Stanza]:
        secret = hkdf(file_key, self.recipient.to_bytes(), _EPHEMERAL_INFO)
        return self.recipient.wrap_with(file_key, X25519PrivateKey.from_private_bytes(secret))

    def __repr__(self) -> str:
        return f"BoundX25519Recipient({str(self.recipient)!r})"


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Recipient:
    """A recipient parsed once (a post-quantum one is 1,959 characters of
    bech32 and a key to build: every opening checks against a few)."""
    from vault.age import parse_recipient

    return parse_recipient(text)


def vault_recipient(text: str) -> Recipient:
    """The recipient a document is wrapped to for the public key ``text``."""
    r = _parsed(text)
    return BoundX25519Recipient(r) if isinstance(r, X25519Recipient) else r


def match_stanzas(stanzas: Sequence[Stanza], file_key: bytes,
                  allowed: Iterable[str]) -> tuple[list[str], list[int]]:
    """Pair each recipient stanza with an authorised recipient.

    Returns ``(matched recipients, indexes of stanzas that match none)``. An
    X25519 stanza matches only if it is byte-identical to the one
    :class:`BoundX25519Recipient` makes; post-quantum stanzas are matched by
    count against the authorised post-quantum recipients, taken in the order
    of ``allowed`` (so the recipient the caller knows is there comes first)."""
    expected: dict[str, tuple[bytes, str]] = {}
    pq: list[str] = []
    for text in allowed:
        r = _parsed(text)
        if isinstance(r, X25519Recipient):
            (stanza,) = BoundX25519Recipient(r).wrap(file_key)
            expected[stanza.args[0]] = (stanza.body, text)
        elif isinstance(r, MLKEM768X25519Recipient):
            pq.append(text)
    matched: list[str] = []
    strangers: list[int] = []
    for i, s in enumerate(stanzas):
        if s.type == "X25519":
            want = expected.get(s.args[0]) if len(s.args) == 1 else None
            if want is not None and hmac.compare_digest(want[0], s.body):
                matched.append(want[1])
            else:
                strangers.append(i)
        elif s.type == PQ_STANZA:
            if pq:
                matched.append(pq.pop(0))  # by count: see the module docstring
            else:
                strangers.append(i)
    return matched, strangers


# -- pins: which recovery stanzas a version carries (docs/FORMAT.md §14.6) ------------
#
# A post-quantum stanza cannot be recomputed, so a cleared insider could
# swap a document's recovery stanza for one of their choosing and record the
# header as a rewrap. The ``document`` record therefore names the SHA-256 of
# each recipient stanza, the class key's apart; the replay holds a new
# version to the recovery stanzas of the one it replaces while the recovery
# recipients stay the same (writers copy them), and a reader holds the
# header to what its record names.


def recipient_stanzas(header: Header) -> list[Stanza]:
    """A document header's recipient stanzas, in order (not its label or
    metadata; reading.check_shape refuses a header with any other kind)."""
    return [s for s in header.stanzas if s.type in ("X25519", PQ_STANZA)]


def _digest(stanza: Stanza) -> str:
    return hashlib.sha256(stanza.encode()).hexdigest()


def pins_of(recipient_stanzas: Sequence[Stanza]) -> dict[str, Any]:
    """The ``stanzas`` member of a document record: the class key's stanza
    (a writer's first) and the recovery stanzas, by SHA-256."""
    first, *rest = recipient_stanzas
    return {"class": _digest(first), "recovery": sorted(_digest(s) for s in rest)}


def pins_match(recipient_stanzas: Sequence[Stanza], pins: Mapping[str, Any]) -> bool:
    """Are these exactly the stanzas ``pins`` names (in any order)?"""
    want = sorted([pins["class"], *pins["recovery"]])
    return sorted(_digest(s) for s in recipient_stanzas) == want


def keep_recovery(recipient_stanzas: Sequence[Stanza], pins: Mapping[str, Any]
                  ) -> list[Stanza] | None:
    """The recovery stanzas ``pins`` names, taken from a verified header (a
    writer rewrapping copies them), or None if one is missing."""
    by_digest = {_digest(s): s for s in recipient_stanzas}
    kept = [by_digest.get(d) for d in pins["recovery"]]
    return None if any(s is None for s in kept) else [s for s in kept if s is not None]


def recovery_set(recipients: Iterable[str]) -> str:
    """One digest of a set of recovery recipients (which set a version's
    recovery stanzas were made for)."""
    return hashlib.sha256("\n".join(sorted(set(recipients))).encode()).hexdigest()
