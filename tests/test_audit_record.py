"""Audit records v2: canonical JSON, validation, chained actor signatures."""

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

from vault.audit import MAX_LINE, AuditRecord, fingerprint, verify_record
from vault.audit._chain import SIGNING_CONTEXT, ZERO_LEAF, chain_digest, signed_body
from vault.audit._fields import Checked, RecordBuilder, check_fields
from vault.audit._members import caller_members
from vault.audit._record import Fragment, canonical_json
from vault.errors import AuditIntegrityError

BUILDER = RecordBuilder(time="2024-05-01T12:00:00.000001Z", host="h1", pid=42)
CHAIN = chain_digest(ZERO_LEAF, [])


def _checked(f: dict[str, Any], key: Ed25519PrivateKey | None = None) -> Any:
    key = key or KEYS["alice"]
    return check_fields(f, key, fingerprint(key.public_key()))


def _build(f: dict[str, Any], key: Ed25519PrivateKey | None = None, seq: int = 7,
           chain: bytes = CHAIN) -> AuditRecord:
    return BUILDER.signed(_checked({"request": "r" * 32, **f}, key), seq, chain)


def test_fingerprint_is_openssh_style() -> None:
    key = KEYS["alice"].public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    assert fingerprint(key) == expected and len(expected) == 50


def test_record_line_is_canonical_and_complete() -> None:
    record = _build(fields("alice", 1, state={"policy": {"version": 2}, "b": [1, None]}))
    d = json.loads(record.line)
    assert record.line == json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    assert list(d) == sorted(d)
    assert set(d) == {
        "v", "seq", "time", "actor", "action", "doc", "label", "outcome", "rules",
        "reason", "policy", "request", "host", "pid", "state", "sig",
    }  # fmt: skip
    assert d["v"] == 2 and d["seq"] == 7 and d["pid"] == 42 and d["host"] == "h1"
    assert d["actor"] == {"name": "alice", "key": fingerprint(KEYS["alice"].public_key())}
    assert d["label"] == {"level": "secret", "compartments": ["ops"], "caveats": []}
    assert d["state"] == {"b": [1, None], "policy": {"version": 2}}


def test_unsigned_records_have_no_sig() -> None:
    record = BUILDER.unsigned(_checked(fields("alice", 2)), 3)
    assert record.signature is None and b'"sig"' not in record.line
    assert AuditRecord.from_line(record.line) == record


def test_signature_covers_the_chain_and_the_record_without_sig() -> None:
    chain = chain_digest(b"\x01" * 32, [b"\x02" * 32])
    record = _build(fields("alice", 2), chain=chain)
    d = json.loads(record.line)
    sig = base64.b64decode(d.pop("sig"))
    assert signed_body(record) == canonical_json(d)
    KEYS["alice"].public_key().verify(sig, SIGNING_CONTEXT + chain + canonical_json(d))
    assert SIGNING_CONTEXT == b"vault audit record v2\n"
    assert verify_record(record, chain, KEYS["alice"].public_key())
    assert not verify_record(record, CHAIN, KEYS["alice"].public_key())  # another history
    assert not verify_record(record, chain, KEYS["bob"].public_key())
    d["outcome"] = "allowed" if d["outcome"] != "allowed" else "denied"
    forged = AuditRecord.from_line(canonical_json({**d, "sig": base64.b64encode(sig).decode()}))
    assert not verify_record(forged, chain, KEYS["alice"].public_key())


def test_chain_is_the_hash_of_the_leaves_before() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(4)]
    assert chain_digest(leaves[0], leaves[1:]) == hashlib.sha256(b"".join(leaves)).digest()
    assert chain_digest(ZERO_LEAF, []) == hashlib.sha256(bytes(32)).digest()


def test_utf8_and_line_separators_stay_on_one_line() -> None:
    record = _build(fields("alice", 3, reason="café \u2028 new\nline \U0001f512"))
    assert b"\n" not in record.line
    assert "café".encode() in record.line and "\u2028".encode() in record.line
    assert AuditRecord.from_line(record.line).reason == "café \u2028 new\nline \U0001f512"


@pytest.mark.parametrize(("change", "match"), [
    ({"title": "Secret plans"}, "unknown audit field"),
    ({"label": {"level": "secret", "compartments": [], "title": "Plans"}}, "label"),
    ({"outcome": "maybe"}, "outcome"),
    ({"action": "torn"}, "reserved"),
    ({"actor": {"name": "x" * 65}}, "actor.name"),
    ({"actor": {"name": "tab\there"}}, "actor.name"),
    ({"actor": {"name": ""}}, "actor.name"),
    ({"actor": {}}, "actor.name"),
    ({"request": "has space"}, "request"),
    ({"request": "x" * 65}, "request"),
    ({"state": {"n": 1.5}}, "floating"),
    ({"state": {"": 1}}, "state"),
    ({"state": [1, 2]}, "state"),
    ({"policy": "ABC"}, "policy"),
])  # fmt: skip
def test_caller_mistakes_are_value_errors(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _build({**fields(), **change})


def test_more_caller_mistakes() -> None:
    with pytest.raises(ValueError, match="fingerprint of the signing key"):
        _build(fields("alice"), KEYS["bob"])
    with pytest.raises(ValueError, match="Unicode"):
        _build(fields(reason="\ud800"))
    with pytest.raises(ValueError, match="longer than"):
        _build(fields(reason="x" * MAX_LINE))
    assert len(_build(fields(reason="x" * 70000)).line) > 70000  # a policy text fits
    with pytest.raises(TypeError):
        check_fields(fields(), "not a key", "")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        check_fields([("a", 1)], KEYS["alice"], "")  # type: ignore[arg-type]


def test_actor_name_may_be_null_and_key_is_filled_in() -> None:
    record = _build({**fields("bob", 1), "actor": {"name": None}}, KEYS["bob"])
    assert record.actor is None and record.actor_key == fingerprint(KEYS["bob"].public_key())
    assert json.loads(record.line)["actor"] == {"key": record.actor_key, "name": None}


def test_labels_are_sorted_and_carry_caveats() -> None:
    label = {"level": "secret", "compartments": ["b", "a", "b"], "caveats": ["PII", "EYES"]}
    record = _build(fields(label=label))
    assert (record.compartments, record.caveats) == (("a", "b"), ("EYES", "PII"))
    assert _build(fields(label={"level": "x"})).label == {
        "level": "x", "compartments": [], "caveats": []}


def _line(d: dict[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("state"),
        lambda d: d.pop("reason"),
        lambda d: d.update(v=1),
        lambda d: d.update(extra=1),
        lambda d: d.update(seq=-1),
        lambda d: d.update(seq=1.0),
        lambda d: d.update(time="2024-05-01 12:00:00"),
        lambda d: d.update(outcome="perhaps"),
        lambda d: d.update(policy="ABC"),
        lambda d: d.update(label={"level": "x", "compartments": ["b", "a"], "caveats": []}),
        lambda d: d.update(label={"level": "x", "compartments": [], "caveats": ["b", "a"]}),
        lambda d: d.update(label={"level": "x", "compartments": []}),
        lambda d: d["actor"].update(key="SHA256:short"),
        lambda d: d["actor"].update(name="x" * 65),
        lambda d: d["actor"].pop("name"),
        lambda d: d.update(request="no spaces please"),
        lambda d: d.update(state={"x": 0.5}),
        lambda d: d.update(state=[1]),
        lambda d: d.update(sig="AAAA"),
        lambda d: d.update(fragments=[]),
        lambda d: d.update(action="torn", fragments=[{"length": 1, "seq": 6, "sha256": "0" * 64}],
                           sig=None) or d.pop("sig"),
    ],
)
def test_malformed_lines_are_modified_records(change: Any) -> None:
    d = json.loads(_build(fields()).line)
    change(d)
    with pytest.raises(AuditIntegrityError) as e:
        AuditRecord.from_line(_line(d), seq=7)
    assert e.value.kind == "modified" and e.value.seq == 7


@pytest.mark.parametrize("line", [b"", b"not json", b"[1,2]", b'{"a":1', b"\xff\xfe"])
def test_garbage_lines(line: bytes) -> None:
    with pytest.raises(AuditIntegrityError) as e:
        AuditRecord.from_line(line)
    assert e.value.kind == "modified"


def test_non_canonical_encodings_are_refused() -> None:
    line = _build(fields()).line
    for variant in (
        line.replace(b'","', b'", "', 1),  # insignificant whitespace
        line.replace(b'"v":2', b'"v":2.0'),
        line[:-1] + b',"action":"open"}',  # duplicate key
        line.replace(b'"state":null', b'"state":{}').replace(b'"state":{}', b'"state":{ }'),
    ):
        with pytest.raises(AuditIntegrityError):
            AuditRecord.from_line(variant)


def test_torn_records_name_their_fragments() -> None:
    frag = Fragment.of(5, b'{"partial')
    fp = fingerprint(KEYS["alice"].public_key())
    torn = Checked(caller_members({"action": "torn", "request": "t", "outcome": "error",
                                   "actor": {"key": fp, "name": "alice"}}, strict=False),
                   KEYS["alice"], fp)
    record = BUILDER.signed(torn, 6, CHAIN, (frag,))
    parsed = AuditRecord.from_line(record.line)
    assert parsed.fragments == (frag,) and frag.names(5, b'{"partial')
    assert frag.sha256 == hashlib.sha256(b'{"partial').hexdigest() and frag.length == 9
    d = json.loads(record.line)
    d["fragments"][0]["seq"] = 4  # not the line just before
    with pytest.raises(AuditIntegrityError):
        AuditRecord.from_line(_line(d))


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_json = st.recursive(st.none() | st.booleans() | st.integers() | _text,
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(_text, inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(
    actor=st.sampled_from(sorted(KEYS)),
    name=st.none() | st.text(st.characters(whitelist_categories=("L", "N")), min_size=1,
                             max_size=64),
    action=_text,
    doc=st.none() | _text,
    label=st.none()
    | st.fixed_dictionaries(
        {"level": _text, "compartments": st.lists(_text, max_size=3, unique=True),
         "caveats": st.lists(_text, max_size=3, unique=True)}
    ),
    outcome=st.sampled_from(["allowed", "denied", "error", "done", "failed"]),
    rules=st.lists(_text, max_size=3),
    reason=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    state=st.none() | st.dictionaries(_text, _json, max_size=4),
    seq=st.integers(0, 2**40),
    signed=st.booleans(),
)
def test_round_trip(actor: str, name: str | None, seq: int, signed: bool,
                    **values: Any) -> None:
    if values["action"] == "torn":
        values["action"] = "open"
    f = {**fields(actor), **values, "actor": {"name": name}}
    c = _checked(f, KEYS[actor])
    record = BUILDER.signed(c, seq, CHAIN) if signed else BUILDER.unsigned(c, seq)
    parsed = AuditRecord.from_line(record.line)
    assert parsed == record
    assert AuditRecord.from_dict(record.to_dict()) == record
    assert canonical_json(parsed.to_dict()) == record.line
    assert parsed.signed == signed
    if signed:
        assert verify_record(parsed, CHAIN, KEYS[actor].public_key())
    if values["label"] is not None:
        assert parsed.compartments == tuple(sorted(values["label"]["compartments"]))
        assert parsed.caveats == tuple(sorted(values["label"]["caveats"]))


@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(st.none() | _text, min_size=3, max_size=6),
    states=st.lists(st.none() | st.dictionaries(_text, _json, max_size=3), min_size=6,
                    max_size=6),
    reason=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    first=st.integers(0, 2**40),
)
def test_records_alike_encode_as_if_whole(docs: list[str | None],
                                          states: list[dict[str, Any] | None], reason: str,
                                          first: int) -> None:
    # A batch's records that share all but doc, request and state are
    # encoded from pieces made once; each line is still the canonical JSON
    # of the whole record, and a lone record among them is encoded whole.
    from vault.audit._fields import FieldChecker

    check = FieldChecker()
    key = KEYS["alice"]
    fp = fingerprint(key.public_key())
    items = [check({**fields("alice"), "doc": d, "reason": reason, "state": s}, key, fp,
                   f"req{i}")
             for i, (d, s) in enumerate(zip(docs, states, strict=False))]
    items.append(check({**fields("alice"), "action": "other", "reason": reason}, key, fp, "x"))
    builder = RecordBuilder(time="2024-05-01T12:00:00.000001Z", host="höst\u2028", pid=7)
    records, _ = builder.run(items, first, ZERO_LEAF)
    assert len({id(c.template) for c in items[:-1]}) == 1
    for record in records:
        assert AuditRecord.from_line(record.line) == record
        assert canonical_json(record.to_dict()) == record.line
