"""Classification at intake: ``vault.intake.inspect`` throughput against
``vault.age.encrypt`` of the same file, in the same run.

Two 50 MB files on tmpfs (/dev/shm when available): a .docx whose body is
text of random words (it compresses little, so the file is 50 MB and its
document.xml larger), and a PDF of text pages with uncompressed content
streams. Each is inspected under the office policy's content rules
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
TARGET_MBPS = {"docx": 10.0, "pdf": 1.0}  # docs/PERFORMANCE.md §3, "intake"
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
        docx, pdf, out = (os.path.join(work, n) for n in ("big.docx", "big.pdf", "out.age"))
        xml = make_docx(docx, size)
        make_pdf(pdf, size)
        for kind, path in (("docx", docx), ("pdf", pdf)):
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
            extra = f", {xml / 1e6:.0f} MB of XML" if kind == "docx" else ""
            rows.append(Row(
                f"classify {file_size / 1e6:.0f} MB .{kind}{extra} vs age encrypt of it",
                ours_text, peer_text,
                f"{statistics.median(peer) / statistics.median(ours):.2f}x",
                f">= {TARGET_MBPS[kind]:g} MB/s",
                judge(ours_med >= TARGET_MBPS[kind], quick)))
    return rows
