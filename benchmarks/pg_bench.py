"""Many workstations, one vault: 4 processes sealing and opening 4 KiB
documents at the same time, against a PostgreSQL vault (ours) and a folder
vault (peer) on the same machine and disk.

Each process opens the vault on its own connections, as its own user with
a record of the vault of its own (a workstation each: its own
``VAULT_STATE_DIR``), and loops: seal a document, open it back. Aggregate operations per second are
all seals and opens divided by the wall time from the common start to the
last process's end; the figures are medians of 3 runs of 150 iterations
per process, PostgreSQL and folder runs interleaved. Afterwards the audit
log must hold, for every document, exactly one seal decision, one seal
completion and one open decision (no record lost), and verify end to end.
Target: PostgreSQL at least as fast as the folder.

The PostgreSQL server is a throwaway cluster (tests/pg_support.py:
initdb into a temporary folder, a Unix socket, fsync on, default settings
otherwise); both vaults live on the same disk under the system's temporary
folder, so every commit and every fsync reaches real storage.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Row, judge

PROCESSES = 4
WHO = ("clerk", "leader", "deputy", "registrar")
SIZE = 4 << 10
EXPECTED = (("seal", "allowed"), ("seal", "done"), ("open", "allowed"))
TARGET = 1.0  # at least as fast as the folder (ratio PostgreSQL / folder)


def _support() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _run(office: Any, iterations: int) -> tuple[float, int, int]:
    """``(ops per second, audit records missing, documents)``."""
    from pg_workers import run_all, seal_and_open

    start = time.time() + 2.0  # every process imported and connected by then
    # Each person works at a workstation of their own: their own record of
    # the vault (docs/DESIGN.md §8), kept from one run to the next.
    args = [(office.location, str(office.files[w]), iterations, SIZE, start, "INTERNAL",
             ("STAFF",), str(office.root / f"state-{w}")) for w in WHO]
    results = run_all(seal_and_open, args)
    wall = max(r["seconds"] for r in results)
    ids = [i for r in results for i in r["ids"]]
    assert sum(r["mismatches"] for r in results) == 0, "a document came back different"
    officer = office.as_("officer")
    officer.verify_audit()
    seen: dict[tuple[str, str, str | None], int] = {}
    for rec in officer.audit.records():
        if rec.action in ("seal", "open"):
            key = (rec.action, rec.outcome, rec.doc)
            seen[key] = seen.get(key, 0) + 1
    officer.close()
    # Each document: its seal decided and done, its opening decided.
    missing = sum(seen.get((*want, d), 0) != 1 for d in ids for want in EXPECTED)
    return 2 * len(ids) / wall, missing, len(ids)


def run(quick: bool) -> list[Row]:
    _support()
    from backends import FolderKind, PostgresKind
    from pg_support import INSTALL_HINT, Cluster, find_bindir
    from vault_helpers import make_office

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit(INSTALL_HINT)
    iterations, reps = (25, 1) if quick else (150, 3)
    root = Path(tempfile.mkdtemp(prefix="vault-pg-bench-"))
    cluster = Cluster(bindir, durable=True)  # every commit reaches the disk
    pg_rates: list[float] = []
    folder_rates: list[float] = []
    pg_missing = folder_missing = n = 0
    try:
        cluster.start()
        offices = (make_office(root / "pg", PostgresKind(cluster)),
                   make_office(root / "folder", FolderKind()))
        for _ in range(reps):  # interleaved: drift on the machine hits both alike
            rate, missing, n = _run(offices[0], iterations)
            pg_rates.append(rate)
            pg_missing += missing
            rate, missing, _ = _run(offices[1], iterations)
            folder_rates.append(rate)
            folder_missing += missing
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    pg_rate, folder_rate = statistics.median(pg_rates), statistics.median(folder_rates)
    n *= reps
    expected = len(EXPECTED) * n
    what = f"{PROCESSES} processes seal+open 4 KiB: PostgreSQL vs folder"
    spread = (f"median of {reps}; PostgreSQL {min(pg_rates):,.0f}-{max(pg_rates):,.0f}, "
              f"folder {min(folder_rates):,.0f}-{max(folder_rates):,.0f} ops/s")
    return [
        Row(f"{what} ({spread})", f"{pg_rate:,.0f} ops/s", f"{folder_rate:,.0f} ops/s",
            f"{pg_rate / folder_rate:.2f}x", f">= {TARGET:.2f}x",
            judge(pg_rate >= TARGET * folder_rate, quick)),
        Row(f"{what}: audit records lost (decided, done, opened: 3 per document)",
            f"{pg_missing} of {expected}", f"{folder_missing} of {expected}", "", "0",
            judge(pg_missing == 0 and folder_missing == 0, quick)),
    ]
