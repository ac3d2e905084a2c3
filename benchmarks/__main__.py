"""Run benchmark areas and print one table (see benchmarks/__init__.py)."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import benchmarks
from benchmarks import Row

# The order of the table: what a user meets first, then the layers.
ORDER = ("startup", "documents", "bulk", "listing", "policy", "intake", "audit", "age", "vault",
         "pg")


def _areas() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)]
    found = {n.removesuffix("_bench") for n in names if n.endswith("_bench")}
    return [a for a in ORDER if a in found] + sorted(found - set(ORDER))


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            kib = int(f.readline().split()[1])
        return f"{kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        return "RAM unknown"


def _version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "missing"
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _fsync_latency(directory: str) -> str:
    """Median time of a 500-byte append + fdatasync where the disk rows run:
    back to back, and after half a millisecond of other work (as an
    operation's own record is: some virtual disks answer a flush much later
    once the machine went idle or busy elsewhere in between)."""
    path = os.path.join(directory, f".vault-bench-fsync-{os.getpid()}")
    medians = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for gap in (0.0, 0.0005):
            samples = []
            for _ in range(200):
                start = time.perf_counter()
                while time.perf_counter() - start < gap:
                    pass
                start = time.perf_counter()
                os.write(fd, b"x" * 499 + b"\n")
                os.fdatasync(fd)
                samples.append(time.perf_counter() - start)
            medians.append(sorted(samples)[len(samples) // 2])
    finally:
        os.close(fd)
        os.unlink(path)
    return (f"{medians[0] * 1e3:.2f} ms back to back, {medians[1] * 1e3:.2f} ms after 0.5 ms "
            "of other work")


def _interpreter_rss() -> str:
    """The peak RSS of this interpreter doing nothing, with and without its
    site start-up: every vault process starts from it, and the ``.pth``
    files of an installation may import much that a fresh virtual
    environment does not (the peak RSS rows compare only within one)."""
    from benchmarks._tools import peak_kib

    with tempfile.TemporaryDirectory() as work:
        plain, bare = (peak_kib([sys.executable, *flag, "-c", "pass"], work)
                       for flag in ([], ["-S"]))
    if plain is None or bare is None:
        return ""
    return f" (`python -c pass` {plain / 1024:.1f} MB, {bare / 1024:.1f} MB with -S)"


def machine() -> list[str]:
    from importlib.metadata import version

    disk = tempfile.gettempdir()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    sqlite = _version(["sqlite3", "--version"]).split()[0]
    return [
        f"machine: {platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} cores, {_cpu()}, {_memory()}",
        f"software: Python {platform.python_version()}{_interpreter_rss()}, "
        f"cryptography {version('cryptography')}, "
        f"click {version('click')}, age {_version(['age', '--version'])}, "
        f"{_version(['gpg', '--version'])}, sqlite3 {sqlite}",
        f"storage: tmpfs rows in /dev/shm; disk rows in {disk} "
        f"(append + fdatasync median {_fsync_latency(disk)}); load average {load} at start",
    ]


def _table(rows: list[Row]) -> str:
    header = Row("what", "ours", "peer", "ratio", "target", "met")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for n, r in enumerate([header, *rows]):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("areas", nargs="*", help=f"areas to run (default: all of {_areas()})")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    args = parser.parse_args(argv)
    quick = args.quick or os.environ.get("VAULT_BENCH_QUICK") == "1"
    unknown = sorted(set(args.areas) - set(_areas()))
    if unknown:
        parser.error(f"unknown area(s): {', '.join(unknown)}; known: {', '.join(_areas())}")
    from benchmarks._office import state_dir

    state_dir()  # every vault's trusted state in a scratch folder, children included
    described = machine()  # before the areas load the machine
    rows: list[Row] = []
    started = time.perf_counter()
    for area in [a for a in _areas() if a in args.areas] if args.areas else _areas():
        module = importlib.import_module(f"benchmarks.{area}_bench")
        print(f"running {area}{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
        area_start = time.perf_counter()
        try:
            rows += [Row(*r) for r in module.run(quick)]
        except SystemExit as e:  # a tool the area needs is missing: say so, run the rest
            rows.append(Row(f"{area}: not run: {e.code}", "", "", ""))
        print(f"  {area}: {time.perf_counter() - area_start:.0f} s", file=sys.stderr, flush=True)
    print("\n".join(described))
    print(f"mode: {'quick (small sizes: figures are not the reference ones)' if quick else 'full'}"
          f"; {time.perf_counter() - started:.0f} s")
    print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
