"""Sealing many documents and opening one, through the library, on disk.

Bulk sealing: 10,000 files of 100 KB sealed with ``Vault.seal_many``, in
calls of 1,000 files (one decision and one batch of audit records per
call, durable before any document is written; every document fsynced; one
directory fsync and one index transaction per call), against the same
files encrypted with ``vault.age.encrypt_file`` to one X25519 recipient,
one after the other: what a program using the age library with the same
durability does (each file: temporary file, fsync, rename, directory
fsync). Both write to the same disk (the temporary directory, not tmpfs:
"durable" must mean something); documents per second, median of the runs.
Target: 2,000 documents/s.

Opening: ``Vault.open`` of one 100 KB document into memory, with an
unlocked identity (label verified, policy decision, audit record fsynced,
header checked against the class keys, plaintext hash checked), against
``vault.age.decrypt`` of the same document with the recovery identity;
median per call. Target: 2 ms.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import Row, judge, ms, rate
from benchmarks._office import make_office

DOC_SIZE = 100_000
CALL = 1000  # files per seal_many call
SEAL_TARGET, OPEN_TARGET = 2000.0, 0.002


def _files(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    data = os.urandom(DOC_SIZE)
    files = []
    for i in range(count):
        p = folder / f"memo-{i:05d}.txt"
        p.write_bytes(data)
        files.append(p)
    return files


def _bulk(root: Path, count: int, reps: int, quick: bool) -> tuple[Row, list[str]]:
    import vault
    import vault.age as age

    office = make_office(root / "office")
    clerk = vault.Vault(office.vault, vault.load_identity(office.keys["clerk"]))
    files = _files(root / "in", count)
    recipient = age.X25519Identity.generate().recipient
    ours, peer, ids = [], [], []
    for rep in range(reps):
        start = time.perf_counter()
        for i in range(0, count, CALL):
            docs = clerk.seal_many(files[i:i + CALL], level="INTERNAL", compartments=["STAFF"])
            ids += [d.id for d in docs]
        ours.append(time.perf_counter() - start)
        out = root / f"peer-{rep}"
        out.mkdir()
        start = time.perf_counter()
        for f in files:
            age.encrypt_file(f, out / f"{f.name}.age", [recipient])
        peer.append(time.perf_counter() - start)
        shutil.rmtree(out)
    t_ours, t_peer = statistics.median(ours), statistics.median(peer)
    row = Row(
        f"seal {count:,} x 100 KB on disk: Vault.seal_many vs vault.age.encrypt_file "
        f"each durable (median of {reps})",
        rate(count, t_ours, " docs/s"), rate(count, t_peer, " docs/s"),
        f"{t_peer / t_ours:.2f}x", f">= {SEAL_TARGET:,.0f} docs/s",
        judge(count / t_ours >= SEAL_TARGET, quick))
    clerk.close()
    return row, ids[: min(len(ids), 400)]


def _open(root: Path, ids: list[str], quick: bool) -> Row:
    import vault
    import vault.age as age

    # Let the disk finish writing back what bulk sealing left in the page
    # cache: the audit record's fdatasync must not queue behind it.
    os.sync()
    time.sleep(1)

    office_vault, keys = root / "office" / "vault", root / "office" / "keys"
    clerk = vault.Vault(office_vault, vault.load_identity(keys / "clerk.key"))
    recovery = age.parse_identities((keys / "recovery.key").read_text(encoding="ascii"))
    for doc in ids[:5]:  # warm-up: keyring unlocked, caches filled
        clerk.open(doc, io.BytesIO())
    ours, peer = [], []
    for doc in ids:  # interleaved, one call each
        start = time.perf_counter()
        clerk.open(doc, io.BytesIO())
        ours.append(time.perf_counter() - start)
        path = office_vault / "docs" / f"{doc}.age"
        start = time.perf_counter()
        with open(path, "rb") as f:
            age.decrypt(f, io.BytesIO(), recovery)
        peer.append(time.perf_counter() - start)
    clerk.close()
    t_ours, t_peer = statistics.median(ours), statistics.median(peer)
    return Row(
        f"open one 100 KB document on disk, audit record included: Vault.open vs "
        f"vault.age.decrypt (median of {len(ids)})",
        ms(t_ours), ms(t_peer), f"{t_peer / t_ours:.2f}x", f"<= {OPEN_TARGET * 1e3:.0f} ms",
        judge(t_ours <= OPEN_TARGET, quick))


def run(quick: bool) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="vault-bulk-bench-"))
    try:
        count, reps = (500, 1) if quick else (10_000, 3)
        bulk, ids = _bulk(root, count, reps, quick)
        return [bulk, _open(root, ids[: 50 if quick else 400], quick)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
