"""RFC 6962 / RFC 9162 Merkle tree: the transparency-dev vectors, and
hypothesis against a direct transcription of the RFC's definitions."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.audit._hashing import EMPTY_ROOT, leaf_hash, node_hash
from vault.audit._proof import (
    consistency_proof,
    inclusion_proof,
    range_proof,
    root_from_inclusion,
    root_from_range,
    verify_consistency,
    verify_inclusion,
)
from vault.audit._tree import (
    CompactRange,
    HashFile,
    StoredHashes,
    TreeBuilder,
    extend_range,
    split_range,
    stored_hash_count,
    stored_hash_index,
    stored_order,
    tree_root,
)
from vault.errors import MerkleError, ProofError, RootMismatchError

VECTORS = Path(__file__).parent / "vectors" / "merkle"


def _vectors(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def test_vector_folders_are_all_found() -> None:
    # Every file counts: a glob that silently matched nothing would pass.
    assert len(_vectors("inclusion")) == 98
    assert len(_vectors("consistency")) == 98


@pytest.mark.parametrize("path", _vectors("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(path: Path) -> None:
    v: dict[str, Any] = json.loads(path.read_text())
    proof = [_b64(h) for h in v["proof"] or []]
    args = (v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), proof, _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(MerkleError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _vectors("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(path: Path) -> None:
    v: dict[str, Any] = json.loads(path.read_text())
    proof = [_b64(h) for h in v["proof"] or []]
    args = (v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(MerkleError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


# -- the RFC's definitions, transcribed literally (RFC 9162 §2.1.1-2.1.4) ----


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def _hash_file(tmp_path: Path, leaves: list[bytes]) -> tuple[HashFile, int]:
    rng = CompactRange()
    stored = b"".join(h for leaf in leaves for h in rng.append(leaf_hash(leaf)))
    (tmp_path / "hashes").write_bytes(stored)
    fd = os.open(tmp_path / "hashes", os.O_RDONLY)
    return HashFile(fd), fd


_data = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


def test_hashing_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert EMPTY_ROOT == mth([]) == tree_root([])


@settings(max_examples=60, deadline=None)
@given(_data, st.integers(min_value=1, max_value=4))
def test_roots_match_the_definition(data: list[bytes], block_level: int) -> None:
    leaves = [leaf_hash(x) for x in data]
    sizes = list(range(len(data) + 1))
    builder = TreeBuilder(sizes, block_level=block_level)
    for i in range(0, len(leaves), 3):  # fed in uneven pieces
        builder.add(leaves[i : i + 3])
    assert builder.finish() == (len(data), mth(data))
    rng = CompactRange()
    for i, h in enumerate(leaves):
        rng.append(h)
        assert rng.root() == mth(data[: i + 1]) == builder.roots[i + 1]
    assert builder.roots[0] == EMPTY_ROOT


@settings(max_examples=40, deadline=None)
@given(data=_data, pick=st.data())
def test_proofs_from_the_hash_file(tmp_path_factory: Any, data: list[bytes], pick: Any) -> None:
    hashes, fd = _hash_file(tmp_path_factory.mktemp("h"), data)
    try:
        n = len(data)
        assert hashes.leaf_count() == n
        assert hashes.count == stored_hash_count(n)
        assert hashes.leaf_hashes(n) == [leaf_hash(x) for x in data]
        # The same hashes through the generic batch reader, and built at once.
        raw = stored_order(leaf_hash(x) for x in data)
        memory = StoredHashes(lambda ix: [raw[i * 32 : i * 32 + 32] for i in ix], len(raw) // 32)
        assert memory.leaf_hashes(n) == hashes.leaf_hashes(n) and memory.leaf_count() == n
        rng = CompactRange()
        extend_range(rng, [leaf_hash(x) for x in data], block_level=2)
        assert rng.root() == mth(data)
        size = pick.draw(st.integers(1, n), label="size")
        index = pick.draw(st.integers(0, size - 1), label="index")
        assert hashes.root(size) == mth(data[:size])
        assert hashes.compact_range(size).root() == mth(data[:size])
        proof = inclusion_proof(index, size, hashes.subtree)
        assert proof == path(index, data[:size])
        verify_inclusion(index, size, leaf_hash(data[index]), proof, mth(data[:size]))
        old = pick.draw(st.integers(1, size), label="old")
        cproof = consistency_proof(old, size, hashes.subtree)
        assert cproof == subproof(old, data[:size], True)
        verify_consistency(old, size, cproof, mth(data[:old]), mth(data[:size]))
    finally:
        os.close(fd)


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.binary(max_size=4), min_size=2, max_size=40), pick=st.data())
def test_tampered_proofs_fail(data: list[bytes], pick: Any) -> None:
    size = len(data)
    index = pick.draw(st.integers(0, size - 1))
    proof = path(index, data)
    root = mth(data)
    leaf = leaf_hash(data[index])
    j = pick.draw(st.integers(0, len(proof) - 1))
    bit = pick.draw(st.integers(0, 255))
    bad = list(proof)
    bad[j] = bytes([bad[j][0] ^ (1 << (bit % 8))]) + bad[j][1:]
    with pytest.raises(RootMismatchError) as e:
        verify_inclusion(index, size, leaf, bad, root)
    assert e.value.expected == root and e.value.computed != root
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf, [*proof, proof[0]], root)
    with pytest.raises(ProofError):
        verify_inclusion(size, size, leaf, proof, root)
    wrong_index = (index + 1) % size
    if path(wrong_index, data) != proof:
        with pytest.raises(MerkleError):
            verify_inclusion(wrong_index, size, leaf, proof, root)
    old = pick.draw(st.integers(1, size - 1))
    cproof = subproof(old, data, True)
    with pytest.raises(RootMismatchError):
        verify_consistency(old, size, cproof, mth(data[:old]), mth(data[:old]))
    assert root_from_inclusion(index, size, leaf, proof) == root


def test_stored_hash_layout() -> None:
    # The order CompactRange.append writes hashes in is the documented index.
    rng = CompactRange()
    position = 0
    for n in range(300):
        stored = rng.append(leaf_hash(n.to_bytes(2, "big")))
        for level in range(len(stored)):
            assert stored_hash_index(level, n >> level) == position
            position += 1
        assert position == stored_hash_count(n + 1)


def test_split_range() -> None:
    assert split_range(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert split_range(8, 13) == [(2, 2), (0, 12)]
    assert split_range(5, 5) == []
    for hi in range(1, 70):
        spans = split_range(0, hi)
        assert sum(1 << level for level, _ in spans) == hi


def test_misuse_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        inclusion_proof(3, 3, lambda lo, hi: b"")
    with pytest.raises(ValueError):
        consistency_proof(0, 3, lambda lo, hi: b"")
    with pytest.raises(ValueError):
        CompactRange(3, [b"x" * 32])


def outside(a: int, b: int, d: list[bytes], lo: int = 0) -> list[bytes]:
    """The range proof of leaves [a, b) by its definition (AUDIT.md §10):
    MTH of each maximal subtree outside the range, left to right."""
    hi = lo + len(d)
    if hi <= a or b <= lo:
        return [mth(d)]
    if a <= lo and hi <= b:
        return []
    k = _k(len(d))
    return [*outside(a, b, d[:k], lo), *outside(a, b, d[k:], lo + k)]


@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.binary(max_size=4), min_size=1, max_size=70), pick=st.data())
def test_range_proofs(data: list[bytes], pick: Any) -> None:
    # A range proof of consecutive leaves: O(log n) hashes, leading with
    # exactly those leaves at exactly those indices to the root.
    n = len(data)
    a = pick.draw(st.integers(0, n - 1), label="a")
    b = pick.draw(st.integers(a + 1, n), label="b")
    leaves = [leaf_hash(x) for x in data]
    proof = range_proof(a, b, n, lambda lo, hi: mth(data[lo:hi]))
    assert proof == outside(a, b, data)
    assert len(proof) <= 2 * max(1, (n - 1).bit_length())
    assert root_from_range(a, n, leaves[a:b], proof) == mth(data)
    if b - a == 1:  # one leaf: its inclusion proof, root's child first
        assert sorted(proof) == sorted(path(a, data))
    wrong = [leaf_hash(b"x" + x) for x in data[a:b]]
    assert root_from_range(a, n, wrong, proof) != mth(data)
    if a + 1 < n and data[a] != data[a + 1] and b < n:  # shifted by one line
        assert root_from_range(a + 1, n, leaves[a:b], range_proof(
            a + 1, b + 1, n, lambda lo, hi: mth(data[lo:hi]))) != mth(data)
    if proof:
        with pytest.raises(ProofError, match="too short"):
            root_from_range(a, n, leaves[a:b], proof[:-1])
    with pytest.raises(ProofError, match="too long"):
        root_from_range(a, n, leaves[a:b], [*proof, leaves[0]])
    with pytest.raises(ProofError, match="no range"):
        root_from_range(a, n, [*leaves[a:], leaves[0]], proof)
