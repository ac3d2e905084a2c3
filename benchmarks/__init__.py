"""Benchmarks: ``python -m benchmarks [--quick] [area ...]``.

Each area is a module ``benchmarks/<area>_bench.py`` defining::

    def run(quick: bool) -> list[Row]: ...

A :class:`Row` compares us with a peer on one measurement: ``what`` is
measured, ``ours`` and ``peer`` are the formatted figures (with units), and
``ratio`` is ``ours / peer`` as text ("" when a ratio means nothing). With
``quick`` (``--quick`` or ``VAULT_BENCH_QUICK=1``) an area uses small sizes
and few repetitions, to check that it runs; its figures are then not the
reference ones. The dispatcher prints every area's rows in one table, after
a line describing the machine. Speed is only ever measured here, never
asserted by unit tests.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Row", "gbps", "megabytes", "ratio"]


class Row(NamedTuple):
    what: str
    ours: str
    peer: str
    ratio: str


def gbps(size: int, seconds: float) -> str:
    """Throughput in GB/s (10**9 bytes per second)."""
    return f"{size / seconds / 1e9:.2f} GB/s"


def megabytes(kib: int) -> str:
    """A ``ru_maxrss`` figure (KiB on Linux) in MB (10**6 bytes)."""
    return f"{kib * 1024 / 1e6:.1f} MB"


def ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.2f}x" if peer else ""
