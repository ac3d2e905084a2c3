"""Writing a new document: payload first, header last (docs/DESIGN.md §6.2).

The label commits to the payload's SHA-256 and length and the metadata
holds the plaintext's size -- known only once the whole plaintext has been
read -- while the payload depends on the file key alone. So the plaintext
is read once: the payload is encrypted and hashed as it is written (the
payload sink of :func:`vault.age.encrypt_payload`, hashing in a thread of
its own past the first MiB, overlapping the cipher and the writes), and the
header is written last --

* into a seekable output, in a gap left at its front. The gap's length is
  known in advance: the digests have a fixed length, the metadata is padded
  to a multiple of 256 bytes, and for a source whose size is known (a
  seekable one) the sizes are too. If the source changed size meanwhile so
  much that the lengths differ, the document is refused;
* otherwise (a stream that cannot seek, on either side) after spooling the
  payload to an anonymous temporary file -- ciphertext only, plaintext never
  touches the disk -- which is then copied after the header.

A small source (up to ``SMALL`` bytes, its size known) is read whole and
its payload encrypted into memory, so that its header is made once: the
label is signed once per document, not a second time to measure the gap.
A source that grew meanwhile is refused, as one whose header length changed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from types import EllipsisType
from typing import Any, BinaryIO

from vault.age import Header, PayloadDigest, encrypt_payload
from vault.errors import UsageError

__all__ = ["HeaderFor", "payload_size", "size_hint", "write_rewrapped", "write_sealed"]

# header_for(plaintext size, payload SHA-256 hex, payload size) -> the header
HeaderFor = Callable[[int, str, int], Header]
_PLACEHOLDER = "0" * 64  # the length of a SHA-256 in hex
_NONCE, _CHUNK, _TAG = 16, 64 * 1024, 16
# Sources up to one block (vault.age._small.LIMIT) are sealed in memory,
# header made once.
SMALL = 256 << 10


def payload_size(plaintext: int) -> int:
    """Bytes of the age payload for ``plaintext`` bytes (docs/FORMAT.md §4)."""
    return _NONCE + plaintext + _TAG * max(1, -(-plaintext // _CHUNK))


def _plaintext_size(payload: int) -> int:
    chunks = max(1, -(-(payload - _NONCE) // (_CHUNK + _TAG)))
    return payload - _NONCE - _TAG * chunks


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def size_hint(f: BinaryIO) -> int | None:
    """Bytes between the position of ``f`` and its end, if it can tell."""
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


def write_sealed(src: BinaryIO, out: BinaryIO, file_key: bytes, header_for: HeaderFor,
                 name: str | None = None, *, size: int | EllipsisType | None = ...
                 ) -> tuple[Header, int]:
    """Write to ``out`` the age file whose payload is everything in ``src``
    under ``file_key`` and whose header is ``header_for(...)``; returns the
    header and the plaintext size. ``size``: what :func:`size_hint` said of
    ``src`` just before, if the caller asked it."""
    if size is ...:
        size = size_hint(src)
    if size is not None and size <= SMALL:
        return _write_small(src, size, out, file_key, header_for, name)
    if size is not None and _seekable(out):
        start = out.tell()
        gap = len(header_for(size, _PLACEHOLDER, payload_size(size)).encode())
        out.seek(start + gap)
        digest = PayloadDigest()
        encrypt_payload(src, out, file_key, payload_sink=digest)
        plain = _plaintext_size(digest.size)
        header = header_for(plain, digest.hexdigest(), digest.size)
        data = header.encode()
        if len(data) != gap:
            raise UsageError(f"{name or 'the input'} changed while it was being sealed",
                             hint="seal it again once it is complete")
        end = out.tell()
        out.seek(start)
        out.write(data)
        out.seek(end)
        return header, plain
    with tempfile.TemporaryFile() as spool:  # ciphertext only
        digest = PayloadDigest()
        encrypt_payload(src, spool, file_key, payload_sink=digest)
        plain = _plaintext_size(digest.size)
        header = header_for(plain, digest.hexdigest(), digest.size)
        out.write(header.encode())
        spool.seek(0)
        shutil.copyfileobj(spool, out, 1 << 20)
    return header, plain


def _write_small(src: BinaryIO, size: int, out: BinaryIO, file_key: bytes,
                 header_for: HeaderFor, name: str | None) -> tuple[Header, int]:
    data = _read_up_to(src, size + 1)  # one byte more: a source that grew is seen
    if len(data) > size:
        raise UsageError(f"{name or 'the input'} changed while it was being sealed",
                         hint="seal it again once it is complete")
    from vault.age._small import seal_small  # not loaded by a command sealing one large file

    sealed = seal_small(data, file_key)
    header = header_for(len(data), hashlib.sha256(sealed).hexdigest(), len(sealed))
    out.write(header.encode())
    out.write(sealed)
    return header, len(data)


def _read_up_to(src: BinaryIO, limit: int) -> bytes:
    parts = []
    while limit > 0:
        chunk = src.read(limit)
        if not chunk:
            break
        parts.append(chunk)
        limit -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def write_rewrapped(payload: BinaryIO, out: BinaryIO, header: Header,
                    content: dict[str, Any] | None = None) -> None:
    """A document again, with a new header and its payload copied byte for
    byte (``payload`` positioned at the payload's start): nothing is
    re-encrypted (docs/FORMAT.md §8). ``content``: what the label commits
    to (§11.4); a stored payload of any other size or SHA-256 (chunks the
    PostgreSQL role swapped or cut, a declared size it lowered, a file cut
    short) is refused before the copy is committed, so that no other copy
    replaces the document for good."""
    out.write(header.encode())
    size = content.get("size") if content else None
    digest, copied = hashlib.sha256(), 0
    while chunk := payload.read(1 << 20):
        out.write(chunk)
        digest.update(chunk)
        copied += len(chunk)
        if isinstance(size, int) and copied > size:
            break
    if content is None:
        return
    if copied != size or not hmac.compare_digest(digest.hexdigest(),
                                                 str(content.get("payload"))):
        from vault.errors import IntegrityError

        raise IntegrityError("its stored payload is not the one its label commits to "
                             f"({'its size differs' if copied != size else 'its SHA-256 differs'})",
                             hint="restore it from a backup; treat it as an incident")
