"""Helpers shared by the audit tests (tests/test_audit_*.py): real logs in
real directories, written through the library's own API."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault.audit import AuditLog, fingerprint

ORIGIN = "audit.example.org/test"
ACTORS = ("alice", "bob", "carol")
KEYS = {name: Ed25519PrivateKey.generate() for name in ACTORS}


def fields(actor: str = "alice", n: int = 0, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "actor": {"name": actor, "key": fingerprint(KEYS[actor].public_key())},
        "action": ("open", "seal", "list", "export")[n % 4],
        "doc": f"doc-{n % 5}",
        "label": {"level": ("public", "secret")[n % 2], "compartments": ["ops"][: n % 2]},
        "outcome": ("allowed", "denied", "error")[n % 3],
        "rules": [f"rule-{n % 3}"],
        "reason": f"reason {n}",
        "policy": "ab" * 32,
    }
    base.update(over)
    return base


def key_lookup(name: str | None, fp: str, seq: int = 0) -> Ed25519PublicKey | None:
    key = KEYS.get(name or "")
    if key is None or fingerprint(key.public_key()) != fp:
        return None
    return key.public_key()


def make_log(path: Path, n: int, *, every: int = 1000, final_checkpoint: bool = True) -> AuditLog:
    log = AuditLog.create(path, origin=ORIGIN, checkpoint_every=every)
    actors = list(ACTORS)
    log.append_many([(fields(actors[i % 3], i), KEYS[actors[i % 3]]) for i in range(n)])
    if final_checkpoint:
        log.checkpoint()
    return log


def lines_of(path: Path) -> list[bytes]:
    data = (path / "log").read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def write_lines(path: Path, lines: list[bytes], *, newline: bool = True) -> None:
    """Rewrite a log file the way an attacker (not the library) would."""
    (path / "log").write_bytes(b"\n".join(lines) + (b"\n" if newline else b""))


def copy_log(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


Mutation = Callable[[list[bytes]], list[bytes]]
