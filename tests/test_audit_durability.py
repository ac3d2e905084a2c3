"""Concurrency, crashes and fail-closed appends, with real processes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from audit_support import KEYS, fields, key_lookup, lines_of, make_log
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault.audit import AuditLog, AuditRecord, verify_tlog_proof
from vault.audit._walk import MAX_FRAGMENTS
from vault.errors import AuditIntegrityError, AuditWriteError

PROCESSES, APPENDS, EVERY = 4, 500, 97

_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from vault.audit import AuditLog, NoteSigner

    log_dir, name, count, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    Path(log_dir, f"{name}.pub").write_bytes(raw)
    signer = NoteSigner.from_private_key(Path(log_dir, "log.key").read_text().strip())
    log = AuditLog(log_dir, checkpoint_signer=signer, checkpoint_every=every)
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()  # start together
    for i in range(count):
        log.append({"actor": {"name": name}, "action": "open", "doc": f"{name}-{i}",
                    "outcome": "allowed", "request": f"{name}-{i}"}, key)
    """
)


def test_concurrent_processes_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log"
    AuditLog.create(path, origin="audit.example.org/mp", checkpoint_every=EVERY)
    names = [f"p{i}" for i in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), name, str(APPENDS), str(EVERY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for name in names
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.flush()
    for p in procs:
        assert p.wait(timeout=120) == 0

    keys = {n: Ed25519PublicKey.from_public_bytes((path / f"{n}.pub").read_bytes()) for n in names}
    log = AuditLog.open(path)
    records = list(log.records())
    assert [r.seq for r in records] == list(range(PROCESSES * APPENDS))
    assert sorted(r.request for r in records) == sorted(
        f"{n}-{i}" for n in names for i in range(APPENDS)
    )
    for name in names:  # each process's records in its own order
        mine = [int(r.request.split("-")[1]) for r in records if r.actor == name]
        assert mine == list(range(APPENDS))
    assert log.paths.checkpoint_sizes() == list(range(EVERY, PROCESSES * APPENDS + 1, EVERY))
    report = log.verify(key_lookup=lambda name, fp, seq: keys.get(name or ""))
    assert report.size == PROCESSES * APPENDS and report.signatures == report.size
    assert report.hashes_ok and report.checkpoints == len(log.paths.checkpoint_sizes())


_BIG_BATCHES = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from vault.audit import AuditLog, NoteSigner

    log_dir = sys.argv[1]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.stdin.readline().strip()))
    log = AuditLog.open(log_dir)
    # Batches of ~40 MB are written in several write(2) calls, so a kill
    # during the write leaves the log ending in the middle of a line.
    batch = [({"actor": {"name": "alice"}, "action": "open", "outcome": "allowed",
               "reason": "x" * 20000}, key)] * 2000
    while True:
        log.append_many(batch)
    """
)


def _raw_private(name: str) -> str:
    return (
        KEYS[name]
        .private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        .hex()
    )


def _kill_mid_write(path: Path) -> bytes:
    """Start a writer and SIGKILL it while the log ends mid-line; return the
    torn tail. Retried a few times in case the kill lands between writes."""
    log_file = path / "log"
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", _BIG_BATCHES, str(path)], stdin=subprocess.PIPE
        )
        assert proc.stdin is not None
        proc.stdin.write(_raw_private("alice").encode() + b"\n")
        proc.stdin.close()
        fd = os.open(log_file, os.O_RDONLY)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    proc.send_signal(signal.SIGKILL)
                    break
        finally:
            os.close(fd)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        data = log_file.read_bytes()
        if not data.endswith(b"\n"):
            return data[data.rindex(b"\n") + 1 :]
    pytest.fail("could not catch the writer in the middle of a write")


def _settled(lines: list[bytes]) -> int:
    """Lines up to the last signed record: what a kill mid-batch leaves settled."""
    for i in range(len(lines) - 1, -1, -1):
        with contextlib.suppress(AuditIntegrityError):
            if AuditRecord.from_line(lines[i]).signed:
                return i + 1
    return 0


def test_sigkill_mid_append_then_recovery(tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path, 3)
    tail = _kill_mid_write(path)
    complete = lines_of_prefix(path)
    settled = _settled(complete)  # a batch's run is signed by its last record (§5)
    # Before recovery: readers skip the uncovered lines and the torn tail;
    # verification reports them.
    assert len(list(AuditLog.open(path).records())) == settled
    report = AuditLog.open(path).verify()
    assert report.size == len(complete) and report.unrecovered_lines == len(complete) - settled
    assert report.unrecovered == len(tail) + sum(len(x) + 1 for x in complete[settled:])

    log = AuditLog.open(path)
    new = log.append(fields("bob", 1), KEYS["bob"])
    lines = lines_of(path)
    fragment_seq = len(complete)
    assert lines[fragment_seq] == tail  # set aside as an inert line of its own
    records = list(log.records())
    torn = records[-2]
    assert torn.action == "torn" and torn.seq == fragment_seq + 1 and torn.actor == "bob"
    assert [f.seq for f in torn.fragments] == list(range(settled, fragment_seq + 1))
    frag = torn.fragments[-1]
    assert (frag.seq, frag.length) == (fragment_seq, len(tail))
    assert frag.sha256 == hashlib.sha256(tail).hexdigest()
    assert new.seq == fragment_seq + 2 and records[-1] == new
    # Never read as records: the torn piece, nor the uncovered lines before it.
    assert not set(range(settled, fragment_seq + 1)) & {r.seq for r in records}
    report = log.verify(key_lookup=key_lookup)
    assert report.unrecovered == 0 and report.size == fragment_seq + 3
    verify_tlog_proof(log.prove(new.seq), [log.verifier()], key_lookup=key_lookup)
    verify_tlog_proof(log.prove(fragment_seq), [log.verifier()], leaf=tail)


def lines_of_prefix(path: Path) -> list[bytes]:
    data = (path / "log").read_bytes()
    return data[: data.rindex(b"\n")].split(b"\n")


def test_crash_during_recovery_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path, 4)
    with open(path / "log", "ab") as f:  # the state after a crash between
        f.write(b'{"action":"op\n')  # terminating a fragment and recording it
    log = AuditLog.open(path)
    log.append(fields(), KEYS["alice"])
    torn = [r for r in log.records() if r.action == "torn"]
    assert [f.seq for f in torn[0].fragments] == [4]
    # A crash while writing the torn record itself: both lines are set aside.
    with open(path / "log", "ab") as f:
        f.write(b"{cut short\n" + torn[0].line[:50])
    log = AuditLog.open(path)
    log.append(fields("carol", 3), KEYS["carol"])
    last_torn = [r for r in log.records() if r.action == "torn"][-1]
    assert [(f.seq, f.length) for f in last_torn.fragments] == [(7, 10), (8, 50)]
    assert log.verify(key_lookup=key_lookup).size == 11


def test_garbage_at_the_end_is_not_set_aside_wholesale(tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path, 3)
    with open(path / "log", "ab") as f:
        f.write(b"junk\n" * 65)  # more than a crash leaves, but a torn record can name them
    AuditLog.open(path).append(fields(), KEYS["alice"])
    (torn,) = [r for r in AuditLog.open(path).records() if r.action == "torn"]
    assert len(torn.fragments) == 65
    with open(path / "log", "ab") as f:
        f.write(b"junk\n" * (MAX_FRAGMENTS + 1))  # more than a torn record names one by one
    AuditLog.open(path).append(fields(), KEYS["alice"])  # set aside all the same (§8)
    torn = [r for r in AuditLog.open(path).records() if r.action == "torn"][-1]
    assert [f.seq for f in torn.fragments] == list(range(71, 71 + MAX_FRAGMENTS))
    assert len(lines_of(path)) == 70 + MAX_FRAGMENTS + 1 + 2


_FSIZE = textwrap.dedent(
    """
    import os, resource, sys
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from vault.audit import AuditLog
    from vault.errors import AuditIntegrityError, AuditWriteError

    log_dir, actor = sys.argv[1], sys.argv[2]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.stdin.readline().strip()))
    log = AuditLog.open(log_dir)
    limit = os.path.getsize(os.path.join(log_dir, "log")) + 100
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # the disk "fills up"
    fields = {"actor": {"name": actor}, "action": "open", "outcome": "allowed",
              "request": "doomed"}
    for attempt in ("first", "second"):
        try:
            log.append(fields, key)
        except AuditWriteError as e:
            print(f"{attempt} refused: {e}")
        else:
            print(f"{attempt} PERFORMED the guarded operation")
    """
)


def test_append_that_cannot_be_made_durable_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path, 6)
    size = (path / "log").stat().st_size
    out = subprocess.run(
        [sys.executable, "-c", _FSIZE, str(path), "alice"],
        input=(_raw_private("alice") + "\n").encode(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    report = out.stdout.decode().splitlines()
    assert report[0].startswith("first refused: audit record not durable")
    assert report[1].startswith("second refused: an earlier write")
    assert "PERFORMED" not in out.stdout.decode() and not out.stderr
    assert (path / "log").stat().st_size == size + 100  # a torn, partial record
    log = AuditLog.open(path)
    assert [r.request for r in log.records()][-1] != "doomed"
    assert log.verify().unrecovered == 100
    log.append(fields("bob"), KEYS["bob"])
    records = list(log.records())
    assert "doomed" not in {r.request for r in records}  # no partial record counts
    assert records[-2].action == "torn" and records[-2].fragments[0].length == 100
    log.verify(key_lookup=key_lookup)


def _race_before_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int,
                       race: Callable[[Path], None], match: str) -> Path:
    """A turn that writes three times -- the newline ending a torn tail,
    the torn record setting it aside, its own record -- with ``race`` run
    on the log's folder right before the ``k``-th write. The append must
    fail there (``match``; the guarded operation is not performed), write
    nothing more, take no tip from it and append no more. Returns the
    log's folder."""
    from vault.audit import _folder

    path = tmp_path / "log"
    make_log(path, 4)
    with open(path / "log", "ab") as f:
        f.write(b'{"action":"op')  # a torn tail
    log = AuditLog.open(path)
    write = _folder.FolderStorage._write
    writes = [0]

    def racing(storage: _folder.FolderStorage, data: bytes, *at: int) -> None:
        writes[0] += 1
        if writes[0] == k:
            race(path)
        write(storage, data, *at)

    with monkeypatch.context() as m:
        m.setattr(_folder.FolderStorage, "_write", racing)
        doomed = fields("alice", request="doomed")
        with pytest.raises(AuditWriteError, match=match) as e:
            log.append(doomed, KEYS["alice"])
        assert e.value.hint and "not performed" in e.value.hint
        assert writes[0] == k and log.last_append is None
        with pytest.raises(AuditWriteError, match="an earlier write"):
            log.append(doomed, KEYS["alice"])
    return path


def _goes_on(path: Path) -> None:
    """The next writer appends, the doomed record counts nowhere, and the
    log verifies."""
    log = AuditLog.open(path)
    log.append(fields("bob"), KEYS["bob"])
    assert "doomed" not in {r.request for r in log.records()}
    report = log.verify(key_lookup=key_lookup)
    assert report.size == len(lines_of(path)) and report.unrecovered == 0


@pytest.mark.parametrize("k", [1, 2, 3], ids=["newline", "torn record", "records"])
def test_a_write_landing_after_lines_slipped_in_under_the_lock_fails_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    # A folder writer appends a line through her own descriptor, ignoring
    # the lock: whatever is written next lands a line late. The next
    # writer sets the lines aside.
    def junk(path: Path) -> None:
        fd = os.open(path / "log", os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"x\n")
        finally:
            os.close(fd)

    _goes_on(_race_before_write(tmp_path, monkeypatch, k, junk,
                                "another writer wrote to the audit log"))


def test_planted_link_and_missing_folder_fail_closed(tmp_path: Path) -> None:
    # A link planted in place of the log is never followed (it could point
    # at any file the writer may change). Full disks: test_hostile_input.py.
    planted = tmp_path / "planted"
    planted.mkdir()
    os.symlink("/dev/full", planted / "log")
    with pytest.raises(AuditWriteError, match="symbolic link"):
        AuditLog(planted).append(fields(), KEYS["alice"])
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(AuditWriteError, match="cannot open"):
        AuditLog(tmp_path / "file" / "log").append(fields(), KEYS["alice"])
    assert not (tmp_path / "file" / "log").exists()


def test_threads_share_one_handle(tmp_path: Path) -> None:
    # Appends from several threads are serialised; a thread reading meanwhile
    # sees whole, settled records and never the writers' lock or files.
    import threading

    log = make_log(tmp_path / "log", 2)
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            for i in range(30):
                log.append_many([(fields(name, i), KEYS[name])] * (1 + i % 3))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def read() -> None:
        try:
            for _ in range(20):
                assert all(r.signed or r.action != "torn" for r in log.records())
                log.verify()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in ("alice", "bob")]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    report = log.verify(key_lookup=key_lookup)
    assert report.size == 2 + 2 * 60 and not report.findings


@pytest.mark.parametrize("k", [1, 2, 3], ids=["newline", "torn record", "records"])
def test_a_write_into_a_log_renamed_over_under_the_lock_fails_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    # A folder writer keeps a second link to the log, copies it and renames
    # the copy over audit/log: the turn's descriptor still names the old
    # file, one link left, where nobody reads -- its records were lost with
    # it, the operation done.
    import shutil

    def swap(path: Path) -> None:
        os.link(path / "log", path / ".hidden")
        shutil.copyfile(path / "log", path / ".copy")
        os.rename(path / ".copy", path / "log")

    path = _race_before_write(tmp_path, monkeypatch, k, swap, "the audit log was replaced")
    os.unlink(path / ".hidden")
    _goes_on(path)


def test_a_log_renamed_over_between_turns_is_reopened(tmp_path: Path) -> None:
    # The same swap between two appends of one long-lived handle: the next
    # turn finds its descriptors no longer the files at their names, opens
    # them again and appends to the log everyone reads.
    import shutil

    path = tmp_path / "log"
    make_log(path, 4)
    log = AuditLog.open(path)
    log.append(fields("alice"), KEYS["alice"])
    os.link(path / "log", path / ".hidden")
    shutil.copyfile(path / "log", path / ".copy")
    os.rename(path / ".copy", path / "log")
    log.append(fields("bob", request="after"), KEYS["bob"])
    assert "after" in {r.request for r in AuditLog.open(path).records()}
    assert (path / ".hidden").stat().st_size < (path / "log").stat().st_size
