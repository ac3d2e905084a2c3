"""age v1 speed and memory: ``vault.age`` against the stock ``age`` CLI.

Throughput: a 1 GiB file on tmpfs (/dev/shm, so the disk is not what is
measured) is encrypted and decrypted by ``age``, by ``vault age`` (the CLI,
start-up included, like age's) and by the library (``vault.age.encrypt_file``
/ ``decrypt_file`` timed inside a fresh interpreter, start-up excluded), in
the same run and interleaved, each figure the median of several runs. Both
sides decrypt the same file (written by age) and write to a new output file.

Memory: peak RSS of each command for 1 MiB, 1 GiB and 4 GiB inputs,
streaming to /dev/null; it should stay flat. Peak RSS is read with GNU
``/usr/bin/time -f %M`` (Debian package ``time``), not with ``wait4`` from
here: Linux carries a process's RSS high-water mark across ``exec``, so a
child started directly from this (large) Python process would report at
least this process's RSS, while ``time`` is a small C program.
"""

from __future__ import annotations

import compileall
import filecmp
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO

from benchmarks import Row, gbps, megabytes

MiB = 1 << 20
GiB = 1 << 30
SHM = "/dev/shm"

_LIB = """
import sys, time
import vault.age as age
op, src, dst, key = sys.argv[1:5]
start = time.perf_counter()
if op == "encrypt":
    age.encrypt_file(src, dst, [age.parse_recipient(key)])
else:
    age.decrypt_file(src, dst, age.load_identities(key))
print(time.perf_counter() - start)
"""


_TIME = "/usr/bin/time"


def _vault() -> list[str]:
    # The console script installed next to this interpreter, not a shell
    # shim in front of it (pyenv's would add its own start-up to ours).
    exe = os.path.join(os.path.dirname(sys.executable), "vault")
    if not os.access(exe, os.X_OK):
        exe = shutil.which("vault") or ""
    return [exe] if exe else [sys.executable, "-m", "vault_cli.main"]


def _run(cmd: Sequence[str], stdout: IO[bytes] | None = None) -> tuple[float, bytes]:
    """Run ``cmd``; return (wall seconds, captured stdout unless ``stdout`` is given)."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE if stdout is None else stdout, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - start
    if proc.returncode:
        err = proc.stderr.decode(errors="replace")
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err}")
    return elapsed, proc.stdout or b""


def _peak_kib(cmd: Sequence[str], work: str) -> int | None:
    """Peak RSS of ``cmd`` in KiB (stdout to /dev/null), or None without GNU time."""
    if not os.access(_TIME, os.X_OK):
        return None
    report = os.path.join(work, "rss")
    with open(os.devnull, "wb") as null:
        _run([_TIME, "-o", report, "-f", "%M", *cmd], null)
    with open(report, encoding="ascii") as f:
        return int(f.read().split()[-1])


def _make_file(path: str, size: int) -> None:
    pattern = os.urandom(16 * MiB)  # content does not change ChaCha20's speed
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(pattern))
            f.write(pattern[:n])
            left -= n


def _fresh(path: str) -> str:
    if os.path.exists(path):
        os.unlink(path)
    return path


class _Setup:
    def __init__(self, work: str) -> None:
        self.work = work
        self.key = os.path.join(work, "key.txt")
        subprocess.run(["age-keygen", "-o", self.key], check=True, capture_output=True)
        with open(self.key, encoding="ascii") as f:
            self.recipient = next(
                line.split(": ")[1].strip() for line in f if line.startswith("# public key:")
            )

    def path(self, name: str) -> str:
        return os.path.join(self.work, name)


def _throughput(s: _Setup, size: int, reps: int) -> list[Row]:
    plain, sealed = s.path("plain"), s.path("sealed.age")
    _make_file(plain, size)
    _run(["age", "-r", s.recipient, "-o", sealed, plain])
    out = s.path("out")
    vault = _vault()
    lib = [sys.executable, "-c", _LIB]
    cases: dict[str, Callable[[], float]] = {
        "enc age": lambda: _run(["age", "-r", s.recipient, "-o", _fresh(out), plain])[0],
        "enc cli": lambda: _run(
            [*vault, "age", "encrypt", "-r", s.recipient, "-o", _fresh(out), plain]
        )[0],
        "enc lib": lambda: float(_run([*lib, "encrypt", plain, _fresh(out), s.recipient])[1]),
        "dec age": lambda: _run(["age", "-d", "-i", s.key, "-o", _fresh(out), sealed])[0],
        "dec cli": lambda: _run(
            [*vault, "age", "decrypt", "-i", s.key, "-o", _fresh(out), sealed]
        )[0],
        "dec lib": lambda: float(_run([*lib, "decrypt", sealed, _fresh(out), s.key])[1]),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(reps):
        for name, case in cases.items():  # interleaved, so drift hits every case alike
            times[name].append(case())
    if not filecmp.cmp(plain, out, shallow=False):  # the last case decrypted with vault.age
        raise RuntimeError("vault.age decrypted something else than the plaintext")
    _fresh(out)
    os.unlink(plain)
    os.unlink(sealed)
    med = {name: statistics.median(t) for name, t in times.items()}
    label = _size(size)
    rows = []
    for op, verb, flag in (("enc", "encrypt", "-r"), ("dec", "decrypt", "-d")):
        peer = med[f"{op} age"]
        for how, text in (("cli", f"`vault age {verb}`"), ("lib", f"vault.age.{verb}_file")):
            ours = med[f"{op} {how}"]
            rows.append(
                Row(
                    f"{verb} {label} on tmpfs: {text} vs `age {flag}` (median of {reps})",
                    gbps(size, ours),
                    gbps(size, peer),
                    f"{peer / ours:.2f}x",
                )
            )
    return rows


def _peak_rss(s: _Setup, sizes: Sequence[int]) -> list[Row]:
    vault = _vault()
    keys = ("enc ours", "enc age", "dec ours", "dec age")
    rss: dict[str, list[int | None]] = {k: [] for k in keys}
    plain, sealed = s.path("plain"), s.path("sealed.age")
    for size in sizes:
        _make_file(plain, size)
        _run(["age", "-r", s.recipient, "-o", sealed, plain])
        encrypt = [*vault, "age", "encrypt", "-r", s.recipient, plain]
        rss["enc ours"].append(_peak_kib(encrypt, s.work))
        rss["enc age"].append(_peak_kib(["age", "-r", s.recipient, plain], s.work))
        os.unlink(plain)
        rss["dec ours"].append(_peak_kib([*vault, "age", "decrypt", "-i", s.key, sealed], s.work))
        rss["dec age"].append(_peak_kib(["age", "-d", "-i", s.key, sealed], s.work))
        os.unlink(sealed)
    labels = " / ".join(_size(n) for n in sizes)
    rows = []
    for op, verb in (("enc", "encrypt"), ("dec", "decrypt")):
        ours, peer = rss[f"{op} ours"], rss[f"{op} age"]
        rows.append(
            Row(
                f"peak RSS, CLI {verb} of {labels} (target <= 40 MB, flat)",
                " / ".join(megabytes(k) if k else "n/a" for k in ours),
                " / ".join(megabytes(k) if k else "n/a" for k in peer),
                "",
            )
        )
    return rows


def _size(n: int) -> str:
    return f"{n // GiB} GiB" if n >= GiB else f"{n // MiB} MiB"


def _compile_bytecode() -> None:
    # An installed package has its bytecode compiled; an environment with
    # PYTHONDONTWRITEBYTECODE would otherwise recompile vault on every start.
    for name in ("vault", "vault_cli"):
        spec = importlib.util.find_spec(name)
        for directory in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(directory, quiet=2)


def run(quick: bool) -> list[Row]:
    if shutil.which("age") is None:
        raise SystemExit("the age benchmark needs the stock age CLI (Debian package 'age')")
    _compile_bytecode()
    base = SHM if os.path.isdir(SHM) else None
    with tempfile.TemporaryDirectory(prefix="vault-age-bench-", dir=base) as work:
        s = _Setup(work)
        if quick:
            rows = _throughput(s, 64 * MiB, 3)
            return rows + _peak_rss(s, (MiB, 16 * MiB, 64 * MiB))
        rows = _throughput(s, GiB, 5)
        return rows + _peak_rss(s, (MiB, GiB, 4 * GiB))
