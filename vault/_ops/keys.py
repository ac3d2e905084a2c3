"""Class keys at use: picking a clean one, making a new generation,
granting and retiring entries (docs/DESIGN.md §3.5).

Only someone cleared for a class ever creates its key -- a sealer, a
reclassifier, or whoever runs ``rotate`` -- so nobody learns a private key
they may not hold: not even the officer, who can revoke a user (making the
key unclean) but leaves the new generation to someone cleared. A key that
is not clean (someone who could know it is no longer cleared) is never
encrypted to again: the next cleared person who needs the class makes a
new generation, for the users cleared now, from their public recipients.

Granting needs only public keys and the class identity; whom to grant is
decided under the write lock against the policy version in force then, so
that a process opened before a revocation never hands the revoked user the
new key.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from vault._ops.replaced import remove_entries
from vault._trust.classes import ClassKey, LabelClass, cleared_users, key_id
from vault._trust.keyring import entry_bytes, new_class_identity
from vault.errors import DeniedError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.session import Session
    from vault.identity import AgeKeyPair
    from vault.policy import Policy, User

__all__ = ["create_generation", "fit_for", "grant_missing", "lacking", "retire",
           "unopenable_entry", "usable_key", "wants_pq"]


def wants_pq(policy: Policy) -> bool:
    """Are new class keys post-quantum hybrids under ``policy`` alone (a
    vault being made)? An open vault asks ``TrustedState.post_quantum_keys``."""
    return policy.post_quantum_keys


def usable_key(s: Session, cls: LabelClass) -> ClassKey:
    """The current key of ``cls`` if it is usable, else a new generation made
    by the caller (who must be cleared for it); missing grants written."""
    ck = s.trusted.current(cls)
    if ck is None or not fit_for(s, ck):
        with s.lock():
            ck = s.trusted.current(cls)
            if ck is None or not fit_for(s, ck):
                ck = create_generation(s, cls)
    grant_missing(s, ck)
    return ck


def still_current(s: Session, ck: ClassKey) -> bool:
    """Is ``ck`` its class's current key, usable under the policy in force?"""
    current = s.trusted.current(ck.cls)
    return current is not None and current.key_id == ck.key_id and current.usable(
        s.trusted.policy, s.trusted.post_quantum_keys())


def fit_for(s: Session, ck: ClassKey) -> bool:
    """May the caller wrap new headers to ``ck``: it is usable under the
    policy in force, and the caller was not granted an entry for it that
    they cannot open. A maker who handed someone cleared a junk entry (its
    digest recorded, so nobody grants them again) would otherwise have them
    seal to a key they cannot open, locked out of what they write: they make
    a new generation, for everyone cleared, instead (docs/DESIGN.md §3.5).
    Without an entry (a grant still pending, or writing up) nothing changes."""
    if not ck.usable(s.trusted.policy, s.trusted.post_quantum_keys()):
        return False
    return not unopenable_entry(s, ck)


def unopenable_entry(s: Session, ck: ClassKey) -> bool:
    """Does the log grant the caller an entry for ``ck`` that does not give
    them the key (missing, replaced, or holding another key)?"""
    if s.identity is None or s.trusted.entry_digest(ck.key_id, s.identity.recipient) is None:
        return False
    return s.my_keyring().identity(ck) is None


def _state_record(s: Session, action: str, reason: str, state: dict[str, Any]) -> None:
    from vault._ops.discipline import Attempt, record

    record(s, [Attempt(action)], "allowed", [], reason, [state])


def create_generation(s: Session, cls: LabelClass) -> ClassKey:
    """Under the write lock: a fresh key pair for ``cls``, an entry for every
    user cleared now, then the record that makes it count."""
    policy = s.trusted.policy
    actor = s.actor()
    me = policy.users.get(actor.name or "")
    if me is None or not policy.dominates(me.clearance, cls.label()):
        raise DeniedError(f"only someone cleared for {cls} can make its key",
                          hint="ask someone cleared for it to run 'vault rotate'")
    identity = new_class_identity(s.trusted.post_quantum_keys())
    recipient = str(identity.recipient)
    generation = len(s.trusted.generations(cls)) + 1
    ck = ClassKey(cls, generation, recipient, me.name, -1, frozenset())
    entries = _write_entries(s, ck, identity, cleared_users(policy, cls))
    state = {"class_key": {"class": cls.to_dict(), "class_id": cls.id,
                           "generation": generation, "recipient": recipient},
             "grants": {"key_id": key_id(recipient), "entries": entries}}
    _state_record(s, "class-key", f"a new key for {cls} (generation {generation})", state)
    made = s.trusted.current(cls)
    if made is None or made.recipient != recipient:
        raise StorageError(f"the new key of {cls} did not take effect",
                           hint="run 'vault doctor'; the audit log says why")
    s.my_keyring().remember(made, identity)
    return made


def _write_entries(s: Session, ck: ClassKey, identity: AgeKeyPair,
                   users: list[User]) -> list[dict[str, str]]:
    entries = []
    for user in sorted(users, key=lambda u: u.recipient):
        data = entry_bytes(s.manifest.vault_id, ck, identity, user.recipient)
        s.backend.write_keyring_entry(user.recipient, ck.key_id, data)
        entries.append({"owner": user.recipient, "sha256": hashlib.sha256(data).hexdigest()})
    return entries


def lacking(s: Session, ck: ClassKey) -> list[User]:
    """Users cleared for ``ck``'s class now with no granted entry for it."""
    return [u for u in cleared_users(s.trusted.policy, ck.cls)
            if s.trusted.entry_digest(ck.key_id, u.recipient) is None]


def grant_missing(s: Session, ck: ClassKey) -> list[str]:
    """Give every cleared user lacking it an entry for ``ck``, if we hold
    it; ``["user: class", ...]``. Only a clean key is granted."""
    if s.identity is None or not lacking(s, ck):
        return []  # the usual case: no lock taken
    identity = s.my_keyring().identity(ck)
    if identity is None:
        return []
    with s.lock():
        current = s.trusted.key(ck.key_id)
        if current is None or not current.clean(s.trusted.policy):
            return []
        users = lacking(s, current)
        if not users:
            return []
        entries = _write_entries(s, current, identity, users)
        _state_record(s, "grant", f"{current.cls} granted to "
                      f"{', '.join(u.name for u in users)}",
                      {"grants": {"key_id": current.key_id, "entries": entries}})
    return [f"{u.name}: {ck.cls}" for u in users]


def retire(s: Session, ck: ClassKey, owners: list[str], why: str) -> None:
    """Delete entries of ``ck`` (under the write lock), on the record, once
    the replay counted it: an entry a record it ignores names stays granted,
    and deleted it would be missing on every machine (docs/DESIGN.md §3.5)."""
    from vault._ops.discipline import NotCounted

    if not owners:
        return
    _state_record(s, "retire", why, {"retire": {"key_id": ck.key_id, "owners": owners}})
    if any(s.trusted.entry_digest(ck.key_id, owner) is not None for owner in owners):
        raise NotCounted(f"the withdrawal of keyring entries of {ck.cls} was recorded but "
                         "does not count: no entry was deleted",
                         hint="'vault doctor' names the reason")
    remove_entries(s, ck, owners)  # withdrawn: one that stays is left over, said
