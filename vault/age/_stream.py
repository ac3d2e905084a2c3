"""The age v1 payload: a 16-byte nonce, then STREAM over ChaCha20-Poly1305.

docs/FORMAT.md §4. The plaintext is cut into 64 KiB chunks; chunk ``i`` is
sealed under the payload key with the 12-byte nonce ``i`` (11 bytes, big
endian) followed by ``0x01`` for the final chunk and ``0x00`` otherwise. The
final chunk is the only one that may be short and is empty only when the
whole plaintext is.

Speed and memory (docs/PERFORMANCE.md): blocks of ``_BLOCK_CHUNKS`` chunks
go through the rings of :mod:`vault.age._blockio`; this thread seals or
opens them chunk by chunk with ``encrypt_into``/``decrypt_into``, between
views of the rings made once, while other threads write the output, read
ahead and hash. Nothing is allocated per chunk and memory use is the same
for 1 KiB and 4 GiB. When encrypting, whether a chunk is the final one is
only known at end of file, so each block is read with one byte of
look-ahead. When decrypting, a short chunk is final and a full one is
final if it opens only with the final flag, as in the reference
implementation, so exactly the same plaintext is released before an error;
plaintext reaches the output and the plaintext sink only once its chunk
verified.

Sinks (``plaintext_sink``, ``payload_sink``) are called with a memoryview
of each piece in order, never two calls at once, from a background thread
past the first MiB; a view is valid only during the call. The payload sink
gets the payload exactly as stored: the nonce, then every sealed chunk --
when decrypting, every byte read after the header, including bytes after
the final chunk read before the error is raised.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault.age import _blockio
from vault.age._blockio import Consumer, Ring, Sink, Source, Writable, fill, write_all
from vault.age._format import FILE_KEY_SIZE, hkdf
from vault.errors import HeaderError, PayloadError

__all__ = ["NONCE_SIZE", "decrypt_payload", "encrypt_payload"]

NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
# 4 chunks = 256 KiB per block; 2 plaintext slots, and 2 sealed slots when
# encrypting (written and hashed), 3 when decrypting (read ahead, opened and
# hashed): at most 1.3 MB of buffers whatever the file size, all `vault
# seal` can afford under its 40 MB. Blocks of 1 MiB measured no faster, nor
# a third sealed slot when encrypting (docs/PERFORMANCE.md §4.2).
_BLOCK_CHUNKS = 4
_BLOCK = _BLOCK_CHUNKS * CHUNK_SIZE
_SEALED_BLOCK = _BLOCK_CHUNKS * SEALED_CHUNK_SIZE
_PLAIN_SLOTS = 2
_SEALED_OUT_SLOTS = 2  # encrypting
_SEALED_IN_SLOTS = 3  # decrypting

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


def _chunk_views(ring: Ring, size: int) -> list[list[memoryview]]:
    # Made once: slicing per chunk would allocate and cost time in the one
    # thread that holds the GIL for the AEAD.
    return [[ring.view(s, size, i * size) for i in range(_BLOCK_CHUNKS)] for s in range(ring.slots)]


class _Flow:
    """The rings, the reader and the consumers of one payload operation."""

    def __init__(self, src: BinaryIO, dst: Writable, in_block: int, out_block: int, *,
                 lookahead: bool, in_sinks: Sequence[Sink | None],
                 out_sinks: Sequence[Sink | None]) -> None:
        # Plaintext, then sealed chunks (encrypting), or the reverse.
        plain = _PLAIN_SLOTS
        self.input = Ring(plain if lookahead else _SEALED_IN_SLOTS,
                          in_block + 1 if lookahead else in_block)
        self.output = Ring(_SEALED_OUT_SLOTS if lookahead else plain, out_block)
        self.source = Source(src, self.input, in_block, lookahead=lookahead)
        sinks = [Consumer(self.output, s) for s in out_sinks if s is not None]
        sinks += [Consumer(self.input, s) for s in in_sinks if s is not None]
        # Without sinks, the AEAD thread does most of the work: the writer
        # reads every other block ahead when it has nothing to write. With a
        # sink, hashing takes longest, and the AEAD thread reads everything:
        # its reads release the GIL, which the hashing thread needs between
        # blocks.
        share = None if sinks else (lambda: self.source.read_ahead(share=True))
        self.consumers = [Consumer(self.output, lambda v: write_all(dst, v), share), *sinks]
        self._inline = _blockio.INLINE_BYTES
        self.advance(0)

    def advance(self, n: int) -> None:
        """Count ``n`` more bytes done; past the first MiB, go to threads."""
        if self._inline >= 0:
            self._inline -= n
            if self._inline <= 0:
                self._inline = -1
                for c in self.consumers:
                    c.start()

    def claim(self) -> int:
        """A free output slot: while the consumers still hold them all, read ahead."""
        while self._inline < 0 and not self.output.ready() and self.source.read_ahead():
            pass
        slot = self.output.claim()
        self.check()
        return slot

    def check(self) -> None:
        for c in self.consumers:
            if c.error is not None:
                raise c.error

    def __enter__(self) -> _Flow:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # Whatever happened, every block published so far is consumed: the
        # output gets all verified plaintext, a sink everything read.
        self.source.stop()
        for c in self.consumers:
            c.close()
            # A consumer and its lane hold each other: left to the cyclic
            # collector, the rings (a megabyte) would outlive the payload
            # into the sealing's last, largest step (PERFORMANCE.md §4.2).
            c.lane.consumer = None
        if exc_type is None:
            self.check()


def encrypt_payload(src: BinaryIO, dst: Writable, file_key: bytes, *,
                    plaintext_sink: Sink | None = None, payload_sink: Sink | None = None) -> None:
    """Write the payload nonce and the sealed chunks of everything in ``src``.

    ``plaintext_sink`` is given the plaintext and ``payload_sink`` the bytes
    written (nonce and sealed chunks), each in order (see the module notes).
    """
    nonce = os.urandom(NONCE_SIZE)
    aead = _payload_aead(file_key, nonce)
    write_all(dst, memoryview(nonce))
    if payload_sink is not None:
        payload_sink(memoryview(nonce))
    with _Flow(src, dst, _BLOCK, _SEALED_BLOCK, lookahead=True,
               in_sinks=[plaintext_sink], out_sinks=[payload_sink]) as flow:
        plain, sealed = _chunk_views(flow.input, CHUNK_SIZE), _chunk_views(flow.output,
                                                                           SEALED_CHUNK_SIZE)
        encrypt = aead.encrypt_into
        iv = bytearray(12)
        counter = 0
        while True:
            slot, n, last = flow.source.next()
            out = flow.claim()
            if not last:  # a full block: no chunk of it is final
                for p, s in zip(plain[slot], sealed[out], strict=True):
                    _counter.pack_into(iv, 3, counter)
                    encrypt(iv, p, None, s)
                    counter += 1
                size = _SEALED_BLOCK
            else:
                size = seal_last(encrypt, iv, counter, flow.input.view(slot, n),
                                 flow.output.view(out, flow.output.size))
            flow.source.release()
            flow.output.publish(out, size, last)
            if last:
                return
            flow.advance(n)


def seal_last(encrypt: Callable[..., object], iv: bytearray, counter: int, plain: memoryview,
              out: memoryview) -> int:
    """Seal ``plain``, the last block (possibly short; an empty input is
    one empty chunk), from chunk ``counter`` on into ``out``; returns the
    bytes written. The final chunk carries the final flag."""
    count = max(1, -(-len(plain) // CHUNK_SIZE))
    size = 0
    for i in range(count):
        piece = plain[i * CHUNK_SIZE:(i + 1) * CHUNK_SIZE]
        _set_nonce(iv, counter + i, i == count - 1)
        encrypt(iv, piece, None, out[size:size + len(piece) + TAG_SIZE])
        size += len(piece) + TAG_SIZE
    return size


def decrypt_payload(src: BinaryIO, dst: Writable, file_key: bytes, *,
                    plaintext_sink: Sink | None = None, payload_sink: Sink | None = None) -> None:
    """Read the payload nonce and chunks from ``src``, writing verified plaintext.

    Plaintext reaches ``dst`` (and ``plaintext_sink``) only after its
    chunk's tag verified; ``payload_sink`` gets every byte read (see the
    module notes). A chunk is final if it is short, or if it is full and
    only opens with the final flag; everything up to and including the
    final chunk that verified is released, then PayloadError is raised if
    anything is wrong (a bad chunk, no final chunk, data after it). A
    missing or short nonce is part of the header (HeaderError), as in the
    reference implementation.
    """
    nonce = bytearray(NONCE_SIZE)
    got = fill(src, memoryview(nonce), 0)
    if payload_sink is not None and got:
        payload_sink(memoryview(nonce)[:got])
    if got < NONCE_SIZE:
        raise HeaderError("truncated payload nonce")
    from vault.age import _small

    left = _small.remaining(src)
    if left is not None and left <= _small.SEALED_LIMIT:  # one block: in memory
        payload, grown = _small.read_small(src, left)
        if grown is None:
            if payload_sink is not None and payload:
                payload_sink(memoryview(payload))
            _small.open_small(payload, _payload_aead(file_key, bytes(nonce)), dst,
                              plaintext_sink)
            return
        src = grown  # it grew while it was read: the stream, from what was read
    with _Flow(src, dst, _SEALED_BLOCK, _BLOCK, lookahead=False,
               in_sinks=[payload_sink], out_sinks=[plaintext_sink]) as flow:
        opener = _Opener(_payload_aead(file_key, bytes(nonce)), flow.input, flow.output)
        ended = False  # the final chunk ended the previous block
        while True:
            slot, n, last = flow.source.next()
            if ended:
                flow.source.release()
                if n:
                    raise PayloadError("data after the final chunk")
                return
            out = flow.claim()
            size, final, error = opener.open(slot, n, out)
            flow.source.release()
            flow.output.publish(out, size, last)  # what verified, also before an error
            if error is not None:
                raise error
            if final and last:
                return
            if last:
                raise PayloadError("payload ends without a final chunk")
            ended = final
            flow.advance(n)


class _Opener:
    """Opens the sealed chunks of input blocks into output blocks, in order."""

    def __init__(self, aead: ChaCha20Poly1305, input_: Ring, output: Ring) -> None:
        self._decrypt = aead.decrypt_into
        self._input, self._output = input_, output
        self._sealed = _chunk_views(input_, SEALED_CHUNK_SIZE)
        self._plain = _chunk_views(output, CHUNK_SIZE)
        self._iv = bytearray(12)
        self._counter = 0

    def open(self, slot: int, n: int, out: int) -> tuple[int, bool, PayloadError | None]:
        """Open the ``n`` bytes in input ``slot`` into output ``out``.

        Returns the plaintext size, whether the final chunk was opened, and
        the error that stopped the block (the chunks before it verified).
        """
        iv, decrypt = self._iv, self._decrypt
        sealed, plain = self._sealed[slot], self._plain[out]
        done = 0
        for i, start in enumerate(range(0, n, SEALED_CHUNK_SIZE)):
            if n - start >= SEALED_CHUNK_SIZE:
                _set_nonce(iv, self._counter, False)
                try:
                    decrypt(iv, sealed[i], None, plain[i])
                    self._counter += 1
                    done += CHUNK_SIZE
                    continue
                except InvalidTag:
                    pass  # maybe a full-size final chunk
            piece = min(SEALED_CHUNK_SIZE, n - start)
            error = self._open_final(slot, start, piece, out, done)
            if error is not None:
                return done, False, error
            done += piece - TAG_SIZE
            if start + piece < n:
                return done, True, PayloadError("data after the final chunk")
            return done, True, None
        return done, False, None

    def _open_final(self, slot: int, start: int, piece: int, out: int,
                    at: int) -> PayloadError | None:
        size = piece - TAG_SIZE
        if size < 0:
            return PayloadError("truncated payload chunk")
        if size == 0 and self._counter > 0:
            return PayloadError("empty final chunk after a full one")
        _set_nonce(self._iv, self._counter, True)
        try:
            self._decrypt(self._iv, self._input.view(slot, piece, start), None,
                          self._output.view(out, size, at))
        except InvalidTag:
            return PayloadError("payload chunk failed authentication")
        self._counter += 1
        return None
