"""Creating a vault (docs/DESIGN.md §5 and §6.1).

The officer's identity must be a user of the policy, with the same keys,
and an administrator under it. ``vault.json`` is written last: it is the
commit point, so a crash leaves a folder that is visibly not a vault.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vault._atomic import write_atomic
from vault._trust.chain import Manifest, is_administrator, sign_policy_version, sign_statement
from vault.age import X25519Identity
from vault.errors import DeniedError, UsageError
from vault.store import Backend, open_backend

if TYPE_CHECKING:  # pragma: no cover
    from vault._vault import Vault
    from vault.identity import UserIdentity
    from vault.policy import Policy

__all__ = ["init_vault", "read_policy_file"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_policy_file(path: str | os.PathLike[str]) -> tuple[bytes, Policy]:
    """The exact bytes of a policy file and the policy they define."""
    from vault.policy import load_policy_bytes
    from vault.policy._yaml import MAX_POLICY_BYTES

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_POLICY_BYTES + 1)  # enough for the loader to refuse it
    except OSError as e:
        raise UsageError(f"cannot read policy file {os.fspath(path)}: {e.strerror}") from None
    return raw, load_policy_bytes(raw, os.fspath(path))


def check_officer(policy: Policy, officer: UserIdentity) -> None:
    user = policy.users.get(officer.name)
    if user is None or (user.signing_key, user.recipient) != (officer.signing_public,
                                                              officer.recipient):
        raise UsageError(
            f"the policy has no user {officer.name!r} with this identity's keys",
            hint="copy the output of 'vault identity show FILE' into the policy's users",
        )
    if not is_administrator(policy, officer.name):
        decision = policy.decide(officer.name, "administer", None)
        raise DeniedError(f"{officer.name} may not administer a vault under this policy",
                          decision=decision, hint="give the officer a rule allowing 'administer'")


def _write_recovery(path: str | os.PathLike[str], vault_id: str) -> str:
    identity = X25519Identity.generate()
    text = (f"# vault recovery identity: opens every document of vault {vault_id}\n"
            f"# keep it offline; use it with stock age: age -d -i THIS-FILE DOCUMENT.age\n"
            f"# recipient: {identity.recipient}\n{identity}\n")
    try:
        write_atomic(path, text.encode("ascii"), mode=0o600, replace=False, sweep=True)
    except FileExistsError:
        raise UsageError(f"{os.fspath(path)} already exists",
                         hint="choose a new file for the recovery identity") from None
    return str(identity.recipient)


def init_vault(cls: type[Vault], path: str | os.PathLike[str] | Backend,
               policy_path: str | os.PathLike[str], officer: UserIdentity,
               recovery_out: str | os.PathLike[str] | None) -> Vault:
    raw, policy = read_policy_file(policy_path)
    check_officer(policy, officer)
    if not policy.recovery and recovery_out is None:
        raise UsageError("the policy names no recovery recipients",
                         hint="add 'recovery:' to the policy, or pass --recovery-out FILE")
    if recovery_out is not None and os.path.lexists(recovery_out):
        raise UsageError(f"{os.fspath(recovery_out)} already exists",
                         hint="choose a new file for the recovery identity")
    backend = open_backend(path)
    backend.create()
    vault_id = secrets.token_hex(16)
    recovery = [_write_recovery(recovery_out, vault_id)] if recovery_out is not None else []
    from vault.audit import NoteSigner

    origin = f"vault/{vault_id}"
    signer = NoteSigner.generate(origin)
    backend.write_log_key((signer.private_key() + "\n").encode("ascii"))
    created = _now()
    digest = policy.hash
    manifest = Manifest(vault_id, created,
                        {"name": officer.name, "recipient": officer.recipient,
                         "signing_key": officer.signing_public},
                        digest, signer.verifier_key(), origin, tuple(recovery))
    decision = policy.decide(officer.name, "administer", None)
    fields: dict[str, Any] = {
        "actor": {"name": officer.name, "key": officer.fingerprint}, "action": "init",
        "doc": None, "label": None, "outcome": "allowed", "rules": list(decision.rule_ids),
        "reason": f"vault {vault_id} created; " + "; ".join(decision.reasons),
        "policy": digest,
    }
    backend.audit_log(signer, origin).append(fields, officer.signing_key)  # fail closed
    backend.add_policy(1, raw, sign_policy_version(officer, vault_id, 1, raw, None, created))
    backend.write_manifest(sign_statement(officer, "manifest", manifest.statement()))
    return cls(backend, officer)
