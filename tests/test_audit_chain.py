"""Signatures that commit to the lines before them, and batches signed once
per run (docs/AUDIT.md §4, §5, §8, §11.3)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from audit_support import KEYS, ORIGIN, fields, key_lookup, lines_of, make_log, write_lines
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.audit import AuditLog, AuditRecord, fingerprint, leaf_hash, verify_record
from vault.audit._fields import RUN_LIMIT
from vault.audit._record import canonical_json
from vault.errors import AuditIntegrityError

N = 30  # lines: a checkpoint at 21, then 9 lines only signatures vouch for


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chain") / "log"
    log = make_log(path, 21, every=21, final_checkpoint=False)
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(4)])  # one run, 21-24
    log.append_many([(fields(a, i), KEYS[a]) for i, a in enumerate(["carol", "alice"] * 2)])
    log.append(fields("carol", 9), KEYS["carol"])
    return path


def _copy(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "log"))


def _renumber(lines: list[bytes], start: int) -> list[bytes]:
    """What a careful forger does: every seq in step again, so only the
    signatures can tell."""
    out = list(lines[:start])
    for i, line in enumerate(lines[start:], start):
        d = json.loads(line)
        d["seq"] = i
        out.append(canonical_json(d))
    return out


def _modify(lines: list[bytes], k: int) -> list[bytes]:
    d = json.loads(lines[k])
    d["reason"] = "nothing to see here"
    return [*lines[:k], canonical_json(d), *lines[k + 1 :]]


MUTATIONS = {
    "modify": _modify,
    "remove": lambda lines, k: _renumber([*lines[:k], *lines[k + 1 :]], k),
    "reorder": lambda lines, k: _renumber([*lines[:k], lines[k + 1], lines[k], *lines[k + 2 :]],
                                          k),
    "insert": lambda lines, k: _renumber([*lines[:k], lines[k - 3], *lines[k:]], k),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(MUTATIONS)), k=st.integers(21, N - 2))
def test_rewrites_above_the_newest_checkpoint_are_caught_by_signatures(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, name: str, k: int
) -> None:
    path = _copy(pristine, tmp_path_factory.mktemp("m"))
    (path / "hashes").unlink()  # the forger removes the derived files too
    (path / "index").unlink()
    write_lines(path, MUTATIONS[name](lines_of(path), k))
    log = AuditLog.open(path)
    try:
        log.verify()  # no checkpoint covers the lines; the structure may look fine ...
        structure_ok = True
    except AuditIntegrityError:
        structure_ok = False  # (a run left without its signed record, say)
    with pytest.raises(AuditIntegrityError) as e:
        log.verify(key_lookup=key_lookup)  # ... but the chained signatures break
    assert e.value.seq is not None and e.value.seq >= k - 3
    if structure_ok:
        assert e.value.kind == "signature"


def test_a_record_signed_by_a_fresh_key_is_refused(pristine: Path, tmp_path: Path) -> None:
    path = _copy(pristine, tmp_path)
    lines = lines_of(path)
    mallory = Ed25519PrivateKey.generate()
    forger = AuditLog.create(tmp_path / "forger", origin=ORIGIN)
    forged = forger.append({**fields("alice", 1), "actor": {"name": "alice"}}, mallory).line
    forged = forged.replace(b'"seq":0', b'"seq":%d' % (N - 1))
    write_lines(path, [*lines[:-1], forged])
    with pytest.raises(AuditIntegrityError) as e:
        AuditLog.open(path).verify(key_lookup=key_lookup)
    assert (e.value.kind, e.value.seq) == ("signature", N - 1)
    assert "unknown key" in e.value.message


def test_damage_is_contained_to_its_run_and_the_next_signature(pristine: Path,
                                                               tmp_path: Path) -> None:
    path = _copy(pristine, tmp_path)
    write_lines(path, _modify(lines_of(path), 26))  # alice's record in a mixed batch
    log = AuditLog.open(path)
    with pytest.raises(AuditIntegrityError) as e:
        log.verify(key_lookup=key_lookup)
    assert (e.value.kind, e.value.seq) == ("signature", 26)
    # An officer's incident seals line 26 off: its own signature and the next
    # record's chain are excused, every other record still verifies.
    report = log.verify(key_lookup=key_lookup, sealed_off={26})
    assert report.signatures == N - 3 - 2 and len(report.incidents) == 2
    assert "record 26" in report.incidents[0] and "record 27" in report.incidents[1]
    with pytest.raises(AuditIntegrityError):  # another line is not excused
        AuditLog.open(path).verify(key_lookup=key_lookup, sealed_off={3})


def test_an_incident_excuses_no_change_to_the_run_after_it(pristine: Path,
                                                          tmp_path: Path) -> None:
    # Line 20 is damaged and sealed off. Bob's run 21-24 follows it: record
    # 24's chain starts with line 20's leaf. Before, the incident excused any
    # failure of record 24's signature, so bob's unsigned records 21-23 (and
    # 24 itself) were anyone's to rewrite. Now 24 must verify with line 20's
    # leaf as it was written (the derived hashes keep it; trusted only as
    # far as the signature then verifies).
    path = _copy(pristine, tmp_path)
    damaged = _modify(lines_of(path), 20)
    write_lines(path, damaged)
    report = AuditLog.open(path).verify(key_lookup=key_lookup, sealed_off={20})
    assert any("record 24" in i for i in report.incidents)  # excused: it verifies as written
    for k in (21, 22, 24):
        write_lines(path, _modify(damaged, k))
        with pytest.raises(AuditIntegrityError) as e:
            AuditLog.open(path).verify(key_lookup=key_lookup, sealed_off={20})
        assert (e.value.kind, e.value.seq) == ("signature", 24), k


def test_a_sealed_off_signature_vouches_for_nothing_below_a_checkpoint(
        pristine: Path, tmp_path: Path) -> None:
    # Bob's signed record 24 is damaged and sealed off: nothing vouches for
    # his unsigned records 21-23 any more but the checkpoint kept outside.
    # Before, a verification that checked signatures took every line it did
    # not excuse as vouched for, so 22 rewritten below the kept checkpoint
    # passed as "differs only at lines an incident sealed off".
    path = _copy(pristine, tmp_path)
    kept = AuditLog.open(path).checkpoint()
    damaged = _modify(lines_of(path), 24)
    write_lines(path, damaged)
    report = AuditLog.open(path).verify(key_lookup=key_lookup, sealed_off={24},
                                        trusted_checkpoint=kept)
    assert any("differs from the log only at lines an incident sealed off" in i
               for i in report.incidents)
    write_lines(path, _modify(damaged, 22))
    with pytest.raises(AuditIntegrityError) as e:
        AuditLog.open(path).verify(key_lookup=key_lookup, sealed_off={24},
                                   trusted_checkpoint=kept)
    assert e.value.kind == "modified"


def test_an_incident_below_a_checkpoint(tmp_path: Path) -> None:
    log = make_log(tmp_path / "log", 10, every=5)
    lines = lines_of(tmp_path / "log")
    write_lines(tmp_path / "log", _modify(lines, 2))
    with pytest.raises(AuditIntegrityError) as e:
        log.verify(key_lookup=key_lookup)
    assert (e.value.kind, e.value.seq) == ("modified", 2)
    report = log.verify(key_lookup=key_lookup, sealed_off=[2])
    assert report.checkpoints == 2 and any("checkpoint 5 differs" in i for i in report.incidents)
    # Structural mode vouches only through the original leaves a signed
    # checkpoint confirms: the derived data keeps them (it is no longer
    # rebuilt over a sealed-off line, §11.3), as before the first verify.
    log.verify(sealed_off=[2], verifier=log.verifier())
    (tmp_path / "log" / "hashes").unlink()  # without them it cannot vouch for the rest
    with pytest.raises(AuditIntegrityError):
        log.verify(sealed_off=[2], verifier=log.verifier())


def test_a_batch_is_signed_once_per_run(tmp_path: Path) -> None:
    log = AuditLog.create(tmp_path / "log", origin=ORIGIN)
    first = log.append(fields("carol", 0), KEYS["carol"])
    items = [(fields("alice", i), KEYS["alice"]) for i in range(3)]
    items += [(fields("bob", i), KEYS["bob"]) for i in range(2)] + items[:1]
    records = log.append_many(items)
    assert [r.signed for r in records] == [False, False, True, False, True, True]
    scanned = list(log.scan())
    assert [s.covers for s in scanned if s.chain] == [range(0, 1), range(1, 4), range(4, 6),
                                                       range(6, 7)]
    leaves = [leaf_hash(x) for x in lines_of(tmp_path / "log")]
    run = scanned[3]
    assert run.chain is not None and run.record is not None
    assert verify_record(run.record, run.chain, KEYS["alice"].public_key())
    assert run.chain == hashlib.sha256(b"".join(leaves[0:3])).digest()  # leaf(0) || leaf(1..2)
    assert scanned[0].chain == hashlib.sha256(bytes(32)).digest()  # the first line
    assert list(log.records()) == [first, *records]
    assert log.verify(key_lookup=key_lookup).unsigned_covered == 3


def test_runs_are_cut_at_the_run_limit(tmp_path: Path) -> None:
    log = AuditLog.create(tmp_path / "log", origin=ORIGIN, checkpoint_every=0)
    records = log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(2 * RUN_LIMIT + 5)])
    assert [r.seq for r in records if r.signed] == [RUN_LIMIT - 1, 2 * RUN_LIMIT - 1,
                                                    2 * RUN_LIMIT + 4]
    assert log.verify(key_lookup=key_lookup).signatures == 3


def _unsigned_lines(count: int, first: int, actor: str = "alice") -> list[bytes]:
    """Complete lines of a batch whose covering record never got written."""
    out = []
    for i in range(count):
        record = AuditRecord.from_dict({**_template(actor), "seq": first + i})
        out.append(canonical_json(record.to_dict()))
    return out


def _template(actor: str) -> dict[str, Any]:
    return {"v": 2, "seq": 0, "time": "2026-01-01T00:00:00.000000Z",
            "actor": {"key": fingerprint(KEYS[actor].public_key()), "name": actor},
            "action": "open", "doc": None, "label": None, "outcome": "allowed", "rules": [],
            "reason": "", "policy": None, "request": "r", "host": "h", "pid": 1, "state": None}


def test_an_uncovered_run_at_the_end_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path, 5)
    with open(path / "log", "ab") as f:  # a batch killed before its signed record
        f.write(b"".join(line + b"\n" for line in _unsigned_lines(3, 5)))
    log = AuditLog.open(path)
    assert len(list(log.records())) == 5  # not yet covered: not read
    report = log.verify()
    assert report.unrecovered_lines == 3 and report.size == 8
    assert any("interrupted write" in f for f in report.findings)
    assert [s.seq for s in log.scan()] == list(range(5))  # nor scanned: they wait
    new = log.append(fields("alice", 7), KEYS["alice"])
    torn = list(log.records())[-2]
    assert torn.action == "torn" and [f.seq for f in torn.fragments] == [5, 6, 7]
    assert new.seq == 9 and log.verify(key_lookup=key_lookup).unrecovered == 0
    # The torn record is alice's: its chain covers her unsigned lines too (§4).
    signed = [s for s in log.scan() if s.chain and s.seq == 8]
    assert signed[0].covers == range(5, 9)


def test_an_uncovered_record_in_the_middle_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = make_log(path, 5, final_checkpoint=False)
    lines = lines_of(path)
    write_lines(path, [*lines, *_unsigned_lines(1, 5)])
    log = AuditLog.open(path)
    log.append(fields("bob", 5), KEYS["bob"])  # sets it aside: bob's record follows a torn one
    lines = lines_of(path)
    # Now the forger drops the torn record: alice's unsigned line is followed by bob's.
    write_lines(path, _renumber([*lines[:6], *lines[7:]], 6))
    (path / "hashes").unlink()  # and what would name the damage more precisely
    with pytest.raises(AuditIntegrityError) as e:
        AuditLog.open(path).verify()
    assert (e.value.kind, e.value.seq) == ("modified", 5)
    assert "no record of its actor covers" in e.value.message
    with pytest.raises(AuditIntegrityError):
        list(AuditLog.open(path).records())
    items = list(AuditLog.open(path).scan())  # a replay sees it, and goes on
    assert items[5].problem is not None and items[6].record is not None


def test_scan_continues_from_its_tip(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = make_log(path, 6, every=4)
    scan = log.scan()
    first = list(scan)
    assert [s.seq for s in first] == list(range(6)) and all(s.record for s in first)
    assert [s.leaf for s in first] == [leaf_hash(x) for x in lines_of(path)]
    tip = scan.tip
    assert tip == log.tip() and tip.root == log.verify().root
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(3)])
    more = list(log.scan(tip))
    assert [s.seq for s in more] == [6, 7, 8] and more[-1].covers == range(6, 9)
    write_lines(path, lines_of(path)[:4])
    with pytest.raises(AuditIntegrityError) as e:
        log.scan(tip)
    assert e.value.kind == "truncated"


def test_expect_signer_findings(tmp_path: Path) -> None:
    log = make_log(tmp_path / "log", 3, every=2)
    (tmp_path / "log" / "log.key").unlink()
    keyless = AuditLog.open(tmp_path / "log", checkpoint_every=2)
    for i in range(4):
        keyless.append(fields("bob", i), KEYS["bob"])  # nobody checkpoints
    report = keyless.verify(verifier=log.verifier(), expect_signer=True)
    assert any("no checkpoint key" in f for f in report.findings)
    assert any("checkpoints are missing" in f for f in report.findings)
    assert not keyless.verify(verifier=log.verifier()).findings
