"""Where the CPU of bulk sealing goes: ``python3 -m benchmarks.bulk_cpu [N [FILES]]``.

Seals FILES (default 1,000) files of 100 KB into a vault on disk with ``Vault.seal_many``
(one call, after a first call as large that creates the class key and
fills the caches), N times (default 3), and prints per document: the wall
time, this process's CPU (user and system: intake, the decision, the
records and their replay, reading the workers' answers) and the sealing
workers' CPU (user and system: wraps, encryption, hashing, the label
signature, writing and fsyncing each file), from ``os.times`` -- the
workers are this process's children, reaped before the call returns.
On two cores, the documents per second cannot exceed 2 / (both CPU
figures added), whatever the overlap (docs/PERFORMANCE.md §4.4).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._office import make_office, state_dir

COUNT = 1000
LABEL = {"level": "INTERNAL", "compartments": ["STAFF"]}


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 3
    count = int(argv[1]) if len(argv) > 1 else COUNT
    state_dir()
    root = Path(tempfile.mkdtemp(prefix="vault-bulk-cpu-"))  # on disk, as the bulk rows
    try:
        folder = root / "in"
        folder.mkdir()
        data = bytearray(os.urandom(100_000))
        files = []
        for i in range(count * (runs + 1)):
            data[:8] = i.to_bytes(8, "big")
            p = folder / f"memo-{i:05d}.bin"
            p.write_bytes(data)
            files.append(p)
        os.sync()
        for keys in ("post-quantum", "X25519"):
            office = make_office(root / keys, post_quantum=keys == "post-quantum")
            clerk = office.as_("clerk")
            clerk.seal_many(files[:count], **LABEL)
            for n in range(1, runs + 1):
                before, start = os.times(), time.perf_counter()
                clerk.seal_many(files[n * count:(n + 1) * count], **LABEL)
                wall, after = time.perf_counter() - start, os.times()
                own = (after.user - before.user, after.system - before.system)
                kids = (after.children_user - before.children_user,
                        after.children_system - before.children_system)
                per = 1e3 / count
                print(f"{keys}: {count / wall:,.0f} docs/s; per document: wall "
                      f"{wall * per:.2f} ms, this process {own[0] * per:.2f} user + "
                      f"{own[1] * per:.2f} system ms, workers {kids[0] * per:.2f} user + "
                      f"{kids[1] * per:.2f} system ms", flush=True)
            clerk.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
