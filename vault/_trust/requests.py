"""Signed requests (docs/FORMAT.md §16.2): one precise action, asked for
by its requester, signed with the requester's own key.

A request names the action, the document and the digest of the header the
trusted state records for it, the label (and a change's new label), the
justification, the requester and the policy version in force, and when it
expires. Approvals answer it by the SHA-256 of its statement
(vault/_trust/approvals.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from vault._primitives import b64, canonical_json, hkdf, parse_signing_key
from vault._primitives import sha256_hex as _sha
from vault._primitives import sign as _sign
from vault._primitives import verify as _verify
from vault._text import printable_lines
from vault._trust._label_dates import dating_lines
from vault._trust._statement import (
    ACTIONS,
    ADMINISTRATIVE,
    CHANGES,
    DEFAULT_LIFETIME,
    DOC,
    HEX32,
    HEX64,
    MAX_LIFETIME,
    ON_DOCUMENT,
    REQUEST_MEMBERS,
    ApprovalError,
    Party,
    SignedStatement,
    StatementError,
    bound_label,
    encode,
    parse_file,
    read_details,
    read_label,
    read_signed,
    read_text,
    read_time,
    utc_text,
)
from vault.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy import Policy

__all__ = ["Request", "file_digest", "file_mac", "new_request", "read_request"]

_FILE_INFO = b"vault/v1 seal request file"


@dataclass(frozen=True)
class Request(SignedStatement):
    """A signed request (docs/FORMAT.md §16.2)."""

    # -- what it says ------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self.statement["id"])

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical statement: what approvals answer."""
        return _sha(canonical_json(self.statement))

    @property
    def action(self) -> str:
        return str(self.statement["action"])

    @property
    def doc(self) -> str | None:
        return self.statement["doc"]  # type: ignore[no-any-return]

    @property
    def state(self) -> str | None:
        return self.statement["state"]  # type: ignore[no-any-return]

    @property
    def label(self) -> dict[str, Any] | None:
        return self.statement["label"]  # type: ignore[no-any-return]

    @property
    def new_label(self) -> dict[str, Any] | None:
        return self.statement["new_label"]  # type: ignore[no-any-return]

    @property
    def details(self) -> dict[str, Any]:
        return dict(self.statement["details"])

    @property
    def justification(self) -> str | None:
        return self.statement["justification"]  # type: ignore[no-any-return]

    @property
    def requester(self) -> Party:
        return Party(**self.statement["requester"])

    @property
    def policy(self) -> str:
        return str(self.statement["policy"])

    def inputs(self) -> dict[str, Any]:
        """The inputs the requested action is decided with, as far as the
        request binds them: a change's new label; the floor a seal is below
        (whose rules then ask for approval)."""
        from vault.policy import Label

        out: dict[str, Any] = {}
        if self.new_label is not None:
            out["new_label"] = Label.from_dict(self.new_label)
        if self.action == "seal" and "floor" in self.details:
            out["floor"] = Label.from_dict(self.details["floor"])
        return out

    def unknown_to(self, policy: Policy) -> str | None:
        """What the request's label or new label names that ``policy`` does
        not define, or None. The reader checks a label's form only: a
        modified client signs any level's name, and no rule can ask for the
        approval of, or allow, a label the policy does not know."""
        from vault.policy import Label

        label = None if self.label is None else Label.from_dict(self.label)
        new = None if self.new_label is None else Label.from_dict(self.new_label)
        floor = self.details.get("floor") if self.action == "seal" else None
        if floor is not None and (why := policy.unknown_in(Label.from_dict(floor))):
            return "the floor " + why.removeprefix("the label ")  # below-floor rules use it
        return policy.unknown_in(label, new)

    # -- encodings ---------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return encode(self.signed())

    def describe(self, policy: Any = None) -> str:
        """The request in plain words, for the approver (labels as the
        policy marks them when it is given): :meth:`describe_lines` as one
        text, whose every line break is one of its own."""
        return "\n".join(self.describe_lines(policy))

    def describe_lines(self, policy: Any = None) -> list[str]:
        """:meth:`describe`'s lines, each escaped whole (vault/_text.py): a
        marking of the policy, a name or a field a modified client signed
        holding a line break stays in its line."""
        def mark(d: dict[str, Any] | None) -> str:
            if d is None:
                return "-"
            if policy is not None:
                from vault.policy import Label

                with contextlib.suppress(KeyError, ValueError, TypeError):  # not the policy's
                    return str(policy.format_label(Label.from_dict(d)))
            # The banner by names: level, compartments, then caveats.
            return "//".join([d["level"], *("/".join(d[k]) for k in ("compartments", "caveats")
                                           if d[k])])

        what = {"policy-apply": "install a new policy version", "rotate": "rotate class keys",
                "seal": "seal a new document", "doctor": "repair the vault (doctor --repair)",
                "migrate": "move the vault to another store (migrate --to)",
                "incident": "declare audit lines damaged (an incident)",
                }.get(self.action, f"{self.action} document {self.doc}")
        lines = [f"{self.requester.name} asks to {what}"]
        if self.doc is not None:
            lines.append(f"  document       {self.doc}, labelled {mark(self.label)} "
                         f"(header sha256 {self.state})")
        elif self.label is not None:
            lines.append(f"  label          {mark(self.label)}")
        if self.new_label is not None:
            lines.append(f"  new label      {mark(self.new_label)}")
        # A banner shows no dates; the embargo and declassify-on bound with
        # it decide when the document may be read (POLICY.md §6.4).
        lines += dating_lines(self.label, self.new_label, self.created,
                              sealing=self.action == "seal")
        if self.action == "migrate":
            lines.append(f"  to             the place whose sha256 is {self.details['to']} "
                         "(approved only with --to DEST)")
        if self.action == "seal" and "file" in self.details:
            lines.append(f"  file           digest {self.details['file'][:16]} (keyed by the "
                         "requester): the approval serves a seal of that file alone")
        if self.action == "seal" and "floor" in self.details:
            lines.append(f"  below floor    {mark(self.details['floor'])}: intake found this in "
                         "the file, and the label is below it")
        for key, value in sorted(self.details.items() if self.action not in (
                "migrate", "seal") else ()):
            shown = ", ".join(value) if isinstance(value, list) else "all" if value is None \
                else value
            lines.append(f"  {key:<14} {shown}")
        # One line whatever its text (printable_lines below escapes it): a
        # line break in a modified client's justification would print lines
        # of a request that is not this one.
        lines.append(f"  justification  {self.justification or '(none)'}")
        lines.append(f"  policy         sha256 {self.policy}")
        lines.append(f"  requested      {utc_text(self.created)}; expires "
                     f"{utc_text(self.expires)}")
        lines.append(f"  request id     {self.id}")
        return printable_lines(lines)

    # -- reading -----------------------------------------------------------------

    @classmethod
    def read(cls, obj: Any) -> Request:
        """Check a signed request's every member and its signature."""
        st, sig = read_signed(obj, "request")
        if set(st) != REQUEST_MEMBERS:
            raise StatementError("the request does not have exactly the members of "
                                 "docs/FORMAT.md §16.2")
        for key, pattern in (("vault", HEX32), ("id", HEX32), ("policy", HEX64)):
            if not isinstance(st[key], str) or not pattern.match(st[key]):
                raise StatementError(f"the request's {key} is malformed")
        action = st["action"]
        if action not in ACTIONS:
            raise StatementError(f"the request's action {action!r} is not one of "
                                 f"{', '.join(ACTIONS)}")
        on_doc = action in ON_DOCUMENT
        doc, state = st["doc"], st["state"]
        if on_doc != (isinstance(doc, str) and bool(DOC.match(doc))) or (not on_doc and (
                doc is not None)) or on_doc != (isinstance(state, str) and bool(
                HEX64.match(state))) or (not on_doc and state is not None):
            raise StatementError("the request's doc and state do not fit its action")
        label, new = read_label(st["label"], "label"), read_label(st["new_label"], "new_label")
        if (label is None) != (action in ADMINISTRATIVE) \
                or (new is None) == (action in CHANGES):
            raise StatementError("the request's labels do not fit its action")
        read_details(action, st["details"])
        read_text(st["justification"], "justification")
        who = Party.read(st["requester"], "requester")
        created, expires = read_time(st["created"], "created"), read_time(st["expires"], "expires")
        if not (created < expires and expires - created <= MAX_LIFETIME):  # no sum: year 9999
            raise StatementError("the request must expire after it was made, within 90 days")
        if not _verify(parse_signing_key(who.signing_key), "request", canonical_json(st), sig):
            raise ApprovalError("forged", f"the request's signature does not verify with "
                                f"{who.name}'s key: it was forged or altered",
                                hint="ask the requester for the file they signed")
        return cls(st, sig)


def new_request(identity: Any, *, vault: str, action: str, doc: str | None, state: str | None,
                label: Any, new_label: Any, details: Mapping[str, Any],
                justification: str | None, requester: str, policy: str,
                lifetime: timedelta | None = None, now: datetime | None = None) -> Request:
    """Sign a request with ``identity`` (its holder's own key)."""
    created = (now or datetime.now(UTC)).replace(microsecond=0)
    life = DEFAULT_LIFETIME if lifetime is None else lifetime
    if not timedelta(seconds=1) <= life <= MAX_LIFETIME:
        raise UsageError("a request expires 1 second to 90 days after it is made",
                         hint="give --expires as a duration like P7D, PT12H or PT30M")
    st = {"vault": vault, "id": secrets.token_hex(16), "action": action, "doc": doc,
          "state": state, "label": None if label is None else bound_label(label),
          "new_label": None if new_label is None else bound_label(new_label),
          "details": dict(details), "justification": justification,
          "requester": {"name": requester, "signing_key": identity.signing_public},
          "policy": policy, "created": utc_text(created), "expires": utc_text(created + life)}
    sig = _sign(identity.signing_key, "request", canonical_json(st))
    return Request.read({"sig": b64(sig), "statement": st})


def file_mac(identity: Any, vault: str) -> hmac.HMAC:
    """The keyed hash a seal request names its file by (FORMAT.md §16.2),
    to be fed the file's bytes. Keyed by its requester's own identity: the
    request is in the audit log, which everyone with the folder reads, and
    a plain digest of the file would confirm a guess of its bytes there --
    a one-line notice around a card number. Only its requester, who seals
    with the request, needs to make it again."""
    key = hkdf(identity.age_identity.to_bytes(), bytes.fromhex(vault), _FILE_INFO)
    return hmac.new(key, digestmod=hashlib.sha256)


def file_digest(identity: Any, vault: str, stream: BinaryIO) -> str:
    """:func:`file_mac` of everything ``stream`` holds from where it is."""
    mac = file_mac(identity, vault)
    while chunk := stream.read(1 << 20):
        mac.update(chunk)
    return mac.hexdigest()


def read_request(data: bytes) -> Request:
    """A request file (a signed request and a newline)."""
    return Request.read(parse_file(data, "request"))
