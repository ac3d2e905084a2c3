"""What a policy's text values may hold once YAML has read its escapes
(docs/POLICY.md §2.3), and what becomes of a version installed before the
reader refused them.

A double-quoted YAML escape (``\\ud800``, ``\\0``, ``\\e``, ``\\n``) is
printable text in the file that becomes a lone surrogate or a control
character in the value: the reader's check of the file's own characters
never sees it. The officer's policy name then forged lines in every user's
``vault policy show`` and sent it terminal escapes, a surrogate made it an
internal error, and an Office label name holding one broke every
``open --mark`` under its label (a surrogate) or wrote a custom.xml no
XML parser reads (NUL).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from backends import Kind
from office import Office, install_as_an_older_client_did, make_office

from vault.errors import BadDataError, PolicyLoadError
from vault.intake import mark_office
from vault.policy import Label, load_policy_text
from vault.policy._intake_model import OfficeLabelMapping

DOCX = (Path(__file__).parent / "intake" / "files" / "plain.docx").read_bytes()
FORGED = ("office, version 1 of 1 (in force)\\nsha256     0000\\ninstalled  "
          "2020-01-01T00:00:00Z by leader (audit record 0)\\n\\e]0;owned\\a\\e[8m")
GENERAL = "      name: General\n"
STAFF_ONLY = "    description: Staff only.\n"  # INTERNAL's


@pytest.fixture(scope="module")
def folder_office(tmp_path_factory: pytest.TempPathFactory) -> Office:
    return make_office(tmp_path_factory.mktemp("office"))


def _refused(text: str) -> list[str]:
    with pytest.raises(PolicyLoadError) as e:
        load_policy_text(text, "p.yaml")
    return [f"{p.line}:{p.column}: {p.message}" for p in e.value.problems]


@pytest.mark.parametrize("escape", ["\\ud800", "\\0", "\\x01", "\\e", "\\n", "\\a", "\\t",
                                    "\\x85", "\\u202e", "\\u2066", "\\u200b", "\\u00a0"])
@pytest.mark.parametrize("old, new", [
    ("name: office", 'name: "office{}"'),                      # the policy's name
    (GENERAL, '      name: "General{}"\n'),                   # an Office label name
    ("name: INTERNAL\n", 'name: INTERNAL\n    marking: "INT{}"\n'),  # a level's marking
    (STAFF_ONLY, '    description: "Staff{}"\n'),
])
def test_an_escape_the_file_writes_as_printable_text_is_refused_with_its_position(
        folder_office: Office, escape: str, old: str, new: str) -> None:
    text = folder_office.policy_text()
    assert old in text
    bad = text.replace(old, new.format(escape), 1)
    assert bad.isprintable() or "\n" in bad  # the file itself holds no control character
    if old == STAFF_ONLY and escape == "\\n":  # a description may break lines
        assert load_policy_text(bad).levels[1].description == "Staff\n"
        return
    if old == STAFF_ONLY and escape == "\\u00a0":  # free text: a no-break space
        assert load_policy_text(bad).levels[1].description == "Staff\u00a0"
        return
    line = text[:text.index(old)].count("\n") + 1 + (new.startswith("name: INTERNAL"))
    problems = _refused(bad)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{line}:") and "holds the" in problems[0], problems
    assert "expected one line of printable text" in problems[0] or "description" in problems[0]


def test_a_description_may_span_lines_and_nothing_else(folder_office: Office) -> None:
    text = folder_office.policy_text()
    ok = text.replace(STAFF_ONLY, "    description: |\n      Staff only.\n"
                      "      Ask the officer.\n", 1)
    assert load_policy_text(ok).levels[1].description == "Staff only.\nAsk the officer.\n"
    ok = text.replace(STAFF_ONLY, '    description: "Staff\\nonly."\n', 1)
    assert load_policy_text(ok).levels[1].description == "Staff\nonly."
    for escape in ("\\e", "\\t", "\\r", "\\u2028", "\\ud800"):
        problems = _refused(text.replace(STAFF_ONLY, f'    description: "a{escape}b"\n', 1))
        assert len(problems) == 1 and "expected printable text" in problems[0], problems


def test_honest_text_in_other_scripts_is_kept(folder_office: Office) -> None:
    text = folder_office.policy_text().replace(
        "name: office", 'name: "Büro – Zürich 東京 ⚖"', 1).replace(
        GENERAL, '      name: "Général"\n', 1)
    pol = load_policy_text(text)
    assert pol.name == "Büro – Zürich 東京 ⚖"
    assert any(m.name == "Général" for m in pol.intake.office_labels)


@pytest.mark.parametrize("name", ["General\x00", "General\x01", "General\ud800", "a\ufffe"])
def test_mark_office_refuses_a_name_no_xml_part_can_carry(name: str) -> None:
    mapping = OfficeLabelMapping(Label("INTERNAL"), "d2e1f0a9-b8c7-4d6e-9f5a-4b3c2d1e0f9a", name)
    out = io.BytesIO()
    with pytest.raises(BadDataError) as e:
        mark_office(io.BytesIO(DOCX), out, mapping)
    assert "cannot carry" in e.value.message and e.value.hint
    assert out.getvalue() == b""


# -- the attacks, through the command line, in both backends -----------------------------


def _assert_refused(r: object, where: str) -> None:
    assert r.exit_code == 1, r.stderr  # type: ignore[attr-defined]
    assert r.stdout == ""  # type: ignore[attr-defined]
    assert "holds the" in r.stderr and "internal error" not in r.stderr  # type: ignore
    assert f"p.yaml:{where}" in r.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize("old, new, where", [
    ("name: office", 'name: "office\\ud800"', "13:7"),
    ("name: office", f'name: "{FORGED}"', "13:7"),
    (GENERAL, '      name: "General\\ud800"\n', ""),
    (GENERAL, '      name: "General\\0\\x01"\n', ""),
])
def test_policy_check_and_apply_refuse_an_escaped_control_character(
        tmp_path: Path, backend: Kind, old: str, new: str, where: str) -> None:
    o = make_office(tmp_path / "o", backend)
    p = tmp_path / "p.yaml"
    p.write_text(o.policy_text().replace(old, new, 1), encoding="utf-8")
    _assert_refused(o.cli("officer", "policy", "check", str(p)), where)
    r = o.cli("officer", "policy", "apply", str(p))
    assert r.exit_code == 1 and r.stdout == "" and "holds the" in r.stderr, r.stderr
    assert "internal error" not in r.stderr
    r = o.cli("clerk", "policy", "show")
    assert r.exit_code == 0 and r.stderr == "" and "version 1 of 1" in r.stdout
    assert r.stdout.startswith("policy     office,"), r.stdout


# -- a version installed before the reader refused it ------------------------------------


def test_a_version_installed_before_stays_in_force_shown_escaped_until_corrected(
        tmp_path: Path, backend: Kind) -> None:
    o = make_office(tmp_path / "o", backend)
    doc = o.as_("clerk").seal(o.file("memo.docx", DOCX), level="INTERNAL",
                              compartments=["STAFF"], title="memo").id
    old = o.policy_text().replace("name: office", f'name: "{FORGED}"', 1).replace(
        GENERAL, '      name: "General\\ud800\\0"\n', 1)
    install_as_an_older_client_did(o, old)
    for machine in ("first", "again"):  # replayed, then read from this machine's state
        with o.as_("leader") as v:
            assert v.policy_version == 2, machine
            assert v.policy.name.startswith("office, version 1 of 1 (in force)\n")

    # Every user's show: one line per field, nothing raw, the officer told what to do.
    r = o.cli("clerk", "policy", "show")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 7 and lines[0].startswith("policy     office, version 1 of 1 (in "
                                                   "force)\\nsha256"), r.stdout
    assert lines[0].endswith(", version 2 of 2 (in force)")
    assert [x[:10] for x in lines[:4]] == ["policy    ", "sha256    ", "installed ", "contents  "]
    assert lines[2].endswith("by officer (audit record 4)")
    assert not any(c in r.stdout for c in "\x1b\x07\r")
    assert "policy version 2:13:7: name 'office, version 1 of 1 (in force)\\nsha256" in r.stderr
    assert "holds the line break U+000A" in r.stderr
    assert "corrected version" in r.stderr and "\x1b" not in r.stderr
    r = o.cli("clerk", "policy", "show", "--json")
    assert r.exit_code == 0 and "\\u001b]0;owned" in r.stdout

    # open --mark refuses before decrypting, for everyone, and writes nothing.
    for who in ("clerk", "leader"):
        out = tmp_path / f"{who}.docx"
        r = o.cli(who, "open", doc, "--mark", "-o", str(out))
        assert r.exit_code == 1 and r.stdout == "", r.stderr
        assert "Office label name" in r.stderr and "U+D800" in r.stderr
        assert "internal error" not in r.stderr and not out.exists()
    assert o.cli("clerk", "open", doc, "-o", str(tmp_path / "plain.docx")).exit_code == 0

    # The officer applies the corrected version; everything works again.
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(o.policy_text().replace("name: office", "name: office2", 1))
    r = o.cli("officer", "policy", "apply", str(fixed))
    assert r.exit_code == 0, r.stderr
    r = o.cli("clerk", "policy", "show")
    assert r.exit_code == 0 and r.stderr == "" and "office2, version 3 of 3" in r.stdout
    out = tmp_path / "marked.docx"
    r = o.cli("clerk", "open", doc, "--mark", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    with zipfile.ZipFile(out) as z:
        assert b"General</vt:lpwstr>" in z.read("docProps/custom.xml")


# -- a comment's characters ------------------------------------------------------------

# What an officer's comment carried to every user's terminal through 'vault
# policy show --text': an RLO, an isolate and a right-to-left mark.
COMMENT = "# note \u202eevil \u2066x\u200f\n"


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f", "\u200b", "\u00ad", "\x85",
                                  "\u2028", "\u2029"])
@pytest.mark.parametrize("where", ["comment", "value"])
def test_a_format_character_or_odd_line_break_anywhere_in_the_file_is_refused(
        folder_office: Office, char: str, where: str) -> None:
    # The printable rule was checked on values only: a comment could hold
    # anything YAML takes as printable.
    text = folder_office.policy_text()
    if where == "comment":
        bad = text.replace("\nusers:", f"\n# see {char}below\nusers:", 1)
        line = text[:text.index("\nusers:")].count("\n") + 2
        column = 7
    else:
        bad = text.replace("name: office", f"name: off{char}ice", 1)
        line, column = text[:text.index("name: office")].count("\n") + 1, 10
    problems = _refused(bad)
    assert problems[0].startswith(f"{line}:{column}: the file holds the "), problems
    assert f"U+{ord(char):04X}; expected printable text, in comments too" in problems[0]


def test_honest_comments_in_other_scripts_are_kept(folder_office: Office) -> None:
    text = folder_office.policy_text().replace(
        "\nusers:", "\n# Büro – Zürich 東京 ⚖ (révisé)\r\nusers:", 1)
    assert load_policy_text(text).name == "office"


# Free text in Persian (a ZWNJ inside a word), Hindi (a ZWJ in a conjunct),
# French ("10 000 €", a no-break space and a narrow one) and an emoji
# sequence (woman technologist, a ZWJ): a policy's descriptions and comments
# hold them.
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
HONEST_FREE = (f"{PERSIAN} \u0915\u094d\u200d\u0937 10\u00a0000\u202f\u20ac "
               "\U0001f469\u200d\U0001f4bb")


def test_a_description_or_comment_in_any_language_is_accepted_and_shown_as_written(
        tmp_path: Path, backend: Kind) -> None:
    # Refused at check and apply when free text followed the name rule:
    # a ZWNJ was an invisible format character, a no-break space a space
    # other than U+0020.
    o = make_office(tmp_path / "o", backend)
    text = o.policy_text().replace(
        STAFF_ONLY, f'    description: "{HONEST_FREE}"\n', 1).replace(
        "\nusers:", f"\n# {HONEST_FREE}\nusers:", 1).replace(
        "description: Classification policy", f"description: |\n  {HONEST_FREE}\n  {PERSIAN}\n"
        "  Classification policy", 1)
    pol = load_policy_text(text)
    assert pol.levels[1].description == HONEST_FREE
    assert pol.description is not None and pol.description.startswith(f"{HONEST_FREE}\n")
    p = tmp_path / "p.yaml"
    p.write_text(text, encoding="utf-8")
    for command in ("check", "apply"):
        r = o.cli("officer", "policy", command, str(p))
        assert r.exit_code == 0 and "holds the" not in r.stderr, (command, r.stderr)
    r = o.cli("clerk", "policy", "show", "--text")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert f"# {HONEST_FREE}\n" in r.stdout and f'"{HONEST_FREE}"' in r.stdout, r.stdout
    assert "\\u200c" not in r.stdout and "\\xa0" not in r.stdout


@pytest.mark.parametrize("char", ["\u00a0", "\u202f", "\u200c", "\u200d"])
@pytest.mark.parametrize("old, new", [
    ("name: office", 'name: "off{}ice"'),                        # the policy's name
    (GENERAL, '      name: "Gene{}ral"\n'),                      # an Office label name
    ("name: INTERNAL\n", 'name: INTERNAL\n    marking: "IN{}T"\n'),  # a marking, shown as a label
])
def test_a_name_or_marking_holding_a_space_or_joiner_free_text_holds_is_refused(
        folder_office: Office, char: str, old: str, new: str) -> None:
    # A name is a key others look up: "office" and "off\u200dice" look the same.
    problems = _refused(folder_office.policy_text().replace(old, new.format(char), 1))
    assert len(problems) == 1 and f"U+{ord(char):04X}" in problems[0], problems


def test_a_comment_s_bidi_characters_never_reach_a_terminal(
        tmp_path: Path, backend: Kind) -> None:
    o = make_office(tmp_path / "o", backend)
    bad = o.policy_text().replace("\nusers:", "\n" + COMMENT + "users:", 1)
    line = bad[:bad.index(COMMENT)].count("\n") + 1
    p = tmp_path / "p.yaml"
    p.write_text(bad, encoding="utf-8")
    for command in ("check", "apply"):
        r = o.cli("officer", "policy", command, str(p))
        assert r.exit_code == 1 and r.stdout == "", (command, r.stdout, r.stderr)
        assert f"p.yaml:{line}:8: the file holds the bidi control U+202E" in r.stderr, r.stderr
        assert command == "apply" or "remove it: it reorders" in r.stderr, r.stderr
        assert not any(c in r.stderr for c in "\u202e\u2066\u200f"), r.stderr
    # A version an older client installed stays in force; its text shows
    # each such character escaped, every printable line as it is.
    install_as_an_older_client_did(o, bad)
    r = o.cli("clerk", "policy", "show", "--text")
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    assert r.stdout == bad.replace(COMMENT, "# note \\u202eevil \\u2066x\\u200f\n"), r.stdout
    r = o.cli("clerk", "policy", "show")
    assert r.exit_code == 0 and "bidi control U+202E" in r.stderr, r.stderr
    with o.as_("clerk") as v:
        assert v.policy_text() == bad  # the exact text, from the library
