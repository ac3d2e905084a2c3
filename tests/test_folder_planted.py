"""Files and folders planted in a vault folder by someone who can write it
(docs/THREAT-MODEL.md §5.4): a hard link named like a shred's tombstone, a
named pipe where a file belongs, a link in place of a keyring or
checkpoint folder, a derived audit file replaced by a folder or a pipe.

Each is refused or set aside, named precisely, and never destroys, hangs
or redirects anything. Commands that could hang run as real ``vault``
processes with a timeout: a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import VAULT
from office import Office, make_office

import vault
from vault.errors import IntegrityError
from vault.store.base import owner_key

INTEGRITY = 4


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return make_office(tmp_path / "office", post_quantum=False)


def _seal(office: Office, who: str, data: bytes, level: str, compartment: str) -> str:
    return office.as_(who).seal(io.BytesIO(data), filename="x.txt", level=level,
                                compartments=[compartment]).id


def _stored(office: Office, doc: str) -> Path:
    (path,) = (office.path / "docs").glob(f"{doc}.*.age")
    return path


def _vault(office: Office, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command as ``who``; a hang is a failure, never a stall."""
    assert VAULT is not None
    cmd = [VAULT, "--vault", str(office.path), "--identity", str(office.files[who]), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"vault {' '.join(args)} hung (a planted named pipe?)")


# -- 1. a planted shred tombstone ---------------------------------------------------------


def test_a_planted_shred_tombstone_destroys_nothing(office: Office) -> None:
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    staff = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    gone = _seal(office, "clerk", b"to be shredded", "INTERNAL", "STAFF")
    log = office.path / "audit" / "log"
    # Someone who may not shred links a live document and the audit log
    # under tombstone names, and renames another live document to one.
    board_file, staff_file = _stored(office, board), _stored(office, staff)
    linked = office.path / f".shred-{board_file.name}"
    os.link(board_file, linked)
    to_log = office.path / ".shred-aaaaaaaaaaaaaaaa.00000000.age"
    os.link(log, to_log)
    renamed = office.path / f".shred-{staff_file.name}"
    os.rename(staff_file, renamed)
    # A real interrupted shred: recorded, its tombstone left behind.
    gone_file = _stored(office, gone)
    stored = gone_file.read_bytes()
    office.as_("leader").shred(gone, justification="done")
    tomb = office.path / f".shred-{gone_file.name}"
    tomb.write_bytes(os.urandom(300) + stored[300:])  # its header overwritten, no more
    before = log.read_bytes()

    r = _vault(office, "officer", "doctor")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert f"{linked.name}: named like an interrupted shred of {board}, but it is also " \
           f"docs/{board_file.name} (a hard link)" in r.stdout
    assert f"{to_log.name}: named like an interrupted shred of aaaaaaaaaaaaaaaa, but it " \
           "is also audit/log (a hard link)" in r.stdout
    assert f"{renamed.name}: named like an interrupted shred of {staff}, but it is the " \
           "current version of a live document" in r.stdout
    assert f"leftover: {tomb.name}" in r.stdout  # the real one is a leftover, as before

    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert f"removed {tomb.name}" in r.stdout and not tomb.exists()
    # Nothing planted was written to or removed: the evidence stays.
    assert log.read_bytes()[:len(before)] == before
    assert linked.exists() and to_log.exists() and renamed.exists()
    out = io.BytesIO()
    office.as_("leader").open(board, out)
    assert out.getvalue() == b"board minutes"
    os.rename(renamed, staff_file)  # put back, it is whole
    out = io.BytesIO()
    office.as_("clerk").open(staff, out)
    assert out.getvalue() == b"staff notes"
    assert vault.Vault(office.location).verify_audit()


def test_a_planted_tombstone_does_not_stop_or_undo_a_shred(office: Office) -> None:
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    stored = _stored(office, board)
    planted = office.path / f".shred-{stored.name}"
    os.link(stored, planted)  # the very name the shred renames the document to
    office.as_("leader").shred(board, justification="done")
    assert not stored.exists() and not planted.exists()  # both names gone, header destroyed
    assert office.as_("officer").doctor().ok


def _shred_outcomes(office: Office, doc: str) -> list[str]:
    return [r.outcome for r in office.as_("officer").audit.records()
            if r.action == "shred" and r.doc == doc]


def test_a_folder_planted_at_the_tombstones_name_stops_no_shred(office: Office) -> None:
    # The registrar, cleared for INTERNAL only, made a folder at the name
    # the shred renames the document to. The shred was recorded done, then
    # rename(2) failed: the file kept its header (every wrapped file key)
    # byte for byte, the leader got an OS error naming a path (exit 1), and
    # 'doctor --repair' failed to destroy the version without a word.
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    stored = _stored(office, board)
    data = stored.read_bytes()
    header = data[:data.index(b"\n--- ") + 1]
    planted = office.path / f".shred-{stored.name}"
    planted.mkdir()
    with open(stored, "rb") as held:  # the file itself, whatever its names become
        r = _vault(office, "leader", "shred", board, "--justification", "spent")
        assert r.returncode == 0, r.stderr
        assert held.read(len(header)) != header  # every wrapped file key destroyed
    assert _shred_outcomes(office, board) == ["allowed", "done"]
    assert not stored.exists() and planted.is_dir()  # the planted folder left as it was
    r = _vault(office, "registrar", "doctor")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert f"{planted.name}: named like an interrupted shred of {board}, but it is a " \
           "directory" in r.stdout
    assert str(office.path) not in r.stdout + r.stderr


def test_a_shred_its_file_cannot_have_is_not_recorded_done(office: Office) -> None:
    # A hard link to the document elsewhere in the vault (any folder writer
    # can make one): the shred refuses to overwrite a file that is also the
    # log's, a keyring's or another document's. It was refused after its
    # record: the log said "done" of a document whose header was intact.
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    stored = _stored(office, board)
    before = stored.read_bytes()
    link = office.path / "audit" / "notes"
    os.link(stored, link)
    r = _vault(office, "leader", "shred", board, "--justification", "spent")
    assert r.returncode == INTEGRITY, r.stderr
    assert "is also audit/notes (a hard link); it was not destroyed" in r.stderr
    assert str(office.path) not in r.stderr
    assert stored.read_bytes() == before
    assert _shred_outcomes(office, board) == ["allowed", "failed"]  # never "done"
    assert board in [d.id for d in office.as_("leader").ls()]  # still live, as stored
    link.unlink()
    office.as_("leader").shred(board, justification="spent")
    assert _shred_outcomes(office, board) == ["allowed", "failed", "allowed", "done"]
    assert not stored.exists() and office.as_("officer").doctor().ok


def test_a_live_file_renamed_as_another_versions_tombstone_is_not_destroyed(
        office: Office) -> None:
    # Renamed, not linked: one name only, and its version is not the live
    # one -- yet it is the live document's only file, still recoverable.
    staff = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    staff_file = _stored(office, staff)
    renamed = office.path / f".shred-{staff}.00000000.age"
    os.rename(staff_file, renamed)
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert f"{renamed.name}: named like an interrupted shred of {staff}, but the live " \
           "document's current file is missing" in r.stdout
    assert renamed.exists()
    os.rename(renamed, staff_file)  # put back, it is whole
    out = io.BytesIO()
    office.as_("clerk").open(staff, out)
    assert out.getvalue() == b"staff notes"


def test_doctor_never_destroys_a_version_linked_to_the_log(office: Office) -> None:
    doc = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    log = office.path / "audit" / "log"
    # A version the log does not count (what repair destroys), linked to the log.
    stray = office.path / "docs" / f"{doc}.0000beef.age"
    os.link(log, stray)
    before = log.read_bytes()
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert f"docs/{stray.name}: named like a version of {doc}, but it is not one" in r.stdout
    assert log.read_bytes()[:len(before)] == before and stray.exists()
    assert vault.Vault(office.location).verify_audit()


def test_repair_never_destroys_a_keyring_entry_or_checkpoint_linked_into_docs(
        office: Office) -> None:
    # The registrar hard-links the leader's keyring entries and a stored
    # checkpoint into docs/ under versions the log does not count. Before,
    # the officer's 'doctor --repair' overwrote them in place as interrupted
    # writes: the leader's keys and the checkpoint were destroyed.
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    staff = _seal(office, "registrar", b"staff notes", "INTERNAL", "STAFF")
    office.as_("officer").audit.checkpoint()
    leader = office.path / "keyrings" / owner_key(office.ids["leader"].recipient)
    kept = {e: e.read_bytes() for e in sorted(leader.iterdir())}
    checkpoint = sorted((office.path / "audit" / "checkpoints").iterdir())[-1]
    kept[checkpoint] = checkpoint.read_bytes()
    for i, e in enumerate(kept, 1):
        os.link(e, office.path / "docs" / f"{staff}.{i:08x}.age")
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert r.stdout.count(f"named like a version of {staff}, but it is not one") \
        == len(kept), r.stdout
    assert all(e.read_bytes() == data for e, data in kept.items())
    out = io.BytesIO()
    office.as_("leader").open(board, out)
    assert out.getvalue() == b"board minutes"
    # A live document's own shred still finds what its file also is.
    for i in range(1, len(kept) + 1):
        (office.path / "docs" / f"{staff}.{i:08x}.age").unlink()
    os.link(_stored(office, staff), leader / f"{'0' * 32}.age")
    with pytest.raises(IntegrityError, match=r"is also keyrings/.* \(a hard link\)"):
        office.as_("leader").shred(staff, justification="spent")


def test_repair_keeps_a_stray_version_while_the_current_file_is_missing(
        office: Office) -> None:
    # A folder writer renames a live document's file to a version the log
    # does not count. Plain doctor names both; before, the repair then
    # destroyed the only copy, which renaming back would have restored.
    doc = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    current = _stored(office, doc)
    renamed = current.with_name(f"{doc}.00000000.age")
    os.rename(current, renamed)
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert f"docs/{renamed.name}: a version of {doc} the audit log does not count, while " \
           "its current file is missing" in r.stdout
    assert renamed.exists()
    # A folder planted at the current file's name is no current file.
    current.mkdir()
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY and renamed.exists(), r.stdout
    current.rmdir()
    os.rename(renamed, current)
    out = io.BytesIO()
    office.as_("leader").open(doc, out)
    assert out.getvalue() == b"board minutes"


def test_doctor_names_evidence_alike_with_or_without_repair(office: Office) -> None:
    # A stray version kept as evidence by the officer's repair ("it was not
    # removed, keep it as evidence") was a leftover of "an interrupted
    # write" in anyone's plain doctor, whose hint said a repair removes the
    # leftovers listed.
    doc = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    current = _stored(office, doc)
    renamed = current.with_name(f"{doc}.00000000.age")
    os.rename(current, renamed)
    staff = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    other = office.path / "docs" / f"{staff}.00000001.age"
    other.write_bytes(b"not a version of it")
    said = {}
    for who, args in (("leader", ["doctor"]), ("officer", ["doctor", "--repair"])):
        r = _vault(office, who, *args)
        assert r.returncode == INTEGRITY, r.stdout + r.stderr
        assert f"problem: docs/{renamed.name}: a version of {doc} the audit log does not " \
               "count, while its current file is missing: this may be it under another " \
               "name;" in r.stdout, r.stdout
        assert f"problem: docs/{other.name}: named like a version of {staff}, but it is not " \
               "one" in r.stdout, r.stdout
        assert "leftover" not in r.stdout and "interrupted write" not in r.stdout, r.stdout
        said[who] = r.stdout
    assert said["leader"].count("keep it as evidence") == 2, said["leader"]
    assert renamed.exists() and other.exists()


def test_a_keyring_entry_renamed_as_a_tombstone_is_not_destroyed(office: Office) -> None:
    # Named like an interrupted shred of an older version of a live
    # document: before, the repair "finished the shred" of what was the
    # deputy's keyring entry.
    doc = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    deputy = office.path / "keyrings" / owner_key(office.ids["deputy"].recipient)
    entry = sorted(deputy.iterdir())[0]
    tomb = office.path / f".shred-{doc}.00000000.age"
    os.rename(entry, tomb)
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert f"{tomb.name}: named like an interrupted shred of {doc}, but it is an age file " \
           "but no document" in r.stdout
    assert tomb.exists()
    os.rename(tomb, entry)
    assert office.as_("officer").doctor().ok


def test_repair_never_destroys_another_file_renamed_as_a_stray_version_or_tombstone(
        office: Office) -> None:
    # Renamed, one name each, under the name of a document whose own file is
    # in place: another document's only file, the leader's keyring entry
    # and a checkpoint as stray versions of it, and another document as the
    # tombstone of a shredded one. The repair destroyed every one of them.
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    staff = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    other = _seal(office, "clerk", b"other notes", "INTERNAL", "STAFF")
    gone = _seal(office, "clerk", b"to be shredded", "INTERNAL", "STAFF")
    gone_version = _stored(office, gone).name.split(".")[1]
    office.as_("leader").shred(gone, justification="done")
    office.as_("officer").audit.checkpoint()
    leader = office.path / "keyrings" / owner_key(office.ids["leader"].recipient)
    moved = {_stored(office, board): office.path / "docs" / f"{staff}.00000001.age",
             sorted(leader.iterdir())[0]: office.path / "docs" / f"{staff}.00000002.age",
             sorted((office.path / "audit" / "checkpoints").iterdir())[-1]:
                 office.path / "docs" / f"{staff}.00000003.age",
             _stored(office, other): office.path / f".shred-{gone}.{gone_version}.age"}
    kept = {to: origin.read_bytes() for origin, to in moved.items()}
    for origin, to in moved.items():
        os.rename(origin, to)
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert r.stdout.count(f"named like a version of {staff}, but it is not one") == 3, r.stdout
    assert f"named like an interrupted shred of {gone}, but it is not what is left of that " \
           "document" in r.stdout
    assert all(to.read_bytes() == data for to, data in kept.items())
    for origin, to in moved.items():
        os.rename(to, origin)
    assert office.as_("officer").doctor().ok
    out = io.BytesIO()
    office.as_("leader").open(board, out)
    assert out.getvalue() == b"board minutes"


def test_a_repair_killed_while_finishing_a_shred_is_finished_by_the_next(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # A shred interrupted after its rename, then the repair that finishes it
    # interrupted after overwriting. The repair overwrote up to 1 MiB --
    # all of a small document, payload included -- so the next repair no
    # longer saw the document's payload in it and called it planted, for
    # good. Now only what precedes the payload is overwritten.
    from vault.store.folder import FolderBackend

    doc = _seal(office, "clerk", b"spent notes", "INTERNAL", "STAFF")
    real_overwrite, real_unlink = FolderBackend._overwrite, FolderBackend._unlink_tomb

    def killed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(FolderBackend, "_overwrite", staticmethod(killed))
    with pytest.raises(KeyboardInterrupt):
        office.as_("leader").shred(doc, justification="done")
    monkeypatch.setattr(FolderBackend, "_overwrite", staticmethod(real_overwrite))
    monkeypatch.setattr(FolderBackend, "_unlink_tomb", killed)
    with pytest.raises(KeyboardInterrupt):
        office.as_("officer").doctor(repair=True)
    monkeypatch.setattr(FolderBackend, "_unlink_tomb", real_unlink)
    report = office.as_("officer").doctor(repair=True)
    assert not report.problems and any(".shred-" in r for r in report.repaired), report
    assert office.as_("officer").doctor().ok
    assert not list(office.path.glob(".shred-*"))


def _killed_before_completion(office: Office) -> None:
    """The clerk's seal, killed (as by kill -9) once its file is in place,
    before its completion record: an interrupted seal, its file a stray."""
    import vault._ops.seal as sealing

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies
        try:
            sealing.complete_wrapped = lambda *a, **k: os._exit(137)  # type: ignore[assignment]
            _seal(office, "clerk", b"interrupted", "INTERNAL", "STAFF")
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 137


def test_repair_never_destroys_a_document_renamed_as_an_interrupted_seal_or_behind_a_decoy(
        office: Office) -> None:
    # (1) Over the file an interrupted seal left, the clerk renames the
    # board's only file: it is "a document", and nothing is recorded of the
    # interrupted one -- the repair destroyed it. (2) A live document's file
    # renamed to a stray version of itself, an empty file left in its place:
    # the current file "exists", and the repair destroyed the real one.
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    board_file = _stored(office, board)
    before = set((office.path / "docs").iterdir())
    _killed_before_completion(office)
    (interrupted,) = set((office.path / "docs").iterdir()) - before
    os.rename(board_file, interrupted)
    r = _vault(office, "officer", "doctor", "--repair")
    assert f"docs/{interrupted.name}: named like a version of" in r.stdout, r.stdout
    assert interrupted.exists()
    os.rename(interrupted, board_file)
    staff = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    staff_file = _stored(office, staff)
    renamed = staff_file.with_name(f"{staff}.00000001.age")
    os.rename(staff_file, renamed)
    header = renamed.read_bytes()[:renamed.read_bytes().index(b"\n--- ") + 1]
    header += renamed.read_bytes()[len(header):].split(b"\n", 1)[0] + b"\n"
    for decoy in (b"", header):  # nothing, or the document's header copied: no payload
        staff_file.write_bytes(decoy)
        r = _vault(office, "officer", "doctor", "--repair")
        assert f"docs/{renamed.name}: a version of {staff} the audit log does not count, " \
               "while its current file is missing" in r.stdout, r.stdout
        assert renamed.exists()
    os.replace(renamed, staff_file)
    assert office.as_("officer").doctor(repair=True).ok
    for doc, data in ((board, b"board minutes"), (staff, b"staff notes")):
        out = io.BytesIO()
        office.as_("leader").open(doc, out)
        assert out.getvalue() == data


def test_a_repair_killed_while_destroying_an_interrupted_seal_is_finished_by_the_next(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # The clerk's seal killed before its completion; the officer's repair,
    # destroying its file, killed after renaming it to a tombstone (and,
    # the second time, after overwriting it). With nothing on record for
    # that document, every later repair called the tombstone planted.
    from vault.store.folder import FolderBackend

    real = {name: getattr(FolderBackend, name) for name in ("_overwrite", "_unlink_tomb")}

    def killed(*args: object) -> None:
        raise KeyboardInterrupt

    for step, fake in (("_overwrite", staticmethod(killed)), ("_unlink_tomb", killed)):
        _killed_before_completion(office)
        monkeypatch.setattr(FolderBackend, step, fake)
        with pytest.raises(KeyboardInterrupt):
            office.as_("officer").doctor(repair=True)
        monkeypatch.setattr(FolderBackend, step, real[step] if step == "_unlink_tomb"
                            else staticmethod(real[step]))
        assert list(office.path.glob(".shred-*"))
        report = office.as_("officer").doctor(repair=True)
        assert not report.problems, report.problems
        assert not list(office.path.glob(".shred-*"))
    assert office.as_("officer").doctor().ok


def test_the_officers_repair_records_nothing_for_anothers_dead_decision(
        office: Office) -> None:
    # The clerk's seal killed between its decision and its completion. The
    # officer's repair recorded it as failed -- a record of the officer's,
    # which ends nothing (only its maker's does) -- again at every repair.
    _killed_before_completion(office)
    for _ in range(2):
        report = office.as_("officer").doctor(repair=True)
        assert not report.problems
        assert any("allowed but never completed" in n and "only a record of its maker's" in n
                   for n in report.notes), report.notes
    assert not [line for line in office.raw.audit_lines()
                if b'"outcome":"failed"' in line and b"interrupted" in line]


def test_repair_keeps_a_granted_keyring_entry_filed_under_another_user(
        office: Office) -> None:
    # The leader's entries for SECRET//BOARD moved into the outsider's and
    # the clerk's keyring folders: no grant under those names, so the
    # officer's repair deleted them -- the leader's only keys for the class,
    # which a move back would have restored.
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    leader = office.path / "keyrings" / owner_key(office.ids["leader"].recipient)
    outsider = office.path / "keyrings" / owner_key(office.ids["outsider"].recipient)
    outsider.mkdir(exist_ok=True)
    moved = {e: outsider / e.name for e in sorted(leader.iterdir())}
    for origin, to in moved.items():
        os.rename(origin, to)
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert r.stdout.count("the entry the audit log granted leader for") == len(moved), r.stdout
    assert all(to.exists() for to in moved.values())
    for origin, to in moved.items():
        os.rename(to, origin)
    out = io.BytesIO()
    office.as_("leader").open(board, out)
    assert out.getvalue() == b"board minutes"


def test_a_link_or_pipe_planted_as_a_keyring_entry_stops_no_repair(office: Office) -> None:
    # The repair reads an ungranted entry to tell a misfiled grant from a
    # stray; a link or a named pipe planted under an entry's name made that
    # read fail, and the whole repair stopped (exit 4).
    planted = office.path / "keyrings" / ("ab" * 16)
    planted.mkdir()
    os.symlink(office.path / "audit" / "log", planted / f"{'cd' * 16}.age")
    os.mkfifo(planted / f"{'ef' * 16}.age")
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not list(planted.iterdir())
    assert (office.path / "audit" / "log").stat().st_size > 0
    # A folder at an entry's name cannot be removed: named, and nothing stops.
    (planted / f"{'12' * 16}.age").mkdir()
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY, r.stdout + r.stderr
    assert f"{'12' * 16}.age in the vault folder is a directory, not a regular file; it was " \
           "not removed" in r.stdout, r.stdout


def test_folders_planted_at_checkpoint_names_fail_no_write(office: Office) -> None:
    # Folders made at the names of the checkpoints still to come: once one
    # was due, every append failed ("audit record not durable", though its
    # records were), doctor --repair too. A checkpoint is not stored there.
    with office.as_("clerk") as v:
        size = v.verify_audit().size
        v.seal_many([io.BytesIO(b"n%d" % i) for i in range(1000 - size - 3)],
                    level="INTERNAL", compartments=["STAFF"])
        size = v.verify_audit().size
    for n in range(size, size + 30):
        (office.path / "audit" / "checkpoints" / str(n)).mkdir()
    for i in range(10):
        _seal(office, "clerk", b"honest %d" % i, "INTERNAL", "STAFF")
    assert office.as_("officer").verify_audit().size >= size + 20


def test_a_huge_statement_file_is_never_held_whole(office: Office) -> None:
    # A request file of 16 MiB planted in the folder: every approver's
    # listing read it whole (the database holds statements of 1 MiB at
    # most, so it also stopped every move there).
    from test_audit_junk_memory import _peak

    folder = office.path / "requests"
    folder.mkdir(exist_ok=True)
    (folder / f"{'0' * 64}.json").write_bytes(b"{" + b" " * (16 << 20) + b"}")
    peak = _peak(lambda: office.as_("leader").approvals())
    assert peak < 4 << 20, f"{peak / 2**20:.1f} MiB"


# -- 2. named pipes ------------------------------------------------------------------------


@contextlib.contextmanager
def _pipe_at(path: Path) -> Iterator[None]:
    """A named pipe in place of ``path`` (which is put back afterwards)."""
    saved = path.with_name(path.name + ".saved")
    if path.exists():
        os.rename(path, saved)
    path.parent.mkdir(exist_ok=True)
    os.mkfifo(path, 0o600)
    try:
        yield
    finally:
        path.unlink()
        if saved.exists():
            os.rename(saved, path)


def test_a_planted_named_pipe_never_hangs_a_command(office: Office) -> None:
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    staff = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    src = office.file("in.txt", b"new")
    seal = ("seal", str(src), "--level", "INTERNAL//STAFF")
    stored = _stored(office, staff)
    leader = office.path / "keyrings" / owner_key(office.ids["leader"].recipient)
    entry = sorted(leader.glob("*.age"))[0]
    request = office.path / "requests" / ("ab" * 32 + ".json")
    pipe = "is a named pipe (FIFO), not a regular file"
    # (where, who, command, exit code, what stdout or stderr says)
    cases = [
        (stored, "clerk", ("open", staff, "-o", "-"), INTEGRITY,
         f"docs/{stored.name} in the vault folder {pipe}"),
        (stored, "clerk", ("ls",), 0, staff),  # only that document fails
        (stored, "leader", ("open", board, "-o", "-"), 0, "board minutes"),
        (stored, "officer", ("doctor",), INTEGRITY,
         f"document {staff}: docs/{stored.name} in the vault folder {pipe}"),
        (office.path / "vault.json", "officer", ("doctor",), INTEGRITY,
         f"vault.json in the vault folder {pipe}"),
        (office.path / "audit" / "log.key", "clerk", ("ls",), INTEGRITY,
         f"audit/log.key in the vault folder {pipe}"),
        (office.path / "lock", "clerk", seal, INTEGRITY, f"lock in the vault folder {pipe}"),
        (office.path / "audit" / "lock", "clerk", ("ls",), 1, f"audit/lock {pipe}"),
        (office.path / "audit" / "lock", "officer", ("doctor",), 1, f"audit/lock {pipe}"),
        (entry, "clerk", ("open", staff, "-o", "-"), 0, "staff notes"),
        (request, "leader", ("approvals",), 0, "no requests"),
    ]
    for where, who, args, code, says in cases:
        with _pipe_at(where):
            r = _vault(office, who, *args)
        assert r.returncode == code and says in r.stdout + r.stderr, (where, args, r)
        assert "Traceback" not in r.stderr
    # The leader holds several keyring entries: a pipe in place of the one
    # the board document needs fails that opening, naming it; the others
    # are not read for it.
    outcomes = []
    for each in sorted(leader.glob("*.age")):
        with _pipe_at(each):
            r = _vault(office, "leader", "open", board, "-o", "-")
        assert "Traceback" not in r.stderr
        outcomes.append((r.returncode, f"{each.name} in the vault folder {pipe}" in r.stderr))
    assert (INTEGRITY, True) in outcomes
    assert set(outcomes) <= {(INTEGRITY, True), (0, False)}, outcomes
    assert _vault(office, "officer", "doctor").returncode == 0  # all put back


# -- 3. linked folders inside the layout ---------------------------------------------------


def test_a_linked_keyring_folder_is_never_read_or_written_through(office: Office,
                                                                  tmp_path: Path) -> None:
    board = _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    deputy = owner_key(office.ids["deputy"].recipient)
    folder = office.path / "keyrings" / deputy
    outside = tmp_path / "outside"
    shutil.copytree(folder, outside)
    shutil.rmtree(folder)
    os.symlink(outside, folder)
    kept = {p.name: p.read_bytes() for p in outside.iterdir()}
    # A new class key is granted to the deputy: not through the link.
    with pytest.raises(IntegrityError, match=f"keyrings/{deputy}/ in the vault folder is a "
                                             "symbolic link, not a directory"):
        _seal(office, "leader", b"hr file", "SECRET", "HR")
    r = _vault(office, "deputy", "open", board, "-o", "-")
    assert r.returncode == INTEGRITY and "symbolic link" in r.stderr, r
    r = _vault(office, "officer", "doctor")
    assert r.returncode == INTEGRITY
    assert f"keyrings/{deputy}/ in the vault folder is a symbolic link, not a directory" \
        in r.stdout
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == kept


def test_a_linked_checkpoint_folder_is_never_used(office: Office, tmp_path: Path) -> None:
    _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    folder = office.path / "audit" / "checkpoints"
    outside = tmp_path / "outside"
    shutil.copytree(folder, outside)
    shutil.rmtree(folder)
    os.symlink(outside, folder)
    kept = sorted(os.listdir(outside))
    assert _vault(office, "clerk", "audit", "checkpoint").returncode == 0
    for _ in range(3):
        _seal(office, "clerk", b"more", "INTERNAL", "STAFF")
    r = _vault(office, "officer", "doctor", "--repair")
    assert r.returncode == INTEGRITY
    assert "audit/checkpoints/ in the vault folder is a symbolic link, not a directory" \
        in r.stdout
    assert sorted(os.listdir(outside)) == kept  # nothing written through the link
    folder.unlink()
    assert _vault(office, "officer", "doctor").returncode == 0  # made again, all agrees


# -- 4. derived audit files and keyring folders that are not what they should be ------------


@pytest.mark.parametrize("name", ["index", "hashes"])
@pytest.mark.parametrize("kind", ["folder", "pipe"])
def test_a_derived_file_that_is_not_a_file_is_rebuilt(office: Office, name: str,
                                                      kind: str) -> None:
    staff = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    path = office.path / "audit" / name
    path.unlink()
    if kind == "folder":
        path.mkdir()
    else:
        os.mkfifo(path, 0o600)
    src = office.file("in.txt", b"new")
    r = _vault(office, "clerk", "seal", str(src), "--level", "INTERNAL//STAFF")
    assert r.returncode == 0, r
    r = _vault(office, "clerk", "open", staff, "-o", "-")
    assert r.returncode == 0 and r.stdout == "staff notes", r
    r = _vault(office, "officer", "doctor")
    assert r.returncode == 0, r
    assert path.is_file() and not path.is_symlink()
    assert vault.Vault(office.location).verify_audit()


@pytest.mark.parametrize("name", ["index", "hashes"])
@pytest.mark.parametrize("target", ["the log", "a document"])
def test_a_derived_file_linked_to_another_file_is_never_written_through(
        office: Office, name: str, target: str) -> None:
    # Any folder writer: 'rm audit/hashes; ln audit/log audit/hashes'. The
    # next append rebuilt the derived files in place, truncating and
    # overwriting the file linked there: the whole audit log was emptied
    # (an auditor's read-only 'vault audit verify' did it too, and said
    # ok), or a document was overwritten with hashes.
    staff = _seal(office, "clerk", b"staff notes", "INTERNAL", "STAFF")
    other = office.path / "audit" / "log" if target == "the log" else _stored(office, staff)
    before = other.read_bytes()
    path = office.path / "audit" / name
    path.unlink()
    os.link(other, path)
    for who, *args in (("officer", "audit", "verify"), ("clerk", "ls"),
                       ("clerk", "open", staff, "-o", "-")):
        r = _vault(office, who, *args)
        assert r.returncode == 0, r
        assert other.read_bytes()[:len(before)] == before
    assert r.stdout == "staff notes"
    assert path.is_file() and os.stat(path).st_nlink == 1
    assert _vault(office, "officer", "doctor").returncode == 0
    assert vault.Vault(office.location).verify_audit()


@pytest.mark.parametrize("planted", ["file", "dangling link"])
def test_a_keyring_folder_that_is_not_a_folder_is_named(office: Office, planted: str) -> None:
    _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    deputy = owner_key(office.ids["deputy"].recipient)
    folder = office.path / "keyrings" / deputy
    shutil.rmtree(folder)
    if planted == "file":
        folder.write_bytes(b"not a folder")
    else:
        os.symlink("/nonexistent/elsewhere", folder)
    what = "a regular file" if planted == "file" else "a symbolic link"
    src = office.file("hr.txt", b"hr file")
    r = _vault(office, "leader", "seal", str(src), "--level", "SECRET//HR")
    assert r.returncode == INTEGRITY, r
    assert f"keyrings/{deputy}/ in the vault folder is {what}, not a directory" in r.stderr
    assert "elsewhere" not in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists("/nonexistent/elsewhere")
    r = _vault(office, "officer", "doctor")
    assert f"keyrings/{deputy}/ in the vault folder is {what}, not a directory" in r.stdout


def test_a_bloated_keyring_entry_costs_its_reader_nothing(tmp_path: Path) -> None:
    # Anyone who can write the folder can grow a keyring entry: its reader
    # took all of it into memory (on PostgreSQL the role's UPDATE did the
    # same, 1.5 GB for 256 MiB). A reader takes at most 64 KiB + 1 bytes of
    # an entry; a longer one is not the entry granted, and is not used.
    import tracemalloc

    office = make_office(tmp_path)
    doc = office.as_("clerk").seal(io.BytesIO(b"notice"), level="INTERNAL",
                                   compartments=["STAFF"]).id
    folder = office.path / "keyrings" / owner_key(office.ids["clerk"].recipient)
    (entry,) = folder.iterdir()
    with entry.open("ab") as f:
        f.write(bytes(16 << 20))
    v = office.as_("clerk")
    v.ls()  # caught up first
    tracemalloc.start()
    try:
        with pytest.raises(vault.errors.VaultError):
            v.open(doc, io.BytesIO())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    assert any("is not the one the audit log granted" in p
               for p in office.as_("officer").doctor().problems)



@pytest.mark.parametrize("end", [1 << 44, 0])
def test_a_planted_index_entry_makes_prove_rebuild_not_fail(office: Office, tmp_path: Path,
                                                            end: int) -> None:
    # Anyone who can write the folder set one end offset of audit/index past
    # the log's end (2**44): every 'vault audit prove' of that line, on every
    # machine, failed with "internal error (MemoryError)" until someone ran
    # 'vault audit verify'. The derived data is never trusted: rebuilt.
    import struct

    from vault.audit import verify_tlog_proof

    _seal(office, "leader", b"board minutes", "SECRET", "BOARD")
    seq = 2
    index = office.path / "audit" / "index"
    data = bytearray(index.read_bytes())
    start = struct.unpack(">Q", data[(seq - 1) * 8: seq * 8])[0]
    data[seq * 8: (seq + 1) * 8] = struct.pack(">Q", start + end)
    index.write_bytes(bytes(data))
    for state in ("leader", "new"):
        r = office.cli("leader", "audit", "prove", str(seq),
                       env={"VAULT_STATE_DIR": str(tmp_path / state)})
        assert r.exit_code == 0, r.stderr
        assert "internal error" not in r.stderr
        with office.as_("officer") as v:
            proof = verify_tlog_proof(r.stdout, [v.audit.verifier()],
                                      key_lookup=office.key_lookup())
        assert proof.leaf == office.raw.audit_lines()[seq]


def test_a_planted_actor_file_that_is_no_key_stops_no_reader_of_the_keys(office: Office) -> None:
    # actors/ holds registered keys under the SHA-256 of their bytes, which
    # a reader checks; a folder writer's file of 33 bytes under its own
    # hash passed that check and made 'vault audit keys' an internal error
    # for everyone (no Ed25519 key is 33 bytes long).
    import hashlib

    junk = b"\x01" * 33
    actors = office.path / "actors"
    actors.mkdir(exist_ok=True)
    (actors / f"{hashlib.sha256(junk).hexdigest()}.pub").write_bytes(junk)
    r = office.cli("deputy", "audit", "keys")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() and "internal error" not in r.stderr
