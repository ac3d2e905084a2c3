"""Any modification, deletion, insertion, reordering or truncation of a log
with checkpoints is detected and named (docs/AUDIT.md §10)."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from audit_support import KEYS, fields, lines_of, make_log, write_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.audit import AuditLog, TrustedTip
from vault.errors import AuditIntegrityError

N = 40  # lines; checkpoints at 7, 14, ..., 35 and a final one at 40
_counter = itertools.count()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "log"
    make_log(path, N, every=7)
    return path


def _copy(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("t") / f"log{next(_counter)}"
    shutil.copytree(pristine, dst)
    return dst


def _damage(path: Path, **kw: Any) -> AuditIntegrityError:
    with pytest.raises(AuditIntegrityError) as e:
        AuditLog.open(path).verify(**kw)
    return e.value


# Each mutation returns (new lines, expected kind, expected seq).
Mutation = Callable[[list[bytes], Any], tuple[list[bytes], str, int]]
_no_newline = st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" "))


def modify(lines: list[bytes], draw: Any) -> tuple[list[bytes], str, int]:
    i = draw(st.integers(0, N - 1))
    pos = draw(st.integers(0, len(lines[i]) - 1))
    byte = draw(st.integers(0, 255).filter(lambda b: b not in (10, lines[i][pos])))
    out = list(lines)
    out[i] = lines[i][:pos] + bytes([byte]) + lines[i][pos + 1 :]
    return out, "modified", i


def delete(lines: list[bytes], draw: Any) -> tuple[list[bytes], str, int]:
    i = draw(st.integers(0, N - 1))
    # Removing the last record is the same thing as cutting the log short.
    return lines[:i] + lines[i + 1 :], ("truncated" if i == N - 1 else "deleted"), i


def insert(lines: list[bytes], draw: Any) -> tuple[list[bytes], str, int]:
    k = draw(st.integers(0, N - 1))
    new = draw(_no_newline | st.sampled_from(lines))
    out = [*lines[:k], new, *lines[k:]]
    return out, "inserted", _first_difference(lines, out)


def _first_difference(a: list[bytes], b: list[bytes]) -> int:
    # A copy inserted next to its original shows only from the second one on.
    diffs = (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    return next(diffs, min(len(a), len(b)))


def reorder(lines: list[bytes], draw: Any) -> tuple[list[bytes], str, int]:
    i = draw(st.integers(0, N - 2))
    j = draw(st.integers(i + 1, N - 1))
    out = list(lines)
    if draw(st.booleans()):
        out[i], out[j] = out[j], out[i]
    else:
        out.insert(j, out.pop(i))
    return out, "reordered", i


MUTATIONS: dict[str, Mutation] = {
    "modify": modify,
    "delete": delete,
    "insert": insert,
    "reorder": reorder,
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(MUTATIONS)), data=st.data())
def test_damage_is_detected_and_named(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, name: str, data: Any
) -> None:
    path = _copy(pristine, tmp_path_factory)
    lines, kind, seq = MUTATIONS[name](lines_of(path), data.draw)
    write_lines(path, lines)
    err = _damage(path)
    assert (err.kind, err.seq) == (kind, seq), err.message


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(copies=st.integers(1, 3), data=st.data())
def test_a_copy_appended_at_the_end_is_a_stray_line(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, copies: int, data: Any
) -> None:
    # Copies of earlier records appended after the last: nothing moved, so
    # they wait like any other line (AUDIT.md §8) and the next writer sets
    # them aside; they were damage ("inserted") that no torn record cleared.
    path = _copy(pristine, tmp_path_factory)
    lines = lines_of(path)
    first = data.draw(st.integers(0, N - 1 - copies))
    write_lines(path, [*lines, *lines[first:first + copies]])
    assert AuditLog.open(path).verify().unrecovered_lines == copies
    log = AuditLog.open(path)
    log.append(fields("bob"), KEYS["bob"])
    (torn,) = [r for r in log.records() if r.action == "torn"]
    assert [f.seq for f in torn.fragments] == list(range(N, N + copies))
    assert log.verify().unrecovered_lines == 0


@pytest.mark.parametrize("planted", ["numbered ahead", "a line inserted before"])
def test_nothing_is_appended_or_signed_after_records_out_of_place(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, planted: str
) -> None:
    # Records out of place after the last settle point (§8): the next
    # writer's torn record set them aside -- the records of a revocation
    # they moved with them -- and its own records followed, out of place
    # themselves once the lines were put back as written; a checkpoint was
    # signed over them. Now nothing is written, and the log, put back,
    # takes appends again.
    path = _copy(pristine, tmp_path_factory)
    lines = lines_of(path)
    if planted == "numbered ahead":
        copies = [lines[-1].replace(b'"seq":%d,' % (N - 1), b'"seq":%d,' % (N + k))
                  for k in (1000, 1001)]
        assert all(c != lines[-1] for c in copies)
        write_lines(path, [*lines, *copies])
    else:
        write_lines(path, [*lines[:N - 2], b"junk", *lines[N - 2:]])
    damaged = (path / "log").read_bytes()
    for act in (lambda log: log.append(fields("bob"), KEYS["bob"]),
                lambda log: log.checkpoint()):
        with pytest.raises(AuditIntegrityError, match="records out of place") as e:
            act(AuditLog.open(path))
        assert e.value.kind in ("inserted", "deleted")
        assert (path / "log").read_bytes() == damaged
    write_lines(path, lines)
    log = AuditLog.open(path)
    log.append(fields("bob"), KEYS["bob"])
    assert "torn" not in [r.action for r in log.records()]
    assert log.verify().unrecovered_lines == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 10_000))
def test_truncation_below_the_newest_checkpoint(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, cut: int
) -> None:
    path = _copy(pristine, tmp_path_factory)
    data = (path / "log").read_bytes()
    cut = cut % len(data)  # anywhere, mid-line included
    (path / "log").write_bytes(data[:cut])
    err = _damage(path)
    assert (err.kind, err.seq) == ("truncated", data[:cut].count(b"\n"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["delete", "insert", "reorder", "reason"]), data=st.data())
def test_named_without_the_hash_files(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory, name: str, data: Any
) -> None:
    # An attacker who also removes the derived files: detection is unchanged
    # (checkpoints); the records' own seq numbers still name the damage.
    path = _copy(pristine, tmp_path_factory)
    (path / "hashes").unlink()
    (path / "index").unlink()
    lines = lines_of(path)
    if name == "reason":  # a valid, re-encoded record with another reason
        i = data.draw(st.integers(0, N - 1))
        lines[i] = lines[i].replace(b'"reason":"reason ', b'"reason":"REASON ')
        kind, seq = "modified", i
    else:
        lines, kind, seq = MUTATIONS[name](lines, data.draw)
    write_lines(path, lines)
    err = _damage(path)
    assert err.kind == kind, err.message
    if name == "reason":
        assert err.seq is not None and err.seq <= seq < err.seq + 7  # the checkpoint's range
    else:
        assert err.seq == seq


def test_truncation_above_the_newest_checkpoint(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = _copy(pristine, tmp_path_factory)
    log = AuditLog.open(path, checkpoint_every=0)
    kept = log.checkpoint()  # the auditor keeps this one elsewhere (size 40)
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(5)])
    log.checkpoint()
    extra = log.checkpoint()  # size 45: the newest stored checkpoint
    assert kept != extra
    # Cut the last 3 records, their checkpoint and the hash files together:
    # nothing left on disk shows it ...
    lines = lines_of(path)
    write_lines(path, lines[:42])
    (path / "checkpoints" / "45").unlink()
    (path / "hashes").unlink()
    (path / "index").unlink()
    assert AuditLog.open(path).verify().size == 42
    # ... but a checkpoint kept elsewhere does.
    err = _damage(path, trusted_checkpoint=extra)
    assert (err.kind, err.seq) == ("truncated", 42)
    assert AuditLog.open(path).verify(trusted_checkpoint=kept).trusted_checkpoint == 40


def test_truncation_above_the_newest_checkpoint_and_trusted_tips(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = _copy(pristine, tmp_path_factory)
    log = AuditLog.open(path, checkpoint_every=0)
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(3)])  # no checkpoint
    kept = log.tip().to_json()  # the vault core keeps one per user
    write_lines(path, lines_of(path)[:41])
    with pytest.raises(AuditIntegrityError) as e:  # the writer trusts what it wrote
        log.verify()
    assert (e.value.kind, e.value.seq) == ("truncated", 41)
    with pytest.raises(AuditIntegrityError) as e:  # ... and refuses to go on
        log.append(fields(), KEYS["alice"])
    assert e.value.kind == "truncated"
    fresh = AuditLog.open(path)
    fresh.set_trusted_tip(TrustedTip.from_json(kept))
    with pytest.raises(AuditIntegrityError) as e:
        fresh.append(fields(), KEYS["alice"])
    assert e.value.kind == "truncated"
    # Nothing trusted at hand: the derived files alone never raise an alarm (§6).
    report = AuditLog.open(path).verify()
    assert report.size == 41 and any("rebuilt" in f for f in report.findings)


def test_a_trusted_tip_notices_a_modified_line(
    pristine: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = _copy(pristine, tmp_path_factory)
    log = AuditLog.open(path, checkpoint_every=0)
    log.append(fields("bob", 1), KEYS["bob"])
    lines = lines_of(path)
    lines[-1] = lines[-1].replace(b'"reason":"reason 1"', b'"reason":"REASON 1"')
    write_lines(path, lines)
    with pytest.raises(AuditIntegrityError) as e:
        log.append(fields(), KEYS["alice"])
    assert (e.value.kind, e.value.seq) == ("modified", N)
