"""A vault to benchmark: the example office (policies/office.yaml) with
fresh keys, plain (``--no-passphrase``) identity files and a recovery
identity, created through the library in a scratch folder."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

OFFICE_POLICY = Path(__file__).resolve().parent.parent / "policies" / "office.yaml"
PEOPLE = ("officer", "clerk", "registrar", "leader", "deputy", "outsider")

_USER = re.compile(r"^  ([A-Za-z0-9._-]+):\s*$")
_KEY = re.compile(r"^(    (recipient|signing_key): )\S+\s*$")


@dataclass
class Office:
    root: Path  # scratch folder holding everything below
    vault: Path
    keys: dict[str, Path] = field(default_factory=dict)  # name -> identity file
    recovery_key: Path = Path()

    def env(self, who: str) -> dict[str, str]:
        """The environment a user of the CLI runs ``vault`` in."""
        return {**os.environ, "VAULT_DIR": str(self.vault), "VAULT_IDENTITY": str(self.keys[who])}


def _policy(recipients: dict[str, str], signing: dict[str, str], recovery: str) -> str:
    out: list[str] = []
    user = None
    in_users = False
    for line in OFFICE_POLICY.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("users:"):
            in_users = True
        elif line[:1].isalnum():
            in_users = False
        if in_users and (m := _USER.match(line)):
            user = m.group(1)
        elif in_users and user in recipients and (k := _KEY.match(line)):
            keys = recipients if k.group(2) == "recipient" else signing
            line = f"{k.group(1)}{keys[user]}\n"
        elif line.startswith("default_label:"):
            line = f"recovery: [{recovery}]\n{line}"
        out.append(line)
    return "".join(out)


def make_office(root: Path) -> Office:
    """Create the office vault in ``root/vault`` and its people's key files."""
    from vault import Vault, new_identity
    from vault.age import X25519Identity

    root.mkdir(parents=True, exist_ok=True)
    people = {name: new_identity(name) for name in PEOPLE}
    recovery = X25519Identity.generate()
    policy = root / "policy.yaml"
    policy.write_text(_policy({n: p.recipient for n, p in people.items()},
                              {n: p.signing_public for n, p in people.items()},
                              str(recovery.recipient)), encoding="utf-8")
    office = Office(root, root / "vault")
    Vault.init(office.vault, policy, people["officer"]).close()
    keys = root / "keys"
    keys.mkdir(mode=0o700)
    for name, person in people.items():
        office.keys[name] = keys / f"{name}.key"
        person.to_file(office.keys[name], None)
    office.recovery_key = keys / "recovery.key"
    fd = os.open(office.recovery_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(f"{recovery}\n")
    return office
