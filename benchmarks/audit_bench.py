"""Audit log speed: ``vault.audit`` beside a peer doing comparable work.

* durable appends: ``AuditLog.append`` (one record, one fdatasync) against
  raw ``os.write`` + ``os.fdatasync`` of the same lines to a file on the same
  file system, in alternating rounds;
* batched appends: ``AuditLog.append_many`` of 1,000 records of one
  operation (one actor, label and policy: what sealing many files writes),
  signed once (docs/AUDIT.md §5), against the work no implementation can
  skip: one Ed25519 signature and the same bytes written with one fdatasync;
* verify: structural ``AuditLog.verify`` of a 1,000,000-record log with a
  checkpoint every 1,000 records, against plain ``hashlib`` hashing the same
  leaves (read in blocks, split, ``sha256(0x00 || line)``);
* proof: ``AuditLog.prove`` at 1,000,000 records against verifying it,
  with the objects the harness made before frozen out of the collector;
* concurrency: 1, 2 and 4 processes appending single records to one log,
  total rate, against the same processes doing ``flock`` + write +
  ``fdatasync`` under the lock (the discipline without group commit).

Each figure is a median over rounds, ours and the peer's interleaved; the
``what`` column gives the rounds and the min-max spread. ``--quick`` uses
50,000 records and fewer rounds. The logs are on disk (the temporary
directory). Targets: docs/AUDIT.md §9 (durable appends >= 0.9x raw,
batches >= 60,000/s, verify of 1,000,000 records <= 1.2 s, the total rate
growing with writers) and 5 ms per proof.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks import Row, judge, ms, speedup
from vault.audit import AuditLog, fingerprint, verify_tlog_proof

ORIGIN = "bench.example.org/audit"
DURABLE_RATIO, BATCHED_TARGET, VERIFY_TARGET, PROOF_TARGET = 0.9, 60_000, 1.2, 0.005
KEY = Ed25519PrivateKey.generate()
FP = fingerprint(KEY.public_key())
POLICY = hashlib.sha256(b"policy").hexdigest()


def _fields(i: int) -> dict[str, Any]:
    # A typical vault record: about 500 bytes once signed.
    return {
        "actor": {"name": f"user{i % 50}", "key": FP},
        "action": ("open", "seal", "ls", "export")[i % 4],
        "doc": f"01J{i:013d}",
        "label": {"level": "secret", "compartments": ["finance", "hr"][: i % 3]},
        "outcome": ("allowed", "denied")[i % 7 == 0],
        "rules": [f"r{i % 9}"],
        "reason": "cleared for the document's level and compartments",
        "policy": POLICY,
    }


def _one_operation(i: int) -> dict[str, Any]:
    """A record of a batch: one operation on many documents."""
    return {"actor": {"name": "clerk", "key": FP}, "action": "seal", "doc": f"{i:016x}",
            "label": {"level": "secret", "compartments": ["finance"], "caveats": []},
            "outcome": "allowed", "rules": ["r1"],
            "reason": "cleared for the document's level and compartments", "policy": POLICY}


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def _spread(count: int, ours: list[float], peer: list[float]) -> str:
    lo, hi = count / max(ours), count / min(ours)
    plo, phi = count / max(peer), count / min(peer)
    return f"ours {lo:,.0f}-{hi:,.0f}/s, peer {plo:,.0f}-{phi:,.0f}/s"


def _rounds(ours: Any, peer: Any, rounds: int) -> tuple[list[float], list[float]]:
    times = [(ours(), peer()) for _ in range(rounds)]  # interleaved
    return [t for t, _ in times], [t for _, t in times]


def _durable(base: Path, quick: bool) -> Row:
    n, rounds = (200, 3) if quick else (2000, 7)
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
                os.fdatasync(fd)
            return time.perf_counter() - start
        finally:
            os.close(fd)

    t_ours, t_peer = _rounds(ours, peer, rounds)
    mo, mp = statistics.median(t_ours), statistics.median(t_peer)
    return Row(
        f"audit: durable appends, 1 fdatasync each, vs raw write+fdatasync (median of {rounds};"
        f" {_spread(n, t_ours, t_peer)})",
        _rate(n, mo), _rate(n, mp), speedup(mo, mp), f">= {DURABLE_RATIO:.2f}x",
        judge(mp / mo >= DURABLE_RATIO, quick),
    )


def _batched(base: Path, quick: bool) -> Row:
    batch, rounds = 1000, (5 if quick else 30)
    log = AuditLog.create(base / "batched", origin=ORIGIN)
    items = [(_one_operation(i), KEY) for i in range(batch)]
    sample = log.append_many(items)  # warm-up, and the bytes the peer writes
    data = b"".join(r.line + b"\n" for r in sample)

    def ours() -> float:
        start = time.perf_counter()
        log.append_many(items)
        return time.perf_counter() - start

    def peer() -> float:
        fd = os.open(base / "peer-batched", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = time.perf_counter()
            KEY.sign(data[-600:])
            os.write(fd, data)
            os.fdatasync(fd)
            return time.perf_counter() - start
        finally:
            os.close(fd)

    t_ours, t_peer = _rounds(ours, peer, rounds)
    mo, mp = statistics.median(t_ours), statistics.median(t_peer)
    return Row(
        f"audit: batched appends, 1000 records of one operation, vs 1 signature + write + "
        f"fdatasync (median of {rounds}; {_spread(batch, t_ours, t_peer)})",
        _rate(batch, mo), _rate(batch, mp), speedup(mo, mp), f">= {BATCHED_TARGET:,}/s",
        judge(batch / mo >= BATCHED_TARGET, quick),
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

    t_ours, t_peer = _rounds(ours, lambda: _plain_leaf_hashing(log.paths.log), rounds)
    mo, mp = statistics.median(t_ours), statistics.median(t_peer)
    return Row(
        f"audit: structural verify of {records:,} records vs hashlib hashing the leaves "
        f"(median of {rounds}; ours {min(t_ours):.2f}-{max(t_ours):.2f} s, peer "
        f"{min(t_peer):.2f}-{max(t_peer):.2f} s)",
        f"{mo:.2f} s", f"{mp:.2f} s", speedup(mo, mp), f"<= {VERIFY_TARGET:.1f} s",
        judge(mo <= VERIFY_TARGET, quick),
    )


def _prove(log: AuditLog, records: int, count: int, quick: bool) -> Row:
    reader = AuditLog.open(log.paths.directory)
    verifier = log.verifier()
    picks = random.Random(4).sample(range(records), count)

    def lookup(name: str | None, fp: str, seq: int) -> Any:
        return KEY.public_key()  # every record of the log is its
    proofs = [reader.prove(seq) for seq in picks[:5]]  # warm-up
    # The harness's own objects (the log it built, earlier areas' rows) are
    # frozen out of the collector: a prover process holds none of them, and
    # a full collection over them during a proof cost milliseconds.
    gc.collect()
    gc.freeze()

    def ours(seq: int) -> float:
        start = time.perf_counter()
        proofs.append(reader.prove(seq))
        return time.perf_counter() - start

    def peer(text: str) -> float:
        start = time.perf_counter()
        verify_tlog_proof(text, [verifier], key_lookup=lookup)
        return time.perf_counter() - start

    try:
        t_ours = statistics.median(ours(seq) for seq in picks)
        t_peer = statistics.median(peer(text) for text in proofs[5:])
    finally:
        gc.unfreeze()
    return Row(
        f"audit: one proof at {records:,} records vs verifying it (median of {count})",
        ms(t_ours), ms(t_peer), speedup(t_ours, t_peer), f"<= {PROOF_TARGET * 1e3:.0f} ms",
        judge(t_ours <= PROOF_TARGET, quick),
    )


# A process appending ``n`` single records from time ``start`` on; prints its
# seconds. "peer": the same lines with flock + write + fdatasync under the lock.
_APPENDER = textwrap.dedent("""
    import fcntl, os, sys, time
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from vault.audit import AuditLog
    kind, path, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    key = Ed25519PrivateKey.generate()
    fields = {"actor": {"name": "clerk"}, "action": "open", "outcome": "allowed",
              "reason": "cleared for the document's level and compartments" * 4}
    if kind == "ours":
        log = AuditLog(path, checkpoint_every=0)
        log.append(fields, key)
        def one():
            log.append(fields, key)
    else:
        os.makedirs(path, exist_ok=True)
        lock = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fd = os.open(os.path.join(path, "log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        line = b"x" * 520 + b"\\n"
        def one():
            fcntl.flock(lock, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fdatasync(fd)
            fcntl.flock(lock, fcntl.LOCK_UN)
    while time.time() < start:
        time.sleep(0.001)
    t = time.perf_counter()
    for _ in range(n):
        one()
    print(time.perf_counter() - t)
""")


def _together(base: Path, kind: str, procs: int, n: int) -> float:
    """Total records per second of ``procs`` processes on one log."""
    path = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))
    start = time.time() + 1.0  # every process imported and ready by then
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [subprocess.Popen([sys.executable, "-c", _APPENDER, kind, str(path / "log"),
                                 str(n), str(start)], stdout=subprocess.PIPE, env=env)
               for _ in range(procs)]
    seconds = [float(w.communicate()[0]) for w in workers]
    shutil.rmtree(path, ignore_errors=True)
    return procs * n / max(seconds)


def _concurrency(base: Path, quick: bool) -> list[Row]:
    n, rounds = (100, 1) if quick else (400, 5)
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for procs in (1, 2, 4):
            for kind in ("ours", "peer"):
                rates.setdefault((kind, procs), []).append(_together(base, kind, procs, n))
    single = statistics.median(rates["ours", 1])
    rows = []
    for procs in (1, 2, 4):
        ours, peer = (statistics.median(rates[k, procs]) for k in ("ours", "peer"))
        lo, hi = min(rates["ours", procs]), max(rates["ours", procs])
        rows.append(Row(
            f"audit: {procs} appender process{'es' if procs > 1 else ''}, total, vs flock + "
            f"write + fdatasync under the lock (median of {rounds}; ours {lo:,.0f}-{hi:,.0f}/s)",
            f"{ours:,.0f}/s", f"{peer:,.0f}/s", f"{ours / peer:.2f}x",
            "" if procs == 1 else "> 1 process",
            "" if procs == 1 else judge(ours > single, quick)))
    return rows


def run(quick: bool) -> list[Row]:
    base = Path(tempfile.mkdtemp(prefix="vault-audit-bench-", dir=os.environ.get("TMPDIR")))
    try:
        rows = [_durable(base, quick), _batched(base, quick)]
        records = 50_000 if quick else 1_000_000
        log = _big_log(base, records)
        rows.append(_verify(log, records, 2 if quick else 7, quick))
        rows.append(_prove(log, records, 50 if quick else 500, quick))
        shutil.rmtree(base / "big", ignore_errors=True)
        rows += _concurrency(base, quick)
        return rows
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    for row in run(quick=os.environ.get("VAULT_BENCH_QUICK") == "1"):
        print(" | ".join(row))
