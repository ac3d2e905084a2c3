"""Hashing a large folder log with a helper process (docs/AUDIT.md §11.1).

Hashing every line is the verifier's cost, and Python hashes one short line
at a time under the GIL; so the second half of a large log is hashed by a
helper process meanwhile. The helper runs the standard library only (it
starts in milliseconds) and returns, for its half, the root of every
complete block of 2^14 leaves and the subtrees that a size asked for needs
inside a block; this process folds them into the tree of the first half
exactly as :class:`~vault.audit._tree.TreeBuilder` folds its own blocks.

Where the halves meet comes from the derived index -- a hint: the first half
must hold exactly the lines the index says, or the helper's result is
thrown away and everything is hashed here. Detection never depends on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from vault.audit._folder import FolderStorage
from vault.audit._hashing import LEAF_PREFIX, _sha256
from vault.audit._storage import LogEnd, LogStorage
from vault.audit._tree import TreeBuilder, fold, split_range

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit._treepass import Consumer, TreeResult

__all__ = ["parallel_tree"]

BLOCK_LEVEL = 14  # TreeBuilder's blocks
MIN_BYTES = 64 << 20  # below this a helper costs more than it saves

# argv: fd start stop keep wanted...: hash the lines of fd[start:stop]
# (numbered from 0), note the offset of line ``keep``, print one JSON object.
# The log is passed open: a name could lead to another file by then.
_HELPER = r"""
import hashlib, json, os, sys
fd, start, stop, keep = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
wanted = sorted(int(x) for x in sys.argv[5:])
sha, B, L = hashlib.sha256, 1 << 14, 14

def levels(leaves):
    out, cur = [leaves], leaves
    while len(cur) > 1:
        cur = [sha(b"\x01" + a + b).digest() for a, b in zip(cur[0::2], cur[1::2])]
        out.append(cur)
    return out

def parts(lv, n):
    got, lo = [], 0
    while lo < n:
        level = (lo & -lo).bit_length() - 1 if lo else n.bit_length()
        while lo + (1 << level) > n:
            level -= 1
        got.append(lv[level][lo >> level].hex())
        lo += 1 << level
    return got

out = {"blocks": [], "at": {}, "final": [], "count": 0, "keep_at": None, "last": None}
w, pending, carry, pos = 0, [], b"", start

def block(leaves, base):
    global w
    lv = levels(leaves)
    while w < len(wanted) and wanted[w] <= base + len(leaves):
        out["at"][str(wanted[w])] = parts(lv, wanted[w] - base)
        w += 1
    return lv

while pos < stop:
    chunk = os.pread(fd, min(1 << 22, stop - pos), pos)
    if not chunk:
        break
    first_at = pos - len(carry)
    lines = (carry + chunk).split(b"\n")
    carry = lines.pop()
    pos += len(chunk)
    if out["keep_at"] is None and out["count"] + len(lines) > keep:
        k = keep - out["count"]
        out["keep_at"] = first_at + sum(len(x) + 1 for x in lines[:k])
    pending += [sha(b"\x00" + x).digest() for x in lines]
    out["count"] += len(lines)
    if pending:
        out["last"] = pending[-1].hex()
    while len(pending) >= B:
        out["blocks"].append(block(pending[:B], len(out["blocks"]) * B)[L][0].hex())
        pending = pending[B:]
if pending:
    out["final"] = parts(block(pending, len(out["blocks"]) * B), len(pending))
out["end"], out["tail"] = pos - len(carry), len(carry)
json.dump(out, sys.stdout)
"""


def _split_point(storage: FolderStorage, stop: int) -> tuple[int, int] | None:
    """(first line, its offset) of the second half, from the derived index."""
    try:
        index = os.open(storage.paths.index, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        lines = os.fstat(index).st_size // 8
        first = (lines // 2) >> BLOCK_LEVEL << BLOCK_LEVEL  # a whole number of blocks
        raw = os.pread(index, 8, (first - 1) * 8) if first else b""
    finally:
        os.close(index)
    offset = int.from_bytes(raw, "big") if len(raw) == 8 else 0
    return (first, offset) if 0 < offset < stop else None


def parallel_tree(storage: LogStorage, end: LogEnd, wanted: list[int],
                  consumer: Consumer | None, keep_from: int) -> TreeResult | None:
    """The tree pass with a helper for the second half; None when it does not
    apply (small log, one core, no usable index) or did not work out."""
    if not isinstance(storage, FolderStorage) or end.offset is None or end.offset < MIN_BYTES:
        return None
    split = _split_point(storage, end.offset) if (os.cpu_count() or 1) > 1 else None
    if split is None or (consumer is not None and keep_from < split[0]):
        return None
    first, offset = split
    keep = keep_from - first if consumer is not None else 1 << 62
    log_fd = os.open(storage.paths.log, os.O_RDONLY | os.O_CLOEXEC)
    try:
        result = _with_helper(storage, log_fd, end, wanted, consumer, keep_from, first,
                              offset, keep)
        # The halves were read through their own opens of the name: both
        # must have been this file (a writer may rename another in place).
        same = os.fstat(log_fd)
        now = os.stat(storage.paths.log)
        if result is not None and (same.st_dev, same.st_ino) != (now.st_dev, now.st_ino):
            return None
        return result
    finally:
        os.close(log_fd)


def _with_helper(storage: FolderStorage, log_fd: int, end: LogEnd, wanted: list[int],
                 consumer: Consumer | None, keep_from: int, first: int, offset: int,
                 keep: int) -> TreeResult | None:
    assert end.offset is not None
    helper = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _HELPER, str(log_fd), str(offset),
         str(end.offset), str(keep), *(str(s - first) for s in wanted if s > first)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, pass_fds=(log_fd,))
    try:
        builder = TreeBuilder([s for s in wanted if s <= first])
        seq = pos = 0
        for block in storage.read(0, 0, LogEnd(None, offset)):
            builder.add([_sha256(LEAF_PREFIX + line).digest() for line in block])
            seq += len(block)
            pos += sum(map(len, block)) + len(block)
        out, _ = helper.communicate()
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
    if helper.returncode != 0 or seq != first or pos != offset:
        return None  # the index was no help: hash everything here
    half = json.loads(out)
    result = _join(builder, half, first, wanted)
    if consumer is not None and half["keep_at"] is not None:
        line_no = keep_from
        for block in storage.read(line_no, half["keep_at"], LogEnd(None, result.end)):
            consumer(line_no, block, [_sha256(LEAF_PREFIX + x).digest() for x in block])
            line_no += len(block)
    if result.end < end.offset:
        result.tail = os.pread(log_fd, end.offset - result.end, result.end)
    return result


def _join(builder: TreeBuilder, half: dict[str, Any], first: int,
          wanted: list[int]) -> TreeResult:
    """Fold the helper's blocks into the first half's tree, in order."""
    from vault.audit._treepass import TreeResult

    builder.finish()
    rng = builder.range()
    roots = dict(builder.roots)
    at = {int(k) + first: [bytes.fromhex(h) for h in v] for k, v in half["at"].items()}
    blocks = [bytes.fromhex(h) for h in half["blocks"]]
    later = sorted(s for s in wanted if s > first)
    w = 0
    for j, root in enumerate([*blocks, None]):
        limit = first + ((j + 1) << BLOCK_LEVEL)
        while w < len(later) and later[w] <= limit:
            if later[w] in at:  # else beyond the log: the caller sees the size
                roots[later[w]] = fold([*rng.hashes, *at[later[w]]])
            w += 1
        if root is not None:
            rng.append_subtree(BLOCK_LEVEL, root)
    rest = half["count"] - (len(blocks) << BLOCK_LEVEL)
    final = [bytes.fromhex(h) for h in half["final"]]
    for (level, _), h in zip(split_range(0, rest), final, strict=True):
        rng.append_subtree(level, h)
    last = bytes.fromhex(half["last"]) if half["last"] else builder.last_leaf
    return TreeResult(first + half["count"], rng.root(), rng, last, half["end"], b"", roots)
