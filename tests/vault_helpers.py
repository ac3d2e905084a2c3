"""Helpers for the library-level vault tests (tests/test_vault_*.py).

An office under the example policy ``policies/office.yaml``, with fresh keys
for its people and a recovery identity; real files in a tmp folder, and the
stock ``age`` binary as the independent judge of who can decrypt what. The
vault lives where the ``backend`` fixture says (tests/backends.py): a
folder by default, or a PostgreSQL database; ``office.raw`` reaches what it
stores without the library.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from backends import FolderKind, Kind, Raw

import vault
from vault.age import X25519Identity, decrypt
from vault.identity import UserIdentity, new_identity

ROOT = Path(__file__).resolve().parent.parent
OFFICE = ROOT / "policies" / "office.yaml"
PEOPLE = ("officer", "clerk", "registrar", "leader", "deputy", "outsider")
AGE = shutil.which("age")

_USER = re.compile(r"^  ([A-Za-z0-9._-]+):\s*$")
_KEY = re.compile(r"^(    (recipient|signing_key): )\S+\s*$")


def need_age() -> str:
    # The stock binary judges the security claims: without it they fail, never skip.
    assert AGE is not None, "the stock age binary is required"
    return AGE


def office_policy(ids: dict[str, UserIdentity], recovery: list[str],
                  edit: dict[str, str] | None = None) -> str:
    """office.yaml with ``ids``' keys, ``recovery`` recipients, and textual
    replacements ``edit`` (old -> new) applied."""
    out, user, in_users = [], None, False
    for line in OFFICE.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("users:"):
            in_users = True
        elif line[:1].isalnum():
            in_users = False
        if in_users and (m := _USER.match(line)):
            user = m.group(1)
        elif in_users and user in ids and (k := _KEY.match(line)):
            who = ids[user]
            line = k.group(1) + (who.recipient if k.group(2) == "recipient"
                                 else who.signing_public) + "\n"
        elif line.startswith("default_label:") and recovery:
            line = "recovery: [" + ", ".join(recovery) + "]\n" + line
        out.append(line)
    text = "".join(out)
    for old, new in (edit or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@dataclass
class Office:
    """A vault and the people who use it."""

    root: Path
    ids: dict[str, UserIdentity]
    recovery: X25519Identity
    location: str  # a folder path or a postgresql:// URI
    raw: Raw
    kind: Kind
    files: dict[str, Path] = field(default_factory=dict)  # plain identity files

    @property
    def path(self) -> Path:
        """The vault folder (folder-backend tests only)."""
        assert self.kind.name == "folder", "a PostgreSQL vault has no folder"
        return Path(self.location)

    def as_(self, name: str) -> vault.Vault:
        return vault.Vault(self.location, self.ids[name])

    def file(self, name: str, data: bytes) -> Path:
        p = self.root / "in" / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
        return p

    def apply(self, edit: dict[str, str]) -> vault.ApplyReport:
        p = self.root / f"policy-{len(edit)}-{abs(hash(tuple(edit.items())))}.yaml"
        p.write_text(office_policy(self.ids, [str(self.recovery.recipient)], edit))
        return self.as_("officer").apply_policy(p)


def make_office(root: Path, backend: Kind | None = None) -> Office:
    """An office whose vault lives in ``backend`` (default: a folder)."""
    kind = backend or FolderKind()
    root.mkdir(parents=True, exist_ok=True)
    ids = {n: new_identity(n) for n in PEOPLE}
    recovery = X25519Identity.generate()
    policy = root / "policy.yaml"
    policy.write_text(office_policy(ids, [str(recovery.recipient)]))
    location = kind.new_location(root)
    vault.Vault.init(location, policy, ids["officer"])
    office = Office(root, ids, recovery, location, kind.raw(location), kind)
    keys = root / "keys"
    keys.mkdir()
    for name, ident in ids.items():
        ident.to_file(keys / f"{name}.key", None)
        office.files[name] = keys / f"{name}.key"
    (keys / "recovery.key").write_text(f"{recovery}\n")
    (keys / "recovery.key").chmod(0o600)
    office.files["recovery"] = keys / "recovery.key"
    return office


def age_decrypt(identity_file: Path, src: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([need_age(), "-d", "-i", str(identity_file), str(src)],
                          capture_output=True, timeout=60, check=False)


def held_secret_keys(office: Office, name: str) -> list[str]:
    """Every AGE-SECRET-KEY line that ``name``'s identity can reach: stock age
    tries the identity file on every object the vault stores (every file of
    the folder, every value in the database); whatever decrypts is searched
    for secret keys."""
    found = []
    scratch = office.root / "scratch"
    scratch.mkdir(exist_ok=True)
    for i, (_, data) in enumerate(office.raw.blobs()):
        if not data.startswith(b"age-encryption.org/") and b"BEGIN AGE" not in data:
            continue  # stock age would refuse it; skip the subprocess
        p = scratch / f"{i}.age"
        p.write_bytes(data)
        r = age_decrypt(office.files[name], p)
        p.unlink()
        if r.returncode == 0:
            found += re.findall(r"AGE-SECRET-KEY-1[0-9A-Z]+", r.stdout.decode("latin-1"))
    return found


def opens_with(keys: list[str], doc: Path, tmp: Path) -> bool:
    """Does stock ``age -d`` open ``doc`` with these identities?"""
    if not keys:
        return False
    ident = tmp / "collected.key"
    ident.write_text("".join(k + "\n" for k in keys))
    ident.chmod(0o600)
    r = age_decrypt(ident, doc)
    ident.unlink()
    return r.returncode == 0


def doc_path(office: Office, doc_id: str) -> Path:
    """The document's file in a folder vault."""
    return office.path / "docs" / f"{doc_id}.age"


def doc_file(office: Office, doc_id: str) -> Path:
    """The document as a file for stock ``age``, whatever the backend (a
    copy taken now for PostgreSQL)."""
    return office.raw.doc_file(doc_id, office.root / "exported")


def file_key_of(office: Office, doc_id: str) -> bytes:
    """The document's file key, unwrapped with the recovery identity."""
    from vault.age import read_header, unwrap_file_key

    return unwrap_file_key(read_header(io.BytesIO(office.raw.doc_bytes(doc_id))),
                           [office.recovery])


def decrypt_with(identity: X25519Identity, data: bytes) -> bytes:
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, [identity])
    return out.getvalue()
