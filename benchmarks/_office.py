"""A vault to benchmark: the shipped office policy (policies/office.yaml)
with fresh keys in place of its placeholders, plain (no passphrase)
identity files and a recovery identity, created through the library in a
scratch folder.

Keys are post-quantum hybrid ones, as the policy requires by default
(``post_quantum: required``, docs/POLICY.md §3.10); ``post_quantum=False``
makes an office of X25519 keys (``post_quantum: off``).

Every vault keeps the verified replay of its audit log in
``$VAULT_STATE_DIR`` (docs/DESIGN.md §8): :func:`state_dir` points it at a
scratch folder for the whole run, never at the home of whoever runs the
benchmarks, and child processes inherit it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OFFICE_POLICY = Path(__file__).resolve().parent.parent / "policies" / "office.yaml"
PEOPLE = ("officer", "clerk", "registrar", "leader", "deputy", "outsider")



def state_dir() -> str:
    """``$VAULT_STATE_DIR``, set to a scratch folder (removed at exit) unless
    the caller chose one."""
    current = os.environ.get("VAULT_STATE_DIR")
    if current and os.environ.get("_VAULT_BENCH_STATE") == current:
        return current
    folder = tempfile.mkdtemp(prefix="vault-bench-state-")
    atexit.register(shutil.rmtree, folder, True)
    os.environ["VAULT_STATE_DIR"] = folder
    os.environ["_VAULT_BENCH_STATE"] = folder
    return folder


@dataclass
class Office:
    root: Path  # scratch folder holding everything below
    vault: Path  # the vault folder, or a PostgreSQL location in ``location``
    location: str = ""
    keys: dict[str, Path] = field(default_factory=dict)  # name -> identity file
    recovery_key: Path = Path()
    post_quantum: bool = True

    def env(self, who: str) -> dict[str, str]:
        """The environment a user of the CLI runs ``vault`` in."""
        return {**os.environ, "VAULT_DIR": self.location or str(self.vault),
                "VAULT_IDENTITY": str(self.keys[who])}

    def as_(self, who: str) -> Any:
        """The vault opened by the library as ``who``."""
        import vault

        return vault.Vault(self.location or self.vault, vault.load_identity(self.keys[who]))


def policy_text(recipients: dict[str, str], signing: dict[str, str], recovery: str, *,
                post_quantum: bool = True) -> str:
    """The office policy with these keys in place of its placeholders."""
    from vault.policy._keys import fill_template

    keys = {u: {"recipient": recipients[u], "signing_key": signing[u]} for u in recipients}
    text, _, _ = fill_template(OFFICE_POLICY.read_text(encoding="utf-8"), keys)
    text = text.replace("\ndefault_label:", f"\nrecovery: [{recovery}]\ndefault_label:", 1)
    if not post_quantum:
        text = text.replace("\nversion: 1\n", "\nversion: 1\npost_quantum: off\n", 1)
    return text


def filled_policy(path: Path, *, post_quantum: bool = True) -> Path:
    """The office policy with fresh keys for everyone, written to ``path``
    (the shipped file holds placeholders, which a policy refuses)."""
    from vault import new_identity
    from vault.age import MLKEM768X25519Identity, X25519Identity

    people = {name: new_identity(name, post_quantum=post_quantum) for name in PEOPLE}
    recovery = (MLKEM768X25519Identity.generate() if post_quantum
                else X25519Identity.generate())
    path.write_text(policy_text({n: p.recipient for n, p in people.items()},
                                {n: p.signing_public for n, p in people.items()},
                                str(recovery.recipient), post_quantum=post_quantum),
                    encoding="utf-8")
    return path


def make_office(root: Path, *, post_quantum: bool = True, location: str | None = None) -> Office:
    """Create the office vault in ``root/vault`` (or at ``location``, a
    PostgreSQL URI) and its people's key files."""
    from vault import Vault, new_identity
    from vault.age import MLKEM768X25519Identity, X25519Identity

    state_dir()
    root.mkdir(parents=True, exist_ok=True)
    people = {name: new_identity(name, post_quantum=post_quantum) for name in PEOPLE}
    recovery = (MLKEM768X25519Identity.generate() if post_quantum
                else X25519Identity.generate())
    policy = root / "policy.yaml"
    policy.write_text(policy_text({n: p.recipient for n, p in people.items()},
                                  {n: p.signing_public for n, p in people.items()},
                                  str(recovery.recipient), post_quantum=post_quantum),
                      encoding="utf-8")
    office = Office(root, root / "vault", location or "", post_quantum=post_quantum)
    Vault.init(location or office.vault, policy, people["officer"]).close()
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
