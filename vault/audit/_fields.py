"""Building records from caller fields and signing them in runs
(docs/AUDIT.md §2, §4, §5).

:func:`check_fields` validates what a caller passes to ``append`` (a
``ValueError`` or ``TypeError`` before anything is written).
:class:`RecordBuilder` turns checked fields into lines: every record of a
run but the last is written without ``sig``; the last one signs the chain
of leaves before it (:mod:`vault.audit._chain`).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.audit._chain import SIGNING_CONTEXT, chain_digest
from vault.audit._hashing import leaf_hash
from vault.audit._record import (
    MAX_LINE,
    TORN_ACTION,
    AuditRecord,
    Fragment,
    Invalid,
    caller_members,
    canonical_json,
)

__all__ = ["CALLER_FIELDS", "RUN_LIMIT", "Checked", "RecordBuilder", "check_fields"]

CALLER_FIELDS = frozenset(
    {"actor", "action", "doc", "label", "outcome", "rules", "reason", "policy", "request",
     "state"}
)  # fmt: skip
# At most this many records share one signature. A crash in the middle of a
# batch leaves its complete, unsigned lines for the next writer to set aside,
# and one torn record must be able to name them all within MAX_LINE (§8).
RUN_LIMIT = 1000


class Checked:
    """Validated caller fields and the key that signs them."""

    __slots__ = ("fingerprint", "members", "signer")

    def __init__(self, members: dict[str, Any], signer: Ed25519PrivateKey, fp: str) -> None:
        self.members, self.signer, self.fingerprint = members, signer, fp


def check_fields(fields: Mapping[str, Any], signer: Ed25519PrivateKey, fp: str) -> Checked:
    """Validate ``fields`` for a record signed by ``signer`` (fingerprint ``fp``)."""
    if not isinstance(fields, Mapping):
        raise TypeError("fields must be a mapping")
    if not isinstance(signer, Ed25519PrivateKey):
        raise TypeError("signer must be an Ed25519PrivateKey")
    unknown = set(fields) - CALLER_FIELDS
    if unknown:
        raise ValueError(f"unknown audit field {sorted(unknown)[0]!r}")
    actor = fields.get("actor")
    if isinstance(actor, Mapping):
        if "name" not in actor:
            raise ValueError("bad audit field: 'actor.name' must be given "
                             "(null for a key the policy does not know)")
        actor = {"key": fp, **actor}
    request = fields.get("request")
    try:
        members = caller_members(
            {**fields, "actor": actor, "request": request or secrets.token_hex(16)},
            strict=False,
        )
    except Invalid as e:
        raise ValueError(f"bad audit field: {e}") from None
    if members["actor_key"] != fp:
        raise ValueError("actor.key is not the fingerprint of the signing key")
    if members["action"] == TORN_ACTION:
        raise ValueError(f"the {TORN_ACTION!r} action is reserved for torn-line records")
    return Checked(members, signer, fp)


class RecordBuilder:
    """Encodes the records of one append: one time, host and pid for all."""

    def __init__(self, *, time: str, host: str, pid: int) -> None:
        self.time, self.host, self.pid = time, host, pid

    def _record(self, c: Checked, seq: int, fragments: tuple[Fragment, ...]) -> AuditRecord:
        return AuditRecord(seq=seq, time=self.time, host=self.host, pid=self.pid,
                           signature=None, fragments=fragments, **c.members)

    def unsigned(self, c: Checked, seq: int) -> AuditRecord:
        record = self._record(c, seq, ())
        return _finish(record, _encode(record.body()))

    def signed(self, c: Checked, seq: int, chain: bytes,
               fragments: tuple[Fragment, ...] = ()) -> AuditRecord:
        record = self._record(c, seq, fragments)
        body = record.body()
        # Members after "sig" in canonical order are state, time and v: encode
        # the two halves once, and splice the signature in between.
        tail = _encode({k: body.pop(k) for k in ("state", "time", "v")})
        head = _encode(body)
        unsigned = head[:-1] + b"," + tail[1:]
        signature = c.signer.sign(SIGNING_CONTEXT + chain + unsigned)
        object.__setattr__(record, "signature", signature)  # not yet shared
        return _finish(record, b'%s,"sig":"%s",%s' % (
            head[:-1], base64.b64encode(signature), tail[1:]))

    def run(self, items: Sequence[Checked], first: int,
            before: bytes) -> tuple[list[AuditRecord], list[bytes]]:
        """Records for ``items`` from line ``first`` on, the line before them
        having leaf hash ``before`` (§5: one signature per run of a signer,
        at most RUN_LIMIT records long), and their leaf hashes."""
        out: list[AuditRecord] = []
        all_leaves: list[bytes] = []
        start = 0
        while start < len(items):
            fp = items[start].fingerprint
            end = start + 1
            while end < len(items) and end - start < RUN_LIMIT and items[end].fingerprint == fp:
                end += 1
            leaves: list[bytes] = []
            for c in items[start : end - 1]:
                record = self.unsigned(c, first + len(out))
                leaves.append(leaf_hash(record.line))
                out.append(record)
            last = self.signed(items[end - 1], first + len(out), chain_digest(before, leaves))
            out.append(last)
            before = leaf_hash(last.line)
            all_leaves += leaves
            all_leaves.append(before)
            start = end
        return out, all_leaves


def _encode(obj: Any) -> bytes:
    try:
        return canonical_json(obj)
    except UnicodeEncodeError:
        raise ValueError("audit fields must be valid Unicode text") from None


def _finish(record: AuditRecord, line: bytes) -> AuditRecord:
    if len(line) > MAX_LINE:
        raise ValueError(f"audit record longer than {MAX_LINE} bytes")
    object.__setattr__(record, "line", line)
    return record
