"""Plain text, CSV and Markdown (docs/POLICY.md §11.1).

Decoded as it is read: UTF-8 or UTF-16 when a byte-order mark says so;
otherwise UTF-8 if the first 64 KiB are valid UTF-8 (later invalid bytes
become U+FFFD), else Latin-1, which decodes any byte. Text with NUL bytes
and no UTF-16 mark is taken for binary data and not inspected.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from vault.intake._model import Meter, Refused
from vault.intake._scan import Scanner

__all__ = ["looks_like_text", "read_text"]

SNIFF = 64 * 1024
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


def _encoding(head: bytes) -> tuple[str, int] | None:
    """(encoding, bytes of BOM to skip), or None for binary data."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom)
    if b"\x00" in head:
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "latin-1", 0
    return "utf-8", 0


def looks_like_text(head: bytes) -> bool:
    return _encoding(head) is not None


def read_text(fp: BinaryIO, scanner: Scanner, meter: Meter) -> str:
    """Scan a text file; returns the encoding used."""
    head = fp.read(SNIFF)
    found = _encoding(head)
    if found is None:
        raise Refused("unsupported", "binary data of no supported format")
    encoding, skip = found
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    scanner.start("text")
    data = head[skip:]
    while True:
        text = decoder.decode(data, final=not data)
        meter.add_bytes(len(data))
        if text and not scanner.feed(text):
            break
        if not data:
            break
        data = fp.read(SNIFF)
    scanner.end()
    return encoding
