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
from vault.audit._members import REQUEST_RE, Invalid, caller_members, check_state
from vault.audit._record import (
    FORMAT_VERSION,
    MAX_LINE,
    TORN_ACTION,
    AuditRecord,
    Fragment,
    canonical_json,
)
from vault.audit._walk import MAX_RUN_BYTES

__all__ = ["CALLER_FIELDS", "RUN_LIMIT", "Checked", "FieldChecker", "RecordBuilder",
           "check_fields"]

CALLER_FIELDS = frozenset(
    {"actor", "action", "doc", "label", "outcome", "rules", "reason", "policy", "request",
     "state"}
)  # fmt: skip
# At most this many records share one signature. A crash in the middle of a
# batch leaves its complete, unsigned lines for the next writer to set aside,
# and one torn record must be able to name them all within MAX_LINE (§8).
RUN_LIMIT = 1000


class Checked:
    """Validated caller fields and the key that signs them; ``body`` holds
    the members as JSON values (ready for the encoder). ``template`` is the
    first of a series of items alike but for doc, request and state (itself
    when it starts one): what they share is encoded once."""

    __slots__ = ("body", "fingerprint", "members", "signer", "template")

    def __init__(self, members: dict[str, Any], signer: Ed25519PrivateKey, fp: str,
                 like: Checked | None = None) -> None:
        self.members, self.signer, self.fingerprint = members, signer, fp
        self.body: dict[str, Any]
        m = members
        if like is not None:  # all but doc, request and state are like's
            self.template: Checked = like.template
            self.body = {**like.body, "doc": m["doc"], "request": m["request"],
                         "state": m["state"]}
            return
        self.template = self
        self.body = {
            "actor": {"key": m["actor_key"], "name": m["actor"]}, "action": m["action"],
            "doc": m["doc"], "outcome": m["outcome"], "rules": list(m["rules"]),
            "reason": m["reason"], "policy": m["policy"], "request": m["request"],
            "state": m["state"],
            "label": None if m["level"] is None else {
                "caveats": list(m["caveats"]), "compartments": list(m["compartments"]),
                "level": m["level"]},
        }


def check_fields(fields: Mapping[str, Any], signer: Ed25519PrivateKey, fp: str,
                 request: str | None = None) -> Checked:
    """Validate ``fields`` for a record signed by ``signer`` (fingerprint
    ``fp``); ``request`` is the id used when the caller gives none."""
    if type(fields) is not dict and not isinstance(fields, Mapping):
        raise TypeError("fields must be a mapping")
    if not fp and not isinstance(signer, Ed25519PrivateKey):  # fp: a key already checked
        raise TypeError("signer must be an Ed25519PrivateKey")
    if not CALLER_FIELDS.issuperset(fields):
        unknown = set(fields) - CALLER_FIELDS
        raise ValueError(f"unknown audit field {sorted(unknown)[0]!r}")
    actor = fields.get("actor")
    if type(actor) is dict or isinstance(actor, Mapping):
        if "name" not in actor:
            raise ValueError("bad audit field: 'actor.name' must be given "
                             "(null for a key the policy does not know)")
        actor = {"key": fp, **actor}
    try:
        members = caller_members(
            {**fields, "actor": actor,
             "request": fields.get("request") or request or secrets.token_hex(16)},
            strict=False,
        )
    except Invalid as e:
        raise ValueError(f"bad audit field: {e}") from None
    if members["actor_key"] != fp:
        raise ValueError("actor.key is not the fingerprint of the signing key")
    if members["action"] == TORN_ACTION:
        raise ValueError(f"the {TORN_ACTION!r} action is reserved for torn-line records")
    return Checked(members, signer, fp)


_SHARED = ("actor", "action", "label", "outcome", "rules", "reason", "policy")


class FieldChecker:
    """:func:`check_fields` for the items of one batch. Items of a batch
    usually share their actor, action, label, rules, reason and policy: what
    equals the item before's is not validated again (it is on the path of
    every record of a large batch)."""

    def __init__(self) -> None:
        self._raw: tuple[Any, ...] | None = None
        self._last: Checked | None = None

    def __call__(self, fields: Mapping[str, Any], signer: Ed25519PrivateKey, fp: str,
                 request: str) -> Checked:
        last = self._last
        if type(fields) is dict:
            get = fields.get  # _SHARED, spelt out: this runs for every record
            raw = (get("actor"), get("action"), get("label"), get("outcome"), get("rules"),
                   get("reason"), get("policy"))
            if (last is not None and fp and fp == last.fingerprint and raw == self._raw
                    and CALLER_FIELDS.issuperset(fields)):
                return self._like(fields, signer, fp, request, last)
            checked = check_fields(fields, signer, fp, request)
            self._raw, self._last = raw, checked
            return checked
        return check_fields(fields, signer, fp, request)

    @staticmethod
    def _like(fields: Mapping[str, Any], signer: Ed25519PrivateKey, fp: str, request: str,
              last: Checked) -> Checked:
        doc, state = fields.get("doc"), fields.get("state")
        request = fields.get("request") or request
        try:
            if doc is not None and (type(doc) is not str or not doc):
                raise Invalid("'doc' must be a non-empty string")
            if type(request) is not str or not REQUEST_RE.match(request):
                raise Invalid("'request' must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
            state = None if state is None else check_state(state)
        except Invalid as e:
            raise ValueError(f"bad audit field: {e}") from None
        members = {**last.members, "doc": doc, "request": request, "state": state}
        return Checked(members, signer, fp, like=last)


class RecordBuilder:
    """Encodes the records of one append: one time, host and pid for all.

    A record's canonical JSON is its members' encodings, in key order,
    joined: ``action, actor, doc, host, label, outcome, pid, policy, reason,
    request, rules, seq, [sig,] state, time, v``. What items made from one
    template share is encoded once per append, and each record adds only its
    doc, request, seq and state -- the same bytes, member by member, as
    encoding the whole object (a torn record, with its fragments, is encoded
    whole)."""

    def __init__(self, *, time: str, host: str, pid: int) -> None:
        self.time, self.host, self.pid = time, host, pid
        self._shared: dict[int, tuple[Checked, bytes, bytes, bytes]] = {}
        self._alike: set[int] = set()  # templates of several records of this append
        self._end = b',"time":%s,"v":%d}' % (_encode(time), FORMAT_VERSION)

    def _pieces(self, c: Checked) -> tuple[bytes, bytes, bytes]:
        """The encoded members around doc, request and seq for ``c``'s template."""
        t = c.template
        hit = self._shared.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1], hit[2], hit[3]
        b = t.body
        before_doc = b'{"action":%s,"actor":%s,"doc":' % (_encode(b["action"]),
                                                         _encode(b["actor"]))
        before_request = (b',"host":%s,"label":%s,"outcome":%s,"pid":%s,"policy":%s,'
                          b'"reason":%s,"request":' % (
                              _encode(self.host), _encode(b["label"]), _encode(b["outcome"]),
                              _encode(self.pid), _encode(b["policy"]), _encode(b["reason"])))
        before_seq = b',"rules":%s,"seq":' % _encode(b["rules"])
        self._shared[id(t)] = (t, before_doc, before_request, before_seq)
        return before_doc, before_request, before_seq

    def _encoded(self, c: Checked, seq: int) -> tuple[bytes, bytes]:
        """``(head, tail)``: the record's canonical JSON is ``head + tail``,
        and ``sig`` goes between them (head ends with the comma after seq,
        tail starts with ``"state"``)."""
        b = c.body
        state = b["state"]
        tail = b'"state":%s%s' % (b"null" if state is None else _encode(state), self._end)
        if id(c.template) not in self._alike:  # a record like no other: encoded whole
            whole = _encode(self._body(c, seq))
            if not whole.endswith(tail):  # pragma: no cover - the encoder's own order
                raise AssertionError("canonical JSON did not end with state, time and v")
            return whole[: -len(tail)], tail
        before_doc, before_request, before_seq = self._pieces(c)
        head = b"%s%s%s%s%s%d," % (before_doc, _encode(b["doc"]), before_request,
                                   _encode(b["request"]), before_seq, seq)
        return head, tail

    def _record(self, c: Checked, seq: int, fragments: tuple[Fragment, ...]) -> AuditRecord:
        # Members checked already: filled in directly (a frozen dataclass's
        # __init__ costs several times more, on every record of a batch).
        record: AuditRecord = object.__new__(AuditRecord)
        record.__dict__.update(c.members, seq=seq, time=self.time, host=self.host,
                               pid=self.pid, signature=None, fragments=fragments, line=b"")
        return record

    def _body(self, c: Checked, seq: int) -> dict[str, Any]:
        return {**c.body, "v": FORMAT_VERSION, "seq": seq, "time": self.time,
                "host": self.host, "pid": self.pid}

    def unsigned(self, c: Checked, seq: int) -> AuditRecord:
        head, tail = self._encoded(c, seq)
        return _finish(self._record(c, seq, ()), head + tail)

    def signed(self, c: Checked, seq: int, chain: bytes,
               fragments: tuple[Fragment, ...] = ()) -> AuditRecord:
        record = self._record(c, seq, fragments)
        if fragments:  # a torn record: encoded whole
            body = self._body(c, seq)
            body["fragments"] = [f.to_dict() for f in fragments]
            unsigned = _encode(body)
            # The members after "sig" in canonical order are state, time and
            # v: the signature goes in just before them.
            state = body["state"]
            tail = b'"state":%s%s' % (b"null" if state is None else _encode(state), self._end)
            if not unsigned.endswith(tail):  # pragma: no cover - the encoder's own order
                raise AssertionError("canonical JSON did not end with state, time and v")
            head = unsigned[: -len(tail)]
        else:
            head, tail = self._encoded(c, seq)
            unsigned = head + tail
        signature = c.signer.sign(SIGNING_CONTEXT + chain + unsigned)
        object.__setattr__(record, "signature", signature)  # not yet shared
        return _finish(record, b'%s"sig":"%s",%s' % (head, base64.b64encode(signature), tail))

    def run(self, items: Sequence[Checked], first: int,
            before: bytes) -> tuple[list[AuditRecord], list[bytes]]:
        """Records for ``items`` from line ``first`` on, the line before them
        having leaf hash ``before`` (§5: one signature per run of a signer,
        at most RUN_LIMIT records long), and their leaf hashes."""
        out: list[AuditRecord] = []
        all_leaves: list[bytes] = []
        start = 0
        seen: set[int] = set()
        for c in items:
            t = id(c.template)
            if t in seen:
                self._alike.add(t)
            seen.add(t)
        while start < len(items):
            fp = items[start].fingerprint
            leaves: list[bytes] = []
            size, i = 0, start  # items[i] is signed: it ends the run
            while i + 1 < len(items) and i + 1 - start < RUN_LIMIT \
                    and items[i + 1].fingerprint == fp:
                record = self.unsigned(items[i], first + len(out))
                size += len(record.line) + 1
                if size > MAX_RUN_BYTES:  # the reading rules would not cover it (§5)
                    break
                leaves.append(leaf_hash(record.line))
                out.append(record)
                i += 1
            last = self.signed(items[i], first + len(out), chain_digest(before, leaves))
            out.append(last)
            before = leaf_hash(last.line)
            all_leaves += leaves
            all_leaves.append(before)
            start = i + 1
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
