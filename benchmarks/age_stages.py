"""What 1 GiB of age payload costs, stage by stage and together.

``python -m benchmarks.age_stages [REPS]`` prints, for 1 GiB on tmpfs, the
wall time (min/median/max of REPS, default 5) and the CPU time (median,
user + system, all threads) of each stage of ``vault.age``'s payload work
alone -- reading the file, ChaCha20-Poly1305, SHA-256, writing a new file
-- and of the engine doing them together, in this process (start-up
excluded), and of the start-up and exit of ``vault age encrypt`` on a
1-byte file. On two cores, a combination cannot take less than the
longest of its single-threaded parts, nor less than half its CPU time:
docs/PERFORMANCE.md §4.1 reads the figures that way.
"""

from __future__ import annotations

import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

import vault.age as age
from benchmarks._tools import GiB, make_file, shm_or_tmp, vault_command

BLOCK = 256 * 1024


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _measure(name: str, work: Callable[[], object], reps: int, cleanup: Callable[[], object]
             ) -> None:
    walls, cpus = [], []
    for _ in range(reps):
        cpu, start = _cpu(), time.perf_counter()
        work()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
        cleanup()
    print(f"{name:58s} {min(walls):5.2f} {statistics.median(walls):5.2f} {max(walls):5.2f}"
          f"   {statistics.median(cpus):5.2f}", flush=True)


def main(reps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="vault-age-stages-", dir=shm_or_tmp()) as work:
        plain, sealed, out = (os.path.join(work, n) for n in ("plain", "sealed", "out"))
        make_file(plain, GiB)
        key = os.urandom(16)
        with open(plain, "rb") as src, open(sealed, "wb") as dst:
            age.encrypt_payload(src, dst, key)
        buf = memoryview(bytearray(BLOCK))

        def clean() -> None:
            if os.path.exists(out):
                os.unlink(out)

        def read() -> None:
            with open(plain, "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass

        def write() -> None:
            with open(out, "wb", buffering=0) as f:
                for _ in range(GiB // BLOCK):
                    f.write(buf)

        aead, iv = ChaCha20Poly1305(os.urandom(32)), bytes(12)
        chunk, sealed_chunk = buf[: 64 * 1024], memoryview(bytearray(64 * 1024 + 16))

        def seal() -> None:
            for _ in range(GiB // len(chunk)):
                aead.encrypt_into(iv, chunk, None, sealed_chunk)

        def sha256() -> None:
            h = hashlib.sha256()
            for _ in range(GiB // BLOCK):
                h.update(buf)

        def engine(op: str, hashing: bool) -> Callable[[], None]:
            def run() -> None:
                sink = age.PayloadDigest() if hashing else None
                with open(sealed if op == "decrypt" else plain, "rb") as src, \
                        open(out, "wb") as dst:
                    fn = age.decrypt_payload if op == "decrypt" else age.encrypt_payload
                    fn(src, dst, key, payload_sink=sink)
            return run

        one = os.path.join(work, "one")
        with open(one, "wb") as f:
            f.write(b"x")
        recipient = str(age.X25519Identity.generate().recipient)
        cli = [*vault_command(), "age", "encrypt", "-r", recipient, "-o", out, one]

        print(f"1 GiB on tmpfs, {reps} runs: wall s min / median / max, CPU s median")
        _measure("read the file (readinto, 256 KiB)", read, reps, clean)
        _measure("write a new file (256 KiB writes)", write, reps, clean)
        _measure("ChaCha20-Poly1305, 64 KiB chunks (encrypt_into)", seal, reps, clean)
        _measure("SHA-256 (hashlib, 256 KiB updates)", sha256, reps, clean)
        for op in ("encrypt", "decrypt"):
            _measure(f"engine: {op}_payload file to file", engine(op, False), reps, clean)
            _measure(f"engine: {op}_payload + payload SHA-256", engine(op, True), reps, clean)
        _measure("`vault age encrypt` of 1 byte (start-up and exit)",
                 lambda: subprocess.run(cli, check=True), reps, clean)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
