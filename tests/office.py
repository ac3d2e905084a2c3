"""The office every vault test works in: its people, the shipped office
policy with their keys, a vault in the backend under test, the raw store
reached around the library, and independent age implementations as judges.

* :func:`policy_text` fills a shipped template's placeholders with people's
  keys (the one home of that filler);
* :class:`Office` -- ``as_(name)`` opens the vault as a person (library),
  ``cli(name, *args)`` runs the command line as them (in-process);
* :func:`stock_decrypt` -- stock ``age`` for X25519 files, the npm
  ``age-encryption`` package (typage) for post-quantum ones: never this
  project's own code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backends import FolderKind, Kind, Raw
from cli_support import Result, run
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import vault
from vault.age import MLKEM768X25519Identity, X25519Identity
from vault.identity import AgeKeyPair, UserIdentity, new_identity

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
OFFICE = POLICIES / "office.yaml"
PEOPLE = ("officer", "clerk", "registrar", "leader", "deputy", "outsider")
AGE = shutil.which("age")
NODE = shutil.which("node")
NPM_AGE = ROOT / "tests" / "npm" / "age.mjs"



def policy_text(keys: Mapping[str, UserIdentity], recovery: Sequence[str] = (),
                edit: Mapping[str, str] | None = None, template: Path = OFFICE) -> str:
    """``template`` with ``keys``' public keys in place of its placeholders
    (fresh keys nobody keeps for the users not in ``keys``), ``recovery``
    recipients, and textual replacements ``edit`` (old -> new) applied."""
    from vault.policy._keys import fill_template, stand_in

    given = {name: {"recipient": who.recipient, "signing_key": who.signing_public}
             for name, who in keys.items()}
    text, _, _ = fill_template(template.read_text(encoding="utf-8"), given, others=stand_in)
    if recovery:
        text = text.replace("\ndefault_label:",
                            "\nrecovery: [" + ", ".join(recovery) + "]\ndefault_label:", 1)
    for old, new in (edit or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def stock_decrypt(identity_file: Path, src: Path) -> subprocess.CompletedProcess[bytes]:
    """Decrypt ``src`` with an independent age implementation: stock ``age``
    when the identity is X25519, the npm ``age-encryption`` package when it
    is post-quantum (stock age 1.1 has no hybrid recipient)."""
    text = identity_file.read_text(encoding="utf-8", errors="replace")
    if "AGE-SECRET-KEY-PQ-1" in text:
        assert NODE is not None, "node is required: the npm age-encryption package judges"
        assert (ROOT / "tests" / "npm" / "node_modules").is_dir(), \
            "run 'npm ci --prefix tests/npm' (the age-encryption package judges)"
        with src.open("rb") as f:
            return subprocess.run([NODE, str(NPM_AGE), "decrypt", str(identity_file)], stdin=f,
                                  capture_output=True, timeout=120, check=False)
    assert AGE is not None, "the stock age binary is required"
    return subprocess.run([AGE, "-d", "-i", str(identity_file), str(src)],
                          capture_output=True, timeout=60, check=False)


@dataclass
class Office:
    """A vault and the people who use it."""

    root: Path
    ids: dict[str, UserIdentity]
    recovery: AgeKeyPair
    location: str  # a folder path or a postgresql:// URI
    raw: Raw
    kind: Kind
    post_quantum: bool
    files: dict[str, Path] = field(default_factory=dict)  # plain identity files
    policy: Path = Path()

    @property
    def path(self) -> Path:
        """The vault folder (folder-backend tests only)."""
        assert self.kind.name == "folder", "a PostgreSQL vault has no folder"
        return Path(self.location)

    # -- the library ---------------------------------------------------------

    def as_(self, name: str) -> vault.Vault:
        return vault.Vault(self.location, self.ids[name])

    def file(self, name: str, data: bytes) -> Path:
        p = self.root / "in" / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
        return p

    def policy_text(self, edit: Mapping[str, str] | None = None) -> str:
        return policy_text(self.ids, [str(self.recovery.recipient)], edit)

    def write_policy(self, edit: Mapping[str, str] | None = None) -> Path:
        p = self.root / f"policy-{abs(hash(tuple((edit or {}).items())))}.yaml"
        p.write_text(self.policy_text(edit))
        return p

    def apply(self, edit: Mapping[str, str]) -> vault.ApplyReport:
        return self.as_("officer").apply_policy(self.write_policy(edit))

    def doc_file(self, doc_id: str) -> Path:
        """The document's current version as a file, for stock tools."""
        return self.raw.doc_file(doc_id, self.root / "exported")

    def key_lookup(self) -> Callable[[str | None, str, int], Ed25519PublicKey | None]:
        """A third party's key lookup (docs/AUDIT.md §10): each person's
        signing key, by name -- the keys an auditor trusts."""
        from vault.audit import fingerprint

        keys = {name: ident.signing_key.public_key() for name, ident in self.ids.items()}

        def lookup(name: str | None, fp: str, seq: int) -> Ed25519PublicKey | None:
            key = keys.get(name or "")
            return key if key is not None and fingerprint(key) == fp else None

        return lookup

    # -- the command line ------------------------------------------------------

    def cli(self, name: str | None, *args: str, input: bytes | None = None,
            env: Mapping[str, str] | None = None) -> Result:
        """``vault --vault V [--identity NAME.key] ARGS`` in-process."""
        who = ["--identity", str(self.files[name])] if name else []
        return run("--vault", self.location, *who, *args, input=input, env=env)


def board_plan_raised(office: Office) -> tuple[str, int, int]:
    """The leader seals a CONFIDENTIAL//BOARD plan and raises it to SECRET:
    the document's id and the first and last audit lines of the raise."""
    leader = office.as_("leader")
    doc = leader.seal(office.file("plan.txt", b"board plan"), level="CONFIDENTIAL",
                      compartments=["BOARD"], title="plan").id
    first = len(office.raw.audit_lines())
    leader.reclassify(doc, level="SECRET", compartments=["BOARD"], justification="raise")
    return doc, first, len(office.raw.audit_lines()) - 1


def install_as_an_older_client_did(o: Office, text: str) -> None:
    """Record ``text`` as policy version 2, as 'policy apply' of a release
    that did not refuse its characters recorded it (or a modified client of
    the officer's): her signed state record. The replay loads it leniently,
    so that the office keeps working."""
    me = o.ids["officer"]
    with o.as_("officer") as v:
        assert v.policy_version == 1
        v.audit.append({"actor": {"name": "officer", "key": me.fingerprint},
                        "action": "policy-apply", "doc": None, "label": None,
                        "outcome": "allowed", "rules": [], "reason": "", "policy": None,
                        "state": {"policy": {"version": 2, "text": text,
                                             "sha256": hashlib.sha256(text.encode()).hexdigest()}}},
                       me.signing_key)


def make_office(root: Path, backend: Kind | None = None, *, post_quantum: bool = True,
                people: Sequence[str] = PEOPLE, edit: Mapping[str, str] | None = None) -> Office:
    """An office whose vault lives in ``backend`` (default: a folder). With
    ``post_quantum`` (the policy's default) every key is a hybrid one;
    ``edit`` changes the first policy's text (old -> new)."""
    kind = backend or FolderKind()
    root.mkdir(parents=True, exist_ok=True)
    ids = {n: new_identity(n, post_quantum=post_quantum) for n in people}
    recovery: AgeKeyPair = (MLKEM768X25519Identity.generate() if post_quantum
                            else X25519Identity.generate())
    policy = root / "policy.yaml"
    edit = {**({} if post_quantum else {"version: 1\n": "version: 1\npost_quantum: off\n"}),
            **(edit or {})}
    policy.write_text(policy_text(ids, [str(recovery.recipient)], edit))
    location = kind.new_location(root)
    vault.Vault.init(location, policy, ids["officer"]).close()
    office = Office(root, ids, recovery, location, kind.raw(location), kind, post_quantum,
                    policy=policy)
    keys = root / "keys"
    keys.mkdir(exist_ok=True)
    for name, ident in ids.items():
        ident.to_file(keys / f"{name}.key", None)
        office.files[name] = keys / f"{name}.key"
    (keys / "recovery.key").write_text(f"{recovery}\n")
    os.chmod(keys / "recovery.key", 0o600)
    office.files["recovery"] = keys / "recovery.key"
    return office
