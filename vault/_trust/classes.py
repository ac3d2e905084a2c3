"""Label classes and their keys (docs/DESIGN.md §3).

A *label class* is a level plus a set of compartments: what decides who may
hold a document's key (caveats do not; the policy enforces them). Each
class that is used has a key pair per *generation*; its public half, its
creator and everyone who was ever given its private half are known from the
verified audit log (:mod:`vault._trust.journal`), never from a file that
someone could plant.

A generation is **clean** under a policy when every person who could know
its private key -- its creator and everyone it was granted to -- is, with
the same keys, a user cleared for the class. Nothing is ever encrypted to a
key that is not clean: a revocation makes the class's current key unclean,
and the next cleared person who needs it makes a new generation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault._primitives import canonical_json

if TYPE_CHECKING:  # pragma: no cover
    from datetime import datetime

    from vault.age import Recipient
    from vault.policy import Label, Policy, User

__all__ = ["ClassKey", "Holder", "LabelClass", "cleared_users", "key_id", "may_withdraw",
           "unclean", "user_by_recipient", "withdrawable"]


@dataclass(frozen=True)
class LabelClass:
    """Level + compartments (docs/FORMAT.md §13.3)."""

    level: str
    compartments: frozenset[str] = frozenset()

    @classmethod
    def of(cls, label: Label) -> LabelClass:
        return cls(label.level, frozenset(label.compartments))

    @classmethod
    def from_dict(cls, data: Any) -> LabelClass:
        """Strict: ``{"compartments": [sorted names], "level": L}``; ValueError."""
        if (not isinstance(data, dict) or set(data) != {"level", "compartments"}
                or not isinstance(data["level"], str) or not data["level"]
                or not isinstance(data["compartments"], list)
                or not all(isinstance(c, str) and c for c in data["compartments"])
                or data["compartments"] != sorted(set(data["compartments"]))):
            raise ValueError("malformed label class")
        return cls(data["level"], frozenset(data["compartments"]))

    @property
    def id(self) -> str:
        """32 hex digits naming the class."""
        return hashlib.sha256(b"vault/v1 class\n" + canonical_json(self.to_dict())).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "compartments": sorted(self.compartments)}

    def label(self) -> Label:
        from vault.policy import Label

        return Label(level=self.level, compartments=self.compartments)

    def __str__(self) -> str:
        # The banner form every label is written in (vault.policy._banner),
        # by names: the policy that would give markings is not at hand.
        return "//".join([self.level, *(["/".join(sorted(self.compartments))]
                                        if self.compartments else [])])


def key_id(recipient: str) -> str:
    """32 hex digits naming one class key generation (by its public key)."""
    return hashlib.sha256(recipient.encode("ascii")).hexdigest()[:32]


def cleared_users(policy: Policy, cls: LabelClass) -> list[User]:
    """Users of ``policy`` whose clearance dominates ``cls``, by name."""
    label = cls.label()
    return [u for _, u in sorted(policy.users.items()) if policy.dominates(u.clearance, label)]


def user_by_recipient(policy: Policy, recipient: str) -> User | None:
    for user in policy.users.values():
        if user.recipient == recipient:
            return user
    return None


def unclean(policy: Policy, cls: LabelClass, holders: Iterable[Holder]) -> list[Holder]:
    """Those of ``holders`` who are not, with the same recipient, users
    cleared for ``cls`` under ``policy``: a key they could know is not
    clean (docs/DESIGN.md §3.3)."""
    label = cls.label()
    bad = []
    for h in sorted(holders, key=lambda h: (h.name or "", h.recipient)):
        user = policy.users.get(h.name) if h.name is not None else None
        if (user is None or user.recipient != h.recipient
                or not policy.dominates(user.clearance, label)):
            bad.append(h)
    return bad


def may_withdraw(policy: Policy, cls: LabelClass, actor: str | None, holder: bool, *,
                 at: datetime | None = None) -> bool:
    """May ``actor`` withdraw keyring entries of a key of ``cls``
    (FORMAT.md §14.5): an administrator (approvals aside: withdrawing
    entries nobody needs only shuts out who is no longer cleared, and the
    change that made them unneeded was itself approved), or a ``holder`` of
    that key still cleared for the class. The replay counts a ``retire`` by
    this rule and the client writes one only by it: a record the replay
    ignores would leave the entries it deleted missing on every machine."""
    if actor is None:
        return False
    if policy.may_administer(actor, at=at):
        return True
    user = policy.users.get(actor)
    return holder and user is not None and policy.dominates(user.clearance, cls.label())


def withdrawable(policy: Policy, cls: LabelClass, owner: str, unused: bool) -> bool:
    """May the entry of ``owner`` (a recipient) for a key of ``cls`` be
    withdrawn: the key is ``unused`` (an older generation no document is
    wrapped to), or ``owner`` is no user cleared for the class. Anything
    else would lock someone cleared out of the class's documents."""
    if unused:
        return True
    who = user_by_recipient(policy, owner)
    return who is None or not policy.dominates(who.clearance, cls.label())


@dataclass(frozen=True)
class Holder:
    """Someone who could know a class private key: a user name (None for a
    recipient no policy user had) and the recipient the key went to."""

    name: str | None
    recipient: str


@dataclass(frozen=True)
class ClassKey:
    """One verified generation of a class key (from the audit log)."""

    cls: LabelClass
    generation: int
    recipient: str  # age1… or age1pq1…
    creator: str
    seq: int  # the record that created it
    holders: frozenset[Holder]

    @property
    def key_id(self) -> str:
        return key_id(self.recipient)

    def age_recipient(self) -> Recipient:
        from vault.age import parse_recipient

        return parse_recipient(self.recipient)

    def unclean_holders(self, policy: Policy) -> list[Holder]:
        """Holders who are not, with the same recipient, users cleared for
        the class under ``policy`` (docs/DESIGN.md §3.3)."""
        return unclean(policy, self.cls, self.holders)

    def clean(self, policy: Policy) -> bool:
        return not self.unclean_holders(policy)

    @property
    def post_quantum(self) -> bool:
        return self.recipient.startswith("age1pq1")

    def usable(self, policy: Policy, post_quantum: bool) -> bool:
        """May new headers be wrapped to it under ``policy``: clean, and of
        the kind (hybrid or not) the recovery recipients beside it are."""
        return self.clean(policy) and self.post_quantum == post_quantum
