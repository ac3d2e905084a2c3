"""CLI start-up: ``vault --version`` and ``vault --help`` against
``python -c "import click"``, the least any Click program pays.

Each command is the whole process as a user runs it: the installed
``vault`` console script (its wrapper included), or this interpreter for
the peer; wall time of the child process, median of many interleaved
runs. Target: at most 1.15 times the peer, i.e. a ratio of at least 0.87x.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks import Row, interleaved, judge, ms
from benchmarks._tools import compile_bytecode, vault_command
from benchmarks._tools import run as sh

TARGET = 1.15  # at most this many times the peer's time


def run(quick: bool) -> list[Row]:
    compile_bytecode()
    vault = vault_command()
    reps = 8 if quick else 40
    null = subprocess.DEVNULL
    med = interleaved(
        {
            "peer": lambda: sh([sys.executable, "-c", "import click"], stdout=null)[0],
            "version": lambda: sh([*vault, "--version"], stdout=null)[0],
            "help": lambda: sh([*vault, "--help"], stdout=null)[0],
        },
        reps,
    )
    rows = []
    for case in ("version", "help"):
        ours, peer = med[case], med["peer"]
        rows.append(Row(
            f"start-up: `vault --{case}` vs `python -c 'import click'` (median of {reps})",
            ms(ours), ms(peer), f"{peer / ours:.2f}x", f">= {1 / TARGET:.2f}x",
            judge(ours <= TARGET * peer, quick)))
    return rows

