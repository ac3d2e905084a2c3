"""One signature covers at most 16 MiB of unsigned records (docs/AUDIT.md
§5, §8): a reader holds a run's records until its signature comes, so a run
without a bound let anyone who can append records make every reader hold
up to 4,096 records of 512 KiB (2 GiB).

An honest writer ends a run before it grows larger; an insider's modified
client that signs a larger one gets damage, named and contained like any
other, and the Go checker agrees.
"""

from __future__ import annotations

import io
import subprocess
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from audit_support import KEYS, fields, make_log
from office import Office, make_office
from test_audit_go import _files, auditcheck  # noqa: F401 - the Go checker, built once

import vault.audit._fields as fields_module
from vault.audit import AuditLog
from vault.audit._walk import MAX_RUN_BYTES
from vault.errors import AuditIntegrityError

BIG = 500 * 1024


def _items(office: Office, count: int) -> list[tuple[dict[str, Any], Any]]:
    me = office.ids["clerk"]
    return [({"actor": {"name": "clerk", "key": me.fingerprint}, "action": "ls", "doc": None,
              "label": None, "outcome": "allowed", "rules": [], "reason": "", "policy": None,
              "state": {"bulk": "x" * BIG, "n": i}}, me.signing_key) for i in range(count)]


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return make_office(tmp_path)


def _runs(office: Office) -> list[int]:
    """Bytes of each run of unsigned records before its signed record."""
    import json

    runs, size = [], 0
    for line in office.raw.audit_lines():
        if "sig" in json.loads(line):
            if size:
                runs.append(size)
            size = 0
        else:
            size += len(line) + 1
    return runs


def test_an_honest_writer_ends_a_run_before_it_is_too_large(office: Office) -> None:
    with office.as_("officer") as v:
        v.audit.append_many(_items(office, 80))  # 40 MB in one call
    runs = _runs(office)
    assert runs and max(runs) <= MAX_RUN_BYTES and sum(runs) > 2 * MAX_RUN_BYTES
    with office.as_("officer") as v:
        v.verify_audit()  # every run covered; the bulky states are the replay's to refuse


def test_a_run_too_large_for_its_signature_is_damage_that_stops_nothing(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:  # the clerk's modified client signs one run of 40 MB
        m.setattr(fields_module, "MAX_RUN_BYTES", 1 << 40, raising=False)
        with office.as_("officer") as v:
            v.audit.append_many(_items(office, 80))
    assert max(_runs(office)) > MAX_RUN_BYTES
    with office.as_("officer") as v, pytest.raises(AuditIntegrityError,
                                                   match="larger than one signature covers"):
        v.audit.verify()
    # The vault goes on; doctor names the damage.
    with office.as_("clerk") as v:
        v.seal(io.BytesIO(b"after"), filename="a.txt", level="INTERNAL", compartments=["STAFF"])
    assert any("larger than one signature covers" in p
               for p in office.as_("officer").doctor().problems)


def test_go_refuses_a_run_too_large_for_its_signature(
        auditcheck: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    path = tmp_path / "log"
    log = make_log(path, 20, every=7, final_checkpoint=False)
    big = [(fields("bob", 20 + i, state={"bulk": "x" * BIG}), KEYS["bob"]) for i in range(60)]
    log.append_many(big[:20])  # an honest writer: runs of at most 16 MiB
    log.checkpoint()
    args = _files(tmp_path, path, 3, newest=14)

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(auditcheck), *args], capture_output=True, text=True,
                              timeout=120, check=False)

    assert check().returncode == 0
    with monkeypatch.context() as m:  # a modified writer: one run of 20 MB (40 records)
        m.setattr(fields_module, "MAX_RUN_BYTES", 1 << 40, raising=False)
        AuditLog.open(path, checkpoint_every=7).append_many(big[20:])
    result = check()
    assert result.returncode == 1 and "larger than one signature covers" in result.stderr, \
        result.stderr


def test_a_reader_holds_no_more_than_one_runs_worth(
        office: Office, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with monkeypatch.context() as m:
        m.setattr(fields_module, "MAX_RUN_BYTES", 1 << 40, raising=False)
        with office.as_("officer") as v:
            v.audit.append_many(_items(office, 120))  # 60 MB, never covered
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path / "a-new-machine"))
    tracemalloc.start()
    try:
        office.as_("leader").ls()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_the_next_writer_sets_large_unsigned_records_aside_in_bounded_memory(
        office: Office, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with monkeypatch.context() as m:
        m.setattr(fields_module, "MAX_RUN_BYTES", 1 << 40, raising=False)
        with office.as_("officer") as v:
            v.audit.append_many(_items(office, 121))
    office.raw.truncate_audit(len(office.raw.audit_lines()) - 1)  # no signature ever came
    monkeypatch.setenv("VAULT_STATE_DIR", str(tmp_path / "a-new-machine"))
    tracemalloc.start()
    try:
        office.as_("clerk").seal(io.BytesIO(b"after"), filename="a.txt", level="INTERNAL",
                                 compartments=["STAFF"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB"
    with office.as_("officer") as v:
        v.verify_audit()  # set aside by one torn record: no damage
