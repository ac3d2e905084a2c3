"""A line break in text another person controls never starts a line of its
own on someone else's terminal (docs/DESIGN.md, "What the command line
shows").

An Office label name, a file's name, a policy's marking or rule
description reach other users' screens. Each is escaped where it is put
into a line, and text of many lines is carried as a list of lines, never
joined and split again: split, a ``\\n`` in a value printed a line its
writer chose -- ``invoice.docx: PUBLIC (proposed)`` under the real label in
``vault classify``, ``needs 0 approvals by nobody`` on the screen the second
person approves from, a ``hint:`` line of the writer's under a denial.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from approval_support import ask, seal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from office import Office, install_as_an_older_client_did, make_office

from cli._common import info, report_error
from vault._text import is_text

DOCX = Path(__file__).parent / "intake" / "files" / "highly-confidential.docx"
REAL_NAME = b"Highly Confidential\\All Employees"
FORGED_LINES = ("  floor      none&#10;invoice.docx: PUBLIC (proposed)&#10;"
                "  inspected  docx, complete")
# The lenient policy's values: a level's marking, rule descriptions.
MARKING = 'INTERNAL\n    marking: "INT\\nFORGED-LEVEL"\n'
NEED = "    description: Everything above PUBLIC names a need-to-know compartment.\n"
TWO_LEADERS = "    description: Changing or releasing a SECRET document takes a second leader.\n"
NOBODY = ("needs 0 approvals by nobody (informational only)\\n"
          "what it changes: nothing (no label is lowered)")


def _forged(*outputs: str) -> list[str]:
    """The lines of ``outputs`` a value's writer chose: any that begins
    with what they put after a line break."""
    starts = ("FORGED", "invoice.docx:", "needs 0", "what it changes: nothing",
              "  floor      none\\")
    return [line for out in outputs for line in out.split("\n")
            if line.lstrip().startswith(starts)]


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return make_office(tmp_path / "o")


def test_an_office_label_name_holding_a_line_break_is_refused_and_forges_no_line(
        office: Office, tmp_path: Path) -> None:
    # Whoever writes the file sets its label's name: "&#10;" in custom.xml.
    out = tmp_path / "invoice.docx"
    with zipfile.ZipFile(DOCX) as zi, zipfile.ZipFile(out, "w") as zo:
        for item in zi.infolist():
            data = zi.read(item.filename)
            if item.filename == "docProps/custom.xml":
                assert REAL_NAME in data
                data = data.replace(REAL_NAME, f"Highly Confidential&#10;{FORGED_LINES}".encode())
            zo.writestr(item, data)
    for extra in ([], ["--explain"]):
        r = office.cli("clerk", "classify", str(out), *extra)
        assert r.exit_code == 0 and r.stderr == "", r.stderr
        assert _forged(r.stdout) == [], r.stdout
        lines = r.stdout.split("\n")
        assert lines[0] == f"{out}: give a label (the file could not be inspected)", r.stdout
        assert lines[2] == ("  inspected  zip, uninspectable: docProps/custom.xml: a label field "
                            "holding a character that is not printable")
    r = office.cli("clerk", "classify", "--json", str(out))
    assert r.exit_code == 0 and '"ambiguous"' in r.stdout, r.stdout


def test_a_file_name_holding_a_line_break_stays_on_its_line(office: Office) -> None:
    odd = office.file("a.txt\ninvoice.docx: PUBLIC (given)", b"minutes of the meeting\n")
    for extra in ([], ["--explain"]):
        r = office.cli("clerk", "classify", str(odd), *extra)
        assert r.exit_code == 0 and r.stderr == "", r.stderr
        assert _forged(r.stdout) == [], r.stdout
        assert r.stdout.startswith(f"{odd.parent}/a.txt\\ninvoice.docx: PUBLIC (given): ")


def test_a_rule_description_holding_line_breaks_forges_no_line_on_the_approve_screen(
        office: Office) -> None:
    doc = seal(office, "leader")
    text = office.policy_text()
    assert TWO_LEADERS in text
    install_as_an_older_client_did(office, text.replace(
        TWO_LEADERS, f'    description: "Routine filing correction.\\n    {NOBODY}"\n', 1))
    request = ask(office, "leader", "reclassify", doc, level="INTERNAL", compartments=["BOARD"])
    r = office.cli("deputy", "approve", request.id, input=b"n\n")
    assert r.exit_code == 2 and r.stdout == "", r.stderr
    assert _forged(r.stderr) == [], r.stderr
    assert ("  rule secret-two-leaders: Routine filing correction.\\n    needs 0 approvals by "
            "nobody (informational only)\\nwhat it changes: nothing") in r.stderr
    assert "\n    needs 1 approval by group leaders, other than leader\n" in r.stderr
    with office.as_("deputy") as v:  # the library's text: the same lines
        assert v.explain_request(request).split("\n") == v.explain_request_lines(request)


def test_a_marking_or_description_holding_a_line_break_forges_no_hint_or_explain_line(
        office: Office) -> None:
    text = office.policy_text()
    assert NEED in text and "name: INTERNAL\n" in text
    install_as_an_older_client_did(office, text.replace("INTERNAL\n", MARKING, 1).replace(
        NEED, '    description: "Need\\nFORGED-RULE"\n', 1))
    memo = office.file("memo.txt", b"hello")

    r = office.cli("clerk", "seal", str(memo), "--level", "INTERNAL")  # need-to-know denies
    assert r.exit_code == 3 and r.stdout == "", r.stderr
    assert _forged(r.stderr) == [] and len(r.stderr.splitlines()) == 2, r.stderr
    assert r.stderr.startswith("vault: seal denied: denied by rule need-to-know: Need\\n"
                               "FORGED-RULE\nhint: see why, rule by rule: vault policy explain "
                               "--action seal --level INT\\nFORGED-LEVEL; or ask the officer")

    r = office.cli("clerk", "policy", "explain", "-a", "seal", "-l", "INTERNAL")
    assert r.exit_code == 3, r.stderr
    assert _forged(r.stdout) == [], r.stdout
    assert r.stdout.startswith("DENIED: clerk seal INT\\nFORGED-LEVEL\n"), r.stdout
    assert "  - denied by rule need-to-know: Need\\nFORGED-RULE\n" in r.stdout

    r = office.cli("clerk", "classify", str(memo))
    assert r.exit_code == 0, r.stderr
    assert _forged(r.stdout) == [] and r.stdout.startswith(f"{memo}: INT\\nFORGED-LEVEL"), r.stdout


# Every character str.splitlines() breaks at, and the terminal's others.
_BREAKS = st.sampled_from(["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
                           "\u2028", "\u2029", "\x1b[2K\r", "\u202e"])
_HOSTILE = st.lists(st.one_of(_BREAKS, st.text(max_size=8)), max_size=6).map("".join)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # read out each time
@given(values=st.lists(_HOSTILE, min_size=1, max_size=4))
def test_no_value_adds_a_line_to_a_message_hint_or_status(
        values: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # A message built from hostile values: as many lines as the program
    # wrote, whatever the values hold, and none a terminal breaks either.
    capsys.readouterr()
    report_error(f"seal denied: {'; '.join(values)}", f"see why: {values[0]}")
    info(f"one line: {values[-1]}")
    info([f"  rule {v}: {v}" for v in values])
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert len(lines) == 3 + len(values) + 1 and lines[-1] == "", err
    # Printable, or free text's spaces and joiners, shown as they are: none
    # breaks a line or drives a terminal (vault/_text.py).
    assert all(is_text(line, free=True) for line in lines), err
    assert lines[0].startswith("vault: seal denied: ") and lines[1].startswith("hint: see why")


def test_a_library_explanation_carries_its_lines_each_escaped(office: Office) -> None:
    text = office.policy_text()
    install_as_an_older_client_did(office, text.replace("INTERNAL\n", MARKING, 1))
    with office.as_("clerk") as v:
        pol = v.policy
    label = pol.make_label(level="INTERNAL", compartments=["STAFF"])
    decision = pol.decide("clerk", "seal", label)
    lines = decision.explain_lines()
    assert all(line.isprintable() for line in lines), lines
    assert decision.explain().split("\n") == lines
    assert lines[0].startswith("ALLOWED: clerk seal INT\\nFORGED-LEVEL//"), lines[0]
