"""Sealing and opening a large document through the CLI, against the tools
people would use instead in a shell script.

Throughput: a 1 GiB file on tmpfs (/dev/shm: the disk is not what is
measured) is sealed with ``vault seal FILE`` into a vault on tmpfs and
opened with ``vault open ID -o OUT`` (plain ``--no-passphrase`` identity,
policy check, signed label, decision and completion records fsynced,
payload checked against the label's content digest), against
``age -r R -o OUT FILE`` / ``age -d -i KEY -o OUT``
and ``gpg --symmetric --cipher-algo AES256 --compress-algo none`` /
``gpg --decrypt`` (batch mode, ``--pinentry-mode loopback
--passphrase-file``) on the same file: whole processes, start-up included,
interleaved, median of several runs. Each tool decrypts what it encrypted.
Targets: at least 1.5 times age's throughput and 5 times gpg's.

Memory: peak RSS of ``vault seal`` and ``vault open -o -`` (to /dev/null)
for 1 MiB, 1 GiB and 4 GiB documents, beside ``age``'s on the same files
(it decrypts the vault's own document with the recovery identity: a sealed
document is a standard age file). Target: at most 40 MB, flat.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks import Row, gbps, gbps_range, interleaved_times, judge, megabytes
from benchmarks._office import Office, make_office
from benchmarks._tools import (
    GPG,
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

AGE_TARGET, GPG_TARGET, RSS_TARGET_MB = 1.5, 5.0, 40.0
# Random bytes are no format the intake can inspect: the label is given.
LABEL = ("--level", "INTERNAL", "--compartment", "STAFF")


class _Tools:
    """Commands of the three tools, with their keys, in one scratch folder."""

    def __init__(self, work: Path, office: Office) -> None:
        self.work = work
        self.office = office
        self.vault = vault_command()
        self.env = office.env("clerk")
        self.age_key = work / "age.key"
        sh(["age-keygen", "-o", str(self.age_key)])
        text = self.age_key.read_text(encoding="ascii")
        self.age_recipient = next(line.split(": ")[1].strip() for line in text.splitlines()
                                  if line.startswith("# public key:"))
        self.gnupg = work / "gnupg"
        self.gnupg.mkdir(mode=0o700)
        self.passphrase = work / "passphrase"
        self.passphrase.write_text("correct horse battery staple\n", encoding="ascii")

    def gpg(self, *args: str) -> list[str]:
        return [GPG, "--homedir", str(self.gnupg), "--batch", "--yes", "--quiet",
                "--pinentry-mode", "loopback", "--passphrase-file", str(self.passphrase), *args]

    def seal(self, plain: Path) -> tuple[float, str]:
        seconds, out = sh([*self.vault, "seal", *LABEL, str(plain)], env=self.env)
        return seconds, out.decode().strip()

    def stored(self, doc_id: str) -> Path:
        """The stored file of the document (its only version)."""
        (path,) = (self.office.vault / "docs").glob(f"{doc_id}.*.age")
        return path

    def unseal(self, doc_id: str) -> None:
        # Between repetitions only: keep tmpfs from filling up.
        os.unlink(self.stored(doc_id))

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.gnupg), "--kill", "gpg-agent"],
                       capture_output=True, check=False)


def _throughput(t: _Tools, size: int, reps: int, quick: bool) -> list[Row]:
    plain, out = t.work / "plain", t.work / "out"
    make_file(str(plain), size)
    age_file, gpg_file = t.work / "plain.age", t.work / "plain.gpg"
    sh(["age", "-r", t.age_recipient, "-o", str(age_file), str(plain)])
    sh(t.gpg("--symmetric", "--cipher-algo", "AES256", "--compress-algo", "none",
             "-o", str(gpg_file), str(plain)))
    _, doc = t.seal(plain)

    def vault_seal() -> float:
        seconds, new = t.seal(plain)
        t.unseal(new)
        return seconds

    cases: dict[str, Callable[[], float]] = {
        "seal vault": vault_seal,
        "seal age": lambda: sh(["age", "-r", t.age_recipient, "-o", fresh(str(out)),
                                str(plain)])[0],
        "seal gpg": lambda: sh(t.gpg("--symmetric", "--cipher-algo", "AES256",
                                     "--compress-algo", "none", "-o", fresh(str(out)),
                                     str(plain)))[0],
        "open vault": lambda: sh([*t.vault, "open", doc, "-o", fresh(str(out))],
                                 env=t.env)[0],
        "open age": lambda: sh(["age", "-d", "-i", str(t.age_key), "-o", fresh(str(out)),
                                str(age_file)])[0],
        "open gpg": lambda: sh(t.gpg("--decrypt", "-o", fresh(str(out)), str(gpg_file)))[0],
    }
    times = interleaved_times(cases, reps)
    med = {name: statistics.median(t) for name, t in times.items()}
    sh(["cmp", str(plain), str(out)])  # the last case opened the document with gpg
    sh([*t.vault, "open", doc, "-o", fresh(str(out))], env=t.env)
    sh(["cmp", str(plain), str(out)])
    for p in (plain, out, age_file, gpg_file):
        p.unlink()
    t.unseal(doc)
    rows = []
    for op, verb in (("seal", "seal"), ("open", "open")):
        ours = med[f"{op} vault"]
        for peer_name, target in (("age", AGE_TARGET), ("gpg", GPG_TARGET)):
            peer = med[f"{op} {peer_name}"]
            flag = {("seal", "age"): "-r", ("open", "age"): "-d",
                    ("seal", "gpg"): "--symmetric", ("open", "gpg"): "--decrypt"}[op, peer_name]
            rows.append(Row(
                f"{verb} {size_label(size)} on tmpfs: `vault {verb}` vs `{peer_name} {flag}` "
                f"(median of {reps}; ours {gbps_range(size, times[f'{op} vault'])}, peer "
                f"{gbps_range(size, times[f'{op} {peer_name}'])} GB/s)",
                gbps(size, ours), gbps(size, peer), f"{peer / ours:.2f}x", f">= {target:.1f}x",
                judge(peer / ours >= target, quick)))
    return rows


def _peak_rss(t: _Tools, sizes: tuple[int, ...], quick: bool) -> list[Row]:
    rss: dict[str, list[int | None]] = {k: [] for k in ("seal", "seal age", "open", "open age")}
    plain = t.work / "plain"
    recovery = str(t.office.recovery_key)
    for size in sizes:
        make_file(str(plain), size)
        rss["seal"].append(peak_kib([*t.vault, "seal", *LABEL, str(plain)], str(t.work),
                                         env=t.env))
        _, doc = t.seal(plain)
        rss["seal age"].append(peak_kib(["age", "-r", t.age_recipient, str(plain)],
                                        str(t.work)))
        plain.unlink()
        sealed = str(t.stored(doc))
        rss["open"].append(peak_kib([*t.vault, "open", doc, "-o", "-"], str(t.work), env=t.env))
        rss["open age"].append(peak_kib(["age", "-d", "-i", recovery, sealed], str(t.work)))
        for name in os.listdir(t.office.vault / "docs"):
            os.unlink(t.office.vault / "docs" / name)
    labels = " / ".join(size_label(n) for n in sizes)
    rows = []
    for op, peer_cmd in (("seal", "age -r"), ("open", "age -d")):
        ours, peer = rss[op], rss[f"{op} age"]
        known = [k for k in ours if k]
        worst = max(known) * 1024 / 1e6 if known else 0.0
        ratio = (f"{max(p for p in peer if p) / max(known):.2f}x"
                 if known and all(peer) else "")
        rows.append(Row(
            f"peak RSS, `vault {op}` of {labels} vs `{peer_cmd}`",
            " / ".join(megabytes(k) if k else "n/a" for k in ours),
            " / ".join(megabytes(k) if k else "n/a" for k in peer),
            ratio, f"<= {RSS_TARGET_MB:.0f} MB, flat",
            judge(bool(known) and worst <= RSS_TARGET_MB, quick)))
    return rows


def run(quick: bool) -> list[Row]:
    for tool in ("age", "age-keygen", GPG, "gpgconf", "cmp"):
        if shutil.which(tool) is None:
            raise SystemExit(f"the documents benchmark needs {tool} (Debian packages age, gnupg)")
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="vault-documents-bench-", dir=shm_or_tmp()) as tmp:
        work = Path(tmp)
        # X25519 keys (post_quantum: off), so that stock age 1.1 decrypts the
        # vault's own document in the memory row; for a large file the key
        # type costs well under a millisecond either way.
        tools = _Tools(work, make_office(work / "office", post_quantum=False))
        try:
            if quick:
                return (_throughput(tools, 64 * MiB, 3, quick)
                        + _peak_rss(tools, (MiB, 16 * MiB, 64 * MiB), quick))
            return (_throughput(tools, GiB, 5, quick)
                    + _peak_rss(tools, (MiB, GiB, 4 * GiB), quick))
        finally:
            tools.close()
