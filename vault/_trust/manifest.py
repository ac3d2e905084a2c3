"""The manifest, ``vault.json``: the one root of trust a vault has on disk
(docs/DESIGN.md §5, docs/FORMAT.md §13.4).

A signed statement by the officer naming the vault id, the officer's keys,
the SHA-256 of the first policy version, the public key that signs the
audit log's checkpoints, the log's origin and the recovery recipients made
at ``init``. Everything else the vault relies on is verified from here on:
the first policy version must have the pinned hash and be installed by the
pinned officer, and every later change is a record in the audit log
(:mod:`vault._trust.journal`), and that first record names this manifest's
digest (:meth:`Manifest.digest`). Pin the vault id and the officer's signing
key out of band: someone who can write the folder can replace the whole
vault with another one, but never make it the same vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault._primitives import canonical_json, parse_canonical_json, sign, unb64
from vault._primitives import verify as verify_sig
from vault._trust._statement import HEX32
from vault.errors import IntegrityError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.identity import UserIdentity

__all__ = ["FORMAT", "Manifest", "open_statement", "sign_statement"]

FORMAT = "vault/v2"
_OLD_FORMATS = ("vault/v1",)


def sign_statement(identity: UserIdentity, context: str, statement: dict[str, Any]) -> bytes:
    """``{"sig": …, "statement": …}`` as canonical JSON plus a newline
    (docs/FORMAT.md §13.2)."""
    from vault._primitives import b64

    sig = sign(identity.signing_key, context, canonical_json(statement))
    return canonical_json({"statement": statement, "sig": b64(sig)}) + b"\n"


def open_statement(data: bytes, context: str, what: str,
                   signing_key: Any = None) -> tuple[dict[str, Any], bytes]:
    """Parse a signed statement; verify it when ``signing_key`` (text) is
    given, else return ``(statement, signature)`` unverified."""
    from vault._primitives import parse_signing_key

    try:
        outer = parse_canonical_json(data.removesuffix(b"\n"))
        statement, sig = outer["statement"], unb64(outer["sig"], 64)
        if set(outer) != {"statement", "sig"} or not isinstance(statement, dict):
            raise ValueError
    except (ValueError, KeyError):
        raise IntegrityError(f"{what} is malformed") from None
    if signing_key is not None:
        try:
            key = parse_signing_key(signing_key)
        except ValueError:
            raise IntegrityError(f"{what} names a malformed signing key") from None
        if not verify_sig(key, context, canonical_json(statement), sig):
            raise IntegrityError(f"{what} has a bad signature")
    return statement, sig


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
        statement, _ = open_statement(data, "manifest", "vault.json")
        fmt = statement.get("format")
        if fmt in _OLD_FORMATS:
            raise UsageError(
                f"this vault was made by an earlier version of vault (format {fmt})",
                hint="open its documents with the recovery identity and stock 'age -d', "
                     "then seal them into a new vault")
        try:
            if fmt != FORMAT:
                raise ValueError
            m = cls(statement["vault"], statement["created"], dict(statement["officer"]),
                    statement["genesis"], statement["log_key"], statement["origin"],
                    tuple(statement["recovery"]))
            if not all(isinstance(r, str) for r in m.recovery) or set(m.officer) != {
                    "name", "recipient", "signing_key"}:
                raise ValueError
            # §13.4: 32 lowercase hex digits. The id names this user's trusted
            # state file: "../x" or "/tmp/x" would put it where others write.
            if not isinstance(m.vault_id, str) or not HEX32.match(m.vault_id):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise IntegrityError("vault.json is malformed or of an unknown format") from None
        open_statement(data, "manifest", "vault.json", m.officer["signing_key"])
        return m

    def statement(self) -> dict[str, Any]:
        return {"format": FORMAT, "vault": self.vault_id, "created": self.created,
                "officer": self.officer, "genesis": self.genesis, "log_key": self.log_key,
                "origin": self.origin, "recovery": list(self.recovery)}

    def digest(self) -> str:
        """SHA-256 hex of the statement's canonical JSON, the members a
        reader takes (FORMAT.md §13.4): what the vault's first record names,
        so that the officer, who signs both, cannot re-sign another manifest
        (more recovery recipients, say) for machines that never saw this one."""
        import hashlib

        return hashlib.sha256(canonical_json(self.statement())).hexdigest()
