"""``vault demo`` runs, tells the story, and its office files are valid OOXML."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from cli_support import run, run_script

from vault_cli import _demo_files

_CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OFFICE_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"


def check_ooxml(data: bytes, main_type: str) -> dict[str, bytes]:
    """The Open Packaging Conventions rules a reader relies on."""
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.testzip() is None
    parts = {name: z.read(name) for name in z.namelist()}
    for body in parts.values():
        ElementTree.fromstring(body)  # every part is well-formed XML
    types = ElementTree.fromstring(parts["[Content_Types].xml"])
    defaults = {d.get("Extension"): d.get("ContentType") for d in types.iter(_CT + "Default")}
    overrides = {o.get("PartName"): o.get("ContentType") for o in types.iter(_CT + "Override")}
    for name in parts:
        if name == "[Content_Types].xml":
            continue
        ext = name.rsplit(".", 1)[-1]
        assert "/" + name in overrides or ext in defaults, f"{name} has no content type"
    for part in overrides:
        assert part.lstrip("/") in parts, f"content type for a missing part {part}"
    rels = ElementTree.fromstring(parts["_rels/.rels"])
    targets = {r.get("Type"): r.get("Target") for r in rels.iter(_REL + "Relationship")}
    main = targets[_OFFICE_DOC]
    assert main in parts
    assert overrides["/" + main] == main_type
    return parts


def test_docx_is_a_valid_word_package() -> None:
    data = _demo_files.docx("Board decision", ["First & foremost <ok>", "Second"])
    parts = check_ooxml(
        data, "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    )
    text = parts["word/document.xml"].decode()
    assert "First &amp; foremost &lt;ok&gt;" in text
    assert _demo_files.docx("Board decision", ["First & foremost <ok>", "Second"]) == data


def test_xlsx_is_a_valid_excel_package() -> None:
    data = _demo_files.xlsx("Budget", "2025", [["Item", "Amount"], ["Rent", 36000],
                                                ["Total", "=SUM(B2:B2)"]])
    parts = check_ooxml(
        data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    )
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    assert '<c r="B2"><v>36000</v></c>' in sheet
    assert "<f>SUM(B2:B2)</f>" in sheet
    rels = ElementTree.fromstring(parts["xl/_rels/workbook.xml.rels"])
    targets = [r.get("Target") for r in rels.iter(_REL + "Relationship")]
    assert targets == ["worksheets/sheet1.xml"]


def test_demo_policy_is_the_example_office_policy() -> None:
    # The demo ships a copy of policies/office.yaml as package data.
    from vault_cli._demo_policy import office_policy_template

    example = Path(__file__).resolve().parent.parent / "policies" / "office.yaml"
    assert office_policy_template() == example.read_text(encoding="utf-8")


def test_demo_tells_the_story(tmp_path: Path) -> None:
    folder = tmp_path / "story"
    r = run("demo", "--dir", str(folder))
    assert r.exit_code == 0, (r.stdout, r.stderr)
    out = r.stdout
    for step in ("identity new", "init", "seal", "open", "reclassify", "audit checkpoint",
                 "audit verify"):
        assert re.search(rf"\$ vault .*\b{step}\b", out), step
    assert "checkpoints: 1 verified" in out
    assert re.search(r"record signatures: \d+ verified", out)
    hashes = re.findall(r"SHA-256 of the [a-z' ]+:\s+([0-9a-f]{64})", out)
    assert len(hashes) == 2 and hashes[0] == hashes[1]
    assert "Identical." in out
    assert "(exit code 3)" in out and "(exit code 4)" in out
    assert "AGE-SECRET-KEY-1" not in out
    # The generated files are real office documents, kept with --dir.
    check_ooxml((folder / "budget-2025.xlsx").read_bytes(),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")
    check_ooxml((folder / "board-decision.docx").read_bytes(),
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml")


def test_demo_from_the_installed_script_cleans_up(tmp_path: Path) -> None:
    r = run_script("demo", env={"TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr.decode()
    assert b"Identical." in r.stdout
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    r = run("demo", "--dir", str(tmp_path))
    assert r.exit_code == 2
    assert r.stderr.startswith("vault: ")
    assert (tmp_path / "precious.txt").read_text() == "keep me"
