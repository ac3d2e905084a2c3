"""Audit records: canonical JSON, validation, actor signatures."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from audit_support import KEYS, fields
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.audit import AuditRecord, fingerprint
from vault.audit._record import SIGNING_CONTEXT, Fragment, build_record, canonical_json
from vault.errors import AuditIntegrityError

COMMON = {"time": "2024-05-01T12:00:00.000001Z", "host": "h1", "pid": 42, "request": "r" * 32}


def _build(f: dict[str, Any], key: Ed25519PrivateKey | None = None, seq: int = 7) -> AuditRecord:
    return build_record(f, key or KEYS["alice"], seq=seq, **COMMON)  # type: ignore[arg-type]


def test_fingerprint_is_openssh_style() -> None:
    key = KEYS["alice"].public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    assert fingerprint(key) == expected and len(expected) == 50


def test_record_line_is_canonical_and_complete() -> None:
    record = _build(fields("alice", 1))
    d = json.loads(record.line)
    assert record.line == json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    assert list(d) == sorted(d)
    assert set(d) == {
        "v", "seq", "time", "actor", "action", "doc", "label", "outcome", "rules",
        "reason", "policy", "request", "host", "pid", "sig",
    }  # fmt: skip
    assert d["seq"] == 7 and d["pid"] == 42 and d["host"] == "h1"
    assert d["actor"] == {"name": "alice", "key": fingerprint(KEYS["alice"].public_key())}
    assert d["label"] == {"level": "secret", "compartments": ["ops"]}


def test_signature_covers_the_record_without_sig() -> None:
    record = _build(fields("alice", 2))
    d = json.loads(record.line)
    sig = base64.b64decode(d.pop("sig"))
    KEYS["alice"].public_key().verify(sig, SIGNING_CONTEXT + canonical_json(d))
    assert record.verify_signature(KEYS["alice"].public_key())
    assert not record.verify_signature(KEYS["bob"].public_key())
    d["outcome"] = "allowed" if d["outcome"] != "allowed" else "denied"
    forged = AuditRecord.from_dict({**d, "sig": base64.b64encode(sig).decode()})
    assert not forged.verify_signature(KEYS["alice"].public_key())


def test_utf8_and_line_separators_stay_on_one_line() -> None:
    record = _build(fields("alice", 3, reason="café \u2028 new\nline \U0001f512"))
    assert b"\n" not in record.line
    assert "café".encode() in record.line and "\u2028".encode() in record.line
    assert AuditRecord.from_line(record.line).reason == "café \u2028 new\nline \U0001f512"


def test_caller_mistakes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown audit field"):
        _build({**fields(), "title": "Secret plans"})
    with pytest.raises(ValueError, match="label"):
        _build(fields(label={"level": "secret", "compartments": [], "title": "Plans"}))
    with pytest.raises(ValueError, match="outcome"):
        _build(fields(outcome="maybe"))
    with pytest.raises(ValueError, match="fingerprint of the signing key"):
        _build(fields("alice"), KEYS["bob"])
    with pytest.raises(ValueError, match="reserved"):
        _build(fields(action="torn"))
    with pytest.raises(ValueError, match="Unicode"):
        _build(fields(reason="\ud800"))
    with pytest.raises(ValueError, match="longer than"):
        _build(fields(reason="x" * 70000))
    with pytest.raises(TypeError):
        _build(fields(), "not a key")  # type: ignore[arg-type]


def test_actor_key_is_filled_in_from_the_signer() -> None:
    record = _build({**fields("bob", 1), "actor": {"name": "bob"}}, KEYS["bob"])
    assert record.actor_key == fingerprint(KEYS["bob"].public_key())


def _line(d: dict[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("sig"),
        lambda d: d.update(v=2),
        lambda d: d.update(extra=1),
        lambda d: d.update(seq=-1),
        lambda d: d.update(seq=1.0),
        lambda d: d.update(time="2024-05-01 12:00:00"),
        lambda d: d.update(outcome="perhaps"),
        lambda d: d.update(policy="ABC"),
        lambda d: d.update(label={"level": "x", "compartments": ["b", "a"]}),
        lambda d: d["actor"].update(key="SHA256:short"),
        lambda d: d.update(sig="AAAA"),
        lambda d: d.update(fragments=[]),
    ],
)
def test_malformed_lines_are_modified_records(change: Any) -> None:
    d = json.loads(_build(fields()).line)
    change(d)
    with pytest.raises(AuditIntegrityError) as e:
        AuditRecord.from_line(_line(d), seq=7)
    assert e.value.kind == "modified" and e.value.seq == 7


@pytest.mark.parametrize(
    "line",
    [b"", b"not json", b"[1,2]", b'{"a":1', b"\xff\xfe"],
)
def test_garbage_lines(line: bytes) -> None:
    with pytest.raises(AuditIntegrityError) as e:
        AuditRecord.from_line(line)
    assert e.value.kind == "modified"


def test_non_canonical_encodings_are_refused() -> None:
    line = _build(fields()).line
    for variant in (
        line.replace(b'","', b'", "', 1),  # insignificant whitespace
        json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"))
        .encode()
        .replace(b'"v":1', b'"v":1.0'),
        line[:-1] + b',"action":"open"}',  # duplicate key
    ):
        with pytest.raises(AuditIntegrityError):
            AuditRecord.from_line(variant)


def test_torn_records_name_their_fragments() -> None:
    frag = Fragment.of(5, b'{"partial')
    record = build_record(
        {"actor": {"name": "alice"}, "action": "torn", "outcome": "error"},
        KEYS["alice"],
        seq=6,
        fragments=(frag,),
        **COMMON,  # type: ignore[arg-type]
    )
    parsed = AuditRecord.from_line(record.line)
    assert parsed.fragments == (frag,)
    assert frag.sha256 == hashlib.sha256(b'{"partial').hexdigest() and frag.length == 9
    d = json.loads(record.line)
    d["fragments"][0]["seq"] = 4  # not the line just before
    with pytest.raises(AuditIntegrityError):
        AuditRecord.from_line(_line(d))


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    actor=st.sampled_from(sorted(KEYS)),
    action=_text,
    doc=st.none() | _text,
    label=st.none()
    | st.fixed_dictionaries(
        {"level": _text, "compartments": st.lists(_text, max_size=3, unique=True)}
    ),
    outcome=st.sampled_from(["allowed", "denied", "error"]),
    rules=st.lists(_text, max_size=3),
    reason=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    seq=st.integers(0, 2**40),
)
def test_round_trip(actor: str, seq: int, **values: Any) -> None:
    if values["action"] == "torn":
        values["action"] = "open"
    f = {**fields(actor), **values}
    record = _build(f, KEYS[actor], seq=seq)
    parsed = AuditRecord.from_line(record.line)
    assert parsed == record
    assert AuditRecord.from_dict(record.to_dict()) == record
    assert canonical_json(parsed.to_dict()) == record.line
    assert parsed.verify_signature(KEYS[actor].public_key())
    if values["label"] is not None:
        assert parsed.compartments == tuple(sorted(values["label"]["compartments"]))
