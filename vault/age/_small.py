"""Small payloads in memory: the same STREAM as :mod:`vault.age._stream`.

docs/FORMAT.md §4. A payload of at most one block (256 KiB of plaintext)
is sealed or opened in one buffer, without the rings and their threads:
setting up the rings (about 1 MB of buffers) cost more than sealing a
100 KB document (docs/PERFORMANCE.md §4.3). The rules are the stream's,
chunk for chunk, and so are the errors and what is released before one:
every chunk that verified, in order, then the error.
"""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault.age._blockio import Prefixed, Sink, Writable, fill, write_all
from vault.age._stream import (
    _BLOCK,
    _SEALED_BLOCK,
    CHUNK_SIZE,
    NONCE_SIZE,
    SEALED_CHUNK_SIZE,
    TAG_SIZE,
    _payload_aead,
    _set_nonce,
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
    encrypt = _payload_aead(file_key, nonce).encrypt_into
    count = max(1, -(-len(view) // CHUNK_SIZE))  # an empty input is one empty chunk
    out = bytearray(NONCE_SIZE + len(view) + count * TAG_SIZE)
    out[:NONCE_SIZE] = nonce
    sealed = memoryview(out)
    iv = bytearray(12)
    at = NONCE_SIZE
    for i in range(count):
        piece = view[i * CHUNK_SIZE:(i + 1) * CHUNK_SIZE]
        _set_nonce(iv, i, i == count - 1)
        encrypt(iv, piece, None, sealed[at:at + len(piece) + TAG_SIZE])
        at += len(piece) + TAG_SIZE
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
    into ``dst``: the verified plaintext, then the error if any."""
    src = memoryview(payload)
    plain = bytearray(len(src))
    out = memoryview(plain)
    iv = bytearray(12)
    counter = done = at = 0
    error: PayloadError | None = None
    while True:
        rest = len(src) - at
        if rest == 0:
            error = PayloadError("payload ends without a final chunk")
            break
        if rest >= SEALED_CHUNK_SIZE:
            _set_nonce(iv, counter, False)
            try:
                aead.decrypt_into(iv, src[at:at + SEALED_CHUNK_SIZE], None,
                                  out[done:done + CHUNK_SIZE])
                counter += 1
                done += CHUNK_SIZE
                at += SEALED_CHUNK_SIZE
                continue
            except InvalidTag:
                pass  # maybe a full-size final chunk
        piece = min(SEALED_CHUNK_SIZE, rest)
        size = piece - TAG_SIZE
        if size < 0:
            error = PayloadError("truncated payload chunk")
        elif size == 0 and counter > 0:
            error = PayloadError("empty final chunk after a full one")
        else:
            _set_nonce(iv, counter, True)
            try:
                aead.decrypt_into(iv, src[at:at + piece], None, out[done:done + size])
                done += size
                if at + piece < len(src):
                    error = PayloadError("data after the final chunk")
            except InvalidTag:
                error = PayloadError("payload chunk failed authentication")
        break
    if done:
        released = out[:done]
        write_all(dst, released)
        if plaintext_sink is not None:
            plaintext_sink(released)
    if error is not None:
        raise error
