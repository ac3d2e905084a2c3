"""Fuzzing in CI: the targets of tests/fuzz/targets.py (age header, armor,
whole age files, identity files, policies, audit records, signed notes and
a vault's sealed document) fed by hypothesis with random bytes and with
mutations of valid inputs, plus inputs at the edges (limits, caps, nesting).
Each must accept an input or refuse it with its documented error class;
anything else fails here.

Short by default; ``VAULT_FUZZ_EXAMPLES=20000 python3 -m pytest
tests/test_fuzz.py`` runs longer, and tests/fuzz/run.py runs atheris
(docs/THREAT-MODEL.md §7.1). Inputs that once crashed a target are kept
below as regression cases.
"""

from __future__ import annotations

import os

import pytest
from fuzz.targets import TARGETS, Target
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("VAULT_FUZZ_EXAMPLES", "150"))


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid input with a few random edits: flips, inserts, deletions,
    truncation, a repeated slice -- the edits that reach deep branches of a
    parser, which random bytes rarely pass the first check of."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat",
                                     "byte"]))
        if edit == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "byte" and at < len(data):
            data[at] = draw(st.sampled_from(b"\n\r \t-=>{}[]\":,0\x00\xff"))
        elif edit == "insert":
            data[at:at] = draw(st.binary(max_size=16))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif edit == "truncate":
            del data[at:]
        elif edit == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 200))] * draw(st.integers(2, 5))
    return bytes(data)


def _inputs(target: Target) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), mutated(target.seeds()))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_accepts_or_refuses_precisely(name: str) -> None:
    target = TARGETS[name]
    for seed in target.seeds():  # valid inputs pass their properties
        target(seed)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_inputs(target))
    def fuzz(data: bytes) -> None:
        target(data)

    fuzz()


def _scrypt_stanza(factor: bytes) -> bytes:
    return (b"age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA " + factor + b"\n"
            + b"A" * 43 + b"\n--- " + b"A" * 43 + b"\n" + b"\0" * 40)


# Inputs at the edges the targets must hold: limits, caps and nesting that a
# random search reaches only by luck. Inputs that ever made a target fail are
# added here as they are found, with the run that found them.
EDGES: list[tuple[str, bytes]] = [
    ("age_header", b"age-encryption.org/v1\n-> x\n" + (b"A" * 64 + b"\n") * 17000),
    ("age_header", b"age-encryption.org/v1\n-> " + b"a" * (1 << 20)),
    ("age_header", b"age-encryption.org/v1\n-> x\n\n--- " + b"A" * 43 + b"\n"),
    ("age_decrypt", _scrypt_stanza(b"99")),
    ("age_decrypt", _scrypt_stanza(b"1" + b"0" * 40)),
    ("age_decrypt", _scrypt_stanza(b"05")),
    ("armor", b"-----BEGIN AGE ENCRYPTED FILE-----\n" + b"QUFB\n" * 100000),
    ("policy", b"a: " + b"[" * 100000 + b"\n"),
    ("policy", b"- " * 5000 + b"x\n"),
    ("policy", b"a: &x [*x]\n"),
    ("audit_record", b"{" * 100000),
    ("audit_record", b'{"seq": 1e999999}'),
    ("signed_note", b"a\n" * 100000 + b"\n"),
    ("identities", b"AGE-SECRET-KEY-1" + b"Q" * 100000),
    ("sealed_document", b""),
]


@pytest.mark.parametrize(("name", "data"), EDGES, ids=[f"{n}-{i}" for i, (n, _) in
                                                       enumerate(EDGES)])
def test_edge_and_regression_inputs(name: str, data: bytes) -> None:
    TARGETS[name](data)
