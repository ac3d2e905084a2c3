"""Listing a large vault: ``vault ls --json`` over 100,000 documents.

The vault (on tmpfs) is built once per run of this area, by two processes
sealing small documents with ``Vault.seal_many`` under four labels, and
deleted at the end. ``vault ls --json`` (as a clerk, who may list every
document: a policy decision per distinct label, the audit records of the
attempt, every document's label as JSON) is timed as a whole process,
start-up included, against ``sqlite3 -json`` dumping the same labels from
this machine's trusted state (``$VAULT_STATE_DIR/<vault id>.sqlite``, the
verified replay of the audit log the listing reads: docs/DESIGN.md §8):
the same rows printed as JSON, with no policy and no audit. Both write to
/dev/null; median of several interleaved runs. Target: 1 s.

Two cases: a vault whose log this machine has replayed already, and the
first listing after another process sealed a document (the listing first
catches up with the records appended since); the target is for the first.

Doctor: ``vault doctor`` as the officer over the same vault (every
document's header against the digest the log records, every label's
signature, the officer's own documents unlocked and their recipient
stanzas checked, keyrings and class keys, the audit log verified), a whole
process, against ``sha256sum`` of every stored document file (``find |
xargs``): what a byte-level scan of the store costs. Target: 1 ms per
document, 100 s for 100,000.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import Row, interleaved, judge
from benchmarks._office import make_office
from benchmarks._tools import compile_bytecode, shm_or_tmp, vault_command
from benchmarks._tools import run as sh

TARGET = 1.0
DOCTOR_TARGET = 1e-3  # seconds per document: 100 s for 100,000
LABELS = (  # (sealer, level, compartments), in proportion to how often they occur
    ("clerk", "INTERNAL", ("STAFF",)),
    ("clerk", "INTERNAL", ("STAFF",)),
    ("clerk", "CONFIDENTIAL", ("FINANCE",)),
    ("leader", "SECRET", ("BOARD",)),
)


def _seal_part(args: tuple[str, str, int, int]) -> int:
    """One builder process: ``count`` documents from ``start`` on."""
    import io

    import vault

    vault_dir, keys, start, count = args
    people = {name: vault.Vault(vault_dir, vault.load_identity(f"{keys}/{name}.key"))
              for name in {who for who, _, _ in LABELS}}
    done = 0
    while done < count:
        n = min(500, count - done)
        who, level, comps = LABELS[(start + done) // 500 % len(LABELS)]
        sources = [io.BytesIO(b"memo %d\n" % (start + done + i)) for i in range(n)]
        people[who].seal_many(sources, level=level, compartments=list(comps))
        done += n
    return done


def _build(root: Path, count: int) -> Any:
    office = make_office(root / "office")
    keys = str(office.root / "keys")
    office.as_("clerk").close()  # this machine pins the vault before the builders start
    half = count // 2
    parts = [(str(office.vault), keys, 0, half), (str(office.vault), keys, half, count - half)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        if sum(pool.map(_seal_part, parts)) != count:
            raise RuntimeError("the builders sealed too few documents")
    return office


def _doctor(office: Any, count: int, reps: int, quick: bool) -> Row:
    """``vault doctor`` as the officer against hashing every stored file."""
    doctor = [*vault_command(), "doctor"]
    env = office.env("officer")
    docs = str(office.vault / "docs")
    peer = ["bash", "-c", 'find "$1" -name "*.age" -print0 | xargs -0 sha256sum >/dev/null',
            "peer", docs]

    def ours() -> float:
        seconds, out = sh(doctor, env=env)
        if not out.startswith(b"ok"):
            raise RuntimeError(f"vault doctor found problems: {out[:300]!r}")
        return seconds

    times: dict[str, list[float]] = {"ours": [], "peer": []}
    for _ in range(reps):  # interleaved
        times["ours"].append(ours())
        times["peer"].append(sh(peer)[0])
    o, p = (statistics.median(times[k]) for k in ("ours", "peer"))
    return Row(
        f"`vault doctor` over {count:,} documents (as the officer: every header against the "
        f"log, every label's signature, the officer's documents unlocked, the log verified) vs "
        f"`sha256sum` of every stored file (median of {reps}; ours {min(times['ours']):.1f}-"
        f"{max(times['ours']):.1f} s)",
        f"{o:.2f} s", f"{p:.2f} s", f"{p / o:.2f}x",
        f"<= {DOCTOR_TARGET * count:.0f} s", judge(o <= DOCTOR_TARGET * count, quick))


def run(quick: bool) -> list[Row]:
    if shutil.which("sqlite3") is None:
        raise SystemExit("the listing benchmark needs the sqlite3 CLI (Debian package sqlite3)")
    compile_bytecode()
    count, reps = (5_000, 2) if quick else (100_000, 5)
    root = Path(tempfile.mkdtemp(prefix="vault-listing-bench-", dir=shm_or_tmp()))
    try:
        office = _build(root, count)
        env = office.env("clerk")
        ls = [*vault_command(), "ls", "--json", "--no-titles"]  # labels only
        listed = json.loads(sh(ls, env=env)[1])  # this machine replays the whole log
        if len(listed) != count:
            raise RuntimeError(f"vault ls listed {len(listed)} of {count} documents")
        clerk = office.as_("clerk")
        state = os.path.join(os.environ["VAULT_STATE_DIR"], f"{clerk.id}.sqlite")
        dump = ["sqlite3", "-json", state, "SELECT doc_id, statement FROM docs"
                " WHERE shredded = 0 ORDER BY sealed_at, doc_id"]
        null = subprocess.DEVNULL
        leader = office.as_("leader")  # another person, another process's records

        def after_a_seal() -> float:
            leader.seal(io.BytesIO(b"one more"), level="INTERNAL", compartments=["STAFF"])
            return sh(ls, env=env, stdout=null)[0]

        med = interleaved({"changed": after_a_seal,
                           "ours": lambda: sh(ls, env=env, stdout=null)[0],
                           "peer": lambda: sh(dump, stdout=null)[0]}, reps)
        clerk.close()
        leader.close()
        what = (f"over {count:,} documents vs `sqlite3 -json` of the trusted state "
                f"(median of {reps})")
        return [
            Row(f"`vault ls --json` {what}", f"{med['ours']:.2f} s", f"{med['peer']:.2f} s",
                f"{med['peer'] / med['ours']:.2f}x", f"<= {TARGET:.0f} s",
                judge(med["ours"] <= TARGET, quick)),
            Row(f"`vault ls --json` just after another's seal (catching up first) {what}",
                f"{med['changed']:.2f} s", f"{med['peer']:.2f} s",
                f"{med['peer'] / med['changed']:.2f}x", "", ""),
            _doctor(office, count, 1 if quick else 3, quick),
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
