"""One error hierarchy for the whole library, organised by whose fault it is.

Every error the library raises on purpose is a :class:`VaultError`. The
branches below say who has to act:

* :class:`UsageError` -- the caller asked for something impossible
  (bad argument, missing option, insecure key file). Fix the call.
* :class:`BadDataError` -- an input that is not integrity-protected is
  malformed (a policy YAML file, an identity file). Fix the file.
* :class:`DeniedError` -- the policy refused the action. Ask the officer.
* :class:`IntegrityError` -- protected data failed verification: a sealed
  document, a label, the audit log or a proof was tampered with or corrupted.
  Treat it as an incident.
* :class:`NoKeyError` -- the data is fine but none of the caller's keys opens
  it.
* :class:`OperationalError` -- the environment failed (disk full, read-only
  folder, lock, database). Nothing was changed; retry once the cause is fixed.

:class:`PartialError` gathers those of a run over many documents that went
on past the ones that failed.

Each class carries the CLI exit code it maps to (documented in README.md) and
an optional ``hint`` telling the reader what to do next. Messages never
contain key material, passphrases or plaintext: errors are shown to people
and written to logs.

Subclasses for the low-level layers (age format, Merkle proofs, audit damage)
live here too, so that ``except vault.errors.IntegrityError`` catches every
kind of tampering regardless of which layer noticed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy import Decision

__all__ = [
    "AgeError",
    "ArmorError",
    "AuditIntegrityError",
    "AuditWriteError",
    "BadDataError",
    "CheckpointError",
    "DeniedError",
    "HMACError",
    "HeaderError",
    "IdentityFileError",
    "InsecureFileError",
    "IntegrityError",
    "LabelError",
    "MerkleError",
    "NoIdentityMatchError",
    "NoKeyError",
    "OperationalError",
    "PartialError",
    "PayloadError",
    "PolicyLoadError",
    "PolicyProblem",
    "ProofError",
    "RootMismatchError",
    "StateError",
    "StorageError",
    "UsageError",
    "VaultError",
]

# Exit codes (README.md, "Exit codes").
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_INTEGRITY = 4
EXIT_NO_KEY = 5
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); nothing half-done is left visible


class VaultError(Exception):
    """Base class of every error raised on purpose by the library."""

    exit_code: int = EXIT_OTHER

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------
# Usage: the caller's fault.


class UsageError(VaultError):
    """The call itself is wrong: a bad argument, a missing option."""

    exit_code = EXIT_USAGE


class InsecureFileError(UsageError):
    """A file holding secrets is readable by group or others."""


# --------------------------------------------------------------------------
# Bad data: an input that carries no integrity protection is malformed.


class BadDataError(VaultError):
    """An unprotected input file (policy, identity file, ...) is malformed."""


class PolicyProblem:
    """One problem found in a policy file, with its position.

    ``line`` and ``column`` are 1-based; either may be ``None`` when the
    problem has no single position (for example a missing top-level key).
    """

    __slots__ = ("column", "file", "hint", "line", "message")

    def __init__(
        self,
        file: str,
        line: int | None,
        column: int | None,
        message: str,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.hint = hint

    def location(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"

    def __repr__(self) -> str:
        return f"PolicyProblem({str(self)!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
        }


class PolicyLoadError(BadDataError):
    """A policy file failed to load; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[PolicyProblem], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        first = str(self.problems[0]) if self.problems else "invalid policy"
        more = f" (and {n - 1} more)" if n > 1 else ""
        super().__init__(first + more, hint=hint)


class IdentityFileError(BadDataError):
    """An identity or recipient file or string is malformed. The file or
    string was the caller's argument, so it is a usage error (exit 2)."""

    exit_code = EXIT_USAGE


# --------------------------------------------------------------------------
# Policy denial.


class DeniedError(VaultError):
    """The policy denied the action. ``decision`` holds the full decision
    (``decision.explain()`` says why, rule by rule); None only when no
    decision was made (a request refused before the policy was asked)."""

    exit_code = EXIT_DENIED

    def __init__(self, message: str, *, decision: Decision | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.decision: Decision | None = decision


# --------------------------------------------------------------------------
# Integrity: protected data failed verification.


class IntegrityError(VaultError):
    """Protected data is tampered with, corrupted or cannot be verified."""

    exit_code = EXIT_INTEGRITY


class AgeError(IntegrityError):
    """Base of the age v1 format errors (docs/FORMAT.md)."""


class HeaderError(AgeError):
    """The age header is malformed (CCTV category "header failure")."""


class HMACError(AgeError):
    """The header MAC does not verify (CCTV category "HMAC failure")."""


class PayloadError(AgeError):
    """The payload is truncated, malformed or fails authentication
    (CCTV category "payload failure")."""


class ArmorError(AgeError):
    """The ASCII armor is malformed (CCTV category "armor failure")."""


class LabelError(IntegrityError):
    """A document label is missing, malformed, unsigned or not bound to the
    document (docs/FORMAT.md §11.2)."""


class StateError(IntegrityError):
    """What the store holds is not what the verified audit log records: a
    document rolled back, replaced or deleted, a keyring entry changed
    (docs/DESIGN.md §8)."""


class MerkleError(IntegrityError):
    """Base of Merkle tree and proof verification errors."""


class RootMismatchError(MerkleError):
    """A recomputed root differs from the expected one."""

    def __init__(self, expected: bytes, computed: bytes, *, what: str = "root") -> None:
        super().__init__(
            f"{what} mismatch: expected {expected.hex()}, computed {computed.hex()}"
        )
        self.expected = expected
        self.computed = computed


class ProofError(MerkleError):
    """A proof is malformed (wrong length, bad indices, ...)."""


class AuditIntegrityError(IntegrityError):
    """The audit log is damaged. ``kind`` names the damage:
    ``modified``, ``deleted``, ``inserted``, ``reordered``, ``truncated``,
    ``torn``, ``signature`` or ``checkpoint``; ``seq`` is the first record
    concerned when known."""

    def __init__(
        self, message: str, *, kind: str, seq: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.seq = seq


class CheckpointError(IntegrityError):
    """A checkpoint or signed note is malformed or its signature fails."""


# --------------------------------------------------------------------------
# No key: the data is fine, but none of the caller's keys opens it.


class NoKeyError(VaultError):
    """None of the available keys can open this data."""

    exit_code = EXIT_NO_KEY


class NoIdentityMatchError(NoKeyError):
    """No identity unwrapped the file key (CCTV category "no match").

    ``reasons`` holds one short string per stanza tried, saying why it did not
    match (never any key material)."""

    def __init__(
        self, message: str, *, reasons: Sequence[str] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.reasons = list(reasons)


# --------------------------------------------------------------------------
# Operational: the environment failed; nothing was changed.


class OperationalError(VaultError):
    """The environment failed (disk full, read-only folder, lock, database)."""


class AuditWriteError(OperationalError):
    """An audit record could not be made durable. The operation it guards
    must not (and did not) happen: the audit log is fail-closed."""


class StorageError(OperationalError):
    """The vault's storage could not complete a read or write."""


# --------------------------------------------------------------------------
# A run over many documents that went on past those that failed.


class PartialError(VaultError):
    """Some documents of a run failed, each on its own, and the run went on
    (``declassify --due``): ``done`` holds what was done, in order, and
    ``failed`` each (document id, error), in order. Of a rotation or policy
    install whose label classes failed each on its own, ``done`` holds the
    one report of what was done, ``failed`` each (class, error). Its exit
    code is that of the failures when they share one (4 for spoiled
    documents), else 1."""

    def __init__(self, message: str, done: Sequence[Any],
                 failed: Sequence[tuple[str, VaultError]], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.done = list(done)
        self.failed = list(failed)
        codes = {e.exit_code for _, e in self.failed}
        self.exit_code = codes.pop() if len(codes) == 1 else EXIT_OTHER
