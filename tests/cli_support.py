"""Helpers shared by the end-to-end CLI tests (tests/test_cli_*.py).

Everything runs for real: the CLI through Click's runner or the installed
``vault`` script, the stock ``age`` binary, real files in tmp folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from tty_support import with_tty

from vault_cli.main import cli

AGE = shutil.which("age")
VAULT = shutil.which("vault")
PASSPHRASE = "correct horse battery staple"


def need_age() -> str:
    # The security checks use the stock binary as the independent judge:
    # without it they must fail, never skip.
    assert AGE is not None, "the stock age binary is required (apt-get install age)"
    return AGE


def run(*args: str, env: dict[str, str] | None = None, input: bytes | None = None) -> Result:
    """Run ``vault ARGS`` in-process; stdout and stderr stay separate."""
    runner = CliRunner()
    return runner.invoke(
        cli, list(args), env=env, input=input, catch_exceptions=False, prog_name="vault"
    )


def run_script(
    *args: str, env: dict[str, str] | None = None, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed ``vault`` console script."""
    assert VAULT is not None, "the vault console script is not installed"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [VAULT, *args], env=full_env, input=input, capture_output=True, timeout=120, check=False
    )


def assert_error(result: Result, code: int, fragment: str = "") -> None:
    """An error: the exit code, ``vault: <lowercase>`` on stderr, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    # The error line (notes and warnings may come before it).
    errors = [
        line for line in result.stderr.splitlines()
        if line.startswith("vault: ") and not line.startswith("vault: warning:")
    ]
    assert len(errors) == 1, result.stderr
    first = errors[0]
    message = first[len("vault: ") :]
    # Lowercase, unless it starts with an acronym ("HMAC", "MAC", "SQLite").
    assert not (message[:1].isupper() and message[1:2].islower()), first
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert fragment.lower() in result.stderr.lower(), result.stderr


def age_decrypt(identity: Path, src: Path) -> subprocess.CompletedProcess[bytes]:
    """Decrypt ``src`` with an independent age implementation (unencrypted
    identity files): stock ``age -d`` for X25519 identities, the npm
    ``age-encryption`` package for post-quantum ones (stock age 1.1 has no
    hybrid recipient). Never this project's own code."""
    from office import stock_decrypt

    return stock_decrypt(identity, src)


def age_decrypt_on_terminal(identity: Path, src: Path, out: Path, passphrase: str) -> int:
    """Stock ``age -d -i IDENTITY -o OUT SRC`` for a passphrase-protected
    identity: age asks on its controlling terminal, so give it a pty."""
    status, transcript, typed = with_tty(
        [need_age(), "-d", "-i", str(identity), "-o", str(out), str(src)], [passphrase])
    assert typed == 1, transcript
    return status


def age_decrypt_file_on_terminal(src: Path, out: Path, passphrase: str) -> int:
    """Stock ``age -d -o OUT SRC`` of a passphrase-encrypted file (an
    encrypted identity file is one), typing the passphrase on a pty."""
    status, transcript, typed = with_tty([need_age(), "-d", "-o", str(out), str(src)],
                                         [passphrase])
    assert typed == 1, transcript
    return status


def age_encrypt_to(recipient: str, plaintext: bytes) -> bytes:
    """Encrypt with an independent implementation: stock age to ``age1…``,
    the npm package to post-quantum ``age1pq1…``."""
    if recipient.startswith("age1pq1"):
        from office import NODE, NPM_AGE

        assert NODE is not None, "node is required: the npm age-encryption package judges"
        return subprocess.run([NODE, str(NPM_AGE), "encrypt", recipient], input=plaintext,
                              capture_output=True, timeout=60, check=True).stdout
    return subprocess.run(
        [need_age(), "-e", "-r", recipient],
        input=plaintext,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout


@dataclass
class Person:
    name: str
    key: Path
    recipient: str
    signing_key: str
    fingerprint: str


def new_person(folder: Path, name: str) -> Person:
    key = folder / f"{name}.key"
    r = run("identity", "new", name, "-o", str(key), "--no-passphrase")
    assert r.exit_code == 0, r.stderr
    shown = run("identity", "show", str(key), "--json")
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    return Person(name, key, data["recipient"], data["signing_key"], data["fingerprint"])


@dataclass
class Office:
    """A vault under the office policy, with four people and a recovery key."""

    root: Path
    vault: Path
    policy: Path
    recovery: Path
    people: dict[str, Person] = field(default_factory=dict)

    def as_(self, name: str, *args: str, input: bytes | None = None) -> Result:
        """``vault --vault V --identity NAME.key ARGS`` in-process."""
        return run(
            "--vault", str(self.vault), "--identity", str(self.people[name].key), *args,
            input=input,
        )

    def seal(self, name: str, path: Path, *options: str) -> str:
        r = self.as_(name, "seal", str(path), *options)
        assert r.exit_code == 0, r.stderr
        (doc_id,) = r.stdout.split()
        return doc_id

    def doc_path(self, doc_id: str) -> Path:
        """The document's current stored version (the newest file of it)."""
        paths = sorted((self.vault / "docs").glob(f"{doc_id}.*.age"),
                       key=lambda p: p.stat().st_mtime_ns)
        assert paths, f"no stored file for document {doc_id}"
        return paths[-1]

    def doc_files(self, doc_id: str) -> list[Path]:
        """Every stored file of the document (versions, a shred under way)."""
        return sorted(p for p in (self.vault / "docs").iterdir() if doc_id in p.name)

    def audit_records(self) -> list[dict[str, Any]]:
        r = run("--vault", str(self.vault), "audit", "log", "--json")
        assert r.exit_code == 0, r.stderr
        return parse_json_records(r.stdout)


def parse_json_records(text: str) -> list[dict[str, Any]]:
    """``audit log --json`` output: one JSON list, or one object per line."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        data = json.loads(text)
        assert isinstance(data, list)
        return data
    return [json.loads(line) for line in text.splitlines()]


def python() -> str:
    return sys.executable


PEOPLE = ("officer", "clerk", "leader", "deputy", "outsider")


def make_office(root: Path, *, vault_name: str = "vault") -> Office:
    """Four people, the shipped office policy with their keys, a new vault."""
    from vault_cli._demo_policy import office_policy

    root.mkdir(parents=True, exist_ok=True)
    people = {name: new_person(root, name) for name in PEOPLE}
    keys = {p.name: {"recipient": p.recipient, "signing_key": p.signing_key}
            for p in people.values()}
    policy = root / "office.yaml"
    policy.write_text(office_policy(keys))
    vault = root / vault_name
    recovery = root / "recovery.key"
    r = run("init", str(vault), "--policy", str(policy), "--identity", str(people["officer"].key),
            "--recovery-out", str(recovery))
    assert r.exit_code == 0, r.stderr
    return Office(root, vault, policy, recovery, people)
