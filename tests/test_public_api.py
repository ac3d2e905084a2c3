"""The public API is what a developer should call: no plumbing on the
facade, keywords that say what they take, counts written as people write
them."""

from __future__ import annotations

import inspect
import io
import typing
from pathlib import Path

import pytest
from backends import FolderKind
from vault_helpers import make_office

import vault
from vault.errors import DeniedError, UsageError

PLUMBING = ("record", "authorise", "attempt", "attempts", "lock", "shared_lock", "catch_up",
            "refresh", "backend", "session")


def test_the_facade_has_no_plumbing() -> None:
    public = {n for n in dir(vault.Vault) if not n.startswith("_")}
    assert not public & set(PLUMBING)
    assert {"seal", "seal_many", "open", "ls", "reclassify", "request", "approve"} <= public


def test_seal_many_takes_the_keywords_seal_takes() -> None:
    seal = inspect.signature(vault.Vault.seal).parameters
    many = inspect.signature(vault.Vault.seal_many).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in many.values())
    shared = {n for n, p in seal.items() if p.kind is p.KEYWORD_ONLY}
    assert shared - {"filename"} <= set(many)


def test_denied_error_carries_a_typed_decision() -> None:
    from vault.policy import Decision

    hints = typing.get_type_hints(DeniedError.__init__, localns={"Decision": Decision})
    assert hints["decision"] == Decision | None


def test_a_listing_of_one_is_recorded_as_one_document(tmp_path: Path) -> None:
    office = make_office(tmp_path, FolderKind())
    clerk = office.as_("clerk")
    clerk.seal(io.BytesIO(b"memo"), level="INTERNAL", compartments=["STAFF"])
    clerk.ls()
    notes = [r.reason for r in office.as_("officer").audit.records() if r.action == "ls"]
    assert notes and "1 document listed" in notes[-1]
    assert "1 documents" not in notes[-1]


def _misuses(v: vault.Vault, info: object, out: Path) -> dict[str, typing.Callable[[], object]]:
    doc = typing.cast(str, info)
    return {
        "info": lambda: v.info(doc),
        "open": lambda: v.open(doc, io.BytesIO()),
        "open_into": lambda: v.open_into(doc, out),
        "export": lambda: v.export(doc, io.BytesIO(), justification="for the auditors"),
        "reclassify": lambda: v.reclassify(doc, level="SECRET", compartments=["BOARD"],
                                           justification="board matter"),
        "declassify": lambda: v.declassify([doc], justification="public now"),
        "shred": lambda: v.shred(doc, justification="retention ended"),
        "request": lambda: v.request("shred", doc, justification="retention ended"),
    }


def test_a_document_passed_for_its_id_is_a_usage_error(tmp_path: Path) -> None:
    """The DocumentInfo ``seal`` returns, passed where its id belongs: a
    UsageError naming only the type (the object holds the title) -- it was
    a TypeError from the audit record of the attempt, and nothing was
    recorded -- and the vault goes on."""
    office = make_office(tmp_path / "o", FolderKind())
    leader = office.as_("leader")
    info = leader.seal(io.BytesIO(b"minutes"), filename="minutes-secret-merger.txt",
                       title="Merger minutes", level="CONFIDENTIAL", compartments=["BOARD"])
    assert info.title
    (tmp_path / "out").mkdir()
    for name, call in _misuses(leader, info, tmp_path / "out").items():
        before = leader.audit.tip().size
        with pytest.raises(UsageError) as e:
            call()
        assert "DocumentInfo" in e.value.message, name
        assert "merger" not in (str(e.value) + (e.value.hint or "")).lower(), name
        # Each attempt is on the record; a request only once made, as
        # with an unknown id.
        assert (leader.audit.tip().size > before) == (name != "request"), name
    assert leader.doctor().problems == []
    assert leader.open(info.id, io.BytesIO()) is not None
