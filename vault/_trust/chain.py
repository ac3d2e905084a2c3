"""The vault's roots of trust: the signed manifest and the signed chain of
policy versions (docs/DESIGN.md §5).

``vault.json`` is a signed statement by the officer naming the vault id, the
officer's keys, the SHA-256 of the first policy version and the public key
that signs audit checkpoints. Policy version 1 must have exactly that hash
and be signed by that officer, who must appear in it with the same signing
key and be an administrator under it. Each later version names the hash of
its predecessor and must be signed by an administrator *of the predecessor*:
whoever can write to the folder but holds no administrator's key cannot
install a policy, and cannot drop, reorder or edit a version without
breaking the chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault._primitives import (
    b64,
    canonical_json,
    parse_canonical_json,
    parse_signing_key,
    sign,
    unb64,
)
from vault._primitives import verify as verify_sig
from vault.errors import IntegrityError

if TYPE_CHECKING:  # pragma: no cover
    from vault.identity import UserIdentity
    from vault.policy import Policy, User
    from vault.store.base import Backend

__all__ = ["Manifest", "PolicyChain", "is_administrator", "sign_statement"]

FORMAT = "vault/v1"


def sign_statement(identity: UserIdentity, context: str, statement: dict[str, Any]) -> bytes:
    """``{"statement": …, "sig": …}`` as canonical JSON bytes."""
    sig = sign(identity.signing_key, context, canonical_json(statement))
    return canonical_json({"statement": statement, "sig": b64(sig)}) + b"\n"


def open_statement(data: bytes, context: str, what: str) -> tuple[dict[str, Any], bytes]:
    """Parse a signed statement; returns ``(statement, signature)`` unverified."""
    try:
        outer = parse_canonical_json(data.removesuffix(b"\n"))
        statement, sig = outer["statement"], unb64(outer["sig"], 64)
        if set(outer) != {"statement", "sig"} or not isinstance(statement, dict):
            raise ValueError
    except (ValueError, KeyError):
        raise IntegrityError(f"{what} is malformed") from None
    return statement, sig


def check_signature(statement: dict[str, Any], sig: bytes, key_text: Any, context: str,
                    what: str) -> None:
    try:
        key = parse_signing_key(key_text)
    except ValueError:
        raise IntegrityError(f"{what} names a malformed signing key") from None
    if not verify_sig(key, context, canonical_json(statement), sig):
        raise IntegrityError(f"{what} has a bad signature")


def is_administrator(policy: Policy, name: str) -> bool:
    """May ``name`` administer the vault under ``policy``?"""
    if name not in policy.users:
        return False
    return bool(policy.decide(name, "administer", None).allowed)


@dataclass(frozen=True)
class Manifest:
    """The verified content of ``vault.json``."""

    vault_id: str
    created: str
    officer: dict[str, str]  # name, recipient, signing_key
    genesis: str  # SHA-256 hex of policy version 1
    log_key: str  # signed-note verifier key of the checkpoint signer
    origin: str  # the audit log's checkpoint origin line
    recovery: tuple[str, ...] = ()  # recovery recipients made at init (--recovery-out)

    @classmethod
    def load(cls, data: bytes) -> Manifest:
        statement, sig = open_statement(data, "manifest", "vault.json")
        try:
            if statement.get("format") != FORMAT:
                raise ValueError
            m = cls(statement["vault"], statement["created"], dict(statement["officer"]),
                    statement["genesis"], statement["log_key"], statement["origin"],
                    tuple(statement["recovery"]))
            key = m.officer["signing_key"]
            if not all(isinstance(r, str) for r in m.recovery):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise IntegrityError("vault.json is malformed or of an unknown format") from None
        check_signature(statement, sig, key, "manifest", "vault.json")
        return m

    def statement(self) -> dict[str, Any]:
        return {"format": FORMAT, "vault": self.vault_id, "created": self.created,
                "officer": self.officer, "genesis": self.genesis, "log_key": self.log_key,
                "origin": self.origin, "recovery": list(self.recovery)}


@dataclass(frozen=True)
class PolicyVersion:
    version: int
    sha256: str
    signer: str
    signed_at: str
    policy: Policy


class PolicyChain:
    """Every installed policy version, verified from the manifest onwards."""

    def __init__(self, manifest: Manifest, versions: list[PolicyVersion],
                 backend: Backend | None = None) -> None:
        self.manifest = manifest
        self.versions = versions
        self._by_hash = {v.sha256: v for v in versions}
        self._backend = backend

    def catch_up(self) -> bool:
        """Add the versions another process installed since this chain was
        read (verified from the manifest on, like :meth:`load`). A vault
        object lives on while others apply policies: a label or class key
        signed under a newer version must not look forged to it."""
        if self._backend is None or len(self._backend.policy_versions()) <= len(self.versions):
            return False
        fresh = PolicyChain.load(self._backend, self.manifest)
        if [v.sha256 for v in fresh.versions[:len(self.versions)]] != [
                v.sha256 for v in self.versions]:
            raise IntegrityError("the vault's policy history changed while it was open",
                                 hint="someone replaced policy versions; treat it as an incident")
        self.versions = fresh.versions
        self._by_hash = fresh._by_hash
        return True

    @property
    def current(self) -> Policy:
        return self.versions[-1].policy

    @property
    def head(self) -> PolicyVersion:
        return self.versions[-1]

    def policy(self, sha256: str) -> Policy | None:
        if sha256 not in self._by_hash:
            self.catch_up()
        v = self._by_hash.get(sha256)
        return None if v is None else v.policy

    def user(self, name: str, signing_key: str, sha256: str | None = None) -> User | None:
        """The user ``name`` with exactly this signing key, in version
        ``sha256`` (or in any version when ``sha256`` is None)."""
        if sha256 is not None and sha256 not in self._by_hash:
            self.catch_up()
        candidates = [self._by_hash[sha256]] if sha256 in self._by_hash else []
        if sha256 is None:
            candidates = list(reversed(self.versions))
        for v in candidates:
            u = v.policy.users.get(name)
            if u is not None and u.signing_key == signing_key:
                return u
        return None

    def recovery(self) -> set[str]:
        """Recovery recipients of every version (documents wrapped under an
        earlier version stay valid until rewrapped)."""
        return {r for v in self.versions for r in v.policy.recovery}

    @classmethod
    def load(cls, backend: Backend, manifest: Manifest) -> PolicyChain:
        from vault.policy import load_policy_bytes

        versions: list[PolicyVersion] = []
        numbers = backend.policy_versions()
        if numbers != list(range(1, len(numbers) + 1)):
            raise IntegrityError("policy versions are missing or out of order")
        for n in numbers:
            raw, sig_bytes = backend.read_policy(n)
            what = f"policy version {n}"
            statement, sig = open_statement(sig_bytes, "policy", what)
            digest = hashlib.sha256(raw).hexdigest()
            previous = versions[-1].sha256 if versions else None
            expect = {"vault": manifest.vault_id, "version": n, "sha256": digest,
                      "previous": previous}
            if any(statement.get(k) != v for k, v in expect.items()):
                raise IntegrityError(f"{what} does not belong to this vault's policy chain")
            signer = statement.get("signer")
            if not isinstance(signer, dict):
                raise IntegrityError(f"{what} is malformed")
            check_signature(statement, sig, signer.get("signing_key"), "policy", what)
            policy = load_policy_bytes(raw, f"policy/{n:06d}.yaml")
            authority = versions[-1].policy if versions else policy
            _check_signer(authority, signer, manifest if n == 1 else None, what)
            versions.append(PolicyVersion(n, digest, signer["name"],
                                          str(statement.get("signed_at")), policy))
        if not versions or versions[0].sha256 != manifest.genesis:
            raise IntegrityError("the first policy version is not the one pinned in vault.json")
        return cls(manifest, versions, backend)


def _check_signer(authority: Policy, signer: dict[str, Any], manifest: Manifest | None,
                  what: str) -> None:
    name, key = signer.get("name"), signer.get("signing_key")
    if manifest is not None and (name, key) != (manifest.officer["name"],
                                                manifest.officer["signing_key"]):
        raise IntegrityError(f"{what} is not signed by the officer pinned in vault.json")
    user = authority.users.get(name) if isinstance(name, str) else None
    if user is None or user.signing_key != key or not is_administrator(authority, user.name):
        raise IntegrityError(
            f"{what} is not signed by an administrator of the version before it",
            hint="someone replaced the vault's policy; treat it as an incident",
        )


def sign_policy_version(identity: UserIdentity, vault_id: str, version: int, raw: bytes,
                        previous: str | None, signed_at: str) -> bytes:
    statement = {
        "vault": vault_id, "version": version, "sha256": hashlib.sha256(raw).hexdigest(),
        "previous": previous, "signed_at": signed_at,
        "signer": {"name": identity.name, "signing_key": identity.signing_public},
    }
    return sign_statement(identity, "policy", statement)
