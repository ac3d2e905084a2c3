"""Paths and helpers shared by the intake tests."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = Path(__file__).resolve().parent / "files"
POLICIES = ROOT / "policies"
HC_ALL = "9fbde396-1a24-4c79-8edf-9254a0f35055"
CONF_ALL = "e0b4c6a8-2f1d-4e3b-a5c7-8d9f0b1c2d3e"


def raw_pdf(objs: dict[int, bytes]) -> bytes:
    """A PDF of exactly these objects (number -> body), with a correct
    cross-reference table; object 1 is the catalogue."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref, size = len(out), max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[i] if i in offsets else
                    b"0000000000 65535 f \n" for i in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


Parts = dict[str, bytes]


def rewrite(data: bytes, change: Callable[[Parts], Parts]) -> bytes:
    """A zip package (an Office file) with its parts as ``change`` makes them."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, part in change({i.filename: src.read(i) for i in src.infolist()}).items():
            z.writestr(name, part)
    return out.getvalue()
