"""A minimal zip writer that copies parts byte for byte (docs/POLICY.md §11.6).

Python's zipfile can only re-compress what it copies; marking a document
must leave every part but the label's untouched, so this writer copies each
part's compressed bytes as they are in the source (local header rewritten
with the sizes, no data descriptor) and deflates only the parts it is
given anew. Zip64 is not written: containers or parts of 4 GiB are refused.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from typing import BinaryIO

from vault.errors import BadDataError

__all__ = ["ZipCopier"]

_LIMIT = 0xFFFFFFFF
_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")


def _dos_time(dt: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = dt
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


class ZipCopier:
    """Writes a zip to ``dst`` sequentially: :meth:`copy` a source part raw,
    :meth:`add` a new one, then :meth:`close` writes the directory."""

    def __init__(self, src: BinaryIO, dst: BinaryIO) -> None:
        self.src = src
        self.dst = dst
        self.pos = 0
        self.central: list[bytes] = []

    def _write(self, data: bytes) -> None:
        self.dst.write(data)
        self.pos += len(data)
        if self.pos > _LIMIT:
            raise BadDataError("the marked document would be 4 GiB or more; not supported")

    def _entry(self, info: zipfile.ZipInfo, crc: int, csize: int, usize: int) -> None:
        name = info.filename.encode("utf-8")
        flags = (info.flag_bits & ~0x08) | (0x800 if not info.filename.isascii() else 0)
        time, date = _dos_time(info.date_time)
        offset = self.pos
        self._write(_LOCAL.pack(b"PK\x03\x04", info.extract_version, flags, info.compress_type,
                                time, date, crc, csize, usize, len(name), 0) + name)
        self.central.append(_CENTRAL.pack(
            b"PK\x01\x02", (info.create_system << 8) | info.create_version, info.extract_version,
            flags, info.compress_type, time, date, crc, csize, usize, len(name), 0, 0, 0,
            info.internal_attr, info.external_attr, offset) + name)

    def copy(self, info: zipfile.ZipInfo) -> None:
        """Copy a source part's compressed bytes unchanged."""
        if max(info.compress_size, info.file_size, info.header_offset) >= _LIMIT:
            raise BadDataError(f"{info.filename} is a zip64 part; marking does not support it")
        if info.flag_bits & 0x1:
            raise BadDataError(f"{info.filename} is encrypted; it cannot be marked")
        self.src.seek(info.header_offset)
        head = self.src.read(_LOCAL.size)
        if len(head) != _LOCAL.size or head[:4] != b"PK\x03\x04":
            raise BadDataError(f"{info.filename}: bad local header in the source")
        name_len, extra_len = struct.unpack("<2H", head[26:30])
        self.src.seek(info.header_offset + _LOCAL.size + name_len + extra_len)
        self._entry(info, info.CRC, info.compress_size, info.file_size)
        left = info.compress_size
        while left:
            chunk = self.src.read(min(left, 1 << 20))
            if not chunk:
                raise BadDataError(f"{info.filename}: the source ends inside the part")
            self._write(chunk)
            left -= len(chunk)

    def add(self, name: str, data: bytes, like: zipfile.ZipInfo | None = None) -> None:
        """A new or replaced part, deflated."""
        info = zipfile.ZipInfo(name, like.date_time if like else (1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.extract_version = 20
        info.create_version = 20
        info.external_attr = like.external_attr if like else 0
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = packer.compress(data) + packer.flush()
        self._entry(info, zlib.crc32(data), len(packed), len(data))
        self._write(packed)

    def close(self) -> None:
        start = self.pos
        for entry in self.central:
            self._write(entry)
        n = len(self.central)
        if n > 0xFFFF:
            raise BadDataError("too many parts to mark")
        self._write(_END.pack(b"PK\x05\x06", 0, 0, n, n, self.pos - start, start, 0))
