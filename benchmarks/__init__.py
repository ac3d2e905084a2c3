"""Benchmarks: ``python -m benchmarks [--quick] [area ...]``.

Each area is a module ``benchmarks/<area>_bench.py`` defining::

    def run(quick: bool) -> list[Row]: ...

A :class:`Row` sets one measurement of ours beside the same work done by a
peer in the same run: ``what`` is measured, ``ours`` and ``peer`` are the
formatted figures (with units), ``ratio`` compares them, ``target`` is the
goal (docs/PERFORMANCE.md) and ``met`` says whether it was reached.

``ratio`` is always "how many times better than the peer": for speed
(throughput, rates, times) it is the speed-up, peer time / our time or our
rate / peer rate, so above 1.00x we are faster; for memory it is peer size
/ our size. Figures are medians over several runs, ours and the peer's
interleaved so that drift on the machine hits both alike.

With ``quick`` (``--quick`` or ``VAULT_BENCH_QUICK=1``) an area uses small
sizes and few repetitions, to check that it runs; its figures are then not
the reference ones and ``met`` is left empty. The dispatcher prints every
area's rows in one table, after lines describing the machine. Speed is only
ever measured here, never asserted by unit tests.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import NamedTuple

__all__ = [
    "Row",
    "gbps",
    "interleaved",
    "judge",
    "megabytes",
    "ms",
    "rate",
    "speedup",
    "us",
]


class Row(NamedTuple):
    what: str
    ours: str
    peer: str
    ratio: str
    target: str = ""
    met: str = ""


def gbps(size: int, seconds: float) -> str:
    """Throughput in GB/s (10**9 bytes per second)."""
    return f"{size / seconds / 1e9:.2f} GB/s"


def megabytes(kib: int) -> str:
    """A ``ru_maxrss`` figure (KiB on Linux) in MB (10**6 bytes)."""
    return f"{kib * 1024 / 1e6:.1f} MB"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} µs"


def rate(count: int, seconds: float, unit: str = "/s") -> str:
    return f"{count / seconds:,.0f}{unit}"


def speedup(ours_seconds: float, peer_seconds: float) -> str:
    """The ratio of a timing row: peer time / our time."""
    return f"{peer_seconds / ours_seconds:.2f}x" if ours_seconds else ""


def judge(ok: bool, quick: bool) -> str:
    """The ``met`` column: empty for quick runs, whose sizes are not the targets'."""
    return "" if quick else ("yes" if ok else "NO")


def interleaved_times(cases: dict[str, Callable[[], float]], reps: int
                      ) -> dict[str, list[float]]:
    """Run every case ``reps`` times, round robin; the seconds of each run.

    Each case returns the seconds it measured (so that it may exclude its
    own set-up)."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(reps):
        for name, case in cases.items():
            times[name].append(case())
    return times


def interleaved(cases: dict[str, Callable[[], float]], reps: int) -> dict[str, float]:
    """As :func:`interleaved_times`: the median seconds of each case."""
    return {name: statistics.median(t) for name, t in interleaved_times(cases, reps).items()}


def gbps_range(size: int, times: list[float]) -> str:
    """The slowest and fastest of several runs, in GB/s: ``min-max``."""
    return f"{size / max(times) / 1e9:.2f}-{size / min(times) / 1e9:.2f}"
