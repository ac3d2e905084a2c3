"""Every way an approval fails on the command line is a distinct, clear
error: exit code (3 refused, 2 not an approval file), nothing on stdout,
one ``vault:`` line and a hint on stderr. Also the new commands' help, the
confirmation on a terminal, and one approval raced by two processes.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from approval_cli_support import VAULT
from approval_support import office_for, policy_file, seal
from backends import Kind
from cli_support import Result, assert_error
from office import Office
from tty_support import with_tty


@pytest.fixture
def office(tmp_path: Path, backend: Kind) -> Office:
    return office_for(tmp_path, backend)


def ok(r: Result) -> str:
    assert r.exit_code == 0, r.stderr
    return r.stdout.strip()


def ask(office: Office, doc: str, *more: str, who: str = "leader") -> str:
    return ok(office.cli(who, "request", "declassify", doc, "--justification", "published",
                         *more))


def approve(office: Office, request: str, *more: str, who: str = "deputy") -> Path:
    out = office.root / f"approval-{time.monotonic_ns()}.json"
    ok(office.cli(who, "approve", request, "--yes", "-o", str(out), *more))
    return out


def refused(r: Result, fragment: str) -> None:
    assert_error(r, 3, fragment)
    assert r.stdout == ""
    assert "\nhint: " in r.stderr


def test_replayed(office: Office) -> None:
    doc, doc2 = seal(office, "leader"), seal(office, "leader")
    approval = approve(office, ask(office, doc))
    ok(office.cli("leader", "declassify", doc, "--approval", str(approval)))
    refused(office.cli("leader", "declassify", doc2, "--approval", str(approval)),
            f"the approval is for document {doc}, not {doc2}")


def test_other_state_and_other_label(office: Office) -> None:
    doc = seal(office, "leader")
    first = approve(office, ok(office.cli("leader", "request", "reclassify", doc, "--level",
                                          "CONFIDENTIAL", "--justification", "merger")))
    refused(office.cli("leader", "reclassify", doc, "--level", "INTERNAL", "--approval",
                       str(first)), "the approval is for another label (CONFIDENTIAL/BOARD, "
                                    "not INTERNAL/BOARD)")
    later = approve(office, ask(office, doc))
    ok(office.cli("leader", "reclassify", doc, "--level", "CONFIDENTIAL", "--approval",
                  str(first)))
    refused(office.cli("leader", "declassify", doc, "--approval", str(later)),
            "changed since the request was made")


def test_expired(office: Office) -> None:
    doc = seal(office, "leader")
    request = ask(office, doc, "--expires", "PT2S")
    approval = approve(office, request)
    time.sleep(2.2)
    refused(office.cli("leader", "declassify", doc, "--approval", str(approval)),
            "the request expired at")
    refused(office.cli("deputy", "approve", request, "--yes"), "the request has expired")
    assert_error(office.cli("leader", "request", "declassify", doc, "--expires", "7 days"), 2,
                 "--expires: '7 days' is not a duration")
    assert_error(office.cli("leader", "request", "declassify", doc, "--expires", "P91D",
                            "--justification", "x"), 2, "1 second to 90 days")


def test_self_approval_and_wrong_group(office: Office) -> None:
    doc = seal(office, "leader")
    request = ask(office, doc)
    refused(office.cli("leader", "approve", request, "--yes"),
            "you cannot answer your own request")
    refused(office.cli("clerk", "approve", request, "--yes"),
            "your approval would not count: clerk is not among group leaders "
            "(rule secret-two-leaders)")
    refused(office.cli("officer", "approve", request, "--yes"),
            "your approval would not count: officer is not among group leaders")


def test_since_replaced_policy(office: Office) -> None:
    doc = seal(office, "leader")
    approval = approve(office, ask(office, doc))
    ok(office.cli("officer", "policy", "apply", str(policy_file(
        office, "v3.yaml", {"description: ": "description: v3 "}))))
    refused(office.cli("leader", "declassify", doc, "--approval", str(approval)),
            "the request was made under another policy version")


def test_refused_and_forged(office: Office) -> None:
    doc = seal(office, "leader")
    request = ask(office, doc)
    answer = approve(office, request, "--refuse", "--reason", "not before the board meets")
    refused(office.cli("leader", "declassify", doc, "--request", request),
            "deputy refused it (audit record")
    doc2 = seal(office, "leader")
    good = approve(office, ask(office, doc2))
    forged = office.root / "forged.json"
    forged.write_bytes(good.read_bytes().replace(b'"reason":null', b'"reason":"fine"'))
    refused(office.cli("leader", "declassify", doc2, "--approval", str(forged)),
            "the approval's signature does not verify")
    garbage = office.root / "garbage.json"
    garbage.write_bytes(answer.read_bytes()[:-20])
    assert_error(office.cli("leader", "declassify", doc2, "--approval", str(garbage)), 2,
                 "an approval file: this is not a approval file")


def test_missing_justification_and_unknown_requests(office: Office) -> None:
    doc = seal(office, "leader")
    assert_error(office.cli("leader", "shred", doc), 2, "missing option '--justification'")
    assert_error(office.cli("leader", "shred", doc, "--request", "nothing"), 2,
                 "'nothing' is not a request id")
    assert_error(office.cli("leader", "shred", doc, "--request", "0" * 32), 2,
                 f"no answer to request {'0' * 32} was left in the vault")
    assert_error(office.cli("deputy", "approve", "0" * 32, "--yes"), 2,
                 f"no request {'0' * 32} in this vault")
    assert_error(office.cli("leader", "request", "export", doc), 2, "needs no approval here")
    assert_error(office.cli("leader", "reclassify", doc, "--level", "C",
                            "--approver-identity", "x"), 2, "no such option")


def test_approve_asks_for_confirmation_on_a_terminal(office: Office, tmp_path: Path) -> None:
    doc = seal(office, "leader")
    request = ask(office, doc)
    r = office.cli("deputy", "approve", request)  # no terminal
    assert_error(r, 2, "will not approve without confirmation")
    assert "deputy" in r.stderr and "why approval is needed:" in r.stderr
    argv = [VAULT, "--vault", office.location, "--identity", str(office.files["deputy"]),
            "approve", request]
    status, transcript, typed = with_tty(argv, ["n"])
    assert status == 2 and typed == 1 and b"nothing signed: not confirmed" in transcript
    status, transcript, typed = with_tty(argv, ["y"])
    assert status == 0 and typed == 1, transcript
    assert b"Approve this request? [y/N]" in transcript
    assert b"leader asks to declassify document " + doc.encode() in transcript
    ok(office.cli("leader", "declassify", doc, "--request", request))


def test_approvals_lists_what_waits_for_me(office: Office) -> None:
    doc = seal(office, "leader")
    request = ask(office, doc)
    r = office.cli("deputy", "approvals")
    assert r.exit_code == 0 and r.stderr == ""
    header, row = r.stdout.splitlines()
    assert header.split() == ["ID", "REQUESTER", "ACTION", "DOCUMENT", "LABEL", "EXPIRES"]
    assert row.split()[:5] == [request, "leader", "declassify", doc, "SECRET//BOARD"]
    (item,) = json.loads(ok(office.cli("deputy", "approvals", "--json")))
    assert item["id"] == request and item["new_label"]["level"] == "PUBLIC"
    r = office.cli("leader", "approvals")  # not for the requester
    assert r.stdout == "" and r.stderr == "no requests wait for your approval\n"


def test_one_approval_raced_by_two_processes(office: Office) -> None:
    doc = seal(office, "leader")
    approval = approve(office, ask(office, doc))
    argv = [VAULT, "--vault", office.location, "--identity", str(office.files["leader"]),
            "declassify", doc, "--approval", str(approval)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert sorted(code for code, _ in results) == [0, 3], results
    loser = next(err for code, err in results if code == 3)
    assert b"was already performed" in loser or b"changed since the request" in loser


@pytest.mark.parametrize("command", [["request"], ["approve"], ["approvals"]])
def test_help_of_the_new_commands(command: list[str]) -> None:
    from cli_support import run

    r = run(*command, "--help")
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.startswith(f"Usage: vault {command[0]} ")
    assert {"request": "--expires DURATION", "approve": "--refuse",
            "approvals": "--json"}[command[0]] in r.stdout


@pytest.mark.parametrize("command", [["open"], ["export"], ["seal"], ["reclassify"],
                                     ["declassify"], ["shred"], ["rotate"],
                                     ["policy", "apply"]])
def test_every_action_takes_approvals(command: list[str]) -> None:
    from cli_support import run

    r = run(*command, "--help")
    assert r.exit_code == 0
    assert "--approval FILE" in r.stdout and "--request ID" in r.stdout
    assert "--justification TEXT" in r.stdout
    assert "--approver-identity" not in r.stdout


def test_an_output_file_that_cannot_be_written_is_refused_before_anything_is_asked(
        office: Office) -> None:
    # Once a request or an answer is recorded it is in force: an -o FILE
    # that cannot be written must stop the command before that, not after.
    doc = seal(office, "leader")
    nowhere = str(office.root / "no such folder" / "r.json")
    r = office.cli("leader", "request", "declassify", doc, "--justification", "published",
                   "-o", nowhere)
    assert_error(r, 2, "its folder does not exist")
    assert office.cli("deputy", "approvals", "--json").stdout.strip() == "[]"
    request = ask(office, doc)
    r = office.cli("deputy", "approve", request, "--yes", "-o", nowhere)
    assert_error(r, 2, "its folder does not exist")
    assert [item["id"] for item in json.loads(ok(office.cli("deputy", "approvals", "--json")))] \
        == [request]  # still waiting: nothing was approved
    r = office.cli("leader", "declassify", doc, "--request", request)
    assert r.exit_code == 2 and "no answer" in r.stderr, r.stderr
