"""The audit log: appending, reading, checkpoints, proofs, verification."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from audit_support import KEYS, ORIGIN, fields, key_lookup, lines_of, make_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault.audit import AuditLog, NoteSigner, fingerprint, open_checkpoint, verify_tlog_proof
from vault.audit._hashing import leaf_hash
from vault.audit._tlogproof import TlogProof
from vault.audit._tree import stored_order, tree_root
from vault.errors import (
    AuditIntegrityError,
    CheckpointError,
    InsecureFileError,
    MerkleError,
    ProofError,
    UsageError,
)


def test_append_fills_in_and_reads_back(tmp_path: Path) -> None:
    log = AuditLog.create(tmp_path / "a", origin=ORIGIN)
    before = datetime.now(UTC)
    rec = log.append(fields("alice", 1, request="req-1"), KEYS["alice"])
    assert (rec.seq, rec.actor, rec.request, rec.pid) == (0, "alice", "req-1", os.getpid())
    assert before - timedelta(seconds=1) <= rec.datetime <= datetime.now(UTC)
    second = log.append(fields("bob", 2), KEYS["bob"])
    assert second.seq == 1 and len(second.request) == 32
    assert list(log.records()) == [rec, second]
    assert lines_of(tmp_path / "a") == [rec.line, second.line]


def test_filters(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 30)
    every = list(log.records())
    assert len(every) == 30
    assert {r.actor for r in log.records(actor="bob")} == {"bob"}
    assert [r.seq for r in log.records(doc="doc-3")] == [3, 8, 13, 18, 23, 28]
    assert all(r.action == "seal" for r in log.records(action="seal"))
    assert all(r.outcome == "denied" for r in log.records(outcome="denied"))
    mid = every[10].datetime
    assert [r.seq for r in log.records(since=mid)] == [r.seq for r in every if r.datetime >= mid]
    assert [r.seq for r in log.records(until=mid)] == [r.seq for r in every if r.datetime < mid]
    with pytest.raises(ValueError, match="timezone-aware"):
        log.records(since=datetime(2024, 1, 1))
    assert list(log.records(actor="bob", outcome="allowed", action="open")) == [
        r for r in every if (r.actor, r.outcome, r.action) == ("bob", "allowed", "open")
    ]


def test_bad_fields_write_nothing(tmp_path: Path) -> None:
    log = AuditLog.create(tmp_path / "a", origin=ORIGIN)
    log.append(fields(), KEYS["alice"])
    with pytest.raises(ValueError):
        log.append_many([(fields(), KEYS["alice"]), (fields(outcome="?"), KEYS["alice"])])
    assert len(lines_of(tmp_path / "a")) == 1
    log.verify()


def test_checkpoints_every_n_and_on_demand(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 25, every=10, final_checkpoint=False)
    assert log.paths.checkpoint_sizes() == [10, 20]
    for _ in range(7):
        log.append(fields(), KEYS["alice"])  # one at a time crosses 30
    assert log.paths.checkpoint_sizes() == [10, 20, 30]
    note = log.checkpoint()
    cp = open_checkpoint(note, [log.verifier()], origin=ORIGIN)
    assert cp.size == 32 and log.latest_checkpoint() == note
    assert cp.root == tree_root([leaf_hash(line) for line in lines_of(tmp_path / "a")])
    assert log.checkpoint() == note  # nothing new: the same note
    for size in (10, 20, 30):
        body = open_checkpoint(log.paths.checkpoint(size).read_bytes(), [log.verifier()])
        assert body.size == size


def test_open_reads_the_key_file(tmp_path: Path) -> None:
    made = make_log(tmp_path / "a", 3)
    assert (os.stat(tmp_path / "a" / "log.key").st_mode & 0o777) == 0o600
    again = AuditLog.open(tmp_path / "a")
    assert again.verifier().verifier_key() == made.verifier().verifier_key()
    assert again.origin == ORIGIN
    again.append(fields(), KEYS["alice"])
    assert again.verify().size == 4
    os.chmod(tmp_path / "a" / "log.key", 0o644)
    with pytest.raises(InsecureFileError):
        AuditLog.open(tmp_path / "a")
    with pytest.raises(UsageError):
        AuditLog.open(tmp_path / "missing")
    with pytest.raises(UsageError):
        AuditLog.create(tmp_path / "a", origin=ORIGIN)


def test_files_are_private(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "new" / "a", checkpoint_signer=NoteSigner.generate(ORIGIN))
    log.append(fields(), KEYS["alice"])
    log.checkpoint()
    for path in (log.paths.directory, log.paths.checkpoints):
        assert (path.stat().st_mode & 0o777) == 0o700
    for path in (log.paths.log, log.paths.hashes, log.paths.index, log.paths.checkpoint(1)):
        assert (path.stat().st_mode & 0o777) == 0o600


def test_prove_every_record(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 37, every=8)
    lines = lines_of(tmp_path / "a")
    for seq in range(37):
        text = log.prove(seq)
        assert text.startswith("c2sp.org/tlog-proof@v1\nextra ")
        proof = verify_tlog_proof(text, [log.verifier()], origin=ORIGIN, key_lookup=key_lookup)
        assert (proof.index, proof.leaf, proof.checkpoint.size) == (seq, lines[seq], 37)
        assert proof.record is not None and proof.signer == proof.record.actor_key
        verify_tlog_proof(text, [log.verifier()], leaf=lines[seq])
    with pytest.raises(UsageError):
        log.prove(37)  # no such record: checkpoint() adds none


def test_a_proof_carries_what_its_records_signature_covers(tmp_path: Path) -> None:
    # Unsigned records of a batch, the record signing their run, a torn
    # record setting a torn write aside: each proof lets a third party check
    # who wrote the record, with the keys they trust (AUDIT.md §10).
    log = make_log(tmp_path / "a", 3)
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(4)])  # lines 3-6
    with open(tmp_path / "a" / "log", "ab") as f:
        f.write(b'{"action":"op')  # a torn write: line 7
    log = AuditLog.open(tmp_path / "a")
    log.append(fields("carol"), KEYS["carol"])  # a torn record (8), then carol's (9)
    lines = lines_of(tmp_path / "a")
    bob = fingerprint(KEYS["bob"].public_key())
    for seq, signer in ((3, bob), (5, bob), (6, bob), (8, None), (9, None)):
        proof = verify_tlog_proof(log.prove(seq), [log.verifier()], key_lookup=key_lookup)
        assert proof.record is not None and proof.leaf == lines[seq]
        assert proof.signer == (signer or proof.record.actor_key)
    # The line set aside carries nothing to attribute: only its inclusion.
    with pytest.raises(ProofError, match="no audit record"):
        verify_tlog_proof(log.prove(7), [log.verifier()], key_lookup=key_lookup)
    verify_tlog_proof(log.prove(7), [log.verifier()], leaf=lines[7])
    # A run whose name the caller gives no key for (or another key) is refused.
    def lookup(name: str | None, fp: str, seq: int) -> Ed25519PublicKey | None:
        return KEYS["alice"].public_key() if name == "bob" else key_lookup(name, fp, seq)

    with pytest.raises(ProofError, match=r"record 5 \(bob\) is not signed by the key"):
        verify_tlog_proof(log.prove(5), [log.verifier()], key_lookup=lookup)
    verify_tlog_proof(log.prove(5), [log.verifier()], key_lookup=key_lookup)


def test_a_run_longer_than_a_batch_cuts_is_proven(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A writer cuts a run after RUN_LIMIT records, but a reader takes a run
    # of up to MAX_FRAGMENTS records within 16 MiB (AUDIT.md §5): the proof
    # of a record in one carried only RUN_LIMIT of its lines, and a third
    # party refused it.
    import importlib

    from vault.audit import _fields

    importlib.import_module("vault.audit._prover")  # as loaded: only the writer cuts later
    monkeypatch.setattr(_fields, "RUN_LIMIT", 1500)
    log = make_log(tmp_path / "a", 2)
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(1500)])  # lines 2-1501
    log.checkpoint()
    lines = lines_of(tmp_path / "a")
    assert b'"sig"' not in lines[2] and b'"sig"' in lines[1501]
    assert log.verify(key_lookup=key_lookup).signatures == 3
    for seq in (2, 700, 1501):
        proof = verify_tlog_proof(log.prove(seq), [log.verifier()], key_lookup=key_lookup)
        assert proof.signer == fingerprint(KEYS["bob"].public_key())


def test_prove_makes_a_checkpoint_when_needed(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 5)
    log.append(fields(), KEYS["alice"])
    proof = verify_tlog_proof(log.prove(5), [log.verifier()], key_lookup=key_lookup)
    assert proof.checkpoint.size == 6


def test_tampered_proofs_are_refused(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 20)
    text = log.prove(6)
    other = NoteSigner.generate(ORIGIN)
    with pytest.raises(CheckpointError):
        verify_tlog_proof(text, [other.verifier])
    lines = text.split("\n")
    hash_line = lines.index("index 6") + 1
    flipped = lines[hash_line].replace(
        lines[hash_line][0], "A" if lines[hash_line][0] != "A" else "B", 1
    )
    with pytest.raises(MerkleError):
        verify_tlog_proof(
            "\n".join([*lines[:hash_line], flipped, *lines[hash_line + 1 :]]), [log.verifier()]
        )
    with pytest.raises(MerkleError):
        verify_tlog_proof(text, [log.verifier()], leaf=lines_of(tmp_path / "a")[7])
    wrong_index = text.replace("index 6\n", "index 7\n")
    with pytest.raises(MerkleError):
        verify_tlog_proof(wrong_index, [log.verifier()])
    parsed = TlogProof.from_text(text)
    assert TlogProof.from_text(parsed.to_text()) == parsed


def test_verify_reports(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 50, every=20)
    report = log.verify(key_lookup=key_lookup)
    assert (report.size, report.checkpoints, report.newest_checkpoint) == (50, 3, 50)
    assert report.signatures == 50 and report.records_parsed == 50
    assert report.hashes_ok and report.unrecovered == 0
    quick = log.verify()
    assert quick.records_parsed == 0 and quick.root == report.root


def test_planted_checkpoints_cost_a_reader_bounded_memory(tmp_path: Path) -> None:
    # Whoever can store notes can store one at every size of the log, each
    # as large as they like: a reader holds at most 64 KiB of one at a time,
    # names the first hundred bogus ones and counts the rest.
    import tracemalloc

    log = make_log(tmp_path / "a", 300, every=100)
    for size in range(1, 250):
        if size % 100:
            log.paths.checkpoint(size).write_bytes(b"x" * (8 << 20 if size < 4 else 100))
    tracemalloc.start()
    try:
        report = log.verify()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.checkpoints == 3 and report.size == 300
    named = [f for f in report.findings if f.startswith("checkpoint ")]
    assert len(named) == 100, len(named)
    assert "147 more stored checkpoints are bogus, and are ignored" in report.findings
    assert peak < 4 << 20, f"{peak / (1 << 20):.1f} MiB"


def test_a_forged_checkpoint_alone_is_named_as_a_suspect(tmp_path: Path) -> None:
    # Whoever holds the log key (in a folder vault, anyone who can write the
    # folder) can sign a checkpoint with any root. The log then looks
    # modified; the hint says that only stored checkpoints disagree.
    from vault.audit._checkpoint import Checkpoint
    from vault.audit.note import sign_note

    log = make_log(tmp_path / "a", 12, every=1000)
    assert log.checkpoint_signer is not None
    bogus = Checkpoint(ORIGIN, 6, bytes(32)).to_text()
    log.paths.checkpoint(6).write_bytes(sign_note(bogus, [log.checkpoint_signer]))
    with pytest.raises(AuditIntegrityError) as e:
        log.verify()
    assert "only stored checkpoints disagree (6)" in (e.value.hint or "")
    # A checkpoint kept outside that disagrees is not blamed on the folder.
    kept = log.latest_checkpoint()
    log.paths.checkpoint(6).unlink()
    lines = lines_of(tmp_path / "a")
    lines[3] = lines[3].replace(b'"reason":"', b'"reason":"x', 1)
    (tmp_path / "a" / "log").write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(AuditIntegrityError) as e:
        log.verify(trusted_checkpoint=kept)
    assert "only stored checkpoints" not in (e.value.hint or "")


def test_signature_checks(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 10)

    def wrong_key(name: str | None, fp: str, seq: int) -> object:
        return KEYS["bob"].public_key() if name == "alice" else key_lookup(name, fp, seq)

    with pytest.raises(AuditIntegrityError) as e:
        log.verify(key_lookup=wrong_key)  # type: ignore[arg-type]
    assert (e.value.kind, e.value.seq) == ("signature", 0)
    with pytest.raises(AuditIntegrityError) as e:
        log.verify(key_lookup=lambda n, fp, seq: None if n == "bob" else key_lookup(n, fp, seq))
    assert (e.value.kind, e.value.seq) == ("signature", 1)
    seen: list[int] = []
    log.verify(key_lookup=lambda n, fp, seq: seen.append(seq) or key_lookup(n, fp, seq))
    assert seen == list(range(10))  # position-aware: the policy in force at seq


def test_checkpoints_that_do_not_verify_are_findings(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 12, every=5)
    other = NoteSigner.generate(ORIGIN)
    report = log.verify(verifier=other.verifier)  # checkpoints by another key: ignored
    assert report.checkpoints == 0 and report.size == 12
    assert sum("does not verify and is ignored" in f for f in report.findings) == 3
    # A checkpoint file renamed to another size, and a bogus one.
    os.rename(log.paths.checkpoint(5), log.paths.checkpoint(6))
    log.paths.checkpoint(11).write_bytes(b"garbage")
    report = log.verify()
    assert report.checkpoints == 2 and report.newest_checkpoint == 12
    assert any("file 6 holds a checkpoint of size 5" in f for f in report.findings)
    assert any(f.startswith("checkpoint 11 does not verify") for f in report.findings)
    log.paths.checkpoint(99).write_bytes(b"garbage")  # newer than anything: skipped
    assert open_checkpoint(log.latest_checkpoint() or b"", [log.verifier()]).size == 12
    for i in range(3):  # appends go on, and so do proofs
        log.append(fields("bob", i), KEYS["bob"])
    verify_tlog_proof(log.prove(13), [log.verifier()], key_lookup=key_lookup)
    assert log.verify(key_lookup=key_lookup).size == 15


def test_external_checkpoint(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 30, every=10)
    kept = log.checkpoint()  # size 30, kept by the auditor
    for i in range(5):
        log.append(fields("bob", i), KEYS["bob"])
    report = log.verify(trusted_checkpoint=kept)
    assert report.trusted_checkpoint == 30 and report.consistency_proved
    # A checkpoint signed by another key, or for another log, is refused.
    stranger = NoteSigner.generate(ORIGIN)
    forged = stranger.sign(kept.decode().split("\n\n")[0] + "\n")
    with pytest.raises(AuditIntegrityError) as e:
        log.verify(trusted_checkpoint=forged)
    assert e.value.kind == "checkpoint"


def test_reader_without_key(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 9)
    (tmp_path / "a" / "log.key").unlink()
    reader = AuditLog.open(tmp_path / "a")
    assert len(list(reader.records())) == 9
    with pytest.raises(UsageError):
        reader.checkpoint()
    with pytest.raises(UsageError):
        reader.verify()
    assert reader.verify(verifier=log.verifier()).size == 9
    proof = reader.prove(4)
    assert verify_tlog_proof(proof, [log.verifier()], key_lookup=key_lookup).index == 4


def test_hash_files_are_rebuilt_when_lost(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 40, every=16)
    (tmp_path / "a" / "hashes").unlink()
    (tmp_path / "a" / "index").unlink()
    report = log.verify()  # the log itself is fine: a note, and the files come back
    assert not report.hashes_ok and any("rebuilt" in f for f in report.findings)
    assert log.verify().hashes_ok
    (tmp_path / "a" / "hashes").unlink()
    fresh = AuditLog.open(tmp_path / "a")
    fresh.append(fields(), KEYS["alice"])
    assert any("rebuilt" in n for n in fresh.notes)
    report = fresh.verify()
    assert report.hashes_ok and report.size == 41 and not report.findings
    verify_tlog_proof(fresh.prove(3), [fresh.verifier()], key_lookup=key_lookup)


def test_hash_file_damage_never_yields_a_bad_proof(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 16)
    data = bytearray((tmp_path / "a" / "hashes").read_bytes())
    data[2 * 32 + 8] ^= 1  # stored hash 2: the node over leaves 0 and 1
    (tmp_path / "a" / "hashes").write_bytes(bytes(data))
    log.prove(0)  # does not use that node
    assert not log.notes
    verify_tlog_proof(log.prove(2), [log.verifier()], key_lookup=key_lookup)  # rebuilt, then proven
    assert any("rebuilt" in n for n in log.notes)
    rng = [leaf_hash(x) for x in lines_of(tmp_path / "a")]
    assert (tmp_path / "a" / "hashes").read_bytes() == stored_order(rng)


def test_forked_handles_do_not_share_the_lock(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a", 2)
    pid = os.fork()
    if pid == 0:  # child: same object, its own files and lock
        try:
            log.append(fields("bob", 1), KEYS["bob"])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    log.append(fields("carol", 2), KEYS["carol"])
    assert [r.seq for r in log.records()] == [0, 1, 2, 3]
    log.verify(key_lookup=key_lookup)


def _spy_parallel(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Let any log use the helper process, and list what each parallel
    tree pass returned (None: it did not apply, and the log was hashed in
    one process)."""
    from vault.audit import _parallel

    results: list[object] = []
    real = _parallel.parallel_tree

    def spy(*args: object) -> object:
        results.append(real(*args))  # type: ignore[arg-type]
        return results[-1]

    monkeypatch.setattr(_parallel, "MIN_BYTES", 0)
    monkeypatch.setattr(_parallel, "parallel_tree", spy)
    return results


def _forty_thousand(path: Path) -> AuditLog:
    """A log of 40,000 records, large enough to be hashed in two processes
    once ``_parallel.MIN_BYTES`` is lowered."""
    log = AuditLog.create(path, origin=ORIGIN, checkpoint_every=7000)
    for start in range(0, 40_000, 10_000):
        log.append_many([(fields("bob", i, reason=""), KEYS["bob"])
                         for i in range(start, start + 10_000)])
    return log


def test_a_large_log_is_hashed_in_two_processes(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    log = _forty_thousand(tmp_path / "a")
    log.append(fields("carol", 1), KEYS["carol"])
    with open(tmp_path / "a" / "log", "ab") as f:
        f.write(b'{"torn')  # a torn tail for the helper's half to report
    alone = log.verify()
    called = _spy_parallel(monkeypatch)
    both = log.verify()
    assert called and called[0] is not None  # the helper did half of it
    assert both == alone and both.size == 40_001 and both.checkpoints == 5
    assert both.unrecovered == len(b'{"torn') and both.records_parsed == alone.records_parsed
    # Damage in the helper's half is found all the same; a bad hint is no harm.
    data = bytearray((tmp_path / "a" / "log").read_bytes())
    at = data.index(b'"seq":30000,')
    data[at + 8] = ord("1")  # line 30000 now claims seq 10000
    (tmp_path / "a" / "log").write_bytes(bytes(data))
    with pytest.raises(AuditIntegrityError) as e:
        log.verify()
    assert (e.value.kind, e.value.seq) == ("modified", 30_000)
    index = bytearray((tmp_path / "a" / "index").read_bytes())
    index[8 * 16383 + 7] ^= 4  # the split point moves: the helper's result is not used
    (tmp_path / "a" / "index").write_bytes(bytes(index))
    called.clear()
    with pytest.raises(AuditIntegrityError):
        log.verify()
    assert called == [None]


def test_the_helpers_half_is_of_the_file_verified(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The helper opened the log again by its name: a writer renaming
    # another file into place meanwhile could have one file's tree joined
    # to another's. It is given the open file, and a name that leads to
    # another file by the end throws its result away.
    import shutil

    from vault.audit import _parallel

    log = _forty_thousand(tmp_path / "a")
    path = tmp_path / "a" / "log"
    real = _parallel._with_helper

    def swapped(*args: object) -> object:
        out = real(*args)  # type: ignore[arg-type]
        shutil.copyfile(path, tmp_path / "copy")
        os.replace(tmp_path / "copy", path)  # the same bytes, another file
        return out

    results = _spy_parallel(monkeypatch)
    monkeypatch.setattr(_parallel, "_with_helper", swapped)
    assert log.verify().size == 40_000
    assert results == [None]  # hashed again in one process


@pytest.mark.parametrize("rewrite, message", [
    (lambda line, run: line + b"\nrun 3\n" + run.split(b"\n", 1)[1], "bad extra data"),
    (lambda line, run: line + b"\nrun 03 6\n" + run.split(b"\n", 1)[1], "bad extra data"),
    (lambda line, run: line + b"\nrun 0 6\n" + run.split(b"\n", 1)[1], "longer than any"),
    (lambda line, run: line + b"\n" + run.split(b"\n", 1)[1], "does not show"),
], ids=["one-number", "leading-zero", "run-too-long", "no-run"])
def test_a_proof_whose_run_is_not_written_as_the_prover_writes_it_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        rewrite: Callable[[bytes, bytes], bytes], message: str) -> None:
    # The extra data a third party reads: the line, "run s k'", the run's
    # lines and their range proof (AUDIT.md §10). Each way of writing it
    # otherwise is a ProofError naming what is wrong, never a record taken.
    from vault.audit import _tlogproof

    monkeypatch.setattr(_tlogproof, "MAX_FRAGMENTS", 5)  # run 0..6: 6 unsigned records
    log = make_log(tmp_path / "a", 3)
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(4)])  # lines 3-6
    proof = TlogProof.from_text(log.prove(5))
    line, run = (proof.extra or b"").split(b"\n", 1)
    forged = dataclasses.replace(proof, extra=rewrite(line, run)).to_text()
    with pytest.raises(ProofError, match=message):
        verify_tlog_proof(forged, [log.verifier()], key_lookup=key_lookup)
