"""inspect() on real files: labels, content in every part, encodings,
budgets, streams; and the issue's exact scenario under the office policy."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from intake_support import CONF_ALL, FILES, HC_ALL, POLICIES

from vault.intake import Budget, ContentRule, classify_for_seal, inspect
from vault.intake._scan import WINDOW
from vault.policy import load_policy


@pytest.mark.parametrize(("name", "kind", "label", "source", "rules"), [
    ("highly-confidential.docx", "word", HC_ALL, "docProps/custom.xml", []),
    ("labelinfo.xlsx", "excel", CONF_ALL, "docMetadata/LabelInfo.xml", []),
    ("confidential.pptx", "powerpoint", CONF_ALL, "docProps/custom.xml", []),
    ("macro.docm", "word", "d2e1f0a9-b8c7-4d6e-9f5a-4b3c2d1e0f9a", "docProps/custom.xml", []),
    ("labelled.pdf", "pdf", HC_ALL, "pdf:info", ["iban"]),
    ("board-minutes.txt", "text", None, None, ["payment-card"]),
    ("card-in-header.docx", "word", None, None, ["payment-card"]),
    ("iban-cell.xlsx", "excel", None, None, ["iban"]),
    ("plain.docx", "word", None, None, []),
])
def test_sample_files(name: str, kind: str, label: str | None, source: str | None,
                      rules: list[str]) -> None:
    result = inspect(FILES / name)
    assert (result.status, result.kind) == ("complete", kind)
    found = result.office_label
    assert (found and found.id, found and found.source) == (label, source)
    assert list(result.matched_rules) == rules
    if label == HC_ALL:
        assert found is not None and found.name == "Highly Confidential\\All Employees"
        assert found.enabled and found.method == "Privileged"
        assert found.site_id == "3b1e6a2c-7d4f-4c9a-9b8e-5f2d1a0c6e47"


def test_where_matches_are() -> None:
    header = inspect(FILES / "card-in-header.docx")
    assert [(m.part, m.offset) for m in header.matches] == [("word/header1.xml", 5)]
    notes = inspect(FILES / "notes.pptx", rules=[ContentRule("m", phrases=("board minutes",))])
    assert [m.part for m in notes.matches] == ["ppt/notesSlides/notesSlide1.xml"]
    assert "ppt/slides/slide1.xml" in notes.parts


@pytest.mark.parametrize("name", ["utf16.txt", "latin1.txt"])
def test_text_encodings(name: str) -> None:
    result = inspect(FILES / name, rules=[ContentRule("m", phrases=("board minutes",))])
    assert result.matched_rules == ("m",)


def test_keywords_are_case_insensitive_whole_words_nfkc() -> None:
    rules = [ContentRule("m", phrases=("board minutes",))]
    for text, hits in [("Board  Minutes", 1), ("BOARD\nMINUTES", 1), ("boardminutes", 0),
                       ("keyboard minutes", 0), ("ＢＯＡＲＤ ＭＩＮＵＴＥＳ", 1),
                       ("board minutes2", 0)]:
        assert inspect(io.BytesIO(text.encode()), rules=rules).counts["m"] == hits, text


def test_regex_rules_see_one_line_at_a_time() -> None:
    rules = [ContentRule("banner", regex=r"^TOP SECRET//")]
    text = b"intro\nTOP SECRET//SI\nnot TOP SECRET//X\n"
    assert [m.offset for m in inspect(io.BytesIO(text), rules=rules).matches] == [6]
    with pytest.raises(ValueError, match="varying length"):
        inspect(io.BytesIO(b"x"), rules=[ContentRule("bad", regex=r"(a+)+$")])


def test_a_match_across_the_scan_window_is_found_once() -> None:
    for cut in range(WINDOW - 1100, WINDOW + 30, 7):
        text = "x" * cut + " 4111 1111 1111 1111 " + "y" * 70_000
        result = inspect(io.BytesIO(text.encode()))
        assert [m.offset for m in result.matches] == [cut + 1], cut


def test_the_budget_cuts_inspection_short_and_says_so() -> None:
    text = b"a" * 5000 + b" 4111 1111 1111 1111"
    result = inspect(io.BytesIO(text), budget=Budget(max_part_chars=1000))
    assert result.status == "truncated" and result.cause == "budget"
    assert "1000 characters" in (result.reason or "")
    assert result.matches == () and result.chars == 1000
    assert inspect(io.BytesIO(text)).status == "complete"


def test_streams_that_cannot_seek_are_spooled() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self.data.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    data = (FILES / "highly-confidential.docx").read_bytes()
    result = inspect(Pipe(data))  # type: ignore[arg-type]
    assert result.office_label is not None and result.office_label.id == HC_ALL


def test_the_file_name_is_never_trusted_for_the_kind(tmp_path: Path) -> None:
    disguised = tmp_path / "notes.txt"
    disguised.write_bytes((FILES / "highly-confidential.docx").read_bytes())
    assert inspect(disguised, filename="notes.txt").kind == "word"


# -- the scenario, under the shipped office policy ----------------------------


def test_a_highly_confidential_docx_is_no_lower_than_its_mapping() -> None:
    policy = load_policy(POLICIES / "office.yaml", template=True)
    result = inspect(FILES / "highly-confidential.docx", rules=policy.intake.content_rules())
    outcome = classify_for_seal(policy, result, None, actor="leader")
    mapped = policy.intake.mapping_for(result.office_labels[0])
    assert mapped is not None
    assert outcome.floor is not None and outcome.label is not None
    assert not policy.below_floor(outcome.label, mapped.label)
    assert policy.format_label(outcome.label) == "SECRET//STAFF"
    assert outcome.allowed and outcome.rule_ids == (f"office-label:{HC_ALL}",)
    # Silently sealing it at the default is what no longer happens:
    default = policy.make_label(actor="leader")
    quietly = classify_for_seal(policy, result, default, actor="leader")
    assert not quietly.allowed and quietly.below_floor
    assert quietly.decision is not None and quietly.decision.rule_ids == ["builtin:justification"]
    clerk = classify_for_seal(policy, result, default, actor="clerk")
    assert clerk.decision is not None and clerk.decision.rule_ids == ["builtin:floor"]


def test_board_minutes_with_a_card_are_no_lower_than_their_floor() -> None:
    policy = load_policy(POLICIES / "office.yaml", template=True)
    result = inspect(FILES / "board-minutes.txt", rules=policy.intake.content_rules())
    outcome = classify_for_seal(policy, result, None, actor="clerk")
    assert sorted(outcome.rule_ids) == ["board-minutes", "card-numbers"]
    assert outcome.label is not None and outcome.floor is not None
    for rid in outcome.rule_ids:
        rule = policy.intake.floor_rule(rid)
        assert rule is not None and not policy.below_floor(outcome.label, rule.label)
    assert policy.format_label(outcome.floor) == "CONFIDENTIAL//BOARD/FINANCE//PERSONAL-DATA"
    assert outcome.allowed and outcome.proposed
    assert outcome.audit_fields() == {
        "intake": "complete", "intake_rules": ["board-minutes", "card-numbers"],
        "floor": {"level": "CONFIDENTIAL", "compartments": ["BOARD", "FINANCE"],
                  "caveats": ["PERSONAL-DATA"]}, "below_floor": False}


def test_an_uninspectable_file_needs_a_label_under_require_label() -> None:
    policy = load_policy(POLICIES / "office.yaml", template=True)
    result = inspect(io.BytesIO(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600))
    outcome = classify_for_seal(policy, result, None, actor="clerk")
    assert (outcome.label, outcome.allowed, outcome.rule_ids) == \
        (None, False, ("intake:uninspectable",))
    given = policy.make_label(level="CONFIDENTIAL", compartments=["STAFF"])
    assert classify_for_seal(policy, result, given, actor="clerk").allowed
    tlp = load_policy(POLICIES / "tlp2.yaml", template=True)  # uninspectable: {floor: AMBER}
    floor = classify_for_seal(tlp, result, None, actor="analyst")
    assert floor.floor is not None and floor.floor.level == "AMBER"


_TYPES = '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'


def _package(types: str, parts: dict[str, str]) -> bytes:
    """An OOXML package: ``[Content_Types].xml`` holding ``types`` (its
    Default and Override elements), and ``parts`` by name."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", f"{_TYPES}{types}</Types>")
        for name, text in parts.items():
            z.writestr(name, text)
    return out.getvalue()


def test_a_text_part_under_another_name_is_read() -> None:
    # An application finds a package's parts by their relationships and
    # content types: a body (or sheet, or slide) may live under any name,
    # beside a decoy under the usual one. What the content types declare a
    # text part is read too.
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'

    def part(text: str) -> str:
        return (f'<w:document {w}><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body>'
                '</w:document>')

    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    data = _package(f'<Override PartName="/WORD/Body.xml" ContentType="{main}"/>',
                    {"word/body.xml": part("the board minutes of March"),
                     "word/document.xml": part("lunch menu")})
    rules = [ContentRule("m", phrases=("board minutes",))]
    result = inspect(io.BytesIO(data), rules=rules)
    assert result.counts["m"] == 1 and result.status == "complete", result


def test_a_text_part_typed_by_its_extension_is_read() -> None:
    # The same body typed by a <Default Extension="bin"> instead of an
    # Override: only Overrides were read, so the board minutes behind a
    # decoy were sealed at the default label.
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    data = _package('<Default Extension="xml" ContentType="application/xml"/>'
                    f'<Default Extension="BIN" ContentType="{main}"/>',
                    {"word/body.bin": f'<w:document {w}><w:body><w:p><w:r><w:t>the board '
                                      'minutes of March</w:t></w:r></w:p></w:body></w:document>',
                     "word/document.xml": f"<w:document {w}/>"})
    rules = [ContentRule("m", phrases=("board minutes",))]
    result = inspect(io.BytesIO(data), rules=rules)
    assert result.counts["m"] == 1 and result.status == "complete", result


def test_a_file_read_only_in_part_is_sealed_as_uninspectable() -> None:
    # A file padded (or made slow) so that the budget ran out before its
    # markings was "truncated", and what was found so far stood: no floor,
    # sealed at the default label.
    from vault.intake import Budget

    policy = load_policy(POLICIES / "office.yaml", template=True)
    text = b"lunch menu\n" * 2000 + b"board minutes, card 4111 1111 1111 1111\n"
    result = inspect(io.BytesIO(text), budget=Budget(max_chars=1000))
    assert result.status == "truncated" and not result.matched_rules
    outcome = classify_for_seal(policy, result, None, actor="clerk")
    assert (outcome.label, outcome.allowed, outcome.rule_ids) == \
        (None, False, ("intake:uninspectable",))
    assert "could not be inspected whole" in outcome.reasons[0]


def test_a_part_under_its_usual_name_is_read_as_that_name_says() -> None:
    # A sheet declared with the shared strings' content type is still read
    # as a sheet: its cell values too, which a shared-strings reading skips.
    import zipfile

    s = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    shared = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml",
                   '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{shared}"/>'
                   '</Types>')
        z.writestr("xl/workbook.xml", f"<workbook {s}/>")
        z.writestr("xl/worksheets/sheet1.xml",
                   f"<worksheet {s}><sheetData><row><c><v>778899</v></c></row></sheetData>"
                   "</worksheet>")
    rules = [ContentRule("m", phrases=("778899",))]
    assert inspect(io.BytesIO(out.getvalue()), rules=rules).counts["m"] == 1
