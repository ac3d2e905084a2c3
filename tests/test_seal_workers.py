"""Sealing many files on every core (vault/_ops/seal_workers.py).

What the workers change must be invisible: the same documents, in the same
order, opened to the same bytes by the vault and by an independent age
implementation, the same records. And what they could add must not
happen: a worker never outlives the batch or its parent, never holds the
vault's lock or any other descriptor but its sources, and an error in one
is the caller's error, with nothing counted.
"""

from __future__ import annotations

import io
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from vault_helpers import descriptors_past_1024

from tests.office import Office, make_office, stock_decrypt
from vault._ops import seal_workers
from vault._ops.seal_workers import Workers
from vault.errors import DeniedError, StorageError, UsageError

C = 64 * 1024
# Around the chunk and the worker limits; the last ones are sealed here.
SIZES = [0, 1, 17, C - 1, C, C + 1, 100_000, 4 * C, seal_workers.MAX_SIZE + 1, 3 << 20]
LABEL = {"level": "INTERNAL", "compartments": ["STAFF"]}


def _children_of_this_process() -> bool:
    try:
        return os.waitpid(-1, os.WNOHANG) != (0, 0)
    except ChildProcessError:
        return False


def test_many_files_are_sealed_by_workers_as_by_one(office: Office) -> None:
    rnd = random.Random(5)
    data = [rnd.randbytes(SIZES[i % len(SIZES)]) for i in range(3 * len(SIZES))]
    files: list[Path | io.BytesIO] = [office.file(f"memo-{i}.bin", d)
                                      for i, d in enumerate(data)]
    files.insert(7, io.BytesIO(b"from memory"))  # no descriptor: sealed here
    data.insert(7, b"from memory")
    clerk = office.as_("clerk")
    docs = clerk.seal_many(files, **LABEL)
    assert not _children_of_this_process()  # every worker reaped
    assert [d.filename for d in docs] == [
        None if isinstance(f, io.BytesIO) else f.name for f in files]
    for doc, expected in zip(docs, data, strict=True):
        out = io.BytesIO()
        info = clerk.open(doc.id, out)
        assert out.getvalue() == expected
        assert info.plaintext_size == doc.plaintext_size == len(expected)
        assert info.label.level == "INTERNAL"
    assert {d.id for d in clerk.ls()} == {d.id for d in docs}
    recovery = office.root / "keys" / "recovery.key"
    for doc, expected in [(docs[2], data[2]), (docs[9], data[9])]:
        r = stock_decrypt(recovery, office.doc_file(doc.id))
        assert r.returncode == 0 and r.stdout == expected, r.stderr
    report = clerk.verify_audit()  # raises on any damage
    assert report.hashes_ok and not report.findings
    clerk.close()


def test_a_denied_batch_forks_nothing_and_writes_nothing(office: Office) -> None:
    files = [office.file(f"memo-{i}.bin", b"x" * 100) for i in range(40)]
    with pytest.raises(DeniedError):
        office.as_("outsider").seal_many(files, level="SECRET")
    assert not _children_of_this_process()
    assert office.as_("leader").ls() == []


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_a_worker_holds_only_its_sources(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"abc")
    other = tmp_path / "lock"
    with open(source, "rb") as src, open(other, "wb") as lock:
        def probe(k: int) -> tuple[bool, bool, bytes]:
            return _fd_open(src.fileno()), _fd_open(lock.fileno()), os.pread(src.fileno(), 3, 0)

        with Workers(2, probe, [src.fileno()]) as workers:
            answers = list(workers.run(5))
    assert answers == [(True, False, b"abc")] * 5
    assert not _children_of_this_process()


def test_answers_come_back_in_order_and_an_error_is_the_callers(tmp_path: Path) -> None:
    def seal(k: int) -> int:
        if k == 37:
            raise UsageError(f"task {k} cannot be sealed", hint="a hint travels too")
        return k * k

    with Workers(3, seal, []) as workers:
        got = []
        with pytest.raises(UsageError, match="task 37 cannot be sealed") as e:
            for answer in workers.run(100):
                got.append(answer)
    assert e.value.hint == "a hint travels too"
    assert got == [k * k for k in range(37)]
    assert not _children_of_this_process()


class _Unrebuildable(Exception):
    def __init__(self, message: str, *, code: int) -> None:  # pickling loses ``code``
        super().__init__(message)
        self.code = code


def test_an_error_that_cannot_cross_the_pipe_is_still_an_error() -> None:
    def seal(k: int) -> int:
        raise _Unrebuildable("no way back", code=k)

    with Workers(2, seal, []) as workers, \
            pytest.raises(StorageError, match="failed in a way it could not report"):
        list(workers.run(4))
    assert not _children_of_this_process()


def test_a_commit_stage_answers_in_order(tmp_path: Path) -> None:
    def seal(k: int) -> int:
        return k

    def commit(k: int) -> int:
        time.sleep(random.random() / 500)  # commits finish out of order
        (tmp_path / f"{k}").write_text("done")
        return -k

    with Workers(2, seal, [], commit) as workers:
        assert list(workers.run(60)) == [-k for k in range(60)]
    assert len(list(tmp_path.iterdir())) == 60


def test_a_worker_that_dies_is_an_error_not_a_hang() -> None:
    def seal(k: int) -> int:
        if k == 5:
            os._exit(3)
        return k

    with Workers(2, seal, []) as workers, \
            pytest.raises(StorageError, match="stopped before it answered"):
        list(workers.run(20))
    assert not _children_of_this_process()


_ORPHAN = """
import os, sys, time
from vault._ops.seal_workers import Workers
def seal(k):
    time.sleep(0.01)
    return k
w = Workers(2, seal, [])
print(" ".join(str(p) for p, _, _ in w._pipes), flush=True)
for answer in w.run(10 ** 6):
    pass
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(_alive(p) for p in pids), "a worker outlived its parent"


def _vault_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes() and _alive(
                        int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_killed_or_interrupted_seal_leaves_no_worker_and_no_lock(tmp_path: Path) -> None:
    office = make_office(tmp_path / "office")
    rnd = random.Random(11)
    folder = tmp_path / "memos"
    folder.mkdir()
    data = {}
    for i in range(1200):
        data[f"memo-{i:04d}.bin"] = rnd.randbytes(rnd.choice([10, 30_000, 100_000]))
        (folder / f"memo-{i:04d}.bin").write_bytes(data[f"memo-{i:04d}.bin"])
    env = {**os.environ, "VAULT_DIR": str(office.path),
           "VAULT_IDENTITY": str(office.files["clerk"])}
    argv = ["vault", "seal", "--level", "INTERNAL", "--compartment", "STAFF",
            *sorted(str(p) for p in folder.iterdir())]
    for trial, how in enumerate([signal.SIGKILL, signal.SIGINT, signal.SIGKILL, signal.SIGINT]):
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5 + 0.4 * trial)  # in the middle of one batch or another
        p.send_signal(how)
        out, err = p.communicate(timeout=60)
        if how == signal.SIGINT and p.returncode != 0:
            assert p.returncode == 130, err
            assert b"Traceback" not in err
        deadline = time.monotonic() + 10
        while _vault_processes(str(folder)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _vault_processes(str(folder)), "a worker outlived the command"
    # Nothing holds the vault: the next command runs, repairs what the
    # killed ones left uncounted, and every document listed is whole.
    env["VAULT_IDENTITY"] = str(office.files["officer"])
    r = subprocess.run(["vault", "doctor", "--repair"], env=env, capture_output=True,
                       timeout=120, check=False)
    assert r.returncode == 0, [ln for ln in r.stdout.splitlines() if b"problem" in ln]
    clerk = office.as_("clerk")
    for doc in clerk.ls():
        out = io.BytesIO()
        info = clerk.open(doc.id, out)
        assert info.filename is not None and out.getvalue() == data[info.filename]
    r = subprocess.run(["vault", "doctor"], env=env, capture_output=True, timeout=120,
                       check=False)
    assert r.returncode == 0 and r.stdout.startswith(b"ok"), (r.stdout, r.stderr)
    assert not [n for n in os.listdir(office.path / "docs") if n.startswith(".")]


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _many(office: Office) -> list[Path]:
    data = bytearray(random.Random(3).randbytes(100_000))
    files = []
    for i in range(200):  # enough work to show in the children's CPU time
        data[:4] = i.to_bytes(4, "big")
        files.append(office.file(f"memo-{i}.bin", bytes(data)))
    return files


def test_the_workers_do_the_sealing(office: Office) -> None:
    files = _many(office)
    before = _children_cpu()
    docs = office.as_("clerk").seal_many(files, **LABEL)
    assert _children_cpu() > before  # reaped children did the work
    assert len(docs) == 200 and not _children_of_this_process()


def test_with_another_thread_running_nothing_is_forked(office: Office) -> None:
    # A lock another thread holds at a fork stays held in the child forever.
    files = _many(office)
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)
    busy.start()
    try:
        before = _children_cpu()
        docs = office.as_("clerk").seal_many(files, **LABEL)
        assert _children_cpu() == before
    finally:
        stop.set()
        busy.join()
    assert len(docs) == 200


def test_when_no_process_can_be_forked_the_batch_is_sealed_here(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # Injected: as root here, RLIMIT_NPROC never makes a real fork fail.
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    files = _many(office)
    monkeypatch.setattr(os, "fork", no_fork)
    before = _children_cpu()
    docs = office.as_("clerk").seal_many(files, **LABEL)
    monkeypatch.undo()
    assert _children_cpu() == before
    clerk = office.as_("clerk")
    for doc, f in zip(docs, files, strict=True):
        out = io.BytesIO()
        clerk.open(doc.id, out)
        assert out.getvalue() == f.read_bytes()



def test_workers_seal_when_the_process_holds_over_a_thousand_descriptors(
        office: Office) -> None:
    # select() refuses a descriptor past 1,024: a worker waiting on its task
    # pipe with it died, and the batch failed with "stopped before it answered".
    files = [office.file(f"memo-{i}.bin", os.urandom(1000 + i)) for i in range(40)]
    clerk = office.as_("clerk")
    with descriptors_past_1024():
        before = _children_cpu()
        docs = clerk.seal_many(files, **LABEL)
        assert _children_cpu() > before  # the workers did it, with high descriptors
    for doc, f in zip(docs, files, strict=True):
        out = io.BytesIO()
        clerk.open(doc.id, out)
        assert out.getvalue() == f.read_bytes()
    assert not _children_of_this_process()


def test_more_files_than_may_be_open_is_a_usage_error_with_a_hint(office: Office) -> None:
    files = [office.file(f"memo-{i}.bin", b"x" * 100) for i in range(80)]
    clerk = office.as_("clerk")
    clerk.ls()  # the vault's own files are open before the limit drops
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else 64
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 40, hard))
    try:
        with pytest.raises(UsageError) as caught:
            clerk.seal_many(files, **LABEL)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "open-file limit" in (caught.value.hint or "")
    assert clerk.ls() == []
    assert len(clerk.seal_many(files[:20], **LABEL)) == 20  # nothing left behind in the way
