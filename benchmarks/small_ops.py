"""Opening and sealing one small document, in process, to compare two commits.

``python3 -m benchmarks.small_ops [ROUNDS]`` builds an office in a folder
vault on tmpfs (/dev/shm when there is one; state folder beside it), then
for each of ROUNDS (default 5) times 300 ``Vault.open`` of a 100 KB document
and 100 ``Vault.seal`` of 4 KiB, and prints min / median / max of the mean
per operation. Both include the audit records; on tmpfs their flushes cost
next to nothing, so what is left is the CPU of the vault's own work. Run it
alternately on the two commits to compare (a worktree of one, with
``PYTHONPATH`` pointing at it).
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._office import make_office

OPENS, SEALS = 300, 100


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 5
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = Path(tempfile.mkdtemp(prefix="vault-small-ops-", dir=where))
    try:
        os.environ["VAULT_STATE_DIR"] = str(root / "state")
        office = make_office(root / "office")
        data = os.urandom(100_000)
        with office.as_("clerk") as v:
            doc = v.seal(io.BytesIO(data), filename="a.bin", level="INTERNAL",
                         compartments=["STAFF"]).id
            opens, seals = [], []
            for _ in range(rounds):
                start = time.perf_counter()
                for _ in range(OPENS):
                    v.open(doc, io.BytesIO())
                opens.append((time.perf_counter() - start) / OPENS * 1000)
                start = time.perf_counter()
                for _ in range(SEALS):
                    v.seal(io.BytesIO(data[:4096]), filename="s.bin", level="INTERNAL",
                           compartments=["STAFF"])
                seals.append((time.perf_counter() - start) / SEALS * 1000)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for what, times in (("open 100 KB", opens), ("seal 4 KiB", seals)):
        print(f"{what}: {min(times):.3f} / {statistics.median(times):.3f} / "
              f"{max(times):.3f} ms (min / median / max of {rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
