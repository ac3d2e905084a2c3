"""Sealing many documents and opening one, on disk.

Bulk intake: 10,000 files of 100 KB (random bytes, so the content rules
find nothing and the label is given) sealed into a vault on disk (the
temporary directory, not tmpfs: "durable" must mean something)

* by ``Vault.seal_many`` in calls of 1,000 files: per call one policy
  decision, one batch of decision records made durable before any document
  is written, every document made durable (written, fsynced, linked in
  place; one directory fsync), then one batch of completion records made
  durable before the call returns -- no document is acknowledged before
  both it and its record are on disk;
* by the command line, ``vault seal --level L --compartment C DIR/*``, as a
  whole process;

against what a user would script with the stock ``age`` CLI: one ``age -r``
process per file into a folder, then ``sync`` (the same durability, without
policy, label or audit). Each figure is documents per second over the
whole run, median of the repetitions (ours and the peer's interleaved),
with min and max. The vault is the office vault as shipped (post-quantum
hybrid keys: two ML-KEM-768 + X25519 wraps per document, for the class key
and the recovery recipient); one more row seals the same files in an office
of X25519 keys (``post_quantum: off``), the key type stock age uses.
Target: 2,000 documents/s.

Opening: ``Vault.open`` of one 100 KB document into memory, with an
unlocked identity (the recorded header checked, the label's signature
verified, the policy decision, its audit record fsynced, the file key
unwrapped with the class key, every recipient stanza checked, the payload
checked against the label's content digest), against ``vault.age.decrypt``
of the same document with the recovery identity; median per call with min
and max, the two interleaved call by call; in the office as shipped and in
the office of X25519 keys. Target: 1 ms.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Row, judge, ms
from benchmarks._office import make_office
from benchmarks._tools import compile_bytecode, vault_command
from benchmarks._tools import run as sh

DOC_SIZE = 100_000
CALL = 1000  # files per seal_many call
SEAL_TARGET, OPEN_TARGET = 2000.0, 0.001
LABEL = {"level": "INTERNAL", "compartments": ["STAFF"]}
CLI_LABEL = ("--level", "INTERNAL", "--compartment", "STAFF")
# The peer: the stock age CLI, one process per file, then sync.
PEER = 'for f in "$1"/*; do age -r "$2" -o "$3/${f##*/}.age" "$f" || exit 1; done; sync'


def _files(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    data = bytearray(os.urandom(DOC_SIZE))
    files = []
    for i in range(count):
        data[:8] = i.to_bytes(8, "big")  # every file different
        p = folder / f"memo-{i:05d}.bin"
        p.write_bytes(data)
        files.append(p)
    os.sync()  # the inputs are on disk before anything is timed
    return files


def _docs_per_s(count: int, seconds: list[float]) -> tuple[str, float]:
    rates = sorted(count / s for s in seconds)
    return f"{statistics.median(rates):,.0f} docs/s", statistics.median(rates)


def _spread(count: int, seconds: list[float]) -> str:
    rates = sorted(count / s for s in seconds)
    return f"{rates[0]:,.0f}-{rates[-1]:,.0f}"


def _library(office: Any, files: list[Path]) -> tuple[float, list[str]]:
    clerk = office.as_("clerk")
    ids: list[str] = []
    start = time.perf_counter()
    for i in range(0, len(files), CALL):
        ids += [d.id for d in clerk.seal_many(files[i:i + CALL], **LABEL)]
    seconds = time.perf_counter() - start
    clerk.close()
    return seconds, ids


def _command_line(office: Any, folder: Path) -> float:
    names = sorted(str(p) for p in folder.iterdir())
    seconds, out = sh([*vault_command(), "seal", *CLI_LABEL, *names], env=office.env("clerk"))
    if len(out.split()) != len(names):
        raise RuntimeError("vault seal printed fewer ids than it was given files")
    return seconds


def _peer(root: Path, folder: Path, recipient: str, rep: int) -> float:
    out = root / f"peer-{rep}"
    out.mkdir()
    try:
        return sh(["bash", "-c", PEER, "peer", str(folder), recipient, str(out)])[0]
    finally:
        shutil.rmtree(out)
        os.sync()  # the removal's write-back does not fall on the next case


def _bulk(root: Path, count: int, reps: int,
          quick: bool) -> tuple[list[Row], dict[str, tuple[Any, list[str]]]]:
    from vault.age import X25519Identity

    folder = root / "in"
    files = _files(folder, count)
    recipient = str(X25519Identity.generate().recipient)
    offices = {"pq": make_office(root / "office"),
               "x25519": make_office(root / "office-x25519", post_quantum=False)}
    times: dict[str, list[float]] = {k: [] for k in ("lib", "x25519", "cli", "peer")}
    ids: dict[str, list[str]] = {}
    for rep in range(reps):  # interleaved: drift on the machine hits all alike
        seconds, ids["pq"] = _library(offices["pq"], files)
        times["lib"].append(seconds)
        times["cli"].append(_command_line(offices["pq"], folder))
        seconds, ids["x25519"] = _library(offices["x25519"], files)
        times["x25519"].append(seconds)
        times["peer"].append(_peer(root, folder, recipient, rep))
    peer_text, peer_rate = _docs_per_s(count, times["peer"])
    rows = []
    for case, what in (("lib", "Vault.seal_many"), ("cli", "`vault seal DIR/*`"),
                       ("x25519", "Vault.seal_many, X25519 keys,")):
        text, rate = _docs_per_s(count, times[case])
        rows.append(Row(
            f"seal {count:,} x 100 KB on disk, each durable: {what} vs `age -r` per file + "
            f"`sync` (median of {reps}; ours {_spread(count, times[case])}, "
            f"peer {_spread(count, times['peer'])} docs/s)",
            text, peer_text, f"{rate / peer_rate:.2f}x", f">= {SEAL_TARGET:,.0f} docs/s",
            judge(rate >= SEAL_TARGET, quick)))
    return rows, {k: (offices[k], ids[k]) for k in offices}


def _open(office: Any, ids: list[str], quick: bool) -> Row:
    import vault.age as age

    # Let the disk finish writing back what bulk sealing left in the page
    # cache: the audit record's fdatasync must not queue behind it.
    os.sync()
    time.sleep(1)
    clerk = office.as_("clerk")
    recovery = age.parse_identities(office.recovery_key.read_text(encoding="ascii"))
    docs = office.vault / "docs"
    for doc in ids[:5]:  # warm-up: keyring unlocked, caches filled
        clerk.open(doc, io.BytesIO())
    ours, peer = [], []
    for doc in ids:  # interleaved, one call each
        start = time.perf_counter()
        clerk.open(doc, io.BytesIO())
        ours.append(time.perf_counter() - start)
        (path,) = docs.glob(f"{doc}.*.age")
        start = time.perf_counter()
        with open(path, "rb") as f:
            age.decrypt(f, io.BytesIO(), recovery)
        peer.append(time.perf_counter() - start)
    clerk.close()
    t_ours, t_peer = statistics.median(ours), statistics.median(peer)
    keys = "," if office.post_quantum else ", X25519 keys,"
    return Row(
        f"open one 100 KB document on disk{keys} audit record included: Vault.open vs "
        f"vault.age.decrypt (median of {len(ids)}; ours {min(ours) * 1e3:.2f}-"
        f"{max(ours) * 1e3:.2f} ms, peer {min(peer) * 1e3:.2f}-{max(peer) * 1e3:.2f} ms)",
        ms(t_ours), ms(t_peer), f"{t_peer / t_ours:.2f}x", f"<= {OPEN_TARGET * 1e3:.0f} ms",
        judge(t_ours <= OPEN_TARGET, quick))


def run(quick: bool) -> list[Row]:
    if shutil.which("age") is None:
        raise SystemExit("the bulk benchmark needs the stock age CLI (Debian package 'age')")
    compile_bytecode()
    root = Path(tempfile.mkdtemp(prefix="vault-bulk-bench-"))
    try:
        count, reps = (500, 1) if quick else (10_000, 3)
        rows, sealed = _bulk(root, count, reps, quick)
        return [*rows, *(_open(office, ids[: 50 if quick else 400], quick)
                         for office, ids in sealed.values())]
    finally:
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["sync"], check=False)
