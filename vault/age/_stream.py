"""The age v1 payload: a 16-byte nonce, then STREAM over ChaCha20-Poly1305.

docs/FORMAT.md §4. The plaintext is cut into 64 KiB chunks; chunk ``i`` is
sealed under the payload key with the 12-byte nonce ``i`` (11 bytes, big
endian) followed by ``0x01`` for the final chunk and ``0x00`` otherwise. The
final chunk is the only one that may be short and is empty only when the
whole plaintext is.

Speed and memory: the plaintext is read, sealed and written in blocks of
up to ``_BLOCK_CHUNKS`` chunks (the first block is a single chunk and each
next one twice as large, so that small inputs allocate little), sealing
chunk by chunk from memoryviews with ``encrypt_into``/``decrypt_into`` into
buffers of a small pool that background threads drain
(:class:`~vault.age._blockio.Pipeline`): the output is written, and the
plaintext optionally hashed, while the next block is sealed. Nothing is
allocated per chunk and memory use is the same for 1 KiB and 4 GiB. When
encrypting, whether a chunk is the final one is only known at end of file,
so each block reads one byte of look-ahead that becomes the first byte of
the next block. When decrypting, a short chunk is final and a full one is
final if it opens only with the final flag, as in the reference
implementation, so exactly the same plaintext is released before an error;
plaintext reaches the output and the plaintext sink only once its chunk
verified.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault.age._blockio import Pipeline, Sink, Writable, fill, write_all
from vault.age._format import FILE_KEY_SIZE, hkdf
from vault.errors import HeaderError, PayloadError

__all__ = ["NONCE_SIZE", "decrypt_payload", "encrypt_payload"]

NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
# 4 chunks = 256 KiB of plaintext per block: large enough that per-call and
# per-thread-handoff overhead stays small (a few µs per block, against about
# 70 µs to seal and 150 µs to hash it), small enough that the handful of
# buffers in flight add about 1 MiB to the process, whatever the file size.
_BLOCK_CHUNKS = 4

_LAST = 1
_counter = struct.Struct(">Q")


def _payload_aead(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    if len(file_key) != FILE_KEY_SIZE:
        raise ValueError("an age file key is 16 bytes")
    return ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))


def _set_nonce(iv: bytearray, counter: int, last: bool) -> None:
    # 11-byte big-endian counter: the top three bytes stay zero because a
    # 64-bit counter already covers 2**64 chunks of 64 KiB.
    _counter.pack_into(iv, 3, counter)
    iv[11] = _LAST if last else 0


def _writer(dst: Writable) -> Sink:
    return lambda view: write_all(dst, view)


def encrypt_payload(
    src: BinaryIO, dst: Writable, file_key: bytes, *, plaintext_sink: Sink | None = None
) -> None:
    """Write the payload nonce and the sealed chunks of everything in ``src``.

    ``plaintext_sink`` (for example a hash's ``update``) is given every
    plaintext block, in order, from a background thread.
    """
    nonce = os.urandom(NONCE_SIZE)
    aead = _payload_aead(file_key, nonce)
    write_all(dst, memoryview(nonce))
    iv = bytearray(12)
    counter = 0
    block = CHUNK_SIZE  # the first block is one chunk: small inputs stay small
    carry = -1  # the look-ahead byte read with the previous block
    sinks = [plaintext_sink] if plaintext_sink is not None else []
    with Pipeline([_writer(dst)]) as output, Pipeline(sinks, depth=3) as input_:
        while True:
            plain = input_.buffer(block + 1)  # +1: look-ahead byte
            n = 0
            if carry >= 0:
                plain[0], n = carry, 1
            n = fill(src, plain[: block + 1], n)
            at_end = n <= block
            size = n if at_end else block
            input_.submit(plain, size, final=at_end)  # hashed while it is sealed
            count = max(1, -(-size // CHUNK_SIZE))  # an empty payload is one empty chunk
            sealed = output.buffer(block // CHUNK_SIZE * SEALED_CHUNK_SIZE)
            out = 0
            for i in range(count):
                piece = plain[i * CHUNK_SIZE : min(size, (i + 1) * CHUNK_SIZE)]
                _set_nonce(iv, counter, at_end and i == count - 1)
                aead.encrypt_into(iv, piece, None, sealed[out : out + len(piece) + TAG_SIZE])
                out += len(piece) + TAG_SIZE
                counter += 1
            if not at_end:
                carry = plain[block]
            output.submit(sealed, out, final=at_end)
            if at_end:
                return
            block = min(2 * block, _BLOCK_CHUNKS * CHUNK_SIZE)


def decrypt_payload(
    src: BinaryIO, dst: Writable, file_key: bytes, *, plaintext_sink: Sink | None = None
) -> None:
    """Read the payload nonce and chunks from ``src``, writing verified plaintext.

    Plaintext reaches ``dst`` (and ``plaintext_sink``, from a background
    thread) only after its chunk's tag verified. A chunk is final if it is
    short, or if it is full and only opens with the final flag; everything
    up to and including the final chunk that verified is released, then
    PayloadError is raised if anything is wrong (a bad chunk, no final
    chunk, data after it). A missing or short nonce is part of the header
    (HeaderError), as in the reference implementation.
    """
    nonce = bytearray(NONCE_SIZE)
    if fill(src, memoryview(nonce), 0) < NONCE_SIZE:
        raise HeaderError("truncated payload nonce")
    aead = _payload_aead(file_key, bytes(nonce))
    sinks = [_writer(dst)] + ([plaintext_sink] if plaintext_sink is not None else [])
    # The first block is one chunk, each next one twice as large, so that
    # small files allocate little.
    sealed = memoryview(bytearray(SEALED_CHUNK_SIZE))
    with Pipeline(sinks) as output:
        counter = 0
        while True:
            size = fill(src, sealed, 0)
            at_end = size < len(sealed)
            counter = _open_block(aead, counter, sealed[:size], output, at_end=at_end)
            if counter < 0:
                if src.read(1):
                    raise PayloadError("data after the final chunk")
                return
            if at_end:
                raise PayloadError("payload ends without a final chunk")
            if len(sealed) < _BLOCK_CHUNKS * SEALED_CHUNK_SIZE:
                sealed = memoryview(bytearray(2 * len(sealed)))


def _open_block(
    aead: ChaCha20Poly1305,
    counter: int,
    sealed: memoryview,
    output: Pipeline,
    *,
    at_end: bool,
) -> int:
    """Open the chunks in ``sealed`` and submit the plaintext.

    Returns the next chunk counter, or -1 once the final chunk was opened.
    On a failure, the chunks that verified before it are submitted first.
    """
    plain = output.buffer(-(-len(sealed) // SEALED_CHUNK_SIZE) * CHUNK_SIZE)
    iv = bytearray(12)
    out = 0
    for start in range(0, len(sealed), SEALED_CHUNK_SIZE):
        piece = sealed[start : start + SEALED_CHUNK_SIZE]
        try:
            last = _open_chunk(aead, iv, counter, piece, plain[out:])
        except PayloadError:
            output.submit(plain, out, final=True)  # release what verified before
            raise
        out += len(piece) - TAG_SIZE
        counter += 1
        if last:
            output.submit(plain, out, final=True)
            if start + len(piece) < len(sealed):
                raise PayloadError("data after the final chunk")
            return -1
    output.submit(plain, out, final=at_end)
    return counter


def _open_chunk(
    aead: ChaCha20Poly1305, iv: bytearray, counter: int, piece: memoryview, out: memoryview
) -> bool:
    """Decrypt one sealed chunk into ``out``; return whether it was the final one."""
    size = len(piece) - TAG_SIZE
    if size < 0:
        raise PayloadError("truncated payload chunk")
    if size == 0 and counter > 0:
        raise PayloadError("empty final chunk after a full one")
    if size == CHUNK_SIZE:
        _set_nonce(iv, counter, False)
        try:
            aead.decrypt_into(iv, piece, None, out[:size])
            return False
        except InvalidTag:
            pass  # maybe a full-size final chunk
    _set_nonce(iv, counter, True)
    try:
        aead.decrypt_into(iv, piece, None, out[:size])
    except InvalidTag:
        raise PayloadError("payload chunk failed authentication") from None
    return True
