"""vault: classified office documents, sealed in age v1, under a YAML policy,
with a tamper-evident audit log.

The public API is small; everything else is reached through its submodules
(:mod:`vault.age` for the low-level format, :mod:`vault.policy`,
:mod:`vault.audit`). Names are imported lazily so that ``import vault`` stays
cheap for the command line.

Example::

    import vault

    officer = vault.new_identity("olivia")
    v = vault.Vault.init("office-vault", "policy.yaml", officer)
    info = v.seal("minutes.docx", level="SECRET")
    v.open(info.id, "minutes-copy.docx")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vault._version import __version__

__all__ = [
    "ApplyReport",
    "DoctorReport",
    "DocumentInfo",
    "PolicyVersion",
    "RotateReport",
    "UserIdentity",
    "Vault",
    "VaultError",
    "__version__",
    "load_identity",
    "new_identity",
]

if TYPE_CHECKING:  # pragma: no cover
    from vault._results import (
        ApplyReport,
        DoctorReport,
        DocumentInfo,
        PolicyVersion,
        RotateReport,
    )
    from vault._vault import Vault
    from vault.errors import VaultError
    from vault.identity import UserIdentity, load_identity, new_identity

# name -> module that defines it
_LAZY = {
    "Vault": "vault._vault",
    "DocumentInfo": "vault._results",
    "ApplyReport": "vault._results",
    "RotateReport": "vault._results",
    "DoctorReport": "vault._results",
    "PolicyVersion": "vault._results",
    "UserIdentity": "vault.identity",
    "load_identity": "vault.identity",
    "new_identity": "vault.identity",
    "VaultError": "vault.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vault' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
