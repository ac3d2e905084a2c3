"""SHA-256 of a payload as stored: as a sink while sealing or opening, or of a file.

A document's payload (the nonce and every sealed chunk: the bytes after the
header) can be hashed as it is written or read, with
:class:`PayloadDigest` as the ``payload_sink`` of
:func:`~vault.age.encrypt_payload` / :func:`~vault.age.decrypt_payload`,
or afterwards without any key, with :func:`hash_payload`. Both give the
same SHA-256 and size for the same bytes.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from vault.age import _blockio
from vault.age._blockio import Consumer, Ring, Source

__all__ = ["PayloadDigest", "hash_payload"]

# 4 slots of 256 KiB: reading (about 5 times faster than SHA-256) stays
# ahead of the hash, which a background thread computes over up to the
# whole ring in one call, without the GIL.
_BLOCK = 256 * 1024
_SLOTS = 4


class PayloadDigest:
    """A sink that hashes what it is given: call it with each piece in order."""

    __slots__ = ("sha256", "size")

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def __call__(self, piece: memoryview) -> None:
        self.sha256.update(piece)
        self.size += len(piece)

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


def hash_payload(src: BinaryIO) -> tuple[str, int]:
    """SHA-256 (hex) and size of everything from ``src``'s position to its end.

    For a file positioned after its header, that is the SHA-256 and size a
    ``payload_sink`` saw while the file was written. The file is read in
    this thread and hashed in another, so that both overlap.
    """
    digest = PayloadDigest()
    ring = Ring(_SLOTS, _BLOCK)
    source = Source(src, ring, _BLOCK, lookahead=False)
    hasher = Consumer(ring, digest)
    inline = _blockio.INLINE_BYTES
    if inline <= 0:
        hasher.start()
    try:
        while True:
            _, n, last = source.next()
            source.release()  # nothing to do here with the block: only the hasher reads it
            if last:
                break
            inline -= n
            if hasher.inline and inline <= 0:
                hasher.start()
    finally:
        source.stop()
        hasher.close()
    if hasher.error is not None:
        raise hasher.error
    return digest.hexdigest(), digest.size
