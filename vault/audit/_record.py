"""Audit records and their canonical serialisation (docs/AUDIT.md §2 and §3).

A record is one JSON object on one line: keys sorted, no insignificant
whitespace, UTF-8, no floats. Every field is always present (``null`` when
empty) so a record has exactly one encoding; a parsed line is re-encoded and
must come out byte-identical, otherwise it was modified.

The actor signs ``SIGNING_CONTEXT || canonical record without "sig"`` with
Ed25519, so nobody can append a record in someone else's name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault.errors import AuditIntegrityError

__all__ = ["AuditRecord", "Fragment", "canonical_json", "fingerprint"]

FORMAT_VERSION = 1
SIGNING_CONTEXT = b"vault audit record v1\n"
MAX_LINE = 65536
OUTCOMES = ("allowed", "denied", "error")
TORN_ACTION = "torn"

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
_FP_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}\Z")
_HEX64_RE = re.compile(r"[0-9a-f]{64}\Z")
_CALLER_FIELDS = frozenset(
    {"actor", "action", "doc", "label", "outcome", "rules", "reason", "policy", "request"}
)


def canonical_json(obj: Any) -> bytes:
    """docs/AUDIT.md §3: sorted keys, ``,``/``:`` separators, UTF-8."""
    return _encoder.encode(obj).encode("utf-8")


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``"SHA256:" + base64(sha256(raw public key))`` without padding."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def format_time(moment: datetime) -> str:
    """RFC 3339, UTC, microseconds: ``2024-05-01T12:00:00.000000Z``."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z"


class _Invalid(ValueError):
    pass


def _str(d: Mapping[str, Any], key: str, *, optional: bool = False, empty: bool = False) -> Any:
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value and not empty):
        raise _Invalid(f"{key!r} must be a {'' if empty else 'non-empty '}string")
    return value


def _int(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Invalid(f"{key!r} must be a non-negative integer")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise _Invalid(f"{what} must be a list of strings")
    if not all(isinstance(v, str) and v for v in value):
        raise _Invalid(f"{what} must hold non-empty strings")
    return tuple(value)


@dataclass(frozen=True)
class Fragment:
    """A line set aside by a ``torn`` record (docs/AUDIT.md §7): the piece of
    a record whose write was interrupted, named by its position, SHA-256 and
    length so that it can never be mistaken for (or replaced by) a record."""

    seq: int
    sha256: str
    length: int

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "seq": self.seq, "sha256": self.sha256}

    @classmethod
    def of(cls, seq: int, line: bytes) -> Fragment:
        return cls(seq, hashlib.sha256(line).hexdigest(), len(line))

    @classmethod
    def from_dict(cls, d: Any) -> Fragment:
        if not isinstance(d, dict) or set(d) != {"length", "seq", "sha256"}:
            raise _Invalid("a fragment holds exactly length, seq and sha256")
        digest = _str(d, "sha256")
        if not _HEX64_RE.match(digest):
            raise _Invalid("a fragment's sha256 must be 64 lowercase hex digits")
        return cls(_int(d, "seq"), digest, _int(d, "length"))


@dataclass(frozen=True)
class AuditRecord:
    """One record. ``line`` is its exact encoding (the Merkle leaf)."""

    seq: int
    time: str
    actor: str
    actor_key: str
    action: str
    doc: str | None
    level: str | None  # label summary; None when the action had no label
    compartments: tuple[str, ...]
    outcome: str
    rules: tuple[str, ...]
    reason: str
    policy: str | None
    request: str
    host: str
    pid: int
    signature: bytes
    fragments: tuple[Fragment, ...] = ()  # only on "torn" records
    line: bytes = field(default=b"", repr=False, compare=False)

    @property
    def datetime(self) -> datetime:
        return datetime.strptime(self.time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "seq": self.seq,
            "time": self.time,
            "actor": {"key": self.actor_key, "name": self.actor},
            "action": self.action,
            "doc": self.doc,
            "label": None
            if self.level is None
            else {"compartments": list(self.compartments), "level": self.level},
            "outcome": self.outcome,
            "rules": list(self.rules),
            "reason": self.reason,
            "policy": self.policy,
            "request": self.request,
            "host": self.host,
            "pid": self.pid,
        }
        if self.action == TORN_ACTION:
            body["fragments"] = [f.to_dict() for f in self.fragments]
        return body

    def signed_message(self) -> bytes:
        """What the actor signs: the context string and the record without ``sig``."""
        return SIGNING_CONTEXT + canonical_json(self._body())

    def to_dict(self) -> dict[str, Any]:
        return {**self._body(), "sig": base64.b64encode(self.signature).decode()}

    def verify_signature(self, public_key: Ed25519PublicKey) -> bool:
        """True when ``public_key`` matches ``actor_key`` and signed this record."""
        if fingerprint(public_key) != self.actor_key:
            return False
        try:
            public_key.verify(self.signature, self.signed_message())
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditRecord:
        """Validate a record dict (raises AuditIntegrityError kind ``modified``)."""
        try:
            return cls._from_dict(d)
        except _Invalid as e:
            raise AuditIntegrityError(f"malformed audit record: {e}", kind="modified") from None

    @classmethod
    def from_line(cls, line: bytes, *, seq: int | None = None) -> AuditRecord:
        """Parse one log line (without its newline); the line must be canonical."""
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise _Invalid("a record is a JSON object")
            record = cls._from_dict(data)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and _Invalid
            reason = str(e) if isinstance(e, _Invalid) else "not JSON"
            raise AuditIntegrityError(
                f"malformed audit record: {reason}", kind="modified", seq=seq
            ) from None
        encoded = canonical_json(record.to_dict())
        if encoded != line:
            raise AuditIntegrityError(
                "audit record is not in canonical form", kind="modified", seq=seq
            )
        return _with_line(record, line)

    @classmethod
    def _from_dict(cls, d: Mapping[str, Any]) -> AuditRecord:
        known = {*_CALLER_FIELDS, "v", "seq", "time", "host", "pid", "sig", "fragments"}
        if set(d) - known:
            raise _Invalid(f"unknown field {sorted(set(d) - known)[0]!r}")
        if d.get("v") != FORMAT_VERSION:
            raise _Invalid("unsupported record version")
        time = _str(d, "time")
        if not _TIME_RE.match(time):
            raise _Invalid("'time' must be RFC 3339 UTC with microseconds")
        try:
            sig = base64.b64decode(_str(d, "sig").encode("ascii"), validate=True)
        except (binascii.Error, UnicodeError):
            raise _Invalid("'sig' must be base64") from None
        if len(sig) != 64:
            raise _Invalid("'sig' must be an Ed25519 signature")
        seq = _int(d, "seq")
        fragments = _fragments(d.get("fragments"), seq) if "fragments" in d else None
        if (fragments is not None) != (d.get("action") == TORN_ACTION):
            raise _Invalid("only 'torn' records list fragments, and they must")
        return cls(
            seq=seq,
            time=time,
            **_caller_fields(d, require_all=True),
            host=_str(d, "host"),
            pid=_int(d, "pid"),
            signature=sig,
            fragments=fragments or (),
        )


def _fragments(value: Any, seq: int) -> tuple[Fragment, ...]:
    """The fragments a torn record sets aside: the lines just before it."""
    if not isinstance(value, list) or not value:
        raise _Invalid("'fragments' must be a non-empty list")
    fragments = tuple(Fragment.from_dict(v) for v in value)
    if [f.seq for f in fragments] != list(range(seq - len(fragments), seq)):
        raise _Invalid("'fragments' must name the lines just before the record")
    return fragments


def _with_line(record: AuditRecord, line: bytes) -> AuditRecord:
    object.__setattr__(record, "line", line)
    return record


def _caller_fields(d: Mapping[str, Any], *, require_all: bool) -> dict[str, Any]:
    """Validate the fields a caller supplies (docs/AUDIT.md §2)."""
    if require_all:
        missing = _CALLER_FIELDS - set(d)
        if missing:
            raise _Invalid(f"missing field {sorted(missing)[0]!r}")
    actor = d.get("actor")
    if not isinstance(actor, Mapping) or set(actor) - {"name", "key"}:
        raise _Invalid("'actor' must be an object with name and key")
    key = _str(actor, "key")
    if not _FP_RE.match(key):
        raise _Invalid("'actor.key' must be a key fingerprint SHA256:<base64>")
    label = d.get("label")
    level: str | None = None
    compartments: tuple[str, ...] = ()
    if label is not None:
        if not isinstance(label, Mapping) or set(label) != {"level", "compartments"}:
            # Only the summary: a title or filename must never reach the log.
            raise _Invalid("'label' must hold exactly level and compartments")
        level = _str(label, "level")
        compartments = _strings(label["compartments"], "'label.compartments'")
        if not require_all:
            compartments = tuple(sorted(set(compartments)))
        elif list(compartments) != sorted(set(compartments)):
            raise _Invalid("'label.compartments' must be sorted and unique")
    outcome = d.get("outcome")
    if outcome not in OUTCOMES:
        raise _Invalid(f"'outcome' must be one of {', '.join(OUTCOMES)}")
    policy = _str(d, "policy", optional=True)
    if policy is not None and not _HEX64_RE.match(policy):
        raise _Invalid("'policy' must be a SHA-256 in lowercase hex")
    return {
        "actor": _str(actor, "name"),
        "actor_key": key,
        "action": _str(d, "action"),
        "doc": _str(d, "doc", optional=True),
        "level": level,
        "compartments": compartments,
        "outcome": outcome,
        "rules": _strings(d.get("rules", ()), "'rules'"),
        "reason": _str(d, "reason", empty=True) if "reason" in d or require_all else "",
        "policy": policy,
        "request": _str(d, "request"),
    }


def build_record(
    fields: Mapping[str, Any],
    signer: Ed25519PrivateKey,
    *,
    seq: int,
    time: str,
    host: str,
    pid: int,
    request: str,
    fragments: tuple[Fragment, ...] = (),
    signer_fingerprint: str | None = None,
) -> AuditRecord:
    """Validate caller ``fields``, fill in the rest, sign (ValueError on misuse).

    ``signer_fingerprint`` may pass ``fingerprint(signer.public_key())`` when
    the caller has it already (it is on the append path's budget).
    """
    if not isinstance(fields, Mapping):
        raise TypeError("fields must be a mapping")
    if not isinstance(signer, Ed25519PrivateKey):
        raise TypeError("signer must be an Ed25519PrivateKey")
    unknown = set(fields) - _CALLER_FIELDS
    if unknown:
        raise ValueError(f"unknown audit field {sorted(unknown)[0]!r}")
    own_key = signer_fingerprint or fingerprint(signer.public_key())
    actor = fields.get("actor")
    if isinstance(actor, Mapping) and "key" not in actor:
        actor = {**actor, "key": own_key}
    try:
        checked = _caller_fields({"request": request, **fields, "actor": actor}, require_all=False)
    except _Invalid as e:
        raise ValueError(f"bad audit field: {e}") from None
    if checked["actor_key"] != own_key:
        raise ValueError("actor.key is not the fingerprint of the signing key")
    if bool(fragments) != (checked["action"] == TORN_ACTION):
        raise ValueError(f"the {TORN_ACTION!r} action is reserved for torn-line records")
    record = AuditRecord(
        seq=seq, time=time, host=host, pid=pid, signature=b"", fragments=fragments, **checked
    )
    try:
        unsigned = canonical_json(record._body())
    except UnicodeEncodeError:
        raise ValueError("audit fields must be valid Unicode text") from None
    signature = signer.sign(SIGNING_CONTEXT + unsigned)
    # "sig" sorts between "seq" and "time", and only "v":1 follows "time", so
    # the last ',"time":"' is the top-level key: splice the signature in
    # there rather than encode the record twice (from_line re-checks this).
    at = unsigned.rindex(b',"time":"')
    line = b'%s,"sig":"%s"%s' % (unsigned[:at], base64.b64encode(signature), unsigned[at:])
    if len(line) > MAX_LINE:
        raise ValueError(f"audit record longer than {MAX_LINE} bytes")
    object.__setattr__(record, "signature", signature)  # still being built: not yet shared
    return _with_line(record, line)
