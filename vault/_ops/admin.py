"""Administration: installing a policy version and rotating class keys
(docs/DESIGN.md §6.6).

Granting needs only public keys: whoever holds a class identity can write
it for a newly cleared user's recipient. Revoking needs a new key: the
class gets a new generation (a fresh key pair written for every user
cleared *now*, from their public recipients), every document of the class
that the administrator can open is rewrapped to it, and the old entries are
removed. Documents the administrator cannot open stay on the old
generation, listed as pending, until someone who can runs ``rotate``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from vault._ops.change import rewrap_document
from vault._ops.init import read_policy_file
from vault._ops.read import sync_index
from vault._ops.seal import grant_missing, wrap_recipients
from vault._results import ApplyReport, RotateReport
from vault._sealed.label import VaultStanzas
from vault._sealed.reading import read_sealed, unlock
from vault._trust.chain import is_administrator, sign_policy_version
from vault._trust.keys import ClassKey, LabelClass, cleared_users
from vault.errors import NoKeyError, StorageError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._vault import Vault
    from vault.policy import Policy

__all__ = ["apply_policy", "rotate"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def apply_policy(v: Vault, policy_path: str | os.PathLike[str]) -> ApplyReport:
    me = v.me()
    with v.attempt("policy-apply") as att:
        raw, new = read_policy_file(policy_path)
        if v.policy.decide(me.name, "administer", None).allowed:
            _check_successor(v, new)  # a non-administrator is simply denied below
        version = v.chain.head.version + 1
        v.authorise(att, "administer", None,
                    note=f"install policy version {version} (sha256 {new.hash})")
        with v.lock():
            v.class_keys.refresh()
            if v.backend.policy_versions()[-1] != version - 1:
                raise StorageError("another policy version was installed meanwhile",
                                   hint="review it, then apply yours again")
            signature = sign_policy_version(me, v.id, version, raw, v.chain.head.sha256, _now())
            v.backend.add_policy(version, raw, signature)
            old = v.policy
            v.reload()
            report = ApplyReport(version, new.hash)
            reconcile(v, old, report)
    return report


def _check_successor(v: Vault, new: Policy) -> None:
    """The installer must stay an administrator, with the same key, under the
    new version: the keys it rotates are signed under it (docs/DESIGN.md
    §3.3), and nobody should lock the vault's last officer out by mistake."""
    me = v.me()
    user = new.users.get(me.name)
    if user is None or user.signing_key != me.signing_public or not is_administrator(new,
                                                                                     me.name):
        raise UsageError(
            "the new policy must keep you an administrator, with the same signing key",
            hint="hand over in two steps: add the new officer first, then let them remove you",
        )
    if new.hash == v.chain.head.sha256:
        raise UsageError("this policy is already the active version")


def _holders(v: Vault) -> dict[str, set[str]]:
    """Key ids held, by owner recipient."""
    return {owner: set(v.backend.keyring_entries(owner)) for owner in v.backend.keyring_owners()}


def _name(policy: Policy, recipient: str) -> str:
    names = [n for n, u in policy.users.items() if u.recipient == recipient]
    return names[0] if names else recipient


def reconcile(v: Vault, old: Policy, report: ApplyReport) -> None:
    """Bring keyrings in line with the policy just installed."""
    policy = v.policy
    holders = _holders(v)
    recovery_changed = set(old.recovery) != set(policy.recovery)
    for gens in v.class_keys.classes():
        current = gens[-1]
        entitled = {u.recipient for u in cleared_users(policy, current.cls)}
        held_by = {o for o, ids in holders.items() if current.key_id in ids}
        revoked = held_by - entitled
        report.revoked += [f"{_name(old, o)}: {current.cls}" for o in sorted(revoked)]
        if revoked or recovery_changed:
            rot = RotateReport()
            _rotate_class(v, current.cls, rot, rotate=bool(revoked))
            report.rotated += rot.rotated
            report.rewrapped += rot.rewrapped
            report.granted += rot.granted
            report.pending += rot.pending
        else:
            report.granted += grant_missing(v, current)
            missing = sorted(_name(policy, o) for o in entitled
                             if v.backend.read_keyring_entry(o, current.key_id) is None)
            if missing:
                report.pending.append(
                    f"grant {current.cls} to {', '.join(missing)}: needs someone who holds "
                    "that class key to seal at it or to run 'vault rotate'")


def rotate(v: Vault, classes: Sequence[str] | None) -> RotateReport:
    """An administrator gives the classes (default: all) new keys and
    rewraps their documents. Anyone else may only finish pending rewraps of
    classes whose current key they hold: that moves documents onto a key
    the policy already gave out, and so grants nothing."""
    me = v.me()
    with v.attempt("rotate") as att:
        targets = _select(v, classes)
        names = ", ".join(str(ck.cls) for ck in targets) or "no classes"
        admin = v.policy.decide(me.name, "administer", None).allowed
        if admin:
            v.authorise(att, "administer", None, note=f"rotate {names}")
        else:
            targets = [ck for ck in targets if v.keyring.identity(ck) is not None]
            held = ", ".join(str(ck.cls) for ck in targets) or "no classes"
            v.record([att], "allowed", [], f"rewrap pending documents of {held} to their "
                     "current key (no new keys: grants nothing)")
        report = RotateReport()
        with v.lock():
            v.chain.catch_up()  # keys go to whom the latest version clears
            v.class_keys.refresh()
            for ck in targets:
                _rotate_class(v, ck.cls, report, rotate=admin)
    return report


def _select(v: Vault, classes: Sequence[str] | None) -> list[ClassKey]:
    current = [gens[-1] for gens in v.class_keys.classes()]
    if classes is None:
        return current
    by_name = {k: ck for ck in current for k in (ck.cls.id, str(ck.cls))}
    unknown = [c for c in classes if c not in by_name]
    if unknown:
        raise UsageError(f"no label class {unknown[0]!r} has a key in this vault",
                         hint="name classes by id or as 'LEVEL [COMPARTMENT, ...]'")
    return list({by_name[c].cls.id: by_name[c] for c in classes}.values())


def _rotate_class(v: Vault, cls: LabelClass, report: RotateReport, *, rotate: bool) -> None:
    """Optionally make a new generation of ``cls``; rewrap its documents to
    the current generation; retire entries nobody should hold any more."""
    if rotate:
        made = v.class_keys.create(cls, v.me(), v.policy, _now())
        if made is None:  # pragma: no cover - we hold the lock
            raise StorageError(f"class key {cls} changed meanwhile", hint="run it again")
        report.rotated.append(f"{cls} -> generation {made[0].generation}")
    gens = v.class_keys.generations(cls)
    current = gens[-1]
    pending = _rewrap_class(v, cls, current, report)
    report.granted += grant_missing(v, current)
    entitled = {u.recipient for u in cleared_users(v.policy, cls)}
    for owner, ids in _holders(v).items():
        for ck in gens:
            old_gen = ck is not current
            if ck.key_id in ids and (owner not in entitled or (old_gen and not pending)):
                v.backend.delete_keyring_entry(owner, ck.key_id)
                report.retired.append(f"{_name(v.policy, owner)}: {ck.cls} "
                                      f"generation {ck.generation}")


def _rewrap_class(v: Vault, cls: LabelClass, current: ClassKey, report: RotateReport) -> bool:
    """Rewrap every document of ``cls`` to ``current``; True if some could
    not be (the caller holds no key that opens them)."""
    pending = False
    identities = v.keyring.identities(v.class_keys.generations(cls))
    recipients = wrap_recipients(v, current)
    for row in sync_index(v):
        if row.class_id != cls.id:
            continue
        sealed, f = read_sealed(v.backend, v.chain, row.doc_id)
        with f:
            try:
                file_key, _ = unlock(sealed, identities, v.class_keys, v.chain)
            except NoKeyError:
                pending = True
                report.pending.append(f"rewrap {row.doc_id} ({cls}): needs someone cleared "
                                      "for it to run 'vault rotate'")
                continue
            want = [s for r in recipients for s in r.wrap(file_key)]
            have = [s for s in sealed.header.stanzas if s.type == "X25519"]
            if have == want:
                continue  # already wrapped to the current key and recovery set
            carry = VaultStanzas.carry(sealed.label, sealed.meta)
            rewrap_document(v, sealed, f, file_key, [*recipients, carry])
        report.rewrapped.append(row.doc_id)
    return pending
