"""Helpers shared by the benchmark areas: running commands, peak RSS,
scratch space, test files."""

from __future__ import annotations

import compileall
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO

MiB = 1 << 20
GiB = 1 << 30
SHM = "/dev/shm"
GNU_TIME = "/usr/bin/time"
GPG = "/usr/bin/gpg"


def vault_command() -> list[str]:
    """The ``vault`` console script installed next to this interpreter, as
    a user runs it (not a shell shim in front of it: pyenv's would add its
    own start-up to ours)."""
    exe = os.path.join(os.path.dirname(sys.executable), "vault")
    if not os.access(exe, os.X_OK):
        exe = shutil.which("vault") or ""
    return [exe] if exe else [sys.executable, "-m", "vault_cli.main"]


def run(
    cmd: Sequence[str],
    *,
    stdout: IO[bytes] | int | None = None,
    stdin: IO[bytes] | int | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[float, bytes]:
    """Run ``cmd``; (wall seconds, its stdout unless ``stdout`` is given).
    A failure raises RuntimeError with the command's stderr."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        stdin=stdin,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        env=None if env is None else dict(env),
    )
    elapsed = time.perf_counter() - start
    if proc.returncode:
        err = proc.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}): {err}")
    return elapsed, proc.stdout or b""


def peak_kib(cmd: Sequence[str], work: str, env: Mapping[str, str] | None = None) -> int | None:
    """Peak RSS of ``cmd`` in KiB (stdout to /dev/null), or None without GNU time.

    Read with GNU ``/usr/bin/time -f %M`` (Debian package ``time``), not
    with ``wait4`` from here: Linux carries a process's RSS high-water mark
    across ``exec``, so a child started directly from this (large) Python
    process would report at least this process's RSS, while ``time`` is a
    small C program."""
    if not os.access(GNU_TIME, os.X_OK):
        return None
    report = os.path.join(work, "rss")
    with open(os.devnull, "wb") as null:
        run([GNU_TIME, "-o", report, "-f", "%M", *cmd], stdout=null, env=env)
    with open(report, encoding="ascii") as f:
        return int(f.read().split()[-1])


def make_file(path: str, size: int) -> None:
    """``size`` bytes of random-looking data (a 16 MiB random pattern
    repeated: content does not change the speed of ChaCha20 or SHA-256)."""
    pattern = os.urandom(min(size, 16 * MiB))
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(pattern))
            f.write(pattern[:n])
            left -= n


def fresh(path: str) -> str:
    """``path``, after removing what a previous repetition left there."""
    if os.path.lexists(path):
        os.unlink(path)
    return path


def size_label(n: int) -> str:
    return f"{n // GiB} GiB" if n >= GiB else f"{n // MiB} MiB" if n >= MiB else f"{n} B"


def shm_or_tmp() -> str | None:
    """tmpfs when there is one (the disk is then not what is measured)."""
    return SHM if os.path.isdir(SHM) else None


def compile_bytecode() -> None:
    """An installed package has its bytecode compiled; an environment with
    PYTHONDONTWRITEBYTECODE would otherwise recompile vault on every start."""
    for name in ("vault", "vault_cli"):
        spec = importlib.util.find_spec(name)
        for directory in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(directory, quiet=2)
