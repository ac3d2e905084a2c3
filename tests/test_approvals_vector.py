"""docs/FORMAT.md §16.5, checked from the document alone: the request and
the approval it shows verify, have the digest and id it states, and are
the bytes the library signs from the same keys and members."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault import read_approval, read_request
from vault._primitives import b64, canonical_json, format_signing_key, sign
from vault._trust.approvals import ApprovalError, StatementError

DOC = (Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md").read_text()
SECTION = DOC[DOC.index("### 16.5 Test vector"):]
BLOCKS = re.findall(r"```\n(.*?)\n```", SECTION, re.S)
DIGESTS = re.findall(r"`([0-9a-f]{64})`", SECTION)


def key(name: str) -> Ed25519PrivateKey:
    seed = hashlib.sha256(b"vault approvals test vector " + name.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def files() -> tuple[bytes, bytes]:
    request, approval = BLOCKS
    signed = json.loads(approval)
    file = canonical_json({"approval": signed, "request": json.loads(request)}) + b"\n"
    return request.encode() + b"\n", file


def test_the_vector_verifies_with_the_stated_digest_and_id() -> None:
    request_file, approval_file = files()
    r = read_request(request_file)
    a = read_approval(approval_file)
    assert (r.digest, a.id) == tuple(DIGESTS)
    assert a.request == r and a.approver.name == "director" and a.decision == "approve"
    assert r.requester.signing_key == format_signing_key(key("archivist").public_key())
    assert a.approver.signing_key == format_signing_key(key("director").public_key())
    assert r.to_bytes() == request_file and a.to_bytes() == approval_file


def test_the_library_signs_the_same_bytes() -> None:
    request_file, approval_file = files()
    r, a = read_request(request_file), read_approval(approval_file)
    assert b64(sign(key("archivist"), "request", canonical_json(r.statement))) == \
        json.loads(request_file)["sig"]
    assert b64(sign(key("director"), "approval", canonical_json(a.statement))) == \
        json.loads(approval_file)["approval"]["sig"]


@pytest.mark.parametrize(("change", "error"), [
    (lambda b: b.replace(b'"shred"', b'"open"'), ApprovalError),  # signed over
    (lambda b: b.replace(b'"details":{}', b'"details":{},"x":1'), StatementError),
    (lambda b: b.replace(b'{"sig"', b'{ "sig"'), StatementError),  # not canonical
    (lambda b: b.replace(b"2025-03-10T14:00:00Z", b"2025-07-10T14:00:00Z"), StatementError),
    (lambda b: b + b" " * 70000, StatementError),
])
def test_readers_refuse_anything_else(change: object, error: type[Exception]) -> None:
    request_file, approval_file = files()
    with pytest.raises(error):
        read_request(change(request_file))  # type: ignore[operator]
    with pytest.raises((ApprovalError, StatementError)):
        read_approval(change(approval_file))  # type: ignore[operator]
