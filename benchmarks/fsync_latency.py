"""How long this disk's fdatasync takes after other work.

``python -m benchmarks.fsync_latency [N]`` appends a 500-byte line to a new
file in the temporary directory and calls ``fdatasync`` on it, ``N`` times
(default 1,000), after busy-waiting 0, 50, 100, 200 and 500 µs each time,
and prints the mean and median fdatasync per case and the 10th and 90th
percentiles. A disk whose flushes slow down when other work comes between them
makes any durable log that does work per record (a signature, JSON) slower
than back-to-back raw appends: docs/PERFORMANCE.md §4.8 reads the audit
rows with it.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

LINE = b"x" * 499 + b"\n"


def _case(folder: str, work_us: int, n: int) -> list[float]:
    fd = os.open(os.path.join(folder, f"log-{work_us}"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            while time.perf_counter() - start < work_us / 1e6:
                pass  # other work, as a record's signature and encoding would be
            os.write(fd, LINE)
            start = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
    return sorted(times)


def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="vault-fsync-") as folder:
        print(f"fdatasync of a 500-byte append in {tempfile.gettempdir()}, {n} times each")
        print("work before (µs)   mean (µs)   median (µs)   10% / 90% (µs)")
        for work in (0, 50, 100, 200, 500):
            t = _case(folder, work, n)
            tenth = max(1, len(t) // 10)
            print(f"{work:16d}   {statistics.fmean(t) * 1e6:9.0f}   "
                  f"{statistics.median(t) * 1e6:11.0f}   "
                  f"{t[tenth] * 1e6:.0f} / {t[-tenth] * 1e6:.0f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
