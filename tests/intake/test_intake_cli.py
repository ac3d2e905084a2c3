"""``vault classify``: exit codes, stdout and stderr checked separately."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run
from intake_support import FILES, HC_ALL, POLICIES, raw_pdf
from vault_helpers import make_office

OFFICE = str(POLICIES / "office.yaml")


def test_help() -> None:
    r = run("classify", "--help")
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.startswith("Usage: vault classify [OPTIONS] FILES...")
    for option in ("--policy", "--json", "--explain", "--user", "--level"):
        assert option in r.stdout
    listed = run("--help")
    assert "  classify    Show the label a file would be sealed with." in listed.stdout


def test_classify_shows_label_floor_and_where() -> None:
    r = run("classify", "--policy", OFFICE, str(FILES / "board-minutes.txt"),
            str(FILES / "highly-confidential.docx"))
    assert r.exit_code == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == f"{FILES / 'board-minutes.txt'}: " \
        "CONFIDENTIAL//BOARD/FINANCE/STAFF//PERSONAL-DATA (proposed)"
    assert "  floor      CONFIDENTIAL//BOARD/FINANCE//PERSONAL-DATA" in lines
    assert "  matched    card-numbers at text:43" in lines
    assert "  matched    board-minutes at text:0" in lines
    assert f"{FILES / 'highly-confidential.docx'}: SECRET//STAFF (proposed)" in lines
    assert any(line.startswith("  office     'Highly Confidential\\All Employees' " + HC_ALL)
               for line in lines)
    assert "4111" not in r.stdout and "BOARD MINUTES" not in r.stdout


def test_json_and_explain() -> None:
    r = run("classify", "--policy", OFFICE, "--json", str(FILES / "board-minutes.txt"))
    assert r.exit_code == 0 and r.stderr == ""
    doc = json.loads(r.stdout)
    file = doc["files"][0]
    assert doc["policy"]["name"] == "office"
    assert file["rule_ids"] == ["board-minutes", "card-numbers"]
    assert file["label"]["level"] == "CONFIDENTIAL" and "decision" not in file
    assert {"rule": "card-numbers", "part": "text", "offset": 43} in \
        file["inspection"]["matches"]
    e = run("classify", "--policy", OFFICE, "--explain", str(FILES / "board-minutes.txt"))
    assert e.exit_code == 0 and e.stderr == ""
    assert "floors, in policy order:" in e.stdout
    assert any(line.startswith("  MATCH card-numbers") and "1 match: text:43" in line
               for line in e.stdout.splitlines())
    assert any(line.startswith("  no    tax-ids") for line in e.stdout.splitlines())


def test_user_decision_and_exit_code() -> None:
    ok = run("classify", "--policy", OFFICE, "--user", "clerk",
             str(FILES / "board-minutes.txt"))
    assert ok.exit_code == 0 and "  seal       ALLOWED for clerk by clerks-seal" in ok.stdout
    below = run("classify", "--policy", OFFICE, "--user", "clerk", "--level", "INTERNAL",
                "--compartment", "STAFF", str(FILES / "board-minutes.txt"))
    assert below.exit_code == 3 and below.stderr == ""
    assert "  seal       DENIED for clerk by builtin:floor" in below.stdout
    justified = run("classify", "--policy", OFFICE, "--user", "leader", "--level", "INTERNAL",
                    "--compartment", "STAFF", "--justification", "a published test number",
                    "--explain", str(FILES / "board-minutes.txt"))
    assert justified.exit_code == 0
    assert "pass  builtin:floor" in justified.stdout


def test_an_uninspectable_file_is_reported_not_an_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked.docx"
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1000)
    r = run("classify", "--policy", OFFICE, str(locked))
    assert r.exit_code == 0 and r.stderr == ""
    assert r.stdout.splitlines()[0] == f"{locked}: give a label (the file could not be inspected)"
    assert "  inspected  ole, uninspectable: an OLE compound file" in r.stdout


def test_usage_and_other_errors(tmp_path: Path) -> None:
    r = run("classify", str(FILES / "plain.docx"))
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("vault: no policy given\nhint: pass --policy FILE")
    missing = run("classify", "--policy", OFFICE, str(tmp_path / "nowhere.txt"))
    assert missing.exit_code == 2 and missing.stdout == ""  # as 'vault seal' says it
    assert missing.stderr.startswith("vault: cannot read ")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\n")
    broken = run("classify", "--policy", str(bad), str(FILES / "plain.docx"))
    assert broken.exit_code == 1 and broken.stdout == ""
    assert run("classify", "--policy", OFFICE, "--compartment", "STAFF",
               str(FILES / "plain.docx")).exit_code == 2


def test_the_vaults_own_policy(tmp_path: Path) -> None:
    office = make_office(tmp_path)
    r = run("--vault", office.location, "classify", str(FILES / "highly-confidential.docx"))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0].endswith("SECRET//STAFF (proposed)")


def test_the_readme_example_is_what_classify_prints() -> None:
    readme = (POLICIES.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ vault classify ", 1)[1].split("```", 1)[0]
    command, *expected = block.rstrip("\n").splitlines()
    args = command.split()
    assert args[:2] == ["--policy", "policies/office.yaml"]
    r = run("classify", "--policy", OFFICE, str(POLICIES.parent / args[2]))
    assert r.exit_code == 0
    shown = r.stdout.replace(str(POLICIES.parent) + "/", "").splitlines()
    assert shown == expected


def test_a_file_cut_short_by_the_budget_is_not_sealed_on_what_was_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The vault's own seal decided on what a truncated inspection had found
    # so far: board minutes with a card number past the budget were sealed
    # at the default label.
    import functools
    import io

    import vault.intake
    from vault.errors import UsageError

    office = make_office(tmp_path)
    monkeypatch.setattr(vault.intake, "Budget", functools.partial(vault.intake.Budget,
                                                                  max_chars=1000))
    text = b"lunch menu\n" * 2000 + b"board minutes, card 4111 1111 1111 1111\n"
    with pytest.raises(UsageError, match="could not be inspected whole"):
        office.as_("clerk").seal(io.BytesIO(text), filename="menu.txt")
    doc = office.as_("clerk").seal(io.BytesIO(text), filename="menu.txt",
                                   level="CONFIDENTIAL", compartments=["BOARD"]).id
    assert doc


def test_a_stream_longer_than_is_inspected_is_not_sealed_on_its_head(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # From a pipe, only the first max_input_bytes were inspected, as if they
    # were all of it, and the rest sealed unseen at the default label.
    import functools
    import io

    import vault.intake
    from vault.errors import UsageError

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
            return self.data.readinto(b)

    office = make_office(tmp_path)
    monkeypatch.setattr(vault.intake, "Budget", functools.partial(vault.intake.Budget,
                                                                  max_input_bytes=4096))
    text = b"lunch menu\n" * 372 + b"board minutes, card 4111 1111 1111 1111\n"
    with pytest.raises(UsageError, match="could not be inspected whole"):
        office.as_("clerk").seal(io.BufferedReader(Pipe(text)), filename="menu.txt")


def test_text_around_a_small_pdf_is_scanned_as_text() -> None:
    # A text file with a blank one-page PDF in its first kilobyte was read
    # by the PDF reader alone: the card numbers any editor shows were not.
    import io

    from pypdf import PdfWriter

    from vault.intake import inspect
    from vault.policy import load_policy

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    pdf = io.BytesIO()
    writer.write(pdf)
    card = b"board minutes, card 4111 1111 1111 1111\n"
    policy = load_policy(POLICIES / "office.yaml", template=True)
    # ... and with a NUL byte in it, which a text reader refuses but an
    # editor shows around.
    for data in (card + pdf.getvalue() + card * 3, card + b"\x00\n" + pdf.getvalue(),
                 pdf.getvalue() + card + b"\x00"):
        result = inspect(io.BytesIO(data), rules=policy.intake.content_rules())
        assert result.kind == "pdf" and "card-numbers" in result.matched_rules, result


def test_a_pdf_after_a_few_bytes_is_read_as_before() -> None:
    # Scanning the whole file as text when "%PDF-" was not at its start
    # refused honest PDFs whose streams hold a NUL byte ("binary data"),
    # throwing away what the PDF reader found, and matched digits inside
    # the PDF that no viewer shows.
    import io

    from vault.intake import inspect
    from vault.policy import load_policy

    policy = load_policy(POLICIES / "office.yaml", template=True)
    rules = policy.intake.content_rules()
    pdf = (FILES / "labelled.pdf").read_bytes()
    digits = b"4111 1111 1111 1111\n"  # in an object no page shows
    objs = {5: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(digits), digits),
            100: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
            2: b"<< /Type /Pages /Kids [100 0 R] /Count 1 >>",
            1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    for data, prefix in ((pdf, b"\x00\r\n"), (raw_pdf(objs), b"\r\n")):
        plain = inspect(io.BytesIO(data), rules=rules)
        prefixed = inspect(io.BytesIO(prefix + data), rules=rules)
        assert prefixed.status == plain.status == "complete", prefixed
        assert prefixed.counts == plain.counts
    assert "card-numbers" not in plain.matched_rules


@pytest.mark.parametrize("declassify_on", ["2001-01-01", "P1D"])
def test_a_seal_at_the_floor_but_due_at_once_is_below_it(tmp_path: Path,
                                                        declassify_on: str) -> None:
    # The clerk sealed card numbers at exactly their floor with a
    # declassify-on already past (or a day away): no below-floor rule was
    # needed, and the leader's routine 'declassify --due' released them to
    # the outsider. Bringing the release forward lowers a label (POLICY.md
    # §6.4): under a floor it is sealing below it.
    office = make_office(tmp_path)
    src = office.file("payroll.txt", b"Payroll export\nCard: 4111 1111 1111 1111\n")
    floor = "CONFIDENTIAL//FINANCE//PERSONAL-DATA"
    r = office.cli("clerk", "seal", str(src), "--level", floor, "--declassify-on", declassify_on)
    assert r.exit_code == 3, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert "releases it sooner) is below the floor" in r.stderr, r.stderr
    # The hint's command shows the same: classify takes the declassify-on.
    assert f"--level {floor} --declassify-on {declassify_on}" in r.stderr, r.stderr
    r = office.cli("clerk", "classify", str(src), "--explain", "--user", "clerk", "--level",
                   floor, "--declassify-on", declassify_on)
    assert r.exit_code == 3 and "is below the floor" in r.stdout, (r.stdout, r.stderr)
    r = office.cli("clerk", "classify", str(src), "--user", "clerk", "--level", floor)
    assert r.exit_code == 0 and "ALLOW" in r.stdout, (r.stdout, r.stderr)
    r = office.cli("clerk", "classify", str(src), "--declassify-on", declassify_on)
    assert r.exit_code == 2 and "need --level" in r.stderr
    r = office.cli("clerk", "seal", str(src), "--level", floor)  # as the policy dates it
    assert r.exit_code == 0, r.stderr
    doc = r.stdout.strip()
    r = office.cli("leader", "declassify", "--due", "--justification", "monthly release")
    assert doc not in r.stdout
    assert office.cli("outsider", "open", doc, "-o", "-").exit_code == 3
    # With a rule for sealing below the floor, and its justification, it may.
    r = office.cli("leader", "seal", str(src), "--level", floor, "--declassify-on", declassify_on,
                   "--justification", "released with the annual report")
    assert r.exit_code == 0, r.stderr
