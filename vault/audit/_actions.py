"""The vault's action names, for people filtering the log (docs/AUDIT.md §14).

The log itself records any non-empty action; this is the vocabulary of the
vault's operations, which ``vault audit log --action`` accepts. The vault
core extends it when it adds an operation.
"""

from __future__ import annotations

__all__ = ["VAULT_ACTIONS"]

VAULT_ACTIONS: tuple[str, ...] = (
    "init", "seal", "open", "ls", "info", "export", "reclassify", "declassify", "shred",
    "policy-apply", "rotate", "doctor", "migrate", "request", "approve", "refuse", "incident",
    "torn",
)  # fmt: skip
