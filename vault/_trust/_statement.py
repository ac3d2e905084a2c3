"""What requests and approvals share (docs/FORMAT.md §16): errors,
limits, and strict readers for their members.

Every reader refuses anything but exactly the members the format lists,
each of its type and within its limits: a statement is checked completely
before its signature, and long before anyone decides on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vault._primitives import b64, canonical_json, parse_canonical_json, parse_signing_key, unb64
from vault.errors import DeniedError, UsageError

__all__ = ["ACTIONS", "ADMINISTRATIVE", "MAX_FILE", "ApprovalError", "Party", "StatementError",
           "bound_label", "policy_action", "utc_text"]

MAX_FILE = 64 * 1024  # a statement file, and each statement inside a record
MAX_TEXT = 2000  # justification, reason
MAX_LIFETIME = timedelta(days=90)
DEFAULT_LIFETIME = timedelta(days=7)
# How far the clocks of the machines writing one log may differ: a statement
# dated more than this after the record that carries it, or after the clock
# of the machine that reads it, is dated ahead (docs/AUDIT.md §17).
CLOCK_SKEW = timedelta(seconds=60)
ACTIONS = ("open", "export", "seal", "reclassify", "declassify", "shred", "policy-apply",
           "rotate", "incident", "doctor", "migrate")
# Requests to administer, with no document and no label (docs/FORMAT.md §16.1);
# ``doctor`` asks for ``doctor --repair``.
ADMINISTRATIVE = frozenset(("policy-apply", "rotate", "incident", "doctor", "migrate"))
MAX_INCIDENT = 100_000  # lines one incident seals off (docs/AUDIT.md §11.3)
MAX_INCIDENT_LEAVES = 4_096  # lines whose original leaves one incident carries (FORMAT §14.8)
ON_DOCUMENT = frozenset(("open", "export", "reclassify", "declassify", "shred"))
CHANGES = frozenset(("reclassify", "declassify"))
HEX32 = re.compile(r"\A[0-9a-f]{32}\Z")
HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
DOC = re.compile(r"\A[a-z2-7]{16}\Z")
NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}\Z")  # docs/POLICY.md §3.6
TIME = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)
REQUEST_MEMBERS = frozenset(("vault", "id", "action", "doc", "state", "label", "new_label",
                             "details", "justification", "requester", "policy", "created",
                             "expires"))
APPROVAL_MEMBERS = frozenset(("vault", "request", "decision", "reason", "approver", "created",
                              "expires"))
BOUND = ("level", "compartments", "caveats", "embargo_until", "declassify_on")


class StatementError(UsageError):
    """A request or approval file that is not one (exit 2)."""


class ApprovalError(DeniedError):
    """An approval that does not count for this attempt (exit 3). ``kind``
    names the reason for scripts and tests: forged, vault, action, document,
    state, label, details, floor, file, requester, policy, expired, refused,
    self, approver, key, used, mixed, unrecorded, ahead."""

    def __init__(self, kind: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind


def policy_action(action: str) -> str:
    """The policy's name for a request's action (docs/POLICY.md §4.1)."""
    return "administer" if action in ADMINISTRATIVE else action


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or not TIME.match(value):
        raise StatementError(f"{what} is not an RFC 3339 UTC time like 2025-01-31T09:00:00Z")
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)  # checked by TIME
    except ValueError:
        raise StatementError(f"{what} is not a valid time") from None


def bound_label(label: Any) -> dict[str, Any]:
    """The fields of a label an approval binds (docs/FORMAT.md §16.2): what
    decides who may read it and when; never who signed it or when."""
    d = label.to_dict() if hasattr(label, "to_dict") else dict(label)
    return {k: d[k] for k in BOUND if d.get(k) is not None}


@dataclass(frozen=True)
class Party:
    """A requester or approver as a statement names them."""

    name: str
    signing_key: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "signing_key": self.signing_key}

    @classmethod
    def read(cls, value: Any, what: str) -> Party:
        if not isinstance(value, dict) or set(value) != {"name", "signing_key"}:
            raise StatementError(f"{what} must be {{name, signing_key}}")
        name, key = value["name"], value["signing_key"]
        if not isinstance(name, str) or not NAME.match(name):
            raise StatementError(f"{what} name is not a user name")
        try:
            parse_signing_key(key)
        except ValueError:
            raise StatementError(f"{what} signing_key is not ed25519:<base64>") from None
        return cls(name, key)


def read_text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT \
            or any(ord(c) < 0x20 and c != "\n" for c in value):
        raise StatementError(f"{what} must be text of 1 to {MAX_TEXT} characters")
    return value


def read_label(value: Any, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    from vault.policy import Label

    try:
        if not isinstance(value, dict) or bound_label(Label.from_dict(value)) != value:
            raise ValueError
    except (TypeError, ValueError):
        raise StatementError(f"{what} is not a label (level, compartments, caveats, "
                             "embargo_until, declassify_on)") from None
    return value


def read_details(action: str, value: Any) -> dict[str, Any]:
    ok = isinstance(value, dict)
    if ok and action == "policy-apply":
        ok = set(value) == {"policy"} and isinstance(value["policy"], str) \
            and bool(HEX64.match(value["policy"]))
    elif ok and action == "incident":
        first, last = value.get("from"), value.get("to")
        ok = set(value) == {"from", "to"} and type(first) is int and type(last) is int \
            and 0 <= first <= last < first + MAX_INCIDENT
    elif ok and action == "migrate":
        ok = set(value) == {"to"} and isinstance(value["to"], str) \
            and bool(HEX64.match(value["to"]))
    elif ok and action == "rotate":
        classes = value.get("classes")
        ok = set(value) == {"classes"} and (classes is None or (
            isinstance(classes, list) and 0 < len(classes) <= 1000
            and all(isinstance(c, str) and HEX32.match(c) for c in classes)
            and classes == sorted(set(classes))))
    elif ok and action == "seal" and value:
        # The file it is for and the floor it is sealed below (FORMAT.md §16.2).
        floor, file = value.get("floor"), value.get("file")
        ok = set(value) <= {"file", "floor"} and ("file" not in value or (
            isinstance(file, str) and bool(HEX64.match(file)))) and ("floor" not in value or (
                isinstance(floor, dict) and set(floor) == {"level", "compartments", "caveats"}
                and isinstance(floor["level"], str) and all(
                    isinstance(floor[k], list) and len(floor[k]) <= 64
                    and all(isinstance(n, str) for n in floor[k])
                    and floor[k] == sorted(set(floor[k])) for k in ("compartments", "caveats"))))
    elif ok:
        ok = value == {}
    if not ok:
        raise StatementError(f"details do not fit a {action} request")
    return dict(value)


def read_signed(obj: Any, what: str) -> tuple[dict[str, Any], bytes]:
    if not isinstance(obj, dict) or set(obj) != {"sig", "statement"} \
            or not isinstance(obj["statement"], dict):
        raise StatementError(f"not a signed {what} ({{sig, statement}})")
    try:
        return obj["statement"], unb64(obj["sig"], 64)
    except ValueError:
        raise StatementError(f"the {what}'s signature is not base64 of 64 bytes") from None


def parse_file(data: bytes, what: str) -> dict[str, Any]:
    if len(data) > MAX_FILE:
        raise StatementError(f"a {what} file is at most {MAX_FILE} bytes")
    body = data[:-1] if data.endswith(b"\n") else data
    try:
        return parse_canonical_json(body)
    except ValueError:
        writer = "vault request" if what == "request" else "vault approve"
        raise StatementError(f"this is not a {what} file (canonical JSON)",
                             hint=f"give the file '{writer}' wrote, unchanged") from None


def encode(obj: dict[str, Any]) -> bytes:
    return canonical_json(obj) + b"\n"


@dataclass(frozen=True)
class SignedStatement:
    """What a request and an approval share: the statement, its signature,
    its validity period and its signed form (docs/FORMAT.md §16)."""

    statement: dict[str, Any]
    sig: bytes

    @property
    def created(self) -> datetime:
        return read_time(self.statement["created"], "created")

    @property
    def expires(self) -> datetime:
        return read_time(self.statement["expires"], "expires")

    def signed(self) -> dict[str, Any]:
        return {"sig": b64(self.sig), "statement": self.statement}
