"""Helpers for the library-level vault tests (tests/test_vault_*.py).

The office itself is tests/office.py; here are what the library tests do
with it: independent age implementations as the judges of who can decrypt
what, the keys a person's identity reaches, documents as files.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from office import OFFICE, PEOPLE, Office, make_office, policy_text, stock_decrypt

from vault.age import decrypt
from vault.identity import AgeKeyPair, UserIdentity

AGE = shutil.which("age")
__all__ = ["OFFICE", "PEOPLE", "Office", "make_office", "office_policy", "policy_text"]


def need_age() -> str:
    # The stock binary judges the security claims: without it they fail, never skip.
    assert AGE is not None, "the stock age binary is required"
    return AGE


def office_policy(ids: dict[str, UserIdentity], recovery: list[str],
                  edit: dict[str, str] | None = None) -> str:
    return policy_text(ids, recovery, edit)


def age_decrypt(identity_file: Path, src: Path) -> subprocess.CompletedProcess[bytes]:
    """An independent age implementation decrypts (tests/office.py)."""
    return stock_decrypt(identity_file, src)


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
            found += re.findall(r"AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]+",
                                r.stdout.decode("latin-1"))
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
    """The document's current file in a folder vault."""
    return office.path / "docs" / f"{doc_id}.{office.raw.current(doc_id)}.age"


def doc_file(office: Office, doc_id: str) -> Path:
    """The document as a file for stock ``age``, whatever the backend (a
    copy taken now for PostgreSQL)."""
    return office.raw.doc_file(doc_id, office.root / "exported")


def file_key_of(office: Office, doc_id: str) -> bytes:
    """The document's file key, unwrapped with the recovery identity."""
    from vault.age import read_header, unwrap_file_key

    return unwrap_file_key(read_header(io.BytesIO(office.raw.doc_bytes(doc_id))),
                           [office.recovery])


def decrypt_with(identity: AgeKeyPair, data: bytes) -> bytes:
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, [identity])
    return out.getvalue()


@contextlib.contextmanager
def descriptors_past_1024() -> Iterator[None]:
    """This process holds descriptors up to past 1,024 (a batch of that many
    open sources, or a busy host program), so that new ones land above it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 1300
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"this machine allows only {hard} open files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


ANOTHER_USER = 54321  # a uid no test runs as


def make_another_users(path: Path) -> None:
    """Give ``path`` (a link itself, not its target) to another user, as a
    file planted by someone else in a shared folder; skips unless root."""
    try:
        os.lchown(path, ANOTHER_USER, ANOTHER_USER)
    except PermissionError:
        pytest.skip("only root can make a file that belongs to another user")


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[None]:
    """A file system of ``size`` mounted at ``where`` (made here): a disk that
    fills up. Skips where mounting is not permitted."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(where)], capture_output=True, check=False).returncode == 0
    if not mounted:
        pytest.skip("mounting a small file system is not permitted here")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def forge_manifest(office: Office, who: str = "outsider") -> None:
    """A folder writer (or the PostgreSQL role) replaces vault.json with one
    naming ``who`` officer, same vault id, signed with ``who``'s own key."""
    import json

    from vault._trust.manifest import sign_statement

    statement = json.loads(office.raw.manifest())["statement"]
    me = office.ids[who]
    statement["officer"] = {"name": who, "recipient": me.recipient,
                            "signing_key": me.signing_public}
    office.raw.set_manifest(sign_statement(me, "manifest", statement))


def rewrite_audit_line(office: Office, seq: int, reason: str = "something else") -> None:
    """Line ``seq`` of the log with another reason, its signature left as it was."""
    import json

    altered = json.loads(office.raw.audit_lines()[seq])
    altered["reason"] = reason
    office.raw.set_audit_line(seq, json.dumps(altered, sort_keys=True, separators=(",", ":"),
                                              ensure_ascii=False).encode())


def forge_record_after_last(office: Office) -> int:
    """Someone who can write the log appends a record claiming the leader
    opened something: the right shape and number, a signature that is not
    the leader's. Returns its line number."""
    import base64
    import json

    lines = office.raw.audit_lines()
    last = json.loads(lines[-1])
    forged = {**last, "seq": len(lines), "action": "open", "outcome": "allowed",
              "actor": {"key": office.ids["leader"].fingerprint, "name": "leader"},
              "reason": "the leader looked", "state": None, "request": "f" * 32,
              "sig": base64.b64encode(bytes(64)).decode()}
    office.raw.append_audit_line(json.dumps(forged, sort_keys=True, separators=(",", ":"),
                                            ensure_ascii=False).encode())
    return len(lines)
