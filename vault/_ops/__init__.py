"""The vault's operations, one module per group; :class:`vault.Vault`
delegates to them (docs/DESIGN.md §6)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vault._ops import admin, change, doctor, read, seal

if TYPE_CHECKING:  # pragma: no cover
    from vault._vault import Vault
    from vault.audit import NoteSigner

__all__ = ["admin", "audit_key_lookup", "change", "doctor", "log_signer", "read",
           "register_actor", "seal"]


def log_signer(v: Vault) -> NoteSigner | None:
    """The checkpoint signer, if this process may read the log key (0600)
    and it is the one pinned in ``vault.json``."""
    from vault.audit import NoteSigner

    try:
        signer = NoteSigner.from_private_key(v.backend.read_log_key().decode("ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None  # checkpoints are then left to whoever holds the key
    if signer.verifier_key() != v.manifest.log_key:
        return None  # a planted key must not sign this vault's checkpoints
    return signer


def _known_keys(v: Vault) -> dict[str, dict[str, Ed25519PublicKey]]:
    """name -> fingerprint -> key, over every policy version."""
    from vault._sign import parse_signing_key
    from vault.audit import fingerprint

    keys: dict[str, dict[str, Ed25519PublicKey]] = {}
    for version in v.chain.versions:
        for user in version.policy.users.values():
            key = parse_signing_key(user.signing_key)
            keys.setdefault(user.name, {})[fingerprint(key)] = key
    return keys


def register_actor(v: Vault) -> None:
    """Keep the caller's public key if the policy does not know it, so that
    a denied outsider's record can still be verified (docs/DESIGN.md §9)."""
    me = v.me()
    if me.fingerprint in _known_keys(v).get(me.name, {}):
        return
    raw = me.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    v.backend.register_actor(hashlib.sha256(raw).hexdigest(), raw)


def audit_key_lookup(v: Vault) -> Callable[[str | None, str, int], Ed25519PublicKey | None]:
    """Find the key that must have signed an audit record: a policy user's
    key for a name the policy knows (someone else using that name is not
    accepted), a registered key for any other name."""
    known = _known_keys(v)

    def lookup(name: str | None, fp: str, seq: int) -> Ed25519PublicKey | None:
        if name is not None and name in known:
            return known[name].get(fp)
        try:
            digest = base64.b64decode(fp.removeprefix("SHA256:") + "=", validate=True)
        except ValueError:
            return None
        raw = v.backend.actor_key(digest.hex()) if len(digest) == 32 else None
        if raw is None or hashlib.sha256(raw).digest() != digest:
            return None
        return Ed25519PublicKey.from_public_bytes(raw)

    return lookup
