"""Writing a new document: payload first, header last (docs/DESIGN.md §6.2).

The header's metadata stanza holds the plaintext's size and SHA-256, known
only once the whole plaintext has been read, while the payload depends on
the file key alone. So the plaintext is read once: the payload is encrypted
while a background thread hashes the same blocks
(:func:`vault.age.encrypt_payload`'s plaintext sink), and the header is
written last --

* into a seekable output, in a gap left at its front. The gap's length is
  known in advance: the metadata is padded to a multiple of 256 bytes and
  its hash has a fixed length (docs/FORMAT.md §11.3), so for a source whose
  size is known (a seekable one) a header built with a placeholder hash has
  exactly the final header's length. If the source changed size meanwhile
  so much that the lengths differ, the document is refused;
* otherwise (a stream that cannot seek, on either side) after spooling the
  payload to an anonymous temporary file -- ciphertext only, plaintext never
  touches the disk -- which is then copied after the header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from typing import BinaryIO

from vault._sealed.label import Metadata
from vault.age import Header, encrypt_payload
from vault.errors import UsageError

__all__ = ["PlaintextDigest", "size_hint", "write_payload_first"]

HeaderFor = Callable[[Metadata], Header]
_PLACEHOLDER = "0" * 64  # the length of a SHA-256 in hex


class PlaintextDigest:
    """A plaintext sink (``vault.age``'s ``plaintext_sink``): SHA-256 and
    size of every block, hashed in the pipeline's own thread."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def __call__(self, block: memoryview) -> None:
        self.sha256.update(block)
        self.size += len(block)

    def metadata(self, template: Metadata) -> Metadata:
        return dataclasses.replace(template, size=self.size, sha256=self.sha256.hexdigest())


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _remaining(f: BinaryIO) -> int | None:
    """Bytes between the position of ``f`` and its end, if it can seek."""
    try:  # a regular file: its size, without seeking to its end and back
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode):
            return max(0, st.st_size - f.tell())
    except (AttributeError, OSError, ValueError):
        pass
    if not _seekable(f):
        return None
    try:
        start = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(start)
    except (OSError, ValueError):
        return None
    return max(0, end - start)


def size_hint(src: BinaryIO) -> int | None:
    """The size of what :func:`write_payload_first` will read, if known."""
    return _remaining(src)


def write_payload_first(src: BinaryIO, out: BinaryIO, file_key: bytes,
                        header_for: HeaderFor, template: Metadata) -> tuple[Metadata, Header]:
    """Write to ``out`` the age file whose payload is everything in ``src``
    under ``file_key`` and whose header is ``header_for(metadata)``, the
    metadata being ``template`` with the plaintext's size and SHA-256."""
    digest = PlaintextDigest()
    size = _remaining(src)
    if size is not None and _seekable(out):
        start = out.tell()
        gap = len(header_for(dataclasses.replace(template, size=size,
                                                 sha256=_PLACEHOLDER)).encode())
        out.seek(start + gap)
        encrypt_payload(src, out, file_key, plaintext_sink=digest)
        meta = digest.metadata(template)
        header = header_for(meta)
        data = header.encode()
        if len(data) != gap:
            raise UsageError(f"{template.filename or 'the input'} changed while it was "
                             "being sealed", hint="seal it again once it is complete")
        end = out.tell()
        out.seek(start)
        out.write(data)
        out.seek(end)
        return meta, header
    with tempfile.TemporaryFile() as spool:  # ciphertext only
        encrypt_payload(src, spool, file_key, plaintext_sink=digest)
        meta = digest.metadata(template)
        header = header_for(meta)
        out.write(header.encode())
        spool.seek(0)
        shutil.copyfileobj(spool, out, 1 << 20)
    return meta, header
