"""Small payloads in memory: the same STREAM as :mod:`vault.age._stream`.

docs/FORMAT.md §4. A payload of at most one block (256 KiB of plaintext)
is sealed or opened in one buffer, without the rings and their threads:
setting up the rings (about 1 MB of buffers) cost more than sealing a
100 KB document (docs/PERFORMANCE.md §4.5). The chunk rules are the
stream's own code (``seal_last`` and ``_Opener``, over one slot of the
caller's buffer), and so are the errors and what is released before one:
every chunk that verified, in order, then the error.
"""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault.age._blockio import Prefixed, Ring, Sink, Writable, fill, write_all
from vault.age._stream import (
    _BLOCK,
    _SEALED_BLOCK,
    CHUNK_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    _Opener,
    _payload_aead,
    seal_last,
)
from vault.errors import PayloadError

__all__ = ["LIMIT", "SEALED_LIMIT", "open_small", "read_small", "remaining", "seal_small"]

LIMIT = _BLOCK  # plaintext bytes sealed in memory
SEALED_LIMIT = _SEALED_BLOCK  # payload bytes after the nonce opened in memory


def seal_small(data: bytes | bytearray | memoryview, file_key: bytes) -> bytearray:
    """The whole payload of ``data`` (at most :data:`LIMIT` bytes): the
    nonce, then every sealed chunk."""
    view = memoryview(data).cast("B")
    if len(view) > LIMIT:
        raise ValueError("seal_small takes at most one block")
    nonce = os.urandom(NONCE_SIZE)
    chunks = max(1, -(-len(view) // CHUNK_SIZE))
    out = bytearray(NONCE_SIZE + len(view) + chunks * TAG_SIZE)
    out[:NONCE_SIZE] = nonce
    seal_last(_payload_aead(file_key, nonce).encrypt_into, bytearray(12), 0, view,
              memoryview(out)[NONCE_SIZE:])
    return out


def remaining(src: BinaryIO) -> int | None:
    """Bytes left in ``src`` if it can tell without reading: a regular
    file's size or a memory buffer's."""
    try:
        if isinstance(src, io.BytesIO):
            return max(0, src.getbuffer().nbytes - src.tell())
        st = os.fstat(src.fileno())
        return max(0, st.st_size - src.tell()) if stat.S_ISREG(st.st_mode) else None
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def read_small(src: BinaryIO, size: int) -> tuple[bytearray, BinaryIO | None]:
    """Everything left in ``src``, which said it holds ``size`` bytes: the
    bytes, and None -- or, if it grew meanwhile, what was read and a stream
    that reads it again followed by the rest."""
    buf = bytearray(size + 1)  # one byte more: a source that grew is seen
    got = fill(src, memoryview(buf), 0)
    if got <= size:
        del buf[got:]
        return buf, None
    return buf, io.BufferedReader(Prefixed(bytes(buf), src))


def open_small(payload: bytearray, aead: ChaCha20Poly1305, dst: Writable,
               plaintext_sink: Sink | None) -> None:
    """Open the sealed chunks in ``payload`` (everything after the nonce)
    into ``dst``: the verified plaintext, then the error if any. The
    stream's own opener, over one slot of this buffer."""
    plain = bytearray(len(payload))
    opener = _Opener(aead, Ring(1, len(payload), payload), Ring(1, len(plain), plain))
    done, final, error = opener.open(0, len(payload), 0)
    if error is None and not final:
        error = PayloadError("payload ends without a final chunk")
    if done:
        released = memoryview(plain)[:done]
        write_all(dst, released)
        if plaintext_sink is not None:
            plaintext_sink(released)
    if error is not None:
        raise error
