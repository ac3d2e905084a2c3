"""Strict ASCII armor (docs/FORMAT.md §7; RFC 7468 §3 strict form).

An armored file is::

    -----BEGIN AGE ENCRYPTED FILE-----
    <padded base64, 64 columns, last line 1-64 columns>
    -----END AGE ENCRYPTED FILE-----

with LF or CRLF line endings (one style per file), optional whitespace
before and after the block, and nothing else: no headers, no empty lines,
no checksums, canonical base64 only. Armor is parsed as a stream, so memory
stays bounded whatever the size of the file.
"""

from __future__ import annotations

import binascii
import io
from typing import TYPE_CHECKING, BinaryIO, cast

from vault.age._blockio import Prefixed
from vault.errors import ArmorError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["ArmorWriter", "dearmor"]

BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
END = b"-----END AGE ENCRYPTED FILE-----"
_COLUMNS = 64
_WHITESPACE = b" \t\r\n"
_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_READ_SIZE = 1 << 20
_MAX_LINE = _COLUMNS + 2  # longest legal line with its CRLF

_BEGIN, _DATA, _LAST, _TRAILER, _DONE = range(5)


class _ArmorDecoder(io.RawIOBase):
    """A readable raw stream of the bytes inside an armored age file."""

    def __init__(self, src: BinaryIO) -> None:
        super().__init__()
        self._src = src
        self._pending = bytearray()  # armored input not yet parsed
        self._out = bytearray()  # decoded bytes not yet returned
        self._out_pos = 0
        self._eof = False
        self._state = _BEGIN
        self._eol = b"\n"
        self._slow = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        while self._out_pos == len(self._out) and self._state != _DONE:
            self._out.clear()
            self._out_pos = 0
            self._step()
        n = min(len(view), len(self._out) - self._out_pos)
        view[:n] = self._out[self._out_pos : self._out_pos + n]
        self._out_pos += n
        return n

    def _more(self) -> bool:
        data = self._src.read(_READ_SIZE)
        if not data:
            self._eof = True
            return False
        self._pending += data
        return True

    def _step(self) -> None:
        if self._state == _BEGIN:
            self._begin()
        elif self._state in (_DATA, _LAST):
            if not self._slow and self._state == _DATA and self._fast_lines():
                return
            self._one_line()
        else:
            self._trailer()

    def _begin(self) -> None:
        # Whitespace before the block is allowed; anything else is not.
        stripped = self._pending.lstrip(_WHITESPACE)
        if not stripped:
            self._pending.clear()
            if not self._more():
                raise ArmorError("armored file is empty")
            return
        del self._pending[: len(self._pending) - len(stripped)]
        popped = self._line()
        if popped is None:
            return
        line, had_eol = popped
        if line.endswith(b"\r"):
            self._eol, line = b"\r\n", line[:-1]
        if line != BEGIN or not had_eol:
            raise ArmorError("armor does not start with the age BEGIN line")
        self._state = _DATA

    def _line(self) -> tuple[bytes, bool] | None:
        """Pop one line as (text without LF, had LF), or None if more input is needed."""
        end = self._pending.find(b"\n", 0, _MAX_LINE)
        if end < 0:
            if len(self._pending) >= _MAX_LINE:
                raise ArmorError("armor line too long")
            if self._more():
                return None
            if not self._pending:
                raise ArmorError("armor ends without an END line")
            line = bytes(self._pending)
            self._pending.clear()
            return line, False
        line = bytes(self._pending[:end])
        del self._pending[: end + 1]
        return line, True

    def _fast_lines(self) -> bool:
        """Decode every full line before the first '-' or '=' in one go."""
        width = _COLUMNS + len(self._eol)
        stop = len(self._pending)
        for mark in (b"-", b"="):
            found = self._pending.find(mark, 0, stop)
            if found >= 0:
                stop = found
        count = stop // width
        if count < 2:
            # Too little to bother: read more if we may, else go line by line.
            return not self._eof and stop == len(self._pending) and self._more()
        region = bytes(self._pending[: count * width])
        eol_ok = region.count(b"\n") == count and region[width - 1 :: width] == b"\n" * count
        if self._eol == b"\r\n":
            eol_ok = eol_ok and region.count(b"\r") == count
            eol_ok = eol_ok and region[_COLUMNS::width] == b"\r" * count
        try:
            if not eol_ok:
                raise ValueError
            decoded = binascii.a2b_base64(region.replace(self._eol, b""), strict_mode=True)
        except (ValueError, binascii.Error):
            self._slow = True  # something is wrong: find and name it line by line
            return False
        self._out += decoded
        del self._pending[: count * width]
        return True

    def _one_line(self) -> None:
        popped = self._line()
        if popped is None:
            return
        line, had_eol = popped
        if had_eol and self._eol == b"\r\n":
            if not line.endswith(b"\r"):
                raise ArmorError("inconsistent line endings in armor")
            line = line[:-1]
        if line == END:
            self._state = _TRAILER
            return
        if not had_eol:  # only the END line may end the file without a line ending
            raise ArmorError("armor ends without an END line")
        if self._state == _LAST:
            raise ArmorError("armor data continues after its last line")
        if not 0 < len(line) <= _COLUMNS:
            raise ArmorError("armor line has the wrong length")
        if len(line) < _COLUMNS or b"=" in line:
            self._state = _LAST
        self._out += _decode_line(line)

    def _trailer(self) -> None:
        while True:
            if self._pending.strip(_WHITESPACE):
                raise ArmorError("unexpected data after the armor END line")
            self._pending.clear()
            if not self._more():
                self._state = _DONE
                return


def _decode_line(line: bytes) -> bytes:
    body = line.rstrip(b"=")
    if len(line) % 4 or len(line) - len(body) > 2 or not _ALPHABET.issuperset(body):
        raise ArmorError("armor line is not valid padded base64")
    data = binascii.a2b_base64(line, strict_mode=True)
    if binascii.b2a_base64(data, newline=False) != line:
        raise ArmorError("armor base64 is not canonical")
    return data


def dearmor(src: BinaryIO, *, armored: bool | None = None) -> BinaryIO:
    """Return a stream of the binary age file in ``src``, removing armor.

    With ``armored=None`` the format is detected from the first byte: a
    binary age file starts with ``a``; armor starts with ``-`` or with
    whitespace. ``armored=True`` parses ``src`` as armor whatever it holds.
    Armor errors surface as ArmorError when the returned stream is read.
    """
    if armored is None:
        peek = getattr(src, "peek", None)
        if peek is not None:
            first = bytes(peek(1)[:1])
        else:
            first = src.read(1)
            src = cast(BinaryIO, io.BufferedReader(Prefixed(first, src)))
        armored = bool(first) and (first in b"-" or first in _WHITESPACE)
    if not armored:
        return src
    return cast(BinaryIO, io.BufferedReader(_ArmorDecoder(src), buffer_size=_READ_SIZE))


class ArmorWriter:
    """Armors everything written to it into ``dst``; call ``close()`` to finish.

    ``close()`` writes the END line but leaves ``dst`` open.
    """

    _LINE_BYTES = _COLUMNS // 4 * 3  # 48 bytes encode to one full line

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self._held = bytearray()
        self._closed = False
        dst.write(BEGIN + b"\n")

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError("write to a closed ArmorWriter")
        self._held += data
        full = len(self._held) // self._LINE_BYTES * self._LINE_BYTES
        if full:
            self._dst.write(_encode_lines(memoryview(self._held)[:full]))
            del self._held[:full]
        return len(data)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._held:
            self._dst.write(binascii.b2a_base64(bytes(self._held)))
        self._dst.write(END + b"\n")


def _encode_lines(data: memoryview) -> bytes:
    text = binascii.b2a_base64(data, newline=False)
    return b"".join(text[i : i + _COLUMNS] + b"\n" for i in range(0, len(text), _COLUMNS))
