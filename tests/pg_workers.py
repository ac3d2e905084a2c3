"""Worker processes for the concurrency tests and the PostgreSQL benchmark:
each one opens the vault on its own connections, as a workstation would.

Functions here are started with ``multiprocessing``'s *spawn* method (a
fresh interpreter: nothing is inherited from the test process but the
arguments), so they must stay importable at module level.
"""

from __future__ import annotations

import io
import os
import time
from typing import Any


def seal_and_open(location: str, identity_file: str, count: int, size: int,
                  start_at: float, level: str = "INTERNAL",
                  compartments: tuple[str, ...] = ("STAFF",),
                  state_dir: str | None = None) -> dict[str, Any]:
    """Seal ``count`` documents of ``size`` bytes and open each one back;
    returns the ids, failures, the busy time and the CPU time (user and
    system, and system alone) spent in it. ``state_dir``: where this worker keeps its record
    of the vault (default: $VAULT_STATE_DIR, shared by every worker of the
    run)."""
    import vault

    me = vault.load_identity(identity_file)
    v = vault.Vault(location, me, state_dir=state_dir)
    data = os.urandom(size)
    while time.time() < start_at:  # every worker starts at the same moment
        time.sleep(0.001)
    ids: list[str] = []
    mismatches = 0
    t0, cpu0 = time.perf_counter(), os.times()
    for _ in range(count):
        info = v.seal(io.BytesIO(data), level=level, compartments=list(compartments),
                      filename="memo.txt")
        ids.append(info.id)
        out = io.BytesIO()
        v.open(info.id, out)
        mismatches += out.getvalue() != data
    seconds, cpu = time.perf_counter() - t0, os.times()
    return {"ids": ids, "mismatches": mismatches, "seconds": seconds, "pid": os.getpid(),
            "cpu": cpu.user - cpu0.user + cpu.system - cpu0.system,
            "system": cpu.system - cpu0.system}


def run_all(fn: Any, args: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``fn(*a)`` for every ``a`` in its own spawned process."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(args)) as pool:
        return pool.starmap(fn, args)
