"""Audit records v2 and their canonical serialisation (docs/AUDIT.md §2, §3).

A record is one JSON object on one line: keys sorted, no insignificant
whitespace, UTF-8, no floats. Every member is always present (``null`` when
empty) except ``sig``, which only signed records carry (§4, §5: a record
covered by a later record's signature has none), and ``fragments``, which
only ``torn`` records carry. A parsed line is re-encoded and must come out
byte-identical, otherwise it was modified.

This module parses and validates; building and signing are in
:mod:`vault.audit._fields` and :mod:`vault.audit._chain`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault._primitives import MAX_DEPTH, loads_json, too_deep
from vault._primitives import canonical_json as _canonical_json
from vault.audit._members import (
    HEX64_RE,
    OUTCOMES,
    Invalid,
    caller_members,
    count,
    text,
)
from vault.errors import AuditIntegrityError

__all__ = [
    "FORMAT_VERSION",
    "MAX_LINE",
    "OUTCOMES",
    "TORN_ACTION",
    "AuditRecord",
    "Fragment",
    "Invalid",
    "canonical_json",
    "fingerprint",
    "format_time",
    "now",
]

FORMAT_VERSION = 2
MAX_LINE = 524_288  # a policy version's text travels in a record's state
TORN_ACTION = "torn"

# RFC 3339 (§2): ASCII digits -- Python's \d alone takes "٢٠٢٦" too.
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z", re.ASCII)
MEMBERS = frozenset(
    {"v", "seq", "time", "actor", "action", "doc", "label", "outcome", "rules", "reason",
     "policy", "request", "host", "pid", "state"}
)  # fmt: skip


def canonical_json(obj: Any) -> bytes:
    """docs/AUDIT.md §3: sorted keys, ``,``/``:`` separators, UTF-8."""
    return _canonical_json(obj)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``"SHA256:" + base64(sha256(raw public key))`` without padding."""
    raw = public_key.public_bytes_raw()
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def format_time(moment: datetime) -> str:
    """RFC 3339, UTC, microseconds: ``2024-05-01T12:00:00.000000Z``."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z"


_second: list[Any] = [None, ""]  # the last second formatted, and its text


def now() -> str:
    """The current time as :func:`format_time` writes it (cheaper: every
    append asks, and the date and time of day change once a second)."""
    ns = time.time_ns()
    second = ns // 1_000_000_000
    cached = _second
    if cached[0] != second:
        cached[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        cached[0] = second
    return f"{cached[1]}.{ns // 1000 % 1_000_000:06d}Z"


@dataclass(frozen=True)
class Fragment:
    """A line set aside by a ``torn`` record (docs/AUDIT.md §8): named by its
    position, SHA-256 and length so that it can never be mistaken for (or
    replaced by) a record."""

    seq: int
    sha256: str
    length: int

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "seq": self.seq, "sha256": self.sha256}

    @classmethod
    def of(cls, seq: int, line: bytes) -> Fragment:
        return cls(seq, hashlib.sha256(line).hexdigest(), len(line))

    def names(self, seq: int, line: bytes) -> bool:
        return self == Fragment.of(seq, line)

    @classmethod
    def from_dict(cls, d: Any) -> Fragment:
        if not isinstance(d, dict) or set(d) != {"length", "seq", "sha256"}:
            raise Invalid("a fragment holds exactly length, seq and sha256")
        digest = text(d, "sha256")
        if not HEX64_RE.match(digest):
            raise Invalid("a fragment's sha256 must be 64 lowercase hex digits")
        return cls(count(d, "seq"), digest, count(d, "length"))


@dataclass(frozen=True)
class AuditRecord:
    """One record. ``line`` is its exact encoding (the Merkle leaf).

    ``signature`` is None for a record covered by the signature of a later
    record of the same actor (docs/AUDIT.md §4, §5)."""

    seq: int
    time: str
    actor: str | None  # actor.name; None: a key the policy does not know
    actor_key: str
    action: str
    doc: str | None
    level: str | None  # label summary; None when the action had no label
    compartments: tuple[str, ...]
    caveats: tuple[str, ...]
    outcome: str
    rules: tuple[str, ...]
    reason: str
    policy: str | None
    request: str
    host: str
    pid: int
    state: dict[str, Any] | None
    signature: bytes | None
    fragments: tuple[Fragment, ...] = ()  # only on "torn" records
    line: bytes = field(default=b"", repr=False, compare=False)

    @property
    def datetime(self) -> datetime:
        # The time was checked against TIME_RE when the record was read;
        # fromisoformat spares loading _strptime (memory, docs/PERFORMANCE.md).
        return datetime.fromisoformat(self.time[:-1]).replace(tzinfo=UTC)

    @property
    def signed(self) -> bool:
        return self.signature is not None

    @property
    def label(self) -> dict[str, Any] | None:
        if self.level is None:
            return None
        return {"caveats": list(self.caveats), "compartments": list(self.compartments),
                "level": self.level}  # fmt: skip

    def body(self) -> dict[str, Any]:
        """Every member but ``sig``: what the signature covers (with the chain)."""
        body: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "seq": self.seq,
            "time": self.time,
            "actor": {"key": self.actor_key, "name": self.actor},
            "action": self.action,
            "doc": self.doc,
            "label": self.label,
            "outcome": self.outcome,
            "rules": list(self.rules),
            "reason": self.reason,
            "policy": self.policy,
            "request": self.request,
            "host": self.host,
            "pid": self.pid,
            "state": self.state,
        }
        if self.action == TORN_ACTION:
            body["fragments"] = [f.to_dict() for f in self.fragments]
        return body

    def to_dict(self) -> dict[str, Any]:
        body = self.body()
        if self.signature is not None:
            body["sig"] = base64.b64encode(self.signature).decode()
        return body

    @classmethod
    def from_line(cls, line: bytes, *, seq: int | None = None) -> AuditRecord:
        """Parse one log line (without its newline); the line must be canonical.
        Raises AuditIntegrityError (kind ``modified``) for anything else."""
        try:
            if len(line) > MAX_LINE:
                raise Invalid(f"longer than {MAX_LINE} bytes")
            if too_deep(line):
                raise Invalid(f"nested deeper than {MAX_DEPTH}")
            data = loads_json(line)  # integers by §3's bound, not the interpreter's
            if not isinstance(data, dict):
                raise Invalid("a record is a JSON object")
            record = cls._from_dict(data)
            if canonical_json(record.to_dict()) != line:
                raise Invalid("not in canonical form")
        except (ValueError, RecursionError) as e:  # JSONDecodeError and Invalid
            reason = str(e) if isinstance(e, Invalid) else "not JSON"
            raise AuditIntegrityError(
                f"malformed audit record: {reason}", kind="modified", seq=seq
            ) from None
        object.__setattr__(record, "line", line)
        return record

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AuditRecord:
        """Validate a record dict (raises AuditIntegrityError kind ``modified``)."""
        try:
            return cls._from_dict(d)
        except Invalid as e:
            raise AuditIntegrityError(f"malformed audit record: {e}", kind="modified") from None

    @classmethod
    def _from_dict(cls, d: Mapping[str, Any]) -> AuditRecord:
        keys = set(d)
        missing = MEMBERS - keys
        if missing:
            raise Invalid(f"missing member {sorted(missing)[0]!r}")
        extra = keys - MEMBERS - {"sig", "fragments"}
        if extra:
            raise Invalid(f"unknown member {sorted(extra)[0]!r}")
        if d["v"] != FORMAT_VERSION or isinstance(d["v"], bool):
            raise Invalid("unsupported record version")
        time = text(d, "time")
        if not TIME_RE.match(time):
            raise Invalid("'time' must be RFC 3339 UTC with microseconds")
        sig = _signature(d["sig"]) if "sig" in d else None
        seq = count(d, "seq")
        torn = d["action"] == TORN_ACTION
        if ("fragments" in d) != torn:
            raise Invalid("only 'torn' records list fragments, and they must")
        if torn and sig is None:
            raise Invalid("a 'torn' record is always signed")
        return cls(
            seq=seq,
            time=time,
            **caller_members(d),
            host=text(d, "host"),
            pid=count(d, "pid"),
            signature=sig,
            fragments=_fragments(d["fragments"], seq) if torn else (),
        )


def _signature(value: Any) -> bytes:
    try:
        sig = base64.b64decode(text({"sig": value}, "sig").encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError):
        raise Invalid("'sig' must be base64") from None
    if len(sig) != 64:
        raise Invalid("'sig' must be an Ed25519 signature (64 bytes)")
    return sig


def _fragments(value: Any, seq: int) -> tuple[Fragment, ...]:
    """The fragments a torn record sets aside: the lines just before it."""
    if not isinstance(value, list) or not value:
        raise Invalid("'fragments' must be a non-empty list")
    fragments = tuple(Fragment.from_dict(v) for v in value)
    if [f.seq for f in fragments] != list(range(seq - len(fragments), seq)):
        raise Invalid("'fragments' must name the lines just before the record")
    return fragments
