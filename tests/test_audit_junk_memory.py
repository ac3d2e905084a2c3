"""Large junk lines cost readers and writers no more memory than small ones
(docs/AUDIT.md §8): of a line that is not a record only what a torn record
names of it is kept -- its position, length and SHA-256.

Someone who can write the folder appends 200 lines of 500 KiB (100 MB) to
the log. Before, the next reader held every one of them (about 190 MB of
resident memory for 300 such lines) and so did the next writer, which sets
them aside. Measured with tracemalloc: what Python allocates at its peak.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from office import Office, make_office

LINES, SIZE = 200, 500 * 1024
BOUND = 40 * 1024 * 1024  # a fifth of the junk; the lines themselves would be 100 MB


@pytest.fixture
def junked(tmp_path: Path) -> Office:
    office = make_office(tmp_path)
    office.as_("clerk").seal(io.BytesIO(b"x"), filename="a.txt", level="INTERNAL",
                             compartments=["STAFF"])
    with open(Path(office.location) / "audit" / "log", "ab") as f:
        for i in range(LINES):
            f.write(b"J" * SIZE + str(i).encode() + b"\n")
    return office


def _peak(step: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_next_writer_sets_large_junk_aside_without_holding_it(junked: Office) -> None:
    peak = _peak(lambda: junked.as_("clerk").seal(
        io.BytesIO(b"y"), filename="b.txt", level="INTERNAL", compartments=["STAFF"]))
    assert peak < BOUND, f"{peak / 2**20:.0f} MiB"


def test_a_reader_replays_large_junk_without_holding_it(junked: Office,
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    junked.as_("clerk").seal(io.BytesIO(b"y"), filename="b.txt", level="INTERNAL",
                             compartments=["STAFF"])  # sets the junk aside
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path / "a-new-machine"))
    peak = _peak(lambda: junked.as_("officer").doctor())
    assert peak < BOUND, f"{peak / 2**20:.0f} MiB"
