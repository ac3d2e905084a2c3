"""The entry point: what kind of file this is, then read it within a budget
(docs/POLICY.md §11).

The kind is taken from the file's first bytes, never from its name: a zip
container (Office Open XML), ``%PDF-`` (PDF), an OLE compound file (a
password-protected Office document, or a legacy binary one), or text.
Every way a file can fail to be read ends as an ``uninspectable``
:class:`Inspection` naming the cause; no traceback, no quoted content.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from typing import BinaryIO

from vault.intake._model import (
    COMPLETE,
    TRUNCATED,
    UNINSPECTABLE,
    Budget,
    Inspection,
    Meter,
    MiB,
    OfficeLabel,
    Refused,
)
from vault.intake._scan import ContentRule, Scanner, builtin_rules

__all__ = ["inspect"]

_CFB = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_STREAMS = ("EncryptionInfo".encode("utf-16-le"), "EncryptedPackage".encode("utf-16-le"))
_SPOOL = 8 * 1024 * 1024


def inspect(source: str | os.PathLike[str] | BinaryIO, *, filename: str | None = None,
            budget: Budget | None = None,
            rules: Iterable[ContentRule] | None = None) -> Inspection:
    """Inspect a file for Office sensitivity labels and content rules.

    ``source`` is a path or a binary stream (read from its current position;
    a stream that cannot seek is spooled to a temporary file first).
    ``filename`` is only for messages. ``rules`` default to every built-in
    detector. Returns an :class:`Inspection`; never raises for what the file
    holds (only for an unreadable path, or a ``rules`` entry that is wrong).
    """
    budget = budget or Budget()
    scanner_rules = tuple(builtin_rules() if rules is None else rules)
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            return _inspect_stream(f, budget, scanner_rules)
    if not _seekable(source):
        with tempfile.TemporaryFile() as spool:
            copied = _spool(source, spool, budget.max_input_bytes)
            if copied is None:
                return _refused("unknown", Refused("too-large", "the file is larger than "
                                                   f"{budget.max_input_bytes} bytes"))
            spool.seek(0)
            return _inspect_stream(spool, budget, scanner_rules)
    return _inspect_stream(source, budget, scanner_rules)


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, ValueError, OSError):
        return False


def _spool(src: BinaryIO, dst: BinaryIO, limit: int) -> int | None:
    total = 0
    while chunk := src.read(_SPOOL):
        total += len(chunk)
        if total > limit:
            return None
        dst.write(chunk)
    return total


def _refused(kind: str, e: Refused, meter: Meter | None = None,
             labels: tuple[OfficeLabel, ...] = ()) -> Inspection:
    return Inspection(UNINSPECTABLE, kind, reason=e.reason, cause=e.cause, office_labels=labels,
                      bytes_read=meter.bytes if meter else 0)


def _inspect_stream(fp: BinaryIO, budget: Budget, rules: tuple[ContentRule, ...]) -> Inspection:
    start = fp.tell()
    fp.seek(0, io.SEEK_END)
    size = fp.tell() - start
    fp.seek(start)
    if start:
        fp = _Offset(fp, start)  # type: ignore[assignment]
    meter = Meter(budget)
    head = fp.read(4096)
    fp.seek(0)
    kind = _kind(head)
    if size > budget.max_input_bytes:
        return _refused(kind, Refused("too-large", f"the file is {size} bytes; at most "
                                      f"{budget.max_input_bytes} are inspected"))
    scanner = Scanner(rules, meter)
    labels: tuple[OfficeLabel, ...] = ()
    try:
        if kind == "zip":
            kind, labels = _office(fp, scanner, meter)
        elif kind == "pdf":
            from vault.intake._pdf import read_pdf

            labels = read_pdf(fp, scanner, meter)
            _around_pdf(fp, head, size, scanner, meter)
        elif kind == "ole":
            raise _ole(fp)
        else:
            from vault.intake._text import read_text

            read_text(fp, scanner, meter)
    except Refused as e:
        return _refused(kind, e, meter, labels)
    status = TRUNCATED if meter.truncated else COMPLETE
    return Inspection(status, kind, reason=meter.truncated,
                      cause="budget" if meter.truncated else None, office_labels=labels,
                      matches=tuple(scanner.matches), counts=scanner.counts,
                      parts=tuple(scanner.parts), chars=meter.chars, bytes_read=meter.bytes)


def _around_pdf(fp: BinaryIO, head: bytes, size: int, scanner: Scanner, meter: Meter) -> None:
    """Text before a PDF's header or after its last ``%%EOF``: a text file
    with a small PDF inside shows that text in any editor, and the PDF
    reader never looks at it. Scanned as text (bytes as Latin-1, NULs as
    spaces, when a text reader refuses them); the PDF itself never is (its
    binary streams would match at random)."""
    from vault.intake._text import read_text

    pieces = []
    start = head.find(b"%PDF-")
    if start > 0:
        pieces.append(head[:start])
    tail_len = min(size, MiB)
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    end = tail.rfind(b"%%EOF")
    if end < 0 and size > tail_len:
        meter.truncate("no end of the PDF in its last MiB: what follows it was not inspected")
    elif end >= 0 and tail[end + 5:].strip():
        after = size - tail_len + end + 5
        if size - after > meter.budget.max_part_chars:
            meter.truncate("text after the PDF was not inspected")
        else:
            fp.seek(after)
            pieces.append(fp.read(size - after))
    for piece in pieces:
        try:
            read_text(io.BytesIO(piece), scanner, meter)
        except Refused:  # a NUL in it: still what an editor shows, NULs aside
            scanner.start("text")
            scanner.feed(piece.replace(b"\x00", b" ").decode("latin-1"))
            scanner.end()
    fp.seek(0)


def _kind(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(_CFB):
        return "ole"
    return "text"


def _office(fp: BinaryIO, scanner: Scanner, meter: Meter) -> tuple[str, tuple[OfficeLabel, ...]]:
    from vault.intake._office import read_office
    from vault.intake._zip import SafeZip

    zf = SafeZip(fp, meter)
    try:
        return read_office(zf, scanner, meter)
    finally:
        zf.close()


def _ole(fp: BinaryIO) -> Refused:
    head = fp.read(1 << 20)
    if any(name in head for name in _ENCRYPTED_STREAMS):
        return Refused("encrypted", "a password-protected Office document (an encrypted "
                       "package in an OLE compound file)")
    return Refused("unsupported", "an OLE compound file (a legacy binary Office format); "
                   "not inspected")


class _Offset(io.RawIOBase):
    """A seekable view of a stream from ``base`` on."""

    def __init__(self, raw: BinaryIO, base: int) -> None:
        super().__init__()
        self.raw = raw
        self.base = base

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            return self.raw.seek(self.base + pos) - self.base
        return self.raw.seek(pos, whence) - self.base

    def tell(self) -> int:
        return self.raw.tell() - self.base

