"""Classification at intake: ``vault.intake.inspect`` throughput against
``vault.age.encrypt`` of the same file, in the same run.

Two 50 MB files on tmpfs (/dev/shm when available): a .docx whose body is
text of random words (it compresses little, so the file is 50 MB and its
document.xml larger), and a PDF of text pages with uncompressed content
streams; and a timesheet workbook (.xlsx) of 400,000 number cells in
eight formats, dates, times, durations, money, percentages and a number
with literal text, each of which intake shows as Excel shows it
(docs/POLICY.md §11.1). Each is inspected under the office policy's content rules
(detectors, keyword phrases) with a budget large enough to read all of it,
and encrypted to one X25519 recipient, interleaved; figures are MB/s of
the file's size (10**6 bytes per second), median with min and max.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from benchmarks import Row, judge
from benchmarks._tools import MiB, shm_or_tmp

ROOT = Path(__file__).resolve().parent.parent
TARGET_MBPS = {"docx": 10.0, "pdf": 1.0, "xlsx": 10.0}  # docs/PERFORMANCE.md §3, "intake"
_CT = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
       b'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
       b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
       b'officedocument.wordprocessingml.document.main+xml"/></Types>')
_W = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'


def _words(rng: random.Random) -> list[bytes]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [("".join(rng.choice(letters) for _ in range(rng.randint(2, 10)))).encode()
            for _ in range(50_000)] + [b"4111 1111 1111 1111", b"board minutes"]


def _paragraph(rng: random.Random, words: list[bytes]) -> bytes:
    return b" ".join(rng.choice(words) for _ in range(rng.randint(20, 60)))


def make_docx(path: str, size: int) -> int:
    """A .docx of about ``size`` bytes; returns its document.xml size."""
    rng = random.Random(1)
    words = _words(rng)
    xml = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT)
        with z.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(_W)
            while os.path.getsize(path) < size:
                chunk = b"".join(b"<w:p><w:r><w:t>" + _paragraph(rng, words)
                                 + b"</w:t></w:r></w:p>" for _ in range(500))
                part.write(chunk)
                xml += len(chunk)
            part.write(b"</w:body></w:document>")
    return xml


_XLSX_FORMATS = ("yyyy-mm-dd", "h:mm:ss AM/PM", "[h]:mm", "dd mmm yyyy hh:mm",
                 "#,##0.00", "0.0%", '"Ref "0000', "General")
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _xlsx_parts(rows: int) -> dict[str, bytes]:
    rng = random.Random(3)
    codes = "".join(f'<numFmt numFmtId="{164 + i}" formatCode="{c.replace(chr(34), "&quot;")}"/>'
                    for i, c in enumerate(_XLSX_FORMATS))
    xfs = "".join(f'<xf numFmtId="{164 + i}" applyNumberFormat="1"/>'
                  for i in range(len(_XLSX_FORMATS)))
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    styles = (f'<styleSheet {ns}><numFmts count="{len(_XLSX_FORMATS)}">{codes}</numFmts>'
              f'<cellXfs count="{len(_XLSX_FORMATS) + 1}"><xf numFmtId="0"/>{xfs}</cellXfs>'
              "</styleSheet>")
    cells = []
    for r in range(1, rows + 1):
        day = 45_000 + rng.random() * 3_000
        values = (day, rng.random(), rng.random() * 9, day, rng.random() * 1e6, rng.random(),
                  rng.randrange(10_000), rng.random() * 1e4)
        cells.append(f'<row r="{r}">' + "".join(
            f'<c r="{col}{r}" s="{i + 1}"><v>{v!r}</v></c>'
            for i, (col, v) in enumerate(zip("ABCDEFGH", values, strict=True))) + "</row>")
    cells.append(f'<row r="{rows + 1}"><c r="A{rows + 1}" t="inlineStr"><is>'
                 "<t>card 4111 1111 1111 1111</t></is></c></row>")
    sheet = f"<worksheet {ns}><sheetData>{''.join(cells)}</sheetData></worksheet>"
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{main}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{main}.styles+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{main}.worksheet+xml"/>'
            "</Types>").encode(),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Type="{_REL}/officeDocument" Target="xl/workbook.xml" Id="rId1"/>'
            "</Relationships>").encode(),
        "xl/workbook.xml": (
            f'<workbook {ns} xmlns:r="{_REL}"><workbookPr/><sheets><sheet name="Hours" '
            'sheetId="1" r:id="rId1"/></sheets></workbook>').encode(),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Type="{_REL}/worksheet" Target="worksheets/sheet1.xml" Id="rId1"/>'
            f'<Relationship Type="{_REL}/styles" Target="styles.xml" Id="rId2"/>'
            "</Relationships>").encode(),
        "xl/styles.xml": styles.encode(),
        "xl/worksheets/sheet1.xml": sheet.encode(),
    }


def make_xlsx(path: str, cells: int) -> int:
    """A timesheet workbook of about ``cells`` formatted number cells; returns
    its sheet's size."""
    parts = _xlsx_parts(cells // len(_XLSX_FORMATS))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body)
    return len(parts["xl/worksheets/sheet1.xml"])


def make_pdf(path: str, size: int) -> None:
    """A PDF of text pages, content streams uncompressed, of about ``size`` bytes."""
    rng = random.Random(2)
    words = _words(rng)
    offsets: list[int] = []
    pages: list[int] = []
    with open(path, "wb") as f:
        def obj(body: bytes) -> int:
            offsets.append(f.tell())
            f.write(b"%d 0 obj\n" % len(offsets) + body + b"\nendobj\n")
            return len(offsets)

        f.write(b"%PDF-1.7\n")
        font = obj(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        pages_id = 2 + 0  # the Pages object is written last, at a known number
        offsets.append(0)  # reserve object 2
        while f.tell() < size:
            lines = [b"(" + _paragraph(rng, words)[:90] + b") Tj T*" for _ in range(60)]
            content = b"BT /F1 9 Tf 11 TL 40 800 Td " + b" ".join(lines) + b" ET"
            stream = obj(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
            pages.append(obj(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
                             b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                             % (pages_id, font, stream)))
        offsets[pages_id - 1] = f.tell()
        kids = b" ".join(b"%d 0 R" % p for p in pages)
        f.write(b"%d 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n"
                % (pages_id, kids, len(pages)))
        catalog = obj(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
        xref = f.tell()
        f.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        f.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
        f.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                % (len(offsets) + 1, catalog, xref))


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start



def _mbps(size: int, seconds: list[float]) -> tuple[str, float]:
    rates = sorted(size / s / 1e6 for s in seconds)
    med = statistics.median(rates)
    return f"{med:.1f} MB/s [{rates[0]:.1f}-{rates[-1]:.1f}]", med


def run(quick: bool) -> list[Row]:
    import vault.age as age
    from vault.intake import Budget, inspect
    from vault.policy import load_policy

    size = 2 * MiB if quick else 50 * MiB
    cells = 16_000 if quick else 400_000
    reps = 2 if quick else 3
    from benchmarks._office import filled_policy

    with tempfile.TemporaryDirectory(prefix="vault-intake-bench-") as tmp:
        policy = load_policy(filled_policy(Path(tmp) / "office.yaml"))
    rules = policy.intake.content_rules()
    budget = Budget(max_part_bytes=1 << 30, max_total_bytes=1 << 30, max_part_chars=1 << 30,
                    max_chars=1 << 30, max_seconds=600)
    recipient = age.X25519Identity.generate().recipient
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=shm_or_tmp()) as work:
        docx, pdf, xlsx, out = (os.path.join(work, n)
                                for n in ("big.docx", "big.pdf", "hours.xlsx", "out.age"))
        xml = make_docx(docx, size)
        make_pdf(pdf, size)
        sheet = make_xlsx(xlsx, cells)
        for kind, path in (("docx", docx), ("pdf", pdf), ("xlsx", xlsx)):
            file_size = os.path.getsize(path)
            ours: list[float] = []
            peer: list[float] = []
            for _ in range(reps):
                start = time.perf_counter()
                result = inspect(path, rules=rules, budget=budget)
                ours.append(time.perf_counter() - start)
                assert result.status == "complete" and result.matches, result.reason

                def encrypt(p: str = path) -> None:
                    with open(p, "rb") as src, open(out, "wb") as dst:
                        age.encrypt(src, dst, [recipient])
                peer.append(_timed(encrypt))
            ours_text, ours_med = _mbps(file_size, ours)
            peer_text, _ = _mbps(file_size, peer)
            extra = {"docx": f", {xml / 1e6:.0f} MB of XML",
                     "xlsx": f", {cells:,} formatted number cells, {sheet / 1e6:.0f} MB of XML",
                     "pdf": ""}[kind]
            rows.append(Row(
                f"classify {file_size / 1e6:.0f} MB .{kind}{extra} vs age encrypt of it",
                ours_text, peer_text,
                f"{statistics.median(peer) / statistics.median(ours):.2f}x",
                f">= {TARGET_MBPS[kind]:g} MB/s",
                judge(ours_med >= TARGET_MBPS[kind], quick)))
    return rows
