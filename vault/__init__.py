r"""vault: classified office documents, sealed in age v1, under a YAML policy,
with a tamper-evident audit log.

The public API is small; everything else is reached through its submodules
(:mod:`vault.age` for the low-level format, :mod:`vault.policy`,
:mod:`vault.audit`). Names are imported lazily so that ``import vault`` stays
cheap for the command line.

Example: an officer and a clerk, a two-level policy, a vault in a new
folder, a sealed document and its recovery (the identities come from
``vault identity new NAME -o FILE`` in real life; the policy from a file
such as policies/office.yaml)::

    >>> import os, tempfile, vault
    >>> from vault.errors import DeniedError
    >>> folder = tempfile.mkdtemp()
    >>> officer, clerk, visitor = (vault.new_identity(n) for n in ("olivia", "carl", "vic"))
    >>> def user(who, clearance):
    ...     return (f"  {who.name}: {{recipient: {who.recipient}, "
    ...             f"signing_key: '{who.signing_public}', clearance: {clearance}}}\n")
    >>> policy = os.path.join(folder, "policy.yaml")
    >>> with open(policy, "w") as f:
    ...     _ = f.write("version: 1\nname: example\nlevels: [PUBLIC, CONFIDENTIAL]\n"
    ...                 "users:\n" + user(officer, "CONFIDENTIAL") + user(clerk, "CONFIDENTIAL")
    ...                 + user(visitor, "PUBLIC") + "rules:\n"
    ...                 "  - {id: officer, effect: allow, actions: [administer], "
    ...                 "who: {users: [olivia]}}\n"
    ...                 "  - {id: staff, effect: allow, actions: [seal, open, list], "
    ...                 "who: {users: [olivia, carl]}}\n")
    >>> office = os.path.join(folder, "office-vault")
    >>> recovery = os.path.join(folder, "recovery.key")
    >>> vault.Vault.init(office, policy, officer, recovery_out=recovery).close()
    >>> memo = os.path.join(folder, "memo.txt")
    >>> with open(memo, "wb") as f:
    ...     _ = f.write(b"The office moves next quarter.")
    >>> with vault.Vault(office, clerk) as v:
    ...     doc = v.seal(memo, level="CONFIDENTIAL", title="The move")
    ...     _ = v.open(doc.id, os.path.join(folder, "copy.txt"))
    >>> open(os.path.join(folder, "copy.txt"), "rb").read()
    b'The office moves next quarter.'
    >>> with vault.Vault(office, visitor) as v:
    ...     try:
    ...         v.open(doc.id, os.path.join(folder, "stolen.txt"))
    ...     except DeniedError as refused:
    ...         print(refused.decision.explain().splitlines()[0])
    DENIED: vic open CONFIDENTIAL
    >>> with vault.Vault(office) as v:  # no identity: read-only checks
    ...     print(v.verify_audit().size, "audit records verified")
    6 audit records verified
    >>> import shutil
    >>> shutil.rmtree(folder)  # the example's keys go with it
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vault._version import __version__

__all__ = [
    "ApplyReport",
    "Approval",
    "DoctorReport",
    "DocumentInfo",
    "PolicyVersion",
    "Request",
    "RotateReport",
    "UserIdentity",
    "Vault",
    "VaultError",
    "__version__",
    "load_identity",
    "new_identity",
    "read_approval",
    "read_request",
]

if TYPE_CHECKING:  # pragma: no cover
    from vault._results import (
        ApplyReport,
        DoctorReport,
        DocumentInfo,
        PolicyVersion,
        RotateReport,
    )
    from vault._trust.approvals import Approval, Request, read_approval, read_request
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
    "Request": "vault._trust.approvals",
    "Approval": "vault._trust.approvals",
    "read_request": "vault._trust.approvals",
    "read_approval": "vault._trust.approvals",
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
