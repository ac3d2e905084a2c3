"""Many workstations, one vault: 4 processes sealing and opening 4 KiB
documents at the same time, against a PostgreSQL vault (ours) and a folder
vault (peer) on the same machine and disk.

Each process opens the vault on its own connections, as its own user, and
loops: seal a document, open it back. Aggregate operations per second are
all seals and opens divided by the wall time from the common start to the
last process's end; the figures are medians of 3 runs of 150 iterations
per process, PostgreSQL and folder runs interleaved. Afterwards the audit
log must hold exactly one seal and one open record per document (no record
lost) and verify end to end.

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
TARGET = 500  # aggregate operations per second against PostgreSQL (issue target)


def _support() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _run(office: Any, iterations: int) -> tuple[float, int, int]:
    """``(ops per second, audit records missing, documents)``."""
    from pg_workers import run_all, seal_and_open

    start = time.time() + 2.0  # every process imported and connected by then
    args = [(office.location, str(office.files[w]), iterations, SIZE, start) for w in WHO]
    results = run_all(seal_and_open, args)
    wall = max(r["seconds"] for r in results)
    ids = [i for r in results for i in r["ids"]]
    assert sum(r["mismatches"] for r in results) == 0, "a document came back different"
    officer = office.as_("officer")
    officer.verify_audit()
    seen: dict[tuple[str, str | None], int] = {}
    for rec in officer.audit.records():
        if rec.action in ("seal", "open"):
            seen[rec.action, rec.doc] = seen.get((rec.action, rec.doc), 0) + 1
    missing = sum(seen.get((a, d), 0) != 1 for d in ids for a in ("seal", "open"))
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
    cluster = Cluster(bindir)
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
    what = f"{PROCESSES} processes seal+open 4 KiB: PostgreSQL vs folder"
    return [
        Row(f"{what} (ops/s)", f"{pg_rate:.0f} ops/s", f"{folder_rate:.0f} ops/s",
            f"{pg_rate / folder_rate:.2f}x", f">= {TARGET} ops/s",
            judge(pg_rate >= TARGET, quick)),
        Row(f"{what}: audit records lost", f"{pg_missing} of {2 * n}",
            f"{folder_missing} of {2 * n}", "", "0", judge(pg_missing == 0, quick)),
    ]
