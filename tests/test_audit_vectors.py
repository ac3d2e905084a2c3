"""The test vector of docs/AUDIT.md §16 (tests/vectors/audit/): a 3-line log
written with known keys, its leaf hashes, chain digests and signatures.

The vector is checked twice: independently of vault (``hashlib`` and
``cryptography`` only, following the document), and against the library,
which must write the very same bytes from the same inputs (Ed25519 is
deterministic) and verify them. Regenerate with
``python tests/test_audit_vectors.py`` -- only when the format changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

VECTORS = Path(__file__).parent / "vectors" / "audit"
ORIGIN = "vault.example.org/vector"
TIME = "2026-01-01T00:00:00.000000Z"


def _seed(name: str) -> bytes:
    return hashlib.sha256(b"vault audit test vector " + name.encode()).digest()


def _generate() -> tuple[bytes, dict[str, Any]]:
    from vault.audit import NoteSigner, fingerprint
    from vault.audit._checkpoint import Checkpoint
    from vault.audit._fields import RecordBuilder, check_fields

    keys = {n: Ed25519PrivateKey.from_private_bytes(_seed(n)) for n in ("alice", "bob")}
    builder = RecordBuilder(time=TIME, host="vector", pid=1)
    label = {"level": "CONFIDENTIAL", "compartments": ["FINANCE"], "caveats": ["PERSONAL-DATA"]}
    first = {"actor": {"name": "alice"}, "action": "seal", "doc": "aaaaaaaaaaaaaaaa",
             "label": label, "outcome": "allowed", "rules": ["clerks-seal"],
             "reason": "cleared", "policy": hashlib.sha256(b"policy").hexdigest(),
             "request": "req-0"}
    bob = {"actor": {"name": "bob"}, "action": "open", "doc": "aaaaaaaaaaaaaaaa",
           "label": label, "outcome": "allowed", "rules": [], "reason": "", "request": "req-1"}
    items = [check_fields(f, keys[who], fingerprint(keys[who].public_key())) for who, f in (
        ("alice", first), ("bob", {**bob, "state": {"note": "a batch of two"}}),
        ("bob", {**bob, "outcome": "done"}))]
    records, leaves = builder.run(items, 0, bytes(32))
    log = b"".join(r.line + b"\n" for r in records)
    signer = NoteSigner("vault.example.org/vector",
                        Ed25519PrivateKey.from_private_bytes(_seed("checkpoint")))
    from vault.audit._tree import tree_root

    root = tree_root(leaves)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    vector = {
        "keys": {n: {"seed": _seed(n).hex(),
                     "public": base64.b64encode(k.public_key().public_bytes(*raw)).decode(),
                     "fingerprint": fingerprint(k.public_key())} for n, k in keys.items()},
        "leaves": [leaf.hex() for leaf in leaves],
        "signed": {"0": {"covers": [0, 0], "chain": hashlib.sha256(bytes(32)).hexdigest()},
                   "2": {"covers": [1, 2],
                         "chain": hashlib.sha256(leaves[0] + leaves[1]).hexdigest()}},
        "signatures": {str(r.seq): base64.b64encode(r.signature).decode()
                       for r in records if r.signature},
        "root": base64.b64encode(root).decode(),
        "verifier_key": signer.verifier_key(),
        "checkpoint": Checkpoint(ORIGIN, 3, root).sign([signer]).decode(),
    }
    return log, vector


def _load() -> tuple[bytes, dict[str, Any]]:
    return (VECTORS / "log").read_bytes(), json.loads((VECTORS / "vector.json").read_text())


def test_the_vector_by_the_document_alone() -> None:
    log, vector = _load()
    lines = log.split(b"\n")[:-1]
    assert len(lines) == 3 and log.endswith(b"\n")
    leaves = [hashlib.sha256(b"\x00" + line).digest() for line in lines]  # §6
    assert [x.hex() for x in leaves] == vector["leaves"]
    node = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
    assert base64.b64encode(hashlib.sha256(b"\x01" + node + leaves[2]).digest()).decode() == \
        vector["root"]
    keys = {v["fingerprint"]: Ed25519PublicKey.from_public_bytes(base64.b64decode(v["public"]))
            for v in vector["keys"].values()}
    for fp, key in keys.items():  # §2: the fingerprint of each key
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert fp == "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode()[:-1]
    assert set(vector["signed"]) == {"0", "2"}
    for seq, info in vector["signed"].items():
        k = int(seq)
        s, _ = info["covers"]
        before = leaves[s - 1] if s else bytes(32)  # §4: leaf(s-1) || leaf(s) .. leaf(k-1)
        chain = hashlib.sha256(before + b"".join(leaves[s:k])).digest()
        assert chain.hex() == info["chain"]
        record = json.loads(lines[k])
        sig = base64.b64decode(record["sig"])
        assert record["sig"] == vector["signatures"][seq]
        body = lines[k].replace(b',"sig":"' + record["sig"].encode() + b'"', b"", 1)
        keys[record["actor"]["key"]].verify(sig, b"vault audit record v2\n" + chain + body)
    unsigned = json.loads(lines[1])
    assert "sig" not in unsigned and unsigned["actor"] == json.loads(lines[2])["actor"]
    assert json.loads(lines[0])["label"]["caveats"] == ["PERSONAL-DATA"]


def test_the_library_writes_and_verifies_the_vector(tmp_path: Path) -> None:
    from vault.audit import AuditLog, NoteVerifier, open_checkpoint

    log, vector = _load()
    assert _generate() == (log, vector)  # the same bytes from the same inputs
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "log").write_bytes(log)
    (tmp_path / "log" / "checkpoints").mkdir()
    (tmp_path / "log" / "checkpoints" / "3").write_text(vector["checkpoint"])
    keys = {v["fingerprint"]: Ed25519PublicKey.from_public_bytes(base64.b64decode(v["public"]))
            for v in vector["keys"].values()}
    verifier = NoteVerifier.from_key(vector["verifier_key"])
    report = AuditLog(tmp_path / "log").verify(
        verifier=verifier, key_lookup=lambda name, fp, seq: keys.get(fp))
    assert (report.size, report.signatures, report.unsigned_covered) == (3, 2, 1)
    assert base64.b64encode(report.root).decode() == vector["root"] and report.checkpoints == 1
    assert open_checkpoint(vector["checkpoint"].encode(), [verifier], origin=ORIGIN).size == 3


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    data, vec = _generate()
    VECTORS.mkdir(parents=True, exist_ok=True)
    (VECTORS / "log").write_bytes(data)
    (VECTORS / "vector.json").write_text(json.dumps(vec, indent=2, sort_keys=True) + "\n")
