"""The benchmark command runs and prints a complete, well-formed table.

Speed itself is never asserted here (docs/PERFORMANCE.md): only that
``python -m benchmarks --quick`` runs the cheap areas end to end, and that
every row it prints has a figure for us and for the peer, a ratio, and the
target it is judged against.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURE = re.compile(r"\d[\d,]*(\.\d+)? (µs|ms|s|GB/s|MB|/s|docs/s|ops/s)")
RATIO = re.compile(r"\d+\.\d\dx")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def _table(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("what "))
    header, rule, *rows = lines[start:]
    widths = [len(dashes) for dashes in rule.split("  ")]
    assert [c.strip() for c in _cut(header, widths)] == ["what", "ours", "peer", "ratio",
                                                         "target", "met"]
    return [[c.strip() for c in _cut(row, widths)] for row in rows]


def _cut(line: str, widths: list[int]) -> list[str]:
    cells, at = [], 0
    for w in widths:
        cells.append(line[at : at + w])
        at += w + 2
    return cells


def test_quick_run_prints_every_row_with_figures_ratio_and_target() -> None:
    r = _run("--quick", "startup", "policy")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("machine: ")
    assert "mode: quick" in r.stdout
    rows = _table(r.stdout)
    whats = [row[0] for row in rows]
    assert sum(w.startswith("start-up: `vault --") for w in whats) == 2
    assert sum(w.startswith("policy decide (") for w in whats) == 3
    assert any(w.startswith("billion laughs") for w in whats)
    for what, ours, peer, ratio, target, met in rows:
        assert FIGURE.fullmatch(ours) and FIGURE.fullmatch(peer), what
        assert RATIO.fullmatch(ratio), what
        assert bool(target) != what.startswith("load "), what  # loading has no target
        assert met == ""  # a quick run never claims a target


def test_quick_run_of_the_vault_areas() -> None:
    # The areas that drive the vault itself through the library and the
    # command line: they follow its API, so a quick run keeps them honest.
    r = _run("--quick", "bulk", "vault")
    assert r.returncode == 0, r.stderr
    rows = _table(r.stdout)
    whats = [row[0] for row in rows]
    assert sum(w.startswith("seal 500 x 100 KB on disk, each durable") for w in whats) == 3
    assert sum(w.startswith("open one 100 KB document") for w in whats) == 2
    assert sum(w.startswith("Vault.") for w in whats) == 5
    for what, ours, peer, ratio, target, met in rows:
        assert FIGURE.fullmatch(ours) and FIGURE.fullmatch(peer), what
        assert RATIO.fullmatch(ratio), what
        assert bool(target) == (not what.startswith("Vault.")), what
        assert met == ""


def test_quick_run_of_the_postgresql_area() -> None:
    # Four worker processes against a throwaway cluster and a folder vault:
    # the rate, the CPU of every process (the server's included) and the
    # count of audit records lost.
    r = _run("--quick", "pg")
    assert r.returncode == 0, r.stderr
    rows = _table(r.stdout)
    assert len(rows) == 3
    (rate, cpu, lost) = rows
    assert rate[0].startswith("4 processes seal+open 4 KiB: PostgreSQL vs folder (")
    assert "CPU per operation" in cpu[0] and re.search(r"\d cores allow at most \d", cpu[0])
    for row in (rate, cpu):
        assert FIGURE.fullmatch(row[1]) and FIGURE.fullmatch(row[2]), row[0]
        assert RATIO.fullmatch(row[3]), row[0]
    assert lost[1] == lost[2] == "0 of 300"  # 4 x 25 documents, 3 records each
    assert all(row[5] == "" for row in rows)


def test_unknown_area_is_a_usage_error() -> None:
    r = _run("--quick", "no-such-area")
    assert r.returncode == 2
    assert "unknown area(s): no-such-area" in r.stderr


def test_the_bulk_cpu_split_prints_both_processes_shares() -> None:
    r = subprocess.run([sys.executable, "-m", "benchmarks.bulk_cpu", "1", "40"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["post-quantum", "X25519"]
    assert all("docs/s; per document: wall" in line and "workers" in line for line in lines)


def test_the_detector_density_table_prints_every_share() -> None:
    r = subprocess.run([sys.executable, "-m", "benchmarks.detector_density", "1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["0.0%", "0.1%", "0.5%", "1.0%", "3.0%", "10.0%"]
    assert rows[0].split()[-1] == "0%" and rows[-1].split()[-1] == "whole"
