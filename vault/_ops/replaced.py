"""Removing what a change recorded done replaced (docs/DESIGN.md §6.4, §6.6).

From its completion record on a change counts, on every machine: the new
version of a relabelled or rewrapped document is the document, a retired
keyring entry is withdrawn. What it replaced is then bytes to remove, no
part of the change. A removal that fails -- a row another database session
holds locked (anyone with the application role can, the person being
revoked too), a folder put at the name by someone who can write the vault
folder, a lost connection -- undoes nothing, so it stops nothing: the
command goes on (a reconciliation with its other documents, retirements
and classes), and says what is left over, which ``doctor`` lists and its
repair removes. An error then would say the change failed when it counts.

Leaving it costs nothing the vault protects: an old version holds the same
payload, wrapped to keys that opened it before the change (a revoked user
held those), and a retired entry is the key its owner held; both are in
the store for whoever could already read it, as a copy made before would be.

Nothing honest holds such a row while the writer holds the vault's write
lock, so once one wait ran out, later removals of the session do not wait:
someone holding many rows locked costs one lock timeout, not one each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vault.errors import VaultError
from vault.store.base import owner_key

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.session import Session
    from vault._trust.classes import ClassKey

__all__ = ["remove_entries", "remove_version"]


def _repair(it: str) -> str:
    return (f"'vault doctor' lists {it}, and an administrator's 'vault doctor --repair' "
            f"removes {it} once nothing holds {it}")


def _why(e: VaultError | OSError) -> str:
    """What kept it (never a path: a folder's error names the file)."""
    if isinstance(e, VaultError):
        return e.message
    return e.strerror or type(e).__name__


def remove_version(s: Session, doc_id: str, version: str) -> None:
    """Remove ``version`` of ``doc_id``, which a completion record just
    replaced; if it cannot be, say so (:attr:`Session.left_over`)."""
    try:
        s.backend.delete_document(doc_id, version, wait=not s.left_over)
    except (VaultError, OSError) as e:
        s.left_over.append(f"document {doc_id}: its old version {version} is left over "
                           f"({_why(e)}); the change is done and counts; {_repair('it')}")


def remove_entries(s: Session, ck: ClassKey, owners: Sequence[str]) -> None:
    """Remove the entries of ``owners`` for ``ck``, which a ``retire``
    record just withdrew; say those that cannot be, in one line."""
    left: list[str] = []
    for owner in owners:
        try:
            s.backend.delete_keyring_entry(owner_key(owner), ck.key_id,
                                           wait=not (s.left_over or left))
        except (VaultError, OSError) as e:
            left.append(_why(e))
    if left:
        one = len(left) == 1
        s.left_over.append(f"{len(left)} keyring entr{'y' if one else 'ies'} of {ck.cls} "
                           f"generation {ck.generation} {'is' if one else 'are'} left over "
                           f"({left[0]}); the retirement is done and counts; "
                           f"{_repair('it' if one else 'them')}")
