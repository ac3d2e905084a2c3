"""Hashing a large folder log with a helper process (docs/AUDIT.md §11.1).

Not yet: every pass runs in this process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vault.audit._storage import LogEnd, LogStorage

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit._treepass import Consumer, TreeResult

__all__ = ["parallel_tree"]


def parallel_tree(storage: LogStorage, end: LogEnd, wanted: list[int],
                  consumer: Consumer | None, keep_from: int) -> TreeResult | None:
    return None
