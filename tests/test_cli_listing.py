"""Listing and describing documents through the CLI: labels for whatever
the policy lets the caller list, titles and file names for what the caller
may open and holds the key of (and why not, for the rest), filters on
both. Exit code, stdout and stderr are checked apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Office, assert_error, make_office

MEMO = b"Board decision: the office moves next quarter.\n"
BUDGET = bytes(range(256)) * 64


@pytest.fixture
def office(tmp_path: Path) -> Office:
    o = make_office(tmp_path)
    (o.root / "memo.txt").write_bytes(MEMO)
    (o.root / "budget.bin").write_bytes(BUDGET)
    return o


def test_ls_and_info(office: Office) -> None:
    doc_id = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                         "BOARD", "--title", "The move")
    r = office.as_("leader", "ls")
    assert r.exit_code == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split()[:2] == ["ID", "LABEL"] and header.endswith("TITLE OR FILE NAME")
    assert [row.split()[:2] for row in rows] == [[doc_id, "CONFIDENTIAL//BOARD"]]
    assert rows[0].endswith("The move")  # the leader may open it and holds its key
    assert r.stderr == ""

    r = office.as_("leader", "ls", "--json")
    (doc,) = json.loads(r.stdout)
    assert doc["id"] == doc_id and doc["title"] == "The move" and doc["hidden"] is None
    r = office.as_("leader", "ls", "--json", "--no-titles")
    (doc,) = json.loads(r.stdout)
    assert doc["title"] is None  # not read at all

    # The officer may list it but not open it: the title stays hidden, and
    # stderr says why.
    r = office.as_("officer", "ls")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[1].split()[-1] == "-"
    assert r.stderr == ("titles not shown for 1 document: the policy does not let you "
                        "open them\n")

    r = office.as_("outsider", "ls", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == []  # nothing the outsider may see
    r = office.as_("outsider", "ls")
    assert r.stdout == "" and r.stderr == "no documents you may see\n"

    r = office.as_("leader", "info", doc_id, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["title"] == "The move"
    assert doc["plaintext_size"] == len(MEMO)
    assert doc["filename"] == "memo.txt"

    r = office.as_("leader", "info", doc_id)
    fields = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert fields["label"] == "CONFIDENTIAL//BOARD"
    assert fields["title"] == "The move"
    assert "hidden" not in fields

    # The officer may list it but not open it: no title, no file name, and why.
    r = office.as_("officer", "info", doc_id, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["title"] is None and doc["filename"] is None
    assert doc["hidden"] == "the policy does not let you open it"
    r = office.as_("officer", "info", doc_id)
    fields = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert fields["title"] == "-"
    assert fields["hidden"] == ("title and file name not shown: the policy does not let you "
                                "open it")

    r = office.as_("outsider", "info", doc_id)
    assert_error(r, 3, "denied")


def test_ls_filters(office: Office) -> None:
    memo = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                       "BOARD", "--compartment", "FINANCE", "--title", "Move memo")
    budget = office.seal("leader", office.root / "budget.bin", "--level",
                         "CONFIDENTIAL//FINANCE//PERSONAL-DATA", "--title", "Payroll")

    def ids(*options: str) -> list[str]:
        r = office.as_("leader", "ls", "--json", *options)
        assert r.exit_code == 0, r.stderr
        return [d["id"] for d in json.loads(r.stdout)]

    assert ids() == [memo, budget]
    # A label exactly as listed, and by its parts.
    assert ids("--label", "CONFIDENTIAL//BOARD/FINANCE") == [memo]
    assert ids("--label", "confidential//finance//personal-data") == [budget]
    assert ids("--compartment", "FINANCE") == [memo, budget]
    assert ids("--caveat", "PERSONAL-DATA") == [budget]
    assert ids("--level", "INTERNAL") == []
    assert ids("--sealed-by", "leader") == [budget]
    assert ids("--since", "2000-01-01", "--until", "2999-01-01") == [memo, budget]
    assert ids("--since", "2999-01-01") == []
    # Titles and file names, for those who may read them.
    assert ids("--title", "payroll") == [budget]
    assert ids("--title", "budget.bin") == [budget]  # the stored file name
    r = office.as_("officer", "ls", "--json", "--title", "payroll")
    assert json.loads(r.stdout) == []  # the officer reads no title
    r = office.as_("leader", "ls", "--title", "nothing like it")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == "no documents match\n"
    # A filter the policy cannot mean is a usage error, not an empty list.
    r = office.as_("leader", "ls", "--label", "CONFIDENTIAL//BORAD")
    assert_error(r, 2, "BORAD")
    assert "did you mean 'BOARD'?" in r.stderr
    r = office.as_("leader", "ls", "--title", "x", "--no-titles")
    assert_error(r, 2, "--no-titles")


def test_info_of_an_unknown_document(office: Office) -> None:
    r = office.as_("leader", "info", "nosuchdocument00")
    assert r.exit_code in (1, 2), r.stderr
    assert_error(r, r.exit_code, "nosuchdocument00")
