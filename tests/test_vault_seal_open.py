"""Sealing and opening: identical bytes for the cleared, nothing for the rest,
and standard age files that stock age and a recovery key open."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from backends import FolderKind, Kind
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vault_helpers import (
    Office,
    age_decrypt,
    doc_file,
    held_secret_keys,
    make_office,
    opens_with,
)

import vault
from vault._ops.read import CHANGED_WHILE_LISTED, HIDDEN_POLICY
from vault._sealed.reading import READ_TRIES
from vault.errors import DeniedError, HeaderError, StateError, StorageError, UsageError


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, backend: Kind) -> Office:
    return make_office(tmp_path_factory.mktemp("office"), backend)


def test_cleared_user_gets_identical_bytes(office: Office, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    src = office.file("report.pdf", data)
    info = office.as_("clerk").seal(src, level="CONFIDENTIAL", compartments=["FINANCE"],
                                    title="Budget 2025")
    assert info.filename == "report.pdf" and info.title == "Budget 2025"
    assert info.content_type == "application/pdf" and info.plaintext_size == len(data)
    out = tmp_path / "copy.pdf"
    opened = office.as_("leader").open(info.id, out)
    assert out.read_bytes() == data
    assert out.stat().st_mode & 0o777 == 0o600
    assert opened.payload_sha256 == info.payload_sha256 and opened.title == "Budget 2025"


def test_open_refuses_to_overwrite(office: Office, tmp_path: Path) -> None:
    info = office.as_("clerk").seal(office.file("a.txt", b"one"), level="INTERNAL",
                                    compartments=["STAFF"])
    out = tmp_path / "a.txt"
    out.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="already exists"):
        office.as_("clerk").open(info.id, out)
    assert out.read_bytes() == b"keep me"
    office.as_("clerk").open(info.id, out, overwrite=True)
    assert out.read_bytes() == b"one"


def test_uncleared_user_is_denied_and_holds_no_key(office: Office, tmp_path: Path) -> None:
    secret = b"board decision: " + os.urandom(1000)
    info = office.as_("leader").seal(office.file("decision.docx", secret), level="SECRET",
                                     compartments=["BOARD"])
    for name in ("clerk", "registrar", "outsider", "officer"):
        with pytest.raises(DeniedError):
            office.as_(name).open(info.id, tmp_path / f"{name}.docx")
        assert not (tmp_path / f"{name}.docx").exists()
        # Stock age over every file of the vault this user's identity opens:
        # none of the secret keys found there opens the document.
        keys = held_secret_keys(office, name)
        assert not opens_with(keys, doc_file(office, info.id), tmp_path), name
    # The check is not vacuous: the leader's keys do open it.
    assert opens_with(held_secret_keys(office, "leader"), doc_file(office, info.id), tmp_path)


def test_recovery_identity_opens_every_document_with_stock_age(office: Office) -> None:
    office.as_("clerk").seal(office.file("memo.txt", b"memo"), level="INTERNAL",
                             compartments=["STAFF"])
    docs = office.raw.doc_ids()
    assert docs
    for doc in docs:
        r = age_decrypt(office.files["recovery"], doc_file(office, doc))
        assert r.returncode == 0, r.stderr


def test_metadata_only_for_key_holders(office: Office) -> None:
    info = office.as_("leader").seal(office.file("plan.xlsx", b"x" * 10), level="SECRET",
                                     compartments=["FINANCE"], title="Plan")
    seen = office.as_("officer").ls()
    row = next(d for d in seen if d.id == info.id)
    assert row.title is None and row.filename is None and row.plaintext_size is None
    assert office.as_("officer").info(info.id).title is None  # no need to know: no FINANCE
    with pytest.raises(DeniedError):
        office.as_("outsider").info(info.id)
    assert office.as_("deputy").info(info.id).title == "Plan"
    assert office.as_("clerk").info(info.id).title is None  # listed, not openable
    # Nothing of the metadata is in clear anywhere in the vault's storage.
    for name, data in office.raw.blobs():
        assert b"plan.xlsx" not in data, name


def test_export_is_a_standard_age_file(office: Office, tmp_path: Path) -> None:
    data = b"convey me"
    info = office.as_("clerk").seal(office.file("c.txt", data), level="CONFIDENTIAL",
                                    compartments=["STAFF"])
    out = tmp_path / "c.txt.age"
    office.as_("clerk").export(info.id, out)
    assert out.read_bytes() == office.raw.doc_bytes(info.id)
    r = age_decrypt(office.files["recovery"], out)
    assert r.returncode == 0 and r.stdout == data
    with pytest.raises(DeniedError):
        office.as_("outsider").export(info.id, tmp_path / "no.age")


def test_seal_streams_and_many_files(office: Office, tmp_path: Path) -> None:
    r, w = os.pipe()
    payload = os.urandom(150_000)
    os.write(w, payload[:60_000])  # a pipe buffer holds 64 KiB: feed it in two parts
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        os.write(w, payload[60_000:])
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        info = office.as_("clerk").seal(pipe, level="INTERNAL", compartments=["STAFF"],
                                        filename="piped.bin")
    os.waitpid(pid, 0)
    assert info.plaintext_size == len(payload)
    out = io.BytesIO()
    office.as_("clerk").open(info.id, out)
    assert out.getvalue() == payload
    srcs = [office.file(f"m{i}.txt", f"file {i}".encode()) for i in range(3)]
    infos = office.as_("clerk").seal_many(srcs, level="INTERNAL", compartments=["STAFF"])
    assert len({i.id for i in infos}) == 3
    for i, info in enumerate(infos):
        buf = io.BytesIO()
        office.as_("registrar").open(info.id, buf)
        assert buf.getvalue() == f"file {i}".encode()


def test_seal_above_clearance_is_denied_and_nothing_is_written(office: Office) -> None:
    before = office.raw.doc_ids()
    with pytest.raises(DeniedError):
        office.as_("registrar").seal(office.file("x.txt", b"x"), level="CONFIDENTIAL",
                                     compartments=["STAFF"])
    assert office.raw.doc_ids() == before


def test_ls_shows_only_what_the_policy_lets_you_list(office: Office) -> None:
    info = office.as_("clerk").seal(office.file("l.txt", b"l"), level="INTERNAL",
                                    compartments=["STAFF"])
    pub = office.as_("leader").seal(office.file("p.txt", b"p"), level="PUBLIC")
    assert info.id in {d.id for d in office.as_("officer").ls()}
    outsider = {d.id for d in office.as_("outsider").ls()}
    assert pub.id in outsider and info.id not in outsider


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from([0, 1, 65535, 65536, 65537]) | st.integers(0, 200_000),
       level=st.sampled_from(["INTERNAL", "CONFIDENTIAL"]))
def test_round_trip_property(office: Office, size: int, level: str) -> None:
    data = os.urandom(size)
    clerk = office.as_("clerk")
    info = clerk.seal(io.BytesIO(data), level=level, compartments=["STAFF"], filename="f.bin")
    out = io.BytesIO()
    assert clerk.open(info.id, out).plaintext_size == size
    assert out.getvalue() == data


# -- another process changes the document while it is being opened -------------
#
# Between the moment a reader's state names the document's version and the
# moment its file is opened, another person's process may relabel, rewrap
# or shred it, removing that version (or, shredding a folder's, overwriting
# its header under a reader that opened it). The wrapper below models only
# that timing: the other person's real operation runs just before the
# reader's file is opened (``after``: just after, before it is read).


def _meanwhile(reader: vault.Vault, doc: str, change: Callable[[], object],
               times: int = 1, *, after: bool = False) -> list[str]:
    """Run ``change`` the first ``times`` times ``reader`` opens a stored
    version of ``doc``; returns the versions it opened, in order."""
    backend = reader._s.backend
    plain = backend.open_document
    opened: list[str] = []

    def racing(doc_id: str, version: str) -> BinaryIO:
        if doc_id != doc:
            return plain(doc_id, version)
        opened.append(version)
        f = plain(doc_id, version) if after else None
        if len(opened) <= times:
            change()
        return f if f is not None else plain(doc_id, version)

    backend.open_document = racing  # type: ignore[method-assign]
    return opened

def _office_with_a_note(tmp_path: Path, kind: Kind, name: str, data: bytes, *,
                        by: str = "clerk", title: str | None = None) -> tuple[Office, str]:
    """An office in ``kind`` and the id of a short INTERNAL//STAFF note ``by`` sealed."""
    office = make_office(tmp_path, kind)
    doc = office.as_(by).seal(office.file(name, data), level="INTERNAL", compartments=["STAFF"],
                              title=title).id
    return office, doc



def _decisions(office: Office, doc: str, action: str, actor: str) -> list[Any]:
    """The decision records (no completions) of ``actor``'s ``action`` on ``doc``."""
    return [r for r in office.as_("officer").audit.records() if r.doc == doc
            and r.action == action and r.actor == actor and r.outcome not in ("done", "failed")]


@pytest.mark.parametrize("how", ["open", "export", "info", "reclassify", "shred"])
def test_a_document_relabelled_while_it_is_opened_is_no_alarm(
        tmp_path: Path, backend: Kind, how: str) -> None:
    # Was "document X is missing from the vault, although the audit log
    # records it ... treat it as an incident" (exit 4) on an intact vault.
    office, doc = _office_with_a_note(tmp_path, backend, "a.txt", b"agenda\n")
    leader = office.as_("leader")
    opened = _meanwhile(leader, doc, lambda: office.as_("clerk").reclassify(
        doc, level="CONFIDENTIAL", justification="salaries"))
    out = tmp_path / "out"
    if how == "open":
        got = leader.open(doc, out)
        assert out.read_bytes() == b"agenda\n"
    elif how == "export":
        got = leader.export(doc, out)
        assert age_decrypt(office.files["recovery"], out).stdout == b"agenda\n"
    elif how == "info":
        got = leader.info(doc)
        assert got.filename == "a.txt"
    elif how == "reclassify":
        got = leader.reclassify(doc, level="SECRET", justification="board matter")
        assert got.previous is not None and got.previous.level == "CONFIDENTIAL"
    else:
        leader.shred(doc, justification="retention period over")
    if how != "reclassify" and how != "shred":
        # Decided on the label of the version read, the one the log records now.
        assert got.label.level == "CONFIDENTIAL"
    assert len(opened) >= 2 and opened[0] != opened[1]  # the one removed, then the next
    (rec,) = _decisions(office, doc, how, "leader")  # one attempt, one decision record
    assert (rec.outcome, rec.level) == ("allowed", "CONFIDENTIAL")
    assert office.as_("officer").doctor(repair=False).problems == []


def test_a_document_relabelled_beyond_the_reader_while_opened_is_denied(
        tmp_path: Path, backend: Kind) -> None:
    # The new version is never opened on the old label's decision.
    office, doc = _office_with_a_note(tmp_path, backend, "b.txt", b"board\n", by="leader")
    clerk = office.as_("clerk")
    _meanwhile(clerk, doc, lambda: office.as_("leader").reclassify(
        doc, level="SECRET", compartments=["BOARD"], justification="board matter"))
    with pytest.raises(DeniedError):
        clerk.open(doc, tmp_path / "b.txt")
    assert not (tmp_path / "b.txt").exists()
    (rec,) = _decisions(office, doc, "open", "clerk")
    assert (rec.outcome, rec.level) == ("denied", "SECRET")


def test_a_document_relabelled_every_time_it_is_read_is_a_clear_error(
        tmp_path: Path, backend: Kind) -> None:
    # Followed a bounded number of times (READ_TRIES), then "run it again".
    office, doc = _office_with_a_note(tmp_path, backend, "f.txt", b"busy\n")
    leader = office.as_("leader")
    # Each time another raise: a reclassify to the label it has is refused.
    raises = iter([{"add_compartments": ["FINANCE"]}, {"add_compartments": ["BOARD"]},
                   {"level": "CONFIDENTIAL"}][:READ_TRIES])
    opened = _meanwhile(leader, doc, lambda: office.as_("clerk").reclassify(
        doc, justification="undecided", **next(raises)), times=READ_TRIES)
    with pytest.raises(StorageError, match=f"document {doc} changed again and again"):
        leader.open(doc, tmp_path / "f.txt")
    assert len(set(opened)) == READ_TRIES and not (tmp_path / "f.txt").exists()
    (rec,) = _decisions(office, doc, "open", "leader")
    assert rec.outcome == "error"


def test_a_document_shredded_while_it_is_opened_is_no_alarm(
        tmp_path: Path, backend: Kind) -> None:
    office, doc = _office_with_a_note(tmp_path, backend, "c.txt", b"old\n")
    leader = office.as_("leader")
    _meanwhile(leader, doc, lambda: office.as_("leader").shred(
        doc, justification="retention period over"))
    with pytest.raises(UsageError, match=f"document {doc} was shredded"):
        leader.open(doc, tmp_path / "c.txt")
    (rec,) = _decisions(office, doc, "open", "leader")
    assert rec.outcome == "error"


def test_a_document_deleted_while_it_is_opened_is_still_the_alarm(
        tmp_path: Path, backend: Kind) -> None:
    # Following the log is no excuse: a version it still records, gone,
    # is an incident, whenever it went.
    office, doc = _office_with_a_note(tmp_path, backend, "d.txt", b"keep\n")
    leader = office.as_("leader")
    _meanwhile(leader, doc, lambda: office.raw.delete_doc(doc))
    with pytest.raises(StateError, match=f"document {doc} is missing from the vault"):
        leader.open(doc, tmp_path / "d.txt")


def test_titles_of_a_document_relabelled_while_listed_are_not_shown(
        tmp_path: Path, backend: Kind) -> None:
    office, doc = _office_with_a_note(tmp_path, backend, "e.txt", b"list\n", title="Rota")
    leader = office.as_("leader")
    _meanwhile(leader, doc, lambda: office.as_("leader").reclassify(
        doc, level="SECRET", compartments=["BOARD"], justification="board matter"))
    (listed,) = [d for d in leader.ls(metadata=True) if d.id == doc]
    assert listed.label.level == "INTERNAL" and listed.title is None
    assert listed.hidden == CHANGED_WHILE_LISTED


@pytest.mark.parametrize("how", ["open", "info", "shred"])
def test_a_document_shredded_once_its_file_is_open_is_no_alarm(
        tmp_path: Path, how: str) -> None:
    # A folder's shred renames the file, then overwrites its header in
    # place: a reader that opened it just before read random bytes -- "not
    # an age file" (exit 4) on an intact vault. (A PostgreSQL reader holds
    # the version's header from its opening on: nothing to follow there.)
    office, doc = _office_with_a_note(tmp_path, FolderKind(), "g.txt", b"gone\n")
    leader = office.as_("leader")
    _meanwhile(leader, doc, lambda: office.as_("leader").shred(
        doc, justification="retention period over"), after=True)
    with pytest.raises(UsageError, match=f"document {doc} was shredded"):
        if how == "open":
            leader.open(doc, tmp_path / "g.txt")
        elif how == "info":
            leader.info(doc)
        else:
            leader.shred(doc, justification="retention period over")
    assert not (tmp_path / "g.txt").exists()
    # One attempt, one record (the shred that ran meanwhile was the leader's too).
    assert [r.outcome for r in _decisions(office, doc, how, "leader")] == (
        ["allowed", "error"] if how == "shred" else ["error"])
    assert office.as_("officer").doctor(repair=False).problems == []


def test_a_header_overwritten_once_its_file_is_open_is_still_the_alarm(tmp_path: Path) -> None:
    # Following the log is no excuse here either: random bytes over the
    # header of a version the log still records are an incident (folder:
    # as above).
    office, doc = _office_with_a_note(tmp_path, FolderKind(), "h.txt", b"keep\n")
    version = office.raw.current(doc)
    data = office.raw.doc_version_bytes(doc, version)
    leader = office.as_("leader")
    _meanwhile(leader, doc, lambda: office.raw.set_doc_version_bytes(
        doc, version, os.urandom(200) + data[200:]), after=True)
    with pytest.raises(HeaderError):
        leader.open(doc, tmp_path / "h.txt")
    assert not (tmp_path / "h.txt").exists()


def test_titles_are_decided_under_the_policy_the_listing_records(
        tmp_path: Path, backend: Kind) -> None:
    # Reading the first document listed (relabelled meanwhile) catches the
    # reader up with the log, and with a policy version the officer applied
    # meanwhile that no longer lets clerks open anything: the next
    # document's title was shown on the earlier version's decision, while
    # the listing's record named the new version.
    office = make_office(tmp_path, backend)
    leader = office.as_("leader")
    for name, title in (("i.txt", "Rota"), ("j.txt", "Layoff list draft")):
        leader.seal(office.file(name, b"staff\n"), level="INTERNAL", compartments=["STAFF"],
                    title=title)
    clerk = office.as_("clerk")
    first, second = (d.id for d in clerk.ls())
    assert clerk.info(second).title == "Layoff list draft"

    def change() -> None:
        office.apply({"rules:\n": "rules:\n  - id: no-clerk-open\n    description: closed\n"
                                  "    effect: deny\n    actions: [open]\n"
                                  "    who: {groups: [clerks]}\n\n"})
        office.as_("leader").reclassify(first, level="CONFIDENTIAL", justification="pay")

    _meanwhile(clerk, first, change)
    listed = {d.id: d for d in clerk.ls(metadata=True)}
    assert listed[second].title is None and listed[second].hidden == HIDDEN_POLICY
    assert all(d.title is None and d.filename is None for d in listed.values())
    officer = office.as_("officer")
    (rec,) = [r for r in officer.audit.records() if r.actor == "clerk" and r.action == "ls"][-1:]
    assert rec.policy == officer._s.trusted.policy.hash  # the version applied meanwhile
    assert rec.reason.endswith(", 0 with titles")
