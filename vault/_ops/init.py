"""Creating a vault (docs/DESIGN.md §5 and §6.1).

The officer's identity must be a user of the policy, with the same keys,
and an administrator under it. ``vault.json`` is written last: it is the
commit point, so a crash leaves a folder that is visibly not a vault.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vault._ops.session import resolve
from vault._trust.manifest import Manifest, sign_statement
from vault.errors import DeniedError, UsageError
from vault.identity import write_secret_file
from vault.store import Backend, open_backend

if TYPE_CHECKING:  # pragma: no cover
    from vault.identity import UserIdentity
    from vault.policy import Policy

__all__ = ["check_officer", "init_vault", "read_policy_file"]


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


def check_officer(policy: Policy, officer: UserIdentity) -> str:
    """The officer's name under ``policy``: the user whose keys the identity
    holds, who must be an administrator."""
    user = resolve(policy, officer)
    if user is None:
        raise UsageError(
            "the policy has no user with this identity's keys",
            hint="copy the output of 'vault identity show FILE' into the policy's users",
        )
    if not policy.may_administer(user.name):
        raise DeniedError(f"{user.name} may not administer a vault under this policy",
                          decision=policy.decide(user.name, "administer", None),
                          hint="give the officer a rule allowing 'administer'")
    return user.name


def _write_recovery(path: str | os.PathLike[str], vault_id: str, post_quantum: bool,
                    passphrase: str | None) -> str:
    from vault._trust.keyring import new_class_identity

    identity = new_class_identity(post_quantum)
    text = (f"# vault recovery identity: opens every document of vault {vault_id}\n"
            f"# keep it offline; use it with stock age: age -d -i THIS-FILE DOCUMENT.age\n"
            f"# recipient: {identity.recipient}\n{identity}\n").encode("ascii")
    write_secret_file(path, text, passphrase, "choose a new file for the recovery identity")
    return str(identity.recipient)


def init_vault(path: str | os.PathLike[str] | Backend, policy_path: str | os.PathLike[str],
               officer: UserIdentity, recovery_out: str | os.PathLike[str] | None,
               recovery_passphrase: str | None = None) -> tuple[Backend, str]:
    """Create the vault; returns its backend (the caller opens it) and id."""
    from vault._ops.keys import wants_pq

    backend = open_backend(path)
    if backend.exists():  # before anything else: nothing else would help
        raise UsageError(f"{backend.location} is already a vault",
                         hint="choose a new folder (or an empty database) for a new vault")
    raw, policy = read_policy_file(policy_path)
    name = check_officer(policy, officer)
    if not policy.recovery and recovery_out is None:
        raise UsageError("the policy names no recovery recipients",
                         hint="add 'recovery:' to the policy, or pass --recovery-out FILE")
    if recovery_out is not None and os.path.lexists(recovery_out):
        raise UsageError(f"{os.fspath(recovery_out)} already exists",
                         hint="choose a new file for the recovery identity")
    if recovery_out is not None and not os.path.isdir(os.path.dirname(
            os.path.abspath(recovery_out))):
        raise UsageError(f"the folder of {os.fspath(recovery_out)} does not exist",
                         hint="choose a file in an existing folder for the recovery identity")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("a policy file must be UTF-8 text") from None
    backend.create()
    wrote_recovery = False
    try:
        vault_id = secrets.token_hex(16)
        recovery: list[str] = []
        if recovery_out is not None:
            recovery.append(_write_recovery(recovery_out, vault_id, wants_pq(policy),
                                            recovery_passphrase))
            wrote_recovery = True
        _populate(backend, policy, text, name, officer, vault_id, recovery)
    except BaseException:
        # Undone, so that the same command can simply be run again, and no
        # recovery key of a vault that never was lies about -- unless the
        # manifest, the commit point, was written (or it cannot be told).
        try:
            committed = backend.exists()
        except Exception:
            committed = True
        if not committed:
            backend.abandon()
            if wrote_recovery:
                assert recovery_out is not None
                with contextlib.suppress(OSError):
                    os.unlink(recovery_out)
        raise
    return backend, vault_id


def _populate(backend: Backend, policy: Policy, text: str, name: str, officer: UserIdentity,
              vault_id: str, recovery: list[str]) -> None:
    """The log key, the first record (installing the policy) and, last, the
    manifest: the commit point."""
    from vault.audit import NoteSigner

    origin = f"vault/{vault_id}"
    signer = NoteSigner.generate(origin)
    try:
        backend.write_log_key((signer.private_key() + "\n").encode("ascii"))
    except FileExistsError:  # put there before the vault was made: never ours
        raise UsageError("the vault's place already holds a checkpoint key (an interrupted "
                         "init, or put there by someone who may write it)",
                         hint="use a new database (createdb) or folder, then 'vault init'"
                         ) from None
    created = _now()
    manifest = Manifest(vault_id, created,
                        {"name": name, "recipient": officer.recipient,
                         "signing_key": officer.signing_public},
                        policy.hash, signer.verifier_key(), origin, tuple(recovery))
    decision = policy.decide(name, "administer", None)
    fields: dict[str, Any] = {
        "actor": {"name": name, "key": officer.fingerprint}, "action": "init",
        "doc": None, "label": None, "outcome": "allowed", "rules": list(decision.rule_ids),
        "reason": f"vault {vault_id} created; " + "; ".join(decision.reasons),
        "policy": policy.hash,
        # The manifest is written after this record (its commit point) and
        # named by it: a manifest re-signed later does not match (§14.2).
        "state": {"policy": {"version": 1, "sha256": policy.hash, "text": text,
                             "manifest": manifest.digest()}},
    }
    backend.audit_log(signer, origin).append(fields, officer.signing_key)  # fail closed
    backend.write_manifest(sign_statement(officer, "manifest", manifest.statement()))
