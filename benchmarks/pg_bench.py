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

A second row gives the CPU time (user and system) per operation of all the
processes that did the work: the four worker processes during their loops
and, for PostgreSQL, the server's processes over the run (read from /proc:
the postmaster, its live children and those it reaped). The machine's cores
divided by it bound the operations per second whatever the waiting
(docs/PERFORMANCE.md §4.10).

The PostgreSQL server is a throwaway cluster (tests/pg_support.py:
initdb into a temporary folder, a Unix socket, fsync on, default settings
otherwise); both vaults live on the same disk under the system's temporary
folder, so every commit and every fsync reaches real storage.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Row, judge, ms

PROCESSES = 4
WHO = ("clerk", "leader", "deputy", "registrar")
SIZE = 4 << 10
EXPECTED = (("seal", "allowed"), ("seal", "done"), ("open", "allowed"))
TARGET = 1.0  # at least as fast as the folder (ratio PostgreSQL / folder)


def _support() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def server_cpu(cluster: Any) -> float:
    """CPU seconds (user and system) the PostgreSQL server has used so far:
    the postmaster, its live children, and the children it has reaped
    (a session's backend exits when its connection closes)."""
    clock = os.sysconf("SC_CLK_TCK")
    postmaster = int((Path(cluster.data) / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = (Path("/proc") / entry / "stat").read_text()
        except OSError:  # exited meanwhile: the postmaster counts it once reaped
            continue
        fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
        pid, ppid = int(entry), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / clock


def _run(office: Any, iterations: int,
         cluster: Any = None) -> tuple[float, int, int, float, float]:
    """``(ops per second, audit records missing, documents, CPU seconds per
    operation, a share of it)``: the CPU of the worker processes during
    their loops, and of the PostgreSQL server over the run when ``cluster``
    is given; the share is the server's, or for a folder the workers'
    system time."""
    from pg_workers import run_all, seal_and_open

    start = time.time() + 2.0  # every process imported and connected by then
    # Each person works at a workstation of their own: their own record of
    # the vault (docs/DESIGN.md §8), kept from one run to the next.
    args = [(office.location, str(office.files[w]), iterations, SIZE, start, "INTERNAL",
             ("STAFF",), str(office.root / f"state-{w}")) for w in WHO]
    before = server_cpu(cluster) if cluster is not None else 0.0
    results = run_all(seal_and_open, args)
    server = server_cpu(cluster) - before if cluster is not None else 0.0
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
    ops = 2 * len(ids)
    total = sum(r["cpu"] for r in results) + server
    # For a folder, the share is the clients' system time (files, fsyncs, locks).
    share = server if cluster is not None else sum(r["system"] for r in results)
    return ops / wall, missing, len(ids), total / ops, share / ops


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
    pg_cpu: list[float] = []
    pg_server: list[float] = []
    folder_system: list[float] = []
    folder_cpu: list[float] = []
    pg_missing = folder_missing = n = 0
    try:
        cluster.start()
        offices = (make_office(root / "pg", PostgresKind(cluster)),
                   make_office(root / "folder", FolderKind()))
        for _ in range(reps):  # interleaved: drift on the machine hits both alike
            rate, missing, n, cpu, server = _run(offices[0], iterations, cluster)
            pg_rates.append(rate)
            pg_cpu.append(cpu)
            pg_server.append(server)
            pg_missing += missing
            rate, missing, _, cpu, system = _run(offices[1], iterations)
            folder_system.append(system)
            folder_rates.append(rate)
            folder_cpu.append(cpu)
            folder_missing += missing
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    pg_rate, folder_rate = statistics.median(pg_rates), statistics.median(folder_rates)
    cores = os.cpu_count() or 1
    pg_each, folder_each = statistics.median(pg_cpu), statistics.median(folder_cpu)
    n *= reps
    expected = len(EXPECTED) * n
    what = f"{PROCESSES} processes seal+open 4 KiB: PostgreSQL vs folder"
    spread = (f"median of {reps}; PostgreSQL {min(pg_rates):,.0f}-{max(pg_rates):,.0f}, "
              f"folder {min(folder_rates):,.0f}-{max(folder_rates):,.0f} ops/s")
    return [
        Row(f"{what} ({spread})", f"{pg_rate:,.0f} ops/s", f"{folder_rate:,.0f} ops/s",
            f"{pg_rate / folder_rate:.2f}x", f">= {TARGET:.2f}x",
            judge(pg_rate >= TARGET * folder_rate, quick)),
        Row(f"{what}: CPU per operation, all processes, PostgreSQL server included (median of"
            f" {reps}; PostgreSQL {min(pg_cpu) * 1e3:.2f}-{max(pg_cpu) * 1e3:.2f}, folder"
            f" {min(folder_cpu) * 1e3:.2f}-{max(folder_cpu) * 1e3:.2f} ms; {cores} cores allow"
            f" at most {cores / pg_each:,.0f} and {cores / folder_each:,.0f} ops/s; the"
            f" PostgreSQL server's share {statistics.median(pg_server) * 1e3:.2f} ms, the"
            f" folder clients' system time {statistics.median(folder_system) * 1e3:.2f} ms)",
            ms(pg_each), ms(folder_each), f"{folder_each / pg_each:.2f}x"),
        Row(f"{what}: audit records lost (decided, done, opened: 3 per document)",
            f"{pg_missing} of {expected}", f"{folder_missing} of {expected}", "", "0",
            judge(pg_missing == 0 and folder_missing == 0, quick)),
    ]
