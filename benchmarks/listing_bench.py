"""Listing a large vault: ``vault ls --json`` over 100,000 documents.

The vault (on tmpfs) is built once per run of this area, by two processes
sealing small documents with ``Vault.seal_many`` under four labels, and
deleted at the end. ``vault ls --json`` (as a clerk, who may list every
document: a policy decision per document, one audit record, every
document's label as JSON) is timed as a whole process, start-up included,
against ``sqlite3 -json`` dumping the same index table: the same rows
printed as JSON, with no policy and no audit. Both write to /dev/null;
median of several interleaved runs. Target: 1 s.

Two cases: a vault unchanged since the last listing (the index notes the
documents version and skips comparing every document's stamp:
docs/DESIGN.md §8), and the first listing after a document was sealed
(every stamp compared); the target is for the first.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Row, interleaved, judge
from benchmarks._office import make_office
from benchmarks._tools import compile_bytecode, shm_or_tmp, vault_command
from benchmarks._tools import run as sh

TARGET = 1.0
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


def _build(root: Path, count: int) -> Path:
    office = make_office(root / "office")
    keys = str(office.root / "keys")
    half = count // 2
    parts = [(str(office.vault), keys, 0, half), (str(office.vault), keys, half, count - half)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        if sum(pool.map(_seal_part, parts)) != count:
            raise RuntimeError("the builders sealed too few documents")
    return office.vault


def _clerk(root: Path) -> Any:
    import vault

    office = root / "office"
    return vault.Vault(office / "vault", vault.load_identity(office / "keys" / "clerk.key"))


def run(quick: bool) -> list[Row]:
    if shutil.which("sqlite3") is None:
        raise SystemExit("the listing benchmark needs the sqlite3 CLI (Debian package sqlite3)")
    compile_bytecode()
    count, reps = (5_000, 2) if quick else (100_000, 5)
    root = Path(tempfile.mkdtemp(prefix="vault-listing-bench-", dir=shm_or_tmp()))
    try:
        vault_dir = _build(root, count)
        env = {**os.environ, "VAULT_DIR": str(vault_dir),
               "VAULT_IDENTITY": str(root / "office" / "keys" / "clerk.key")}
        ls = [*vault_command(), "ls", "--json", "--no-titles"]  # labels only, as before
        time.sleep(2.5)  # the folder's change time must be settled to be noted
        listed = json.loads(sh(ls, env=env)[1])  # brings the index up to date
        if len(listed) != count:
            raise RuntimeError(f"vault ls listed {len(listed)} of {count} documents")
        dump = ["sqlite3", "-json", str(vault_dir / "index.sqlite"),
                "SELECT * FROM documents ORDER BY sealed_at, id"]
        null = subprocess.DEVNULL
        clerk = _clerk(root)

        def after_a_seal() -> float:
            clerk.seal(io.BytesIO(b"one more"), level="INTERNAL", compartments=["STAFF"])
            seconds = sh(ls, env=env, stdout=null)[0]
            time.sleep(2.5)  # then let the change settle, and list once to note it
            sh(ls, env=env, stdout=null)
            return seconds

        med = interleaved({"changed": after_a_seal,
                           "ours": lambda: sh(ls, env=env, stdout=null)[0],
                           "peer": lambda: sh(dump, stdout=null)[0]}, reps)
        clerk.close()
        what = f"over {count:,} documents vs `sqlite3 -json` of the index (median of {reps})"
        return [
            Row(f"`vault ls --json` {what}", f"{med['ours']:.2f} s", f"{med['peer']:.2f} s",
                f"{med['peer'] / med['ours']:.2f}x", f"<= {TARGET:.0f} s",
                judge(med["ours"] <= TARGET, quick)),
            Row(f"`vault ls --json` just after a seal (every stamp compared) {what}",
                f"{med['changed']:.2f} s", f"{med['peer']:.2f} s",
                f"{med['peer'] / med['changed']:.2f}x", "", ""),
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
