"""Audit log speed: ``vault.audit`` beside a peer doing comparable work.

* durable appends: ``AuditLog.append`` (one fsync per record) against raw
  ``os.write`` + ``os.fsync`` of the same record lines to a file on the same
  disk, in alternating rounds;
* batched appends: ``AuditLog.append_many`` (1,000 records, one fsync)
  against the work no implementation can skip: one Ed25519 signature per
  record and the same bytes written with one fsync per batch;
* verify: ``AuditLog.verify`` of a 1,000,000-record log with a checkpoint
  every 1,000 records, against plain ``hashlib`` hashing the same leaves
  (read in blocks, split, ``sha256(0x00 || line)``);
* proof: ``AuditLog.prove`` at 1,000,000 records (read and check the
  newest checkpoint, O(log n) stored hashes, self-check), against verifying
  that proof (``verify_tlog_proof``: one Ed25519 check, O(log n) hashes).

Every figure is a median. The 1,000,000-record log is written through the
batched API; ``--quick`` uses 50,000 records and fewer rounds. The log is
on disk (the temporary directory). Targets (docs/AUDIT.md, issue of the
audit log): 5,000 durable appends/s, 100,000 batched appends/s, verify of
1,000,000 records in 2 s, one proof at 1,000,000 records in 5 ms.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks import Row, judge, ms, speedup
from vault.audit import AuditLog, fingerprint, verify_tlog_proof

ORIGIN = "bench.example.org/audit"
DURABLE_TARGET, BATCHED_TARGET, VERIFY_TARGET, PROOF_TARGET = 5000, 100_000, 2.0, 0.005
KEY = Ed25519PrivateKey.generate()


def _fields(i: int) -> dict[str, Any]:
    # A typical vault record: about 470 bytes once signed.
    return {
        "actor": {"name": f"user{i % 50}", "key": fingerprint(KEY.public_key())},
        "action": ("open", "seal", "list", "export")[i % 4],
        "doc": f"01J{i:023d}",
        "label": {"level": "secret", "compartments": ["finance", "hr"][: i % 3]},
        "outcome": ("allowed", "denied")[i % 7 == 0],
        "rules": [f"r{i % 9}"],
        "reason": "cleared for the document's level and compartments",
        "policy": hashlib.sha256(b"policy").hexdigest(),
    }


def _median(fn: Callable[[], float], rounds: int) -> float:
    return statistics.median(fn() for _ in range(rounds))


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def _durable(base: Path, quick: bool) -> Row:
    n, rounds = (200, 3) if quick else (2000, 5)
    log = AuditLog.create(base / "durable", origin=ORIGIN)
    fields = [_fields(i) for i in range(n)]  # made before, as the peer's lines are
    lines = [log.append(f, KEY).line + b"\n" for f in fields]  # warm-up

    def ours() -> float:
        start = time.perf_counter()
        for f in fields:
            log.append(f, KEY)
        return time.perf_counter() - start

    def peer() -> float:
        fd = os.open(base / "peer-durable", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = time.perf_counter()
            for line in lines:
                os.write(fd, line)
                os.fsync(fd)
            return time.perf_counter() - start
        finally:
            os.close(fd)

    times = [(ours(), peer()) for _ in range(rounds)]  # interleaved
    t_ours = statistics.median(t for t, _ in times)
    t_peer = statistics.median(t for _, t in times)
    return Row(
        f"audit: durable appends, 1 fsync/record, vs raw write+fdatasync (median of {rounds})",
        _rate(n, t_ours),
        _rate(n, t_peer),
        speedup(t_ours, t_peer),
        f">= {DURABLE_TARGET:,}/s",
        judge(n / t_ours >= DURABLE_TARGET, quick),
    )


def _batched(base: Path, quick: bool) -> Row:
    batch, batches = 1000, (5 if quick else 50)
    log = AuditLog.create(base / "batched", origin=ORIGIN)
    items = [(_fields(i), KEY) for i in range(batch)]
    sample = log.append_many(items)  # warm-up, and the bytes the peer writes
    data = b"".join(r.line + b"\n" for r in sample)
    messages = [r.signed_message() for r in sample]

    def ours() -> float:
        start = time.perf_counter()
        log.append_many(items)
        return time.perf_counter() - start

    def peer() -> float:
        fd = os.open(base / "peer-batched", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = time.perf_counter()
            for message in messages:
                KEY.sign(message)
            os.write(fd, data)
            os.fsync(fd)
            return time.perf_counter() - start
        finally:
            os.close(fd)

    times = [(ours(), peer()) for _ in range(batches)]
    t_ours = statistics.median(t for t, _ in times)
    t_peer = statistics.median(t for _, t in times)
    return Row(
        f"audit: batched appends, 1000/fsync, vs Ed25519 sign + write + fdatasync "
        f"(median of {batches})",
        _rate(batch, t_ours),
        _rate(batch, t_peer),
        speedup(t_ours, t_peer),
        f">= {BATCHED_TARGET:,}/s",
        judge(batch / t_ours >= BATCHED_TARGET, quick),
    )


def _big_log(base: Path, records: int) -> AuditLog:
    log = AuditLog.create(base / "big", origin=ORIGIN)  # a checkpoint every 1,000
    step = 10_000
    for start in range(0, records, step):
        log.append_many([(_fields(i), KEY) for i in range(start, min(records, start + step))])
    log.checkpoint()
    return log


def _plain_leaf_hashing(path: Path) -> float:
    sha = hashlib.sha256
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        carry = b""
        while block := f.read(1 << 22):
            lines = (carry + block).split(b"\n")
            carry = lines.pop()
            [sha(b"\x00" + line).digest() for line in lines]
    return time.perf_counter() - start


def _verify(log: AuditLog, records: int, rounds: int, quick: bool) -> Row:
    log.verify()  # warm the page cache for both sides

    def ours() -> float:
        start = time.perf_counter()
        report = log.verify()
        elapsed = time.perf_counter() - start
        assert report.size == records and report.checkpoints == records // 1000
        return elapsed

    times = [(ours(), _plain_leaf_hashing(log.paths.log)) for _ in range(rounds)]
    t_ours = statistics.median(t for t, _ in times)
    t_peer = statistics.median(t for _, t in times)
    return Row(
        f"audit: verify {records:,} records vs hashlib hashing the leaves (median of {rounds})",
        f"{t_ours:.2f} s",
        f"{t_peer:.2f} s",
        speedup(t_ours, t_peer),
        f"<= {VERIFY_TARGET:.0f} s",
        judge(t_ours <= VERIFY_TARGET, quick),
    )


def _prove(log: AuditLog, records: int, count: int, quick: bool) -> Row:
    reader = AuditLog.open(log.paths.directory)
    verifier = log.verifier()
    picks = random.Random(4).sample(range(records), count)
    proofs = [reader.prove(seq) for seq in picks[:5]]  # warm-up

    def ours(seq: int) -> float:
        start = time.perf_counter()
        proofs.append(reader.prove(seq))
        return time.perf_counter() - start

    def peer(text: str) -> float:
        start = time.perf_counter()
        verify_tlog_proof(text, [verifier])
        return time.perf_counter() - start

    t_ours = statistics.median(ours(seq) for seq in picks)
    t_peer = statistics.median(peer(text) for text in proofs[5:])
    return Row(
        f"audit: one proof at {records:,} records vs verifying it (median of {count})",
        ms(t_ours),
        ms(t_peer),
        speedup(t_ours, t_peer),
        f"<= {PROOF_TARGET * 1e3:.0f} ms",
        judge(t_ours <= PROOF_TARGET, quick),
    )


def run(quick: bool) -> list[Row]:
    base = Path(tempfile.mkdtemp(prefix="vault-audit-bench-", dir=os.environ.get("TMPDIR")))
    try:
        rows = [_durable(base, quick), _batched(base, quick)]
        records = 50_000 if quick else 1_000_000
        log = _big_log(base, records)
        rows.append(_verify(log, records, 2 if quick else 5, quick))
        rows.append(_prove(log, records, 50 if quick else 500, quick))
        return rows
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    for row in run(quick=os.environ.get("VAULT_BENCH_QUICK") == "1"):
        print(" | ".join(row))
