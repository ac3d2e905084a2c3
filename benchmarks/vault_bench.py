"""The vault's overhead over bare age: ``Vault.seal``/``open`` (policy check,
signed label, audit record fsynced, index row) against ``vault.age``
``encrypt``/``decrypt`` of the same bytes to one X25519 recipient.

Post-quantum beside X25519: ``Vault.seal`` of a 4 KiB document in an office
of hybrid keys (``post_quantum: required``, every stanza mlkem768x25519)
against the same in an office of X25519 keys (``post_quantum: off``), in the
same run, batches of each taking turns; the median per seal, with the
fastest and slowest batch.

Small documents measure operations per second (the overhead dominates);
a large one measures throughput (the payload dominates: ``seal`` reads its
input twice, to hash it and to encrypt it). The vault lives on tmpfs
(/dev/shm) when available, so the disk is not what is measured; fsyncs
still cost their system calls.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Row, gbps, speedup
from benchmarks._office import make_office

KiB, MiB = 1 << 10, 1 << 20


def _clerk(root: Path) -> Any:
    return make_office(root).as_("clerk")


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:.0f} ops/s"


def _small(clerk: Any, n: int) -> list[Row]:
    import vault.age as age

    data = os.urandom(4 * KiB)
    start = time.perf_counter()
    ids = [clerk.seal(io.BytesIO(data), level="INTERNAL", compartments=["STAFF"],
                      filename="memo.txt").id for _ in range(n)]
    seal_s = time.perf_counter() - start
    start = time.perf_counter()
    for doc in ids:
        clerk.open(doc, io.BytesIO())
    open_s = time.perf_counter() - start

    ident = age.X25519Identity.generate()
    blobs = []
    start = time.perf_counter()
    for _ in range(n):
        out = io.BytesIO()
        age.encrypt(io.BytesIO(data), out, [ident.recipient])
        blobs.append(out.getvalue())
    enc_s = time.perf_counter() - start
    start = time.perf_counter()
    for blob in blobs:
        age.decrypt(io.BytesIO(blob), io.BytesIO(), [ident])
    dec_s = time.perf_counter() - start
    return [
        Row("Vault.seal 4 KiB on tmpfs vs vault.age.encrypt in memory", _rate(n, seal_s),
            _rate(n, enc_s), speedup(seal_s, enc_s)),
        Row("Vault.open 4 KiB on tmpfs vs vault.age.decrypt in memory", _rate(n, open_s),
            _rate(n, dec_s), speedup(open_s, dec_s)),
    ]


def _per_seal(batches: list[float], n: int) -> str:
    each = sorted(b / n * 1e3 for b in batches)
    return f"{each[0]:.2f}-{each[-1]:.2f}"


def _pq_beside_x25519(root: Path, n: int, batches: int) -> list[Row]:
    offices = {"hybrid": make_office(root / "pq").as_("clerk"),
               "X25519": make_office(root / "classical", post_quantum=False).as_("clerk")}
    data = os.urandom(4 * KiB)
    times: dict[str, list[float]] = {k: [] for k in offices}
    try:
        for _ in range(batches):  # taking turns, so that drift hits both alike
            for kind, clerk in offices.items():
                start = time.perf_counter()
                for _ in range(n):
                    clerk.seal(io.BytesIO(data), level="INTERNAL", compartments=["STAFF"],
                               filename="memo.txt")
                times[kind].append(time.perf_counter() - start)
    finally:
        for clerk in offices.values():
            clerk.close()
    ours, peer = times["hybrid"], times["X25519"]
    return [Row(f"Vault.seal 4 KiB, office of mlkem768x25519 keys vs office of X25519 keys "
                f"(median of {batches} batches of {n}; ours {_per_seal(ours, n)}, "
                f"peer {_per_seal(peer, n)} ms)",
                f"{statistics.median(ours) / n * 1e3:.2f} ms",
                f"{statistics.median(peer) / n * 1e3:.2f} ms",
                speedup(statistics.median(ours), statistics.median(peer)))]


def _large(clerk: Any, root: Path, size: int, reps: int) -> list[Row]:
    import vault.age as age

    src = root / "big.bin"
    with open(src, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    ident = age.X25519Identity.generate()
    seal, enc, opn, dec = [], [], [], []
    for _ in range(reps):
        t = time.perf_counter()
        doc = clerk.seal(src, level="INTERNAL", compartments=["STAFF"]).id
        seal.append(time.perf_counter() - t)
        t = time.perf_counter()
        age.encrypt_file(src, root / "big.age", [ident.recipient])
        enc.append(time.perf_counter() - t)
        t = time.perf_counter()
        clerk.open(doc, root / "big.out", overwrite=True)
        opn.append(time.perf_counter() - t)
        t = time.perf_counter()
        age.decrypt_file(root / "big.age", root / "big.dec", [ident])
        dec.append(time.perf_counter() - t)
        (root / "big.age").unlink()
        (root / "big.dec").unlink()
    s, e, o, d = (statistics.median(x) for x in (seal, enc, opn, dec))
    mib = size // MiB
    return [
        Row(f"Vault.seal {mib} MiB on tmpfs vs vault.age.encrypt_file", gbps(size, s),
            gbps(size, e), speedup(s, e)),
        Row(f"Vault.open {mib} MiB on tmpfs vs vault.age.decrypt_file", gbps(size, o),
            gbps(size, d), speedup(o, d)),
    ]


def run(quick: bool) -> list[Row]:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = Path(tempfile.mkdtemp(prefix="vault-bench-", dir=base))
    try:
        clerk = _clerk(root / "office")
        rows = _small(clerk, 50 if quick else 500)
        rows += _pq_beside_x25519(root, 20 if quick else 100, 3 if quick else 7)
        rows += _large(clerk, root, (8 if quick else 256) * MiB, 1 if quick else 3)
        clerk.close()
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)
