"""RFC 6962 / RFC 9162 §2.1.1 hashing with SHA-256 (docs/AUDIT.md §6).

Leaves and interior nodes are domain-separated by a one-byte prefix so that
a leaf can never be passed off as a node (second-preimage protection):

    leaf hash = SHA-256(0x00 || leaf bytes)
    node hash = SHA-256(0x01 || left || right)

The functions call :func:`hashlib.sha256` directly: the verifier hashes
millions of leaves and any extra layer shows up in its running time.
"""

from __future__ import annotations

import hashlib

__all__ = ["EMPTY_ROOT", "HASH_SIZE", "LEAF_PREFIX", "NODE_PREFIX", "leaf_hash", "node_hash"]

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

_sha256 = hashlib.sha256

#: MTH({}) = SHA-256() -- the root of the empty tree (RFC 9162 §2.1.1).
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf: ``SHA-256(0x00 || data)``."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: ``SHA-256(0x01 || left || right)``."""
    return _sha256(NODE_PREFIX + left + right).digest()
