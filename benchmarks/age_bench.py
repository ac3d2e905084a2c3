"""age v1 speed and memory: ``vault.age`` against the stock ``age`` CLI.

Throughput: a 1 GiB file on tmpfs (/dev/shm, so the disk is not what is
measured) is encrypted and decrypted by ``age``, by ``vault age`` (the CLI,
start-up included, like age's) and by the library (``vault.age.encrypt_file``
/ ``decrypt_file`` timed inside a fresh interpreter, start-up excluded), in
the same run and interleaved, each figure the median of several runs. Both
sides decrypt the same file (written by age) and write to a new output file.

Key wrapping: wrapping and unwrapping one file key for the post-quantum
hybrid recipient (mlkem768x25519, docs/FORMAT.md §5.3) beside the X25519
recipient, in process, per operation: batches of each interleaved, min /
median / max over the batches.

Memory: peak RSS of each command for 1 MiB, 1 GiB and 4 GiB inputs,
streaming to /dev/null; it should stay flat. Peak RSS is read with GNU
``/usr/bin/time -f %M`` (Debian package ``time``), not with ``wait4`` from
here: Linux carries a process's RSS high-water mark across ``exec``, so a
child started directly from this (large) Python process would report at
least this process's RSS, while ``time`` is a small C program.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import vault.age as age
from benchmarks import Row, gbps, gbps_range, interleaved_times, judge, megabytes, speedup
from benchmarks._tools import (
    GiB,
    MiB,
    compile_bytecode,
    fresh,
    make_file,
    peak_kib,
    shm_or_tmp,
    size_label,
    vault_command,
)
from benchmarks._tools import run as sh

# `vault age encrypt` at twice age's speed, the rest at 1.5 times (docs/PERFORMANCE.md §4.9)
TARGETS = {("enc", "cli"): 2.0, ("enc", "lib"): 1.5, ("dec", "cli"): 1.5, ("dec", "lib"): 1.5}
RSS_TARGET_MB = 40.0
# A hybrid wrap or unwrap is one ML-KEM-768 operation and one X25519 exchange
# more than X25519's: well under a millisecond, negligible beside any file.
KEY_TARGET_S = 1e-3

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


def _throughput(s: _Setup, size: int, reps: int, quick: bool) -> list[Row]:
    plain, sealed = s.path("plain"), s.path("sealed.age")
    make_file(plain, size)
    sh(["age", "-r", s.recipient, "-o", sealed, plain])
    out = s.path("out")
    vault = vault_command()
    lib = [sys.executable, "-c", _LIB]
    cases: dict[str, Callable[[], float]] = {
        "enc age": lambda: sh(["age", "-r", s.recipient, "-o", fresh(out), plain])[0],
        "enc cli": lambda: sh(
            [*vault, "age", "encrypt", "-r", s.recipient, "-o", fresh(out), plain]
        )[0],
        "enc lib": lambda: float(sh([*lib, "encrypt", plain, fresh(out), s.recipient])[1]),
        "dec age": lambda: sh(["age", "-d", "-i", s.key, "-o", fresh(out), sealed])[0],
        "dec cli": lambda: sh(
            [*vault, "age", "decrypt", "-i", s.key, "-o", fresh(out), sealed]
        )[0],
        "dec lib": lambda: float(sh([*lib, "decrypt", sealed, fresh(out), s.key])[1]),
    }
    times = interleaved_times(cases, reps)
    med = {name: statistics.median(t) for name, t in times.items()}
    if not filecmp.cmp(plain, out, shallow=False):  # the last case decrypted with vault.age
        raise RuntimeError("vault.age decrypted something else than the plaintext")
    fresh(out)
    os.unlink(plain)
    os.unlink(sealed)
    label = size_label(size)
    rows = []
    for op, verb, flag in (("enc", "encrypt", "-r"), ("dec", "decrypt", "-d")):
        peer = med[f"{op} age"]
        for how, text in (("cli", f"`vault age {verb}`"), ("lib", f"vault.age.{verb}_file")):
            ours = med[f"{op} {how}"]
            target = TARGETS[op, how]
            rows.append(
                Row(
                    f"{verb} {label} on tmpfs: {text} vs `age {flag}` (median of {reps}; ours "
                    f"{gbps_range(size, times[f'{op} {how}'])}, peer "
                    f"{gbps_range(size, times[f'{op} age'])} GB/s)",
                    gbps(size, ours),
                    gbps(size, peer),
                    f"{peer / ours:.2f}x",
                    f">= {target:.1f}x",
                    judge(peer / ours >= target, quick),
                )
            )
    return rows


def _peak_rss(s: _Setup, sizes: Sequence[int], quick: bool) -> list[Row]:
    vault = vault_command()
    keys = ("enc ours", "enc age", "dec ours", "dec age")
    rss: dict[str, list[int | None]] = {k: [] for k in keys}
    plain, sealed = s.path("plain"), s.path("sealed.age")
    for size in sizes:
        make_file(plain, size)
        sh(["age", "-r", s.recipient, "-o", sealed, plain])
        encrypt = [*vault, "age", "encrypt", "-r", s.recipient, plain]
        rss["enc ours"].append(peak_kib(encrypt, s.work))
        rss["enc age"].append(peak_kib(["age", "-r", s.recipient, plain], s.work))
        os.unlink(plain)
        rss["dec ours"].append(peak_kib([*vault, "age", "decrypt", "-i", s.key, sealed], s.work))
        rss["dec age"].append(peak_kib(["age", "-d", "-i", s.key, sealed], s.work))
        os.unlink(sealed)
    labels = " / ".join(size_label(n) for n in sizes)
    rows = []
    for op, verb in (("enc", "encrypt"), ("dec", "decrypt")):
        ours, peer = rss[f"{op} ours"], rss[f"{op} age"]
        known = [k for k in ours if k]
        ratio = (f"{max(p for p in peer if p) / max(known):.2f}x"
                 if known and all(peer) else "")
        rows.append(
            Row(
                f"peak RSS, `vault age {verb}` of {labels} vs `age`",
                " / ".join(megabytes(k) if k else "n/a" for k in ours),
                " / ".join(megabytes(k) if k else "n/a" for k in peer),
                ratio,
                f"<= {RSS_TARGET_MB:.0f} MB, flat",
                judge(bool(known) and max(known) * 1024 / 1e6 <= RSS_TARGET_MB, quick),
            )
        )
    return rows


def _per_op(batches: list[float], ops: int) -> str:
    each = sorted(b / ops * 1e6 for b in batches)
    return f"{each[0]:.0f}-{each[-1]:.0f}"


def _key_wrapping(quick: bool) -> list[Row]:
    ops, batches = (20, 5) if quick else (200, 15)
    file_key = os.urandom(16)
    identities: dict[str, age.X25519Identity | age.MLKEM768X25519Identity] = {
                  "X25519": age.X25519Identity.generate(),
                  "hybrid": age.MLKEM768X25519Identity.generate()}
    stanzas = {k: i.recipient.wrap(file_key) for k, i in identities.items()}
    times: dict[str, list[float]] = {}
    for _ in range(batches):  # interleaved, so that drift hits both alike
        for kind, identity in identities.items():
            recipient = identity.recipient
            start = time.perf_counter()
            for _ in range(ops):
                recipient.wrap(file_key)
            times.setdefault(f"wrap {kind}", []).append(time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(ops):
                if identity.unwrap(stanzas[kind]) != file_key:
                    raise RuntimeError(f"{kind} unwrap returned another file key")
            times.setdefault(f"unwrap {kind}", []).append(time.perf_counter() - start)
    rows = []
    for op in ("wrap", "unwrap"):
        ours, peer = times[f"{op} hybrid"], times[f"{op} X25519"]
        median = statistics.median(ours) / ops
        rows.append(
            Row(
                f"{op} a file key, per operation: mlkem768x25519 vs X25519 "
                f"(median of {batches} batches of {ops}; ours {_per_op(ours, ops)}, "
                f"peer {_per_op(peer, ops)} µs)",
                f"{median * 1e6:.0f} µs",
                f"{statistics.median(peer) / ops * 1e6:.0f} µs",
                speedup(median, statistics.median(peer) / ops),
                f"<= {KEY_TARGET_S * 1e6:.0f} µs",
                judge(median <= KEY_TARGET_S, quick),
            )
        )
    return rows


def run(quick: bool) -> list[Row]:
    if shutil.which("age") is None:
        raise SystemExit("the age benchmark needs the stock age CLI (Debian package 'age')")
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="vault-age-bench-", dir=shm_or_tmp()) as work:
        s = _Setup(work)
        if quick:
            rows = _throughput(s, 64 * MiB, 3, quick)
            rows += _peak_rss(s, (MiB, 16 * MiB, 64 * MiB), quick)
        else:
            rows = _throughput(s, GiB, 5, quick)
            rows += _peak_rss(s, (MiB, GiB, 4 * GiB), quick)
        return rows + _key_wrapping(quick)
