"""A zip container read within a budget (docs/POLICY.md §11.4).

Office files are zip containers, and a zip can lie: its directory may
declare small sizes for parts that inflate to gigabytes, hold millions of
entries, or overlap entries. So the entry count is read from the
end-of-central-directory record before the directory is parsed, declared
sizes and ratios are checked before a part is opened, and the bytes that
actually come out of the decompressor are counted as they come, per part
and for the whole container, with the ratio checked again as they come.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from typing import IO, BinaryIO
from urllib.parse import unquote

from vault.intake._model import Meter, MiB, Refused

__all__ = ["SafeZip", "part_key"]

_EOCD = b"PK\x05\x06"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def part_key(name: str) -> str:
    """The name an OPC package compares part names by: without a leading
    slash, percent-escapes decoded, ASCII letters folded to lowercase
    (ISO/IEC 29500-2 §6.2.2.3: ``docProps/Custom.xml`` is the part
    ``docProps/custom.xml``)."""
    return unquote(name.lstrip("/")).translate(_ASCII_LOWER)


_CDIR = b"PK\x01\x02"
_MAX_DIRECTORY = 16 * MiB  # a directory of 10,000 entries with names of 1,600 bytes


def _declared_entries(fp: BinaryIO, most: int) -> int | None:
    """The entry count of the end-of-central-directory record (None for
    zip64), once the directory itself is counted: ``zipfile`` parses all of
    it whatever the end record declares (a million entries behind a count
    of 3 cost 9 s and 470 MB)."""
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    tail = min(size, 22 + 65535)
    fp.seek(size - tail)
    data = fp.read(tail)
    at = data.rfind(_EOCD)
    if at < 0 or at + 22 > len(data):
        raise Refused("malformed", "not a readable zip container (no end of directory)")
    (total,) = struct.unpack("<H", data[at + 10 : at + 12])
    (length,) = struct.unpack("<I", data[at + 12 : at + 16])
    if length == 0xFFFFFFFF:  # zip64: its own record says; Office files are not
        raise Refused("unsupported", "a zip64 container (over 4 GiB or 65,535 entries)")
    _count_directory(fp, length, size - tail + at, most)
    return None if total == 0xFFFF else total


def _count_directory(fp: BinaryIO, length: int, end: int, most: int) -> None:
    """Count the central directory's records (their fixed headers only), as
    ``zipfile`` will find them, and refuse more than ``most`` before it
    builds an object per entry."""
    if length > _MAX_DIRECTORY:
        raise Refused("too-many-entries", f"the container's directory is {length} bytes; at "
                      f"most {_MAX_DIRECTORY} are inspected")
    fp.seek(max(0, end - length))  # zipfile's rule: the directory ends at the end record
    directory = fp.read(length)
    n = pos = 0
    while pos + 46 <= len(directory) and directory[pos:pos + 4] == _CDIR:
        name, extra, comment = struct.unpack_from("<HHH", directory, pos + 28)
        pos += 46 + name + extra + comment
        n += 1
        if n > most:
            raise Refused("too-many-entries", f"the container holds more than {most} "
                          "entries; not inspected")


class _Bounded(io.RawIOBase):
    """A zip part's decompressed bytes, counted against the budget as read."""

    def __init__(self, raw: IO[bytes], info: zipfile.ZipInfo, meter: Meter, limit: int) -> None:
        super().__init__()
        self.raw = raw
        self.info = info
        self.meter = meter
        self.limit = limit
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self.raw.read(len(b))
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as e:
            raise Refused("malformed", f"{self.info.filename} cannot be decompressed "
                          f"({type(e).__name__})") from None
        n = len(data)
        b[:n] = data
        self.produced += n
        name, budget = self.info.filename, self.meter.budget
        if self.produced > self.limit:
            raise Refused("too-large", f"{name} inflates past {self.limit} bytes")
        if (self.produced > MiB
                and self.produced > max(self.info.compress_size, 1) * budget.max_ratio):
            raise Refused("zip-bomb", f"{name} inflates more than {budget.max_ratio} times "
                          "its compressed size (a zip bomb)")
        self.meter.add_bytes(n)
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class SafeZip:
    """The parts of a zip container, opened one at a time within a budget."""

    def __init__(self, fp: BinaryIO, meter: Meter) -> None:
        self.meter = meter
        budget = meter.budget
        declared = _declared_entries(fp, budget.max_entries)
        if declared is not None and declared > budget.max_entries:
            raise Refused("too-many-entries", f"the container declares {declared} entries; "
                          f"at most {budget.max_entries} are inspected")
        fp.seek(0)
        try:
            self.zip = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
            raise Refused("malformed", f"not a readable zip container ({type(e).__name__})") \
                from None
        infos = self.zip.infolist()
        if len(infos) > budget.max_entries:
            raise Refused("too-many-entries", f"the container holds {len(infos)} entries; "
                          f"at most {budget.max_entries} are inspected")
        self.infos = {i.filename: i for i in infos}
        if len(self.infos) != len(infos):
            # Two parts of one name: which one an application reads is its
            # own choice, so the scanner (or marking) could be shown one and
            # the reader the other.
            raise Refused("malformed", "the container holds two parts of the same name")
        self.keys = {part_key(name): name for name in self.infos}
        if len(self.keys) != len(self.infos):
            # Office compares part names without regard to ASCII case: two
            # names that differ only so are one part named twice.
            raise Refused("malformed", "the container holds two parts whose names differ only "
                          "in case or escaping")

    def names(self) -> list[str]:
        return list(self.infos)

    def __contains__(self, name: object) -> bool:
        return name in self.infos

    def find(self, name: str) -> str | None:
        """The stored name of the part an application opens as ``name``
        (compared as :func:`part_key` says), or None."""
        return self.keys.get(part_key(name))

    def open(self, name: str, limit: int | None = None) -> io.BufferedReader:
        """A reader of part ``name``; reading past the budget raises Refused."""
        info = self.infos[name]
        budget = self.meter.budget
        limit = budget.max_part_bytes if limit is None else limit
        if info.flag_bits & 0x1:
            raise Refused("encrypted", f"{name} is encrypted inside the zip")
        if info.file_size > limit:
            raise Refused("too-large", f"{name} declares {info.file_size} bytes "
                          f"uncompressed; at most {limit} are inspected")
        if info.file_size > MiB and info.file_size > max(info.compress_size, 1) * budget.max_ratio:
            raise Refused("zip-bomb", f"{name} declares more than {budget.max_ratio} times "
                          "its compressed size (a zip bomb)")
        try:
            raw = self.zip.open(info)
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as e:
            raise Refused("malformed", f"{name} cannot be read ({type(e).__name__})") from None
        return io.BufferedReader(_Bounded(raw, info, self.meter, limit), 64 * 1024)

    def close(self) -> None:
        self.zip.close()
