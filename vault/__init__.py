"""vault: classified office documents, sealed in age v1, under a YAML policy,
with a tamper-evident audit log.

The public API is small; everything else is reached through its submodules
(:mod:`vault.age` for the low-level format, :mod:`vault.policy`,
:mod:`vault.audit`). Names are imported lazily so that ``import vault`` stays
cheap for the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vault._version import __version__
from vault.errors import VaultError

__all__ = ["VaultError", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    pass


def __getattr__(name: str) -> Any:
    raise AttributeError(f"module 'vault' has no attribute {name!r}")
