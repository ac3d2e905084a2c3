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

import benchmarks
from benchmarks import Row


def _areas() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)]
    return sorted(n.removesuffix("_bench") for n in names if n.endswith("_bench"))


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "missing"
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.stdout or out.stderr else "?"


def machine() -> str:
    from importlib.metadata import version

    return (
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, {_cpu()}; "
        f"Python {platform.python_version()}, cryptography {version('cryptography')}, "
        f"age {_version(['age', '--version'])}"
    )


def _table(rows: list[Row]) -> str:
    header = Row("what", "ours", "peer", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
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
    rows: list[Row] = []
    for area in args.areas or _areas():
        module = importlib.import_module(f"benchmarks.{area}_bench")
        print(f"running {area}{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
        rows += [Row(*r) for r in module.run(quick)]
    print(machine())
    print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
