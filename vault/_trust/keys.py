"""Label-class keys and user keyrings (docs/DESIGN.md §3).

A *label class* is a level plus a set of compartments. Each class that is
used has an X25519 key pair; its public half is published in a signed
*class key record*, its private half exists only inside *keyring entries*:
small age files, each encrypted to one user's own age recipient, holding the
class identity as a standard ``AGE-SECRET-KEY-1…`` line. Stock ``age -d -i
my-identity keyrings/<my recipient>/<key id>.age`` shows what a user holds.

Rotation adds a *generation*: a new key pair for the same class. Records are
never edited, only added (exclusive create), so two writers racing to create
the same generation cannot both win.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault._primitives import canonical_json
from vault._trust.chain import check_signature, is_administrator, open_statement, sign_statement
from vault.age import X25519Identity, X25519Recipient
from vault.errors import IntegrityError, NoIdentityMatchError, VaultError

if TYPE_CHECKING:  # pragma: no cover
    from vault._trust.chain import PolicyChain
    from vault.identity import UserIdentity
    from vault.policy import Label, Policy, User
    from vault.store.base import Backend

__all__ = ["ClassKey", "ClassKeys", "Keyring", "LabelClass", "cleared_users", "write_entry"]


@dataclass(frozen=True)
class LabelClass:
    """Level + compartments: what decides who may hold a document's key.
    (Caveats do not: they are enforced by the policy, not by keys.)"""

    level: str
    compartments: frozenset[str] = frozenset()

    @classmethod
    def of(cls, label: Label) -> LabelClass:
        return cls(label.level, frozenset(label.compartments))

    @property
    def id(self) -> str:
        """32 hex digits naming the class in file names and the index."""
        return hashlib.sha256(b"vault/v1 class\n" + canonical_json(self.to_dict())).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "compartments": sorted(self.compartments)}

    def label(self) -> Label:
        from vault.policy import Label

        return Label(level=self.level, compartments=self.compartments)

    def __str__(self) -> str:
        if not self.compartments:
            return self.level
        return f"{self.level} [{', '.join(sorted(self.compartments))}]"


def cleared_users(policy: Policy, cls: LabelClass) -> list[User]:
    """Users of ``policy`` whose clearance dominates ``cls``, by name."""
    label = cls.label()
    return [u for _, u in sorted(policy.users.items()) if policy.dominates(u.clearance, label)]


@dataclass(frozen=True)
class ClassKey:
    """A verified class key record: one generation of one class's public key."""

    cls: LabelClass
    generation: int
    recipient: X25519Recipient
    created: str
    created_by: str
    policy: str  # hash of the policy version the creator signed under
    provisional: bool  # creator was neither cleared for the class nor an administrator

    @property
    def key_id(self) -> str:
        return key_id(self.recipient)


def key_id(recipient: X25519Recipient) -> str:
    return hashlib.sha256(str(recipient).encode("ascii")).hexdigest()[:32]


def _record(vault_id: str, cls: LabelClass, generation: int, recipient: str, created: str,
            actor: UserIdentity, policy_hash: str) -> dict[str, Any]:
    return {"vault": vault_id, "class": cls.to_dict(), "class_id": cls.id,
            "generation": generation, "recipient": recipient, "created": created,
            "created_by": {"name": actor.name, "signing_key": actor.signing_public},
            "policy": policy_hash}


def _verify_record(data: bytes, chain: PolicyChain, class_id: str, generation: int) -> ClassKey:
    what = f"class key record {class_id}.{generation}"
    st, sig = open_statement(data, "class key", what)
    try:
        cls = LabelClass(st["class"]["level"], frozenset(st["class"]["compartments"]))
        by, policy_hash = st["created_by"], st["policy"]
        recipient = X25519Recipient.from_string(st["recipient"])
        ok = (st["vault"] == chain.manifest.vault_id and st["class_id"] == class_id == cls.id
              and st["generation"] == generation and isinstance(st["created"], str))
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(f"{what} is malformed") from None
    if not ok:
        raise IntegrityError(f"{what} does not belong here (moved or copied)")
    check_signature(st, sig, by.get("signing_key"), "class key", what)
    policy = chain.policy(policy_hash)
    user = chain.user(by.get("name"), by.get("signing_key"), policy_hash)
    if policy is None or user is None:
        raise IntegrityError(f"{what} is signed by someone the policy does not know")
    admin = is_administrator(policy, user.name)
    if generation > 1 and not admin:
        raise IntegrityError(f"{what}: only an administrator may rotate a class key")
    cleared = policy.dominates(user.clearance, cls.label())
    return ClassKey(cls, generation, recipient, st["created"], user.name, policy_hash,
                    provisional=not (cleared or admin))


class ClassKeys:
    """The verified class key records of a vault (read once, then cached)."""

    def __init__(self, backend: Backend, chain: PolicyChain) -> None:
        self._backend = backend
        self._chain = chain
        self._by_class: dict[str, list[ClassKey]] | None = None

    def _load(self) -> dict[str, list[ClassKey]]:
        if self._by_class is None:
            out: dict[str, list[ClassKey]] = {}
            for class_id, gen in self._backend.class_keys():
                data = self._backend.read_class_key(class_id, gen)
                ck = _verify_record(data, self._chain, class_id, gen)
                out.setdefault(class_id, []).append(ck)
            for gens in out.values():
                if [k.generation for k in gens] != list(range(1, len(gens) + 1)):
                    raise IntegrityError(f"class key generations of {gens[0].cls} have gaps")
            self._by_class = out
        return self._by_class

    def refresh(self) -> None:
        self._by_class = None

    def refresh_if_changed(self) -> bool:
        """Re-read the records if another process added some (a rotation, a
        new class) since they were read; True if so."""
        if self._by_class is None:
            self._load()  # first read: nothing this object knew has changed
            return False
        listed = set(self._backend.class_keys())
        if listed == {(ck.cls.id, ck.generation) for gens in self._by_class.values()
                      for ck in gens}:
            return False
        self._chain.catch_up()
        self.refresh()
        return True

    def classes(self) -> list[list[ClassKey]]:
        return list(self._load().values())

    def generations(self, cls: LabelClass) -> list[ClassKey]:
        return list(self._load().get(cls.id, []))

    def current(self, cls: LabelClass) -> ClassKey | None:
        gens = self.generations(cls)
        return gens[-1] if gens else None

    def create(self, cls: LabelClass, actor: UserIdentity, policy: Policy,
               created: str) -> tuple[ClassKey, X25519Identity] | None:
        """Make the next generation of ``cls``: a fresh key pair, an entry for
        every cleared user, then the record. ``None`` if another writer
        created that generation first (our entries are withdrawn)."""
        generation = len(self.generations(cls)) + 1
        identity = X25519Identity.generate()
        record = _record(self._chain.manifest.vault_id, cls, generation, str(identity.recipient),
                         created, actor, policy.hash)
        owners = [u.recipient for u in cleared_users(policy, cls)]
        vid = self._chain.manifest.vault_id
        ck = ClassKey(cls, generation, identity.recipient, created, actor.name, policy.hash,
                      provisional=False)
        for owner in owners:
            write_entry(self._backend, owner, ck, identity, vid)
        data = sign_statement(actor, "class key", record)
        if not self._backend.add_class_key(cls.id, generation, data):
            for owner in owners:
                self._backend.delete_keyring_entry(owner, ck.key_id)
            self.refresh()
            return None
        self.refresh()
        verified = self.current(cls)
        assert verified is not None and verified.recipient == identity.recipient
        return verified, identity


def entry_text(vault_id: str, ck: ClassKey, identity: X25519Identity) -> str:
    return (
        "# vault keyring entry: a label-class identity\n"
        f"# vault: {vault_id}\n"
        f"# class: {ck.cls}\n"
        f"# class id: {ck.cls.id}\n"
        f"# generation: {ck.generation}\n"
        f"# recipient: {ck.recipient}\n"
        f"{identity}\n"
    )


def write_entry(backend: Backend, owner: str, ck: ClassKey, identity: X25519Identity,
                vault_id: str) -> None:
    """Give ``owner`` (an age1… recipient) the class identity ``identity``."""
    from vault.age import encrypt

    out = io.BytesIO()
    text = entry_text(vault_id, ck, identity).encode("ascii")
    encrypt(io.BytesIO(text), out, [X25519Recipient.from_string(owner)])
    backend.write_keyring_entry(owner, ck.key_id, out.getvalue())


class Keyring:
    """The class identities one user holds, decrypted on demand."""

    def __init__(self, backend: Backend, user: UserIdentity) -> None:
        self._backend = backend
        self._user = user
        self._cache: dict[str, X25519Identity | None] = {}

    def identity(self, ck: ClassKey) -> X25519Identity | None:
        """The identity of ``ck`` if this user holds it (and it is genuine)."""
        if ck.key_id not in self._cache:
            self._cache[ck.key_id] = self._read(ck)
        return self._cache[ck.key_id]

    def remember(self, ck: ClassKey, identity: X25519Identity) -> None:
        """Keep a class identity this process just made (it wrote the entry)."""
        if identity.recipient == ck.recipient:
            self._cache[ck.key_id] = identity

    def identities(self, cks: list[ClassKey]) -> list[X25519Identity]:
        return [i for ck in cks if (i := self.identity(ck)) is not None]

    def _read(self, ck: ClassKey) -> X25519Identity | None:
        from vault.age import decrypt

        data = self._backend.read_keyring_entry(self._user.recipient, ck.key_id)
        if data is None:
            return None
        out = io.BytesIO()
        try:
            decrypt(io.BytesIO(data), out, [self._user.age_identity])
            keys = [ln for ln in out.getvalue().decode("ascii").splitlines()
                    if ln.startswith("AGE-SECRET-KEY-1")]
            identity = X25519Identity.from_string(keys[0]) if len(keys) == 1 else None
        except (NoIdentityMatchError, VaultError, ValueError, UnicodeDecodeError):
            return None  # not ours, damaged or planted: hold nothing from it
        # An entry only counts if it is the private half of the signed record.
        if identity is None or identity.recipient != ck.recipient:
            return None
        return identity
