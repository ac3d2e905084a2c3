"""Trusted tips: what a writer knows about the log without trusting
derived data (docs/AUDIT.md §9).

A :class:`TrustedTip` describes the first ``size`` lines of a log: the
offset just past them (in the folder layout: the sum of their lengths plus
one newline each, whatever the storage), the right edge of their Merkle
tree (the compact range: one subtree hash per set bit of ``size``, largest
first) and the leaf hash of the last one. Whoever holds a tip it computed
from the lines can check that the log still starts with those lines in
O(1) and go on from there; the tree's root is ``fold(frontier)``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from vault._primitives import loads_json
from vault.audit._chain import ZERO_LEAF
from vault.audit._hashing import HASH_SIZE
from vault.audit._tree import CompactRange, fold

__all__ = ["EMPTY_TIP", "TrustedTip"]


@dataclass(frozen=True)
class TrustedTip:
    size: int
    end_offset: int
    frontier: tuple[bytes, ...]
    last_leaf: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 0 or self.end_offset < self.size:
            raise ValueError("a tip needs a size >= 0 and an end offset >= its size")
        if len(self.frontier) != self.size.bit_count():
            raise ValueError("a tip's frontier holds one hash per set bit of its size")
        if any(len(h) != HASH_SIZE for h in (*self.frontier, self.last_leaf)):
            raise ValueError("a tip's hashes are 32 bytes")
        if self.size == 0 and (self.end_offset or self.last_leaf != ZERO_LEAF):
            raise ValueError("the empty tip ends at 0 with the zero leaf")

    @property
    def root(self) -> bytes:
        """The Merkle root of the first ``size`` lines."""
        return fold(list(self.frontier))

    def range(self) -> CompactRange:
        return CompactRange(self.size, self.frontier)

    @classmethod
    def of(cls, rng: CompactRange, end_offset: int, last_leaf: bytes) -> TrustedTip:
        """The tip of lines this process just hashed (consistent by
        construction: not checked again, it is on every append's path)."""
        tip = object.__new__(cls)
        for name, value in (("size", rng.size), ("end_offset", end_offset),
                            ("frontier", tuple(rng.hashes)), ("last_leaf", last_leaf)):
            object.__setattr__(tip, name, value)
        return tip

    # -- persisting (the vault core keeps one per user) ------------------------

    def to_dict(self) -> dict[str, Any]:
        b64 = base64.b64encode
        return {"size": self.size, "end_offset": self.end_offset,
                "frontier": [b64(h).decode() for h in self.frontier],
                "last_leaf": b64(self.last_leaf).decode()}  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Any) -> TrustedTip:
        try:
            if not isinstance(d, dict) or set(d) != {"size", "end_offset", "frontier",
                                                     "last_leaf"}:
                raise ValueError
            size, end = d["size"], d["end_offset"]
            if not all(type(x) is int for x in (size, end)):
                raise ValueError
            frontier = tuple(base64.b64decode(h, validate=True) for h in d["frontier"])
            return cls(size, end, frontier, base64.b64decode(d["last_leaf"], validate=True))
        except (ValueError, TypeError, binascii.Error):
            raise ValueError("not a trusted tip") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> TrustedTip:
        try:
            return cls.from_dict(loads_json(text))
        except ValueError:  # not JSON, or an integer too long
            raise ValueError("not a trusted tip") from None


EMPTY_TIP = TrustedTip(0, 0, (), ZERO_LEAF)
