"""What junk in the audit log costs readers and writers in memory.

``python -m benchmarks.junk_memory`` builds a folder vault for each case in
the temporary directory, appends to its log what someone who can write it
could, then runs one step on a new machine (a fresh state folder) and prints
the peak of Python's allocations during that step (``tracemalloc``):

* 200 lines of 500 KiB that are no records: the next writer's seal, which
  sets them aside; then a new machine's ``doctor`` over them;
* 120 unsigned records of 500 KiB, signed as one run by a modified client:
  a new machine's listing;
* the same, never signed: the next writer's seal on a new machine.

Run it on two commits to compare them (docs/AUDIT.md §5, §8). A client that
signs any run, however large, is made by raising the writer's limit where
there is one.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._office import Office, make_office

BIG = 500 * 1024


def _peak(step: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _new_machine(root: Path, name: str) -> None:
    os.environ["VAULT_STATE_DIR"] = str(root / f"state-{name}")


def _seal(office: Office, who: str) -> Callable[[], object]:
    def step() -> object:
        with office.as_(who) as v:
            return v.seal(io.BytesIO(b"after"), filename="a.txt", level="INTERNAL",
                          compartments=["STAFF"])
    return step


def _records(office: Office, count: int, *, signed: bool) -> None:
    import vault
    import vault.audit._fields as fields

    me = vault.load_identity(office.keys["clerk"])
    items: list[tuple[dict[str, Any], Any]] = [
        ({"actor": {"name": "clerk", "key": me.fingerprint}, "action": "ls", "doc": None,
          "label": None, "outcome": "allowed", "rules": [], "reason": "", "policy": None,
          "state": {"bulk": "x" * BIG, "n": i}}, me.signing_key) for i in range(count + 1)]
    limit = getattr(fields, "MAX_RUN_BYTES", None)
    fields.MAX_RUN_BYTES = 1 << 40  # type: ignore[attr-defined]
    try:
        with office.as_("officer") as v:
            v.audit.append_many(items)
    finally:
        if limit is not None:
            fields.MAX_RUN_BYTES = limit  # type: ignore[attr-defined]
    if not signed:  # the run's signature never came
        log = office.vault / "audit" / "log"
        lines = log.read_bytes().split(b"\n")[:-1]
        log.write_bytes(b"".join(line + b"\n" for line in lines[:-1]))


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="vault-junk-memory-"))
    try:
        os.environ["VAULT_STATE_DIR"] = str(root / "state-setup")
        office = make_office(root / "junk")
        _seal(office, "clerk")()
        with open(office.vault / "audit" / "log", "ab") as f:
            for i in range(200):
                f.write(b"J" * BIG + str(i).encode() + b"\n")
        _new_machine(root, "writer")
        print(f"200 junk lines of 500 KiB, the next writer's seal: "
              f"{_peak(_seal(office, 'clerk')):.1f} MiB")
        _new_machine(root, "reader")
        print(f"the same, set aside, a new machine's doctor: "
              f"{_peak(lambda: office.as_('officer').doctor()):.1f} MiB")

        os.environ["VAULT_STATE_DIR"] = str(root / "state-setup")
        office = make_office(root / "signed")
        _records(office, 120, signed=True)
        _new_machine(root, "signed")
        print(f"120 unsigned records of 500 KiB, signed as one run, a new machine's ls: "
              f"{_peak(lambda: office.as_('leader').ls()):.1f} MiB")

        os.environ["VAULT_STATE_DIR"] = str(root / "state-setup")
        office = make_office(root / "unsigned")
        _records(office, 120, signed=False)
        _new_machine(root, "unsigned")
        print(f"the same, never signed, the next writer's seal on a new machine: "
              f"{_peak(_seal(office, 'clerk')):.1f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
