"""Keyring entries: the only place a class private key exists
(docs/DESIGN.md §3.4, docs/FORMAT.md §13.6).

An entry is a small standard age file, encrypted to one user's own age
recipient, whose plaintext is an age identity file holding the class
identity (``AGE-SECRET-KEY-1…`` or ``AGE-SECRET-KEY-PQ-1…``), so that
``age -d -i my.key keyrings/<my recipient>/<key id>.age`` shows with stock
tools which keys a user holds. An entry counts only if

* the audit log records its grant with exactly these bytes (SHA-256), so
  an entry planted, replaced or edited in the folder is ignored, and
* its secret key's public half is the recipient of the class key it is
  filed under.

An entry the store cannot hand over (a file made unreadable, or something
else planted at its name) is damaged, as one replaced is: it gives nothing,
and what needs it is told why (:meth:`Keyring.damage`).
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

from vault.errors import IntegrityError, NoIdentityMatchError, VaultError

if TYPE_CHECKING:  # pragma: no cover
    from vault._trust.classes import ClassKey
    from vault._trust.trusted import TrustedState
    from vault.identity import AgeKeyPair as Identity
    from vault.identity import UserIdentity
    from vault.store.base import Backend

__all__ = ["Keyring", "entry_bytes", "new_class_identity"]

_PREFIXES = ("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-PQ-1")


def new_class_identity(post_quantum: bool) -> Identity:
    from vault.age import MLKEM768X25519Identity, X25519Identity

    return MLKEM768X25519Identity.generate() if post_quantum else X25519Identity.generate()


def entry_bytes(vault_id: str, ck: ClassKey, identity: Identity, owner: str) -> bytes:
    """A new entry giving ``owner`` (an age recipient) the class identity."""
    from vault.age import encrypt, parse_recipient

    text = ("# vault keyring entry: a label-class identity\n"
            f"# vault: {vault_id}\n"
            f"# class: {ck.cls}\n"
            f"# class id: {ck.cls.id}\n"
            f"# generation: {ck.generation}\n"
            f"# recipient: {ck.recipient}\n"
            f"{identity}\n").encode("ascii")
    out = io.BytesIO()
    encrypt(io.BytesIO(text), out, [parse_recipient(owner)])
    return out.getvalue()


def parse_entry(data: bytes, user: Identity) -> Identity | None:
    """The class identity in an entry, or None if it is not ours or damaged."""
    from vault.age import decrypt, parse_identities

    out = io.BytesIO()
    try:
        decrypt(io.BytesIO(data), out, [user])
        lines = [ln for ln in out.getvalue().decode("ascii").splitlines()
                 if ln.startswith(_PREFIXES)]
        found = parse_identities("\n".join(lines)) if len(lines) == 1 else []
    except (NoIdentityMatchError, VaultError, ValueError, UnicodeDecodeError):
        return None
    from vault.age import MLKEM768X25519Identity, X25519Identity

    one = found[0] if len(found) == 1 else None
    return one if isinstance(one, X25519Identity | MLKEM768X25519Identity) else None


class Keyring:
    """The class identities one user holds, decrypted on demand."""

    def __init__(self, backend: Backend, trusted: TrustedState, user: UserIdentity) -> None:
        self._backend = backend
        self._trusted = trusted
        self._user = user
        self._cache: dict[str, Identity | None] = {}
        self._damage: dict[str, str] = {}  # key id -> why its entry could not be read

    def identity(self, ck: ClassKey) -> Identity | None:
        """The identity of ``ck`` if this user holds a genuine entry for it."""
        if ck.key_id not in self._cache:
            self._cache[ck.key_id] = self._read(ck)
        return self._cache[ck.key_id]

    def remember(self, ck: ClassKey, identity: Identity) -> None:
        """Keep a class identity this process just made (it wrote the entry)."""
        if str(identity.recipient) == ck.recipient:
            self._cache[ck.key_id] = identity

    def identities(self, cks: list[ClassKey]) -> list[Identity]:
        return [i for ck in cks if (i := self.identity(ck)) is not None]

    def damage(self, ck: ClassKey) -> str | None:
        """Why this user's entry for ``ck`` could not be read, once
        :meth:`identity` found none; None when it was read (or is absent)."""
        return self._damage.get(ck.key_id)

    def check(self, ck: ClassKey) -> str | None:
        """Why this user's entry for ``ck`` does not count, or None."""
        logged = self._trusted.entry_digest(ck.key_id, self._user.recipient)
        try:
            data = self._backend.read_keyring_entry(self._user.recipient, ck.key_id)
        except IntegrityError as e:
            return e.message if logged else "not granted in the audit log"
        if data is None:
            return "missing" if logged else None
        if logged is None:
            return "not granted in the audit log"
        if hashlib.sha256(data).hexdigest() != logged:
            return "changed since it was granted"
        found = parse_entry(data, self._user.age_identity)
        if found is None or str(found.recipient) != ck.recipient:
            return "does not hold the class key it is filed under"
        return None

    def _read(self, ck: ClassKey) -> Identity | None:
        logged = self._trusted.entry_digest(ck.key_id, self._user.recipient)
        try:
            data = self._backend.read_keyring_entry(self._user.recipient, ck.key_id)
        except IntegrityError as e:
            # Damaged: nothing is held from it, as from one replaced (the
            # owner's client then makes a new key rather than seal to this
            # one, docs/DESIGN.md §3.5); an open that needs it says why.
            if logged is not None:
                self._damage[ck.key_id] = e.message
            return None
        if data is None or logged is None or hashlib.sha256(data).hexdigest() != logged:
            return None  # planted, edited or replaced: hold nothing from it
        found = parse_entry(data, self._user.age_identity)
        if found is None or str(found.recipient) != ck.recipient:
            return None
        return found
