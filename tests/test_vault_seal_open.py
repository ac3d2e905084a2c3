"""Sealing and opening: identical bytes for the cleared, nothing for the rest,
and standard age files that stock age and a recovery key open."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from backends import Kind
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

from vault.errors import DeniedError, UsageError


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
